"""A uvicorn WebSocket protocol with one ASGI extension: direct message delivery.

Plain ASGI hands every WebSocket message to the app through a queue and a task
switch, pausing and resuming the socket's reader around each one (two
``epoll_ctl`` calls). A Twilio media stream is 50 messages a second per call,
and that machinery cost more CPU than everything the bridge does with the audio
(see ``benchmarks/load.py``).

``DirectWebSocketProtocol`` is uvicorn's own ``websockets-sansio`` protocol
(handshake, pings, close, limits, shutdown: all uvicorn's) plus the extension
``"telephony.direct"`` in ``scope["extensions"]``. An app that finds it may call
``channel.attach(on_message)``: from then on each complete message (text or
binary, as bytes) is passed to ``on_message`` straight from ``data_received``,
and ``channel.send_text`` writes a text message to the socket at once. The
disconnect still arrives through ``receive()``. Apps that ignore the extension
see plain ASGI, and the app works unchanged on servers without it.

Once attached, the common case skips websockets' frame parser too: a read that
holds whole, unfragmented, masked text frames (a Twilio message is one frame,
one read) is unmasked and delivered in place (``FrameWalk`` explains how it
knows where frames start). Anything else (a control frame, a fragment, a frame
cut across reads, one over the size limit or malformed) goes to websockets
exactly as before, from a frame boundary, so its checks and errors are
unchanged.

The subclass relies on uvicorn internals (private attributes and hooks). The
first ``ws_protocol()`` call checks every one of them on the installed uvicorn;
if any is missing, uvicorn's stock protocol is used instead (plain ASGI, same
behaviour, more CPU) and one WARNING names what was missing.
"""

from __future__ import annotations

import dis
import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from websockets.exceptions import InvalidState
from websockets.protocol import State

from ..logs import log_event
from .ws_frames import FrameWalk, can_send_fast, sendable, size_limit, text_frame, whole_frames

__all__ = ["EXTENSION", "STOCK", "DirectChannel", "missing_internals", "ws_protocol"]

log = logging.getLogger("telephony.server")

EXTENSION = "telephony.direct"
#: Fragments of one message, and bytes queued for a peer that does not read (pongs),
#: at most (``uvicorn_config`` sets them from the settings on the uvicorn Config).
DEFAULT_MAX_FRAGMENTS = 64
DEFAULT_MAX_UNSENT = 4 * 1024 * 1024
#: uvicorn's protocol that ours extends, and the fallback when it cannot be extended.
STOCK = "websockets-sansio"

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # an older uvicorn: plain ASGI it is
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

# Everything the subclass and DirectChannel touch on uvicorn's class.
#: Methods we override (and call through super()).
_METHODS = ("handle_connect", "send_receive_event_to_app", "handle_cont", "handle_ping")
#: Frame handlers that must hand each complete message to send_receive_event_to_app
#: (else our override never runs and messages would silently queue for receive()).
_CALLERS = ("handle_text", "handle_bytes", "handle_cont")
#: Instance attributes we read or write: the ASGI scope (set by handle_connect), the
#: close flag, websockets' ServerProtocol and the asyncio transport.
_ATTRIBUTES = ("scope", "close_sent", "conn", "transport")
#: The current message's data, by uvicorn version: a list of frames (0.50+) or one
#: bytes buffer (0.35 to 0.49). One of them must be there.
_BUFFERS = ("frames", "bytes")


class DirectChannel:
    """What the app gets in ``scope["extensions"]["telephony.direct"]``."""

    __slots__ = ("_fast_send", "_proto")

    def __init__(self, proto: Any) -> None:
        self._proto = proto
        self._fast_send = can_send_fast(proto.conn)

    def attach(self, on_message: Callable[[bytes], None]) -> None:
        """Deliver each later message to ``on_message`` instead of ``receive()``."""
        self._proto._direct = on_message

    def detach(self) -> None:
        self._proto._direct = None

    def send_text(self, text: str) -> bool:
        """Write one text message now. False if the socket is closing or closed."""
        proto = self._proto
        if proto.close_sent or proto.transport.is_closing():
            return False
        conn = proto.conn
        if self._fast_send and sendable(conn):
            proto.transport.write(text_frame(text.encode()))
            return True
        try:
            conn.send_text(text.encode())
        except InvalidState:  # the peer's close frame arrived first
            return False
        out = conn.data_to_send()
        proto.transport.write(out[0] if len(out) == 1 else b"".join(out))
        return True

    def send_texts(self, texts: Sequence[str]) -> bool:
        """Write several text messages in one write (one system call: a media
        message and its mark, for instance). False if the socket is closing or closed."""
        proto = self._proto
        if proto.close_sent or proto.transport.is_closing():
            return False
        if len(texts) > 1 and self._fast_send and sendable(proto.conn):
            proto.transport.write(b"".join([text_frame(text.encode()) for text in texts]))
            return True
        sent = False
        for text in texts:
            sent = self.send_text(text)
        return sent

    def buffered(self) -> int:
        """Bytes written but not yet accepted by the kernel (a stuck peer grows this)."""
        size: int = self._proto.transport.get_write_buffer_size()
        return size


