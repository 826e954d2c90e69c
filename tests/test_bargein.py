"""The barge-in policy (issue 15 §2), driven synchronously with explicit timestamps:
a backchannel does not stop the agent, a real interruption does, within the
minimum + 150 ms of its onset, truncated to what was heard."""

from __future__ import annotations

import numpy as np
import pytest

from telephony.audio.vad import EnergyVad
from telephony.call import BargeIn, Call, CallConfig
from telephony.config import Settings
from telephony.testing import lines
from telephony.wire import realtime as rt
from telephony.wire import twilio as tw
from telephony.wire.session import barge_in_fallback_ms, turn_options
from tests.audio_data import caller_pcm8
from tests.test_call_machine import START, audio, drain, kinds

MIN_MS = 400
ANSWER_MS = 4000
FRAME_S = 0.02


def _caller_line(speech_at: float, speech_ms: int, total_s: float) -> list[bytes]:
    """The caller's side as 20 ms mu-law frames: a quiet line (-65 dBFS noise) with
    ``speech_ms`` of the caller sample's speech starting at ``speech_at`` s."""
    n = int(total_s * lines.RATE)
    speech = caller_pcm8()[: speech_ms * 8]
    signal = lines.insert(np.zeros(n, np.int16), speech, speech_at * 1000 - 20)  # the sample's speech begins at 20 ms
    return lines.frames(lines.to_ulaw(lines.BACKCHANNEL.apply(signal)))


def _call(min_ms: int = MIN_MS, fallback_ms: int | None = None) -> Call:
    c = Call(CallConfig(quiet_timeout_s=0, barge_in_min_ms=min_ms, barge_in_fallback_ms=fallback_ms))
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    drain(c)
    return c


def _run(
    c: Call,
    frames: list[bytes],
    server: dict[float, rt.RealtimeEvent],
    answer_ms: int = ANSWER_MS,
) -> tuple[list[tuple[float, dict]], list[tuple[float, dict]], list]:
    """The agent answers in real time (one 100 ms delta every 100 ms from t=0) while
    the caller's frames arrive every 20 ms; ``server`` events come at their times.
    Returns (time, message) for Twilio and Realtime, and the actions."""
    tw_out: list[tuple[float, dict]] = []
    rt_out: list[tuple[float, dict]] = []
    actions: list = []
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    pending = sorted(server.items())
    for k, frame in enumerate(frames):
        now = round((k + 1) * FRAME_S, 6)
        if k % 5 == 0 and k * 20 < answer_ms:
            c.receive_realtime(rt.AudioDelta("r1", "item_a", audio(100)), now - FRAME_S)
        while pending and pending[0][0] <= now:
            c.receive_realtime(pending.pop(0)[1], now)
        c.receive_twilio(tw.Media(frame), now)
        t, r, a = drain(c)
        tw_out += [(now, m) for m in t]
        rt_out += [(now, m) for m in r]
        actions += a
    return tw_out, rt_out, actions


@pytest.mark.parametrize("fallback_ms", [None, 1100])
def test_a_250_ms_backchannel_mid_answer_neither_clears_cancels_nor_truncates(fallback_ms):
    c = _call(fallback_ms=fallback_ms)
    frames = _caller_line(speech_at=1.5, speech_ms=250, total_s=5.0)
    # The server hears the "mhm" too (its speech_stopped comes after its 500 ms silence window).
    server = {1.62: rt.SpeechStarted("u1", 1500), 2.26: rt.SpeechStopped("u1", 1750)}
    tw_out, rt_out, actions = _run(c, frames, server)
    assert not [m for _, m in tw_out if m["event"] == "clear"]
    assert not [m for _, m in rt_out if m["type"] in ("response.cancel", "conversation.item.truncate")]
    assert not kinds(actions, BargeIn)
    # The answer plays in full: every byte of the 4 s answer went to the caller.
    sent = sum(len(m["media"]["payload"]) for _, m in tw_out if m["event"] == "media")
    assert sent >= (ANSWER_MS * 8 - 8) * 4 // 3


