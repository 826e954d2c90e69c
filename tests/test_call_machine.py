"""The call state machine, driven synchronously with explicit timestamps."""

from __future__ import annotations

import base64
import json

import pytest

from telephony.call import (
    Answered,
    BargeIn,
    Call,
    CallConfig,
    CloseRealtime,
    EndCall,
    InvalidTwilioMessage,
    OpenRealtime,
    Phase,
    RealtimeErrorReported,
    RunTool,
    TonesPlayed,
    TransferCall,
)
from telephony.call.playback import PlaybackClock
from telephony.wire import realtime as rt
from telephony.wire import twilio as tw
from tests.dtmf import decode_dtmf

START = tw.Start("MZ1", "CA1", "AC1", {"From": "+15550001111", "To": "+15550002222"})


def live(config: CallConfig | None = None) -> Call:
    c = Call(config or CallConfig(quiet_timeout_s=0))
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    drain(c)
    return c


def drain(c: Call) -> tuple[list[dict], list[dict], list]:
    tw_out = [json.loads(m) for m in c.drain_twilio()]
    rt_out = [json.loads(m) for m in c.drain_realtime()]
    for m in rt_out:  # ids are checked in test_client_events_carry_event_ids_naming_their_kind
        m.pop("event_id", None)
    return tw_out, rt_out, list(c.drain_actions())