# --- the guard -----------------------------------------------------------------------
#
# Instance attributes do not exist on the class, so they are found in uvicorn's
# compiled methods: every ``self.<name> = ...`` is a STORE_ATTR instruction naming
# the attribute. Reading bytecode rather than the alternatives because
#   * inspecting the source fails on installs that ship only .pyc files;
#   * a throwaway instance needs a loaded uvicorn Config (it imports the app and
#     protocol classes, may set up logging, depends on the constructor's signature),
#     and still would not show ``scope``, which only handle_connect sets.
# The bytecode is always there, costs nothing to read, and covers every method.


def _code(value: Any) -> Any:
    func = getattr(value, "__func__", value)  # staticmethod / classmethod
    if callable(func):
        func = inspect.unwrap(func)
    return getattr(func, "__code__", None)


def _stored_attributes(cls: type) -> set[str]:
    """Attribute names assigned anywhere in the methods of ``cls`` and its bases."""
    names: set[str] = set()
    for klass in cls.__mro__[:-1]:  # not object
        for value in vars(klass).values():
            code = _code(value)
            if code is not None:
                names.update(i.argval for i in dis.get_instructions(code) if i.opname == "STORE_ATTR")
    return names


def _buffer(cls: type) -> str | None:
    stored = _stored_attributes(cls)
    return next((name for name in _BUFFERS if name in stored or hasattr(cls, name)), None)


def missing_internals(cls: Any = WebSocketsSansIOProtocol) -> list[str]:
    """What the direct path needs from uvicorn's protocol class that ``cls`` lacks ([] if none)."""
    if cls is None:
        return ["uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol"]
    missing = [f"method {m}" for m in _METHODS if not callable(getattr(cls, m, None))]
    for name in _CALLERS:
        code = _code(getattr(cls, name, None))
        if code is None or "send_receive_event_to_app" not in code.co_names:
            missing.append(f"{name} calling send_receive_event_to_app")
    stored = _stored_attributes(cls)
    missing += [f"attribute {a}" for a in _ATTRIBUTES if a not in stored and not hasattr(cls, a)]
    if _buffer(cls) is None:
        missing.append("attribute " + " or ".join(_BUFFERS))
    return missing


