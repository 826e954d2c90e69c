"""The ``telephony`` command."""

from __future__ import annotations

import argparse
import asyncio
import builtins
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError

if TYPE_CHECKING:
    from .agents import Agents
    from .config import Settings
    from .tools import ToolRegistry

__all__ = ["main"]

log = logging.getLogger("telephony.server")


def _settings(**overrides: Any) -> Settings:
    from .config import Settings

    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        _die("invalid settings:\n" + "\n".join(lines))
    _SECRETS.extend(settings.secrets())
    return settings


#: Secrets of the settings loaded so far: never printed, on the error path either.
_SECRETS: list[str] = []


def check_records_path(path: str) -> None:
    """Fail at start if call records cannot be written (e.g. a root-owned bind mount)."""
    if not path or path == ":memory:":
        return
    from .records import CallQuery, SqliteCallStore

    try:
        store = SqliteCallStore(path)
        try:
            store.list_now(CallQuery(limit=1))  # opens (creates) the file and its table: a write
        finally:
            store.close_now()
    except Exception as exc:
        _die(
            f"TELEPHONY_RECORDS_PATH {path!r} is not writable ({type(exc).__name__}: {exc}): "
            "point it at a writable file, fix the directory's owner, or set it to '' to turn records off"
        )


def _die(message: str, code: int = 2) -> NoReturn:
    from .logs import RedactSecrets

    print(f"telephony: error: {RedactSecrets(_SECRETS).clean(message)}", file=sys.stderr)
    raise SystemExit(code)


def build_registry(settings: Settings, tools_target: str | None) -> ToolRegistry:
    return build_setup(settings, tools_target)[0]


def build_setup(settings: Settings, tools_target: str | None) -> tuple[ToolRegistry, Agents | None]:
    """The tool registry and the agents (None: the module defines no ``Agent``)
    of ``--tools``; a module that cannot load or agents that do not add up end
    the command with a clear error."""
    from .agents import Agents
    from .errors import ConfigError, ToolDefinitionError
    from .tools import ToolLoadError, ToolRegistry
    from .tools.builtin import end_call_tool, send_dtmf_tool, transfer_call_tool
    from .tools.loader import Loaded, load_module

    registry = ToolRegistry(default_timeout=settings.tool_timeout)
    target = tools_target or settings.tools
    loaded = Loaded()
    try:
        if target:
            try:
                loaded = load_module(target)
            except ToolLoadError as exc:
                _SECRETS.extend(settings.secrets())
                _die(str(exc))
            if not loaded.tools and not loaded.agents:
                print(f"telephony: warning: no @tool functions found in {target}", file=sys.stderr)
            for t in loaded.tools:
                registry.add(t)
        if settings.enable_end_call:
            registry.add(end_call_tool())
        if settings.enable_send_dtmf:
            registry.add(send_dtmf_tool())
        if settings.transfer_number or settings.transfer_directory:
            registry.add(transfer_call_tool(sorted(settings.transfer_directory), bool(settings.transfer_number)))
    except ToolDefinitionError as exc:  # e.g. two tools with one name, or one named like a built-in
        _die(f"{exc} (built-in tools: end_call, transfer_call): rename one")
    agents = None
    if loaded.agents:
        try:
            agents = Agents(
                loaded.agents, settings.agent, settings.agents_by_number, loaded.route, settings.route_timeout
            )
        except ConfigError as exc:
            _die(str(exc))
    elif settings.agent or settings.agents_by_number:
        _die("TELEPHONY_AGENT / TELEPHONY_AGENTS_BY_NUMBER are set but the --tools module defines no Agent")
    return registry, agents


