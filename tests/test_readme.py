"""The README's commands are the ones CI runs, and its example code runs."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, re.S)]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = next(b for b in _bash_blocks() if "pytest" in b)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_install_command_runs_the_xor_example():
    first = _bash_blocks()[0]
    assert 'pip install -e ".[examples]"' in first and first.endswith("python examples/xor.py")


def test_readme_python_example_trains_xor(capsys):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    pred = namespace["xnn"].to_numpy(namespace["model"](namespace["X"]))
    np.testing.assert_allclose(pred[:, 0], [0, 1, 1, 0], atol=0.1)


def test_getting_started_lists_exactly_the_dependencies_pyproject_installs():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> list[str]:  # "cupy-cuda12x[ctk]>=14" -> cupy-cuda12x
        return sorted(re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements)

    page = (ROOT / "docs" / "getting-started.md").read_text()
    core = re.search(r"`xnn` itself needs only (.*?)\.", page, re.S).group(1)
    assert sorted(re.findall(r"`([^`]+)`", core)) == names(project["dependencies"])
    table = {}
    for row in re.findall(r"^\| `(.+?)` \| (.+?) \|", page, re.M):
        extras, packages = row[0].split("` / `"), row[1].split(" / ")
        for extra, listed in zip(extras, packages if len(extras) > 1 else [row[1]]):
            table[extra] = sorted(p.strip() for p in re.sub(r"\(.*?\)", "", listed).split(","))
    expected = {extra: names(reqs) for extra, reqs in project["optional-dependencies"].items()}
    assert table == expected
