"""MkDocs hook: the README is the site's home page (index.md), with its links into
``docs/`` made relative to the docs folder and links to the repository's other files
(outside the site) left as their text in code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent
#: ``[text](path)`` to a repository file outside docs/ (not a URL, anchor or docs/ file)
_REPO_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\((?!https?:|#|docs/)([^)\s]+)\)")


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "index.md", content=(ROOT / "README.md").read_text()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if page.file.src_uri == "index.md":
        markdown = _REPO_LINK.sub(lambda m: f"{m.group(1)} (`{m.group(2)}` in the repository)", markdown)
        markdown = markdown.replace("](docs/", "](")
    return markdown
