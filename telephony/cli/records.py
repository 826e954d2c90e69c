"""``telephony calls``: the recorded calls, listed or one shown (transcript,
tools, barge-ins, cost)."""

from __future__ import annotations

import argparse
import asyncio
import builtins
from pathlib import Path
from typing import Any

from .common import die, load_settings

__all__ = ["cmd_calls"]


def cmd_calls(args: argparse.Namespace) -> int:
    import datetime as dt

    from ..errors import ConfigError
    from ..logs import escape_control
    from ..records import CallQuery, CallRecord, open_store

    def print(line: str) -> None:  # what callers said or sent: control characters escaped
        builtins.print(escape_control(line))

    settings = load_settings()
    path = settings.records_path
    if not settings.database_url and path and path != ":memory:" and not Path(path).exists():
        # Opening SQLite would create an empty database here as a side effect.
        if args.action is None:
            print(f"no calls recorded yet: {path} does not exist (TELEPHONY_RECORDS_PATH)")
            return 0
        if args.action != "show" or not args.sid:
            die("usage: telephony calls [--limit N] | telephony calls show CALL_SID")
        die(f"no call {args.sid} in {path}: the file does not exist (TELEPHONY_RECORDS_PATH)")
    try:
        store = open_store(settings)
    except ConfigError as exc:
        die(str(exc))
    if store is None:
        die("call records are off: TELEPHONY_RECORDS_PATH and TELEPHONY_DATABASE_URL are empty")
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
            die(f"cannot read call records from {where}: {type(exc).__name__}: {exc}")

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
        die("usage: telephony calls [--limit N] | telephony calls show CALL_SID")
    found: CallRecord | None = read(lambda st: st.get(args.sid))
    if found is None:
        die(f"no call {args.sid} in {where}")
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
