"""uvicorn's h11 HTTP protocol with two guards against slow clients.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but
a connection that trickles its request headers (slowloris) is never closed, and
each one holds a file descriptor. ``guarded_http(timeout, max_pending)`` returns
a subclass of uvicorn's ``H11Protocol`` that:

* closes a connection whose request headers have not all arrived within
  ``timeout`` seconds of its first byte (or of connecting), and
* keeps at most ``max_pending`` such connections (headers incomplete) open at
  once: beyond that, the one waiting longest is closed. Twilio's requests send
  their headers in one go, so they get through while slow clients churn.

Once a request's headers are in, the route's own limits apply (webhook bodies:
size and time; the media stream: the ``start`` deadline and the call limit).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..logs import log_event

__all__ = ["guarded_http"]

log = logging.getLogger("telephony.server")


class _Guard:
    """What the connections of one server share: the pending ones, oldest first."""

    def __init__(self, timeout: float, max_pending: int) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self.pending: dict[Any, None] = {}
        self.closed_slow = 0
        self.evicted = 0

    def closed(self, kind: str) -> None:
        """Count a closed slow connection; log the first and every 100th of each kind."""
        if kind == "timeout":
            self.closed_slow += 1
            n = self.closed_slow
        else:
            self.evicted += 1
            n = self.evicted
        if n == 1 or n % 100 == 0:
            log_event(
                log,
                "http.slow_client_closed",
                logging.WARNING,
                reason=kind,
                count=n,
                header_timeout_s=self.timeout,
                max_pending=self.max_pending,
            )


def guarded_http(timeout: float, max_pending: int) -> type[H11Protocol]:
    guard = _Guard(timeout, max_pending)

    class GuardedH11Protocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.get_protocol() is not self or self.conn.their_state is not h11.IDLE:
                self._headers_in()  # a request (or a WebSocket upgrade) is under way
            elif self._timer is None:
                self._await_headers()  # a keep-alive connection's next request is starting

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_in()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            pending = guard.pending
            while len(pending) >= guard.max_pending:
                oldest = next(iter(pending))
                oldest._headers_in()
                oldest.transport.close()
                guard.closed("evicted")
            pending[self] = None
            self._timer = self.loop.call_later(guard.timeout, self._too_slow)

        def _headers_in(self) -> None:
            guard.pending.pop(self, None)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if self.conn.their_state is h11.IDLE and self.transport.get_protocol() is self:
                self._headers_in()
                self.transport.close()
                guard.closed("timeout")

    GuardedH11Protocol.guard = guard  # type: ignore[attr-defined]
    return GuardedH11Protocol
