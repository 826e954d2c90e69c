"""Every Realtime connection opened for one call, until its close has finished.

A call may hold more than one for a moment (a reconnect or rollover replaces
the live one; a connection may finish opening after the call ended). Each is
kept here from the moment the connector returns it, so the call's shutdown
closes it (politely within 2 s, else dropped) whatever was cancelled when: none
outlives the call. Those in use are counted open in the call's report, and
counted closed as soon as their close begins.
"""

from __future__ import annotations

import asyncio

from ..observe import CallReport
from .client import RealtimeConnection

__all__ = ["CallConnections", "quiet_close"]

#: a polite close gets this long before the socket is dropped
CLOSE_TIMEOUT_S = 2.0


class CallConnections:
    __slots__ = ("_counted", "_open", "_report")

    def __init__(self, report: CallReport) -> None:
        self._report = report
        #: every connection the connector returned, until its close finished
        self._open: set[RealtimeConnection] = set()
        #: those counted open in the report (counted closed when their close begins)
        self._counted: set[RealtimeConnection] = set()

    def add(self, conn: RealtimeConnection) -> None:
        """The connector returned it: from here the call's shutdown closes it."""
        self._open.add(conn)

    def count(self, conn: RealtimeConnection, reconnect: bool) -> None:
        """It is the call's live session now."""
        self._counted.add(conn)
        self._report.realtime_opened(reconnect)

    def uncount(self, conn: RealtimeConnection) -> None:
        if conn in self._counted:
            self._counted.discard(conn)
            self._report.realtime_closed()

    async def close(self, conn: RealtimeConnection) -> None:
        self.uncount(conn)
        try:
            await quiet_close(conn)
        finally:
            self._open.discard(conn)

    async def close_all(self) -> None:
        for conn in list(self._open):  # opened while the call ended, or released
            await self.close(conn)

    def abort_all(self) -> None:
        """Whatever is left (the shutdown was cancelled): dropped at once."""
        for conn in list(self._open):
            self.uncount(conn)
            conn.abort()
        self._open.clear()


async def quiet_close(conn: RealtimeConnection) -> None:
    """Close politely within 2 s; on failure or cancellation, drop the socket."""
    try:
        await asyncio.wait_for(conn.close(), CLOSE_TIMEOUT_S)
    except BaseException as exc:
        conn.abort()
        if not isinstance(exc, Exception):
            raise
