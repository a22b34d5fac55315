"""A mkdocs hook: the site's pages link to the repository's files as GitHub shows them.

The guides link to files outside docs/ by their place in the repository (``../README.md``,
``../benchmarks/README.md``, an image under benchmarks/). The site publishes each file so
linked: the README as the home page (``index.md``), any other under ``repository/`` (a
Markdown file as a page out of the nav, whose own links are followed the same way), and
rewrites the links to point there. A link to a file that does not exist points where the
file would be published, so the strict build reports it.
"""

from __future__ import annotations

import pathlib
import posixpath
import re
from typing import Any

from mkdocs.structure.files import File, InclusionLevel

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTSIDE = "repository/"
_LINK = re.compile(r"(\]\()([^)\s#]+)")  # a Markdown link's or image's target, before any #


def _repository_path(src_uri: str) -> str:
    """The path in the repository of the site file ``src_uri``."""
    if src_uri == "index.md":
        return "README.md"
    return src_uri[len(OUTSIDE):] if src_uri.startswith(OUTSIDE) else "docs/" + src_uri


def _site_path(path: str) -> str:
    """Where the site publishes the repository file ``path``."""
    if path == "README.md":
        return "index.md"
    return path[len("docs/"):] if path.startswith("docs/") else OUTSIDE + path


def _targets(src_uri: str, text: str) -> list[str]:
    """The repository paths that the relative links of ``text`` (the file ``src_uri``) name."""
    where = posixpath.dirname(_repository_path(src_uri))
    return [posixpath.normpath(posixpath.join(where, t)) for _, t in _LINK.findall(text)
            if "://" not in t and not t.startswith(("/", "mailto:"))]


def _publish(files: Any, config: Any, path: str) -> File | None:
    """Add the repository file ``path`` to the site, unless it is there or does not exist."""
    src_uri = _site_path(path)
    if files.get_file_from_path(src_uri) is not None or not (ROOT / path).is_file():
        return None
    inclusion = InclusionLevel.UNDEFINED if src_uri == "index.md" else InclusionLevel.NOT_IN_NAV
    file = File.generated(config, src_uri, abs_src_path=str(ROOT / path), inclusion=inclusion)
    files.append(file)
    return file


def on_files(files: Any, config: Any) -> Any:
    _publish(files, config, "README.md")
    pages = [f for f in files if f.src_uri.endswith(".md")]
    while pages:
        page = pages.pop()
        text = pathlib.Path(page.abs_src_path).read_text(encoding="utf-8")
        for path in _targets(page.src_uri, text):
            added = _publish(files, config, path)
            if added is not None and path.endswith(".md"):
                pages.append(added)
    return files


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    src_uri = page.file.src_uri
    here = posixpath.dirname(src_uri) or "."

    def relink(match: re.Match) -> str:
        targets = _targets(src_uri, match.group(0))
        if not targets or targets[0].startswith("../"):  # a URL, or outside the repository
            return match.group(0)
        return match.group(1) + posixpath.relpath(_site_path(targets[0]), here)

    return _LINK.sub(relink, markdown)
