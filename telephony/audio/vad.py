"""A cheap voice-activity detector for the caller's 8 kHz mu-law frames.

Energy against an adaptive noise floor, with a hangover: a frame is voiced when
its level is ``margin_db`` above the floor and above ``min_dbfs``. The floor is
the quietest frame of the last ~1.6 s (minimum statistics over eight 200 ms
blocks), so steady line noise stops counting as speech within 1.6 s while the
pauses between words keep the floor down during speech; digital silence (a lost
frame filled with zeros) is not noise and leaves the floor alone, and the floor
learns from pairs of frames (the louder of the two), so a lone dropout does not
pull it down. A *run* is voiced frames separated by gaps shorter than
``hangover_ms`` (the pauses inside a sentence); ``speech_s`` is how long the
current run has been voiced so far, from its first voiced frame's start to the
last voiced frame's end. O(1) per frame: one table lookup and one dot product, or none when the caller
already has the frame's power (the bridge takes it from the samples its
transcoder decoded: ``frame_power``); levels are compared as powers, no log.
Timestamps are explicit: each frame is the 20 ms ending at ``now``.
"""

from __future__ import annotations

import math

import numpy as np

from .g711 import ULAW_TO_FLOAT

__all__ = ["EnergyVad", "power"]

_FULL_SCALE_POWER = 32767.0**2 / 2  # a full-scale sine: 0 dBFS
_INV_FULL_SCALE = 1.0 / _FULL_SCALE_POWER
_EPSILON = 1e-12  # -120 dBFS: digital silence still has a level
# Below -90 dBFS a frame is digital silence (a lost frame the line filled with zeros,
# a muted leg): it says nothing of the line's noise, so it does not pull the floor down
# (on a lossy noisy line it would, and the noise would then count as speech).
_DIGITAL_SILENCE = 1e-9
_NONE = float("inf")  # no frame yet in the block
_BLOCK_FRAMES = 10  # 200 ms
_BLOCKS = 8  # the floor is the minimum over 1.6 s


def _relative(dbfs: float) -> float:
    return float(10.0 ** (dbfs / 10.0))


def power(ulaw: bytes) -> float:
    """Mean square of a mu-law frame, int16 scale."""
    x = ULAW_TO_FLOAT[np.frombuffer(ulaw, dtype=np.uint8)]
    return float(np.dot(x, x)) / len(x)


class EnergyVad:
    __slots__ = (
        "_block_min",
        "_blocks",
        "_floor",
        "_in_block",
        "_last",
        "_margin",
        "_min",
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
        # Levels are compared as powers relative to full scale (plus the -120 dB
        # epsilon the dB figures use): the same decisions as in dB, with no log per frame.
        self._margin = 10.0 ** (margin_db / 10.0)
        self._min = _relative(min_dbfs)
        quiet = _relative(-60.0)  # a quiet line until heard otherwise
        self._blocks = [quiet] * _BLOCKS
        self._next = 0
        self._block_min = _NONE
        self._in_block = 0
        self._last = 0.0
        self._floor = quiet
        #: start of the current run of speech (None: no run)
        self.onset: float | None = None
        #: end of the last voiced frame of the current run
        self.last_voiced = float("-inf")

    @property
    def floor_dbfs(self) -> float:
        """The noise floor the detector has learnt."""
        return 10.0 * math.log10(self._floor)

    @staticmethod
    def level_dbfs(ulaw: bytes) -> float:
        return 10.0 * math.log10(power(ulaw) / _FULL_SCALE_POWER + _EPSILON)

    def frame(self, ulaw: bytes, now: float) -> bool:
        """Feed one frame (arrived at ``now``); True if it is voiced."""
        if not ulaw:
            return False
        return self.frame_power(power(ulaw), len(ulaw) / 8000.0, now)

    def frame_power(self, mean_square: float, duration: float, now: float) -> bool:
        """``frame`` for a frame whose mean square (int16 scale) is already known,
        e.g. from the samples the transcoder decoded (``CallerToModel.power``)."""
        level = mean_square * _INV_FULL_SCALE + _EPSILON
        # The floor learns from two frames at a time (the louder of this one and the
        # last): a lone dropout (a lost frame) is not the line's noise; a pause is.
        pair = level if level > self._last else self._last
        self._last = level
        if pair < self._block_min and pair > _DIGITAL_SILENCE:
            self._block_min = pair
            if pair < self._floor:
                self._floor = pair
        self._in_block += 1
        if self._in_block == _BLOCK_FRAMES:
            if self._block_min != _NONE:  # else a block of digital silence: nothing learnt
                blocks = self._blocks
                blocks[self._next] = self._block_min
                self._next = (self._next + 1) % _BLOCKS
                self._floor = min(blocks)
                self._block_min = _NONE
            self._in_block = 0
        voiced = level > self._floor * self._margin and level > self._min
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
