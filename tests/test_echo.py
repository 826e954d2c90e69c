"""The echo canceller (telephony.audio.echo) on speech through echo paths, and the
line impairments of the test kit (telephony.testing.lines).

The signals are the ones ``python -m benchmarks.echo`` measures: the agent's
voice as the caller is played it, its echo (delay, 40 ms room, level below the
agent), light noise, mu-law as Twilio delivers it. All deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.echo import (
    DOUBLE_TALK_AT_S,
    FRAME,
    Case,
    agent_played,
    change_db,
    double_talk_correlation,
    erle_db,
    make_case,
)
from telephony.audio import EchoCanceller, ModelToCaller
from telephony.audio.hold import builtin_hold_sound
from telephony.call import Call, CallConfig
from telephony.testing import lines
from telephony.wire import realtime as rt
from telephony.wire import twilio as tw
from tests.audio_data import agent_pcm24, caller_pcm8, caller_ulaw
from tests.test_call_machine import START, drain


def cancel(case: Case, aec: EchoCanceller | None = None) -> np.ndarray:
    aec = aec or EchoCanceller()
    out = np.zeros(case.line.shape[0], np.int16)
    for i in range(0, case.line.shape[0], FRAME):
        aec.played(case.played[i : i + FRAME])
        out[i : i + FRAME] = aec.process(case.line[i : i + FRAME])
    return out


# --- the canceller ------------------------------------------------------------------

PATHS = [(d, lv) for d in (50, 150, 300) for lv in (6, 20)]


@pytest.mark.parametrize(("delay_ms", "level_db"), PATHS)
def test_echo_is_cancelled_by_30_db_after_1_s(delay_ms, level_db):
    # Issue 15's target, on every path: the echo starts at its delay, the agent
    # pauses 0.6-0.8 s, and the second second brings sounds the first barely had.
    case = make_case(delay_ms, level_db)
    aec = EchoCanceller()
    out = cancel(case, aec)
    assert erle_db(case, out, 1.0) >= 30.0
    assert erle_db(case, out, 3.5, 3.0) >= 30.0  # and it stays there
    assert aec.delay_ms is not None and abs(aec.delay_ms - delay_ms) <= 2


def test_the_work_per_call_is_bounded_and_none_without_echo():
    # What costs CPU, counted (not timed): the least-squares fits, the looks for the
    # echo, and the frames filtered. One fit every 200 ms for the first second after
    # the echo is found, then one per 5 s of the agent's audio; a look every
    # 5-10 frames until found, then one per 2 s; frames filtered only once a fit was
    # taken, none while nothing was played within the tail.
    case = make_case(150, 12)
    aec = EchoCanceller()
    cancel(case, aec)
    frames = case.line.shape[0] // FRAME  # 333: the agent speaks throughout
    assert aec.work.fits <= 5 + 1
    assert aec.work.looks <= 8
    assert frames - 40 <= aec.work.filtered <= frames - 15  # from the first fit taken on
    # A call like the load benchmark's (the agent answers 1.5 s every 3 s) on a line
    # with no echo (the caller talks throughout): no fit, no frame filtered, and
    # after the first 3 s of the agent's audio a look every 25 frames.
    aec = EchoCanceller()
    caller = np.resize(caller_pcm8(), 30 * 8000)
    played = agent_played()[: 3 * 8000 // 2]
    silent = np.zeros(FRAME, np.int16)
    for k in range(30 * 50):  # 30 s
        t = k % 150  # frames into each 3 s
        aec.played(played[t * FRAME : (t + 1) * FRAME] if t < 75 else silent)
        aec.process(caller[k * FRAME : (k + 1) * FRAME])
    assert aec.work.fits == 0 and aec.work.filtered == 0 and aec.delay_ms is None
    assert aec.work.active == 10 * (75 + 21)  # 1.5 s of audio and the 400 ms tail (+1 frame), 10 times
    assert aec.work.looks <= 10 + 10 + (10 * 96 - 150) // 25 + 1


def test_the_callers_voice_survives_double_talk():
    case = make_case(150, 12, talk_at_s=DOUBLE_TALK_AT_S)
    out = cancel(case)
    assert double_talk_correlation(case, out) >= 0.9
    # and the echo is still cancelled while the caller talks over it
    a = round(DOUBLE_TALK_AT_S * 8000)
    residual = out[a:].astype(float) - (case.line[a:].astype(float) - case.echo[a:])
    assert 10 * np.log10(np.sum(case.echo[a:].astype(float) ** 2) / np.sum(residual**2)) >= 20.0


def _speakerphone_call(
    caller_at_s: float | None, server: dict[float, rt.RealtimeEvent], aec: bool = True
) -> list[float]:
    """A call on the kit's speakerphone line (echo 150 ms, 10 dB down, a room) with
    the barge-in policy's default minimum: the agent answers for 6 s (100 ms deltas
    in real time), the caller (optionally) talks over it for 1.5 s from
    ``caller_at_s``, the server's events come at their times. Returns the times
    of the ``clear`` messages sent to Twilio."""
    c = Call(CallConfig(quiet_timeout_s=0, echo_cancellation=aec, barge_in_min_ms=400))
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    drain(c)
    seconds = 6
    pcm = np.tile(agent_pcm24(), 2)[: 24000 * seconds].astype("<i2").tobytes()
    down = ModelToCaller()
    played = lines.from_ulaw(down.convert(pcm) + down.flush())[: 8000 * seconds]
    caller = np.zeros(8000 * seconds, np.int16)
    if caller_at_s is not None:
        caller = lines.insert(caller, caller_pcm8()[: 1500 * 8], caller_at_s * 1000 - 20)  # speech from 20 ms in
    frames = lines.frames(lines.to_ulaw(lines.SPEAKERPHONE.apply(caller, played)))
    pending = sorted(server.items())
    clears = []
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    for k, frame in enumerate(frames[: 50 * seconds]):
        now = round(k * 0.02, 6)
        if k % 5 == 0:
            c.receive_realtime(rt.AudioDelta("r1", "item_a", pcm[k * 960 : (k + 5) * 960]), now)
        while pending and pending[0][0] <= now + 0.02:
            c.receive_realtime(pending.pop(0)[1], now + 0.02)
        c.receive_twilio(tw.Media(frame), now + 0.02)
        tw_out, _, _ = drain(c)
        clears += [now + 0.02 for m in tw_out if m["event"] == "clear"]
    return clears


def test_barge_in_still_triggers_during_double_talk_and_the_echo_alone_does_not():
    # The server's VAD hears the echo as speech at 1.5 s: with the canceller, the
    # local detector (on the cleaned audio) does not, so the agent is not cut...
    echo_heard = {1.5: rt.SpeechStarted("u0", 1500)}
    assert _speakerphone_call(None, echo_heard) == []
    assert _speakerphone_call(None, echo_heard, aec=False) != []  # (without it, it is)
    # ...while the caller talking over the agent from 4 s still interrupts it within
    # the minimum + 150 ms of the speech's onset.
    clears = _speakerphone_call(4.0, {**echo_heard, 4.12: rt.SpeechStarted("u1", 4120)})
    assert len(clears) == 1 and 4.0 < clears[0] <= 4.0 + 0.4 + 0.15


def test_the_callers_voice_survives_talking_over_the_agent_from_the_start():
    # No pause to learn the echo in: it is not cancelled, but the voice is intact.
    case = make_case(150, 12, talk_at_s=0.0)
    out = cancel(case)
    assert np.corrcoef(out.astype(float), case.caller.astype(float))[0, 1] >= 0.9


def test_a_changed_echo_path_is_found_again_and_never_made_much_worse():
    played = np.tile(agent_played(), 2)
    n = played.shape[0] - played.shape[0] % FRAME
    played, change = played[:n], n // 2
    echo = np.concatenate([lines.echo(played, 150, 10)[:change], lines.echo(played, 300, 10)[change:]])
    line = lines.from_ulaw(lines.to_ulaw(lines.mix(echo, lines.noise(n, -65.0, seed=1))))
    case = Case(played, line, echo, np.zeros(n, np.int16))
    aec = EchoCanceller()
    out = cancel(case, aec)
    t = change / 8000
    assert erle_db(case, out, t - 1.0) >= 30.0  # before the change
    assert erle_db(case, out, t + 1.0, 0.5) >= 3.0  # the old filter was dropped, not subtracted on
    assert erle_db(case, out, t + 2.0) >= 25.0  # and the new path learnt
    assert aec.delay_ms is not None and abs(aec.delay_ms - 300) <= 20


def test_an_echo_that_appears_late_is_found_and_the_line_untouched_before():
    # A caller who switches to speakerphone after 6.6 s of the agent talking.
    played = np.tile(agent_played(), 2)
    n = played.shape[0] - played.shape[0] % FRAME
    played, change = played[:n], n // 2
    echo = lines.echo(played, 150, 10)
    echo[:change] = 0
    line = lines.from_ulaw(lines.to_ulaw(lines.mix(echo, lines.noise(n, -65.0, seed=1))))
    case = Case(played, line, echo, np.zeros(n, np.int16))
    out = cancel(case)
    assert np.array_equal(out[:change], line[:change])
    assert erle_db(case, out, change / 8000 + 2.5) >= 25.0


def test_the_echo_of_the_hold_sound_is_never_made_louder():
    # A looped pair of tones: its correlation peaks at many delays, and the canceller
    # may not find its echo (not cancelled, a limit), but it must not add to it.
    played = np.tile(lines.from_ulaw(builtin_hold_sound()), 4)[: 8 * 8000]
    n = played.shape[0]
    echo = lines.echo(played, 150, 12)
    line = lines.from_ulaw(lines.to_ulaw(lines.mix(echo, lines.noise(n, -65.0, seed=1))))
    case = Case(played, line, echo, np.zeros(n, np.int16))
    out = cancel(case)
    assert min(erle_db(case, out, s) for s in range(7)) >= -1.0


def test_a_line_without_echo_is_left_alone_while_the_agent_speaks():
    case = make_case(None, talk_at_s=0.0)
    assert change_db(case, cancel(case)) < -30.0


def test_with_nothing_played_the_callers_frames_pass_untouched():
    caller = caller_pcm8()[: 50 * FRAME]
    aec = EchoCanceller()
    for i in range(0, caller.shape[0], FRAME):
        aec.played(np.zeros(FRAME, np.int16))
        assert np.array_equal(aec.process(caller[i : i + FRAME]), caller[i : i + FRAME])


def test_reference_fed_ahead_is_queued_and_paired_frame_by_frame():
    case = make_case(50, 6)
    n = 100 * FRAME
    step = cancel(Case(case.played[:n], case.line[:n], case.echo[:n], case.caller[:n]))
    aec = EchoCanceller()
    ahead = np.zeros(n, np.int16)
    aec.played(case.played[: 5 * FRAME])  # five frames ahead of the line
    for i in range(0, n, FRAME):
        if i + 5 * FRAME < n:
            aec.played(case.played[i + 5 * FRAME : i + 6 * FRAME])
        ahead[i : i + FRAME] = aec.process(case.line[i : i + FRAME])
    assert np.array_equal(step, ahead)


def test_a_missing_reference_counts_as_silence():
    aec = EchoCanceller()
    frame = caller_pcm8()[:FRAME]
    assert np.array_equal(aec.process(frame), frame)  # nothing was ever played


def test_frames_of_the_wrong_size_and_too_short_tails_are_refused():
    aec = EchoCanceller()
    with pytest.raises(ValueError, match="160 samples"):
        aec.process(np.zeros(80, np.int16))
    with pytest.raises(ValueError, match="tail_ms"):
        EchoCanceller(tail_ms=40)


def test_reset_forgets_the_echo_path():
    case = make_case(150, 6)
    aec = EchoCanceller()
    cancel(case, aec)
    aec.reset()
    assert aec.delay_ms is None
    assert np.array_equal(cancel(case, aec), cancel(case))


# --- the line impairments -----------------------------------------------------------


def test_echo_has_the_delay_and_level_it_was_asked_for():
    played = agent_played()
    for delay_ms, level_db in ((50, 6), (150, 12), (300, 20)):
        e = lines.echo(played, delay_ms, level_db, seed=3)
        assert e.dtype == np.int16 and e.shape == played.shape
        assert lines.rms_db(played) - lines.rms_db(e) == pytest.approx(level_db, abs=0.05)
        # on white noise, cross-correlation peaks at the delay (the direct path)
        x = lines.noise(16000, -20.0, seed=9).astype(float)
        y = lines.echo(x, delay_ms, level_db, seed=3).astype(float)
        corr = [np.dot(y[lag:], x[: x.shape[0] - lag]) for lag in range(400 * 8)]
        assert int(np.argmax(corr)) == delay_ms * 8


def test_room_response_has_unit_energy_and_decays():
    h = lines.room_response(100, 40, seed=1)
    assert np.sum(h * h) == pytest.approx(1.0)
    assert not h[:800].any() and h[800] != 0.0  # silent until the direct path
    tail = h[801:]
    assert np.sum(tail[:100] ** 2) > 100 * np.sum(tail[-100:] ** 2)  # > 20 dB of decay
    assert np.array_equal(h, lines.room_response(100, 40, seed=1))
    assert not np.array_equal(h, lines.room_response(100, 40, seed=2))


def test_noise_is_at_its_level_and_seeded():
    a = lines.noise(8000, -40.0, seed=1)
    assert lines.rms_db(a) == pytest.approx(-40.0, abs=0.2)
    assert np.array_equal(a, lines.noise(8000, -40.0, seed=1))
    assert not np.array_equal(a, lines.noise(8000, -40.0, seed=2))


def test_insert_puts_an_utterance_at_its_time_and_nowhere_else():
    base = np.zeros(8000, np.int16)
    mhm = np.full(2000, 1000, np.int16)  # a 250 ms "mhm"
    out = lines.insert(base, mhm, 500)
    assert np.flatnonzero(out)[0] == 4000 and np.flatnonzero(out)[-1] == 5999
    louder = lines.insert(base, mhm, 500, gain_db=6)
    assert louder[4000] == round(1000 * 10 ** (6 / 20))
    cut = lines.insert(base, mhm, 900)  # runs past the end: cut there
    assert cut.shape == base.shape and np.count_nonzero(cut) == 800
    with pytest.raises(ValueError, match="outside"):
        lines.insert(base, mhm, 1000)


def test_mix_saturates_like_a_line():
    a = np.array([30000, -30000, 5], np.int16)
    assert lines.mix(a, a).tolist() == [32767, -32768, 10]
    assert lines.mix(a, np.array([1], np.int16)).tolist() == [30001, -30000, 5]


def test_frames_and_join_round_trip_pcm_and_ulaw():
    x = caller_pcm8()[:1000]
    fr = lines.frames(x)
    assert len(fr) == 7 and all(f.shape == (160,) for f in fr)
    assert np.array_equal(lines.join(fr)[:1000], x) and not lines.join(fr)[1000:].any()
    u = lines.to_ulaw(x)
    fu = lines.frames(u)
    assert all(len(f) == 160 for f in fu) and lines.join(fu)[:1000] == u
    assert np.array_equal(lines.from_ulaw(u)[:10], lines.from_ulaw(lines.to_ulaw(lines.from_ulaw(u)))[:10])


def test_lost_frames_are_silence_and_the_rest_untouched():
    fr = lines.frames(caller_pcm8())
    out = lines.lose(fr, 0.2, seed=4)
    assert len(out) == len(fr)
    lost = [i for i, f in enumerate(out) if not f.any()]
    assert 0.1 * len(fr) < len(lost) < 0.3 * len(fr)
    assert all(np.array_equal(out[i], fr[i]) for i in range(len(fr)) if i not in lost)
    assert [not f.any() for f in lines.lose(fr, 0.2, seed=4)] == [not f.any() for f in out]
    # mu-law frames are lost as mu-law silence; bursts lose consecutive frames
    fu = lines.frames(lines.to_ulaw(caller_pcm8()))
    bursts = lines.lose(fu, 0.3, burst=3, seed=5)
    silent = [f == bytes([0xFF]) * 160 for f in bursts]
    assert any(silent[i] and silent[i + 1] and silent[i + 2] for i in range(len(silent) - 2))
    assert lines.lose(fr, 0.0) == fr


def test_bursty_delivery_keeps_every_frame_in_order_and_holds_them_back():
    fr = lines.frames(caller_pcm8())
    out = lines.bursty(fr, max_hold_ms=120, seed=6)
    assert [id(f) for _, f in out] == [id(f) for f in fr]  # every frame, once, in order
    times = [t for t, _ in out]
    assert times == sorted(times)
    assert all(k * 20 <= t <= k * 20 + 120 for k, t in enumerate(times))
    assert len(set(times)) < len(times) / 2  # released in bursts
    assert out == lines.bursty(fr, max_hold_ms=120, seed=6)


def test_a_speakerphone_line_adds_the_agents_echo_and_noise():
    played = agent_played()
    caller = np.zeros(played.shape[0], np.int16)
    line = lines.SPEAKERPHONE.apply(caller, played)
    expected = lines.echo(played, 150, 10)
    assert np.corrcoef(line.astype(float), expected.astype(float))[0, 1] > 0.99
    assert lines.rms_db(lines.NOISY.apply(caller)) == pytest.approx(-35.0, abs=0.3)


def test_a_noisy_line_loses_and_jitters_frames_as_configured():
    fr = lines.frames(lines.to_ulaw(caller_pcm8()))
    out = lines.NOISY.deliver(fr)
    assert len(out) == len(fr)
    times = [t for t, _ in out]
    assert times == sorted(times) and all(k * 20 <= t <= k * 20 + 60 for k, t in enumerate(times))
    lost = sum(f == bytes([0xFF]) * 160 and g != f for (_, f), g in zip(out, fr, strict=True))
    assert 0 < lost < 0.06 * len(fr)
    assert lines.BACKCHANNEL.deliver(fr) == [(k * 20.0, f) for k, f in enumerate(fr)]


def test_the_echo_benchmark_runs_and_prints_its_row(capsys):
    from benchmarks.echo import main

    assert main(["--quick"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ours")]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == 1 + 6 + 4  # name, 3 delays x 2 levels, 4 measures
    assert all(float(c.split()[0]) >= 30 for c in cells[1:7])  # ERLE at 1 s
    assert float(cells[7]) >= 0.9 and float(cells[8]) < -30  # double talk, no echo
    assert len(rows) == 2 and len(rows[1].strip("|").split("|")) == 3  # and its CPU over a call


# --- the call's echo path (telephony.call.aec.EchoPath) ------------------------------


def test_the_echo_path_passes_the_cancellers_16_bit_output_and_skips_it_when_idle():
    """What the bridge gives the model is the canceller's output as is (no second
    mu-law quantisation), and while nothing has played the canceller is not even called."""
    from telephony.audio.g711 import ULAW_TO_INT
    from telephony.call.aec import EchoPath

    case = make_case(150, 12)
    played, line = lines.to_ulaw(case.played), lines.to_ulaw(case.line)
    path, direct = EchoPath(), EchoCanceller()
    quiet = lines.to_ulaw(caller_pcm8()[: 25 * FRAME] // 8)
    for k in range(25):  # half a second of the caller alone: nothing to do
        assert path.process(quiet[k * FRAME : (k + 1) * FRAME], k * 0.02) is None
    assert path.canceller.work.active == 0 and path.canceller.idle
    path.sent(played, 0.5)  # Twilio plays it from 0.5 s on, 20 ms per caller frame
    cleaned = 0
    for j in range(len(line) // FRAME):
        frame = line[j * FRAME : (j + 1) * FRAME]  # the line from then on: the caller hears it
        out = path.process(frame, 0.5 + (j + 1) * 0.02)  # (a frame arrives once captured)
        direct.played(ULAW_TO_INT[np.frombuffer(played[j * FRAME : (j + 1) * FRAME], np.uint8)])
        expected = direct.process(ULAW_TO_INT[np.frombuffer(frame, np.uint8)])
        if out is None:
            assert np.array_equal(expected, ULAW_TO_INT[np.frombuffer(frame, np.uint8)])
        else:
            cleaned += 1
            assert out.dtype == np.int16 and np.array_equal(out, expected)
    assert cleaned > 100  # the echo was found and cancelled, bit for bit as by the canceller itself


def test_calls_share_the_fits_work_arrays_without_crosstalk():
    """Two calls' cancellers, run interleaved frame by frame in one thread (as one
    event loop runs its calls), give exactly what each gives alone: the ~2 MB of
    least-squares work arrays are shared, nothing of one call's fit leaks into the other."""
    from telephony.audio.echo_estimate import shared_fit

    a_case, b_case = make_case(50, 6), make_case(300, 20, seed=1)
    alone = [cancel(a_case), cancel(b_case)]
    cancellers = [EchoCanceller(), EchoCanceller()]
    together = [np.zeros_like(alone[0]), np.zeros_like(alone[1])]
    for i in range(0, a_case.line.shape[0], FRAME):
        for k, case in enumerate((a_case, b_case)):
            cancellers[k].played(case.played[i : i + FRAME])
            together[k][i : i + FRAME] = cancellers[k].process(case.line[i : i + FRAME])
    assert np.array_equal(together[0], alone[0]) and np.array_equal(together[1], alone[1])
    assert cancellers[0].work.fits > 1 and cancellers[1].work.fits > 1
    assert cancellers[0]._fit is cancellers[1]._fit is shared_fit(256, 24, 40.0)


