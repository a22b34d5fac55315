"""How to install an optional part of xnn: the one place that spells the install command."""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The pip command that installs xnn's optional ``extra`` (e.g. 'plot', 'cuda12', 'onnx')."""
    return f'pip install "xnn[{extra}]"'