@pytest.mark.parametrize("server_at", [1.62, 2.2])  # the server's event before / after the minimum
def test_a_real_interruption_clears_within_min_plus_150_ms_and_truncates_to_what_was_heard(server_at):
    c = _call()
    onset = 1.5
    frames = _caller_line(speech_at=onset, speech_ms=1500, total_s=4.0)
    tw_out, rt_out, actions = _run(c, frames, {server_at: rt.SpeechStarted("u1", 1500)})
    clears = [t for t, m in tw_out if m["event"] == "clear"]
    assert len(clears) == 1
    if server_at < onset + MIN_MS / 1000:
        assert onset + MIN_MS / 1000 <= clears[0] <= onset + (MIN_MS + 150) / 1000
    else:  # the server's confirmation came late: the interruption waits for it, no longer
        assert clears[0] == pytest.approx(server_at, abs=FRAME_S)
    cancel = [t for t, m in rt_out if m["type"] == "response.cancel"]
    assert cancel == [clears[0]]  # the server was told not to cut the answer: we cancel it
    (truncate,) = [m for _, m in rt_out if m["type"] == "conversation.item.truncate"]
    # The answer streams in real time from t=0 and nothing was echoed: what was heard at
    # the clear is what played until then (minus the resampler's delay).
    heard_ms = clears[0] * 1000
    assert abs(truncate["audio_end_ms"] - heard_ms) <= 120
    assert truncate["item_id"] == "item_a"
    assert len(kinds(actions, BargeIn)) == 1


def test_speech_the_server_never_confirms_does_not_interrupt():
    c = _call()
    frames = _caller_line(speech_at=1.0, speech_ms=1500, total_s=3.0)
    tw_out, rt_out, actions = _run(c, frames, {})
    assert not [m for _, m in tw_out if m["event"] == "clear"] and not kinds(actions, BargeIn)
    assert not [m for _, m in rt_out if m["type"] == "response.cancel"]


def test_min_zero_keeps_the_immediate_barge_in_on_speech_started():
    c = _call(min_ms=0)
    frames = _caller_line(speech_at=1.5, speech_ms=250, total_s=2.0)
    tw_out, rt_out, _ = _run(c, frames, {1.62: rt.SpeechStarted("u1", 1500)})
    assert [t for t, m in tw_out if m["event"] == "clear"] == [1.62]
    assert not [m for _, m in rt_out if m["type"] == "response.cancel"]  # the server cancels itself


def test_the_policy_turns_off_the_servers_own_interruption_in_turn_options():
    assert turn_options(Settings(_env_file=None, barge_in_min_ms=400))["interrupt_response"] is False
    assert turn_options(Settings(_env_file=None, barge_in_min_ms=0))["interrupt_response"] is True
    # Never interrupting (interrupt_response=false) stays so whatever the minimum.
    off = Settings(_env_file=None, barge_in_min_ms=400, interrupt_response=False)
    assert turn_options(off)["interrupt_response"] is False


def test_vad_measures_a_backchannel_below_and_speech_above_the_minimum_on_each_line():
    """Accuracy of the energy VAD on the test speech through the kit's lines (the
    figures behind the 400 ms default): a 250 ms "mhm" measures < 300 ms, 1.5 s of
    speech reaches 400 ms within 60 ms of it, and steady noise stops counting."""
    for line in (lines.BACKCHANNEL, lines.NOISY, lines.SPEAKERPHONE):
        for speech_ms, longest in ((250, 0.3), (1500, 1.4)):
            n = 5 * lines.RATE
            signal = lines.insert(np.zeros(n, np.int16), caller_pcm8()[: speech_ms * 8], 2980)
            vad = EnergyVad()
            most, reached = 0.0, None
            for k, f in enumerate(lines.frames(lines.to_ulaw(line.apply(signal)))):
                now = (k + 1) * FRAME_S
                vad.frame(f, now)
                if now > 2.0:  # the floor has learnt the line
                    most = max(most, vad.speech_s)
                    if reached is None and vad.speech_s >= 0.4:
                        reached = now
            if speech_ms == 250:
                assert most < longest, (line.name, most)
            else:
                assert most >= longest, (line.name, most)
                assert reached is not None and reached <= 3.0 + 0.4 + 0.06, (line.name, reached)


