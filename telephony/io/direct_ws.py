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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["EXTENSION", "DirectChannel", "DirectWebSocketProtocol", "ws_protocol"]

EXTENSION = "telephony.direct"

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.exceptions import InvalidState
except ImportError:  # an older uvicorn or websockets: plain ASGI it is
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

_REQUIRED = ("handle_connect", "send_receive_event_to_app")


class DirectChannel:
    """What the app gets in ``scope["extensions"]["telephony.direct"]``."""

    __slots__ = ("_proto",)

    def __init__(self, proto: Any) -> None:
        self._proto = proto

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
        try:
            conn.send_text(text.encode())
        except InvalidState:  # the peer's close frame arrived first
            return False
        out = conn.data_to_send()
        proto.transport.write(out[0] if len(out) == 1 else b"".join(out))
        return True

    def buffered(self) -> int:
        """Bytes written but not yet accepted by the kernel (a stuck peer grows this)."""
        return self._proto.transport.get_write_buffer_size()


if WebSocketsSansIOProtocol is not None and all(hasattr(WebSocketsSansIOProtocol, a) for a in _REQUIRED):

    class DirectWebSocketProtocol(WebSocketsSansIOProtocol):  # type: ignore[misc,valid-type]
        _direct: Callable[[bytes], None] | None = None

        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            scope = getattr(self, "scope", None)  # absent when the upgrade was refused
            if scope is not None:
                # The app's task was created but has not run yet: it sees the extension.
                scope.setdefault("extensions", {})[EXTENSION] = DirectChannel(self)

        def send_receive_event_to_app(self) -> None:
            direct = self._direct
            if direct is None:
                super().send_receive_event_to_app()
                return
            frames = getattr(self, "frames", None)
            if frames is not None:  # newer uvicorn: the message's frames as a list
                data = frames[0] if len(frames) == 1 else b"".join(frames)
                self.frames = []
            else:  # uvicorn 0.35: one bytes buffer
                data = self.bytes
            if not self.close_sent:
                direct(data)

else:  # pragma: no cover - depends on the installed uvicorn
    DirectWebSocketProtocol = None  # type: ignore[assignment,misc]


def ws_protocol() -> Any:
    """The ``ws`` setting for ``uvicorn.Config``: ours when this uvicorn supports it."""
    return DirectWebSocketProtocol if DirectWebSocketProtocol is not None else "auto"
