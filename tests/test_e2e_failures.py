"""Never silent, end to end (issue 12): a failing model, dead air and a refused
session configuration, through the real app against the fake Realtime server."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from telephony import CallContext, tool
from tests.harness import bridge

pytestmark = pytest.mark.anyio


async def _fail_response(session, code: str = "server_error") -> str:
    rid = await session.response_created()
    await session.send(
        {
            "type": "response.done",
            "event_id": "evt_f",
            "response": {
                "id": rid,
                "object": "realtime.response",
                "status": "failed",
                "output": [],
                "status_details": {
                    "type": "failed",
                    "error": {"type": "server_error", "code": code, "message": "The server had an error."},
                },
            },
        }
    )
    session.active_response = None
    return rid


def _logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict]:
    return [r.fields for r in caplog.records if r.getMessage() == event]  # type: ignore[attr-defined]


async def test_a_failing_model_is_retried_within_a_second_then_the_caller_hears_the_apology(caplog):
    caplog.set_level(logging.INFO, "telephony")
    async with bridge() as b:
        call, session = await b.live_call()
        delays = []
        for attempt in range(1, 4):  # the first answer, then TELEPHONY_RESPONSE_RETRIES (2) retries
            failed_at = time.monotonic()
            await _fail_response(session)
            if attempt <= b.settings.response_retries:
                await session.wait_for("response.create", count=attempt)
                delays.append(time.monotonic() - failed_at)
        await call.wait_closed(5)
        r = await b.post("/stream-ended", {"CallSid": call.call_sid, "CallStatus": "in-progress"})
        assert "<Say>Sorry, we are having technical difficulties" in r.text
        metrics = (await b.get("/metrics")).text
        assert 'telephony_responses_failed_total{reason="server_error",status="failed"} 3.0' in metrics
    print(f"failed response -> retry: {[round(d, 3) for d in delays]} s")
    assert all(d < 1.0 for d in delays), delays
    logged = _logged(caplog, "response.failed")
    assert [e["next"] for e in logged] == ["retry", "retry", "gave_up"]
    assert logged[0]["message"] == "The server had an error."


async def test_dead_air_after_the_callers_turn_is_broken_then_apologised_for(caplog):
    caplog.set_level(logging.INFO, "telephony")
    async with bridge(dead_air_seconds=0.3) as b:
        call, session = await b.live_call()
        item = await session.speech_started()
        stopped_at = time.monotonic()
        await session.speech_stopped(item)
        nudge = await session.wait_for("response.create")  # nothing followed: asked once more
        asked_at = time.monotonic()
        assert nudge["response"]["instructions"] == "The caller is waiting for your answer. Respond to them now."
        await call.wait_closed(5)  # still nothing: the call ends, with the apology
        ended_at = time.monotonic()
        r = await b.post("/stream-ended", {"CallSid": call.call_sid, "CallStatus": "in-progress"})
        assert "<Say>Sorry" in r.text
    print(f"dead air: asked again after {asked_at - stopped_at:.2f} s, ended after {ended_at - stopped_at:.2f} s")
    assert [e["next"] for e in _logged(caplog, "call.dead_air")] == ["asked_again", "gave_up"]


async def test_a_refused_session_update_is_retried_without_optional_fields(caplog):
    caplog.set_level(logging.INFO, "telephony")
    async with bridge(voice="marin") as b:
        call = b.twilio()
        await call.connect()
        await call.start()
        session = await b.fake.next_session()
        first = await session.wait_for("session.update")
        await session.send(
            {
                "type": "error",
                "event_id": "evt_e",
                "error": {
                    "type": "invalid_request_error",
                    "code": "invalid_value",
                    "message": "Invalid value: 'marin'.",
                    "event_id": first["event_id"],
                },
            }
        )
        second = await session.wait_for("session.update", count=2)
        assert "voice" not in second["session"]["audio"]["output"]
        assert second["session"]["instructions"] == first["session"]["instructions"]
        assert second["session"]["tools"] == first["session"]["tools"]
        assert not call.closed.is_set()
    [rejected] = _logged(caplog, "realtime.session_rejected")
    assert rejected["next"] == "retry_minimal" and rejected["code"] == "invalid_value"


async def test_a_reconnect_restores_tool_calls_and_their_results():
    @tool
    def lookup_order(order: str) -> str:
        """Look an order up."""
        return f"Order {order} is ready for pickup."

    async with bridge([lookup_order], reconnect_backoff=0.01) as b:
        _, s1 = await b.live_call()
        await s1.function_call("lookup_order", {"order": "A1"}, call_id="call_77")
        await s1.wait_for("conversation.item.create", lambda e: e["item"]["type"] == "function_call_output")
        await s1.send(
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "event_id": "evt_t",
                "item_id": "item_u2",
                "content_index": 0,
                "error": {"type": "transcription_error", "code": "audio_unintelligible", "message": "unclear"},
            }
        )
        await s1.close(1011, "internal error")
        s2 = await b.fake.next_session()
        await s2.wait_for("session.update")
        await s2.wait_for("conversation.item.create", count=3)
        items = [e["item"] for e in s2.events("conversation.item.create")]
        assert items[0] == {
            "type": "function_call",
            "call_id": "call_77",
            "name": "lookup_order",
            "arguments": '{"order": "A1"}',
        }
        assert json.loads(items[1]["output"]) == "Order A1 is ready for pickup." and items[1]["call_id"] == "call_77"
        assert items[2]["role"] == "user" and "could not be transcribed" in items[2]["content"][0]["text"]
        assert b.observer.counters["transcription_failed"] == 1


async def test_a_stop_before_the_transfers_rest_reply_records_the_transfer_exactly():
    import threading

    from telephony.testing.fake_twilio_rest import FakeTwilioRest

    @tool
    async def to_billing(ctx: CallContext) -> str:
        """Transfer to billing."""
        return await ctx.transfer("+15557654321")

    with FakeTwilioRest() as rest:
        rest.hold = threading.Event()
        async with bridge([to_billing], twilio_api_base_url=rest.base_url, transfer_number="+15557654321") as b:
            call, session = await b.live_call()
            await session.function_call("to_billing", {})
            [bridged] = list(b.admission.sessions)
            await asyncio.to_thread(rest.wait_requests, 1)  # the redirect is at Twilio, no reply yet
            await call.hang_up()  # Twilio stops the stream as the redirect takes effect
            await call.wait_closed()
            rest.hold.set()  # then the REST reply: 200
            await asyncio.wait_for(bridged.wait_ended(), 5)
            assert b.observer.counters["calls_transferred"] == 1
            assert b.observer.counters["calls_completed"] == 0
