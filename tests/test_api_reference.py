"""The API reference (docs/reference.md, built by mkdocs + mkdocstrings) builds in strict mode,
lists every public name of every public module with its parameters' descriptions and nothing
internal, and formats long signatures; a reference to something that does not exist, a page
missing from the nav and a link the site lacks each fail the build."""

from __future__ import annotations

import html
import importlib
import importlib.util
import pathlib
import pkgutil
import re
import shutil
import subprocess
import sys
import types

import pytest

import xnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the modules docs/reference.md documents: xnn's public modules (xnn.sklearn needs scikit-learn)
MODULES = ["xnn.nn", "xnn.nn.init", "xnn.losses", "xnn.optim", "xnn.optim.schedules",
           "xnn.metrics", "xnn.callbacks", "xnn.data", "xnn.datasets", "xnn.random", "xnn.io",
           "xnn.plot", "xnn.testing", "xnn.parity", "xnn.rank_parity", "xnn.tutorials",
           "xnn.backend", "xnn.onnx", "xnn.distributed", "xnn.sklearn", "xnn.train",
           "xnn.predict", "xnn.compiled"]
# modules of xnn's machinery, reached through the public ones (xnn.fit runs xnn.loop's epochs)
MACHINERY = {"xnn.architecture", "xnn.cli", "xnn.extras", "xnn.loop", "xnn.namespace",
             "xnn.progress", "xnn.rowread", "xnn.stream"}
# helpers xnn's own modules share, not for users: out of their module's __all__ and the reference
INTERNAL = ["xnn.data.check_same_length", "xnn.data.check_seed", "xnn.data.take_rows",
            "xnn.data.permutations", "xnn.io.write_arrays", "xnn.io.write_atomically",
            "xnn.io.read_tensors", "xnn.io.describe", "xnn.io.build", "xnn.parity.Tutorial",
            "xnn.parity.tutorial", "xnn.parity.compare_tutorial", "xnn.random.host_generator"]

pytest.importorskip("mkdocs", reason="the reference is built by mkdocs (the test extra has it)")
pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] builds it")


