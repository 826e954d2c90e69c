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
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from ._wait import wait_until
from .fake_vad import FakeVad
from .realtime_script import ServerScript, new_id

__all__ = ["FakeRealtimeServer", "FakeSession", "new_id"]


class FakeSession(ServerScript):
    """One Realtime connection as the server sees it: what the bridge sent (and
    waits for it); what the server says is in ``ServerScript``."""

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
