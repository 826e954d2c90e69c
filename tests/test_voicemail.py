"""Outbound calls and voicemail: asynchronous answering-machine detection through
the real app, the fake Twilio REST server and the fakes over loopback."""

from __future__ import annotations

import re

import pytest

from telephony.config import Settings
from telephony.io.twilio.outbound import place_call
from tests.audio_data import agent_pcm24
from tests.harness import ACCOUNT, TOKEN, bridge

pytestmark = pytest.mark.anyio


async def test_place_call_with_amd_asks_twilio_for_async_detection(rest_fake):
    settings = Settings(
        _env_file=None,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_api_base_url=rest_fake.base_url,
        public_url="https://voice.example.com",
        from_number="+15550009999",
    )
    await place_call("+15551234567", settings=settings, amd=True, voicemail_message="Call Acme back.")
    req = rest_fake.requests[-1]
    assert req.field("MachineDetection") == "DetectMessageEnd" and req.field("AsyncAmd") == "true"
    assert req.field("AsyncAmdStatusCallback") == "https://voice.example.com/amd-status"
    assert '<Parameter name="amd" value="1" />' in req.field("Twiml")
    assert '<Parameter name="voicemail_message" value="Call Acme back." />' in req.field("Twiml")
    await place_call("+15551234567", settings=settings)  # off by default
    assert rest_fake.requests[-1].field("MachineDetection") is None


def _outbound(**extra: str) -> dict[str, str]:
    return {"From": "+15550009999", "To": "+15551234567", "direction": "outbound", "amd": "1", **extra}


async def test_a_machine_gets_the_voicemail_then_the_call_ends_after_it_played():
    async with bridge(greeting="Hi, this is Acme about your booking.", voicemail_message="Please call Acme.") as b:
        call, session = await b.live_call(parameters=_outbound())
        assert not session.events("response.create")  # the greeting waits for the verdict
        reply = await b.post("/amd-status", {"CallSid": call.call_sid, "AnsweredBy": "machine_end_beep"})
        assert reply.status_code == 204
        create = await session.wait_for("response.create")
        assert "Please call Acme." in create["response"]["instructions"]
        assert "booking" not in create["response"]["instructions"]
        rid, item = await session.respond_audio(agent_pcm24()[:7200].tobytes(), finish=False)
        await session.audio_done(rid, item, "Please call Acme.")
        await session.response_done(rid)
        await call.wait_closed(5)
        assert len(call.heard()) == len(call.media_bytes())  # hung up after it played
        assert await b.observer.flush_records(5)
        record = await b.observer.store.get(call.call_sid)
        assert record.answered_by == "machine_end_beep" and record.outcome == "voicemail"
        assert record.answered_by_latency_s is not None and record.answered_by_latency_s >= 0
        assert b.observer.counters["amd_machine_end_beep"] == 1
        metrics = (await b.get("/metrics")).text
        assert 'telephony_answered_by_total{verdict="machine_end_beep"} 1.0' in metrics
        assert len(session.events("response.create")) == 1  # left once


async def test_a_human_verdict_greets_and_unsigned_verdicts_are_refused():
    async with bridge(greeting="Hi, this is Acme about your booking.") as b:
        call, session = await b.live_call(parameters=_outbound())
        forged = await b.post("/amd-status", {"CallSid": call.call_sid, "AnsweredBy": "machine_end_beep"}, sign=False)
        assert forged.status_code == 403
        await b.post("/amd-status", {"CallSid": call.call_sid, "AnsweredBy": "human"})
        create = await session.wait_for("response.create")
        assert "about your booking" in create["response"]["instructions"]
        unknown = await b.post("/amd-status", {"CallSid": "CA" + "9" * 32, "AnsweredBy": "human"})
        assert unknown.status_code == 204  # no such live call here: logged, nothing else
        assert re.fullmatch(r"CA\w+", call.call_sid)
