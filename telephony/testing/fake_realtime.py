"""A fake OpenAI Realtime server (GA wire format) on a loopback WebSocket.

Tests script it from the agent's side: wait for what the bridge sent, then send
server events (speech started, an audio answer, a function call...). Every
client event it receives can be checked by a ``validator`` callback (the test
suite validates against the ``openai`` SDK's own models).

    async with FakeRealtimeServer() as fake:
        settings = Settings(openai_base_url=fake.base_url, ...)
        ...
        session = await fake.next_session()
        await session.wait_for("session.update")
        await session.respond_audio(pcm24)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from ._wait import wait_until
from .fake_vad import FakeVad

__all__ = ["FakeRealtimeServer", "FakeSession"]

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


class FakeSession:
    """One Realtime connection as the server sees it."""

    def __init__(self, ws: ServerConnection, validator: Callable[[dict[str, Any]], None] | None) -> None:
        self.ws = ws
        self.validator = validator
        self.received: list[dict[str, Any]] = []
        self.input_audio = bytearray()
        self.headers = {k.lower(): v for k, v in ws.request.headers.raw_items()} if ws.request else {}
        self.path = ws.request.path if ws.request else ""
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.validation_errors: list[str] = []
        self._changed = asyncio.Condition()
        self.active_response: str | None = None
        #: response.create received while a response was active (a real server refuses those)
        self.rejected_creates = 0
        #: every event this fake sent, in order (tests validate them against the SDK)
        self.sent: list[dict[str, Any]] = []
        self.closed_callback: Callable[[], Awaitable[None]] | None = None
        #: opt-in server VAD following the session's turn_detection (``FakeRealtimeServer(vad=True)``)
        self.vad: FakeVad | None = None

    # --- what the bridge sent -------------------------------------------------------

    async def _receive_loop(self) -> None:
        try:
            async for message in self.ws:
                event = json.loads(message)
                if self.validator is not None:
                    try:
                        self.validator(event)
                    except Exception as exc:  # recorded; the test asserts none
                        self.validation_errors.append(f"{event.get('type')}: {exc}")
                kind = event.get("type")
                if kind == "input_audio_buffer.append":
                    self.input_audio += base64.b64decode(event["audio"])
                    if self.vad is not None:
                        await self.vad.feed(self)
                elif kind == "session.update":
                    await self.send(
                        {"type": "session.updated", "event_id": new_id("event"), "session": event.get("session", {})}
                    )
                elif kind == "response.create" and self.active_response is not None:
                    self.rejected_creates += 1
                    await self.error(
                        "conversation_already_has_active_response",
                        f"Conversation already has an active response in progress: {self.active_response}.",
                    )
                self.received.append(event)
                async with self._changed:
                    self._changed.notify_all()
        except Exception:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed_at = time.monotonic()
            self.closed.set()
            async with self._changed:
                self._changed.notify_all()
            if self.closed_callback is not None:
                await self.closed_callback()

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind]

    async def wait_for(
        self, kind: str, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 5.0, count: int = 1
    ) -> dict[str, Any]:
        """The ``count``-th event of this type (matching ``predicate``), waiting for it."""

        def ready() -> dict[str, Any] | None:
            found = [e for e in self.events(kind) if predicate is None or predicate(e)]
            return found[count - 1] if len(found) >= count else None

        return await wait_until(self._changed, ready, self.closed, f"{count} x {kind}", timeout)

    async def wait_audio(self, nbytes: int, timeout: float = 5.0) -> bytes:
        """Wait until at least ``nbytes`` of caller audio (PCM16 24 kHz) arrived."""

        return await wait_until(
            self._changed,
            lambda: bytes(self.input_audio) if len(self.input_audio) >= nbytes else None,
            self.closed,
            f"{nbytes} bytes of caller audio",
            timeout,
        )

    # --- what the agent says ------------------------------------------------------

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


class FakeRealtimeServer:
    """Listens on 127.0.0.1; each connection becomes a ``FakeSession``."""

    def __init__(
        self,
        validator: Callable[[dict[str, Any]], None] | None = None,
        on_session: Callable[[FakeSession], Any] | None = None,
        vad: bool = False,
    ) -> None:
        self.validator = validator
        self.on_session = on_session
        #: each session runs an energy VAD on the caller audio (``fake_vad.FakeVad``)
        self.vad = vad
        self.sessions: list[FakeSession] = []
        self._queue: asyncio.Queue[FakeSession] = asyncio.Queue()
        self._server: Server | None = None
        self.port = 0
        self.refuse_status: int | None = None
        #: Opt-in: seconds the server waits before answering the WebSocket upgrade
        #: (a slow handshake, to hang up while the session is still connecting).
        self.handshake_delay = 0.0
        #: Upgrades received and not yet answered.
        self.handshaking = 0
        self._idle = asyncio.Condition()

    @property
    def open_sessions(self) -> int:
        """Sessions that reached the open state and are not closed yet."""
        return sum(1 for s in self.sessions if not s.closed.is_set())

    async def _notify(self) -> None:
        async with self._idle:
            self._idle.notify_all()

    async def wait_handshaking(self, timeout: float = 5.0) -> None:
        """Until an upgrade is being held (``handshake_delay``)."""
        await wait_until(
            self._idle, lambda: True if self.handshaking else None, asyncio.Event(), "a handshake", timeout
        )

    async def wait_all_closed(self, timeout: float = 5.0) -> None:
        """Until no session is open and no handshake is under way; raises
        ``TimeoutError`` naming how many sessions stayed open."""

        def idle() -> bool | None:
            return True if self.handshaking == 0 and self.open_sessions == 0 else None

        try:
            await wait_until(self._idle, idle, asyncio.Event(), "all sessions closed", timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.open_sessions} Realtime session(s) still open") from None

    @property
    def base_url(self) -> str:
        """What to put in ``OPENAI_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handler(self, ws: ServerConnection) -> None:
        session = FakeSession(ws, self.validator)
        if self.vad:
            session.vad = FakeVad()
        self.sessions.append(session)
        session.closed_callback = self._notify
        try:
            await session.send(
                {
                    "type": "session.created",
                    "event_id": new_id("event"),
                    "session": {"id": new_id("sess"), "type": "realtime", "object": "realtime.session"},
                }
            )
        except Exception:  # the client went away during the upgrade's answer
            pass
        self._queue.put_nowait(session)
        if self.on_session is not None:
            asyncio.get_running_loop().create_task(self.on_session(session))
        await session._receive_loop()

    async def _process_request(self, connection, request):
        if self.refuse_status is not None:
            return connection.respond(self.refuse_status, "refused by the fake\n")
        if self.handshake_delay > 0:
            self.handshaking += 1
            await self._notify()
            try:
                await asyncio.sleep(self.handshake_delay)
            finally:
                self.handshaking -= 1
                await self._notify()
        return None

    async def start(self) -> FakeRealtimeServer:
        self._server = await serve(
            self._handler, "127.0.0.1", 0, max_size=None, compression=None, process_request=self._process_request
        )
        self.port = self._server.sockets[0].getsockname()[1] if hasattr(self._server, "sockets") else 0
        return self

    async def next_session(self, timeout: float = 5.0) -> FakeSession:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"waited {timeout:g} s for the bridge to open a Realtime session (did the call send start?)"
            ) from None

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeRealtimeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
