"""A griffe extension for the API reference: xnn's docstrings write a parameter and its
description on one line (``lr: learning rate``) under ``Parameters``; numpy style, which
mkdocstrings parses, puts the description on the next, indented line. This moves it there
before parsing, so the reference shows every description. It also writes Sphinx's roles
(``:func:`build` ``), which Markdown would show as they are, as code."""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`")
_HEADER = re.compile(r"^(\s*)Parameters\n\1-{3,}\n", re.M)
_INLINE = re.compile(r"^(?P<indent>[ \t]*)(?P<names>[A-Za-z_]\w*(?:, [A-Za-z_]\w*)*): "
                     r"(?P<text>\S.*)$")


def split_inline_parameters(text: str) -> str:
    """``text`` with each ``name: description`` line of its Parameters section split in two."""
    match = _HEADER.search(text)
    if match is None:
        return text
    head, body = text[:match.end()], text[match.end():].split("\n")
    indent = match.group(1)
    out = []
    for i, line in enumerate(body):
        if not line.strip():  # the section ends at its first blank line
            out.extend(body[i:])
            break
        found = _INLINE.match(line)
        if found and found.group("indent") == indent:
            out += [f"{indent}{found.group('names')}:", f"{indent}    {found.group('text')}"]
        else:
            out.append(line)
    return head + "\n".join(out)


class InlineParameters(griffe.Extension):
    """Rewrites each docstring's one-line parameter descriptions (see the module docstring)."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _ROLE.sub(r"`\1`", obj.docstring.value)
            obj.docstring.value = split_inline_parameters(text)
