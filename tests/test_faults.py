"""Faults through the real server: the Realtime side drops, expires, refuses;
the Twilio side goes quiet or vanishes; signatures behind a proxy."""

from __future__ import annotations

import asyncio
import json
import logging
from types import MappingProxyType

import pytest

from telephony import tool
from telephony.logs import JsonFormatter, RedactSecrets
from telephony.testing.fake_twilio import sign_webhook
from tests.audio_data import agent_pcm24
from tests.harness import TOKEN, bridge

pytestmark = pytest.mark.anyio

FAST = MappingProxyType({"reconnect_backoff": 0.01, "reconnect_attempts": 3})


async def _transcripts(session, caller: str, agent_pcm: bytes, agent: str):
    item = await session.speech_started()
    await session.speech_stopped(item)
    await session.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "e",
            "item_id": item,
            "content_index": 0,
            "transcript": caller,
            "usage": {"type": "duration", "seconds": 1},
        }
    )
    return await session.respond_audio(agent_pcm, transcript=agent, finish=False)


def _logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict]:
    return [r.fields for r in caplog.records if r.getMessage() == event]  # type: ignore[attr-defined]


async def test_realtime_drop_mid_answer_reconnects_and_restores_the_conversation(caplog):
    caplog.set_level(logging.INFO, "telephony")
    async with bridge(**FAST) as b:
        call, s1 = await b.live_call()
        rid, item = await _transcripts(
            s1, "Where is my order A100?", agent_pcm24()[:48000].tobytes(), "Your order is ready for pickup."
        )
        await s1.audio_done(rid, item, "Your order is ready for pickup.")
        await call.wait_echoed(2)
        await s1.close(1011, "internal error")  # mid-answer: audio still queued at Twilio
        s2 = await b.fake.next_session()
        update = await s2.wait_for("session.update")
        assert update["session"]["instructions"] == b.settings.instructions  # same configuration
        restored = [e["item"] for e in s2.events("conversation.item.create")]
        assert [(i["role"], i["content"][0]["type"], i["content"][0]["text"]) for i in restored[:2]] == [
            ("user", "input_text", "Where is my order A100?"),
            ("assistant", "output_text", "Your order is ready for pickup."),
        ]
        assert s2.received[0]["type"] == "session.update"
        # The answer already queued kept playing (no clear), and audio flows on.
        assert not call.events("clear")
        await call.send_audio(b"\xff" * 800)
        await s2.wait_audio(4800)
        await s2.respond_audio(agent_pcm24()[:4800].tobytes())
        await call.wait_for("media", count=len(call.events("media")) + 1)
        assert s1.closed_at <= s2.opened_at  # never two live sessions for one call
        assert b.observer.counters["calls_failed"] == 0 and b.observer.open_realtime == 1
        metrics = (await b.get("/metrics")).text
        assert "telephony_realtime_reconnects_total 1.0" in metrics
    # The loss and the recovery are in the log, with what was restored.
    [lost] = _logged(caplog, "realtime.lost")
    assert lost["attempt"] == 1 and lost["retry_in_s"] == 0.0
    [back] = _logged(caplog, "realtime.reconnected")
    assert back["generation"] == 2 and back["restored_items"] == 2


async def test_caller_audio_during_the_gap_is_held_and_sent_after():
    async with bridge(reconnect_backoff=0.3, reconnect_attempts=3) as b:
        call, s1 = await b.live_call()
        b.fake.refuse_status = 503  # the first reconnect fails, the second works
        await s1.close(1001, "going away")
        await asyncio.to_thread(lambda: None)
        await call.send_audio(b"\x10" * 1600)  # 200 ms spoken while there is no session
        b.fake.refuse_status = None
        s2 = await b.fake.next_session()
        audio = await s2.wait_audio(1600 * 6)
        assert len(audio) >= 1600 * 6 and any(audio)


