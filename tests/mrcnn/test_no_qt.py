"""`mrcnn` never imports Qt: it must work on a machine without PySide6 (servers, CI, scripts)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QT = ("PySide6", "shiboken6", "PySide2", "shiboken2", "PyQt5", "PyQt6", "sip", "qtpy")

IMPORT_ALL_WITHOUT_QT = """
    import importlib, pkgutil, sys

    QT = {qt!r}

    class NoQt:
        '''Make every Qt binding unimportable, as on a machine without them.'''
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in QT:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, NoQt())
    for name in QT:
        sys.modules[name] = None  # even an already-cached import fails

    try:
        import PySide6  # noqa: F401
    except ImportError:
        pass
    else:
        sys.exit("the PySide6 block does not work")

    import mrcnn
    names = []
    for info in pkgutil.walk_packages(mrcnn.__path__, "mrcnn."):
        if info.name == "mrcnn.__main__":
            sys.argv = ["mrcnn", "--help"]
            try:
                importlib.import_module(info.name)
            except SystemExit as exc:
                assert exc.code == 0, exc.code
        else:
            importlib.import_module(info.name)
        names.append(info.name)
    print("\\n".join(names))
"""


def test_every_mrcnn_module_imports_with_qt_unimportable():
    code = textwrap.dedent(IMPORT_ALL_WITHOUT_QT.format(qt=QT))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("QT_QPA_PLATFORM", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    imported = set(r.stdout.split())
    on_disk = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
               for p in (REPO / "mrcnn").rglob("*.py")} - {"mrcnn"}
    assert on_disk <= imported, on_disk - imported
    assert {"mrcnn.store.project", "mrcnn.coco.io", "mrcnn.cli.main", "mrcnn.__main__"} <= imported


def test_no_mrcnn_source_file_imports_qt():
    offenders = []
    for path in sorted((REPO / "mrcnn").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif (isinstance(node, ast.Call) and node.args
                  and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)
                  and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                      "import_module", "__import__")):
                names = [node.args[0].value]
            else:
                continue
            offenders += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in QT]
    assert offenders == []