def kinds(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def audio(ms: int) -> bytes:
    """``ms`` of 24 kHz PCM16 (a ramp, so it is not silence)."""
    n = 24 * ms
    return bytes((i * 7) & 0xFF for i in range(2 * n))


def play(c: Call, item: str, ms: int, now: float, resp: str = "r1") -> list[str]:
    """Model sends ``ms`` of audio for ``item``; returns the mark names sent."""
    c.receive_realtime(rt.AudioDelta(resp, item, audio(ms)), now)
    out, _, _ = drain(c)
    return [m["mark"]["name"] for m in out if m["event"] == "mark"]


# --- start-up -----------------------------------------------------------------------


def test_start_opens_realtime_once_and_buffers_audio_until_open():
    c = Call()
    c.receive_twilio(tw.Connected("Call"), 0.0)
    c.receive_twilio(tw.Media(b"\xff" * 160), 0.0)  # before start: dropped
    assert c.media_before_start == 1 and not c.drain_realtime()
    c.receive_twilio(START, 0.1)
    _, _, actions = drain(c)
    assert kinds(actions, OpenRealtime) == [OpenRealtime(START)]
    c.receive_twilio(tw.Media(b"\x7f" * 160), 0.12)
    c.receive_twilio(tw.Media(b"\x7f" * 160), 0.14)
    c.receive_twilio(START, 0.15)  # a duplicate start changes nothing
    _, out, actions = drain(c)
    assert out == [] and not kinds(actions, OpenRealtime)
    c.realtime_opened('{"type":"session.update","session":{"type":"realtime"}}', 0.2)
    _, out, _ = drain(c)
    assert [e["type"] for e in out] == ["session.update", "input_audio_buffer.append"]
    import base64

    assert len(base64.b64decode(out[1]["audio"])) == 2 * 960  # both frames, 3x upsampled
    assert c.phase is Phase.LIVE


def test_greeting_is_requested_once_the_session_is_configured():
    c = Call(CallConfig(greeting="Thanks for calling Acme!"))
    c.receive_twilio(START, 0.0)
    c.realtime_opened("{}", 0.0)
    drain(c)
    c.receive_realtime(rt.SessionUpdated(), 0.1)
    _, out, _ = drain(c)
    assert out[0]["type"] == "response.create" and "Thanks for calling Acme!" in out[0]["response"]["instructions"]
    c.receive_realtime(rt.SessionUpdated(), 0.2)  # a later update does not greet again
    assert not c.drain_realtime()


def test_unsupported_media_format_ends_the_call():
    c = Call()
    c.receive_twilio(tw.Start("MZ", "CA", "AC", {}, "audio/x-alaw", 8000), 0.0)
    _, _, actions = drain(c)
    assert c.phase is Phase.ENDED and kinds(actions, EndCall)[0].outcome == "failed"


# --- playback clock -------------------------------------------------------------------


def test_playback_clock_extrapolates_between_marks_and_respects_queue_gaps():
    clock = PlaybackClock()
    a = clock.sent_chunk(800, 1.0)  # 100 ms sent at t=1.0
    assert clock.position(1.05) == 400
    assert clock.position(1.2) == 800  # capped at what was sent
    clock.mark_echoed(a, 1.1)
    b = clock.sent_chunk(800, 1.5)  # the queue ran dry; playback restarts at 1.5
    assert clock.position(1.4) == 800
    assert clock.position(1.55) == 1200
    clock.clear()
    assert clock.mark_echoed(b, 1.6) is False  # an echo caused by clear means nothing
    assert clock.position(2.0) == 0 and clock.pending == 0


def test_mark_echo_anchors_the_estimate():
    clock = PlaybackClock()
    names = [clock.sent_chunk(800, 0.0) for _ in range(5)]  # 500 ms queued at once
    clock.mark_echoed(names[1], 0.25)  # 200 ms played by 0.25 (50 ms late)
    assert clock.position(0.30) == 1600 + 400


# --- barge-in ---------------------------------------------------------------------------


def test_barge_in_truncates_to_exactly_what_was_heard():
    c = live()
    marks = play(c, "item_a", 1000, now=10.0)  # 1 s of model audio at t=10
    c.receive_twilio(tw.Mark(marks[0]), 10.2)  # but the first chunk is all the mark covers
    # Everything (1 s -> 8000 bytes) was sent in one chunk at t=10.0, so the
    # estimate at t=10.4 is 400 ms of 8 kHz audio: 3200 bytes.
    c2 = live()
    play(c2, "item_a", 1000, now=10.0)
    c2.receive_realtime(rt.SpeechStarted("u1", 5000), 10.4)
    out_tw, out_rt, actions = drain(c2)
    assert out_tw == [{"event": "clear", "streamSid": "MZ1"}]
    # heard 3200 bytes = 400 ms at 8 kHz, minus the 2.125 ms filter delay.
    assert out_rt == [
        {"type": "conversation.item.truncate", "item_id": "item_a", "content_index": 0, "audio_end_ms": 397}
    ]
    assert isinstance(actions[-1], BargeIn)


def test_truncation_is_clamped_to_audio_received():
    c = live()
    play(c, "item_a", 300, now=0.0)
    c.receive_realtime(rt.SpeechStarted("u", 0), 5.0)  # long after; marks never echoed
    _, out, _ = drain(c)
    # Not 5 s: the position is capped at what was sent, and without the item's
    # tail flushed the last 2.125 ms are still inside the filter: 297 ms.
    assert out[0]["audio_end_ms"] == 297


def test_truncation_never_exceeds_the_items_audio_after_its_tail():
    c = live()
    play(c, "item_a", 300, now=0.0)
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.0)  # tail flushed: 300 ms + 4.25 ms sent
    play(c, "item_b", 300, now=0.0, resp="r2")
    c.receive_realtime(rt.SpeechStarted("u", 0), 0.6)  # item_a fully played, item_b playing
    _, out, _ = drain(c)
    assert [(e["item_id"], e["audio_end_ms"]) for e in out] == [("item_b", 293)]


def test_audio_of_a_truncated_item_and_response_is_dropped_after_clear():
    c = live()
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    play(c, "item_a", 500, now=0.0)
    c.receive_realtime(rt.SpeechStarted("u", 0), 0.1)
    drain(c)
    c.receive_realtime(rt.AudioDelta("r1", "item_a", audio(100)), 0.11)
    c.receive_realtime(rt.AudioDelta("r1", "item_b", audio(100)), 0.12)  # same response, new item
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.13)
    assert not c.drain_twilio()
    c.receive_realtime(rt.ResponseDone("r1", "cancelled", "turn_detected", None), 0.2)
    c.receive_realtime(rt.ResponseCreated("r2"), 0.3)
    assert play(c, "item_c", 100, now=0.3, resp="r2")  # the next answer plays


