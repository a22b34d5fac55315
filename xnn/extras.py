"""How to install an optional part of xnn: the one place that spells the install command.

xnn is published as the distribution ``xnn-mlp`` (the name ``xnn`` on PyPI belongs to an
unrelated project); the import name stays ``xnn``.
"""

from __future__ import annotations

DISTRIBUTION = "xnn-mlp"


def install_hint(extra: str) -> str:
    """The pip command that installs xnn's optional ``extra`` (e.g. 'plot', 'cuda12', 'torch'),
    from PyPI and from a clone of the repository."""
    return (f'pip install "{DISTRIBUTION}[{extra}]" (in a clone of the repository: '
            f'pip install -e ".[{extra}]")')
