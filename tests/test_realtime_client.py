"""The Realtime client (websockets' sans-I/O protocol on an asyncio transport)
against real loopback servers: delivery, fragments, limits, keepalive, close."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.server import ServerProtocol

from telephony.io.realtime.client import RealtimeConnectError, WebsocketsConnector

pytestmark = pytest.mark.anyio


class Received:
    """What the client handed to the bridge's callbacks."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.changed = asyncio.Event()

    def on_message(self, data: bytes) -> None:
        self.messages.append(bytes(data))
        self.changed.set()

    def on_closed(self, reason: str) -> None:
        assert not self.closed.done(), "on_closed reported twice"
        self.closed.set_result(reason)

    async def wait_messages(self, n: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.messages) < n:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def server(handler: Any, **options: Any):
    async with serve(handler, "127.0.0.1", 0, compression=None, **options) as srv:
        yield f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1/realtime?model=m"


async def test_messages_before_start_fragments_and_sends_arrive_in_order():
    got_by_server: list[str] = []
    done = asyncio.Event()
    delivered = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"type":"session.created"}')  # before the bridge calls start()
        await ws.send(['{"type":"frag', 'mented","n":', "1}"])  # one message in three frames
        # The client answers a ping after the frames before it: once the pong is back,
        # both messages have reached the connection.
        await (await ws.ping())
        delivered.set()
        async for message in ws:
            got_by_server.append(message)
            if len(got_by_server) == 3:
                done.set()

    async with server(handler) as url:
        conn = await WebsocketsConnector(url, "sk-x")()
        await asyncio.wait_for(delivered.wait(), 5)
        assert conn.pending == 2  # both have arrived, and start() is not called yet
        r = Received()
        conn.start(r.on_message, r.on_closed)
        await r.wait_messages(2)
        assert r.messages == [b'{"type":"session.created"}', b'{"type":"fragmented","n":1}']
        conn.send('{"type":"a"}')
        conn.send(b'{"type":"b"}')
        conn.send("é" * 3)
        await asyncio.wait_for(done.wait(), 5)
        assert got_by_server == ['{"type":"a"}', '{"type":"b"}', "é" * 3]
        await conn.close()
        assert not r.closed.done(), "close() is ours: not reported as a loss"
        conn.send("after close")  # a no-op, not an error


async def test_request_carries_the_key_and_no_beta_header():
    seen: dict[str, str] = {}

    async def handler(ws: ServerConnection) -> None:
        seen.update({k.lower(): v for k, v in ws.request.headers.raw_items()})
        seen["path"] = ws.request.path
        await ws.wait_closed()

    async with server(handler) as url:
        conn = await WebsocketsConnector(url, "sk-secret")()
        conn.start(lambda d: None, lambda r: None)
        await conn.close()
    assert seen["authorization"] == "Bearer sk-secret"
    assert "openai-beta" not in seen
    assert seen["path"] == "/v1/realtime?model=m"


async def test_a_server_message_over_the_size_limit_ends_the_session_with_1009():
    codes: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send("x" * 5000)
        await ws.wait_closed()
        codes.append(ws.close_code)

    async with server(handler) as url:
        conn = await WebsocketsConnector(url, "sk-x", max_size=4096)()
        r = Received()
        conn.start(r.on_message, r.on_closed)
        reason = await asyncio.wait_for(r.closed, 5)
        assert "PayloadTooBig" in reason
        assert r.messages == []
        await conn.close()
    assert codes == [1009]


async def test_server_close_frame_is_reported_with_its_code():
    async def handler(ws: ServerConnection) -> None:
        await ws.close(4000, "session expired")

    async with server(handler) as url:
        conn = await WebsocketsConnector(url, "sk-x")()
        r = Received()
        conn.start(r.on_message, r.on_closed)
        reason = await asyncio.wait_for(r.closed, 5)
        assert reason == "closed by the server (code 4000, session expired)"


async def test_refused_upgrade_maps_status_to_retryable():
    for status, retryable in ((401, False), (403, False), (404, False), (429, True), (503, True)):
        async with server(
            lambda ws: ws.wait_closed(), process_request=lambda c, r, s=status: c.respond(s, "no\n")
        ) as url:
            with pytest.raises(RealtimeConnectError) as info:
                await WebsocketsConnector(url, "sk-x")()
            assert f"HTTP {status}" in str(info.value)
            assert info.value.retryable is retryable


async def test_unreachable_and_invalid_urls():
    with pytest.raises(RealtimeConnectError) as info:
        await WebsocketsConnector("ws://127.0.0.1:1/v1/realtime", "sk-x")()
    assert info.value.retryable
    with pytest.raises(RealtimeConnectError) as info:
        await WebsocketsConnector("ftp://example/realtime", "sk-x")()
    assert not info.value.retryable