def test_marks_echoed_by_clear_do_not_count_as_played():
    c = live()
    marks = play(c, "item_a", 1000, now=0.0)
    c.receive_realtime(rt.SpeechStarted("u", 0), 0.05)
    drain(c)
    for m in marks:  # Twilio echoes every pending mark on clear
        c.receive_twilio(tw.Mark(m), 0.06)
    new_marks = play(c, "item_b", 1000, now=1.0, resp="r2")
    c.receive_realtime(rt.SpeechStarted("u2", 0), 1.1)
    _, out, _ = drain(c)
    assert out[0]["item_id"] == "item_b" and out[0]["audio_end_ms"] == 97  # 100 ms - delay
    assert new_marks


def test_speech_started_with_nothing_playing_sends_nothing():
    c = live()
    marks = play(c, "item_a", 100, now=0.0)
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.01)
    out, _, _ = drain(c)
    tail_mark = [m["mark"]["name"] for m in out if m["event"] == "mark"]
    for m in marks + tail_mark:
        c.receive_twilio(tw.Mark(m), 0.2)
    c.receive_realtime(rt.SpeechStarted("u", 0), 0.3)
    assert not c.drain_twilio() and not c.drain_realtime()


def test_fully_heard_item_is_not_truncated_but_the_one_playing_is():
    c = live()
    marks_a = play(c, "item_a", 100, now=0.0)
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.0)
    drain(c)
    play(c, "item_b", 1000, now=0.0, resp="r2")
    c.receive_twilio(tw.Mark(marks_a[0]), 0.1)
    c.receive_realtime(rt.SpeechStarted("u", 0), 0.5)
    _, out, _ = drain(c)
    assert [e["item_id"] for e in out] == ["item_b"]


# --- responses ---------------------------------------------------------------------------


def test_response_create_waits_for_the_active_response():
    c = live()
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    c.receive_realtime(rt.FunctionCallDone("r1", "i1", "call_1", "f", "{}"), 0.0)
    _, _, actions = drain(c)
    assert kinds(actions, RunTool) == [RunTool("call_1", "f", "{}")]
    c.tool_finished("call_1", '"ok"', 0.1)
    _, out, _ = drain(c)
    assert [e["type"] for e in out] == ["conversation.item.create"]  # no response.create yet
    c.receive_realtime(rt.ResponseDone("r1", "completed", None, None), 0.2)
    _, out, _ = drain(c)
    assert [e["type"] for e in out] == ["response.create"]


def test_benign_errors_are_ignored_and_a_refused_create_does_not_wedge_gating():
    c = live()
    c.receive_realtime(rt.Error("invalid_request_error", "response_cancel_not_active", "", None), 0.0)
    c.receive_realtime(rt.Error("invalid_request_error", "conversation_already_has_active_response", "", None), 0.0)
    assert not kinds(c.drain_actions(), RealtimeErrorReported)
    c.receive_realtime(rt.FunctionCallDone("r1", "i1", "call_1", "f", "{}"), 0.0)
    c.tool_finished("call_1", '"ok"', 0.0)
    drain(c)  # response.create sent (REQUESTED)
    c.receive_realtime(rt.Error("invalid_request_error", "bad_response_create", "no", None), 0.1)
    c.receive_realtime(rt.FunctionCallDone("r9", "i2", "call_2", "f", "{}"), 0.2)
    c.tool_finished("call_2", '"ok"', 0.3)
    _, out, _ = drain(c)
    assert out[-1]["type"] == "response.create"  # not stuck waiting for a response that never came


def test_every_tool_call_gets_exactly_one_output():
    c = live()
    c.receive_realtime(rt.FunctionCallDone("r1", "i1", "call_1", "f", "{}"), 0.0)
    c.receive_realtime(rt.FunctionCallDone("r1", "i1", "call_1", "f", "{}"), 0.0)  # duplicate
    _, _, actions = drain(c)
    assert len(kinds(actions, RunTool)) == 1
    c.tool_finished("call_1", '"a"', 0.1)
    c.tool_finished("call_1", '"b"', 0.2)
    c.tool_finished("call_unknown", '"c"', 0.2)
    _, out, _ = drain(c)
    assert [e["item"]["output"] for e in out if e["type"] == "conversation.item.create"] == ['"a"']


def test_caller_speaking_during_a_tool_call_gets_the_servers_response_instead():
    c = live()
    c.receive_realtime(rt.FunctionCallDone("r1", "i1", "call_1", "f", "{}"), 0.0)
    c.receive_realtime(rt.ResponseDone("r1", "completed", None, None), 0.0)
    c.receive_realtime(rt.SpeechStarted("u", 0), 0.1)
    c.tool_finished("call_1", '"ok"', 0.2)
    _, out, _ = drain(c)
    assert [e["type"] for e in out] == ["conversation.item.create"]


