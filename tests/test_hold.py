"""No dead air while tools run (issue 15 §3): the hold sound, driven synchronously
with explicit timestamps; what the caller hears is replayed from what was sent."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.lines import Caller
from telephony.audio.g711 import ULAW_TO_FLOAT
from telephony.audio.hold import builtin_hold_sound, hold_sound
from telephony.call import Call, CallConfig
from telephony.wire import realtime as rt
from tests.test_call_machine import START, audio

SOUND = builtin_hold_sound()


def _call(sound: bytes | None = SOUND) -> Call:
    c = Call(CallConfig(quiet_timeout_s=0, dead_air_s=0, hold_sound=sound, hold_after_s=1.0))
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    c.drain_twilio(), c.drain_realtime(), c.drain_actions()
    return c


def _advance(c: Call, caller: Caller, until: float) -> None:
    for _ in range(10000):
        d = c.next_deadline()
        if d is None or d > until:
            return
        c.tick(d)
        caller.take(c, d, "hold")
    raise AssertionError("the deadline does not advance")


def _slow_tool(c: Call, caller: Caller, tool_s: float = 6.0) -> float:
    """The model calls a tool at t=0.5 that takes ``tool_s``; then the answer (2 s)
    arrives 0.4 s later. Returns when the answer's first audio was sent."""
    c.receive_realtime(rt.ResponseCreated("r1"), 0.4)
    c.receive_realtime(rt.FunctionCallDone("r1", "fc_1", "call_1", "lookup", "{}"), 0.5)
    c.receive_realtime(rt.ResponseDone("r1", "completed", None, None), 0.5)
    caller.take(c, 0.5, "hold")
    _advance(c, caller, 0.5 + tool_s)
    c.tool_finished("call_1", '{"ok": true}', 0.5 + tool_s)
    caller.take(c, 0.5 + tool_s, "hold")
    first = 0.5 + tool_s + 0.4
    _advance(c, caller, first)
    c.receive_realtime(rt.ResponseCreated("r2"), first)
    for k in range(20):  # 2 s of answer, streamed in real time
        t = first + k * 0.1
        _advance(c, caller, t)
        c.receive_realtime(rt.AudioDelta("r2", "item_b", audio(100)), t)
        caller.take(c, t, "answer")
    c.receive_realtime(rt.AudioDone("r2", "item_b"), first + 2.0)
    caller.take(c, first + 2.0, "answer")
    return first


def test_a_6_s_tool_leaves_no_silence_over_2_s_and_the_answer_plays_in_full_after_the_hold():
    c, caller = _call(), Caller()
    first = _slow_tool(c, caller)
    assert caller.gaps(0.5, first) <= 1.0 + 0.021  # the hold sound starts 1 s into the tool
    hold = [(s, e) for s, e, k in caller.heard if k == "hold"]
    assert hold and hold[0][0] == 1.5
    # Gone before the answer's first audio: nothing of the hold plays past it (overlap 0).
    answer = [(s, e) for s, e, k in caller.heard if k == "answer"]
    assert max(e for _, e in hold) <= answer[0][0] == first
    # The answer is heard in full: 2 s of it, in one stretch.
    assert sum(e - s for s, e in answer) >= 2.0 - 0.003
    # The hold's marks are its own (h<n>), never the playback clock's.
    assert any(m.startswith("h") for m in caller.marks)


def test_the_hold_sound_never_counts_as_agent_speech_for_truncation():
    c, caller = _call(), Caller()
    first = _slow_tool(c, caller, tool_s=3.0)
    c.drain_realtime()
    c.receive_realtime(rt.SpeechStarted("u1", 0), first + 0.3)  # the caller cuts the answer 300 ms in
    out = [json.loads(m) for m in c.drain_realtime()]
    (truncate,) = [m for m in out if m["type"] == "conversation.item.truncate"]
    assert truncate["item_id"] == "item_b" and 295 <= truncate["audio_end_ms"] <= 300


def test_the_hold_waits_for_the_agents_words_and_stops_when_the_caller_speaks():
    c, caller = _call(), Caller()
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    c.receive_realtime(rt.AudioDelta("r1", "item_a", audio(2000)), 0.0)  # "let me check" (2 s)
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.0)
    caller.take(c, 0.0, "answer")
    c.receive_realtime(rt.FunctionCallDone("r1", "fc_1", "call_1", "lookup", "{}"), 0.1)
    c.receive_realtime(rt.ResponseDone("r1", "completed", None, None), 0.1)
    _advance(c, caller, 4.0)
    hold = [s for s, _, k in caller.heard if k == "hold"]
    assert hold and 2.0 <= hold[0] <= 2.03  # not over the agent's words: right after them
    c.receive_realtime(rt.SpeechStarted("u1", 0), 4.0)
    caller.take(c, 4.0, "hold")
    assert max(e for _, e, k in caller.heard if k == "hold") <= 4.0


def test_no_hold_sound_when_off_and_none_for_a_quick_tool():
    for sound, tool_s in ((None, 6.0), (SOUND, 0.9)):
        c, caller = _call(sound), Caller()
        c.receive_realtime(rt.FunctionCallDone("r1", "fc_1", "call_1", "lookup", "{}"), 0.5)
        _advance(c, caller, 0.5 + tool_s)
        c.tool_finished("call_1", "{}", 0.5 + tool_s)
        caller.take(c, 0.5 + tool_s, "hold")
        _advance(c, caller, 10.0)
        assert caller.heard == [] and (c.next_deadline() or 1e9) > 3000  # only the session rollover


def test_the_builtin_sound_is_soft_seamless_and_never_silent_for_long():
    assert hold_sound("off") is None and hold_sound("builtin") == SOUND
    x = ULAW_TO_FLOAT[np.frombuffer(SOUND, np.uint8)]
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(x**2)) / (32767 / np.sqrt(2)))
    assert -33 <= rms_dbfs <= -27
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    quiet = np.sqrt((frames**2).mean(axis=1)) < 30  # about -60 dBFS
    longest, run = 0, 0
    for q in np.concatenate([quiet, quiet]):  # across the loop's seam too
        run = run + 1 if q else 0
        longest = max(longest, run)
    assert longest * 20 <= 200
    assert abs(x[0]) < 200 and abs(x[-1]) < 200  # both ends fade to nothing: no click at the seam


def test_a_hold_sound_wav_is_read_and_a_bad_path_fails_at_start(tmp_path):
    import pytest

    from telephony.audio.wav import write_wav
    from telephony.config import Settings

    path = tmp_path / "hold.wav"
    write_wav(path, (np.sin(np.arange(24000) / 10) * 3000).astype(np.int16), 24000)
    assert abs(len(hold_sound(str(path)) or b"") - 8000) <= 40
    with pytest.raises(ValueError, match="TELEPHONY_HOLD_SOUND"):
        Settings(_env_file=None, hold_sound=str(tmp_path / "missing.wav"))
