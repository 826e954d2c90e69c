"""Echo cancellation wired into the call (issue 15 §1), driven synchronously: the
agent's voice played to a speakerphone comes back on the caller's line; with
``echo_cancellation`` the model gets the line without it, the caller's own voice intact."""

from __future__ import annotations

import numpy as np

from benchmarks.lines import speakerphone_model_input
from telephony.audio import DELAY_8K
from tests.audio_data import caller_pcm8

SECONDS = 6


def _model_input(echo_cancellation: bool, caller: np.ndarray | None = None) -> np.ndarray:
    """The agent speaks for 6 s; the speakerphone line returns its echo plus
    ``caller``. What the model got, at 8 kHz."""
    return speakerphone_model_input(SECONDS, caller, echo_cancellation=echo_cancellation).astype(np.float64)


def _power(x: np.ndarray) -> float:
    return float(np.mean(x**2))


def test_the_agents_echo_is_removed_before_the_model_hears_it():
    off = _model_input(False)
    on = _model_input(True)
    late = slice(3 * 8000, SECONDS * 8000)  # after convergence (1.3-3.1 s on these lines)
    erle = 10 * np.log10(_power(off[late]) / _power(on[late]))
    assert erle >= 20, erle


def test_the_callers_voice_reaches_the_model_intact_during_double_talk():
    caller = np.zeros(8000 * SECONDS, np.int16)
    speech = caller_pcm8()[: 8000 * 2]
    caller[4 * 8000 : 6 * 8000] = speech  # the caller talks over the agent from 4 s
    on = _model_input(True, caller)
    both = slice(4 * 8000 + 400, 6 * 8000 - 400)
    heard = on[both.start + DELAY_8K : both.stop + DELAY_8K]  # the 3:1 upsampler's delay
    assert float(np.corrcoef(heard, caller[both].astype(np.float64))[0, 1]) >= 0.99
