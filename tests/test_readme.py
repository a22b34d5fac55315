"""The README's commands are the ones CI runs, and its example code runs."""

from __future__ import annotations

import pathlib
import re

import numpy as np

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
