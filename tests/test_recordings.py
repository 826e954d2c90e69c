"""Recordings (TELEPHONY_RECORDING=twilio) through the real app, the fake Twilio
REST server and the fakes over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from telephony.io.twilio.rest import TwilioRest
from telephony.testing.fake_twilio_rest import FakeTwilioRest
from tests.harness import TOKEN, bridge

pytestmark = pytest.mark.anyio

ACCOUNT = "AC" + "1" * 32


@pytest.fixture
def rest_fake() -> Iterator[FakeTwilioRest]:
    with FakeTwilioRest(account_sid=ACCOUNT, auth_token=TOKEN) as fake:
        yield fake


async def test_twilio_recording_is_started_announced_and_stored_when_completed(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    async with bridge(rest=rest, recording="twilio", recording_notice="This call is recorded.") as b:
        answer = await b.post("/incoming-call", {"CallSid": "CA" + "a" * 32, "From": "+15550001111", "To": "+1555"})
        assert answer.text.index("<Say>This call is recorded.</Say>") < answer.text.index("<Connect")
        call, _session = await b.live_call()
        [req] = await asyncio.to_thread(rest_fake.wait_requests, 1)
        assert req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{call.call_sid}/Recordings.json"
        assert req.field("RecordingChannels") == "dual"
        assert req.field("RecordingStatusCallback") == f"{b.origin}/recording-status"
        await call.stop()
        await call.wait_closed()
        assert await b.observer.flush_records(5)
        url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1"
        form = {"CallSid": call.call_sid, "RecordingSid": "RE1", "RecordingUrl": url, "RecordingStatus": "completed"}
        assert (await b.post("/recording-status", form, sign=False)).status_code == 403
        assert (await b.post("/recording-status", form)).status_code == 204
        record = await b.observer.store.get(call.call_sid)
        assert record.recording == url and record.recording_sid == "RE1"


async def test_no_notice_and_no_recording_when_off(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    async with bridge(rest=rest, recording_notice="This call is recorded.") as b:
        answer = await b.post("/incoming-call", {"CallSid": "CA" + "a" * 32, "From": "+15550001111", "To": "+1555"})
        assert "<Say>" not in answer.text
        call, _session = await b.live_call()
        await call.stop()
        await call.wait_closed()
        assert not [r for r in rest_fake.requests if "Recordings" in r.path]