async def test_realtime_drop_during_a_tool_call_still_answers_it_once():
    release = asyncio.Event()

    @tool
    async def slow_lookup(query: str) -> dict:
        """Waits until the test releases it."""
        await release.wait()
        return {"query": query, "answer": 42}

    async with bridge(tools=[slow_lookup], **FAST) as b:
        _call, s1 = await b.live_call()
        await s1.function_call("slow_lookup", {"query": "q"}, call_id="call_slow")
        await s1.close(1011)
        s2 = await b.fake.next_session()
        await s2.wait_for("session.update")
        release.set()
        note = await s2.wait_for("conversation.item.create", lambda e: e["item"].get("role") == "system")
        text = note["item"]["content"][0]["text"]
        assert "slow_lookup" in text and "call_slow" in text and '"answer": 42' in text
        await s2.wait_for("response.create")
        outputs = [
            e
            for s in (s1, s2)
            for e in s.events("conversation.item.create")
            if e["item"]["type"] == "function_call_output"
        ]
        assert outputs == []  # not sent to the dead session, nor with an unknown call id


async def test_session_expiry_reconnects():
    async with bridge(**FAST) as b:
        call, s1 = await b.live_call()
        await s1.error("session_expired", "Your session hit the maximum duration of 60 minutes.")
        await s1.close(1001)
        s2 = await b.fake.next_session()
        await s2.wait_for("session.update")
        await call.send_audio(b"\xff" * 160)
        await s2.wait_audio(960)


async def test_rollover_between_turns_keeps_one_session_at_a_time(caplog):
    caplog.set_level(logging.INFO, "telephony")
    async with bridge(session_rollover_seconds=0.3, **FAST) as b:
        call, s1 = await b.live_call()
        rid, item = await _transcripts(s1, "Hello?", agent_pcm24()[:2400].tobytes(), "Hi there.")
        await s1.audio_done(rid, item, "Hi there.")
        await s1.response_done(rid)
        s2 = await b.fake.next_session(timeout=5)  # idle and old enough: replaced
        await s2.wait_for("session.update")
        assert s1.closed.is_set() and s1.closed_at <= s2.opened_at
        texts = [e["item"]["content"][0]["text"] for e in s2.events("conversation.item.create")]
        assert texts[:2] == ["Hello?", "Hi there."]
        assert not call.closed.is_set()
    [rollover] = _logged(caplog, "realtime.rollover")
    assert rollover["age_s"] >= 0.3


async def test_after_n_failed_tries_the_call_ends_with_a_spoken_apology(caplog):
    caplog.set_level(logging.INFO, "telephony")
    async with bridge(**FAST) as b:
        call, s1 = await b.live_call()
        b.fake.refuse_status = 503
        await s1.close(1011)
        await call.wait_closed(5)
        assert b.observer.counters["calls_failed"] == 1 and b.observer.open_realtime == 0
        r = await b.post("/stream-ended", {"CallSid": call.call_sid, "CallStatus": "in-progress"})
        assert r.status_code == 200 and "<Say>Sorry, we are having technical difficulties" in r.text
        assert "<Hangup />" in r.text
        other = await b.post("/stream-ended", {"CallSid": "CA" + "0" * 32})
        assert "<Say>" not in other.text and "<Hangup />" in other.text
        assert (await b.post("/stream-ended", {"CallSid": call.call_sid}, sign=False)).status_code == 403
    [gave_up] = _logged(caplog, "realtime.gave_up")
    assert gave_up["attempts"] == b.settings.reconnect_attempts and "503" in gave_up["reason"]


async def test_apology_is_answered_by_another_worker_sharing_the_records_file(tmp_path):
    """With several workers, Twilio's /stream-ended request may reach a worker that
    did not run the stream: it finds how the call ended in the shared records file."""
    import httpx

    from telephony.io.app import create_app

    async with bridge(records_path=str(tmp_path / "calls.db"), **FAST) as b:
        other = create_app(b.settings)  # a second worker: same settings, same records file
        call, s1 = await b.live_call()
        b.fake.refuse_status = 503
        await s1.close(1011)
        await call.wait_closed(5)
        url = b.origin + "/stream-ended"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url=b.origin) as http:
            for sid, spoken in ((call.call_sid, True), ("CA" + "0" * 32, False)):
                params = {"CallSid": sid, "CallStatus": "in-progress"}
                r = await http.post(
                    "/stream-ended", data=params, headers={"X-Twilio-Signature": sign_webhook(TOKEN, url, params)}
                )
                assert r.status_code == 200 and "<Hangup />" in r.text
                assert ("<Say>Sorry, we are having technical difficulties" in r.text) is spoken


