"""Headless Chromium for the console's tests: the distribution's browser
(/usr/bin/chromium, ``apt-get install chromium``) driven by Playwright's Python
driver; nothing is downloaded at test time. Without the browser (or the driver)
the test is skipped with the reason, except under CI=true, where it fails."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TELEPHONY_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Screenshots kept by the browser tests (ignored by git).
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def chromium(extra_args: list[str] = ()) -> AsyncIterator[Any]:  # type: ignore[assignment]
    """A headless Chromium browser (Playwright's async ``Browser``)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra_args], headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """Keep a full-page PNG under the test's tmp dir and tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    shutil.copyfile(path, tmp_path / path.name)
    return path
