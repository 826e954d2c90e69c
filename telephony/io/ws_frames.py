"""WebSocket data frames in a few steps, both ways: the per-message path of both
sockets (an append to the Realtime API, a media message from and to Twilio, 50
a second per call).

``websockets``' generic serializer builds a ``Frame``, checks it, runs the
extensions and writes through a ``BytesIO``, and its client draws each masking
key with a ``getrandom`` system call. For an unfragmented text frame on an open
connection without extensions, ``text_frame`` makes the same bytes directly,
with masking keys drawn from the OS a kilobyte (256 keys) at a time.
``sendable`` says when that is the case; otherwise the caller uses
``websockets``' own ``send_text`` (closing states, errors, pending writes).

Reading, ``whole_frames`` takes the common case out of websockets' parser: a
read that starts at a frame boundary (``FrameWalk`` follows them) with whole,
unfragmented text or binary frames. Anything else goes to the parser, from a
boundary, so its checks and errors are unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from websockets.protocol import State
from websockets.speedups import apply_mask

__all__ = ["FrameWalk", "MaskKeys", "can_send_fast", "sendable", "size_limit", "text_frame", "whole_frames"]

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


class FrameWalk:
    """Where the next frame starts in the bytes websockets' parser has been fed,
    so that reads can bypass it only from a frame boundary. Start one where the
    parser is known to be at a boundary: right after the handshake."""

    __slots__ = ("head", "left")

    def __init__(self) -> None:
        self.head = b""  # the start of a frame header cut by the end of a read
        self.left = 0  # payload bytes of the current frame still to come

    @property
    def aligned(self) -> bool:
        return not self.left and not self.head

    def skip(self, data: bytes) -> None:
        """Follow ``data``, just fed to the parser, frame by frame."""
        i, n = 0, len(data)
        while i < n:
            if self.left:
                step = min(self.left, n - i)
                self.left -= step
                i += step
                continue
            had = len(self.head)
            head = self.head + data[i : i + 14 - had]
            size = _header_size(head)
            if size is None or len(head) < size:  # the read ended inside the header
                self.head = head
                return
            i += size - had
            self.head = b""
            self.left = _payload_size(head)


def _header_size(head: bytes) -> int | None:
    if len(head) < 2:
        return None
    length = head[1] & 0x7F
    return 2 + (0 if length < 126 else 2 if length == 126 else 8) + (4 if head[1] & 0x80 else 0)


def _payload_size(head: bytes) -> int:
    length = head[1] & 0x7F
    if length < 126:
        return length
    return int.from_bytes(head[2:4] if length == 126 else head[2:10], "big")


def size_limit(conn: Any) -> int:
    """The largest payload the fast path may take: websockets' own limits (which
    it enforces on anything larger), and never a 64-bit length."""
    limit = 65535
    for name in ("max_message_size", "max_fragment_size", "max_size"):
        value = getattr(conn, name, None)
        if isinstance(value, int):
            limit = min(limit, value)
    return limit


def whole_frames(
    data: bytes, masked: bool, limit: int, deliver: Callable[[bytes], object], proceed: Callable[[], bool]
) -> int:
    """Deliver the payloads of the whole, unfragmented text and binary frames at
    the start of ``data`` (which starts at a frame boundary), as websockets would:
    FIN, no RSV bit, masked exactly when ``masked`` (a client's frames), at most
    ``limit`` bytes. Stops at the first other frame, an incomplete one, or when
    ``proceed()`` turns false after a delivery. Returns the bytes taken."""
    n, pos = len(data), 0
    mask_bit, key = (0x80, 4) if masked else (0, 0)
    while pos + 2 + key <= n and (data[pos] == 0x81 or data[pos] == 0x82):
        length = data[pos + 1] - mask_bit
        if length < 0 or length > 126:  # wrong masking, or a 64-bit length
            break
        at = pos + 2
        if length == 126:
            length = int.from_bytes(data[at : at + 2], "big")
            at += 2
        end = at + key + length
        if end > n or length > limit:
            break
        pos = end
        deliver(apply_mask(data[at + 4 : end], data[at : at + 4]) if masked else data[at:end])
        if not proceed():
            break
    return pos
