"""In-band keypad tones (DTMF, ITU-T Q.23) as 8 kHz mu-law.

Media Streams cannot send DTMF events, so the agent presses keys by playing
the tone pairs into the call. Each key is its low-group and high-group sine
together for ``TONE_MS``, then ``GAP_MS`` of silence (Q.24 receivers accept
>= 40 ms tones and pauses; 100/100 ms is the common dialler default); ``w`` is
a ``PAUSE_MS`` pause. Levels: -9 dBm0 for the low group and -7 dBm0 for the
high group (the usual 2 dB "twist" of telephone sets).
"""

from __future__ import annotations

import numpy as np

from .g711 import ULAW_SILENCE, ulaw_encode

__all__ = ["DIGITS", "FREQUENCIES", "GAP_MS", "PAUSE_MS", "TONE_MS", "check_digits", "dtmf_ulaw"]

RATE = 8000
TONE_MS = 100
GAP_MS = 100
PAUSE_MS = 500
#: the digits a tone exists for, and ``w`` (a pause)
DIGITS = frozenset("0123456789*#ABCDw")
#: key -> (low group Hz, high group Hz)
FREQUENCIES: dict[str, tuple[int, int]] = {
    key: (low, high)
    for row, low in zip(("123A", "456B", "789C", "*0#D"), (697, 770, 852, 941), strict=True)
    for key, high in zip(row, (1209, 1336, 1477, 1633), strict=True)
}
#: peak of a 0 dBm0 sine in 16-bit linear for G.711 mu-law (3.17 dB below its full-scale sine)
_DBM0_PEAK = 32124 / 10 ** (3.17 / 20)
LOW_DBM0 = -9.0
HIGH_DBM0 = -7.0


def check_digits(digits: str) -> str:
    """``digits`` normalised (upper-case A-D, spaces dropped); ValueError names a bad key."""
    keys = "".join(digits.split())
    keys = "".join(k.upper() if k in "abcd" else k for k in keys)
    bad = sorted({k for k in keys if k not in DIGITS})
    if not keys or bad:
        raise ValueError(f"digits must be 0-9 * # A-D or w (a 0.5 s pause); got {digits!r}")
    return keys


def dtmf_ulaw(digits: str) -> bytes:
    """The tones for ``digits`` (checked by ``check_digits``), each followed by its gap."""
    keys = check_digits(digits)
    tone_n, gap_n, pause_n = RATE * TONE_MS // 1000, RATE * GAP_MS // 1000, RATE * PAUSE_MS // 1000
    t = np.arange(tone_n) / RATE
    low_amp = _DBM0_PEAK * 10 ** (LOW_DBM0 / 20)
    high_amp = _DBM0_PEAK * 10 ** (HIGH_DBM0 / 20)
    gap = bytes([ULAW_SILENCE]) * gap_n
    out = bytearray()
    for key in keys:
        if key == "w":
            out += bytes([ULAW_SILENCE]) * pause_n
            continue
        low, high = FREQUENCIES[key]
        wave = low_amp * np.sin(2 * np.pi * low * t) + high_amp * np.sin(2 * np.pi * high * t)
        out += ulaw_encode(np.round(wave).astype("<i2").tobytes())
        out += gap
    return bytes(out)
