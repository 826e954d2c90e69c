"""What the caller has actually heard.

Twilio plays the audio we send in order, in real time, and echoes a named mark
once the audio queued before it has played. Two facts shape this clock:

* A mark echo proves playback reached that mark's position at (about) the echo
  time. Between echoes we extrapolate at 8 bytes per millisecond, starting each
  chunk no earlier than the moment we sent it (the queue may have run dry).
* ``clear`` makes Twilio echo every pending mark at once. Those echoes mean
  "discarded", not "played", so a clear starts a new epoch and marks sent before
  it are ignored when they come back.

Positions are mu-law bytes (= samples at 8 kHz) sent since the last clear.
"""

from __future__ import annotations

from collections import deque

__all__ = ["BYTES_PER_SECOND", "PlaybackClock"]

BYTES_PER_SECOND = 8000


class PlaybackClock:
    __slots__ = ("_pending", "_seq", "_stale_upto", "confirmed", "confirmed_at", "sent")

    def __init__(self) -> None:
        self._seq = 0
        self._stale_upto = 0
        self._pending: deque[tuple[int, int, float]] = deque()  # (mark seq, end position, sent at)
        self.sent = 0
        self.confirmed = 0
        self.confirmed_at = float("-inf")

    def sent_chunk(self, nbytes: int, now: float) -> str:
        """Record a media chunk just sent; returns the name of the mark to send after it."""
        self.sent += nbytes
        self._seq += 1
        self._pending.append((self._seq, self.sent, now))
        return str(self._seq)

    def mark_echoed(self, name: str, now: float) -> bool:
        """A mark came back. Returns True if it advanced playback (ours, current epoch)."""
        if not name.isdigit() or len(name) > 18:
            return False
        seq = int(name)
        if seq <= self._stale_upto or not self._pending or seq < self._pending[0][0]:
            return False  # echoed by a clear, a duplicate, or not ours
        end = None
        while self._pending and self._pending[0][0] <= seq:
            _, end, _ = self._pending.popleft()
        if end is None:
            return False
        self.confirmed = end
        self.confirmed_at = now
        return True

    @property
    def pending(self) -> int:
        """Marks sent and not yet echoed in this epoch."""
        return len(self._pending)

    def position(self, now: float) -> int:
        """Estimated bytes played in this epoch at time ``now``."""
        pos = self.confirmed
        cursor = self.confirmed_at
        for _, end, sent_at in self._pending:
            start = cursor if cursor > sent_at else sent_at
            if now <= start:
                break
            available = end - pos
            playable = (now - start) * BYTES_PER_SECOND
            if playable >= available:
                pos = end
                cursor = start + available / BYTES_PER_SECOND
            else:
                pos += int(playable + 1e-6)  # floor, robust to float noise
                break
        return pos

    def drained_at(self, now: float) -> float:
        """When the audio sent so far will have finished playing (estimate)."""
        cursor, pos = self.confirmed_at, self.confirmed
        for _, end, sent_at in self._pending:
            start = cursor if cursor > sent_at else sent_at
            cursor = start + (end - pos) / BYTES_PER_SECOND
            pos = end
        return max(cursor, now) if self._pending else now

    def clear(self) -> None:
        """Twilio was told to drop its buffer: start a new epoch."""
        self._stale_upto = self._seq
        self._pending.clear()
        self.sent = 0
        self.confirmed = 0
        self.confirmed_at = float("-inf")
