"""The bridge's two audio directions, bytes in and bytes out.

``CallerToModel``: Twilio's 8 kHz mu-law -> PCM16 24 kHz for the Realtime API.
``ModelToCaller``: the model's PCM16 24 kHz -> 8 kHz mu-law for Twilio.

Each call owns one of each. Buffers are reused across frames; the returned bytes
are the only allocation per frame besides numpy's small temporaries.
"""

from __future__ import annotations

from binascii import b2a_base64

import numpy as np

from .g711 import INT16_TO_ULAW, ULAW_TO_FLOAT
from .resample import DELAY_MS, Downsampler, Upsampler

__all__ = ["DELAY_MS", "CallerToModel", "ModelToCaller"]

_EMPTY = b""


class CallerToModel:
    """mu-law 8 kHz bytes -> PCM16LE 24 kHz bytes (3 x 2 bytes per input byte)."""

    __slots__ = ("_up",)

    def __init__(self) -> None:
        self._up = Upsampler()

    def convert(self, ulaw: bytes) -> bytes:
        if not ulaw:
            return _EMPTY
        return self._up.process_codes(np.frombuffer(ulaw, dtype=np.uint8), ULAW_TO_FLOAT).tobytes()

    def convert_b64(self, ulaw: bytes) -> bytes:
        """``convert`` then base64 (ASCII bytes), without the intermediate copy:
        what ``input_audio_buffer.append`` carries."""
        if not ulaw:
            return _EMPTY
        pcm = self._up.process_codes(np.frombuffer(ulaw, dtype=np.uint8), ULAW_TO_FLOAT)
        return b2a_base64(pcm, newline=False)  # type: ignore[arg-type]  # ndarray is a buffer

    def convert_pcm(self, samples: np.ndarray) -> bytes:
        """``convert`` for 8 kHz int16 samples (e.g. the echo canceller's output)."""
        return self._up.process(samples).tobytes() if samples.size else _EMPTY

    def convert_pcm_b64(self, samples: np.ndarray) -> bytes:
        """``convert_b64`` for 8 kHz int16 samples."""
        if not samples.size:
            return _EMPTY
        return b2a_base64(self._up.process(samples), newline=False)  # type: ignore[arg-type]

    def power(self) -> float:
        """Mean square (int16 scale) of the last frame converted: what a level
        detector needs, from the samples already decoded (no second decode)."""
        x = self._up.last
        return float(np.dot(x, x)) / x.size if x.size else 0.0


class ModelToCaller:
    """PCM16LE 24 kHz bytes -> mu-law 8 kHz bytes (one byte per 3 input samples).

    An odd trailing byte (half a sample) is kept for the next chunk. ``flush``
    ends an utterance: it returns the filter tail and resets, so the next
    utterance starts from silence and never carries a cut-off item's tail.
    """

    __slots__ = ("_down", "_odd")

    def __init__(self) -> None:
        self._down = Downsampler()
        self._odd = _EMPTY

    def convert(self, pcm16: bytes) -> bytes:
        if self._odd:
            pcm16 = self._odd + pcm16
            self._odd = _EMPTY
        if len(pcm16) & 1:
            self._odd = pcm16[-1:]
            pcm16 = pcm16[:-1]
        if not pcm16:
            return _EMPTY
        out = self._down.process(np.frombuffer(pcm16, dtype="<i2"))
        return INT16_TO_ULAW.take(out.view(np.uint16)).tobytes()

    def flush(self) -> bytes:
        self._odd = _EMPTY
        out = self._down.flush()
        return INT16_TO_ULAW.take(out.view(np.uint16)).tobytes()

    def reset(self) -> None:
        self._odd = _EMPTY
        self._down.reset()