def test_an_odd_sized_frame_keeps_the_echo_path_aligned_and_idle_afterwards():
    """A frame of another size passes as is and skips what played meanwhile: the
    reference does not run ahead of the line, and once the agent's audio is over the
    canceller goes idle again (not called at all)."""
    from telephony.call.aec import EchoPath

    path = EchoPath()
    path.sent(lines.to_ulaw(agent_played()[: 8000 // 2]), 0.0)  # 0.5 s of the agent
    frame = lines.to_ulaw(caller_pcm8()[:FRAME] // 8)
    t = 0.0
    for _ in range(10):
        path.process(frame, t)
        t += 0.02
    assert path.process(frame[:80], t) is None  # 10 ms: passed as is
    t += 0.01
    for _ in range(60):  # the rest of the agent's audio, then its tail (400 ms), then more
        path.process(frame, t)
        t += 0.02
    assert path.canceller.idle
    active = path.canceller.work.active
    assert path.process(frame, t) is None and path.canceller.work.active == active


def test_a_chance_peak_gets_two_fits_then_only_the_later_schedule_and_the_line_is_left_alone():
    """The load benchmark's pattern on a line without echo: the caller talks
    throughout, the agent answers the same 1.5 s every 3 s. At one alignment the
    two voices correlate at one delay on look after look (a chance peak that does
    not move): the canceller places an echo there, but its first two fits explain
    almost nothing and neither is taken, so the rest of that first second's fits
    are skipped (~2 ms each) and the place is refitted on the later schedule only;
    the caller's audio is never changed."""
    from telephony.call.aec import EchoPath

    answer = ModelToCaller().convert(agent_pcm24()[:36000].tobytes())
    caller = caller_ulaw() * 4
    path = EchoPath()
    for k in range(1000):
        now = k * 0.02
        if k >= 150 and (k - 156) % 150 == 0:
            path.sent(answer, now)
        assert path.process(caller[k * 160 : (k + 1) * 160], now) is None  # unchanged
    work = path.canceller.work
    assert (work.doubtful, work.fits, work.filtered) == (1, 3, 0)  # 2 + one later refit (six before)


def test_a_faint_echo_near_the_noise_floor_is_still_cancelled():
    """An echo 25 dB below the agent on a line with noise at -45 dBFS: the first
    fits explain little of the line (the noise), like a chance peak's, yet the
    place must not be given up: the later fits, on longer windows, are taken."""
    played = np.resize(agent_played(), 30 * 8000)
    echo = lines.echo(played, 150, 25, seed=0)
    line = lines.from_ulaw(lines.to_ulaw(lines.mix(echo, lines.noise(played.size, -45.0, seed=1))))
    aec = EchoCanceller()
    out = cancel(Case(played, line, echo, np.zeros(played.size, np.int16)), aec)
    a = 10 * 8000
    assert 10 * np.log10(np.sum(line[a:].astype(float) ** 2) / np.sum(out[a:].astype(float) ** 2)) >= 3.0
    assert aec.work.filtered > 1000 and aec.delay_ms == 150


def test_digital_silence_sent_to_the_caller_lets_the_canceller_go_idle():
    """mu-law zeros (a pause the bridge plays: keypad tone gaps, silence in the
    model's audio) are nothing to cancel: the canceller goes idle within its tail
    and costs nothing, as when nothing is sent."""
    from telephony.call.aec import EchoPath

    path = EchoPath()
    path.sent(b"\xff" * 8000 * 10, 0.0)  # 10 s of silence queued at Twilio
    caller = caller_ulaw()
    for k in range(100):
        assert path.process(caller[k * 160 : (k + 1) * 160], k * 0.02) is None
    assert path.canceller.idle and path.canceller.work.active <= 22


def test_every_answer_keeps_the_echo_delay_whatever_the_phase_it_starts_at():
    """Each answer starts playing at its own moment within a caller frame's 20 ms.
    The reference must start as late within that frame: quantised to frames, the
    echo's delay moved by up to 20 ms from one answer to the next, so the filter
    learnt on one answer missed the next (about 1 dB left of 35) and the canceller
    refitted all call long."""
    from telephony.call.aec import EchoPath

    answer = ModelToCaller().convert(agent_pcm24()[:36000].tobytes())  # 1.5 s
    rng = np.random.default_rng(0)
    n = 20 * 8000
    starts = [1.0 + 3 * j + rng.uniform(0.0, 0.02) for j in range(6)]
    played = np.zeros(n, np.int16)
    for at in starts:
        i = round(at * 8000)
        played[i : i + len(answer)] = lines.from_ulaw(answer)
    echo = lines.echo(played, 150, 10, seed=0)
    line = lines.mix(echo, lines.noise(n, -60.0, seed=1))
    codes = lines.to_ulaw(line)
    path, out, sent = EchoPath(), np.zeros(n), 0
    for k in range(n // FRAME):
        now = (k + 1) * 0.02  # the frame captured over the 20 ms before it arrives
        while sent < len(starts) and starts[sent] <= now:
            path.sent(answer, starts[sent])
            sent += 1
        frame = codes[k * FRAME : (k + 1) * FRAME]
        cleaned = path.process(frame, now)
        out[k * FRAME : (k + 1) * FRAME] = lines.from_ulaw(frame) if cleaned is None else cleaned
    for at in starts[1:]:
        span = slice(round(at * 8000) + 2000, round(at * 8000) + 10000)  # 0.25-1.25 s into the answer
        residual = out[span] - (line[span].astype(float) - echo[span])
        assert 10 * np.log10(np.sum(echo[span].astype(float) ** 2) / np.sum(residual**2)) >= 30.0
    assert path.canceller.delay_ms == 150 and path.canceller.work.fits <= 10
