"""Never silent (issue 12, items 2-4): failed and incomplete responses, dead
air, errors matched to their cause. The call core with explicit timestamps."""

from __future__ import annotations

import json

from telephony.call import (
    Call,
    CallConfig,
    DeadAir,
    EndCall,
    RealtimeErrorReported,
    ResponseFailed,
    SessionRejected,
    TransferCall,
)
from telephony.wire import realtime as rt
from tests.test_call_machine import START, audio, drain, kinds, live

CFG = CallConfig(quiet_timeout_s=0, dead_air_s=4.0, response_retries=2, response_retry_backoff_s=0.25)


def failed(rid: str, code: str = "server_error") -> rt.ResponseDone:
    return rt.ResponseDone(rid, "failed", None, None, code, "The server had an error")


def sent(c: Call) -> list[dict]:
    """The Realtime outbox with event ids (``drain`` drops them)."""
    return [json.loads(m) for m in c.drain_realtime()]


def creates(rt_out: list[dict]) -> list[dict]:
    return [m for m in rt_out if m["type"] == "response.create"]


def caller_turn(c: Call, now: float) -> None:
    c.receive_realtime(rt.SpeechStarted("u1", 0), now)
    c.receive_realtime(rt.SpeechStopped("u1", 900), now + 0.9)
    drain(c)


def test_a_failed_response_is_retried_after_a_short_backoff_then_handed_on():
    c = live(CFG)
    caller_turn(c, 0.0)
    c.receive_realtime(rt.ResponseCreated("r1"), 1.0)  # the server's own (VAD) response
    c.receive_realtime(failed("r1"), 1.2)
    _, out, actions = drain(c)
    [f] = kinds(actions, ResponseFailed)
    assert (f.status, f.label, f.next, f.retry_in_s, f.failures) == ("failed", "server_error", "retry", 0.25, 1)
    assert not creates(out)  # not before the backoff
    assert c.next_deadline() == 1.45
    c.tick(1.45)
    _, out, _ = drain(c)
    assert len(creates(out)) == 1  # retried 0.25 s after the failure
    c.receive_realtime(rt.ResponseCreated("r2"), 1.5)
    c.receive_realtime(failed("r2", "rate_limit_exceeded"), 1.6)
    _, out, actions = drain(c)
    [f] = kinds(actions, ResponseFailed)
    assert (f.label, f.retry_in_s, f.failures) == ("rate_limit_exceeded", 0.5, 2)
    c.tick(2.1)
    _, out, _ = drain(c)
    assert len(creates(out)) == 1
    c.receive_realtime(rt.ResponseCreated("r3"), 2.2)
    c.receive_realtime(failed("r3"), 2.3)
    _, _, actions = drain(c)
    [f] = kinds(actions, ResponseFailed)
    assert f.next == "gave_up" and f.failures == 3
    [end] = kinds(actions, EndCall)
    assert end.apologize and end.outcome == "failed"  # the spoken apology (no transfer number set)


def test_a_completed_response_resets_the_count_and_unknown_codes_are_labelled_other():
    c = live(CFG)
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    c.receive_realtime(failed("r1", "some_new_code"), 0.1)
    _, _, actions = drain(c)
    assert kinds(actions, ResponseFailed)[0].label == "other"
    c.tick(0.35)
    c.receive_realtime(rt.ResponseCreated("r2"), 0.4)
    c.receive_realtime(rt.ResponseDone("r2", "completed", None, None), 0.5)
    c.receive_realtime(rt.ResponseCreated("r3"), 5.0)
    c.receive_realtime(failed("r3"), 5.1)
    _, _, actions = drain(c)
    assert kinds(actions, ResponseFailed)[0].failures == 1


def test_the_retry_of_our_own_response_keeps_its_instructions():
    c = Call(CallConfig(quiet_timeout_s=0, greeting="Welcome to Acme."))
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    _, out, _ = drain(c)
    [greet] = creates(out)
    c.receive_realtime(rt.ResponseCreated("r1"), 0.1)
    c.receive_realtime(failed("r1"), 0.2)
    c.tick(0.45)
    _, out, _ = drain(c)
    [retry] = creates(out)
    assert retry["response"]["instructions"] == greet["response"]["instructions"]


def test_the_fallback_transfer_is_used_when_set_and_its_failure_ends_with_the_apology():
    c = live(CallConfig(quiet_timeout_s=0, response_retries=0, fallback_transfer="+15550009999"))
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    c.receive_realtime(failed("r1"), 0.1)
    _, _, actions = drain(c)
    [transfer] = kinds(actions, TransferCall)
    assert transfer.number == "+15550009999"
    assert not kinds(actions, EndCall)
    c.transfer_failed("HTTP 500", 0.5)
    _, _, actions = drain(c)
    [end] = kinds(actions, EndCall)
    assert end.apologize


