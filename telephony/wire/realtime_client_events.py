"""OpenAI Realtime API (GA) client events: small builders returning JSON text
(the per-frame append: a string template, as bytes on the hot path).

Re-exported by ``wire.realtime`` (use them as ``realtime.response_create``...);
``wire.realtime`` itself parses the server events.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson

__all__ = [
    "ITEM_CREATE",
    "RESPONSE_CANCEL",
    "RESPONSE_CREATE",
    "SESSION_UPDATE",
    "TRUNCATE",
    "assistant_text",
    "audio_append",
    "audio_append_bytes",
    "caused_by",
    "function_call",
    "function_call_output",
    "mcp_approval_response",
    "response_cancel",
    "response_create",
    "session_update",
    "system_text",
    "truncate",
    "user_text",
]

# Every client event but the per-frame append carries an ``event_id`` whose
# prefix names its kind (``rc-`` response.create, ``tr-`` truncate, ``su-``
# session.update, ``ic-`` item create, ``cx-`` cancel), so an ``error`` that
# quotes it is matched to its cause without a table of what was sent. The
# append has none: 50 a second, and an error about one needs no decision.

_ids = itertools.count(1)

RESPONSE_CREATE, TRUNCATE, SESSION_UPDATE, ITEM_CREATE, RESPONSE_CANCEL = "rc", "tr", "su", "ic", "cx"


def _event_id(kind: str) -> str:
    return f"{kind}-{next(_ids)}"


def caused_by(event_id: str | None) -> str | None:
    """The kind of our client event an ``error.event_id`` names (``RESPONSE_CREATE``...), or None."""
    if not event_id or "-" not in event_id:
        return None
    kind = event_id.split("-", 1)[0]
    return kind if kind in (RESPONSE_CREATE, TRUNCATE, SESSION_UPDATE, ITEM_CREATE, RESPONSE_CANCEL) else None


_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


_APPEND_HEAD_B = _APPEND_HEAD.encode()


def audio_append(audio_b64: str) -> str:
    return _APPEND_HEAD + audio_b64 + '"}'


def audio_append_bytes(audio_b64: bytes) -> bytes:
    """The same event as UTF-8 bytes (the hot path: no str round trip)."""
    return _APPEND_HEAD_B + audio_b64 + b'"}'


def _dump(obj: dict) -> str:
    return orjson.dumps(obj).decode()


def session_update(session: dict[str, Any]) -> str:
    return _dump({"type": "session.update", "event_id": _event_id(SESSION_UPDATE), "session": session})


def response_create(instructions: str | None = None) -> str:
    if instructions:
        return _dump(
            {
                "type": "response.create",
                "event_id": _event_id(RESPONSE_CREATE),
                "response": {"instructions": instructions},
            }
        )
    return f'{{"type":"response.create","event_id":"{_event_id(RESPONSE_CREATE)}"}}'


def response_cancel() -> str:
    return f'{{"type":"response.cancel","event_id":"{_event_id(RESPONSE_CANCEL)}"}}'


def truncate(item_id: str, audio_end_ms: int) -> str:
    return _dump(
        {
            "type": "conversation.item.truncate",
            "event_id": _event_id(TRUNCATE),
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": audio_end_ms,
        }
    )


def _item(item: dict[str, Any]) -> str:
    return _dump({"type": "conversation.item.create", "event_id": _event_id(ITEM_CREATE), "item": item})


def function_call_output(call_id: str, output: str) -> str:
    return _item({"type": "function_call_output", "call_id": call_id, "output": output})


def function_call(call_id: str, name: str, arguments: str) -> str:
    """A restored tool call (the model's request), so its output has its call."""
    return _item({"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments})


def mcp_approval_response(request_id: str, approve: bool, reason: str | None = None) -> str:
    """Answer an ``mcp_approval_request`` (a ``conversation.item.create``)."""
    item: dict[str, Any] = {
        "type": "mcp_approval_response",
        "id": ("apr_" + request_id)[:32],
        "approval_request_id": request_id,
        "approve": approve,
    }
    if reason:
        item["reason"] = reason
    return _dump({"type": "conversation.item.create", "item": item})


def _message(role: str, text: str) -> str:
    return _item({"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]})


def assistant_text(text: str) -> str:
    """A restored agent turn (GA content type ``output_text``)."""
    return _item({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})


def user_text(text: str) -> str:
    return _message("user", text)


def system_text(text: str) -> str:
    return _message("system", text)
