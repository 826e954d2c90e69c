"""The real ``telephony serve`` process, driven by a scripted call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from telephony.config import Settings
from telephony.io.twilio.stream_token import StreamTokens
from telephony.testing import FakeRealtimeServer, FakeSession, FakeTwilioCall
from telephony.testing.fake_twilio import sign_webhook
from tests.audio_data import agent_pcm24
from tests.harness import start_call
from tests.openai_models import validate_client_event

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "process-test-token-123456"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TWILIO_", "TELEPHONY_", "PUBLIC_"))}
    env.update(extra)
    return env


def test_serve_without_api_key_exits_at_once_naming_it(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "telephony", "serve", "--port", "0"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "OPENAI_API_KEY" in proc.stderr


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    """The Realtime API the process connects to."""
    async with FakeRealtimeServer(validator=validate_client_event) as server:
        yield server


class Server:
    def __init__(
        self, fake: FakeRealtimeServer, token: str | None = TOKEN, args: tuple[str, ...] = (), **env: str
    ) -> None:
        self.fake, self.token, self.extra, self.args = fake, token, env, args
        self.port = 0
        self.log: list[str] = []
        self._logged = asyncio.Condition()

    async def __aenter__(self) -> Server:
        env = _env(
            OPENAI_API_KEY="sk-process-secret-999",
            OPENAI_BASE_URL=self.fake.base_url,
            TELEPHONY_TRANSCRIPTION_MODEL="",
            TELEPHONY_RECORDS_PATH="",
            TELEPHONY_BARGE_IN_MIN_MS="0",  # scripted speech_started, no caller audio: immediate barge-in
            **self.extra,
        )
        if self.token:
            env["TWILIO_AUTH_TOKEN"] = self.token
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "telephony",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--tools",
            str(ROOT / "examples" / "tools.py"),
            *self.args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        match = re.search(rb"listening on http://127.0.0.1:(\d+)", line)
        assert match, line
        self.port = int(match.group(1))
        #: the line after "listening on": what a new operator does next
        self.next_step = (await asyncio.wait_for(self.proc.stdout.readline(), 20)).decode()
        self._stderr = asyncio.get_running_loop().create_task(self._read_stderr())
        return self

    async def _read_stderr(self) -> None:
        async for raw in self.proc.stderr:
            self.log.append(raw.decode(errors="replace").rstrip())
            async with self._logged:
                self._logged.notify_all()

    async def wait_log(self, event: str, timeout: float = 10.0) -> None:
        async def wait() -> None:
            async with self._logged:
                while not any(e.get("event") == event for e in self.events()):
                    await self._logged.wait()

        await asyncio.wait_for(wait(), timeout)

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            await self.stop_now()
            await asyncio.wait_for(self.proc.wait(), 15)
        await asyncio.wait_for(self._stderr, 5)

    async def stop_now(self) -> None:
        """SIGTERM (the drain starts), then a second one once the first is handled:
        stop now. Two signals sent back to back may reach the process as one (POSIX
        merges a pending signal with its repeat), which would leave a full drain."""
        self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await self.wait_log("server.draining", timeout=5)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    async def live_call(self) -> tuple[FakeTwilioCall, FakeSession]:
        """A signed media stream to this server, with its Realtime session configured."""
        call = FakeTwilioCall(
            f"ws://127.0.0.1:{self.port}/media-stream",
            auth_token=TOKEN,
            signed_url=f"wss://127.0.0.1:{self.port}/media-stream",
            # The stream token's key derives from the auth token alone: another
            # process holding the same token issues tokens this server accepts.
            stream_token=StreamTokens(Settings(_env_file=None, twilio_auth_token=TOKEN)).issue,
        )
        return call, await start_call(call, self.fake)

    def events(self) -> list[dict]:
        out = []
        for line in self.log:
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


@pytest.mark.async_timeout(60)
async def test_scripted_call_through_the_real_process(fake):
    async with Server(fake, PUBLIC_URL="https://voice.example.com") as server:
        assert "https://voice.example.com/incoming-call" in server.next_step
        assert "telephony simulate --offline" in server.next_step
        origin = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient() as http:
            assert (await http.get(origin + "/healthz")).status_code == 200
            params = {"CallSid": "CA" + "b" * 32, "From": "+15550001111", "To": "+15550002222"}
            sig = sign_webhook(TOKEN, "https://voice.example.com/incoming-call", params)
            r = await http.post(origin + "/incoming-call", data=params, headers={"X-Twilio-Signature": sig})
            assert r.status_code == 200 and 'url="wss://voice.example.com/media-stream"' in r.text
            # What Twilio sends back on the stream's start: the TwiML's parameters, token included.
            streamed = {p.get("name"): p.get("value") for p in ET.fromstring(r.text).iter("Parameter")}
            r = await http.post(origin + "/incoming-call", data=params)
            assert r.status_code == 403

        call = FakeTwilioCall(
            f"ws://127.0.0.1:{server.port}/media-stream",
            auth_token=TOKEN,
            signed_url="wss://voice.example.com/media-stream",
            call_sid=params["CallSid"],
            parameters={k: v for k, v in streamed.items() if k != "token"},
            stream_token=lambda _sid, _params: streamed["token"],
        )
        session = await start_call(call, fake)
        update = session.events("session.update")[0]
        assert {t["name"] for t in update["session"]["tools"]} >= {"lookup_order", "book_appointment"}

        await call.send_audio(b"\xff" * 1600)
        await session.wait_audio(9600)
        _, _call_id = await session.function_call("lookup_order", {"order_id": "A100"})
        out = await session.wait_for("conversation.item.create")
        assert json.loads(out["item"]["output"])["status"] == "ready for pickup"
        await session.wait_for("response.create")

        _rid, item = await session.respond_audio(agent_pcm24()[:48000].tobytes(), finish=False)
        await call.wait_echoed(3)
        await session.speech_started()
        await call.wait_for("clear")
        truncate = await session.wait_for("conversation.item.truncate")
        assert truncate["item_id"] == item and 0 < truncate["audio_end_ms"] < 2000

        await call.hang_up()
        await asyncio.wait_for(session.closed.wait(), 1.0)
        assert session.validation_errors == []
    events = server.events()
    names = [e["event"] for e in events]
    for expected in ("server.ready", "call.start", "tool.call", "barge_in", "call.end", "realtime.close"):
        assert expected in names, (expected, names)
    start = next(e for e in events if e["event"] == "call.start")
    assert start["call_sid"] == params["CallSid"]
    assert "sk-process-secret-999" not in "\n".join(server.log)
    assert "media" not in names  # no per-frame logging


@pytest.mark.async_timeout(60)
async def test_sigterm_drains_calls_in_progress_then_exits(fake):
    async with Server(fake, TELEPHONY_DRAIN_SECONDS="20") as server:
        origin = f"http://127.0.0.1:{server.port}"
        call, session = await server.live_call()
        server.proc.send_signal(signal.SIGTERM)
        await server.wait_log("server.draining")
        async with httpx.AsyncClient() as http:
            r = await http.get(origin + "/healthz")
            assert r.status_code == 503 and r.json()["status"] == "draining"
            params = {"CallSid": "CA" + "c" * 32, "From": "+1555", "To": "+1666"}
            sig = sign_webhook(TOKEN, origin + "/incoming-call", params)
            r = await http.post(origin + "/incoming-call", data=params, headers={"X-Twilio-Signature": sig})
            assert "<Say>" in r.text and "<Stream" not in r.text
        # The call in progress still works during the drain.
        await call.send_audio(b"\xff" * 800)
        await session.wait_audio(4800)
        assert server.proc.returncode is None
        await call.hang_up()
        await asyncio.wait_for(server.proc.wait(), 10)
        assert server.proc.returncode == 0
        await asyncio.wait_for(session.closed.wait(), 1.0)


async def test_accepted_connections_have_nagle_off():
    """Guards a measured 20 ms regression: asyncio enables TCP_NODELAY only when
    the listening socket's proto is IPPROTO_TCP."""
    import socket as so

    from telephony.io.server import listen_socket

    sock = listen_socket("127.0.0.1", 0)
    seen = asyncio.get_running_loop().create_future()

    def on_connect(reader, writer):
        s = writer.get_extra_info("socket")
        seen.set_result(s.getsockopt(so.IPPROTO_TCP, so.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=sock)
    _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
    assert await asyncio.wait_for(seen, 5) != 0
    writer.close()
    server.close()
    await server.wait_closed()


@pytest.mark.async_timeout(60)
async def test_workers_share_one_port_serve_calls_and_stop_together(fake):
    async with Server(fake, args=("--workers", "2")) as server:
        assert "/incoming-call" in server.next_step  # once, from the supervisor
        origin = f"http://127.0.0.1:{server.port}"
        pids: set[int] = set()
        async with httpx.AsyncClient() as http:
            for _ in range(200):  # new connections spread over the workers (SO_REUSEPORT)
                r = await http.get(origin + "/healthz", headers={"Connection": "close"})
                pids.add(r.json()["pid"])
                if len(pids) == 2:
                    break
        assert len(pids) == 2 and server.proc.pid not in pids

        call, session = await server.live_call()
        await call.send_audio(b"\xff" * 800)
        await session.wait_audio(4800)
        await call.hang_up()
        await asyncio.wait_for(session.closed.wait(), 2.0)

        server.proc.send_signal(signal.SIGTERM)  # passed on: each worker drains and exits
        await asyncio.wait_for(server.proc.wait(), 15)
        assert server.proc.returncode == 0
    for pid in pids:  # no worker outlived the supervisor
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} still running")


