"""The suite spread over the cores by pytest-xdist (`-n auto --dist loadgroup`, pyproject's
addopts): which tests share a worker, which go first, and how the cores are shared out.
Imported by tests/conftest.py, which registers its hook."""

from __future__ import annotations

import os

import pytest

# ---------------------------------------------------------------- running in parallel
#: The fixtures that train a model for minutes, and the xdist group (`--dist loadgroup`) of
#: the tests that use each: the groups are scheduled first, so two workers train the two
#: models side by side while the rest of the suite waits its turn behind them. A test that
#: uses both runs with the first; `trained_shapes` is trained once per run whichever
#: workers ask for it (a file lock and a shared folder, xdist's documented way).
TRAINED_GROUPS = (("trained_keypoints", "trained-keypoints"),
                  ("trained_shapes", "trained-shapes"))

_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
if _workers > 1:
    # the cores shared out among the workers (and the processes their tests start), so two
    # workers on two cores do not each run torch on both; set before anything imports torch
    _threads = str(max(1, (os.cpu_count() or 1) // _workers))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, _threads)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under `-n` (pytest-xdist, `--dist loadgroup`): a test module runs in one worker, so
    its module-scoped fixtures are built once; the tests of each trained model run in one
    worker, scheduled first (TRAINED_GROUPS)."""
    groups: dict[str, list] = {group: [] for _, group in TRAINED_GROUPS}
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        group = next((g for fixture, g in TRAINED_GROUPS if fixture in names), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            groups[group].append(item)
        elif item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    first = [item for group in groups.values() for item in group]
    if first:
        ids = {id(i) for i in first}
        items[:] = first + [i for i in items if id(i) not in ids]
