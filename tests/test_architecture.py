"""The architecture rule: only xnn.backend names numpy, cupy or torch."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "xnn"
ARRAY_LIBRARIES = {"numpy", "cupy", "cupyx", "torch"}
ALLOWED = {PACKAGE / "backend.py"}


def _imported_roots(path: pathlib.Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_backend_module_imports_array_libraries():
    offenders = {str(p.relative_to(PACKAGE)): sorted(_imported_roots(p) & ARRAY_LIBRARIES)
                 for p in PACKAGE.rglob("*.py") if p not in ALLOWED}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_rule_would_catch_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import cupy\n    from torch import nn\n")
    assert _imported_roots(bad) & ARRAY_LIBRARIES == {"cupy", "torch"}