# --- call control ---------------------------------------------------------------------------


def test_hangup_waits_until_the_last_words_have_played():
    c = live()
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    marks = play(c, "item_a", 500, now=0.0)
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.0)
    out, _, _ = drain(c)
    marks += [m["mark"]["name"] for m in out if m["event"] == "mark"]
    c.request_hangup("goodbye said", 0.1)
    c.receive_realtime(rt.ResponseDone("r1", "completed", None, None), 0.1)
    _, _, actions = drain(c)
    assert not kinds(actions, EndCall)  # still playing
    for m in marks:
        c.receive_twilio(tw.Mark(m), 0.55)
    _, _, actions = drain(c)
    assert kinds(actions, EndCall) == [EndCall("hung_up_by_agent", "goodbye said")]
    assert kinds(actions, CloseRealtime)


def test_hangup_does_not_wait_forever_for_lost_mark_echoes():
    c = live()
    play(c, "item_a", 500, now=0.0)
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.0)
    c.request_hangup("bye", 0.0)
    drain(c)
    deadline = c.next_deadline()
    assert deadline == pytest.approx(0.0 + 0.50425 + 2.0, abs=0.01)
    c.tick(deadline)
    _, _, actions = drain(c)
    assert kinds(actions, EndCall)


def test_transfer_after_playback_and_failure_is_told_to_the_model():
    c = live()
    marks = play(c, "item_a", 100, now=0.0)
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.0)
    out, _, _ = drain(c)
    marks += [m["mark"]["name"] for m in out if m["event"] == "mark"]
    c.request_transfer("+15557654321", "billing", 0.0)
    _, _, actions = drain(c)
    assert not kinds(actions, TransferCall)
    for m in marks:
        c.receive_twilio(tw.Mark(m), 0.2)
    _, _, actions = drain(c)
    assert kinds(actions, TransferCall) == [TransferCall("+15557654321", "billing")]
    c.transfer_failed("HTTP 400 invalid number", 0.3)
    _, out, _ = drain(c)
    assert out[0]["item"]["role"] == "system" and "failed" in out[0]["item"]["content"][0]["text"]
    assert out[1]["type"] == "response.create"
    assert c.phase is Phase.LIVE


def test_dtmf_digits_are_batched_for_the_model():
    c = live()
    for i, d in enumerate("123"):
        c.receive_twilio(tw.Dtmf(d), 1.0 + i * 0.2)
    assert not c.drain_realtime()
    assert c.next_deadline() == pytest.approx(1.4 + 1.5)
    c.tick(3.0)
    _, out, _ = drain(c)
    assert "1 2 3" in out[0]["item"]["content"][0]["text"] and out[1]["type"] == "response.create"
    c.receive_twilio(tw.Dtmf("4"), 4.0)
    c.receive_twilio(tw.Dtmf("#"), 4.1)  # '#' sends at once
    _, out, _ = drain(c)
    assert "4 #" in out[0]["item"]["content"][0]["text"]
    assert c.dtmf == ["1", "2", "3", "4", "#"]


def test_quiet_stream_and_max_duration_end_the_call():
    c = live(CallConfig(quiet_timeout_s=5.0, max_duration_s=60.0))
    c.receive_twilio(tw.Media(b"\xff" * 160), 1.0)
    assert c.next_deadline() == pytest.approx(6.0)
    c.tick(5.9)
    assert c.phase is Phase.LIVE
    c.tick(6.0)
    assert c.phase is Phase.ENDED and c.outcome == "failed"
    c2 = live(CallConfig(quiet_timeout_s=0, max_duration_s=60.0))
    c2.tick(60.0)
    assert c2.phase is Phase.ENDED


def test_stop_twice_and_events_after_the_end_are_harmless():
    c = live()
    c.receive_twilio(tw.Stop("CA1"), 1.0)
    _, _, actions = drain(c)
    assert len(kinds(actions, EndCall)) == 1 and len(kinds(actions, CloseRealtime)) == 1
    c.receive_twilio(tw.Stop("CA1"), 1.1)
    c.receive_twilio(tw.Mark("3"), 1.2)
    c.receive_realtime(rt.AudioDelta("r", "i", audio(10)), 1.3)
    c.twilio_closed(1.4)
    assert not c.drain_twilio() and not c.drain_realtime() and not c.drain_actions()


