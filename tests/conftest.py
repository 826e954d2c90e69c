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
import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from telephony.testing.fake_twilio_rest import FakeTwilioRest

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


@pytest.fixture(scope="session")
def postgres_server() -> Generator[str, None, None]:
    """A PostgreSQL server for the session (see ``tests.postgres``); its admin URL.
    Skipped where PostgreSQL is not installed, except in CI (``.ci/run`` installs
    it, so there a missing server is a failure)."""
    from tests.postgres import find_binaries, throwaway_cluster

    bin_dir = find_binaries()
    if bin_dir is None:
        message = "PostgreSQL is not installed (apt-get install postgresql; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with throwaway_cluster(bin_dir) as cluster:
        yield cluster.url


@pytest.fixture(scope="session")
def postgres_bin(postgres_server: str) -> Path:
    """The PostgreSQL binaries (for a test that needs a server of its own)."""
    from tests.postgres import find_binaries

    found = find_binaries()
    assert found is not None
    return found


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new, empty database on the session's server, for one test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return postgres_server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def rest_fake() -> Iterator[FakeTwilioRest]:
    """Twilio's REST API, faked on a loopback port (account ``harness.ACCOUNT``)."""
    from tests.harness import ACCOUNT, TOKEN

    with FakeTwilioRest(account_sid=ACCOUNT, auth_token=TOKEN) as fake:
        yield fake