def test_incomplete_responses_are_answered_by_reason_not_retried_blindly():
    c = live(CFG)
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    c.receive_realtime(rt.ResponseDone("r1", "incomplete", "content_filter", None), 0.1)
    _, out, actions = drain(c)
    [f] = kinds(actions, ResponseFailed)
    assert (f.status, f.label, f.next) == ("incomplete", "content_filter", "retry")
    [create] = creates(out)  # at once: no backoff for a filter
    assert create["response"]["instructions"] == c.config.wording.filtered
    c.receive_realtime(rt.ResponseCreated("r2"), 0.2)
    c.receive_realtime(rt.ResponseDone("r2", "incomplete", "max_output_tokens", None), 0.3)
    _, out, _ = drain(c)
    [create] = creates(out)
    assert create["response"]["instructions"] == c.config.wording.cut_short


def test_a_failure_while_the_caller_speaks_waits_for_their_turn():
    c = live(CFG)
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    c.receive_realtime(rt.SpeechStarted("u1", 0), 0.05)
    c.receive_realtime(failed("r1"), 0.1)
    _, _, actions = drain(c)
    assert kinds(actions, ResponseFailed)[0].next == "none"
    c.tick(1.0)
    assert not creates(drain(c)[1])


def test_dead_air_after_the_callers_turn_asks_once_more_then_apologises():
    c = live(CFG)
    caller_turn(c, 0.0)  # speech stopped at 0.9
    assert c.next_deadline() == 4.9
    c.tick(4.9)
    _, out, actions = drain(c)
    [d] = kinds(actions, DeadAir)
    assert d.next == "asked_again" and d.seconds == 4.0
    [create] = creates(out)
    assert create["response"]["instructions"] == c.config.wording.dead_air
    c.receive_realtime(rt.ResponseCreated("r1"), 5.0)
    c.receive_realtime(rt.ResponseDone("r1", "completed", None, None), 5.1)  # no audio at all
    c.tick(8.9)
    _, _, actions = drain(c)
    assert kinds(actions, DeadAir)[0].next == "gave_up"
    [end] = kinds(actions, EndCall)
    assert end.apologize


def test_agent_audio_or_a_tool_call_after_the_turn_is_not_dead_air():
    c = live(CFG)
    caller_turn(c, 0.0)
    c.receive_realtime(rt.ResponseCreated("r1"), 1.5)
    c.receive_realtime(rt.AudioDelta("r1", "a1", audio(100)), 1.6)
    assert c.next_deadline() is None or c.next_deadline() > 100
    caller_turn(c, 10.0)
    c.receive_realtime(rt.FunctionCallDone("r2", "i2", "call_1", "lookup", "{}"), 11.0)
    drain(c)
    c.tick(15.0)
    assert not kinds(drain(c)[2], DeadAir)
    # The tool's output asks for a response: silence after it is watched again.
    c.tool_finished("call_1", "ok", 20.0)
    drain(c)
    assert c.next_deadline() == 24.0


def test_an_error_about_a_truncate_does_not_release_the_response_gate():
    c = live(CFG)
    c.receive_realtime(rt.ResponseCreated("r0"), 0.0)
    c.receive_realtime(rt.ResponseDone("r0", "completed", None, None), 0.0)
    c.tool_finished("x", "", 0.0)  # nothing pending: no effect
    c._request_response()  # ours: response.create on its way
    [create] = creates(sent(c))
    c._request_response()  # a second request waits behind it
    c.receive_realtime(rt.Error("invalid_request_error", "invalid_value", "bad audio_end_ms", "tr-99"), 0.1)
    _, out, actions = drain(c)
    assert not creates(out)  # the gate still waits for our create's response
    assert kinds(actions, RealtimeErrorReported)[0].about == "tr"
    c.receive_realtime(rt.Error("invalid_request_error", "x", "refused", create["event_id"]), 0.2)
    _, out, _ = drain(c)
    assert len(creates(out)) == 1  # our create was refused: the queued one goes


