"""The Realtime WebSocket client: a thin adapter over the ``websockets`` library.

``RealtimeConnector`` is what the app is handed: ``await connector()`` returns an
open ``RealtimeConnection``. Production uses ``WebsocketsConnector``; tests can
pass anything with the same three methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

__all__ = ["RealtimeConnection", "RealtimeConnector", "WebsocketsConnector", "RealtimeConnectError"]

#: The API allows 15 MiB per event; server events are far smaller in practice.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class RealtimeConnectError(Exception):
    """Opening the Realtime session failed (the message is safe to log).
    ``retryable`` is False when trying again cannot help (bad key, bad URL)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class RealtimeConnection(Protocol):
    async def send(self, text: str) -> None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...

    async def close(self) -> None: ...


class RealtimeConnector(Protocol):
    async def __call__(self) -> RealtimeConnection: ...


class WebsocketsConnector:
    """Opens ``wss://.../realtime?model=...`` with ``Authorization: Bearer``.

    GA protocol only: no ``OpenAI-Beta`` header. No per-message compression
    (base64 audio does not compress, and it costs CPU per frame).
    """

    def __init__(self, url: str, api_key: str, open_timeout: float = 10.0) -> None:
        self.url = url
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.open_timeout = open_timeout

    async def __call__(self) -> ClientConnection:
        try:
            return await connect(
                self.url,
                additional_headers=self._headers,
                max_size=MAX_EVENT_BYTES,
                compression=None,
                open_timeout=self.open_timeout,
                close_timeout=1.0,
                ping_interval=20,
                ping_timeout=20,
                user_agent_header="telephony",
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            retryable = status >= 500 or status in (408, 429)
            raise RealtimeConnectError(f"Realtime API refused the connection: HTTP {status}", retryable) from None
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise RealtimeConnectError(f"cannot reach the Realtime API at {self.url}: {type(exc).__name__}") from None
