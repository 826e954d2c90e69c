"""``telephony simulate``: a WAV as the caller through the real bridge, against
the API or the offline simulator."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .common import build_setup, die, load_settings

__all__ = ["cmd_simulate"]


def _simulated_records(path: str) -> str:
    """Where ``simulate`` records its calls by default: beside the real records
    (``calls.db`` -> ``calls.simulated.db``), never in them."""
    if not path or path == ":memory:":
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}.simulated{p.suffix}"))


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..audio.wav import WavError, read_wav
    from ..logs import setup_logging
    from ..simulate import simulate

    if not args.speed > 0:  # also refuses NaN
        die(f"--speed must be more than 0 (x real time), got {args.speed}")
    settings = load_settings()
    # Simulated calls stay out of the real records (SQLite or PostgreSQL) unless --records says where.
    records = args.records if args.records is not None else _simulated_records(settings.records_path)
    settings = settings.model_copy(update={"records_path": records, "database_url": None})
    if not args.offline and (settings.openai_api_key is None or not settings.openai_api_key.get_secret_value()):
        die("OPENAI_API_KEY is not set (or use --offline for the built-in offline simulator)")
    try:
        read_wav(args.audio)
    except WavError as exc:
        die(str(exc))
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
