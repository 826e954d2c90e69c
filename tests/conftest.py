"""Shared fixtures, and how async tests run.

An async test is a plain ``async def test_...`` in a module marked
``pytestmark = pytest.mark.anyio``: anyio's pytest plugin runs it, and its async
fixtures, in one task of a fresh asyncio event loop. Each async test is bounded
by a timeout, 30 s unless marked ``@pytest.mark.async_timeout(seconds)``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Generator
from typing import Any

import pytest

ASYNC_TEST_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The bridge is asyncio code: run async tests on asyncio only."""
    return "asyncio"


@pytest.fixture(params=["direct", "asgi"])
def io(request: pytest.FixtureRequest) -> str:
    """The media stream's I/O path (see ``tests.harness.IO_MODES``)."""
    return request.param


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    """Wrap each async test in its timeout before the anyio plugin runs it."""
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return (yield)
    marker = pyfuncitem.get_closest_marker("async_timeout")
    limit = float(marker.args[0]) if marker else ASYNC_TEST_TIMEOUT

    @functools.wraps(test)
    async def bounded(**kwargs: Any) -> Any:
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                return await test(**kwargs)
        except TimeoutError as exc:
            if deadline.expired():
                raise TimeoutError(f"{pyfuncitem.name} did not finish within {limit:g} s") from exc
            raise

    pyfuncitem.obj = bounded
    try:
        return (yield)
    finally:
        pyfuncitem.obj = test
