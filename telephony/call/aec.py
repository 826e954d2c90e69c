"""Echo cancellation on the caller -> model path (``TELEPHONY_ECHO_CANCELLATION``).

``EchoPath`` keeps what the caller is hearing, as Twilio plays it, and feeds it to
``audio.EchoCanceller`` before each caller frame, per that module's alignment
contract:

* Everything sent to the caller is reference: the agent's audio (``Playout``)
  and the hold sound (``Hold``) tap their media here as they send it (DTMF
  tones we play must too).
* Twilio plays what it is sent in order and in real time, a chunk no earlier
  than it was sent: the playback clock's own rule. Each caller frame (20 ms)
  takes the next 160 samples that were playing by then, or silence when the
  queue had run dry; the network's and the phone's delay on top are what the
  canceller's 400 ms tail covers.
* ``clear`` drops what was queued and not played: it was never heard.

The cleaned frame is re-encoded to mu-law (it came as mu-law: one more
quantisation of the same resolution) and goes on as the caller's audio.
O(1) per frame; the canceller's cost is in ``audio/echo.py`` (a few µs per
frame, more while it looks for and fits an echo path; nothing while nothing
was played within its tail).
"""

from __future__ import annotations

import numpy as np

from ..audio.echo import EchoCanceller
from ..audio.g711 import INT16_TO_ULAW, ULAW_TO_INT

__all__ = ["EchoPath"]

_FRAME = 160
_MAX_QUEUED = 8000 * 30  # 30 s of audio queued at Twilio: beyond, the oldest is dropped


class EchoPath:
    __slots__ = ("_aec", "_play_from", "_queue", "_silence")

    def __init__(self, tail_ms: int = 400) -> None:
        self._aec = EchoCanceller(tail_ms=tail_ms)
        self._queue = bytearray()  # mu-law sent and not yet played
        self._play_from = 0.0  # when the queue's head starts playing
        self._silence = np.zeros(_FRAME)

    def sent(self, ulaw: bytes, now: float) -> None:
        """Audio sent to the caller (a ``media`` message's payload)."""
        if not self._queue:
            self._play_from = now
        self._queue += ulaw
        if len(self._queue) > _MAX_QUEUED:
            del self._queue[: len(self._queue) - _MAX_QUEUED]

    def cleared(self) -> None:
        """Twilio was told to ``clear``: what was queued is never heard."""
        self._queue.clear()

    def process(self, ulaw: bytes, now: float) -> bytes:
        """The caller's frame, with the echo of what they were hearing removed."""
        queue = self._queue
        aec = self._aec
        if queue and self._play_from <= now:
            n = min(_FRAME, len(queue))
            ref = ULAW_TO_INT[np.frombuffer(bytes(queue[:n]), np.uint8)]
            del queue[:n]
            aec.played(ref)
        else:
            aec.played(self._silence)
        if len(ulaw) != _FRAME:
            return ulaw  # an odd-sized frame: passed as is (the canceller works on 20 ms)
        mic = ULAW_TO_INT[np.frombuffer(ulaw, np.uint8)]
        clean = aec.process(mic)
        if clean is mic:
            return ulaw  # nothing played within the tail: untouched
        pcm = np.clip(np.round(clean), -32768, 32767).astype(np.int16)
        return bytes(INT16_TO_ULAW[pcm.view(np.uint16)].tobytes())
