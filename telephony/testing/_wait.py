"""The one waiting primitive the fakes share: no sleeps, a timeout, and a clear
failure if the connection closes first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    changed: asyncio.Condition, ready: Callable[[], T | None], closed: asyncio.Event, what: str, timeout: float
) -> T:
    """Wait (on ``changed``) until ``ready()`` returns something other than None."""

    async def wait() -> T:
        async with changed:
            while (value := ready()) is None:
                if closed.is_set():
                    raise AssertionError(f"connection closed before {what}")
                await changed.wait()
            return value

    try:
        return await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise TimeoutError(f"waited {timeout:g} s for {what}") from None