async def _silent_server() -> tuple[asyncio.Server, str, list[asyncio.Transport]]:
    """Completes the WebSocket handshake, then never reads again: no pongs, no
    close replies, and a full receive buffer once the client writes enough."""
    transports: list[asyncio.Transport] = []

    class Silent(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.proto = ServerProtocol()
            transports.append(transport)  # type: ignore[arg-type]

        def data_received(self, data: bytes) -> None:
            self.proto.receive_data(data)
            for event in self.proto.events_received():
                if hasattr(event, "path"):  # the upgrade request
                    self.proto.send_response(self.proto.accept(event))
                    self.transport.write(b"".join(self.proto.data_to_send()))
                    self.transport.pause_reading()  # and never again

    srv = await asyncio.get_running_loop().create_server(Silent, "127.0.0.1", 0)
    return srv, f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1/realtime", transports


@contextlib.asynccontextmanager
async def silent_server():
    srv, url, transports = await _silent_server()
    try:
        yield url
    finally:
        for t in transports:
            t.abort()
        srv.close()


async def test_no_pong_within_the_timeout_ends_the_session():
    async with silent_server() as url:
        conn = await WebsocketsConnector(url, "sk-x", ping_interval=0.05, ping_timeout=0.1)()
        r = Received()
        conn.start(r.on_message, r.on_closed)
        assert await asyncio.wait_for(r.closed, 5) == "keepalive ping timeout"


async def test_a_server_that_stops_reading_is_dropped_not_buffered_forever():
    async with silent_server() as url:
        conn = await WebsocketsConnector(url, "sk-x", max_write_buffer=256 * 1024, ping_interval=None)()
        r = Received()
        conn.start(r.on_message, r.on_closed)
        chunk = '{"type":"input_audio_buffer.append","audio":"' + "A" * 2560 + '"}'
        for _ in range(20_000):  # ~52 MB at most; the kernel buffers a few MB of it
            conn.send(chunk)
            if conn.closing:
                break
        assert await asyncio.wait_for(r.closed, 5) == "the Realtime API stopped reading (write buffer full)"


async def test_close_gives_up_on_a_server_that_never_answers():
    async with silent_server() as url:
        conn = await WebsocketsConnector(url, "sk-x", ping_interval=None)()
        conn.start(lambda d: None, lambda r: None)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(conn.close(), 5)
        assert loop.time() - t0 < 2.0  # 1 s for the close reply, then the socket is dropped
        assert conn.closing


async def test_wss_verifies_the_certificate_and_speaks_over_tls():
    """Production is wss://: TLS with the server name checked against the certificate."""
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"type":"session.created"}')
        async for message in ws:
            await ws.send(message)  # echo

    async with serve(handler, "localhost", 0, ssl=server_ctx, compression=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        conn = await WebsocketsConnector(
            f"wss://localhost:{port}/v1/realtime?model=m", "sk-x", ssl_context=client_ctx
        )()
        r = Received()
        conn.start(r.on_message, r.on_closed)
        conn.send('{"type":"ping-over-tls"}')
        await r.wait_messages(2)
        assert r.messages == [b'{"type":"session.created"}', b'{"type":"ping-over-tls"}']
        await conn.close()
        # A certificate for another name is refused.
        with pytest.raises(RealtimeConnectError):
            await WebsocketsConnector(f"wss://127.0.0.1:{port}/v1/realtime", "sk-x", ssl_context=client_ctx)()


#: Every variable websockets (through urllib) may take a proxy from.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "socks_proxy", "all_proxy", "no_proxy")


def use_proxy(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """Exactly these proxy variables (websockets also reads https_proxy and socks_proxy
    for ws:// URLs: one left in the CI environment must not pick the proxy)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@contextlib.asynccontextmanager
async def connect_proxy(upstream_port: int, seen: list[bytes], ssl: Any = None):
    """An HTTP CONNECT proxy on loopback (TLS to it when ``ssl`` is given) that requires
    user:s3cret and tunnels every CONNECT to ``upstream_port``. Yields its port."""

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        if b"Proxy-Authorization: Basic dXNlcjpzM2NyZXQ=" not in head:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    proxy_server = await asyncio.start_server(proxy, "127.0.0.1", 0, ssl=ssl)
    try:
        yield proxy_server.sockets[0].getsockname()[1]
    finally:
        proxy_server.close()


async def test_an_http_proxy_from_the_environment_is_used_with_connect(monkeypatch):
    """HTTPS_PROXY / HTTP_PROXY as urllib reads them (the previous client honoured them too)."""

    seen: list[bytes] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"type":"session.created"}')
        await ws.wait_closed()

    async with server(handler) as direct_url:
        upstream_port = int(direct_url.split(":")[2].split("/")[0])
        async with connect_proxy(upstream_port, seen) as proxy_port:
            use_proxy(monkeypatch, http_proxy=f"http://user:s3cret@127.0.0.1:{proxy_port}")
            url = "ws://realtime.test:4443/v1/realtime?model=m"  # resolved by the proxy, not by us
            conn = await WebsocketsConnector(url, "sk-x")()
            r = Received()
            conn.start(r.on_message, r.on_closed)
            await r.wait_messages(1)
            assert r.messages == [b'{"type":"session.created"}']
            assert seen[0].startswith(b"CONNECT realtime.test:4443 HTTP/1.1\r\n")
            await conn.close()

            use_proxy(monkeypatch, http_proxy=f"http://127.0.0.1:{proxy_port}")  # no credentials: 407
            with pytest.raises(RealtimeConnectError) as info:
                await WebsocketsConnector(url, "sk-x")()
            assert "proxy refused CONNECT: 407" in str(info.value)


async def test_an_https_proxy_is_reached_over_tls(monkeypatch):
    """TLS to the proxy itself (an https:// proxy URL), verified with the connector's trust store."""
    import ssl

    import trustme

    ca = trustme.CA()
    proxy_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(proxy_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    seen: list[bytes] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"type":"session.created"}')
        await ws.wait_closed()

    async with server(handler) as direct_url:
        upstream_port = int(direct_url.split(":")[2].split("/")[0])
        async with connect_proxy(upstream_port, seen, ssl=proxy_ctx) as proxy_port:
            use_proxy(monkeypatch, https_proxy=f"https://user:s3cret@127.0.0.1:{proxy_port}")
            conn = await WebsocketsConnector("ws://realtime.test:4443/v1/realtime", "sk-x", ssl_context=client_ctx)()
            r = Received()
            conn.start(r.on_message, r.on_closed)
            await r.wait_messages(1)
            assert r.messages == [b'{"type":"session.created"}']
            assert seen[0].startswith(b"CONNECT realtime.test:4443 HTTP/1.1\r\n")
            await conn.close()


async def test_loopback_is_never_proxied(monkeypatch):
    """websockets would send even 127.0.0.1 through the proxy unless NO_PROXY says otherwise."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"type":"session.created"}')
        await ws.wait_closed()

    async with server(handler) as url:
        dead = "http://127.0.0.1:1"  # nothing listens there
        use_proxy(monkeypatch, http_proxy=dead, https_proxy=dead, ws_proxy=dead, socks_proxy=dead)
        conn = await WebsocketsConnector(url, "sk-x")()
        r = Received()
        conn.start(r.on_message, r.on_closed)
        await r.wait_messages(1)
        await conn.close()


async def test_a_bad_proxy_setting_is_not_retryable_and_its_credentials_stay_out_of_the_message(monkeypatch):
    use_proxy(monkeypatch, https_proxy="ftp://user:s3cret@proxy.test:21")
    with pytest.raises(RealtimeConnectError) as info:
        await WebsocketsConnector("wss://realtime.test/v1/realtime", "sk-x")()
    assert not info.value.retryable
    assert "scheme ftp" in str(info.value) and "s3cret" not in str(info.value)


async def test_a_socks_proxy_without_python_socks_says_what_to_install(monkeypatch):
    """SOCKS proxies work as websockets documents them when python-socks is installed."""
    try:
        import python_socks  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("python-socks is installed")

    use_proxy(monkeypatch, https_proxy="socks5h://127.0.0.1:1")
    with pytest.raises(RealtimeConnectError) as info:
        await WebsocketsConnector("wss://realtime.test/v1/realtime", "sk-x")()
    assert not info.value.retryable
    assert "python-socks" in str(info.value)


def test_our_text_frames_are_what_websockets_parses_back():
    """``ws_frames.text_frame`` (both sockets' per-message send) against websockets'
    own parser, at every length boundary, masked (client) and not (server)."""
    from websockets.frames import Opcode
    from websockets.protocol import Protocol, Side, State

    from telephony.io.ws_frames import MaskKeys, can_send_fast, sendable, text_frame

    keys = MaskKeys()
    for side, masked in ((Side.SERVER, True), (Side.CLIENT, False)):
        reader = Protocol(side, state=State.OPEN, max_size=None)
        for n in (0, 1, 125, 126, 127, 65535, 65536, 70000):
            payload = bytes(i % 251 for i in range(n))
            reader.receive_data(text_frame(payload, keys if masked else None))
            [frame] = reader.events_received()
            assert (frame.opcode, frame.fin, bytes(frame.data)) == (Opcode.TEXT, True, payload)
        assert reader.parser_exc is None
    # 256 keys per draw from the OS, then a fresh draw: keys differ
    drawn = [keys.next() for _ in range(600)]
    assert all(len(k) == 4 for k in drawn) and len(set(drawn)) > 590
    # sendable only while the connection would send a text frame as is
    conn = Protocol(Side.CLIENT, state=State.OPEN)
    assert can_send_fast(conn) and sendable(conn)
    conn.send_text(b"a", fin=False)
    assert not sendable(conn)  # in a fragmented message, with its first frame unsent
    conn.send_continuation(b"b", fin=True)
    conn.data_to_send()
    assert sendable(conn)
    conn.send_close(1000)
    assert not sendable(conn)


async def test_server_frames_in_any_cut_arrive_whole_and_in_order(monkeypatch):
    """Whole data frames from the server skip websockets' parser (from the end of
    the handshake's response on); pings, fragments, frames cut across reads and
    frames sent with the response go through it. However the stream is cut, the
    bridge gets the same messages in the same order, and pings are answered."""
    import itertools
    import random

    from websockets.frames import Opcode

    from telephony.io.realtime.client import WebsocketsConnection

    read = asyncio.Event()
    fast_reads: list[bool] = []
    received = WebsocketsConnection.data_received

    def data_received(self, data):
        parsed = self._proto.events_received  # a read that reaches websockets' parser calls this
        calls = []
        self._proto.events_received = lambda: calls.append(1) or parsed()
        try:
            received(self, data)
        finally:
            del self._proto.events_received
        fast_reads.append(not calls)
        read.set()

    monkeypatch.setattr(WebsocketsConnection, "data_received", data_received)
    sides: list[tuple[asyncio.Transport, ServerProtocol]] = []
    pongs = asyncio.Event()

    class Raw(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.proto = ServerProtocol()

        def data_received(self, data: bytes) -> None:
            self.proto.receive_data(data)
            for event in self.proto.events_received():
                if hasattr(event, "path"):  # the upgrade request: answer it and send two frames with it
                    self.proto.send_response(self.proto.accept(event))
                    self.proto.send_text(b'{"n":"with the response"}')
                    self.proto.send_text(b'{"n":"and another"}')
                    self.transport.write(b"".join(self.proto.data_to_send()))
                    sides.append((self.transport, self.proto))  # type: ignore[arg-type]
                elif getattr(event, "opcode", None) == Opcode.PONG:
                    pongs.set()

    srv = await asyncio.get_running_loop().create_server(Raw, "127.0.0.1", 0)
    try:
        url = f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1/realtime"
        conn = await WebsocketsConnector(url, "sk-x", ping_interval=None)()
        r = Received()
        conn.start(r.on_message, r.on_closed)
        [(transport, proto)] = sides
        expected = [b'{"n":"with the response"}', b'{"n":"and another"}']
        await r.wait_messages(2)

        async def write(chunk: bytes) -> None:  # one write, one read by the client
            read.clear()
            transport.write(chunk)
            await asyncio.wait_for(read.wait(), 5)

        rng = random.Random(11)
        for round_ in range(5):
            ends = []
            for k in range(12):
                kind = rng.choice(["text", "text", "text", "long", "ping", "fragments", "binary"])
                payload = f'{{"r":{round_},"m":{k},"x":"'.encode() + b"y" * rng.randrange(300) + b'"}'
                if kind == "text":
                    proto.send_text(payload)
                elif kind == "long":  # a 16-bit length
                    payload = payload[:-2] + b"z" * rng.randrange(126, 9000) + b'"}'
                    proto.send_text(payload)
                elif kind == "ping":
                    proto.send_ping(b"p%d" % k)
                elif kind == "fragments":
                    proto.send_text(payload[:7], fin=False)
                    proto.send_continuation(payload[7:], fin=True)
                else:
                    proto.send_binary(payload)
                if kind != "ping":
                    expected.append(payload)
                ends.append(sum(map(len, proto.writes)))
            stream = b"".join(proto.data_to_send())
            cuts = sorted(set(rng.sample(range(1, len(stream)), 12) + ends[:-1:2]))
            for a, b in itertools.pairwise([0, *cuts, len(stream)]):
                await write(stream[a:b])
        # one message per read, the usual case: all skip websockets' parser
        before = len(fast_reads)
        for k in range(10):
            proto.send_text(b'{"delta":%d}' % k)
            expected.append(b'{"delta":%d}' % k)
            await write(b"".join(proto.data_to_send()))
        assert all(fast_reads[before:]) and len(fast_reads) - before == 10
        await r.wait_messages(len(expected))
        assert r.messages == expected
        await asyncio.wait_for(pongs.wait(), 5)
        await conn.close()
    finally:
        srv.close()
