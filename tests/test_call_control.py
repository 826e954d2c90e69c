"""Call control through the real app: greeting, end_call, transfer (REST),
DTMF, per-call instructions, status callbacks; and the REST commands."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import time

import pytest

from telephony import CallContext, tool
from telephony.config import Settings
from telephony.io.twilio.outbound import place_call
from telephony.io.twilio.rest import TwilioRest
from telephony.tools.builtin import end_call_tool, transfer_call_tool
from tests.audio_data import agent_pcm24
from tests.harness import ACCOUNT, TOKEN, bridge

pytestmark = pytest.mark.anyio


@tool
def keys(ctx: CallContext) -> str:
    """Keys pressed so far."""
    return "".join(ctx.dtmf)


async def test_greeting_is_spoken_first_and_can_be_interrupted():
    async with bridge(greeting="Thanks for calling Acme Repairs!") as b:
        call, session = await b.live_call()
        create = await session.wait_for("response.create")
        assert "Thanks for calling Acme Repairs!" in create["response"]["instructions"]
        _rid, item = await session.respond_audio(agent_pcm24()[:48000].tobytes(), finish=False)
        await call.wait_echoed(2)
        await session.speech_started()
        await call.wait_for("clear")
        assert (await session.wait_for("conversation.item.truncate"))["item_id"] == item


async def test_end_call_hangs_up_only_after_the_goodbye_has_played():
    async with bridge(tools=[end_call_tool()]) as b:
        call, session = await b.live_call()
        update = session.events("session.update")[0]
        assert "end_call" in {t["name"] for t in update["session"]["tools"]}
        goodbye = agent_pcm24()[:12000].tobytes()  # 0.5 s
        rid, item = await session.respond_audio(goodbye, finish=False)
        await session.audio_done(rid, item, "Goodbye!")
        await session.send(
            {
                "type": "response.function_call_arguments.done",
                "event_id": "e1",
                "response_id": rid,
                "item_id": "fc1",
                "output_index": 1,
                "call_id": "call_end",
                "name": "end_call",
                "arguments": '{"reason": "caller is done"}',
            }
        )
        await session.response_done(rid)
        sent_at = time.monotonic()
        output = await session.wait_for("conversation.item.create")
        assert output["item"]["call_id"] == "call_end"
        await call.wait_closed(5)
        closed_at = time.monotonic()
        # The socket closed after the whole goodbye played at real-time pace...
        assert len(call.heard()) == len(call.media_bytes())
        assert closed_at - sent_at >= 0.45
        # ...no new response was asked for, and the Realtime session is closed.
        assert not session.events("response.create")
        await asyncio.wait_for(session.closed.wait(), 1)
        assert b.observer.counters["calls_hung_up_by_agent"] == 1


async def test_transfer_redirects_the_live_call_with_dial_after_playback(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    tools = [transfer_call_tool(["billing", "front desk"], has_default=False)]
    async with bridge(
        tools=tools, rest=rest, transfer_directory={"billing": "+15557770000", "front desk": "+15558880000"}
    ) as b:
        call, session = await b.live_call()
        update = session.events("session.update")[0]
        schema = next(t for t in update["session"]["tools"] if t["name"] == "transfer_call")
        assert schema["parameters"]["properties"]["target"]["enum"] == ["billing", "front desk"]
        words = agent_pcm24()[:7200].tobytes()  # 0.3 s "let me transfer you"
        rid, item = await session.respond_audio(words, finish=False)
        await session.audio_done(rid, item)
        await session.send(
            {
                "type": "response.function_call_arguments.done",
                "event_id": "e2",
                "response_id": rid,
                "item_id": "fc2",
                "output_index": 1,
                "call_id": "call_tr",
                "name": "transfer_call",
                "arguments": '{"target": "billing"}',
            }
        )
        await session.response_done(rid)
        requests = await asyncio.to_thread(rest_fake.wait_requests, 1)
        assert len(call.heard()) == len(call.media_bytes())  # words played before the redirect
        req = requests[0]
        assert req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{call.call_sid}.json"
        assert req.user == ACCOUNT and req.password == TOKEN
        twiml = req.field("Twiml")
        assert f'<Dial action="{b.origin}/dial-ended?label=billing" answerOnBridge="true"' in twiml
        assert 'callerId="+15550002222" method="POST" timeout="25"><Number>+15557770000</Number></Dial>' in twiml
        await call.wait_closed()
        await asyncio.wait_for(session.closed.wait(), 1)
        assert b.observer.counters["calls_transferred"] == 1


async def test_failed_transfer_is_told_to_the_model_and_the_call_goes_on(rest_fake, caplog):
    caplog.set_level(logging.INFO, "telephony")
    rest_fake.fail_next = (400, "The phone number is not valid")
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    async with bridge(tools=[transfer_call_tool([], has_default=True)], rest=rest, transfer_number="+15557770000") as b:
        call, session = await b.live_call()
        await session.function_call("transfer_call", {}, call_id="call_tr")
        note = await session.wait_for("conversation.item.create", lambda e: e["item"].get("role") == "system")
        assert "The phone number is not valid" in note["item"]["content"][0]["text"]
        await session.wait_for("response.create")
        await call.send_audio(b"\xff" * 160)
        await session.wait_audio(960)
        assert not call.closed.is_set()
    # Logged once, at WARNING, with the reason (it used to be logged twice, by two loggers).
    [failed] = [r for r in caplog.records if r.getMessage() == "transfer.failed"]
    assert failed.levelno == logging.WARNING and "not valid" in failed.fields["reason"]  # type: ignore[attr-defined]


async def test_dtmf_reaches_the_model_and_tools():
    async with bridge(tools=[keys]) as b:
        call, session = await b.live_call()
        for d in "42#":
            await call.dtmf(d)
        item = await session.wait_for("conversation.item.create")
        assert item["item"]["role"] == "user" and "4 2 #" in item["item"]["content"][0]["text"]
        await session.wait_for("response.create")
        await session.function_call("keys", {})
        out = await session.wait_for("conversation.item.create", count=2)
        assert json.loads(out["item"]["output"]) == "42#"


@pytest.mark.parametrize("record_dtmf", [False, True])
async def test_keypad_digits_are_masked_in_logs_and_records_unless_asked(record_dtmf, tmp_path, caplog):
    """They may be PINs or card numbers: masked by default (the model and ctx.dtmf
    still get them); TELEPHONY_RECORD_DTMF=true keeps them in clear."""
    db = tmp_path / "calls.db"
    with caplog.at_level(logging.DEBUG, "telephony"):
        async with bridge(tools=[keys], records_path=str(db), record_dtmf=record_dtmf) as b:
            call, session = await b.live_call()
            for d in "4711":
                await call.dtmf(d)
            item = await session.wait_for("conversation.item.create")
            assert "4 7 1 1" in item["item"]["content"][0]["text"]  # the model hears them
            await session.function_call("keys", {})
            out = await session.wait_for("conversation.item.create", count=2)
            assert json.loads(out["item"]["output"]) == "4711"  # ctx.dtmf has them
            await call.hang_up()
            await asyncio.wait_for(session.closed.wait(), 2)
            await b.observer.flush_records()
            record = await b.observer.store.get(call.call_sid)
    logged = [r.fields["digit"] for r in caplog.records if r.getMessage() == "dtmf"]  # type: ignore[attr-defined]
    if record_dtmf:
        assert logged == list("4711") and record.dtmf == "4711"
    else:
        assert logged == ["•"] * 4 and record.dtmf == "••••"
        ours = [r for r in caplog.records if r.name.startswith("telephony") and r.name != "telephony.realtime.ws"]
        assert not [r for r in ours if "4711" in r.getMessage() + str(getattr(r, "fields", ""))]


async def test_call_end_carries_the_duration_and_a_failed_call_warns(caplog):
    with caplog.at_level(logging.INFO, "telephony"):
        async with bridge() as b:
            call, session = await b.live_call()
            await call.send_audio(b"\xff" * 1600)
            await session.wait_audio(9600)
            await call.hang_up()
            await asyncio.wait_for(session.closed.wait(), 2)
            failing = b.twilio()
            await failing.connect()  # never starts: the call fails at the start timeout
            await failing.close()
            await b.observer.flush_records()
    ends = [r for r in caplog.records if r.getMessage() == "call.end"]
    ok = next(r for r in ends if r.fields["call_sid"] == call.call_sid)  # type: ignore[attr-defined]
    assert ok.levelno == logging.INFO and ok.fields["outcome"] == "completed"  # type: ignore[attr-defined]
    assert ok.fields["duration_s"] > 0  # type: ignore[attr-defined]
    (failed,) = [r for r in ends if r.fields["outcome"] == "failed"]  # type: ignore[attr-defined]
    assert failed.levelno == logging.WARNING


async def test_instructions_parameter_overrides_the_agent_for_that_call():
    async with bridge() as b:
        _, session = await b.live_call(
            parameters={"From": "+1555", "To": "+1666", "instructions": "Remind Sam about Tuesday."}
        )
        update = session.events("session.update")[0]
        assert update["session"]["instructions"] == "Remind Sam about Tuesday."


async def test_status_callbacks_are_signed_and_counted():
    async with bridge() as b:
        params = {"CallSid": "CA" + "d" * 32, "CallStatus": "completed", "CallDuration": "42"}
        assert (await b.post("/call-status", params)).status_code == 204
        assert (await b.post("/call-status", params, sign=False)).status_code == 403
        assert b.observer.counters["status_completed"] == 1


async def test_busy_beyond_max_calls():
    async with bridge(max_calls=1) as b:
        await b.live_call()
        r = await b.post("/incoming-call", {"CallSid": "CA" + "e" * 32, "From": "+1", "To": "+2"})
        assert "<Say>" in r.text and "<Stream" not in r.text and len(b.fake.sessions) == 1


# --- REST commands --------------------------------------------------------------------------


def _settings(rest_fake, **kw):
    return Settings(
        _env_file=None,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_api_base_url=rest_fake.base_url,
        public_url="https://voice.example.com",
        **kw,
    )


async def test_place_call_sends_inline_twiml_to_our_stream(rest_fake):
    sid = await place_call(
        "+15551234567",
        settings=_settings(rest_fake, from_number="+15550009999"),
        instructions="Confirm the booking.",
        parameters={"booking": "B7"},
    )
    req = rest_fake.requests[-1]
    assert sid.startswith("CA") and req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert req.field("To") == "+15551234567" and req.field("From") == "+15550009999"
    assert req.field("StatusCallback") == "https://voice.example.com/call-status"
    twiml = req.field("Twiml")
    assert (
        '<Stream statusCallback="https://voice.example.com/stream-status" statusCallbackMethod="POST" '
        'url="wss://voice.example.com/media-stream">'
    ) in twiml
    assert '<Parameter name="instructions" value="Confirm the booking." />' in twiml
    assert '<Parameter name="booking" value="B7" />' in twiml


@pytest.mark.parametrize(
    "to,from_", [("5551234567", "+15550009999"), ("+15551234567", None), ("+1555abc", "+15550009999")]
)
async def test_place_call_validates_numbers_before_any_request(rest_fake, to, from_):
    with pytest.raises(ValueError, match=r"E\.164"):
        await place_call(to, settings=_settings(rest_fake), from_number=from_)
    assert rest_fake.requests == []


def _cli(rest_fake, *args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TWILIO_", "TELEPHONY_", "PUBLIC_"))}
    base.update(
        {
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_API_BASE_URL": rest_fake.base_url,
            "PUBLIC_URL": "https://voice.example.com",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "telephony", *args], env=base, capture_output=True, text=True, timeout=60
    )


def test_cli_configure_and_call(rest_fake):
    rest_fake.add_number("+15550009999", voice_url="https://old.example.com/voice")
    out = _cli(rest_fake, "configure", "--number", "+15550009999")
    assert out.returncode == 0, out.stderr
    assert "voice_url: https://old.example.com/voice -> https://voice.example.com/incoming-call" in out.stdout
    assert "status_callback: (unset) -> https://voice.example.com/call-status" in out.stdout
    assert rest_fake.numbers["+15550009999"]["voice_url"] == "https://voice.example.com/incoming-call"
    assert "voice_fallback_url: (unset) -> https://voice.example.com/voice-fallback" in out.stdout
    assert rest_fake.numbers["+15550009999"]["voice_fallback_url"] == "https://voice.example.com/voice-fallback"
    again = _cli(rest_fake, "configure", "--number", "+15550009999")
    assert "nothing changed" in again.stdout

    out = _cli(rest_fake, "call", "+15551234567", "--from", "+15550009999", "--param", "tier=gold")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("calling +15551234567: call CA")
    assert '<Parameter name="tier" value="gold" />' in rest_fake.requests[-1].field("Twiml")

    bad = _cli(rest_fake, "call", "555")
    assert bad.returncode == 2 and "E.164" in bad.stderr
    unknown = _cli(rest_fake, "configure", "--number", "+15550000000")
    assert unknown.returncode == 2 and "not a phone number of account" in unknown.stderr
    nocreds = _cli(rest_fake, "call", "+15551234567", "--from", "+15550009999", TWILIO_AUTH_TOKEN="")
    assert nocreds.returncode == 2 and "TWILIO_AUTH_TOKEN" in nocreds.stderr
    assert TOKEN not in nocreds.stderr + nocreds.stdout


async def _transfer_to_billing(b, session) -> None:
    await session.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "e0",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "Put me through to billing please.",
        }
    )
    rid, item = await session.respond_audio(agent_pcm24()[:4800].tobytes(), finish=False)
    await session.audio_done(rid, item, "Connecting you to billing now.")
    await session.function_call("transfer_call", {"target": "billing"}, call_id="call_tr")


async def test_an_unanswered_transfer_comes_back_to_the_same_agent_with_the_conversation(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    tools = [transfer_call_tool(["billing"], has_default=False)]
    async with bridge(
        tools=tools, rest=rest, transfer_directory={"billing": "+15557770000"}, greeting="Thanks for calling!"
    ) as b:
        # (with answering-machine detection: a person answered)
        call, session = await b.live_call(parameters={"From": "+15550001111", "To": "+15550002222", "amd": "1"})
        await b.post("/amd-status", {"CallSid": call.call_sid, "AnsweredBy": "human"})
        await session.wait_for("response.create")  # the greeting
        await _transfer_to_billing(b, session)
        await asyncio.to_thread(rest_fake.wait_requests, 1)
        await call.wait_closed()  # Twilio ends the stream to run the <Dial>
        # Nobody answers: Twilio asks the <Dial action> what next.
        reply = await b.post(
            "/dial-ended?label=billing",
            {"CallSid": call.call_sid, "DialCallStatus": "no-answer", "DialCallDuration": "0", "From": "+15550001111"},
        )
        assert reply.status_code == 200 and "<Connect" in reply.text and "/media-stream" in reply.text
        params = dict(re.findall(r'<Parameter name="([^"]+)" value="([^"]*)"', reply.text))
        assert 'telephony_transfers_total{status="no-answer"} 1.0' in (await b.get("/metrics")).text
        assert params["TransferStatus"] == "no-answer" and params["To"] == "+15550002222"
        assert "amd" not in params
        back, again = await b.live_call(call_sid=call.call_sid, parameters=params)
        await again.wait_for("response.create")
        items = [e["item"] for e in again.events("conversation.item.create")]
        texts = [(i["role"], i["content"][0]["text"]) for i in items if i["type"] == "message"]
        assert texts[0] == ("user", "Put me through to billing please.")
        assert texts[1] == ("assistant", "Connecting you to billing now.")
        assert texts[-1][0] == "system" and "nobody answered" in texts[-1][1] and "billing" in texts[-1][1]
        creates = again.events("response.create")
        assert len(creates) == 1 and "Thanks for calling!" not in json.dumps(creates)  # no second greeting
        await back.stop()
        await back.wait_closed()
        assert await b.observer.flush_records(5)
        record = await b.observer.store.get(call.call_sid)
        assert [t["text"] for t in record.transcript][:2] == [
            "Put me through to billing please.",
            "Connecting you to billing now.",
        ]
        [attempt] = record.transfers
        assert attempt["status"] == "no-answer" and attempt["number"] == "+15557770000"
        assert record.answered_by == "human"  # kept from the first stream, not asked again
        assert record.outcome == "completed"
        assert not b.validation_errors()


async def test_an_answered_transfer_hangs_up_when_the_human_does(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    tools = [transfer_call_tool(["billing"], has_default=False)]
    async with bridge(tools=tools, rest=rest, transfer_directory={"billing": "+15557770000"}) as b:
        call, session = await b.live_call()
        await _transfer_to_billing(b, session)
        await asyncio.to_thread(rest_fake.wait_requests, 1)
        await call.wait_closed()
        reply = await b.post(
            "/dial-ended?label=billing",
            {"CallSid": call.call_sid, "DialCallStatus": "completed", "DialCallDuration": "42"},
        )
        assert "<Hangup" in reply.text and "<Connect" not in reply.text
        assert len(b.state.services.transfers) == 0  # nothing kept for a call that will not return
        record = await b.observer.store.get(call.call_sid)
        assert record.outcome == "transferred"
        assert [(a["status"], a["duration_s"], a["label"]) for a in record.transfers] == [("completed", 42, "billing")]
        forged = await b.post("/dial-ended", {"CallSid": call.call_sid, "DialCallStatus": "busy"}, sign=False)
        assert forged.status_code == 403


@pytest.mark.parametrize(
    ("parameters", "setting", "caller_id"),
    [
        ({"From": "+15550009999", "To": "+15551234567", "direction": "outbound"}, None, "+15550009999"),
        ({"From": "+15550001111", "To": "+15550002222"}, "+15550003333", "+15550003333"),
    ],
)
async def test_transfer_caller_id_is_the_business_number_or_the_setting(rest_fake, parameters, setting, caller_id):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    tools = [transfer_call_tool(["billing"], has_default=False)]
    async with bridge(
        tools=tools, rest=rest, transfer_directory={"billing": "+15557770000"}, transfer_caller_id=setting
    ) as b:
        _call, session = await b.live_call(parameters=parameters)
        await _transfer_to_billing(b, session)
        [req] = await asyncio.to_thread(rest_fake.wait_requests, 1)
        assert f'callerId="{caller_id}"' in req.field("Twiml")
        assert parameters["From" if "direction" not in parameters else "To"] not in req.field("Twiml")


async def test_stream_status_callbacks_are_logged_and_counted_and_the_voice_fallback_apologises(caplog):
    async with bridge() as b:
        with caplog.at_level(logging.INFO, logger="telephony.server"):
            reply = await b.post(
                "/stream-status",
                {"CallSid": "CA1", "StreamSid": "MZ1", "StreamEvent": "stream-error", "StreamError": "handshake 403"},
            )
        assert reply.status_code == 204 and b.observer.counters["stream_stream-error"] == 1
        [line] = [r for r in caplog.records if r.getMessage() == "stream.status"]
        assert line.levelno == logging.WARNING and "handshake 403" in str(line.__dict__)
        fallback = await b.post("/voice-fallback", {"CallSid": "CA2", "ErrorCode": "11200"})
        assert "<Say>" in fallback.text and "<Hangup" in fallback.text
        assert (await b.post("/stream-status", {"CallSid": "CA1"}, sign=False)).status_code == 403


async def test_a_call_the_bridge_ended_is_hung_up_by_rest_if_twilio_does_not_go_on(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    async with bridge(tools=[end_call_tool()], rest=rest, hangup_fallback_seconds=0.3) as b:
        call, session = await b.live_call()
        await session.function_call("end_call", {"reason": "done"}, call_id="call_end")
        await call.wait_closed(5)
        # No /stream-ended came: the REST API ends the call.
        [req] = await asyncio.to_thread(rest_fake.wait_requests, 1)
        assert req.path.endswith(f"/Calls/{call.call_sid}.json") and req.field("Status") == "completed"

        call, session = await b.live_call()
        await session.function_call("end_call", {"reason": "done"}, call_id="call_end2")
        await call.wait_closed(5)
        reply = await b.post("/stream-ended", {"CallSid": call.call_sid})  # Twilio went on: no REST call
        assert "<Hangup" in reply.text
        endings = b.state.services.endings
        await asyncio.gather(*endings._tasks)
        assert len(rest_fake.requests) == 1


async def _warm_transfer(b, rest_fake, count: int):
    call, session = await b.live_call()
    await session.function_call(
        "transfer_call", {"target": "billing", "summary": "Sam wants a refund for order 42."}, call_id="call_w"
    )
    requests = await asyncio.to_thread(rest_fake.wait_requests, count)
    twiml = requests[-1].field("Twiml")
    whisper = f"/whisper?call={call.call_sid}"
    assert f'<Number method="POST" url="{b.origin}{whisper}">+15557770000</Number>' in twiml
    await call.wait_closed()
    # The human answers: Twilio fetches the whisper for their leg.
    said = await b.post(whisper, {"CallSid": "CA" + "c" * 32, "ParentCallSid": call.call_sid})
    assert "Sam wants a refund for order 42." in said.text and "Press 1" in said.text
    assert f'action="{b.origin}/whisper-answer?call={call.call_sid}"' in said.text
    return call


async def test_a_warm_transfer_whispers_the_summary_and_needs_1_to_connect(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    tools = [transfer_call_tool(["billing"], has_default=False)]
    async with bridge(
        tools=tools, rest=rest, transfer_directory={"billing": "+15557770000"}, transfer_warm=["billing"]
    ) as b:
        call = await _warm_transfer(b, rest_fake, 1)
        declined = await b.post(f"/whisper-answer?call={call.call_sid}", {"CallSid": "CA" + "c" * 32, "Digits": "2"})
        assert "<Hangup" in declined.text
        back = await b.post(
            "/dial-ended?label=billing",
            {"CallSid": call.call_sid, "DialCallStatus": "completed", "DialCallDuration": "9"},
        )
        assert "<Connect" in back.text and '<Parameter name="TransferStatus" value="declined" />' in back.text

        call = await _warm_transfer(b, rest_fake, 2)
        taken = await b.post(f"/whisper-answer?call={call.call_sid}", {"CallSid": "CA" + "d" * 32, "Digits": "1"})
        assert "<Hangup" not in taken.text  # the whisper ends: Twilio connects the caller
        done = await b.post(
            "/dial-ended?label=billing",
            {"CallSid": call.call_sid, "DialCallStatus": "completed", "DialCallDuration": "60"},
        )
        assert "<Hangup" in done.text