def cmd_serve(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .io.app import create_app, drain
    from .logs import log_event, setup_logging

    settings = _settings()
    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value().strip():
        _die("OPENAI_API_KEY is not set: put it in the environment or in a .env file")
    for warning in type(settings).unknown_env(dict(os.environ)):
        print(f"telephony: warning: {warning}", file=sys.stderr)
    if not settings.database_url:  # else records go to PostgreSQL (checked when it connects)
        check_records_path(settings.records_path)
    workers = settings.workers if args.workers is None else args.workers
    if workers < 1:
        _die("--workers must be at least 1")
    if workers > 1 and not args.reuse_port:
        return _serve_workers(args, settings, workers)
    setup_logging(
        settings.log_level, settings.log_format, settings.secrets(), settings.log_max_field, settings.log_frames
    )
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
        _die(str(exc))
    state = app.state.telephony

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    from .io.server import listen_socket, make_server, uvicorn_config

    try:
        sock = listen_socket(host, port, reuse_port=args.reuse_port)
    except OSError as exc:
        _die(f"cannot listen on {host}:{port}: {exc.strerror}")
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
    from .workers import run_workers

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    try:
        return run_workers(host, port, workers, tools=args.tools, next_step=_next_step(settings.public_url))
    except OSError as exc:
        _die(f"cannot listen on {host}:{port}: {exc.strerror}")


def _params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _die(f"--param takes key=value, got {pair!r}")
        out[key] = value
    return out


def cmd_call(args: argparse.Namespace) -> int:
    from .errors import TelephonyError
    from .io.twilio.outbound import place_call

    settings = _settings()
    if not (args.from_number or settings.from_number):
        _die("no caller ID: set TELEPHONY_FROM_NUMBER (a number of your Twilio account, E.164) or pass --from +1…")
    try:
        sid = asyncio.run(
            place_call(
                args.number,
                settings=settings,
                from_number=args.from_number,
                instructions=args.instructions,
                parameters=_params(args.param),
                amd=True if args.amd else None,
                voicemail_message=args.voicemail,
            )
        )
    except TelephonyError as exc:
        _die(str(exc))
    print(f"calling {args.number}: call {sid}")
    return 0


def cmd_configure(args: argparse.Namespace) -> int:
    from .errors import TelephonyError
    from .io.twilio.outbound import configure_number

    settings = _settings()
    try:
        changes = asyncio.run(configure_number(args.number, settings=settings))
    except TelephonyError as exc:
        _die(str(exc))
    if not changes:
        print(f"{args.number} already points at {settings.public_url}: nothing changed")
    for name, (old, new) in changes.items():
        print(f"{args.number} {name}: {old or '(unset)'} -> {new}")
    return 0


def cmd_calls(args: argparse.Namespace) -> int:
    import datetime as dt

    from .errors import ConfigError
    from .logs import escape_control
    from .records import CallQuery, CallRecord, open_store

    def print(line: str) -> None:  # what callers said or sent: control characters escaped
        builtins.print(escape_control(line))

    settings = _settings()
    path = settings.records_path
    if not settings.database_url and path and path != ":memory:" and not Path(path).exists():
        # Opening SQLite would create an empty database here as a side effect.
        if args.action is None:
            print(f"no calls recorded yet: {path} does not exist (TELEPHONY_RECORDS_PATH)")
            return 0
        if args.action != "show" or not args.sid:
            _die("usage: telephony calls [--limit N] | telephony calls show CALL_SID")
        _die(f"no call {args.sid} in {path}: the file does not exist (TELEPHONY_RECORDS_PATH)")
    try:
        store = open_store(settings)
    except ConfigError as exc:
        _die(str(exc))
    if store is None:
        _die("call records are off: TELEPHONY_RECORDS_PATH and TELEPHONY_DATABASE_URL are empty")
    where = "the database" if settings.database_url else settings.records_path

    async def ask(op: Any) -> Any:
        assert store is not None
        try:
            return await op(store)
        finally:
            await store.close()

    def read(op: Any) -> Any:
        try:
            return asyncio.run(ask(op))
        except Exception as exc:
            _die(f"cannot read call records from {where}: {type(exc).__name__}: {exc}")

    def cost(r: CallRecord) -> str:
        return "not priced" if r.cost_usd is None else f"${r.cost_usd:.4f}"

    def when(ts: float | None) -> str:
        return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"

    if args.action is None:
        query = CallQuery(args.number, args.outcome, limit=args.limit, offset=args.offset)
        records: list[CallRecord] = read(lambda st: st.list(query))
        if not records:
            print(f"no calls recorded in {where}")
        for r in records:
            dur = f"{r.duration_s:.0f}s" if r.duration_s is not None else "-"
            print(
                f"{r.call_sid}  {when(r.started_at)}  {dur:>6}  {r.outcome or 'in progress':<17} "
                f"{r.from_number or '?'} -> {r.to_number or '?'}  turns={len(r.transcript)} "
                f"tools={len(r.tool_calls)} barge-ins={len(r.barge_ins)} cost={cost(r)}"
            )
        return 0
    if args.action != "show" or not args.sid:
        _die("usage: telephony calls [--limit N] | telephony calls show CALL_SID")
    found: CallRecord | None = read(lambda st: st.get(args.sid))
    if found is None:
        _die(f"no call {args.sid} in {where}")
    r = found
    print(
        f"call {r.call_sid}: {r.from_number or '?'} -> {r.to_number or '?'}, {when(r.started_at)}, "
        f"{r.duration_s or 0:.1f} s, {r.outcome} ({r.reason}), cost {cost(r)}"
    )
    events = [(e["t"], f"{e['role']}: {e['text']}") for e in r.transcript]
    for c in r.tool_calls:
        result = c["result"] if c["ok"] else f"error: {c['error']}"
        events.append((c["t"], f"tool {c['name']}({c['arguments']}) -> {result} [{c['duration_ms']} ms]"))
    for b in r.barge_ins:
        cut = ", ".join(f"{t['item_id']} at {t['audio_end_ms']} ms" for t in b["truncated"])
        events.append((b["t"], f"barge-in: agent cut off ({cut or 'nothing playing'})"))
    for t, line in sorted(events, key=lambda e: e[0]):
        print(f"  [{t:7.2f}s] {line}")
    if r.dtmf:
        print(f"  keys pressed: {r.dtmf}")
    u = r.usage
    print(
        f"  tokens: {u.get('input_tokens', 0)} in, {u.get('output_tokens', 0)} out, {u.get('responses', 0)} responses"
    )
    return 0


def cmd_tools(args: argparse.Namespace) -> int:
    """The ``session.tools`` the model is given: one list, or one per agent."""
    import json

    from .io.services import Services

    settings = _settings()
    registry, agents = build_setup(settings, args.tools)

    async def never(*_: Any, **__: Any) -> Any:  # nothing is connected: schemas only
        raise RuntimeError("not connected")

    services = Services(settings, registry, connect_realtime=never, agents=agents)
    shown: Any = services.tool_schemas
    if agents is not None:
        shown = {name: services.agent_tools(name) for name in agents.by_name}
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def _simulated_records(path: str) -> str:
    """Where ``simulate`` records its calls by default: beside the real records
    (``calls.db`` -> ``calls.simulated.db``), never in them."""
    if not path or path == ":memory:":
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}.simulated{p.suffix}"))