def _build(config: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(config), "--site-dir", str(site)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _build_copy(tmp_path: pathlib.Path, change) -> subprocess.CompletedProcess:
    """Build a copy of docs/ after ``change(docs)``, with the repository's hook and extension."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    change(docs)
    config = tmp_path / "mkdocs.yml"
    config.write_text((ROOT / "mkdocs.yml").read_text().replace(
        "docs_dir: docs", f"docs_dir: {docs}").replace(
        "docs/_griffe_parameters.py", str(ROOT / "docs" / "_griffe_parameters.py")).replace(
        "docs/_repository_files.py", str(ROOT / "docs" / "_repository_files.py")))
    return _build(config, tmp_path / "site")


def _warnings(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("WARNING")]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    """The built site."""
    site = tmp_path_factory.mktemp("site")
    done = _build(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, done.stderr[-3000:]
    return site


@pytest.fixture(scope="module")
def reference(site) -> str:
    """The built reference page's HTML."""
    return (site / "reference" / "index.html").read_text()


def _ids(reference: str) -> set[str]:
    return set(re.findall(r'id="(xnn[\w.]*)"', reference))


def _module_and_path(dotted: str) -> tuple[types.ModuleType | None, list[str]]:
    """The deepest importable module of a dotted name and the attribute path below it; None
    for a module whose optional library (scikit-learn) is missing."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:i])), parts[i:]
        except ImportError as err:
            if getattr(err, "name", None) != ".".join(parts[:i]):
                return None, parts[i:]  # the module exists but needs a library not installed
    raise AssertionError(dotted)


def _documented(obj: object) -> bool:
    """A public function or class (not a module, constant or typing alias)."""
    return (callable(obj) and not isinstance(obj, types.ModuleType)
            and type(obj).__module__ not in ("typing", "collections.abc"))


def test_the_reference_lists_every_public_function_and_class(reference):
    ids = _ids(reference)
    listed = set()  # each object the reference shows, under whichever public name
    for i in ids:
        module, path = _module_and_path(i)
        obj = module
        for name in path if module is not None else ():
            obj = getattr(obj, name)
        listed.add(id(obj))
    modules = [importlib.import_module(name) for name in MODULES
               if name != "xnn.sklearn" or importlib.util.find_spec("sklearn")]
    missing = [f"{m.__name__}.{member}" for m in modules + [xnn] for member in m.__all__
               if _documented(getattr(m, member)) and id(getattr(m, member)) not in listed]
    assert missing == []
    assert {"xnn.sklearn.MLPClassifier", "xnn.sklearn.MLPRegressor", "xnn.onnx.export",
            "xnn.distributed.init"} <= ids  # listed with scikit-learn or onnx missing too


def test_every_module_is_in_the_reference_or_machinery():
    found = {f"xnn.{m.name}" for m in pkgutil.iter_modules(xnn.__path__)
             if not m.name.startswith("_")}
    assert found - set(MODULES) - MACHINERY == set()  # a new module: document it


def test_the_reference_lists_nothing_private(reference):
    ids = _ids(reference)
    private = [i for i in ids for part in i.split(".")
               if part.startswith("_") and not (part.startswith("__") and part.endswith("__"))]
    assert private == []
    # a module's members appear only when its __all__ names them
    outside = []
    for i in ids:
        module, path = _module_and_path(i)
        if module is not None and path and path[0] not in module.__all__:
            outside.append(i)
    assert outside == []
    assert [name for name in INTERNAL if name in ids] == []
    exported = [name for name in INTERNAL if name.rsplit(".", 1)[1]
                in importlib.import_module(name.rsplit(".", 1)[0]).__all__]
    assert exported == []


def test_the_reference_shows_each_parameters_description(reference):
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", reference)))
    assert "learning rate (torch's default, 1e-3)" in text  # SGD's one-line "lr: ..." entry
    assert "Widths of the input and the output" in text  # Linear's indented entry
    assert "The outputs of model for the rows of X, in evaluation mode" in text  # predict
    assert "Hold out this fraction (between 0 and 1) of the last rows" in text  # fit's table
    assert re.findall(r":(?:func|class|meth|mod):", text) == []  # Sphinx roles shown as code


@pytest.mark.parametrize("extra", ["docs", "test"])
def test_the_extras_that_build_the_docs_install_a_signature_formatter(extra):
    listed = re.search(rf"^{extra} = \[(.*?)\]$", (ROOT / "pyproject.toml").read_text(),
                       re.M | re.S).group(1)
    assert re.search(r'"(black|ruff)\b', listed), listed  # without one: 400-column signatures


def test_long_signatures_render_on_several_lines(reference):
    if not (importlib.util.find_spec("black") or importlib.util.find_spec("ruff")):
        pytest.skip("mkdocstrings formats signatures with black or ruff; the docs and test "
                    "extras install black")
    signature = re.search(r'id="xnn.fit".*?<code>(.*?)</code>', reference, re.S).group(1)
    lines = html.unescape(re.sub(r"<[^>]+>", "", signature)).splitlines()
    assert len(lines) > 10, lines  # one parameter a line
    assert max(len(line) for line in lines) <= 100, lines
    assert "    validation_split: float | None = None," in lines


def test_the_readme_is_the_home_page_and_links_out_of_docs_work(site):
    home = (site / "index.html").read_text()
    assert "Running the tests" in home  # a heading of the README
    started = (site / "getting-started" / "index.html").read_text()
    assert 'href="../">README</a>' in started
    performance = (site / "performance" / "index.html").read_text()
    assert 'src="../repository/benchmarks/results/scaling.png"' in performance
    assert (site / "repository" / "benchmarks" / "results" / "scaling.png").is_file()
    assert 'href="../repository/benchmarks/">' in performance
    assert (site / "repository" / "benchmarks" / "index.html").is_file()


def test_a_reference_to_a_missing_object_fails_the_strict_build(tmp_path):
    def change(docs: pathlib.Path) -> None:
        with open(docs / "reference.md", "a") as page:
            page.write("\n::: xnn.nn.NoSuchLayer\n")

    done = _build_copy(tmp_path, change)
    assert done.returncode != 0 and "NoSuchLayer" in done.stderr


def test_a_copy_of_the_docs_builds_without_warnings(tmp_path):
    done = _build_copy(tmp_path, lambda docs: None)
    assert done.returncode == 0 and _warnings(done) == [], done.stderr[-3000:]


def test_a_page_missing_from_the_nav_fails_the_strict_build(tmp_path):
    done = _build_copy(tmp_path, lambda docs: (docs / "orphan.md").write_text("# Orphan\n"))
    assert done.returncode != 0
    assert "not included in the \"nav\"" in done.stderr and "  - orphan.md" in done.stderr


@pytest.mark.parametrize("link, message", [
    ("no-such-page.md", "contains a link 'no-such-page.md', but the target is not found"),
    ("../no-such-file.md", "'repository/no-such-file.md', but the target is not found"),
    ("training.md#no-such-heading", "does not contain an anchor '#no-such-heading'"),
], ids=["page", "repository file", "anchor"])
def test_a_link_the_site_lacks_fails_the_strict_build(tmp_path, link, message):
    def change(docs: pathlib.Path) -> None:
        with open(docs / "getting-started.md", "a") as page:
            page.write(f"\nSee [this]({link}).\n")

    done = _build_copy(tmp_path, change)
    assert done.returncode != 0
    assert [w for w in _warnings(done) if message in w] == _warnings(done) != [], done.stderr


def test_one_line_parameter_descriptions_are_split_for_the_numpy_parser():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from _griffe_parameters import split_inline_parameters  # noqa: PLC0415
    finally:
        sys.path.remove(str(ROOT / "docs"))
    doc = ("What it does.\n\nParameters\n----------\nlr: learning rate.\nin_features, out:\n"
           "    Widths.\nbeta: a factor: at most 1,\n    and more.\n\nNotes\n-----\nx: y\n")
    assert split_inline_parameters(doc) == (
        "What it does.\n\nParameters\n----------\nlr:\n    learning rate.\nin_features, out:\n"
        "    Widths.\nbeta:\n    a factor: at most 1,\n    and more.\n\nNotes\n-----\nx: y\n")
    assert split_inline_parameters("No parameters.\n") == "No parameters.\n"