def test_a_protected_greeting_plays_in_full_and_an_interruptible_one_is_cut():
    config = CallConfig(quiet_timeout_s=0, barge_in_min_ms=MIN_MS, greeting="Hi!", greeting_interruptible=False)
    c = Call(config)
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)  # asks for the greeting
    drain(c)
    frames = _caller_line(speech_at=1.5, speech_ms=1500, total_s=4.0)
    tw_out, rt_out, actions = _run(c, frames, {1.62: rt.SpeechStarted("u1", 1500)})
    assert not [m for _, m in tw_out if m["event"] == "clear"] and not kinds(actions, BargeIn)
    assert not [m for _, m in rt_out if m["type"] == "response.cancel"]
    # Interruptible (the default): the same greeting is cut.
    c = Call(CallConfig(quiet_timeout_s=0, barge_in_min_ms=MIN_MS, greeting="Hi!"))
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    drain(c)
    tw_out, _, _ = _run(c, frames, {1.62: rt.SpeechStarted("u1", 1500)})
    assert len([m for _, m in tw_out if m["event"] == "clear"]) == 1


def test_jittery_delivery_does_not_stretch_a_backchannel_into_an_interruption():
    """Bursty arrival (frames held back up to 250 ms, then released at once) must not
    make a 250 ms "mhm" look longer: durations are in audio time, not arrival time."""
    frames = _caller_line(speech_at=1.5, speech_ms=250, total_s=3.0)
    for seed in (36, 38, 44, 45, 0, 1, 2):  # 36: arrival times would stretch it to 451 ms
        c = _call()
        c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
        c.receive_realtime(rt.AudioDelta("r1", "item_a", audio(4000)), 0.0)
        c.receive_realtime(rt.SpeechStarted("u1", 0), 0.0)  # the worst case: the server says speech throughout
        c.drain_twilio(), c.drain_realtime()
        for at_ms, frame in lines.bursty(frames, 250.0, seed=seed):
            c.receive_twilio(tw.Media(frame), at_ms / 1000 + 0.02)
        assert not [m for m in c.drain_twilio() if '"clear"' in m], seed


FALLBACK_MS = MIN_MS + 500 + 200  # the minimum + the server's silence window + 200 ms


def test_the_fallback_is_the_minimum_plus_the_silence_window_with_server_vad_only():
    s = Settings(_env_file=None, barge_in_min_ms=400, vad_silence_ms=500)
    assert barge_in_fallback_ms(s) == FALLBACK_MS
    assert barge_in_fallback_ms(Settings(_env_file=None, barge_in_min_ms=0)) is None  # policy off
    assert barge_in_fallback_ms(Settings(_env_file=None, barge_in_min_ms=400, turn_detection="semantic_vad")) is None
    assert barge_in_fallback_ms(Settings(_env_file=None, barge_in_min_ms=400, interrupt_response=False)) is None


