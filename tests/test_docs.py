"""Every Python block in docs/ runs, so the docs cannot rot; every relative link resolves."""

from __future__ import annotations

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
