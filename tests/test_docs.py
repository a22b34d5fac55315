"""Every Python block in docs/ runs, so the docs cannot rot; every relative link resolves; the
main entry points' docstrings document every parameter and their examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pathlib
import re

import pytest

import xnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
OWN_TEST = {"custom-layers.md"}  # tests/test_docs_custom_layers.py runs it on every backend


def _blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("doc", [d for d in DOCS if d.name not in OWN_TEST and _blocks(d)],
                         ids=lambda d: d.name)
def test_doc_code_blocks_run(doc, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{doc.stem}"}
    with xnn.use_backend("numpy"):
        for i, block in enumerate(_blocks(doc)):
            exec(compile(block, f"{doc.name} block {i + 1}", "exec"), namespace)  # noqa: S102
    assert capsys.readouterr().out  # every page prints something a reader can compare


@pytest.mark.parametrize("doc", DOCS + [ROOT / "README.md"], ids=lambda d: d.name)
def test_relative_links_resolve(doc):
    for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", doc.read_text()):
        if "://" in target:
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_every_topic_has_a_page():
    names = {d.name for d in DOCS}
    assert {"getting-started.md", "backends.md", "training.md", "custom-layers.md", "parity.md",
            "distributed.md",
            "checkpoints.md"} <= names
    assert "deployment.md" in names


# the entry points whose docstrings carry numpy-style sections and runnable examples, with the
# optional libraries their examples need
DOCUMENTED = {"xnn.fit": (), "xnn.evaluate": (), "xnn.predict": (), "xnn.save": (),
              "xnn.load": (), "xnn.onnx.export": ("onnx", "onnxruntime"),
              "xnn.sklearn.MLPClassifier": ("sklearn",), "xnn.sklearn.MLPRegressor": ("sklearn",)}


def _entry_point(name: str, needs: tuple[str, ...]) -> object:
    for library in needs:
        pytest.importorskip(library, reason=f"{name}'s example uses {library}")
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _documented_parameters(doc: str) -> set[str]:
    """The names of a numpy-style docstring's Parameters entries (``a, b : type``)."""
    section = re.search(r"\n( *)Parameters\n\1-+\n(.*?)(?:\n\n\1\w+\n\1-+\n|$)", doc, re.S)
    assert section, "no Parameters section"
    indent = section.group(1)
    entries = re.findall(rf"^{indent}(\w+(?:, \w+)*) :", section.group(2), re.M)
    return {n for entry in entries for n in entry.split(", ")}


@pytest.mark.parametrize("name", DOCUMENTED)
def test_entry_points_document_every_parameter(name):
    obj = _entry_point(name, DOCUMENTED[name])
    doc = inspect.getdoc(obj)
    expected = set(inspect.signature(obj).parameters) - {"self"}
    assert expected - _documented_parameters("\n" + doc) == set()
    assert "\nExamples\n--------\n" in doc
    if inspect.isfunction(obj) and inspect.signature(obj).return_annotation not in (None, "None"):
        assert "\nReturns\n-------\n" in doc


@pytest.mark.parametrize("name", DOCUMENTED)
def test_entry_points_docstring_examples_run(name, backend, tmp_path, monkeypatch):
    obj = _entry_point(name, DOCUMENTED[name])
    monkeypatch.chdir(tmp_path)  # the examples write their files in the working directory
    [test] = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    runner = doctest.DocTestRunner()
    report = io.StringIO()
    result = runner.run(test, out=report.write)
    assert result.attempted >= 4 and result.failed == 0, report.getvalue()
