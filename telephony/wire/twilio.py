"""Twilio Media Streams (bidirectional) messages.

Inbound: ``parse(text)`` -> one of the dataclasses below, never an exception.
Outbound: ``OutboundStream`` pre-renders the per-stream JSON around payloads so
the hot path is string concatenation (base64 needs no JSON escaping).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Connected",
    "Dtmf",
    "Invalid",
    "Mark",
    "Media",
    "OutboundStream",
    "Start",
    "Stop",
    "TwilioEvent",
    "Unknown",
    "parse",
]

#: Decoded media larger than this (2 s of 8 kHz mu-law) is refused; Twilio sends 160.
MAX_PAYLOAD_BYTES = 16_000
_MAX_PAYLOAD_CHARS = MAX_PAYLOAD_BYTES * 4 // 3 + 4


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000


@dataclass(frozen=True, slots=True)
class Media:
    audio: bytes  # raw mu-law, base64 already decoded


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str


@dataclass(frozen=True, slots=True)
class Unknown:
    event: str


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str


TwilioEvent = Connected | Start | Media | Mark | Dtmf | Stop | Unknown | Invalid

_DTMF_DIGITS = frozenset("0123456789*#ABCD")


def _str(d: Any, key: str) -> str | None:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, str) else None


def parse(text: str | bytes) -> TwilioEvent:
    """Parse one Media Streams message. Never raises."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Invalid("not JSON")
    if not isinstance(msg, dict):
        return Invalid("not a JSON object")
    event = msg.get("event")
    if event == "media":  # 50 a second per call: the fewest steps that check everything
        media = msg.get("media")
        payload = media.get("payload") if type(media) is dict else None
        if type(payload) is not str:
            return Invalid("media without payload")
        if len(payload) > _MAX_PAYLOAD_CHARS:
            return Invalid("media payload too large")
        try:
            return Media(binascii.a2b_base64(payload, strict_mode=True))
        except (binascii.Error, ValueError):
            return Invalid("media payload is not valid base64")
    if event == "mark":
        name = _str(msg.get("mark"), "name")
        return Mark(name) if name is not None else Invalid("mark without name")
    if event == "start":
        start = msg.get("start")
        if not isinstance(start, dict):
            start = {}
        stream_sid = _str(start, "streamSid") or _str(msg, "streamSid")
        call_sid = _str(start, "callSid")
        if not stream_sid or not call_sid:
            return Invalid("start without streamSid or callSid")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            return Invalid("start customParameters is not an object")
        fmt = start.get("mediaFormat") or {}
        encoding = _str(fmt, "encoding") or "audio/x-mulaw"
        try:
            rate = int(fmt.get("sampleRate", 8000)) if isinstance(fmt, dict) else 8000
        except (TypeError, ValueError):
            return Invalid("start mediaFormat.sampleRate is not a number")
        return Start(
            stream_sid=stream_sid,
            call_sid=call_sid,
            account_sid=_str(start, "accountSid") or "",
            custom_parameters={str(k): str(v) for k, v in params.items()},
            encoding=encoding,
            sample_rate=rate,
        )
    if event == "dtmf":
        digit = _str(msg.get("dtmf"), "digit")
        if digit is None or digit not in _DTMF_DIGITS:
            return Invalid("dtmf without a valid digit")
        return Dtmf(digit)
    if event == "stop":
        return Stop(_str(msg.get("stop"), "callSid") or "")
    if event == "connected":
        return Connected(_str(msg, "protocol") or "")
    if isinstance(event, str):
        return Unknown(event[:64])
    return Invalid("message without an event name")


class OutboundStream:
    """Messages we send on one stream: media, mark, clear."""

    __slots__ = ("_mark_head", "_media_head", "clear")

    _TAIL = '"}}'

    def __init__(self, stream_sid: str) -> None:
        sid = orjson.dumps(stream_sid).decode()
        self._media_head = '{"event":"media","streamSid":' + sid + ',"media":{"payload":"'
        self._mark_head = '{"event":"mark","streamSid":' + sid + ',"mark":{"name":"'
        self.clear = '{"event":"clear","streamSid":' + sid + "}"

    def media(self, payload_b64: str) -> str:
        return self._media_head + payload_b64 + self._TAIL

    def mark(self, name: str) -> str:
        # Our mark names are digits only, so no escaping is needed.
        return self._mark_head + name + self._TAIL
