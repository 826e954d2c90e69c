"""What we rely on in uvicorn: the internals that io/direct_ws.py extends (the
installed uvicorn passes the guard; one that lacks something falls back to plain
ASGI with one warning), and the startup signal of io/server.py."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from telephony.io import direct_ws
from telephony.io.direct_ws import STOCK, missing_internals, ws_protocol
from telephony.io.server import listen_socket, start_server, uvicorn_config
from tests.harness import bridge

pytestmark = pytest.mark.anyio


@pytest.fixture
def fresh_guard():
    """ws_protocol() decides once per process: forget that decision around the test."""
    ws_protocol.cache_clear()
    yield
    ws_protocol.cache_clear()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == direct_ws.log.name]


def test_the_installed_uvicorn_passes_the_guard(fresh_guard, caplog):
    assert missing_internals(WebSocketsSansIOProtocol) == []
    proto = ws_protocol()
    assert isinstance(proto, type) and issubclass(proto, WebSocketsSansIOProtocol)
    assert _warnings(caplog) == []


def test_each_kind_of_missing_internal_is_named(monkeypatch):
    cls = WebSocketsSansIOProtocol
    monkeypatch.delattr(cls, "send_receive_event_to_app")
    monkeypatch.setattr(cls, "handle_connect", lambda self, event: None)  # scope no longer set
    monkeypatch.setattr(cls, "handle_text", lambda self, event: None)  # no longer delivers
    assert missing_internals(cls) == [
        "method send_receive_event_to_app",
        "handle_text calling send_receive_event_to_app",
        "attribute scope",
    ]
    assert missing_internals(None) == ["uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol"]


async def test_a_renamed_uvicorn_attribute_falls_back_to_plain_asgi_with_one_warning(fresh_guard, monkeypatch, caplog):
    original = WebSocketsSansIOProtocol.__init__

    def init(self, *args, **kwargs):  # as if uvicorn no longer set ``self.conn`` (the guard cannot see inside)
        original(self, *args, **kwargs)

    monkeypatch.setattr(WebSocketsSansIOProtocol, "__init__", init)
    caplog.set_level(logging.WARNING)
    assert ws_protocol() == STOCK
    assert ws_protocol() == STOCK  # decided once
    [record] = _warnings(caplog)
    assert record.fields["missing"] == "attribute conn"  # type: ignore[attr-defined]

    # The fallback is uvicorn's stock protocol: a call works, over plain ASGI.
    async with bridge(server_options={"ws": ws_protocol()}) as b:
        call, session = await b.live_call()
        media = json.dumps(
            {
                "event": "media",
                "streamSid": call.stream_sid,
                "media": {"payload": base64.b64encode(b"\x7f" * 160).decode()},
            }
        )
        await call.send_raw(media.encode())
        assert len(await session.wait_audio(960)) == 960
        await call.hang_up()
        assert b.observer.counters["media_streams_asgi"] == 1
        assert b.observer.counters["media_streams_direct"] == 0
    assert len(_warnings(caplog)) == 1


async def test_start_server_returns_once_listening_and_reports_a_failed_startup():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sock = listen_socket()
    server, task = await start_server(uvicorn_config(app, 1 << 20), [sock])
    assert server.started
    reader, writer = await asyncio.open_connection(*sock.getsockname())
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 204")
    writer.close()
    server.should_exit = True
    await asyncio.wait_for(task, 10)

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # uvicorn cannot serve on it
    try:
        with pytest.raises(ValueError):
            await start_server(uvicorn_config(app, 1 << 20), [udp])
    finally:
        udp.close()