async def test_twilio_socket_closing_without_stop_ends_the_call_and_session():
    async with bridge() as b:
        call, s1 = await b.live_call()
        await call.close()  # no stop message
        await asyncio.wait_for(s1.closed.wait(), 1)


async def test_quiet_stream_ends_the_call():
    async with bridge(quiet_timeout=0.3) as b:
        call, s1 = await b.live_call()
        await call.wait_closed(3)
        await asyncio.wait_for(s1.closed.wait(), 1)
        assert b.observer.counters["calls_failed"] == 1


PARAMS = MappingProxyType({"CallSid": "CA" + "f" * 32, "From": "+15550001111", "To": "+15550002222"})


async def test_signatures_behind_a_proxy_use_forwarded_headers_only_when_trusted():
    for trusted in (True, False):
        async with bridge(public_url=None, trust_forwarded_headers=trusted) as b:
            public = "https://voice.example.com/incoming-call"
            headers = {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "voice.example.com",
                "X-Twilio-Signature": sign_webhook(TOKEN, public, PARAMS),
            }
            r = await b.post("/incoming-call", PARAMS, sign=False, **headers)
            if trusted:
                assert r.status_code == 200 and 'url="wss://voice.example.com/media-stream"' in r.text
            else:
                assert r.status_code == 403
                # Untrusted: the URL is the one the request reached.
                assert (await b.post("/incoming-call", PARAMS)).status_code == 200


async def test_hmac_sha256_shared_key_signatures():
    from twilio.request_validator import RequestValidator

    async with bridge(twilio_webhook_shared_keys={"webhooks_sharedkey_1": "shared-secret-abc123"}) as b:
        url = b.origin + "/incoming-call"
        sig = RequestValidator("shared-secret-abc123").compute_signature(url, PARAMS, "HMAC_SHA256")
        ok = await b.post(
            "/incoming-call",
            PARAMS,
            sign=False,
            **{
                "X-Twilio-Signature": sig,
                "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
            },
        )
        assert ok.status_code == 200
        wrong_key = await b.post(
            "/incoming-call",
            PARAMS,
            sign=False,
            **{
                "X-Twilio-Signature": sig,
                "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_2,algorithm=HMAC_SHA256",
            },
        )
        assert wrong_key.status_code == 403
        sha1_with_shared = RequestValidator("shared-secret-abc123").compute_signature(url, PARAMS)
        downgraded = await b.post(
            "/incoming-call",
            PARAMS,
            sign=False,
            **{
                "X-Twilio-Signature": sha1_with_shared,
                "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
            },
        )
        assert downgraded.status_code == 403
        assert (await b.post("/incoming-call", PARAMS)).status_code == 200  # auth token, SHA-1


def test_secrets_are_redacted_from_every_log_record():
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed with key sk-live-123456 in %s", ("url",), None)
    record.fields = {"detail": "token=tok-abcdef-999", "nested": {"x": ["sk-live-123456"]}}
    RedactSecrets(["sk-live-123456", "tok-abcdef-999"]).filter(record)
    line = JsonFormatter().format(record)
    assert "sk-live-123456" not in line and "tok-abcdef-999" not in line
    assert json.loads(line)["nested"] == {"x": ["[redacted]"]}


async def test_abrupt_connection_loss_without_close_frame_reconnects():
    async with bridge(**FAST) as b:
        call, s1 = await b.live_call()
        await s1.respond_audio(agent_pcm24()[:24000].tobytes(), finish=False)
        s1.ws.transport.abort()  # the TCP connection dies: no close handshake
        s2 = await b.fake.next_session()
        await s2.wait_for("session.update")
        await call.send_audio(b"\xff" * 160)
        await s2.wait_audio(960)
        assert b.observer.open_realtime == 1
