"""Writing to Twilio's media-stream socket.

Straight to the socket when the server offers the direct channel (see
``direct_ws``): a synchronous write per message, no task switch. Under any
other ASGI server, through ASGI ``send`` by one writer task, in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from ..direct_ws import EXTENSION as DIRECT

__all__ = ["MAX_TWILIO_BUFFER", "MediaSocket"]

#: Unsent bytes on the Twilio socket before the call is given up (Twilio stopped reading).
MAX_TWILIO_BUFFER = 4 * 1024 * 1024


class MediaSocket:
    def __init__(self, ws: WebSocket, loop: asyncio.AbstractEventLoop) -> None:
        self.ws = ws
        self._loop = loop
        self._channel: Any = ws.scope.get("extensions", {}).get(DIRECT)
        #: write one message (str): synchronous either way
        self.send: Callable[[str], Any] = self._channel.send_text if self._channel else self._queue_send
        self._send_texts: Callable[[Sequence[str]], Any] | None = getattr(self._channel, "send_texts", None)
        self._queue: deque[str] = deque()
        self._writer: asyncio.Task[None] | None = None

    def send_all(self, messages: Sequence[str]) -> None:
        """Write several messages, in order (in one write when the channel can)."""
        if self._send_texts is not None:
            self._send_texts(messages)
        else:
            send = self.send
            for text in messages:
                send(text)

    @property
    def direct(self) -> bool:
        """Messages are read and written through the direct channel."""
        return self._channel is not None

    def attach(self, on_message: Callable[[str | bytes], None]) -> None:
        """Direct channel only: deliver each message to ``on_message`` from the socket's reader."""
        if self._channel is not None:
            self._channel.attach(on_message)

    def detach(self) -> None:
        if self._channel is not None:
            self._channel.detach()

    def overflowing(self) -> bool:
        """More than ``MAX_TWILIO_BUFFER`` unsent: the other end stopped reading."""
        channel = self._channel
        return channel is not None and channel.buffered() > MAX_TWILIO_BUFFER

    def _queue_send(self, text: str) -> bool:
        """Without the direct channel: queue for the writer task (ASGI send is async)."""
        self._queue.append(text)
        if self._writer is None:
            self._writer = self._loop.create_task(self._write())
        return True

    async def _write(self) -> None:
        ws, queue = self.ws, self._queue
        try:
            while queue:
                text = queue.popleft()
                if ws.application_state is not WebSocketState.CONNECTED:
                    queue.clear()
                    break
                await ws.send_text(text)
        except Exception:  # the socket went away under us: the reader reports it
            queue.clear()
        finally:
            self._writer = None

    async def close(self) -> None:
        """Close after what was queued has left."""
        writer = self._writer
        if writer is not None:
            await asyncio.shield(writer)
        if self.ws.application_state is WebSocketState.CONNECTED:
            try:
                await self.ws.close(1000)
            except Exception:
                pass
