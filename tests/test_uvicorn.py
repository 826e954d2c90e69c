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
from websockets.frames import Opcode
from websockets.protocol import State

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


# --- the direct path's frame fast path -------------------------------------------------


async def _direct_app_server(got: list[bytes]):
    """uvicorn with our protocol and an app that attaches to the direct channel and
    keeps every message; returns (server, task, port)."""

    async def app(scope, receive, send):
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        scope["extensions"][direct_ws.EXTENSION].attach(got.append)
        while (await receive())["type"] != "websocket.disconnect":
            pass

    sock = listen_socket()
    server, task = await start_server(uvicorn_config(app, 1000), [sock])
    return server, task, sock.getsockname()[1]


async def _open(port: int):
    """A raw client socket past the handshake, and websockets' client protocol to make
    frames (its events include the handshake's response, and any frames read with it)."""
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    proto.send_request(proto.connect())
    writer.write(b"".join(proto.data_to_send()))
    while proto.state is State.CONNECTING and proto.handshake_exc is None:
        proto.receive_data(await reader.read(4096))
    assert proto.handshake_exc is None
    return proto, reader, writer


async def test_frames_in_any_cut_reach_the_app_whole_and_in_order(fresh_guard, monkeypatch):
    """Whole text frames skip websockets' parser; everything else (pings, fragments,
    binary, frames cut across reads, a 16-bit length) goes through it from a frame
    boundary. However the byte stream is cut into reads, the app gets the same
    messages in the same order, and pings are answered."""
    import itertools
    import random

    cls = ws_protocol()
    fast_frames: list[int] = []
    read = asyncio.Event()
    fast, received = cls._fast, cls.data_received

    def counting_fast(self, data):
        used = fast(self, data)
        fast_frames.append(used)
        return used

    def data_received(self, data):
        received(self, data)
        read.set()

    monkeypatch.setattr(cls, "_fast", counting_fast)
    monkeypatch.setattr(cls, "data_received", data_received)
    got: list[bytes] = []
    server, task, port = await _direct_app_server(got)
    try:
        proto, reader, writer = await _open(port)

        async def write(chunk: bytes) -> None:  # one write, one read by the server
            read.clear()
            writer.write(chunk)
            await asyncio.wait_for(read.wait(), 5)

        def boundaries(stream: bytes) -> list[int]:
            """Where each frame of ``stream`` ends."""
            ends, at = [], 0
            while at < len(stream):
                size = stream[at + 1] & 0x7F
                head = 2 + (2 if size == 126 else 0) + 4
                size = int.from_bytes(stream[at + 2 : at + 4], "big") if size == 126 else size
                at += head + size
                ends.append(at)
            return ends[:-1]

        expected: list[bytes] = []
        rng = random.Random(7)
        for round_ in range(6):
            for k in range(12):
                kind = rng.choice(["text", "text", "text", "long", "ping", "fragments", "binary"])
                payload = f"r{round_} m{k} ".encode() + bytes(rng.randrange(97, 123) for _ in range(rng.randrange(200)))
                if kind == "text":
                    proto.send_text(payload)
                elif kind == "long":  # over 125 bytes: a 16-bit length
                    payload += b"x" * rng.randrange(126, 800)
                    proto.send_text(payload)
                elif kind == "ping":
                    proto.send_ping(b"p%d" % k)
                    continue
                elif kind == "fragments":
                    proto.send_text(payload[:5], fin=False)
                    proto.send_continuation(payload[5:], fin=True)
                else:
                    proto.send_binary(payload)
                expected.append(payload)
            stream = b"".join(proto.data_to_send())
            if round_ == 0:  # byte by byte
                cuts = list(range(1, len(stream)))
            else:  # at some frame boundaries (found by websockets' own parser) and anywhere
                cuts = sorted(
                    rng.sample(range(1, len(stream)), len(stream) // 150) + boundaries(stream)[:: rng.choice([1, 2, 3])]
                )
            for a, b in itertools.pairwise([0, *cuts, len(stream)]):
                if b > a:
                    await write(stream[a:b])
        assert sum(fast_frames) > 0  # some reads started at a boundary with whole text frames
        # One message per read, the usual case: every one through the fast path.
        before = len(fast_frames)
        for k in range(20):
            proto.send_text(b"media %d" % k)
            expected.append(b"media %d" % k)
            await write(b"".join(proto.data_to_send()))
        assert all(used > 0 for used in fast_frames[before:]) and len(fast_frames) - before == 20
        assert got == expected
        pongs = 0
        async with asyncio.timeout(5):
            while pongs < 1:
                proto.receive_data(await reader.read(65536))
                pongs += sum(1 for e in proto.events_received() if getattr(e, "opcode", None) == Opcode.PONG)
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_an_oversized_or_unmasked_frame_still_gets_websockets_error(fresh_guard):
    """The fast path leaves what it does not handle to websockets: a frame over the
    size limit closes with 1009, an unmasked one with 1002. (A whole frame read
    together with a bad one after it is delivered first; uvicorn alone dropped the
    whole read.)"""
    got: list[bytes] = []
    server, task, port = await _direct_app_server(got)
    try:
        for data, code in (
            (b"\x81\xfe" + (2000).to_bytes(2, "big") + b"\0" * 4 + b"a" * 2000, 1009),
            (b"\x81\x02hi", 1002),
        ):
            proto, reader, writer = await _open(port)
            proto.send_text(b"first")
            writer.write(b"".join(proto.data_to_send()) + data)
            closed = None
            async with asyncio.timeout(5):
                while closed is None:
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    proto.receive_data(chunk)
                    closed = proto.close_rcvd
            assert closed is not None and closed.code == code
            writer.close()
        assert got == [b"first", b"first"]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_several_messages_written_at_once_arrive_in_order(fresh_guard):
    """``DirectChannel.send_texts`` (a media message and its mark) writes them
    together; the peer reads each, in order."""

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        channel = scope["extensions"][direct_ws.EXTENSION]
        assert channel.send_texts(["one", "two" * 100, "three" * 20000])
        while (await receive())["type"] != "websocket.disconnect":
            pass

    sock = listen_socket()
    server, task = await start_server(uvicorn_config(app, 1000), [sock])
    try:
        proto, reader, writer = await _open(sock.getsockname()[1])
        texts: list[bytes] = []
        async with asyncio.timeout(5):
            while True:
                texts += [bytes(e.data) for e in proto.events_received() if getattr(e, "opcode", None) == Opcode.TEXT]
                if len(texts) >= 3:
                    break
                proto.receive_data(await reader.read(65536))
        assert texts == [b"one", b"two" * 100, b"three" * 20000]
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
