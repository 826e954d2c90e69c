"""End-to-end harness: the real app on a real loopback port (uvicorn), a fake
Realtime server, and fake Twilio calls. Tests are ``async def`` functions (see
conftest.py for how they run) that start the app with ``async with bridge(...) as b``
and open calls with ``await b.live_call()``; every wait has a timeout, none is a sleep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import Any

import httpx

from telephony.agents import Agents
from telephony.config import Settings
from telephony.io.app import create_app
from telephony.io.server import listen_socket, start_server, uvicorn_config
from telephony.testing import FakeRealtimeServer, FakeSession, FakeTwilioCall
from telephony.testing.bridge import Bridge as KitBridge
from telephony.testing.fake_twilio import sign_webhook
from telephony.tools import ToolRegistry
from tests.openai_models import validate_client_event

TOKEN = "test-auth-token-0123456789"
#: the Twilio account of the faked REST API (``rest_fake`` in conftest.py)
ACCOUNT = "AC" + "1" * 32
#: The media stream's two I/O paths: uvicorn with our direct channel, and plain ASGI.
IO_MODES = MappingProxyType({"direct": None, "asgi": MappingProxyType({"ws": "websockets-sansio"})})


async def start_call(call: FakeTwilioCall, fake: FakeRealtimeServer) -> FakeSession:
    """Connect ``call``, start its stream, and return its Realtime session once the
    bridge has configured it (``session.events("session.update")[0]`` is that update)."""
    await call.connect()
    await call.start()
    session = await fake.next_session()
    await session.wait_for("session.update")
    return session


class Bridge(KitBridge):
    """The shipped test kit's ``Bridge`` plus what these tests also look at."""

    @property
    def state(self) -> Any:
        return self.app.state.telephony

    @property
    def admission(self) -> Any:
        """The app's live calls and limits."""
        return self.state.admission

    async def post(self, path: str, params: Mapping[str, str], sign: bool = True, **headers: str) -> httpx.Response:
        hdrs = dict(headers)
        if sign and self.token:
            hdrs["X-Twilio-Signature"] = sign_webhook(self.token, self.origin + path, params)
        async with httpx.AsyncClient() as client:
            return await client.post(self.origin + path, data=params, headers=hdrs)

    async def get(self, path: str, **headers: str) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(self.origin + path, headers=headers)

    def validation_errors(self) -> list[str]:
        return [e for s in self.fake.sessions for e in s.validation_errors]


@contextlib.asynccontextmanager
async def bridge(
    tools: list[Any] = (),
    token: str | None = TOKEN,
    rest: Any = None,
    server_options: Mapping[str, Any] | None = None,
    agents: Any = None,
    **overrides: Any,
) -> AsyncIterator[Bridge]:
    """The real app on uvicorn. ``server_options`` override ``uvicorn.Config``
    (``{"ws": "websockets-sansio"}`` runs the plain-ASGI path without the direct channel).
    ``agents`` is a list of ``Agent`` (chosen by the settings) or an ``Agents``."""
    async with FakeRealtimeServer(validator=validate_client_event) as fake:
        sock = listen_socket()
        port = sock.getsockname()[1]
        values: dict[str, Any] = {
            "openai_api_key": "sk-test-key-abcdef",
            "openai_base_url": fake.base_url,
            "public_url": f"http://127.0.0.1:{port}",
            "twilio_auth_token": token,
            "twilio_account_sid": "AC" + "1" * 32 if token else None,
            "transcription_model": None,
            "log_format": "text",
            "records_path": ":memory:",
            # Tests send caller audio as fast as they can; the real-time limit has its own tests.
            "max_audio_rate": 1000.0,
            # today's immediate barge-in on the server's speech_started: the fake server's
            # scripted events carry no caller audio for the local VAD (tests of the
            # barge-in policy set their minimum)
            "barge_in_min_ms": 0,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        registry = ToolRegistry(tools, default_timeout=settings.tool_timeout)
        if isinstance(agents, list):
            agents = Agents(agents, settings.agent, settings.agents_by_number, None, settings.route_timeout)
        app = create_app(settings, registry, rest=rest, agents=agents)
        config = uvicorn_config(app, settings.max_message_bytes, **(server_options or {}))
        server, task = await start_server(config, [sock])
        b = Bridge(fake, port, settings, app, token)
        try:
            yield b
            assert b.validation_errors() == [], b.validation_errors()
            # Every stream took the I/O path this server offers: the direct channel
            # under our uvicorn protocol, plain ASGI otherwise (catches an upgrade
            # of uvicorn that silently loses the fast path).
            counters = b.observer.counters
            if (server_options or {}).get("ws") is None:
                assert counters["media_streams_asgi"] == 0, "a stream fell back to plain ASGI"
            else:
                assert counters["media_streams_direct"] == 0
        finally:
            for c in b.calls:
                with contextlib.suppress(Exception):
                    await c.close()
            server.should_exit = True
            await asyncio.wait_for(task, 10)