def cmd_simulate(args: argparse.Namespace) -> int:
    from .audio.wav import WavError, read_wav
    from .logs import setup_logging
    from .simulate import simulate

    if not args.speed > 0:  # also refuses NaN
        _die(f"--speed must be more than 0 (x real time), got {args.speed}")
    settings = _settings()
    # Simulated calls stay out of the real records (SQLite or PostgreSQL) unless --records says where.
    records = args.records if args.records is not None else _simulated_records(settings.records_path)
    settings = settings.model_copy(update={"records_path": records, "database_url": None})
    if not args.offline and (settings.openai_api_key is None or not settings.openai_api_key.get_secret_value()):
        _die("OPENAI_API_KEY is not set (or use --offline for the built-in offline simulator)")
    try:
        read_wav(args.audio)
    except WavError as exc:
        _die(str(exc))
    setup_logging("WARNING", "text", settings.secrets())
    registry, agents = build_setup(settings, args.tools)
    out = args.out or str(Path(args.audio).with_suffix("")) + ".heard.wav"
    result = asyncio.run(
        simulate(
            args.audio,
            settings=settings,
            registry=registry,
            agents=agents,
            offline=args.offline,
            out=out,
            emit=lambda line: print(line, flush=True),
            speed=args.speed,
            line=args.line,
            from_number=args.from_number,
        )
    )
    if args.line:
        erle = "n/a (needs --offline and speakerphone)" if result.erle_db is None else f"{result.erle_db:.1f} dB"
        print(
            f"line {args.line}: false barge-ins {result.false_barge_ins}, "
            f"longest silence {result.longest_silence:.1f} s, ERLE {erle}",
            flush=True,
        )
    if result.no_speech:
        return 1
    return 0 if result.outcome in ("completed", "hung_up_by_agent", "transferred") else 1


