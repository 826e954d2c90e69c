"""Writing one WebSocket text frame in a few steps: the per-message send of both
sockets (an append to the Realtime API, a media message to Twilio, 50 a second
per call).

``websockets``' generic serializer builds a ``Frame``, checks it, runs the
extensions and writes through a ``BytesIO``, and its client draws each masking
key with a ``getrandom`` system call. For an unfragmented text frame on an open
connection without extensions, ``text_frame`` makes the same bytes directly,
with masking keys drawn from the OS a kilobyte (256 keys) at a time.
``sendable`` says when that is the case; otherwise the caller uses
``websockets``' own ``send_text`` (closing states, errors, pending writes).
"""

from __future__ import annotations

import os
from typing import Any

from websockets.protocol import State
from websockets.speedups import apply_mask

__all__ = ["MaskKeys", "can_send_fast", "sendable", "text_frame"]

_STATE = ("state", "expect_continuation_frame", "writes", "extensions")


class MaskKeys:
    """Client masking keys (RFC 6455 5.3: from a strong source of entropy), one
    ``os.urandom`` call per 256 frames. One per connection."""

    __slots__ = ("_at", "_pool")

    _SIZE = 1024

    def __init__(self) -> None:
        self._pool = b""
        self._at = self._SIZE

    def next(self) -> bytes:
        at = self._at
        if at >= self._SIZE:
            self._pool, at = os.urandom(self._SIZE), 0
        self._at = at + 4
        return self._pool[at : at + 4]


def can_send_fast(conn: Any) -> bool:
    """The installed websockets exposes what ``sendable`` reads (else: always its own
    ``send_text``). Checked once per connection."""
    return all(hasattr(conn, name) for name in _STATE)


def sendable(conn: Any) -> bool:
    """``conn`` (a websockets protocol) would send a text frame as is: open, not in
    a fragmented message, nothing of its own waiting to be written, no extension."""
    return conn.state is State.OPEN and not conn.expect_continuation_frame and not conn.writes and not conn.extensions


def text_frame(payload: bytes, keys: MaskKeys | None = None) -> bytes:
    """One unfragmented text frame (FIN, opcode 1); masked with the next key when
    ``keys`` is given (a client's frame)."""
    n = len(payload)
    masked = 0x80 if keys is not None else 0
    if n < 126:
        head = bytes((0x81, masked | n))
    elif n < 65536:
        head = bytes((0x81, masked | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, masked | 127)) + n.to_bytes(8, "big")
    if keys is None:
        return head + payload
    key = keys.next()
    return head + key + apply_mask(payload, key)
