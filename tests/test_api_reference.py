"""The API reference (docs/reference.md, built by mkdocs + mkdocstrings) builds in strict mode,
lists every public name of the modules it covers with its parameters' descriptions, and a
reference to something that does not exist fails the build."""

from __future__ import annotations

import html
import importlib
import pathlib
import re
import shutil
import subprocess
import sys
import types

import pytest

import xnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the modules docs/reference.md documents, each entry by its full name
MODULES = ["xnn.nn", "xnn.nn.init", "xnn.losses", "xnn.optim", "xnn.optim.schedules",
           "xnn.metrics", "xnn.callbacks", "xnn.data", "xnn.datasets", "xnn.random", "xnn.io",
           "xnn.plot", "xnn.testing", "xnn.parity", "xnn.tutorials", "xnn.backend"]

pytest.importorskip("mkdocs", reason="the reference is built by mkdocs (the test extra has it)")
pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] builds it")


def _build(config: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(config), "--site-dir", str(site)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    """The built reference page's HTML."""
    site = tmp_path_factory.mktemp("site")
    done = _build(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, done.stderr[-3000:]
    return (site / "reference" / "index.html").read_text()


def _documented(obj: object) -> bool:
    """A public function or class (not a module, constant or typing alias)."""
    return (callable(obj) and not isinstance(obj, types.ModuleType)
            and type(obj).__module__ not in ("typing", "collections.abc"))


def test_the_reference_lists_every_public_function_and_class(reference):
    ids = set(re.findall(r'id="(xnn[\w.]*)"', reference))
    missing = [f"{name}.{member}" for name in MODULES
               for member in importlib.import_module(name).__all__
               if _documented(getattr(importlib.import_module(name), member))
               and f"{name}.{member}" not in ids]
    assert missing == []
    tails = {i.rsplit(".", 1)[-1] for i in ids}
    top = [n for n in xnn.__all__ if _documented(getattr(xnn, n)) and n not in tails]
    assert top == []  # xnn.fit, xnn.predict, ... documented where they are defined


def test_the_reference_shows_each_parameters_description(reference):
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", reference)))
    assert "learning rate (torch's default, 1e-3)" in text  # SGD's one-line "lr: ..." entry
    assert "Widths of the input and the output" in text  # Linear's indented entry
    assert "The outputs of model for the rows of X, in evaluation mode" in text  # predict


def test_a_reference_to_a_missing_object_fails_the_strict_build(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    with open(docs / "reference.md", "a") as page:
        page.write("\n::: xnn.nn.NoSuchLayer\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text((ROOT / "mkdocs.yml").read_text().replace(
        "docs_dir: docs", f"docs_dir: {docs}").replace(
        "docs/_griffe_parameters.py", str(docs / "_griffe_parameters.py")))
    done = _build(config, tmp_path / "site")
    assert done.returncode != 0 and "NoSuchLayer" in done.stderr


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
