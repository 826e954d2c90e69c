"""``bridge()``: the real app on a loopback port against the fake Realtime server,
for testing your tools and agents end to end without a phone or an API key::

    async with bridge(tools=[lookup_order]) as b:
        call, session = await b.live_call()
        await session.function_call("lookup_order", {"order_id": "A100"})
        reply = await session.wait_for("conversation.item.create")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from .fake_realtime import FakeRealtimeServer, FakeSession
from .fake_twilio import FakeTwilioCall, sign_webhook
from .fake_twilio_rest import FakeTwilioRest

__all__ = ["Bridge", "bridge"]

#: The Twilio credentials ``bridge()`` uses by default (signatures are checked, as in
#: production): those a default ``FakeTwilioRest`` accepts.
TEST_ACCOUNT_SID: str = FakeTwilioRest.account_sid
TEST_AUTH_TOKEN: str = FakeTwilioRest.auth_token


@dataclass
class Bridge:
    """The app under test (``app``, ``settings``, on ``origin``) and its ``fake`` Realtime server."""

    fake: FakeRealtimeServer
    port: int
    settings: Settings
    app: Any
    token: str | None
    calls: list[FakeTwilioCall] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def observer(self) -> Any:
        """Logs, metrics, counters and call records of the app under test."""
        return self.app.state.telephony.observer

    def twilio(self, **kwargs: Any) -> FakeTwilioCall:
        """A Twilio media stream to this app, signed and carrying a valid stream token
        (what the webhook's TwiML holds); ``kwargs`` go to ``FakeTwilioCall``."""
        if self.token:
            kwargs.setdefault("stream_token", self.app.state.telephony.services.streams.issue)
        call = FakeTwilioCall(
            f"ws://127.0.0.1:{self.port}/media-stream",
            auth_token=self.token,
            signed_url=f"wss://127.0.0.1:{self.port}/media-stream",
            **kwargs,
        )
        self.calls.append(call)
        return call

    async def live_call(self, **kwargs: Any) -> tuple[FakeTwilioCall, FakeSession]:
        """A call whose Realtime session is open and configured by the bridge:
        (the Twilio side, the model's side). ``kwargs`` go to ``FakeTwilioCall``
        (e.g. ``parameters={"From": ..., "To": ...}``)."""
        call = self.twilio(**kwargs)
        await call.connect()
        await call.start()
        session = await self.fake.next_session()
        await session.wait_for("session.update")
        return call, session

    async def post(self, path: str, params: Mapping[str, str], sign: bool = True) -> Any:
        """POST a Twilio webhook (form fields ``params``), signed unless ``sign=False``.
        Returns the ``httpx.Response`` (needs ``httpx``, in the ``dev`` extra)."""
        import httpx

        headers = {}
        if sign and self.token:
            headers["X-Twilio-Signature"] = sign_webhook(self.token, self.origin + path, dict(params))
        async with httpx.AsyncClient() as client:
            return await client.post(self.origin + path, data=params, headers=headers)


@contextlib.asynccontextmanager
async def bridge(
    tools: list[Callable[..., Any]] | tuple[Callable[..., Any], ...] = (),
    *,
    agents: Any = None,
    token: str | None = TEST_AUTH_TOKEN,
    rest: Any = None,
    on_session: Callable[[FakeSession], Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Bridge]:
    """Start the real app (FastAPI on uvicorn, a free loopback port) with ``tools``
    (``@tool`` functions) or ``agents`` (a list of ``Agent``), against a fresh
    ``FakeRealtimeServer``; stop both on exit. ``settings`` override ``Settings``
    fields (e.g. ``greeting="Hi"``); records stay in memory unless ``records_path``
    is given. ``token``: the Twilio auth token (None: signatures off). Twilio's REST
    API (transfers, hang-ups): ``twilio_api_base_url=FakeTwilioRest().start().base_url``,
    or ``rest``, a ``telephony.io.twilio.rest.TwilioRest`` client.
    ``on_session``: the fake's script for each Realtime session (default: none,
    the test drives the session)."""
    from ..agents import Agents
    from ..io.app import create_app
    from ..io.server import listen_socket, start_server, uvicorn_config
    from ..tools import ToolRegistry
    from ..tools.builtin import end_call_tool, transfer_call_tool

    async with FakeRealtimeServer(on_session=on_session) as fake:
        sock = listen_socket()
        port = sock.getsockname()[1]
        values: dict[str, Any] = {
            "openai_api_key": "sk-fake-realtime",
            "openai_base_url": fake.base_url,
            "public_url": f"http://127.0.0.1:{port}",
            "twilio_auth_token": token,
            "twilio_account_sid": TEST_ACCOUNT_SID if token else None,
            "transcription_model": None,
            "records_path": ":memory:",
            # Tests send caller audio as fast as they like.
            "max_audio_rate": 1000.0,
        }
        values.update(settings)
        config = Settings(_env_file=None, **values)
        registry = ToolRegistry(list(tools), default_timeout=config.tool_timeout)
        # The built-in tools the settings turn on, as `telephony serve` adds them.
        if config.enable_end_call and registry.get("end_call") is None:
            registry.add(end_call_tool())
        if (config.transfer_number or config.transfer_directory) and registry.get("transfer_call") is None:
            registry.add(transfer_call_tool(sorted(config.transfer_directory), bool(config.transfer_number)))
        if isinstance(agents, list):
            agents = Agents(agents, config.agent, config.agents_by_number, None, config.route_timeout)
        app = create_app(config, registry, rest=rest, agents=agents)
        server, serving = await start_server(uvicorn_config(app, config.max_message_bytes), [sock])
        b = Bridge(fake, port, config, app, token)
        try:
            yield b
        finally:
            for c in b.calls:
                with contextlib.suppress(Exception):
                    await c.close()
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
