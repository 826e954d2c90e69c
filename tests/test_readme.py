"""The README reads in a new user's order, and its links lead somewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_quick_start_and_the_twilio_set_up_come_first():
    sections = re.findall(r"(?m)^## (.+)$", (ROOT / "README.md").read_text())
    assert sections[:2] == ["Quick start", "Point a Twilio number at it"]
    assert sections.index("Benchmarks") > sections.index("Deploying")


def test_relative_links_and_anchors_resolve():
    for doc in (ROOT / "README.md", ROOT / "docs" / "benchmarks.md"):
        text = doc.read_text()
        anchors = {_anchor(t) for t in re.findall(r"(?m)^#+ (.+)$", text)}
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            if target.startswith("#"):
                assert target[1:] in anchors, (doc.name, target)
            else:
                assert (doc.parent / target.split("#")[0]).exists(), (doc.name, target)


def test_the_docs_site_builds_strictly(tmp_path):
    """mkdocs-material, offline: any broken link or unknown page fails the build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    home = (tmp_path / "site" / "index.html").read_text()
    assert "Point a Twilio number at it" in home and "console-call.png" in home
    assert (tmp_path / "site" / "benchmarks" / "index.html").exists()