def test_too_many_invalid_messages_end_the_call():
    c = live(CallConfig(max_invalid_messages=5, quiet_timeout_s=0))
    for _ in range(6):
        c.receive_twilio(tw.Invalid("junk"), 0.0)
    assert c.phase is Phase.ENDED
    notices = kinds(c.drain_actions(), InvalidTwilioMessage)
    assert len(notices) == 3  # logged a few times, not per message


def test_a_call_back_from_an_unanswered_transfer_restores_the_conversation_and_does_not_greet():
    first = live()
    first.receive_realtime(rt.InputTranscript("u1", "I need billing"), 0.5)
    play(first, "item_a", 100, now=1.0)
    first.receive_realtime(rt.TranscriptDone("item_a", "Let me transfer you to billing."), 1.1)
    kept = first.conversation()
    # The same CallSid comes back on a new stream once the dial ended with no-answer.
    c = Call(CallConfig(quiet_timeout_s=0, greeting="Thanks for calling Acme!"))
    c.receive_twilio(START, 0.0)
    c.resume_after_transfer(kept, "The transfer to billing was not answered.")
    c.realtime_opened('{"type":"session.update"}', 0.1)
    c.receive_realtime(rt.SessionUpdated(), 0.2)
    _, out, _ = drain(c)
    items = [e["item"] for e in out if e["type"] == "conversation.item.create"]
    texts = [(i["role"], i["content"][0]["text"]) for i in items]
    assert texts == [
        ("user", "I need billing"),
        ("assistant", "Let me transfer you to billing."),
        ("system", "The transfer to billing was not answered."),
    ]
    creates = [e for e in out if e["type"] == "response.create"]
    assert len(creates) == 1 and "Thanks for calling Acme!" not in json.dumps(creates)  # answers, never greets


# --- keypad tones out (send_dtmf) ----------------------------------------------------------


def test_dtmf_tones_decode_with_standard_timing_and_levels():
    import numpy as np

    from telephony.audio.dtmf import dtmf_ulaw
    from telephony.audio.g711 import ulaw_decode

    audio = dtmf_ulaw("0123456789*#ABCD")
    assert decode_dtmf(audio) == "0123456789*#ABCD"
    assert len(audio) == 16 * 1600  # 100 ms tone + 100 ms gap per key at 8 kHz
    assert len(dtmf_ulaw("1w2")) == 2 * 1600 + 4000  # w: 0.5 s
    tone = np.frombuffer(ulaw_decode(audio[:800]), dtype="<i2").astype(float)
    assert audio[800:1600] == b"\xff" * 800  # the gap is silence
    # -9 dBm0 + -7 dBm0: RMS of the pair about -4.9 dBm0 (0 dBm0 sine RMS: 22,180 / sqrt 2)
    dbm0 = 20 * np.log10(np.sqrt(np.mean(tone**2)) / (32124 / 10 ** (3.17 / 20) / np.sqrt(2)))
    assert -5.5 < dbm0 < -4.3
    with pytest.raises(ValueError, match="0-9"):
        dtmf_ulaw("12x")


def test_send_tones_queue_after_the_agents_words_and_report_when_played():
    c = live()
    c.receive_realtime(rt.AudioDelta("r1", "item_a", audio(100)), 0.0)
    c.send_tones("1#", "t1", 0.05)  # the agent's item is still arriving: wait for its end
    out, _, _ = drain(c)
    assert decode_dtmf(b"".join(base64.b64decode(m["media"]["payload"]) for m in out if m["event"] == "media")) == ""
    c.receive_realtime(rt.AudioDone("r1", "item_a"), 0.1)
    out, _, _ = drain(c)
    media = [base64.b64decode(m["media"]["payload"]) for m in out if m["event"] == "media"]
    marks = [m["mark"]["name"] for m in out if m["event"] == "mark"]
    assert decode_dtmf(b"".join(media)) == "1#"
    # A phone menu speaking over the tones does not cut them (they are not the agent's).
    for m in marks[:-2]:
        c.receive_twilio(tw.Mark(m), 0.2)
    c.receive_realtime(rt.SpeechStarted("u1", 0), 0.25)
    out, rt_out, actions = drain(c)
    assert not [m for m in out if m["event"] == "clear"] and not kinds(actions, BargeIn)
    assert not [e for e in rt_out if e["type"] == "conversation.item.truncate"]
    c.receive_twilio(tw.Mark(marks[-2]), 0.3)
    assert not kinds(drain(c)[2], TonesPlayed)
    c.receive_twilio(tw.Mark(marks[-1]), 0.5)
    assert kinds(drain(c)[2], TonesPlayed) == [TonesPlayed("t1", True)]


