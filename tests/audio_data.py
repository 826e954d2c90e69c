"""The speech samples the tests (and benchmarks/) play through the audio path.

The caller sample lives with the tests; the agent's voice is the one the shipped
offline agent answers with (``telephony/testing/data``), so there is one copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from telephony.audio.wav import read_wav
from telephony.testing.offline_agent import VOICE as AGENT_WAV

CALLER_WAV = Path(__file__).resolve().parent / "data" / "caller-8k-ulaw.wav"

__all__ = ["AGENT_WAV", "CALLER_WAV", "agent_pcm24", "caller_pcm8", "caller_ulaw"]


def caller_pcm8() -> np.ndarray:
    """The caller sample decoded from mu-law to int16 at 8 kHz."""
    wav = read_wav(CALLER_WAV)
    assert wav.rate == 8000 and wav.format == "ulaw"
    return wav.samples


def caller_ulaw() -> bytes:
    """The caller sample's mu-law bytes as stored (the WAV file's data chunk)."""
    raw = CALLER_WAV.read_bytes()
    return raw[raw.index(b"data") + 8 :]


def agent_pcm24() -> np.ndarray:
    """The agent's voice, int16 at 24 kHz."""
    wav = read_wav(AGENT_WAV)
    assert wav.rate == 24000 and wav.format == "pcm16"
    return wav.samples
