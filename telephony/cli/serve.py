"""``telephony serve``: the server (one process, or ``--workers`` sharing the port)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from typing import TYPE_CHECKING

from .common import build_setup, check_records_path, die, load_settings, log

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["cmd_serve"]


def cmd_serve(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..io.app import create_app, drain
    from ..logs import log_event, setup_logging

    settings = load_settings()
    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value().strip():
        die("OPENAI_API_KEY is not set: put it in the environment or in a .env file")
    for warning in type(settings).unknown_env(dict(os.environ)):
        print(f"telephony: warning: {warning}", file=sys.stderr)
    if not settings.database_url:  # else records go to PostgreSQL (checked when it connects)
        check_records_path(settings.records_path)
    workers = settings.workers if args.workers is None else args.workers
    if workers < 1:
        die("--workers must be at least 1")
    setup_logging(
        settings.log_level, settings.log_format, settings.secrets(), settings.log_max_field, settings.log_frames
    )
    if workers > 1 and not args.reuse_port:
        return _serve_workers(args, settings, workers)
    registry, agents = build_setup(settings, args.tools)
    if not settings.signatures_required:
        banner = "!" * 78
        print(
            f"{banner}\n! WARNING: TWILIO_AUTH_TOKEN is not set. Twilio signatures are NOT checked:\n"
            f"! anyone who finds this server can place calls on your OpenAI account.\n{banner}",
            file=sys.stderr,
        )
    if not settings.public_url:
        print(
            "telephony: warning: PUBLIC_URL is not set; stream URLs come from the request's Host header",
            file=sys.stderr,
        )
    try:
        app = create_app(settings, registry, agents=agents)
    except ConfigError as exc:
        die(str(exc))
    state = app.state.telephony

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    from ..io.server import listen_socket, make_server, uvicorn_config

    try:
        sock = listen_socket(host, port, reuse_port=args.reuse_port)
    except OSError as exc:
        die(f"cannot listen on {host}:{port}: {exc.strerror}")
    bound = sock.getsockname()[1]

    config = uvicorn_config(app, settings.max_message_bytes, timeout_graceful_shutdown=5)

    async def drain_first() -> None:
        await drain(state, settings.drain_seconds)

    server = make_server(config, on_first_signal=drain_first)
    log_event(
        log,
        "server.ready",
        host=host,
        port=bound,
        tools=[t.name for t in registry],
        model=settings.model,
        signatures=settings.signatures_required,
    )
    print(f"telephony: listening on http://{host}:{bound}", flush=True)
    if not args.reuse_port:  # a worker: its supervisor says what to do next, once
        print(_next_step(settings.public_url), flush=True)
    # Everything loaded so far (libraries, settings, tools) lives as long as the
    # process: keep it out of the collector's full passes, which otherwise stall
    # every call's audio for milliseconds at a time under load.
    gc.collect()
    gc.freeze()
    asyncio.run(server.serve(sockets=[sock]))
    return 0


def _next_step(public_url: str | None) -> str:
    """What a new operator does next, printed after "listening on …"."""
    origin = (public_url or "").rstrip("/") or "https://<your public address>"
    return (
        f"telephony: next: point your Twilio number's voice webhook at {origin}/incoming-call "
        "(`telephony configure --number +1…` does it), or try the agent without a phone: "
        "`telephony simulate --offline --audio caller.wav`"
    )


def _serve_workers(args: argparse.Namespace, settings: Settings, workers: int) -> int:
    from ..workers import run_workers

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port

    def listening(bound: int) -> None:
        print(f"telephony: listening on http://{host}:{bound} ({workers} workers)", flush=True)
        print(_next_step(settings.public_url), flush=True)

    try:
        return run_workers(host, port, workers, tools=args.tools, listening=listening)
    except OSError as exc:
        die(f"cannot listen on {host}:{port}: {exc.strerror}")
