"""OpenAI Realtime API (GA) events.

Server events: ``parse(text)`` -> one of the dataclasses below, never an
exception; audio deltas are base64-decoded here, once. Client events: small
builders returning JSON text (``realtime_client_events.py``, re-exported here,
so both directions are used as ``realtime.X``); the per-frame append uses a
string template.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .realtime_client_events import ITEM_CREATE as ITEM_CREATE
from .realtime_client_events import RESPONSE_CANCEL as RESPONSE_CANCEL
from .realtime_client_events import RESPONSE_CREATE as RESPONSE_CREATE
from .realtime_client_events import SESSION_UPDATE as SESSION_UPDATE
from .realtime_client_events import TRUNCATE as TRUNCATE
from .realtime_client_events import (
    assistant_text,
    audio_append,
    audio_append_bytes,
    caused_by,
    function_call,
    function_call_output,
    mcp_approval_response,
    response_cancel,
    response_create,
    session_update,
    system_text,
    truncate,
    user_text,
)

__all__ = [
    "BENIGN_ERRORS",
    "FAILURE_LABELS",
    "KNOWN_EVENT_TYPES",
    "AudioDelta",
    "AudioDone",
    "Error",
    "FunctionCallDone",
    "InputTranscript",
    "InputTranscriptFailed",
    "Invalid",
    "ItemTruncated",
    "McpApprovalRequest",
    "McpCallDone",
    "McpProgress",
    "RealtimeEvent",
    "ResponseCreated",
    "ResponseDone",
    "SessionCreated",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "TranscriptDone",
    "Unknown",
    "assistant_text",
    "audio_append",
    "audio_append_bytes",
    "caused_by",
    "function_call",
    "function_call_output",
    "mcp_approval_response",
    "parse",
    "response_cancel",
    "response_create",
    "session_update",
    "system_text",
    "truncate",
    "user_text",
]


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    pass


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str  # completed | cancelled | incomplete | failed
    reason: str | None  # status_details.reason (cancelled, incomplete)
    usage: dict[str, Any] | None
    #: status_details.error (failed): its code (or type) and message
    error_code: str | None = None
    error_message: str | None = None

    @property
    def label(self) -> str:
        """A metric label from a closed set: the reason or error code if known, else ``other``."""
        key = self.reason if self.status != "failed" else self.error_code
        return key if key in FAILURE_LABELS else "other"


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    audio: bytes  # PCM16LE 24 kHz


@dataclass(frozen=True, slots=True)
class AudioDone:
    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class TranscriptDone:
    """The agent's words for one item (``response.output_audio_transcript.done``)."""

    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class InputTranscript:
    """The caller's words (``conversation.item.input_audio_transcription.completed``)."""

    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class InputTranscriptFailed:
    """``conversation.item.input_audio_transcription.failed``: the caller spoke, no words came."""

    item_id: str
    message: str


@dataclass(frozen=True, slots=True)
class FunctionCallDone:
    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ItemTruncated:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class Error:
    type: str
    code: str | None
    message: str
    event_id: str | None


@dataclass(frozen=True, slots=True)
class McpProgress:
    """``mcp_list_tools.*`` (``what="list_tools"``) and ``response.mcp_call.*``
    (``what="call"``): ``status`` is in_progress, completed or failed."""

    what: str
    status: str
    item_id: str


@dataclass(frozen=True, slots=True)
class McpCallDone:
    """A finished ``mcp_call`` item (``response.output_item.done``): the API
    called a remote MCP server itself."""

    item_id: str
    server_label: str
    name: str
    arguments: str
    output: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class McpApprovalRequest:
    """The API asks whether it may call an MCP tool (an ``mcp_approval_request`` item)."""

    request_id: str
    server_label: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Unknown:
    type: str


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str


RealtimeEvent = (
    SessionCreated
    | SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | ResponseCreated
    | ResponseDone
    | AudioDelta
    | AudioDone
    | TranscriptDone
    | InputTranscript
    | InputTranscriptFailed
    | FunctionCallDone
    | ItemTruncated
    | McpProgress
    | McpCallDone
    | McpApprovalRequest
    | Error
    | Unknown
    | Invalid
)

#: Known ``status_details`` reasons and failure codes: metric labels come only from these.
FAILURE_LABELS = frozenset(
    {
        "max_output_tokens",
        "content_filter",
        "turn_detected",
        "client_cancelled",
        "server_error",
        "rate_limit_exceeded",
        "insufficient_quota",
        "invalid_request_error",
    }
)

#: Races that are harmless by design (see the module docs of telephony.call).
BENIGN_ERRORS = frozenset({"response_cancel_not_active", "conversation_already_has_active_response"})


def _s(d: Any, key: str) -> str:
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, str):
        raise KeyError(key)
    return v