def _direct_protocol(base: type, buffer: str) -> type:
    """uvicorn's protocol plus the extension; ``buffer`` is where uvicorn keeps the message."""

    class DirectWebSocketProtocol(base):
        _direct: Callable[[bytes], None] | None = None
        frames: list[bytes]  # uvicorn >= 0.50 (annotation only: uvicorn sets it)

        # Limits on what a peer's input can make us hold (uvicorn's size limit counts
        # payload bytes only: ten million empty fragments pass it).
        _conts = 0  # continuation frames of the message being received (uvicorn < 0.50)

        def handle_cont(self, event: Any) -> None:
            limit = getattr(self.config, "telephony_max_fragments", DEFAULT_MAX_FRAGMENTS)
            if buffer == "frames":
                if len(self.frames) >= limit:
                    self._refuse(1009, f"message in more than {limit} fragments")
                    return
            else:  # one bytes buffer: count the fragments ourselves
                self._conts += 1
                if self._conts >= limit:
                    self._conts = 0
                    self._refuse(1009, f"message in more than {limit} fragments")
                    return
                if event.fin:
                    self._conts = 0
            super().handle_cont(event)

        def handle_ping(self) -> None:
            super().handle_ping()
            limit = getattr(self.config, "telephony_max_unsent", DEFAULT_MAX_UNSENT)
            if self.transport.get_write_buffer_size() > limit:  # pongs the peer never reads
                log_event(
                    log,
                    "ws.peer_not_reading",
                    logging.WARNING,
                    unsent_bytes=limit,
                    setting="TELEPHONY_MAX_UNSENT_BYTES",
                )
                self.transport.abort()

        def _refuse(self, code: int, reason: str) -> None:
            log_event(log, "ws.refused_message", logging.WARNING, code=code, reason=reason)
            if buffer == "frames":
                self.frames = []
            else:
                self.bytes = b""
            if not getattr(self, "close_sent", False):
                self.close_sent = True
                self.conn.send_close(code, reason)
                self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()

        _walk: FrameWalk | None = None  # None: reads all go to websockets
        _fed = False  # the upgrade request has been fed
        _limit = 0

        def data_received(self, data: bytes) -> None:
            walk = self._walk
            if walk is None:
                super().data_received(data)
                if not self._fed:
                    self._fed = True
                    conn = getattr(self, "conn", None)
                    reader = getattr(conn, "reader", None)
                    if (
                        getattr(self, "scope", None) is not None
                        and hasattr(conn, "current_size")
                        and isinstance(getattr(reader, "buffer", None), bytearray)
                        and not reader.buffer  # type: ignore[union-attr]
                    ):
                        self._walk = FrameWalk()
                        self._limit = size_limit(conn)
                return
            if walk.aligned and self._direct is not None:
                used = self._fast(data)
                if used:
                    if used == len(data):
                        return
                    data = data[used:]
            super().data_received(data)
            walk.skip(data)

        _delivering: Callable[[bytes], None] | None = None  # whom _fast is delivering to

        def _fast(self, data: bytes) -> int:
            """Deliver the whole, unfragmented data frames at the start of ``data``;
            returns how many bytes they took."""
            conn, direct = self.conn, self._direct
            if conn.state is not State.OPEN or conn.current_size is not None or self.close_sent or direct is None:
                return 0
            self._delivering = direct
            return whole_frames(data, True, self._limit, direct, self._still_delivering)

        def _still_delivering(self) -> bool:
            """Unless the app let go or closed: the rest of the read goes the usual way."""
            return self._direct is self._delivering and not self.close_sent and self.conn.state is State.OPEN

        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            scope = getattr(self, "scope", None)  # absent when the upgrade was refused
            if scope is not None:
                # The app's task was created but has not run yet: it sees the extension.
                scope.setdefault("extensions", {})[EXTENSION] = DirectChannel(self)

        if buffer == "frames":

            def send_receive_event_to_app(self) -> None:
                direct = self._direct
                if direct is None:
                    super().send_receive_event_to_app()
                    return
                frames: list[bytes] = self.frames
                data = frames[0] if len(frames) == 1 else b"".join(frames)
                self.frames = []
                if not self.close_sent:
                    direct(data)

        else:  # uvicorn < 0.50: one bytes buffer

            def send_receive_event_to_app(self) -> None:
                direct = self._direct
                if direct is None:
                    super().send_receive_event_to_app()
                    return
                if not self.close_sent:
                    direct(self.bytes)

    DirectWebSocketProtocol.__qualname__ = "DirectWebSocketProtocol"
    return DirectWebSocketProtocol


@functools.cache
def ws_protocol() -> Any:
    """The ``ws`` setting for ``uvicorn.Config``: our protocol when the installed uvicorn
    has everything it extends, else uvicorn's stock one (plain ASGI) and one WARNING.

    Checked at the first call, not at import, so the warning goes through the logging
    that ``serve`` sets up (this module is imported before that)."""
    missing = missing_internals(WebSocketsSansIOProtocol)
    if missing:
        try:
            from uvicorn import __version__ as version
        except ImportError:  # pragma: no cover
            version = "?"
        log_event(
            log,
            "server.direct_ws_unavailable",
            logging.WARNING,
            uvicorn=version,
            missing=", ".join(missing),
            fallback="plain ASGI (uvicorn's own WebSocket protocol; works, costs more CPU per message)",
        )
        return STOCK if WebSocketsSansIOProtocol is not None else "auto"
    return _direct_protocol(WebSocketsSansIOProtocol, _buffer(WebSocketsSansIOProtocol))  # type: ignore[arg-type]
