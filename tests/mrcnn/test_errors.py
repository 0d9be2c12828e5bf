"""One error hierarchy: every error the library raises on purpose is defined in
`mrcnn/errors.py` and is a `MrcnnError`, so a caller that shows errors catches one class."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from mrcnn import errors

REPO = Path(__file__).resolve().parents[2]


def test_every_error_is_a_documented_mrcnn_error():
    classes = [c for _name, c in inspect.getmembers(errors, inspect.isclass)
               if c.__module__ == errors.__name__]
    assert len(classes) >= 17
    for cls in classes:
        assert issubclass(cls, errors.MrcnnError), cls
        assert cls.__doc__ and "\n" not in cls.__doc__.strip(), cls  # a one-line docstring
    assert issubclass(errors.ModelCancelled, errors.MrcnnError)
    assert issubclass(errors.CategoryMismatchError, errors.CheckpointError)
    assert issubclass(errors.StaleEditError, errors.HistoryError)


def test_no_other_module_defines_an_error_class():
    def is_error_base(base: ast.expr) -> bool:
        name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
        return name.endswith(("Error", "Exception", "Cancelled"))

    offenders = []
    for path in sorted((REPO / "mrcnn").rglob("*.py")):
        if path == REPO / "mrcnn" / "errors.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [f"{path.relative_to(REPO)}: {node.name}" for node in ast.walk(tree)
                      if isinstance(node, ast.ClassDef) and any(map(is_error_base, node.bases))]
    assert offenders == []