@pytest.mark.async_timeout(60)
async def test_serve_closes_slow_clients_and_still_answers(fake):
    """Slowloris against the real process: headers that never finish are closed at
    TELEPHONY_REQUEST_TIMEOUT, and the server keeps answering meanwhile."""
    async with Server(fake, TELEPHONY_REQUEST_TIMEOUT="1", TELEPHONY_MAX_PENDING_CONNECTIONS="50") as server:
        slow = []
        for _ in range(80):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /incoming-call HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append((reader, writer))
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200
        call, session = await server.live_call()
        assert session.events("session.update")
        await call.hang_up()
        for reader, writer in slow:
            try:
                assert await asyncio.wait_for(reader.read(), 5.0) == b""  # closed by the server
            except ConnectionResetError:
                pass  # closed by the server, with our unread bytes
            writer.close()


@pytest.mark.async_timeout(60)
async def test_debug_logs_leave_out_websocket_frames_and_access_lines(fake):
    """TELEPHONY_LOG_LEVEL=DEBUG used to print a line per WebSocket frame (a 15 s call
    gave 1,918 lines); uvicorn's access lines carry no call SID, so they stay off."""
    async with Server(fake, TELEPHONY_LOG_LEVEL="DEBUG") as server:
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200
        call, session = await server.live_call()
        for _ in range(50):  # 1 s of caller audio in 50 frames
            await call.send_audio(b"\xff" * 160)
        await session.wait_audio(50 * 960)
        await session.respond_audio(agent_pcm24()[:24000].tobytes())
        await call.wait_echoed(1)
        await call.hang_up()
        await asyncio.wait_for(session.closed.wait(), 2.0)
        await server.wait_log("call.end")
    frames = [line for line in server.log if "TEXT" in line or "BINARY" in line or "PING" in line]
    assert frames == [], frames[:5]
    assert not [line for line in server.log if "GET /healthz" in line]
    assert len(server.log) < 60, len(server.log)  # a line per event, none per frame
    assert any(e.get("level") == "debug" for e in server.events())  # DEBUG is on


@pytest.mark.async_timeout(60)
async def test_a_second_sigterm_ends_the_calls_in_progress_at_once(fake):
    async with Server(fake, TELEPHONY_DRAIN_SECONDS="30") as server:
        call, session = await server.live_call()
        await call.send_audio(b"\xff" * 800)
        await session.wait_audio(4800)
        await server.stop_now()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(server.proc.wait(), 15)
        assert loop.time() - t0 < 7.0  # not the 30 s drain: uvicorn's 5 s grace at most
        await asyncio.wait_for(session.closed.wait(), 1.0)  # its Realtime session closed too
    names = [e["event"] for e in server.events()]
    assert "call.end" in names and "realtime.close" in names, names
