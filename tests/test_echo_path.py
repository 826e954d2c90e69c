"""Echo cancellation wired into the call (issue 15 §1), driven synchronously: the
agent's voice played to a speakerphone comes back on the caller's line; with
``echo_cancellation`` the model gets the line without it, the caller's own voice intact."""

from __future__ import annotations

import base64
import json

import numpy as np

from telephony.audio import DELAY_8K, ModelToCaller
from telephony.call import Call, CallConfig
from telephony.testing import lines
from telephony.wire import realtime as rt
from telephony.wire import twilio as tw
from tests.audio_data import agent_pcm24, caller_pcm8
from tests.test_call_machine import START

SECONDS = 6


def _model_input(echo_cancellation: bool, caller: np.ndarray | None = None) -> np.ndarray:
    """The agent speaks for 6 s (100 ms deltas in real time); the line returns its
    echo (150 ms, 10 dB down, a room, light noise) plus ``caller``. Returns what
    the model got, at 8 kHz (every 3rd sample of the 24 kHz audio)."""
    c = Call(CallConfig(quiet_timeout_s=0, echo_cancellation=echo_cancellation))
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    c.drain_twilio(), c.drain_realtime()
    pcm = np.tile(agent_pcm24(), 2)[: 24000 * SECONDS].astype("<i2").tobytes()
    down = ModelToCaller()
    played = lines.from_ulaw(down.convert(pcm) + down.flush())[: 8000 * SECONDS]
    line = lines.SPEAKERPHONE.apply(np.zeros(8000 * SECONDS, np.int16) if caller is None else caller, played)
    frames = lines.frames(lines.to_ulaw(line))
    got = []
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    for k, frame in enumerate(frames[: 50 * SECONDS]):
        now = k * 0.02
        if k % 5 == 0:
            c.receive_realtime(rt.AudioDelta("r1", "item_a", pcm[k * 960 : (k + 5) * 960]), now)
        c.receive_twilio(tw.Media(frame), now + 0.02)
        c.drain_twilio()
        for m in c.drain_realtime():
            msg = json.loads(m)
            if msg["type"] == "input_audio_buffer.append":
                got.append(np.frombuffer(base64.b64decode(msg["audio"]), "<i2"))
    return np.concatenate(got)[::3].astype(np.float64)


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
