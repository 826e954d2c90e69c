"""Edge parsers: every input becomes a typed value, never an exception."""

from __future__ import annotations

import base64
import json

import orjson
import pytest

from telephony.wire import realtime as rt
from telephony.wire import twilio as tw
from tests.openai_models import validate_client_event, validate_server_event


def test_twilio_messages_parse_to_typed_values():
    payload = base64.b64encode(b"\xff" * 160).decode()
    assert tw.parse(json.dumps({"event": "media", "media": {"payload": payload, "timestamp": "40"}})) == tw.Media(
        b"\xff" * 160
    )
    start = tw.parse(
        json.dumps(
            {
                "event": "start",
                "streamSid": "MZ1",
                "start": {
                    "streamSid": "MZ1",
                    "callSid": "CA1",
                    "accountSid": "AC1",
                    "customParameters": {"a": "b"},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
    )
    assert start == tw.Start("MZ1", "CA1", "AC1", {"a": "b"})
    assert tw.parse('{"event":"mark","mark":{"name":"7"}}') == tw.Mark("7")
    assert tw.parse('{"event":"dtmf","dtmf":{"digit":"5"}}') == tw.Dtmf("5")
    assert tw.parse('{"event":"stop","stop":{"callSid":"CA1"}}') == tw.Stop("CA1")
    assert tw.parse('{"event":"connected","protocol":"Call"}') == tw.Connected("Call")
    assert tw.parse('{"event":"brand-new"}') == tw.Unknown("brand-new")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "nope",
        "[]",
        "null",
        "42",
        b"\xff\xfe",
        '{"event":"media"}',
        '{"event":"media","media":{"payload":7}}',
        '{"event":"media","media":{"payload":"@@@@"}}',
        '{"event":"media","media":"x"}',
        '{"event":"mark"}',
        '{"event":"start","start":{"streamSid":"MZ"}}',
        '{"event":"start","start":{"streamSid":"M","callSid":"C","customParameters":[1]}}',
        '{"event":"dtmf","dtmf":{"digit":"xx"}}',
        '{"event":5}',
        json.dumps({"event": "media", "media": {"payload": "A" * 40000}}),
    ],
)
def test_malformed_twilio_input_is_invalid_not_an_exception(raw):
    assert isinstance(tw.parse(raw), tw.Invalid)


def test_outbound_twilio_messages_are_exact_json():
    out = tw.OutboundStream('MZ"odd')
    assert orjson.loads(out.media("AAAA")) == {"event": "media", "streamSid": 'MZ"odd', "media": {"payload": "AAAA"}}
    assert orjson.loads(out.mark("12")) == {"event": "mark", "streamSid": 'MZ"odd', "mark": {"name": "12"}}
    assert orjson.loads(out.clear) == {"event": "clear", "streamSid": 'MZ"odd'}


SERVER_EVENTS = (
    (
        {
            "type": "response.output_audio.delta",
            "event_id": "e",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(b"\x01\x02").decode(),
        },
        rt.AudioDelta("r", "i", b"\x01\x02"),
    ),
    (
        {
            "type": "response.output_audio.done",
            "event_id": "e",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "content_index": 0,
        },
        rt.AudioDone("r", "i"),
    ),
    (
        {"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 5, "item_id": "i"},
        rt.SpeechStarted("i", 5),
    ),
    (
        {"type": "input_audio_buffer.speech_stopped", "event_id": "e", "audio_end_ms": 9, "item_id": "i"},
        rt.SpeechStopped("i", 9),
    ),
    (
        {
            "type": "response.function_call_arguments.done",
            "event_id": "e",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "call_id": "c",
            "name": "f",
            "arguments": "{}",
        },
        rt.FunctionCallDone("r", "i", "c", "f", "{}"),
    ),
    (
        {
            "type": "conversation.item.truncated",
            "event_id": "e",
            "item_id": "i",
            "content_index": 0,
            "audio_end_ms": 10,
        },
        rt.ItemTruncated("i", 10),
    ),
    (
        {
            "type": "error",
            "event_id": "e",
            "error": {"type": "invalid_request_error", "code": "session_expired", "message": "m"},
        },
        rt.Error("invalid_request_error", "session_expired", "m", None),
    ),
    (
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "e",
            "item_id": "i",
            "content_index": 0,
            "transcript": "hello",
            "usage": {"type": "duration", "seconds": 1.0},
        },
        rt.InputTranscript("i", "hello"),
    ),
    (
        {
            "type": "response.output_audio_transcript.done",
            "event_id": "e",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "content_index": 0,
            "transcript": "hi there",
        },
        rt.TranscriptDone("i", "hi there"),
    ),
)


@pytest.mark.parametrize("event,expected", SERVER_EVENTS)
def test_realtime_server_events_parse(event, expected):
    validate_server_event(event)  # our fixtures are real GA server events
    assert rt.parse(json.dumps(event)) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        "[]",
        '{"type":1}',
        '{"type":"response.output_audio.delta"}',
        '{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"***"}',
        '{"type":"response.created","response":[]}',
        '{"type":"response.done","response":{"id":5}}',
        '{"type":"input_audio_buffer.speech_started","item_id":"i","audio_start_ms":"5"}',
    ],
)
def test_malformed_realtime_input_is_invalid(raw):
    assert isinstance(rt.parse(raw), rt.Invalid)


def test_unknown_realtime_event_is_typed_unknown():
    assert rt.parse('{"type":"rate_limits.updated","rate_limits":[]}') == rt.Unknown("rate_limits.updated")


def test_client_event_builders_are_valid_ga_events():
    for text in [
        rt.audio_append("AAAA"),
        rt.truncate("i", 5),
        rt.response_create(),
        rt.response_create("x"),
        rt.response_cancel(),
        rt.function_call_output("c", "{}"),
        rt.user_text("u"),
        rt.system_text("s"),
    ]:
        validate_client_event(json.loads(text))
    with pytest.raises(ValueError):
        validate_client_event(
            {"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": 1, "extra": True}
        )