def test_a_refused_session_update_is_retried_minimal_once_then_the_call_ends():
    c = Call(CFG)
    c.receive_twilio(START, 0.0)
    full = rt.session_update({"type": "realtime", "instructions": "x", "audio": {"output": {"voice": "nope"}}})
    minimal = rt.session_update({"type": "realtime", "instructions": "x"})
    c.realtime_opened(full, 0.0, minimal)
    first = sent(c)[0]
    c.receive_realtime(rt.Error("invalid_request_error", "invalid_value", "voice", first["event_id"]), 0.1)
    out, actions = sent(c), list(c.drain_actions())
    assert kinds(actions, SessionRejected)[0].next == "retry_minimal"
    assert [m["type"] for m in out] == ["session.update"] and "voice" not in json.dumps(out[0])
    c.receive_realtime(rt.Error("invalid_request_error", "invalid_value", "again", out[0]["event_id"]), 0.2)
    _, _, actions = drain(c)
    assert kinds(actions, SessionRejected)[0].next == "gave_up"
    [end] = kinds(actions, EndCall)
    assert end.apologize and end.outcome == "failed"


def test_client_events_carry_event_ids_naming_their_kind():
    assert json.loads(rt.response_create())["event_id"].startswith("rc-")
    assert json.loads(rt.response_create("hi"))["event_id"].startswith("rc-")
    assert json.loads(rt.truncate("i", 5))["event_id"].startswith("tr-")
    assert json.loads(rt.session_update({}))["event_id"].startswith("su-")
    assert json.loads(rt.user_text("x"))["event_id"].startswith("ic-")
    assert "event_id" not in json.loads(rt.audio_append("AAAA"))  # the per-frame event stays lean
    assert rt.caused_by("tr-3") == "tr" and rt.caused_by("event_1") is None and rt.caused_by(None) is None


def test_reconnect_restores_tool_calls_with_their_outputs_and_untranscribed_turns():
    c = live(CFG)
    c.receive_realtime(rt.InputTranscript("u1", "Where is order A1?"), 0.5)
    c.receive_realtime(rt.FunctionCallDone("r1", "i1", "call_1", "lookup", '{"order":"A1"}'), 1.0)
    c.receive_realtime(rt.FunctionCallDone("r1", "i2", "call_2", "slow", "{}"), 1.0)
    c.tool_finished("call_1", "ready for pickup", 1.5)
    c.receive_realtime(rt.TranscriptDone("a1", "It is ready."), 2.0)
    c.receive_realtime(rt.InputTranscriptFailed("u2", "audio unclear"), 3.0)
    _, _, actions = drain(c)
    notices = [a for a in actions if type(a).__name__ in ("Transcript", "TranscriptionFailed")]
    assert type(notices[-2]).__name__ == "TranscriptionFailed" and notices[-1].text == c.config.wording.untranscribed
    c.realtime_closed("lost", 4.0)
    c.tick(4.0)
    drain(c)
    c.realtime_opened('{"type":"session.update"}', 4.1)
    _, out, _ = drain(c)
    items = [m["item"] for m in out if m["type"] == "conversation.item.create"]
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output", "message", "message"]
    assert items[1] == {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"order":"A1"}'}
    assert items[2] == {"type": "function_call_output", "call_id": "call_1", "output": "ready for pickup"}
    assert items[4]["content"][0]["text"] == c.config.wording.untranscribed  # the turn is not silently missing
    # call_2 had no output yet: left out; its result comes as a late-result message.


def _transfer_in_flight() -> Call:
    c = live(CFG)
    c.request_transfer("+15557654321", "billing", 0.0)
    _, _, actions = drain(c)
    assert kinds(actions, TransferCall)  # nothing playing: the redirect goes at once
    return c


def test_a_stop_before_the_rest_reply_waits_for_it_to_record_the_outcome():
    from telephony.call import CallEnded
    from telephony.wire import twilio as tw

    c = _transfer_in_flight()
    c.receive_twilio(tw.Stop("CA1"), 0.1)  # Twilio's redirect ends the stream before the REST reply
    _, _, actions = drain(c)
    assert kinds(actions, EndCall) and not kinds(actions, CallEnded)  # outcome not known yet
    assert c.transfer_unconfirmed
    c.transfer_done(0.3)
    [ended] = kinds(drain(c)[2], CallEnded)
    assert ended.outcome == "transferred" and "billing" in ended.reason and c.outcome == "transferred"

    c = _transfer_in_flight()
    c.receive_twilio(tw.Stop("CA1"), 0.1)  # the caller hung up; the redirect then failed
    drain(c)
    c.transfer_failed("HTTP 404 call not in progress", 0.3)
    [ended] = kinds(drain(c)[2], CallEnded)
    assert ended.outcome == "completed" and "transfer to +15557654321 failed: HTTP 404" in ended.reason

    c = _transfer_in_flight()
    c.twilio_closed(0.1)
    drain(c)
    c.transfer_unresolved("no REST reply")
    [ended] = kinds(drain(c)[2], CallEnded)
    assert ended.outcome == "completed" and "unconfirmed" in ended.reason