@pytest.mark.parametrize("fallback_ms", [None, FALLBACK_MS])
def test_speech_only_the_server_hears_interrupts_after_the_fallback(fallback_ms):
    """A caller the energy detector misses (here: quieter than its -45 dBFS floor, on a
    silent line) still takes the turn once the server has heard them for longer than
    any backchannel lasts; without a fallback they never can."""
    c = _call(fallback_ms=fallback_ms)
    n = int(3.5 * lines.RATE)
    quiet_speech = (caller_pcm8()[: 2 * lines.RATE].astype(float) * 10 ** (-40 / 20)).astype(np.int16)
    signal = lines.insert(np.zeros(n, np.int16), quiet_speech, 1480)
    frames = lines.frames(lines.to_ulaw(signal))
    tw_out, rt_out, actions = _run(c, frames, {1.62: rt.SpeechStarted("u1", 1500)})
    clears = [t for t, m in tw_out if m["event"] == "clear"]
    if fallback_ms is None:
        assert clears == [] and not kinds(actions, BargeIn)
        return
    # counted in audio time from the frame before the server's event: one frame either way
    assert len(clears) == 1 and abs(clears[0] - (1.62 + FALLBACK_MS / 1000)) <= FRAME_S + 1e-9
    assert [t for t, m in rt_out if m["type"] == "response.cancel"] == clears
    (truncate,) = [m for _, m in rt_out if m["type"] == "conversation.item.truncate"]
    assert abs(truncate["audio_end_ms"] - clears[0] * 1000) <= 120
    assert len(kinds(actions, BargeIn)) == 1


def test_the_fallback_acts_once_per_server_turn_and_not_after_the_policy_did():
    c = _call(fallback_ms=FALLBACK_MS)
    frames = _caller_line(speech_at=1.5, speech_ms=2500, total_s=4.5)  # loud: the detector fires first
    tw_out, _, actions = _run(c, frames, {1.62: rt.SpeechStarted("u1", 1500)}, answer_ms=4500)
    clears = [t for t, m in tw_out if m["event"] == "clear"]
    assert len(clears) == 1 and clears[0] <= 1.5 + (MIN_MS + 150) / 1000
    assert len(kinds(actions, BargeIn)) == 1


@pytest.mark.parametrize("burst", [1, 3])
def test_lost_frames_do_not_make_a_noisy_lines_hiss_count_as_speech(burst):
    """A lost frame arrives as silence: it is not the line's noise. If it pulled the
    floor down, the -35 dBFS hiss of a noisy line would count as speech."""
    noise = lines.NOISY.apply(np.zeros(10 * lines.RATE, np.int16))
    frames = lines.lose(lines.frames(lines.to_ulaw(noise)), 0.05, burst=burst, seed=7)
    assert sum(f == b"\xff" * 160 for f in frames) > 10  # some were lost
    vad = EnergyVad()
    voiced = [vad.frame(f, (k + 1) * FRAME_S) for k, f in enumerate(frames)]
    assert not any(voiced[100:])  # once the floor has learnt the line (2 s)
    assert -37.0 < vad.floor_dbfs < -34.0


def test_after_the_fallback_the_detector_does_not_interrupt_again_in_the_same_server_turn():
    """The server's word alone cut the agent (the caller was too quiet for the local
    detector); when the caller then speaks up within that same turn, nothing more is cut."""
    from telephony.call.bargein import BargeInPolicy

    policy = BargeInPolicy(MIN_MS, FALLBACK_MS)
    quiet, loud = 30.0**2, 8000.0**2  # mean squares: below the -45 dBFS floor, well above
    for _ in range(100):  # 2 s of a quiet line: the floor settles
        assert not policy.frame(quiet / 100, 160)
    assert not policy.speech_started()
    fired = []
    for k in range(150):  # 3 s: quiet speech, then loud from 1.5 s on
        if policy.frame(quiet if k < 75 else loud, 160):
            fired.append(k)
    assert fired == [54]  # the fallback, after 55 frames (1.1 s); the loud speech after it is the same turn
    policy.speech_stopped()
    assert not any(policy.frame(quiet / 100, 160) for _ in range(30))  # a pause: the run ends
    assert not policy.speech_started()  # a new turn of the server's...
    later = [k for k in range(40) if policy.frame(loud, 160)]
    assert later == [19]  # ...is the detector's to decide again (400 ms of the run)
