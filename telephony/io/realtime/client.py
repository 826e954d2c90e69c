"""The Realtime WebSocket client: the ``websockets`` library's sans-I/O protocol
on a plain asyncio transport.

``RealtimeConnector`` is what the app is handed: ``await connector()`` returns an
open ``RealtimeConnection``. The bridge is callback driven, so the connection is
too: ``start(on_message, on_closed)`` hands each server message (bytes) to the
call as soon as its frame is parsed, and ``send`` writes a client event to the
socket at once (no task, lock or queue per message: 50 appends a second per
call). Framing, masking, pings, close and size limits are ``websockets``'
(an ordinary text frame is written by ``ws_frames.text_frame``: the same bytes
in fewer steps).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from typing import Protocol

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState, InvalidStatus, InvalidURI, ProxyError
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from ...errors import RealtimeConnectError
from ..ws_frames import FrameWalk, MaskKeys, can_send_fast, sendable, size_limit, text_frame, whole_frames
from .proxy import open_through, proxy_failure, proxy_for

__all__ = [
    "MAX_EVENT_BYTES",
    "RealtimeConnectError",
    "RealtimeConnection",
    "RealtimeConnector",
    "WebsocketsConnection",
    "WebsocketsConnector",
]

#: The API allows 15 MiB per client event; server events are far smaller in practice.
MAX_EVENT_BYTES = 16 * 1024 * 1024
#: A server that stops reading: after this many unsent bytes (~80 s of audio) the session is dropped.
MAX_WRITE_BUFFER = 8 * 1024 * 1024

#: A message's payload as websockets' parser hands it over (bytes in practice).
_Data = bytes | bytearray | memoryview
OnMessage = Callable[[_Data], None]
OnClosed = Callable[[str], None]


class RealtimeConnection(Protocol):
    def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        """Begin delivering messages (those that arrived before are delivered now).
        ``on_closed(reason)`` is called once if the connection ends other than by ``close()``."""

    def send(self, text: str | bytes) -> None:
        """Send one client event now; a no-op once the connection is closing."""

    async def close(self) -> None: ...

    def abort(self) -> None:
        """Drop the socket now, without the close handshake (the close was cancelled)."""


class RealtimeConnector(Protocol):
    async def __call__(self) -> RealtimeConnection: ...


class WebsocketsConnection(asyncio.Protocol):
    """One Realtime WebSocket: ``websockets.ClientProtocol`` driven by asyncio callbacks."""

    def __init__(
        self,
        proto: ClientProtocol,
        ping_interval: float | None,
        ping_timeout: float | None,
        max_write_buffer: int = MAX_WRITE_BUFFER,
    ) -> None:
        self._proto = proto
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._on_message: OnMessage | None = None
        self._on_closed: OnClosed | None = None
        self._early: list[_Data] = []
        self._fragments: list[_Data] = []
        self._closing = False  # close() called: on_closed is not reported
        self._reason: str | None = None
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._max_write_buffer = max_write_buffer
        self._keys = MaskKeys()
        self._fast_send = can_send_fast(proto)
        # Reading: whole data frames skip websockets' parser once a FrameWalk knows
        # where frames start (from the end of the handshake's response on).
        self._walk: FrameWalk | None = None
        self._before_open: bytearray | None = bytearray() if hasattr(proto, "current_size") else None
        self._limit = size_limit(proto)

    # --- the bridge's side ---------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages received before ``start()``, which ``start()`` delivers first."""
        return len(self._early)

    @property
    def closing(self) -> bool:
        """The socket is closing or closed: nothing more will be sent."""
        transport = self._transport
        return transport is None or transport.is_closing()

    def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        self._on_message, self._on_closed = on_message, on_closed
        early, self._early = self._early, []
        for data in early:
            if self._on_message is None:
                break
            on_message(data)
        if self._lost.done() and not self._closing:
            self._report_closed()

    def send(self, text: str | bytes) -> None:
        transport = self._transport
        if transport is None or self._closing or transport.is_closing():
            return
        proto = self._proto
        data = text.encode() if isinstance(text, str) else text
        if self._fast_send and sendable(proto):
            transport.write(text_frame(data, self._keys))
        else:
            try:
                proto.send_text(data)
            except InvalidState:  # the server's close frame arrived: the close is reported
                return
            out = proto.data_to_send()
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if transport.get_write_buffer_size() > self._max_write_buffer:
            self._fail("the Realtime API stopped reading (write buffer full)")

    async def close(self) -> None:
        """Close politely (close frame, wait up to 1 s for the server), then drop the socket."""
        self._closing = True
        self._stop_keepalive()
        transport = self._transport
        if transport is None or self._lost.done():
            return
        if not transport.is_closing():
            try:
                self._proto.send_close(1000)
                self._write(self._proto.data_to_send())
            except InvalidState:
                pass
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), 1.0)
        except TimeoutError:
            transport.abort()

    def abort(self) -> None:
        self._closing = True
        self._stop_keepalive()
        if self._transport is not None:
            self._transport.abort()

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        proto = self._proto
        walk = self._walk
        if walk is not None:
            if walk.aligned and proto.state is State.OPEN and proto.current_size is None:
                used = whole_frames(data, False, self._limit, self._deliver, self._still_open)
                if used == len(data):
                    return
                data = data[used:]
            walk.skip(data)
        elif self._before_open is not None:
            self._before_open += data
        proto.receive_data(data)
        for event in proto.events_received():
            if type(event) is Frame:
                self._on_frame(event)
            elif isinstance(event, Response):
                if not self._handshake.done():
                    self._handshake.set_result(None)
                self._walk_from_response()
        out = proto.data_to_send()
        if out:
            self._write(out)  # pong, close reply, or the close after a protocol error
        if proto.parser_exc is not None and self._reason is None:
            self._reason = f"protocol error ({type(proto.parser_exc).__name__}: {proto.parser_exc})"
            self._transport.close()  # type: ignore[union-attr]
        elif not self._handshake.done() and proto.handshake_exc is not None:
            self._handshake.set_result(None)

    def _still_open(self) -> bool:
        return self._proto.state is State.OPEN

    def _walk_from_response(self) -> None:
        """The handshake's response has been parsed: frames start right after its
        blank line, in the bytes received so far."""
        before, self._before_open = self._before_open, None
        end = -1 if before is None else before.find(b"\r\n\r\n")
        if before is None or end < 0 or self._proto.state is not State.OPEN:
            return  # (a refused upgrade, or websockets changed: its parser does it all)
        walk = FrameWalk()
        walk.skip(bytes(before[end + 4 :]))
        self._walk = walk

    def eof_received(self) -> bool | None:
        self._proto.receive_eof()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_keepalive()
        if self._reason is None:
            close = self._proto.close_rcvd
            if close is not None:
                self._reason = f"closed by the server (code {close.code}{', ' + close.reason if close.reason else ''})"
            elif exc is not None:
                self._reason = f"connection lost ({type(exc).__name__})"
            else:
                self._reason = "connection lost (no close frame)"
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionError(self._reason))
            self._handshake.exception()  # retrieved: connect() reports it
        if not self._lost.done():
            self._lost.set_result(None)
        if not self._closing and self._on_closed is not None:
            self._report_closed()

    # --- internals ---------------------------------------------------------------------

    def _report_closed(self) -> None:
        callback, self._on_closed, self._on_message = self._on_closed, None, None
        if callback is not None:
            callback(self._reason or "connection lost")

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._deliver(frame.data)
            else:
                self._fragments = [frame.data]
        elif opcode is Opcode.CONT:
            self._fragments.append(frame.data)
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), []
                self._deliver(data)
        elif opcode is Opcode.PONG:
            if self._ping_payload is not None and bytes(frame.data) == self._ping_payload:
                self._ping_payload = None
                if self._pong_timer is not None:
                    self._pong_timer.cancel()
                    self._pong_timer = None
                self._schedule_ping()
        elif opcode is Opcode.CLOSE:
            # websockets queued the reply; the server closes the TCP connection next.
            if self._transport is not None:
                self._loop.call_later(1.0, self._transport.abort)  # unless it does not
        # PING: websockets queued the pong, written by data_received.

    def _deliver(self, data: _Data) -> None:
        on_message = self._on_message
        if on_message is None:
            if not self._closing:
                self._early.append(data)
            return
        on_message(data)

    def _write(self, chunks: list[bytes]) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for chunk in chunks:
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():  # websockets signals "half-close now"
                transport.write_eof()

    def _fail(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
        if self._transport is not None:
            self._transport.abort()

    # --- keepalive: a ping every ping_interval; no pong within ping_timeout ends it ---

    def _schedule_ping(self) -> None:
        if self._ping_interval and not self._closing and not self._lost.done():
            self._ping_timer = self._loop.call_later(self._ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self._transport is None or self._transport.is_closing():
            return
        self._ping_payload = os.urandom(4)
        try:
            self._proto.send_ping(self._ping_payload)
        except InvalidState:
            return
        self._write(self._proto.data_to_send())
        if self._ping_timeout:
            self._pong_timer = self._loop.call_later(self._ping_timeout, self._fail, "keepalive ping timeout")
        else:
            self._schedule_ping()

    def _stop_keepalive(self) -> None:
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = None


class WebsocketsConnector:
    """Opens ``wss://.../realtime?model=...`` with ``Authorization: Bearer``.

    GA protocol only: no ``OpenAI-Beta`` header. No per-message compression
    (base64 audio does not compress, and it costs CPU per frame).
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        open_timeout: float = 10.0,
        *,
        max_size: int = MAX_EVENT_BYTES,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_write_buffer: int = MAX_WRITE_BUFFER,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self.open_timeout = open_timeout
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_write_buffer = max_write_buffer
        self._ssl = ssl_context  # made once when not given: loading the CA store takes milliseconds

    async def __call__(self) -> WebsocketsConnection:
        try:
            uri = parse_uri(self.url)
        except InvalidURI:
            raise RealtimeConnectError(f"invalid Realtime URL {self.url!r}", retryable=False) from None
        proto = ClientProtocol(uri, max_size=self.max_size, logger=logging.getLogger("telephony.realtime.ws"))
        request = proto.connect()
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        request.headers["User-Agent"] = "telephony"
        conn = WebsocketsConnection(proto, self.ping_interval, self.ping_timeout, self.max_write_buffer)
        context = self._ssl_context() if uri.secure else None
        proxy = proxy_for(uri)
        try:
            async with asyncio.timeout(self.open_timeout):
                if proxy is None:
                    await asyncio.get_running_loop().create_connection(
                        lambda: conn, uri.host, uri.port, ssl=context, server_hostname=uri.host if context else None
                    )
                else:
                    proxy_context = self._ssl_context() if proxy.scheme == "https" else None
                    await open_through(proxy, uri, conn, context, proxy_context)
                proto.send_request(request)
                conn._write(proto.data_to_send())
                await conn._handshake
        except ProxyError as exc:
            raise RealtimeConnectError(
                f"cannot reach the Realtime API through the proxy: {proxy_failure(exc)}"
            ) from None
        except (OSError, TimeoutError, ConnectionError) as exc:
            conn.abort()
            raise RealtimeConnectError(f"cannot reach the Realtime API at {self.url}: {type(exc).__name__}") from None
        except BaseException:  # cancelled mid-handshake (the caller hung up): the server may open it anyway
            conn.abort()
            raise
        failure = proto.handshake_exc
        if failure is not None:
            conn._closing = True
            if conn._transport is not None:
                conn._transport.abort()
            if isinstance(failure, InvalidStatus):
                status = failure.response.status_code
                retryable = status >= 500 or status in (408, 429)
                raise RealtimeConnectError(f"Realtime API refused the connection: HTTP {status}", retryable) from None
            raise RealtimeConnectError(f"Realtime handshake failed: {type(failure).__name__}") from None
        conn._schedule_ping()
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl
