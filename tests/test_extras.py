"""Install hints name the published distribution (not PyPI's unrelated ``xnn``) and extras that
exist, with a command that also works in a clone of the repository."""

from __future__ import annotations

import pathlib
import re

import pytest

from xnn.extras import DISTRIBUTION, install_hint

ROOT = pathlib.Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_hint_names_the_distribution_pyproject_builds():
    assert PROJECT["name"] == DISTRIBUTION != "xnn"
    assert install_hint("plot") == ('pip install "xnn-mlp[plot]" (in a clone of the repository: '
                                    'pip install -e ".[plot]")')


def test_every_extra_the_code_names_exists():
    used = set()
    for path in [*(ROOT / "xnn").rglob("*.py"), *(ROOT / "examples").glob("*.py")]:
        used.update(re.findall(r"""install_hint\(["'](\w+)["']\)""", path.read_text()))
    assert {"plot", "cuda12", "torch", "strict", "examples"} <= used
    assert used <= set(PROJECT["optional-dependencies"])


def test_docs_and_readme_install_the_distribution_not_pypis_xnn():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    wrong = [f"{p.name}: {m}" for p in pages
             for m in re.findall(r'pip install "xnn\[[^"]*\]"', p.read_text())]
    assert wrong == []


NEEDS = {  # what a page's code uses -> extras of which one must be installed
    r'"array_api_strict"|^\s*import array_api_strict': {"strict", "test"},
    r'"torch"': {"torch"},
    r"xnn\.plot\.": {"plot", "examples"},
    r"^\s*import pytest": {"test"},
}


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_each_page_says_how_to_install_what_its_code_needs(page):
    text = page.read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    if not code:
        return
    commands = re.findall(r'pip install -e (?:"\.\[([\w,]+)\]"|\.)([^`\n]*)', text)
    assert commands, f"{page.name} has code but no install line"
    extras = {e for found, _ in commands for e in found.split(",") if e}
    extras |= {"test"} if any("pytest" in rest for _, rest in commands) else set()
    for used, wanted in NEEDS.items():
        if re.search(used, code, re.M):
            assert extras & wanted, f"{page.name} uses {used} but installs {sorted(extras)}"
