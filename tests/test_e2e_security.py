"""Signatures on the webhook and the WebSocket upgrade, and bad input on one
call beside a healthy one."""

from __future__ import annotations

import asyncio
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from types import MappingProxyType

import pytest
import websockets

from tests.audio_data import agent_pcm24
from tests.harness import IO_MODES, TOKEN, bridge

pytestmark = pytest.mark.anyio

TWIML = Path(__file__).resolve().parent.parent / "twiml"


def canonical(element: ET.Element) -> bytes:
    """XML without the indentation whitespace, for comparing with golden files."""
    for node in element.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    return ET.tostring(element)


PARAMS = MappingProxyType(
    {
        "CallSid": "CA" + "a" * 32,
        "From": "+15551230000",
        "To": "+15559870000",
        "AccountSid": "AC" + "1" * 32,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
)


async def test_webhook_answers_connect_stream_when_signed():
    async with bridge() as b:
        r = await b.post("/incoming-call", PARAMS)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
        root = ET.fromstring(r.text)
        stream = root.find("./Connect/Stream")
        assert stream is not None and stream.get("url") == f"wss://127.0.0.1:{b.port}/media-stream"
        params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        token = params.pop("token")
        assert params == {"From": "+15551230000", "To": "+15559870000", "CallSid": "CA" + "a" * 32}
        # The token proves this call's stream: valid once, for this CallSid only.
        streams = b.state.services.streams
        assert streams.check("CA" + "b" * 32, {**params, "token": token}) == "stream token was issued for another call"
        assert streams.check("CA" + "a" * 32, {**params, "token": token}) is None
        assert streams.check("CA" + "a" * 32, {**params, "token": token}) == "stream token already used"
        # Same shape as the golden file in twiml/.
        golden = (
            (TWIML / "incoming-call.xml")
            .read_text()
            .replace("{origin}", b.origin)
            .replace("{host}", f"127.0.0.1:{b.port}")
            .replace("{token}", token)
        )
        assert canonical(root) == canonical(ET.fromstring(golden))


@pytest.mark.parametrize("signature", [None, "bad-signature", "tampered"])
async def test_webhook_refuses_unsigned_or_forged_requests(signature):
    async with bridge() as b:
        if signature == "tampered":  # signed for other parameters
            from telephony.testing.fake_twilio import sign_webhook

            sig = sign_webhook(TOKEN, b.origin + "/incoming-call", {**PARAMS, "From": "+1999"})
            r = await b.post("/incoming-call", PARAMS, sign=False, **{"X-Twilio-Signature": sig})
        elif signature is None:
            r = await b.post("/incoming-call", PARAMS, sign=False)
        else:
            r = await b.post("/incoming-call", PARAMS, sign=False, **{"X-Twilio-Signature": signature})
        assert r.status_code == 403
        assert "Stream" not in r.text


@pytest.mark.parametrize("how", ["unsigned", "wrong-token", "wrong-url"])
async def test_media_stream_upgrade_refused_without_valid_signature(how):
    async with bridge() as b:
        call = b.twilio()
        if how == "unsigned":
            call.auth_token = None
        elif how == "wrong-token":
            call.auth_token = "another-token-000000"
        else:
            call.signed_url = "wss://evil.example/media-stream"
        with pytest.raises(websockets.InvalidStatus) as info:
            await call.connect()
        assert info.value.response.status_code == 403
        assert b.fake.sessions == []  # no Realtime session was opened
        assert b.observer.counters["stream_rejected_signature"] == 1


async def test_without_token_requests_are_not_checked():
    async with bridge(token=None) as b:
        r = await b.post("/incoming-call", PARAMS, sign=False)
        assert r.status_code == 200 and "<Stream" in r.text
        await b.live_call()


async def test_health():
    async with bridge() as b:
        r = await b.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok", "active_calls": 0, "pid": os.getpid()}


async def test_bad_input_on_one_call_leaves_the_other_call_and_server_alone(io):
    async with bridge(server_options=IO_MODES[io]) as b:
        good, good_session = await b.live_call()

        bad = b.twilio()
        await bad.connect()
        # Media before start is dropped and opens no session.
        await bad.send_audio(b"\xff" * 320)
        for junk in [
            "not json at all",
            b"\x00\x01binary",
            json.dumps([1, 2, 3]),
            json.dumps({"event": "media", "media": {"payload": 123}}),
            json.dumps({"event": "media", "media": {"payload": "!!!not base64!!!"}}),
            json.dumps({"event": "mark"}),
            json.dumps({"event": "surprise", "x": 1}),
            json.dumps({"event": "start", "start": {}}),
            json.dumps({"no_event": True}),
        ]:
            await bad.send_raw(junk)
        await bad.start()
        bad_session = await b.fake.next_session()
        await bad_session.wait_for("session.update")
        await bad.send_raw(json.dumps({"event": "media", "media": {"payload": "%%%"}}))
        await bad.send_audio(b"\xff" * 160)
        await bad_session.wait_audio(960)  # still alive after garbage: it was dropped
        assert b.observer.counters["twilio.invalid"] >= 3

        # A huge frame ends that call only, and its Realtime session is closed.
        await bad.send_raw("x" * (b.settings.max_message_bytes + 10))
        await bad.wait_closed()
        await asyncio.wait_for(bad_session.closed.wait(), 2)

        # Realtime-side garbage on the good call is dropped too.
        await good_session.send_raw("{{{ not json")
        await good_session.send(
            {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "***"}
        )
        await good_session.send({"type": "some.future.event", "event_id": "e1"})
        # The good call goes on: audio both ways.
        await good.send_audio(b"\xff" * 1600)
        await good_session.wait_audio(9600)
        await good_session.respond_audio(agent_pcm24()[:4800].tobytes())
        await good.wait_media_bytes(1600)
        assert not good.closed.is_set()

        r = await b.get("/healthz")
        assert r.status_code == 200 and r.json()["active_calls"] == 1


async def test_realtime_refusal_ends_the_call_cleanly():
    async with bridge() as b:
        b.fake.refuse_status = 401
        call = b.twilio()
        await call.connect()
        await call.start()
        await call.wait_closed()
        assert b.observer.counters["calls_failed"] == 1
