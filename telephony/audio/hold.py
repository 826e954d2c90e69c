"""The hold / "thinking" sound the caller hears while a slow tool runs.

``builtin_hold_sound()`` synthesises the default: a soft, slow two-note pad
(C5 then E5 with a quiet octave, each note faded in and out over 1.2 s, about
-30 dBFS), 2.4 s that loop seamlessly, never silent for more than ~0.1 s.
``load_hold_sound(path)`` reads a WAV (any rate the WAV reader takes) instead.
Both return 8 kHz mu-law bytes, what Twilio plays.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError, WavError
from .g711 import INT16_TO_ULAW
from .wav import read_wav, resample

__all__ = ["builtin_hold_sound", "hold_sound", "load_hold_sound"]

_RATE = 8000
_NOTE_S = 1.2
_LEVEL_DBFS = -30.0


def _to_ulaw(samples: np.ndarray) -> bytes:
    pcm = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
    return bytes(INT16_TO_ULAW[pcm.view(np.uint16)].tobytes())


def builtin_hold_sound() -> bytes:
    n = int(_NOTE_S * _RATE)
    t = np.arange(n) / _RATE
    envelope = np.sin(np.pi * t / _NOTE_S) ** 2  # starts and ends at 0: a seamless loop
    notes = []
    for f in (523.25, 659.25):
        tone = np.sin(2 * np.pi * f * t) + 0.25 * np.sin(2 * np.pi * 2 * f * t) + 0.3 * np.sin(np.pi * f * t)
        notes.append(envelope * tone)
    signal = np.concatenate(notes)
    rms = float(np.sqrt(np.mean(signal**2)))
    target = 32767 / np.sqrt(2) * 10 ** (_LEVEL_DBFS / 20)
    return _to_ulaw(signal * (target / rms))


def load_hold_sound(path: str | Path) -> bytes:
    try:
        wav = read_wav(path)
    except WavError as e:
        raise ConfigError(f"TELEPHONY_HOLD_SOUND: cannot read {path}: {e}") from e
    samples = wav.samples if wav.rate == _RATE else resample(wav.samples, wav.rate, _RATE)
    if len(samples) < _RATE // 10:
        raise ConfigError(f"TELEPHONY_HOLD_SOUND: {path} is shorter than 100 ms")
    return _to_ulaw(samples)


@lru_cache(maxsize=4)
def hold_sound(setting: str) -> bytes | None:
    """``TELEPHONY_HOLD_SOUND``: "builtin", "off", or a WAV file's path (read once)."""
    if setting == "off" or not setting:
        return None
    if setting == "builtin":
        return builtin_hold_sound()
    return load_hold_sound(setting)
