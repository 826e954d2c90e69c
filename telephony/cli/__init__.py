"""The ``telephony`` command: the parser here, each command group in its own
module (``serve``, ``twilio``: call and configure, ``records``: calls,
``simulate``), what they share in ``common``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .common import SECRETS, build_registry, build_setup, check_records_path, load_settings
from .records import cmd_calls
from .serve import cmd_serve
from .simulate import cmd_simulate
from .twilio import cmd_call, cmd_configure

__all__ = ["build_registry", "build_setup", "check_records_path", "main"]


def cmd_tools(args: argparse.Namespace) -> int:
    """The ``session.tools`` the model is given: one list, or one per agent."""
    import json

    from ..io.services import Services

    settings = load_settings()
    registry, agents = build_setup(settings, args.tools)

    async def never(*_: Any, **__: Any) -> Any:  # nothing is connected: schemas only
        raise RuntimeError("not connected")

    services = Services(settings, registry, connect_realtime=never, agents=agents)
    shown: Any = services.tool_schemas
    if agents is not None:
        shown = {name: services.agent_tools(name) for name in agents.by_name}
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from .. import __version__

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

        from ..logs import RedactSecrets

        sys.stderr.write(RedactSecrets(SECRETS).clean(traceback.format_exc()))
        return 1
    return code