def test_tones_pending_when_the_call_ends_are_reported_unplayed():
    c = live()
    c.send_tones("12", "t2", 0.0)
    c.twilio_closed(0.1)
    assert kinds(drain(c)[2], TonesPlayed) == [TonesPlayed("t2", False)]


# --- answering-machine detection (outbound) -------------------------------------------------


def _screened(greeting: str = "Hi, this is Acme about your appointment.") -> Call:
    c = Call(CallConfig(quiet_timeout_s=0, greeting=greeting))
    c.receive_twilio(START, 0.0)
    c.await_verdict(0.0, 10.0)
    c.realtime_opened('{"type":"session.update"}', 0.1)
    c.receive_realtime(rt.SessionUpdated(), 0.2)
    return c


def test_the_greeting_waits_for_a_human_verdict():
    c = _screened()
    _, out, _ = drain(c)
    assert not [e for e in out if e["type"] == "response.create"]  # waiting for the verdict
    assert c.next_deadline() == pytest.approx(10.0)
    c.verdict("human", 2.5)
    _, out, actions = drain(c)
    [create] = [e for e in out if e["type"] == "response.create"]
    assert "Acme about your appointment" in create["response"]["instructions"]
    assert kinds(actions, Answered) == [Answered("human", 2.5)]
    c.verdict("machine_end_beep", 3.0)  # a late second verdict changes nothing
    assert not drain(c)[1]


def test_a_machine_gets_the_voicemail_once_then_the_call_hangs_up_after_it_played():
    c = _screened()
    drain(c)
    c.verdict("machine_end_beep", 6.0, voicemail="Please call Acme back at 555 0100.")
    _, out, actions = drain(c)
    [create] = [e for e in out if e["type"] == "response.create"]
    assert "Please call Acme back at 555 0100." in create["response"]["instructions"]
    assert "appointment" not in create["response"]["instructions"]  # no greeting to a machine
    assert kinds(actions, Answered) == [Answered("machine_end_beep", 6.0)]
    rid = "r1"
    c.receive_realtime(rt.ResponseCreated(rid), 6.1)
    marks = play(c, "vm", 200, now=6.2, resp=rid)
    c.receive_realtime(rt.AudioDone(rid, "vm"), 6.3)
    c.receive_realtime(rt.ResponseDone(rid, "completed", None, None), 6.3)
    out, _, actions = drain(c)
    marks += [m["mark"]["name"] for m in out if m["event"] == "mark"]
    assert not kinds(actions, EndCall)  # not before the message has played
    for m in marks:
        c.receive_twilio(tw.Mark(m), 6.6)
    _, _, actions = drain(c)
    [end] = kinds(actions, EndCall)
    assert end.outcome == "voicemail" and c.outcome == "voicemail"


def test_the_callee_speaking_first_or_no_verdict_in_time_greets():
    c = _screened()
    drain(c)
    c.receive_realtime(rt.SpeechStarted("u1", 0), 1.0)
    _, out, _ = drain(c)
    assert [e for e in out if e["type"] == "response.create"]
    c = _screened()
    drain(c)
    c.tick(10.0)
    _, out, actions = drain(c)
    assert [e for e in out if e["type"] == "response.create"]
    assert kinds(actions, Answered) == [Answered("unknown", 10.0, timed_out=True)]


def test_fax_hangs_up_by_default():
    c = _screened()
    drain(c)
    c.verdict("fax", 3.0)
    _, _, actions = drain(c)
    assert kinds(actions, EndCall)[0].outcome == "machine"
