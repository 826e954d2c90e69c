"""``telephony call`` (an outbound call answered by the agent) and ``telephony
configure`` (point a Twilio number at this server): the Twilio REST commands."""

from __future__ import annotations

import argparse
import asyncio

from .common import die, load_settings

__all__ = ["cmd_call", "cmd_configure"]


def _params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            die(f"--param takes key=value, got {pair!r}")
        out[key] = value
    return out


def cmd_call(args: argparse.Namespace) -> int:
    from ..errors import TelephonyError
    from ..io.twilio.outbound import place_call

    settings = load_settings()
    if not (args.from_number or settings.from_number):
        die("no caller ID: set TELEPHONY_FROM_NUMBER (a number of your Twilio account, E.164) or pass --from +1…")
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
        die(str(exc))
    print(f"calling {args.number}: call {sid}")
    return 0


def cmd_configure(args: argparse.Namespace) -> int:
    from ..errors import TelephonyError
    from ..io.twilio.outbound import configure_number

    settings = load_settings()
    try:
        changes = asyncio.run(configure_number(args.number, settings=settings))
    except TelephonyError as exc:
        die(str(exc))
    if not changes:
        print(f"{args.number} already points at {settings.public_url}: nothing changed")
    for name, (old, new) in changes.items():
        print(f"{args.number} {name}: {old or '(unset)'} -> {new}")
    return 0