def _i(d: Any, key: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise KeyError(key)
    return v


def _audio_delta(m: dict) -> RealtimeEvent:
    try:
        audio = binascii.a2b_base64(_s(m, "delta"), strict_mode=True)
    except (binascii.Error, ValueError):
        return Invalid("response.output_audio.delta is not valid base64")
    return AudioDelta(_s(m, "response_id"), _s(m, "item_id"), audio)


def _response_done(m: dict) -> RealtimeEvent:
    r = m["response"]
    details = r.get("status_details") if isinstance(r, dict) else None
    details = details if isinstance(details, dict) else {}
    reason = details.get("reason")
    error = details.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code") or error.get("type")
    message = error.get("message")
    usage = r.get("usage")
    return ResponseDone(
        _s(r, "id"),
        _s(r, "status"),
        reason if isinstance(reason, str) else None,
        usage if isinstance(usage, dict) else None,
        code if isinstance(code, str) else None,
        message[:300] if isinstance(message, str) else None,
    )


def _error(m: dict) -> RealtimeEvent:
    e = m.get("error")
    e = e if isinstance(e, dict) else {}
    code = e.get("code")
    return Error(
        str(e.get("type") or "error"),
        code if isinstance(code, str) else None,
        str(e.get("message") or ""),
        e.get("event_id") if isinstance(e.get("event_id"), str) else None,
    )


def _output_item_done(m: dict) -> RealtimeEvent:
    item = m["item"]
    kind = item.get("type") if isinstance(item, dict) else None
    if kind == "mcp_call":
        err = item.get("error")
        error = str(err.get("message") or err.get("type") or "error") if isinstance(err, dict) else None
        output = item.get("output")
        return McpCallDone(
            _s(item, "id"),
            _s(item, "server_label"),
            _s(item, "name"),
            _s(item, "arguments"),
            output if isinstance(output, str) else None,
            error,
        )
    if kind == "mcp_approval_request":
        return McpApprovalRequest(_s(item, "id"), _s(item, "server_label"), _s(item, "name"), _s(item, "arguments"))
    return Unknown("response.output_item.done")


def _mcp(what: str, status: str) -> Callable[[dict], RealtimeEvent]:
    return lambda m: McpProgress(what, status, _s(m, "item_id"))


_PARSERS = {
    "response.output_audio.delta": _audio_delta,
    "response.output_audio.done": lambda m: AudioDone(_s(m, "response_id"), _s(m, "item_id")),
    "input_audio_buffer.speech_started": lambda m: SpeechStarted(_s(m, "item_id"), _i(m, "audio_start_ms")),
    "input_audio_buffer.speech_stopped": lambda m: SpeechStopped(_s(m, "item_id"), _i(m, "audio_end_ms")),
    "response.created": lambda m: ResponseCreated(_s(m["response"], "id")),
    "response.done": _response_done,
    "response.output_audio_transcript.done": lambda m: TranscriptDone(_s(m, "item_id"), _s(m, "transcript")),
    "conversation.item.input_audio_transcription.completed": lambda m: InputTranscript(
        _s(m, "item_id"), _s(m, "transcript")
    ),
    "conversation.item.input_audio_transcription.failed": lambda m: InputTranscriptFailed(
        _s(m, "item_id"), str((m.get("error") or {}).get("message") or "")[:300]
    ),
    "response.function_call_arguments.done": lambda m: FunctionCallDone(
        _s(m, "response_id"), _s(m, "item_id"), _s(m, "call_id"), _s(m, "name"), _s(m, "arguments")
    ),
    "conversation.item.truncated": lambda m: ItemTruncated(_s(m, "item_id"), _i(m, "audio_end_ms")),
    "session.created": lambda m: SessionCreated(str(m["session"].get("id", ""))),
    "session.updated": lambda m: SessionUpdated(),
    "error": _error,
    "response.output_item.done": _output_item_done,
    **{f"mcp_list_tools.{st}": _mcp("list_tools", st) for st in ("in_progress", "completed", "failed")},
    **{f"response.mcp_call.{st}": _mcp("call", st) for st in ("in_progress", "completed", "failed")},
}
#: The server event types ``parse`` turns into typed values (the rest become ``Unknown``).
KNOWN_EVENT_TYPES = frozenset(_PARSERS)


def parse(text: str | bytes) -> RealtimeEvent:
    """Parse one Realtime server event. Never raises."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Invalid("not JSON")
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        return Invalid("not an event object")
    kind = msg["type"]
    parser = _PARSERS.get(kind)
    if parser is None:
        return Unknown(kind[:80])
    try:
        return parser(msg)
    except (KeyError, TypeError, AttributeError):
        return Invalid(f"{kind} with missing or mistyped fields")
