"""The architecture rules: the device-side code (layers, losses, optimizers, metrics and the
checks they share) names no array library, and no xnn code hides a GPU sync in xp.clip,
xp.sign or boolean-mask indexing. Host-side modules (backend, namespace, data sets, plots,
checkpoints, parity) may use NumPy openly."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "xnn"
ARRAY_LIBRARIES = {"numpy", "cupy", "cupyx", "torch"}
# where the rule matters: code that runs on the device, written against the standard alone
DEVICE_SIDE = [*(PACKAGE / d for d in ("nn", "losses", "optim")),
               *(PACKAGE / f for f in ("metrics.py", "_checks.py", "train.py", "predict.py", "data.py"))]


def _device_side_files() -> list[pathlib.Path]:
    return [f for p in DEVICE_SIDE for f in (sorted(p.rglob("*.py")) if p.is_dir() else [p])]


def _imported_roots(path: pathlib.Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_device_side_code_imports_no_array_library():
    files = _device_side_files()
    assert len(files) > 20, "the rule must see the layers, losses and optimizers"
    offenders = {str(p.relative_to(PACKAGE)): sorted(_imported_roots(p) & ARRAY_LIBRARIES)
                 for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_rule_would_catch_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import cupy\n    from torch import nn\n")
    assert _imported_roots(bad) & ARRAY_LIBRARIES == {"cupy", "torch"}


# --- no hidden device syncs: xp.clip, xp.sign and boolean-mask indexing -------------------------

WHY_NOT_CLIP_OR_SIGN = (
    "array-api-compat implements clip and sign on CuPy with boolean-mask indexing, which reads "
    "a count back to the host: a device sync every call; use xp.minimum/xp.maximum, and a sign "
    "built from comparisons")
WHY_NOT_MASKS = ("boolean-mask indexing syncs on CuPy (it reads the number of True entries "
                 "back to the host); use xp.where")
MASK_FUNCTIONS = {"isnan", "isinf", "isfinite"}


def _clip_or_sign_calls(tree: ast.AST) -> list[int]:
    """Lines calling anything.clip(...) or anything.sign(...)."""
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("clip", "sign"))


def _is_mask(index: ast.AST) -> bool:
    """Whether an index expression is visibly boolean: a comparison, ~ of a non-constant
    (x[~0] is the last item), & | ^ of masks, isnan/isinf/isfinite/logical_*, or a tuple
    holding one."""
    if isinstance(index, ast.Compare):
        return True
    if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.Invert):
        return not isinstance(index.operand, ast.Constant)
    if isinstance(index, ast.BinOp) and isinstance(index.op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
        return _is_mask(index.left) or _is_mask(index.right)
    if isinstance(index, ast.Call):
        func = index.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in MASK_FUNCTIONS or name.startswith("logical_")
    if isinstance(index, ast.Tuple):
        return any(_is_mask(item) for item in index.elts)
    return False


def _mask_indexing(tree: ast.AST) -> list[int]:
    """Lines reading or writing x[mask] with a visibly boolean mask."""
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Subscript) and _is_mask(node.slice))


def _offences(rule) -> list[str]:
    return [f"xnn/{path.relative_to(PACKAGE).as_posix()}:{line}"
            for path in sorted(PACKAGE.rglob("*.py")) for line in rule(ast.parse(path.read_text()))]


def test_xnn_calls_neither_clip_nor_sign():
    offences = _offences(_clip_or_sign_calls)
    assert not offences, f"{WHY_NOT_CLIP_OR_SIGN}; found at {', '.join(offences)}"


def test_xnn_never_indexes_with_a_boolean_mask():
    offences = _offences(_mask_indexing)
    assert not offences, f"{WHY_NOT_MASKS}; found at {', '.join(offences)}"


def test_the_sync_rules_would_catch_clip_sign_and_masks():
    bad = ast.parse(
        "def f(xp, x, y):\n"
        "    a, b = xp.clip(x, min=0.0), x.clip(max=1.0)\n"
        "    s = xp.sign(x)\n"
        "    c = x[x > 0]\n"
        "    x[~xp.isnan(y)] = 0\n"
        "    d = x[(x > 0) & (y < 1)]\n"
        "    e = x[:, xp.logical_not(y)]\n"
        "    return x[0], x[~0], x[:, None], x[..., 1:], xp.where(x > 0, x, 0)\n")
    assert _clip_or_sign_calls(bad) == [2, 2, 3]
    assert _mask_indexing(bad) == [4, 5, 6, 7]


# --- one owner: no import circle, one module that calls array-api-compat ------------------------

def _module_name(path: pathlib.Path, package: pathlib.Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(package: pathlib.Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (top level or inside a function)."""
    files = {_module_name(f, package): f for f in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package_parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (package_parts[:len(package_parts) - node.level + 1] if node.level
                        else [])
                target = ".".join(base + (node.module.split(".") if node.module else []))
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in files]
                # "from pkg import submodule" imports the submodule, not a name of pkg
                found = subs if len(subs) == len(node.names) else [target, *subs]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            graph[name].update(m for m in found if m in files and m != name)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: each module reached again from a module it imports."""
    circles = []
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module == start:
                circles.append(start)
                break
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
    return circles


def test_no_import_circle_among_xnns_modules():
    assert _circles(_import_graph(PACKAGE)) == []


def test_the_circle_check_would_catch_one(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("def f():\n    from .b import g\n")
    (package / "b.py").write_text("from . import a\n")
    assert sorted(_circles(_import_graph(package))) == ["pkg.a", "pkg.b"]


def test_only_the_namespace_module_calls_array_api_compat():
    callers = sorted(str(f.relative_to(PACKAGE)) for f in PACKAGE.rglob("*.py")
                     if "array_api_compat" in f.read_text())
    assert callers == ["namespace.py"]
