"""A DTMF decoder for tests (Goertzel), independent of the generator."""

from __future__ import annotations

import math

import numpy as np

from telephony.audio.dtmf import FREQUENCIES
from telephony.audio.g711 import ulaw_decode

__all__ = ["decode_dtmf", "goertzel_power"]


def goertzel_power(samples, freq: float, rate: int = 8000) -> float:
    """The Goertzel algorithm: the signal's power at ``freq``."""
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def decode_dtmf(ulaw: bytes) -> str:
    """The keys in mu-law audio: per 20 ms block, the strongest row and column
    frequency (holding most of the block's energy); a key counts once per burst."""
    pcm = np.frombuffer(ulaw_decode(ulaw), dtype="<i2").astype(float)
    rows, cols = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    by_pair = {pair: key for key, pair in FREQUENCIES.items()}
    keys, last = [], None
    for i in range(0, len(pcm) - 159, 160):
        block = pcm[i : i + 160]
        energy = float(np.dot(block, block)) * 160 / 2
        r = sorted((goertzel_power(block, f), f) for f in rows)
        c = sorted((goertzel_power(block, f), f) for f in cols)
        key = None
        # a key: most of the block's energy in one row and one column frequency
        if energy > 1e6 and r[-1][0] + c[-1][0] > 0.7 * energy and min(r[-1][0], c[-1][0]) > 0.2 * energy:
            key = by_pair[(r[-1][1], c[-1][1])]
        if key is not None and key != last:
            keys.append(key)
        last = key
    return "".join(keys)
