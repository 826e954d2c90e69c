"""A cheap voice-activity detector for the caller's 8 kHz mu-law frames.

Energy against an adaptive noise floor, with a hangover: a frame is voiced when
its level is ``margin_db`` above the floor and above ``min_dbfs``. The floor is
the quietest frame of the last ~1.6 s (minimum statistics over eight 200 ms
blocks), so steady line noise stops counting as speech within 1.6 s while the
pauses between words keep the floor down during speech. A *run* is voiced frames separated by gaps shorter than
``hangover_ms`` (the pauses inside a sentence); ``speech_s`` is how long the
current run has been voiced so far, from its first voiced frame's start to the
last voiced frame's end. O(1) per frame: one table lookup and one dot product.
Timestamps are explicit: each frame is the 20 ms ending at ``now``.
"""

from __future__ import annotations

import math

import numpy as np

from .g711 import ULAW_TO_FLOAT

__all__ = ["EnergyVad"]

_FULL_SCALE_POWER = 32767.0**2 / 2  # a full-scale sine: 0 dBFS
_BLOCK_FRAMES = 10  # 200 ms
_BLOCKS = 8  # the floor is the minimum over 1.6 s


class EnergyVad:
    __slots__ = (
        "_block_min",
        "_blocks",
        "_floor_db",
        "_in_block",
        "_next",
        "hangover_s",
        "last_voiced",
        "margin_db",
        "min_dbfs",
        "onset",
    )

    def __init__(self, *, margin_db: float = 12.0, min_dbfs: float = -45.0, hangover_ms: float = 300.0) -> None:
        self.margin_db = margin_db
        self.min_dbfs = min_dbfs
        self.hangover_s = hangover_ms / 1000.0
        self._blocks = [-60.0] * _BLOCKS  # a quiet line until heard otherwise
        self._next = 0
        self._block_min = float("inf")
        self._in_block = 0
        self._floor_db = -60.0
        #: start of the current run of speech (None: no run)
        self.onset: float | None = None
        #: end of the last voiced frame of the current run
        self.last_voiced = float("-inf")

    def level_dbfs(self, ulaw: bytes) -> float:
        x = ULAW_TO_FLOAT[np.frombuffer(ulaw, dtype=np.uint8)]
        power = float(np.dot(x, x)) / len(x)
        return 10.0 * math.log10(power / _FULL_SCALE_POWER + 1e-12)

    def frame(self, ulaw: bytes, now: float) -> bool:
        """Feed one frame (arrived at ``now``); True if it is voiced."""
        if not ulaw:
            return False
        level = self.level_dbfs(ulaw)
        duration = len(ulaw) / 8000.0
        if level < self._block_min:
            self._block_min = level
            if level < self._floor_db:
                self._floor_db = level
        self._in_block += 1
        if self._in_block == _BLOCK_FRAMES:
            blocks = self._blocks
            blocks[self._next] = self._block_min
            self._next = (self._next + 1) % _BLOCKS
            self._floor_db = min(blocks)
            self._block_min = float("inf")
            self._in_block = 0
        voiced = level > self._floor_db + self.margin_db and level > self.min_dbfs
        if voiced:
            if self.onset is None or now - duration - self.last_voiced > self.hangover_s:
                self.onset = now - duration
            self.last_voiced = now
        elif self.onset is not None and now - self.last_voiced > self.hangover_s:
            self.onset = None
        return voiced

    @property
    def speech_s(self) -> float:
        """How long the current run has been voiced (0 without a run)."""
        return 0.0 if self.onset is None else self.last_voiced - self.onset

    def reset(self) -> None:
        """Forget the current run (the floor is kept)."""
        self.onset = None
        self.last_voiced = float("-inf")
