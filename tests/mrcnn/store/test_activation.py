""""Activate when better": a new version that scores lower than the active one is kept in
the list but does not replace it; one that scores higher does."""

from __future__ import annotations

import pytest

from mrcnn.store import versions
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


def metrics(segm_ap: float) -> dict:
    return {"segm": {"AP": segm_ap, "AP50": segm_ap}, "bbox": {"AP": 0.9, "AP50": 0.9}}


def register(p: Project, ap: float, activate: bool):
    staged = versions.staging_path(p)
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"weights")
    return versions.register_staged(p, staged, preset="r18", parent_id=None,
                                    metadata={"metrics": {"after": metrics(ap)}},
                                    activate=activate)


@pytest.mark.parametrize(("before", "after", "better"), [
    (0.5, 0.3, False),   # worse
    (0.5, 0.499, False),  # a hair worse
    (0.5, 0.0, False),
    (0.5, 0.5, False),   # a tie keeps the one the user knows
    (0.3, 0.5, True),
])
def test_only_a_higher_mask_ap_activates(before, after, better):
    assert versions.should_activate("if-better", metrics(before), metrics(after)) is better
    assert versions.should_activate("always", metrics(before), metrics(after))


def test_a_worse_new_version_is_listed_and_the_old_one_stays_active(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=3, n_val=1, size=64)
    with Project.open(folder) as p:
        v1 = register(p, 0.5, activate=True)
        worse = metrics(0.3)
        v2 = register(p, 0.3, activate=versions.should_activate("if-better", metrics(0.5),
                                                                  worse))
        assert [v.name for v in p.model_versions()] == ["v1", "v2"]
        assert p.active_model_version().id == v1.id and not v2.active
        v3 = register(p, 0.7, activate=versions.should_activate("if-better", metrics(0.5),
                                                                  metrics(0.7)))
        assert p.active_model_version().id == v3.id
