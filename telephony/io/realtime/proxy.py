"""Reaching the Realtime API through a proxy: HTTP CONNECT (over TLS for an
https:// proxy) or SOCKS, chosen from the environment as the ``websockets``
library chooses it, and opened with its own helpers."""

from __future__ import annotations

import asyncio
import ssl

from websockets.exceptions import InvalidProxy, InvalidProxyMessage, InvalidProxyStatus, ProxyError
from websockets.proxy import Proxy, get_proxy, parse_proxy
from websockets.uri import WebSocketURI

from ...errors import RealtimeConnectError

try:  # the helpers websockets' own asyncio connect() opens proxied connections with (not in its __all__)
    from websockets.asyncio.client import connect_http_proxy, connect_socks_proxy
except ImportError:  # pragma: no cover - a websockets that moved them: proxies fail with a clear error
    connect_http_proxy = connect_socks_proxy = None  # type: ignore[assignment]

__all__ = ["open_through", "proxy_failure", "proxy_for"]

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def proxy_for(uri: WebSocketURI) -> Proxy | None:
    """The proxy for ``uri``, or None: websockets' choice from the environment (NO_PROXY
    first; then wss_proxy/ws_proxy, a SOCKS proxy, https_proxy, and for ws:// http_proxy).
    Loopback is never proxied (websockets would, unless NO_PROXY says otherwise)."""
    if uri.host in _LOOPBACK:
        return None
    url = get_proxy(uri)
    if url is None:
        return None
    try:
        return parse_proxy(url)
    except InvalidProxy as exc:  # its str() would repeat the URL, credentials included
        raise RealtimeConnectError(f"invalid proxy setting: {exc.msg}", retryable=False) from None


def proxy_failure(exc: ProxyError) -> str:
    """What went wrong, without the proxy URL (it may carry credentials)."""
    if isinstance(exc, InvalidProxyStatus):
        return f"the proxy refused CONNECT: {exc.response.status_code} {exc.response.reason_phrase}"
    if isinstance(exc, InvalidProxyMessage):
        return "the proxy's answer to CONNECT is not valid HTTP"
    return str(exc)  # SOCKS: "failed to connect to SOCKS proxy"


async def open_through(
    proxy: Proxy,
    uri: WebSocketURI,
    conn: asyncio.Protocol,
    context: ssl.SSLContext | None,
    proxy_context: ssl.SSLContext | None,
) -> None:
    """Connect ``conn`` to ``uri`` through ``proxy`` with websockets' own proxy helpers,
    as its asyncio ``connect()`` does: a SOCKS socket, or an HTTP CONNECT tunnel (over
    TLS for an https:// proxy, with ``proxy_context``); then TLS to the API inside it
    for wss:// (``context``)."""
    if connect_http_proxy is None:  # pragma: no cover
        raise RealtimeConnectError("this websockets version cannot connect through a proxy", retryable=False)
    loop = asyncio.get_running_loop()
    if proxy.scheme.startswith("socks"):
        try:
            sock = await connect_socks_proxy(proxy, uri)
        except ImportError:
            raise RealtimeConnectError(
                "a SOCKS proxy needs python-socks: pip install 'python-socks[asyncio]'", retryable=False
            ) from None
        await loop.create_connection(
            lambda: conn, sock=sock, ssl=context, server_hostname=uri.host if context else None
        )
        return
    transport = await connect_http_proxy(proxy, uri, user_agent_header="telephony", ssl=proxy_context)
    try:
        transport.set_protocol(conn)
        if context is not None:
            tls = await loop.start_tls(transport, conn, context, server_hostname=uri.host)
            if tls is None:  # the loop closed it
                raise ConnectionError("TLS to the Realtime API through the proxy failed")
            transport = tls
    except BaseException:
        transport.abort()
        raise
    conn.connection_made(transport)
