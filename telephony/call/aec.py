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

The cleaned frame goes on as 16-bit samples (straight to the resampler: no
second mu-law quantisation); a frame the canceller did not touch stays the
caller's mu-law bytes. While nothing has played within the tail the canceller
is not called at all. O(1) per frame: the canceller takes both sides as mu-law
codes (two slice copies); its own cost is in ``audio/echo.py`` (about a µs per
frame, more while it looks for, fits and filters an echo path).
"""

from __future__ import annotations

import numpy as np

from ..audio.echo import EchoCanceller

__all__ = ["EchoPath"]

_FRAME = 160
_SILENT = b"\xff\x7f"  # the mu-law codes of 0
_SILENCE = b"\xff" * 160
_FRAME_S = 0.02
_MAX_QUEUED = 8000 * 30  # 30 s of audio queued at Twilio: beyond, the oldest is dropped


class EchoPath:
    __slots__ = ("_aec", "_head", "_play_from", "_queue", "_starting")

    def __init__(self, tail_ms: int = 400) -> None:
        self._aec = EchoCanceller(tail_ms=tail_ms)
        self._queue = bytearray()  # mu-law sent; [_head:] not yet played
        self._head = 0
        self._play_from = 0.0  # when the queue's head starts playing
        self._starting = False  # the next frame that plays is the first of a run (see process)

    @property
    def canceller(self) -> EchoCanceller:
        return self._aec

    def sent(self, ulaw: bytes, now: float) -> None:
        """Audio sent to the caller (a ``media`` message's payload)."""
        queue = self._queue
        if self._head == len(queue):
            queue.clear()
            self._head = 0
            self._play_from = now
            self._starting = True
        elif self._head >= 8000:  # played audio at the front: drop it now and then, not per frame
            del queue[: self._head]
            self._head = 0
        queue += ulaw
        over = len(queue) - self._head - _MAX_QUEUED
        if over > 0:
            self._head += over

    def cleared(self) -> None:
        """Twilio was told to ``clear``: what was queued is never heard."""
        self._queue.clear()
        self._head = 0

    def process(self, ulaw: bytes, now: float) -> np.ndarray | None:
        """The caller's frame with the echo of what they were hearing removed (int16,
        8 kHz; reused by the next call), or None when it is unchanged: use ``ulaw``."""
        queue, head, aec = self._queue, self._head, self._aec
        playing = head < len(queue) and self._play_from <= now
        if len(ulaw) != _FRAME:
            # An odd-sized frame: passed as is (the canceller works on 20 ms). What
            # played meanwhile is skipped too, so the reference stays aligned.
            if playing:
                self._head = min(len(queue), head + len(ulaw))
            return None
        lead = 0
        if playing and self._starting:
            # Playback began inside this frame's 20 ms, not at its start: the
            # reference starts as late within it, so that every answer's echo keeps
            # one delay (frame-quantised, it moved by up to 20 ms from one answer to
            # the next and the filter learnt on one missed the next).
            lead = max(0, round((self._play_from - (now - _FRAME_S)) * 8000))
            if lead >= _FRAME:
                playing = False  # it began as this frame ended: nothing of it in here
            else:
                self._starting = False
        if playing:
            end = min(len(queue), head + _FRAME - lead)  # the last of what was sent, then silence
            codes = queue[head:end]
            if lead:
                codes[:0] = _SILENCE[:lead]
            aec.played_ulaw(codes, silent=not codes.strip(_SILENT))  # (digital silence: nothing to cancel)
            self._head = end
        elif aec.idle:
            return None  # nothing heard within the tail: nothing to do
        return aec.process_ulaw(ulaw)