def main(argv: Sequence[str] | None = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog="telephony", description="Phone calls to OpenAI Realtime voice agents.")
    parser.add_argument("--version", action="version", version=f"telephony {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=None, help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--tools", default=None, help="a .py file or dotted module with @tool functions")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the port (default TELEPHONY_WORKERS or 1; one per core)",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for workers
    serve.set_defaults(func=cmd_serve)

    call = sub.add_parser("call", help="place an outbound call answered by the agent")
    call.add_argument("number", help="E.164 number to call, e.g. +15551234567")
    call.add_argument("--from", dest="from_number", default=None, help="caller ID (default TELEPHONY_FROM_NUMBER)")
    call.add_argument("--instructions", default=None, help="instructions for the agent on this call only")
    call.add_argument("--amd", action="store_true", help="answering-machine detection (default TELEPHONY_AMD)")
    call.add_argument("--voicemail", default=None, help="voicemail message for this call (with --amd)")
    call.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a custom parameter for CallContext.parameters (repeatable)",
    )
    call.set_defaults(func=cmd_call)

    configure = sub.add_parser("configure", help="point a Twilio number's voice webhook at PUBLIC_URL")
    configure.add_argument("--number", required=True, help="the Twilio number, E.164")
    configure.set_defaults(func=cmd_configure)
    sim = sub.add_parser("simulate", help="play a WAV as the caller through the real bridge")
    sim.add_argument("--audio", required=True, help="the caller's recording (any common WAV)")
    sim.add_argument("--tools", default=None, help="a .py file or dotted module with @tool functions")
    sim.add_argument("--offline", action="store_true", help="use the built-in offline simulator, not the API")
    sim.add_argument("--out", default=None, help="where to write what the caller heard (WAV)")
    sim.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="pace of the caller's audio and of playback, x real time (default 1; "
        "more is for quick offline checks: barge-in timing is then approximate)",
    )
    sim.add_argument(
        "--line",
        choices=("speakerphone", "noisy", "backchannel"),
        default=None,
        help="a phone line's impairments (telephony.testing.lines): the agent's echo, noise, "
        "or a 250 ms 'mhm' while the agent answers; prints false barge-ins, ERLE and silences",
    )
    sim.add_argument(
        "--from", dest="from_number", default=None, help="the caller's number the agent sees (default +15550000000)"
    )
    sim.add_argument(
        "--records",
        default=None,
        metavar="PATH",
        help="SQLite file for the simulated call's record (default: beside TELEPHONY_RECORDS_PATH, "
        "calls.db -> calls.simulated.db; '' for none)",
    )
    sim.set_defaults(func=cmd_simulate)

    calls = sub.add_parser("calls", help="list recorded calls, or show one: calls show CALL_SID")
    calls.add_argument("action", nargs="?", choices=["show"], help="show one call's transcript")
    calls.add_argument("sid", nargs="?", help="the call SID for 'show'")
    calls.add_argument("--limit", type=int, default=20)
    calls.add_argument("--offset", type=int, default=0, help="skip the newest N matches")
    calls.add_argument("--number", help="only calls from or to this number")
    calls.add_argument("--outcome", help="only calls that ended so (completed, failed, …)")
    calls.set_defaults(func=cmd_calls)

    tools = sub.add_parser("tools", help="print the tool schemas the model will see (JSON)")
    tools.add_argument("--tools", default=None, help="a .py file or dotted module with @tool functions")
    tools.set_defaults(func=cmd_tools)

    args = parser.parse_args(argv)
    if args.command is None:  # bare `telephony`: the help, and exit 2 as for any usage error
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except Exception:  # a bug or an unexpected failure: the traceback, secrets redacted
        import traceback

        from .logs import RedactSecrets

        sys.stderr.write(RedactSecrets(_SECRETS).clean(traceback.format_exc()))
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
