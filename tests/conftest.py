"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["direct", "asgi"])
def io(request: pytest.FixtureRequest) -> str:
    """The media stream's I/O path (see ``tests.harness.IO_MODES``)."""
    return request.param
