"""What the fake Realtime server says: one method per thing the agent (or the
API) does, each sending its server events in the GA wire format, in the order
and with the ids a real server uses (speech started/stopped, a response with
audio and transcript, a function call, errors, remote MCP tool calls).

``FakeSession`` (fake_realtime.py) is a ``ServerScript`` on one connection; the
offline agent and the fake VAD script it through these methods too.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from typing import Any

from websockets.asyncio.server import ServerConnection

__all__ = ["ServerScript", "new_id"]

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


class ServerScript:
    """The server's side of one connection (``ws``); every event sent is kept in ``sent``."""

    ws: ServerConnection
    sent: list[dict[str, Any]]
    closed: asyncio.Event
    #: the response being produced (a real server refuses a second response.create meanwhile)
    active_response: str | None

    async def send(self, event: dict[str, Any]) -> None:
        self.sent.append(event)
        await self.ws.send(json.dumps(event))

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def error(self, code: str, message: str, type_: str = "invalid_request_error") -> None:
        await self.send(
            {"type": "error", "event_id": new_id("event"), "error": {"type": type_, "code": code, "message": message}}
        )

    async def speech_started(self, audio_start_ms: int = 0) -> str:
        item = new_id("item")
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": new_id("event"),
                "audio_start_ms": audio_start_ms,
                "item_id": item,
            }
        )
        return item

    async def speech_stopped(self, item_id: str, audio_end_ms: int = 0) -> None:
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "event_id": new_id("event"),
                "audio_end_ms": audio_end_ms,
                "item_id": item_id,
            }
        )

    async def response_created(self) -> str:
        rid = new_id("resp")
        self.active_response = rid
        await self.send(
            {
                "type": "response.created",
                "event_id": new_id("event"),
                "response": {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []},
            }
        )
        return rid

    async def response_done(
        self, rid: str, status: str = "completed", reason: str | None = None, usage: dict[str, Any] | None = None
    ) -> None:
        if self.active_response == rid:
            self.active_response = None
        response: dict[str, Any] = {"id": rid, "object": "realtime.response", "status": status, "output": []}
        if reason:
            response["status_details"] = {"type": status, "reason": reason}
        response["usage"] = usage or {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10}
        await self.send({"type": "response.done", "event_id": new_id("event"), "response": response})

    async def audio_delta(self, rid: str, item: str, pcm: bytes) -> None:
        await self.send(
            {
                "type": "response.output_audio.delta",
                "event_id": new_id("event"),
                "response_id": rid,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(pcm).decode(),
            }
        )

    async def audio_done(self, rid: str, item: str, transcript: str | None = None) -> None:
        await self.send(
            {
                "type": "response.output_audio.done",
                "event_id": new_id("event"),
                "response_id": rid,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
            }
        )
        if transcript is not None:
            await self.send(
                {
                    "type": "response.output_audio_transcript.done",
                    "event_id": new_id("event"),
                    "response_id": rid,
                    "item_id": item,
                    "output_index": 0,
                    "content_index": 0,
                    "transcript": transcript,
                }
            )

    async def respond_audio(
        self, pcm: bytes, chunk_bytes: int = 4800, transcript: str | None = "", finish: bool = True, pace: float = 0.0
    ) -> tuple[str, str]:
        """A whole spoken answer: created, deltas of ``chunk_bytes``, done. Returns (response id, item id).
        ``pace`` > 0 sends deltas at that multiple of real time (0 = as fast as possible)."""
        rid = await self.response_created()
        item = new_id("item")
        await self.send(
            {
                "type": "response.output_item.added",
                "event_id": new_id("event"),
                "response_id": rid,
                "output_index": 0,
                "item": {"id": item, "type": "message", "role": "assistant", "status": "in_progress", "content": []},
            }
        )
        for i in range(0, len(pcm), chunk_bytes):
            if self.closed.is_set():
                break
            chunk = pcm[i : i + chunk_bytes]
            await self.audio_delta(rid, item, chunk)
            if pace > 0:
                await asyncio.sleep(len(chunk) / 48000 / pace)
        if finish and not self.closed.is_set():
            await self.audio_done(rid, item, transcript)
            await self.response_done(rid)
        return rid, item

    async def function_call(
        self, name: str, arguments: str | dict[str, Any], call_id: str | None = None, finish: bool = True
    ) -> tuple[str, str]:
        """A response that calls a tool. Returns (response id, call id)."""
        rid = await self.response_created()
        call_id = call_id or new_id("call")
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                "event_id": new_id("event"),
                "response_id": rid,
                "item_id": new_id("item"),
                "output_index": 0,
                "call_id": call_id,
                "name": name,
                "arguments": args,
            }
        )
        if finish:
            await self.response_done(rid)
        return rid, call_id

    # --- remote MCP servers (the API calls them itself) ---------------------------------

    async def mcp_list_tools(self, server_label: str, tools: list[str], failed: bool = False) -> str:
        """The API listing a server's tools: in progress, the item, completed (or failed)."""
        item = new_id("mcpl")
        await self.send({"type": "mcp_list_tools.in_progress", "event_id": new_id("event"), "item_id": item})
        if not failed:
            listing = {
                "type": "mcp_list_tools",
                "id": item,
                "server_label": server_label,
                "tools": [{"name": n, "input_schema": {"type": "object"}} for n in tools],
            }
            await self.send(
                {
                    "type": "conversation.item.done",
                    "event_id": new_id("event"),
                    "previous_item_id": None,
                    "item": listing,
                }
            )
        status = "failed" if failed else "completed"
        await self.send({"type": f"mcp_list_tools.{status}", "event_id": new_id("event"), "item_id": item})
        return item

    async def mcp_call(
        self,
        server_label: str,
        name: str,
        arguments: dict[str, Any],
        output: str | None = None,
        error: str | None = None,
    ) -> tuple[str, str]:
        """A response in which the API calls an MCP tool. Returns (response id, item id)."""
        rid = await self.response_created()
        item = new_id("mcp")
        args = json.dumps(arguments)
        await self.send(
            {
                "type": "response.mcp_call_arguments.done",
                "event_id": new_id("event"),
                "response_id": rid,
                "item_id": item,
                "output_index": 0,
                "arguments": args,
            }
        )
        await self.send(
            {"type": "response.mcp_call.in_progress", "event_id": new_id("event"), "item_id": item, "output_index": 0}
        )
        status = "failed" if error is not None else "completed"
        await self.send(
            {"type": f"response.mcp_call.{status}", "event_id": new_id("event"), "item_id": item, "output_index": 0}
        )
        done: dict[str, Any] = {
            "type": "mcp_call",
            "id": item,
            "server_label": server_label,
            "name": name,
            "arguments": args,
        }
        if output is not None:
            done["output"] = output
        if error is not None:
            done["error"] = {"type": "tool_execution_error", "message": error}
        await self.send(
            {
                "type": "response.output_item.done",
                "event_id": new_id("event"),
                "response_id": rid,
                "output_index": 0,
                "item": done,
            }
        )
        await self.response_done(rid)
        return rid, item

    async def mcp_approval_request(self, server_label: str, name: str, arguments: dict[str, Any]) -> str:
        """A response that ends asking to approve an MCP call. Returns the request id."""
        rid = await self.response_created()
        request = new_id("mcpr")
        item = {
            "type": "mcp_approval_request",
            "id": request,
            "server_label": server_label,
            "name": name,
            "arguments": json.dumps(arguments),
        }
        await self.send(
            {
                "type": "response.output_item.done",
                "event_id": new_id("event"),
                "response_id": rid,
                "output_index": 0,
                "item": item,
            }
        )
        await self.response_done(rid)
        return request

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)
