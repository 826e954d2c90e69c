"""The listening socket and the uvicorn server for ``telephony serve`` (and the
simulator and tests)."""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

__all__ = ["listen_socket", "make_server", "start_server", "uvicorn_config"]


def listen_socket(
    host: str = "127.0.0.1", port: int = 0, backlog: int = 2048, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A bound, listening TCP socket (``port=0`` picks a free one).

    ``proto=IPPROTO_TCP`` matters: asyncio sets TCP_NODELAY only on accepted
    sockets whose ``proto`` says TCP. With Nagle's algorithm on, a media message
    waits behind the previous unacknowledged mark until the caller's next frame
    carries the ACK: about 20 ms added to the agent's audio (measured).

    ``reuse_port``: SO_REUSEPORT, so several worker processes listen on one port
    and the kernel spreads new connections over them. ``listen=False`` only binds
    (a supervisor holding the port for its workers takes no connections itself).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    if listen:
        sock.listen(backlog)
    return sock


def uvicorn_config(app: Any, max_message_bytes: int, **overrides: Any) -> Any:
    """The ``uvicorn.Config`` every entry point uses (serve, simulate, tests):
    no access log or lifespan, no per-message deflate (base64 audio does not
    compress), the direct-delivery WebSocket protocol (see ``direct_ws``), and
    h11 with the slow-client guards (see ``http_guard``; their limits come from the
    app's settings: ``TELEPHONY_REQUEST_TIMEOUT``, ``TELEPHONY_MAX_PENDING_CONNECTIONS``)."""
    import uvicorn

    from .direct_ws import ws_protocol
    from .http_guard import guarded_http

    state = getattr(getattr(app, "state", None), "telephony", None)
    settings = getattr(state, "settings", None)
    timeout = settings.request_timeout if settings is not None else 10.0
    max_pending = settings.max_pending_connections if settings is not None else 128
    options: dict[str, Any] = {
        "http": guarded_http(timeout, max_pending),
        "log_config": None,
        "access_log": False,
        "ws": ws_protocol(),
        "ws_max_size": max_message_bytes,
        "ws_per_message_deflate": False,
        "lifespan": "off",
    }
    options.update(overrides)
    config = uvicorn.Config(app, **options)
    if settings is not None:  # read by direct_ws's protocol
        config.telephony_max_fragments = settings.max_fragments  # type: ignore[attr-defined]
        config.telephony_max_unsent = settings.max_unsent_bytes  # type: ignore[attr-defined]
    return config


@functools.cache
def _server_class() -> type:
    import uvicorn  # here, not at the top: the workers' supervisor imports this module without serving

    class Server(uvicorn.Server):
        """uvicorn's server plus a startup signal (``started`` is only a flag to poll),
        and, with ``on_first_signal``, a drain: the first SIGTERM/SIGINT runs it and
        then stops the server; a second one stops it at once."""

        def __init__(self, config: Any, on_first_signal: Callable[[], Awaitable[None]] | None = None) -> None:
            super().__init__(config)
            self.listening = asyncio.Event()
            self._on_first_signal = on_first_signal
            self._draining = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self._on_first_signal is None or self._draining:
                super().handle_exit(sig, frame)
                return
            self._draining = True
            loop = asyncio.get_event_loop()
            loop.call_soon_threadsafe(lambda: loop.create_task(self._drain()))

        async def _drain(self) -> None:
            assert self._on_first_signal is not None
            await self._on_first_signal()
            self.should_exit = True

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn's startup() creates the listening servers and sets ``started`` as
            # its last step; when startup fails it returns without it (0.35) or exits.
            await super().startup(sockets=sockets)
            if self.started:
                self.listening.set()

    return Server


def make_server(config: Any, on_first_signal: Callable[[], Awaitable[None]] | None = None) -> Any:
    """A uvicorn server for ``config`` (see ``_server_class``)."""
    return _server_class()(config, on_first_signal)


async def start_server(
    config: Any, sockets: list[socket.socket], timeout: float = 10.0
) -> tuple[Any, asyncio.Task[None]]:
    """Run uvicorn with ``config`` on ``sockets`` in a task; return ``(server, task)`` once
    it accepts connections. Stop it with ``server.should_exit = True`` and ``await task``.
    Raises what startup raised, or ``TimeoutError`` (the server stopped) after ``timeout``."""
    server = _server_class()(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=sockets))
    listening = asyncio.ensure_future(server.listening.wait())
    try:
        await asyncio.wait((task, listening), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        listening.cancel()
    if server.listening.is_set():
        return server, task
    if task.done():
        task.result()  # startup's exception, if it raised one
        raise RuntimeError("uvicorn stopped before it was listening")
    server.should_exit = True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise TimeoutError(f"uvicorn was not listening after {timeout} s")
