"""Load benchmark: N concurrent simulated calls against one server process,
ours (`telephony serve`) and a minimal pass-through bridge, side by side.

    python -m benchmarks.load                      # N = 10 50 100 200, 20 s calls, 3 rounds
    python -m benchmarks.load --together           # both bridges at the same moment, ratio per round
    python -m benchmarks.load --calls 50 --seconds 30 --rounds 1 --bridges ours
    python -m benchmarks.load --together --baseline origin/main   # and main's `telephony serve` too
    python -m benchmarks.load --together --bridges ours ours-pg --database-url postgresql://…
    TELEPHONY_ECHO_CANCELLATION=true python -m benchmarks.load --together --echo   # callers on speakerphone
    python -m benchmarks.load --calls 50 --rounds 1 --together --profile /tmp/prof   # where the CPU goes

`--baseline REV` adds a third bridge, "baseline": `telephony serve` as of git
revision REV, checked out for the run into a throwaway `git worktree` (removed
at the end, also on error or Ctrl-C) and started with the same command as ours
from that checkout (cwd and PYTHONPATH set to it; the venv's dependencies are
shared). The server reports where it imported `telephony` from, and the run
stops if that is not the checkout. The baseline speaks ours' protocol (PCM16
24 kHz to the model). Alternating rounds rotate through all selected bridges;
`--together` runs them all at once and gives ours / each other bridge's CPU,
round by round.

`--database-url URL` adds "ours-pg": ours with its call records in PostgreSQL
(``TELEPHONY_DATABASE_URL``) instead of SQLite, to compare the two stores.

Each call: caller audio in at real-time pace (20 ms mu-law frames); every 3 s
of caller audio the fake agent answers with 1.5 s of audio in 100 ms deltas
sent at 5x real time; the fake Twilio plays audio in real time and echoes marks
when played. The fake Realtime server and the fake Twilio clients run in this
process; the bridge runs in its own process, measured from /proc:

* CPU ms per call-second of the server process (user + system) over the steady window
* RSS per call: (RSS with N calls - RSS idle) / N
* added latency per inbound frame: Twilio frame sent -> Realtime append received
* added latency per outbound chunk: Realtime delta sent -> Twilio media received
* calls that lost audio: caller bytes or agent bytes that did not arrive exactly

``--echo``: every caller is on speakerphone (the test kit's SPEAKERPHONE line):
what the fake Twilio plays (the agent's audio, by its playback clock, cleared
on ``clear``) comes back in the caller's audio 150 ms later, 10 dB down,
through a 40 ms room. Without it the caller audio never contains the agent's
voice, so an echo canceller finds nothing to cancel.

``--profile DIR``: py-spy (``pip install py-spy``) samples each server over the
steady window, without pausing it, into ``DIR/<bridge>-n<N>-<k>.raw`` (py-spy's
collapsed stacks: one line per stack and its count). The sampler takes CPU of
its own: take the CPU figures from a run without it.

Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from telephony.audio import ModelToCaller
from telephony.audio.g711 import INT16_TO_ULAW, ULAW_TO_INT
from telephony.testing import lines
from tests.audio_data import agent_pcm24, caller_ulaw

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
RESPOND_EVERY_S = 3.0
ANSWER_S = 1.5
DELTA_MS = 100


def _caller_frames() -> list[str]:
    ulaw = caller_ulaw()
    return [base64.b64encode(ulaw[i : i + 160]).decode() for i in range(0, len(ulaw) - 160, 160)]


_SPEAKER = lines.SPEAKERPHONE
_ECHO_DELAY_MS = _SPEAKER.echo_delay_ms or 0.0
_ECHO_DELAY = round(_ECHO_DELAY_MS * 8)  # samples to the echo's direct path
_ECHO_ROOM = lines.room_response(_ECHO_DELAY_MS, _SPEAKER.room_ms, seed=_SPEAKER.seed)[_ECHO_DELAY:]
_ECHO_GAIN = 10 ** (-_SPEAKER.echo_level_db / 20)


class _Speakerphone:
    """What one fake caller hears, on the playback clock, and its echo in their audio."""

    def __init__(self, seconds: float) -> None:
        self.played = np.zeros(int((seconds + 5) * 8000))
        self.caller = ULAW_TO_INT.astype(np.float64)[np.frombuffer(caller_ulaw(), np.uint8)]

    def play(self, ulaw: bytes, at_s: float) -> None:
        i = max(0, round(at_s * 8000))
        chunk = ULAW_TO_INT[np.frombuffer(ulaw, np.uint8)][: max(0, self.played.size - i)]
        self.played[i : i + chunk.size] = chunk

    def clear(self, at_s: float) -> None:
        self.played[max(0, round(at_s * 8000)) :] = 0.0  # queued, never heard

    def frame(self, k: int) -> str:
        """Caller frame ``k``: their voice plus the echo of what played ~150 ms before."""
        n = len(self.caller) - len(self.caller) % 160
        at = (k * 160) % (n - 160)
        start = k * 160 - _ECHO_DELAY - (_ECHO_ROOM.size - 1)
        span = np.zeros(160 + _ECHO_ROOM.size - 1)
        lo = max(0, start)
        part = self.played[lo : k * 160 - _ECHO_DELAY + 160] if k * 160 - _ECHO_DELAY + 160 > 0 else span[:0]
        span[lo - start : lo - start + part.size] = part
        mixed = self.caller[at : at + 160] + np.convolve(span, _ECHO_ROOM, "valid") * _ECHO_GAIN
        pcm = np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)
        return base64.b64encode(INT16_TO_ULAW[pcm.view(np.uint16)].tobytes()).decode()


AGENT_PCM = agent_pcm24()[: int(24000 * ANSWER_S)].tobytes()
_m = ModelToCaller()
AGENT_ULAW = (_m.convert(AGENT_PCM) + _m.flush())[: int(8000 * ANSWER_S)]


@dataclass
class CallStats:
    pcm: bool  # PCM16 24 kHz to the model (ours and the baseline), else mu-law pass-through
    frame_times: collections.deque = field(default_factory=collections.deque)
    delta_times: collections.deque = field(default_factory=collections.deque)
    in_latency: list[float] = field(default_factory=list)
    out_latency: list[float] = field(default_factory=list)
    frames_sent: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    expected_out: int = 0
    since_answer: int = 0
    session_closed: asyncio.Event = field(default_factory=asyncio.Event)
    ends_at: float = 0.0

    @property
    def frame_bytes(self) -> int:
        return 960 if self.pcm else 160


def _b64len(s: str) -> int:
    return len(s) * 3 // 4 - (2 if s.endswith("==") else 1 if s.endswith("=") else 0)


class Load:
    def __init__(self, pcm: bool, echo: bool = False) -> None:
        self.pcm = pcm
        self.echo = echo
        self.calls: dict[str, CallStats] = {}
        self.frames = _caller_frames()

    # --- the fake Realtime side -------------------------------------------------------

    async def realtime(self, ws) -> None:
        await ws.send('{"type":"session.created","event_id":"e0","session":{"id":"s","type":"realtime"}}')
        call: CallStats | None = None
        tasks = set()
        try:
            async for message in ws:
                now = time.perf_counter()
                ev = orjson.loads(message)
                kind = ev["type"]
                if kind == "input_audio_buffer.append" and call is not None:
                    n = _b64len(ev["audio"])
                    call.in_bytes += n
                    frames = n // call.frame_bytes
                    for _ in range(frames):
                        sent = call.frame_times.popleft() if call.frame_times else None
                    if frames == 1 and sent is not None:  # merged appends (held audio) are not latency
                        call.in_latency.append(now - sent)
                    call.since_answer += frames
                    if call.since_answer * 0.02 >= RESPOND_EVERY_S and time.monotonic() + 1.0 < call.ends_at:
                        call.since_answer = 0
                        t = asyncio.get_running_loop().create_task(self.answer(ws, call))
                        tasks.add(t)
                        t.add_done_callback(tasks.discard)
                elif kind == "session.update":
                    call = self.calls[ev["session"]["instructions"]]
                    await ws.send('{"type":"session.updated","event_id":"e1","session":{}}')
        except Exception:
            pass
        finally:
            for t in tasks:
                t.cancel()
            if call is not None:
                call.session_closed.set()

    async def answer(self, ws, call: CallStats) -> None:
        audio = AGENT_PCM if call.pcm else AGENT_ULAW
        chunk = 4800 if call.pcm else 800
        await ws.send(
            '{"type":"response.created","event_id":"e","response":{"id":"r","object":"realtime.response",'
            '"status":"in_progress","output":[]}}'
        )
        head = (
            '{"type":"response.output_audio.delta","event_id":"e","response_id":"r",'
            f'"item_id":"i{id(call)}","output_index":0,"content_index":0,"delta":"'
        )
        for i in range(0, len(audio), chunk):
            piece = audio[i : i + chunk]
            call.delta_times.append(time.perf_counter())
            await ws.send(head + base64.b64encode(piece).decode() + '"}')
            await asyncio.sleep(DELTA_MS / 1000 / 5)
        call.expected_out += ((len(audio) // 2 - 1 + 102) // 3 + 1) if call.pcm else len(audio)
        await ws.send(
            '{"type":"response.output_audio.done","event_id":"e","response_id":"r",'
            f'"item_id":"i{id(call)}","output_index":0,"content_index":0}}'
        )
        await ws.send(
            '{"type":"response.done","event_id":"e","response":{"id":"r","object":"realtime.response",'
            '"status":"completed","output":[]}}'
        )

    # --- the fake Twilio side ---------------------------------------------------------

    async def twilio(self, url: str, name: str, seconds: float) -> None:
        call = self.calls[name] = CallStats(self.pcm)
        loop = asyncio.get_running_loop()
        call.ends_at = time.monotonic() + seconds
        sid = f"MZ{abs(hash(name)):032x}"[:34]
        async with connect(url, compression=None, max_size=None) as ws:
            await ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
            await ws.send(
                orjson.dumps(
                    {
                        "event": "start",
                        "sequenceNumber": "1",
                        "streamSid": sid,
                        "start": {
                            "streamSid": sid,
                            "callSid": "CA" + sid[2:],
                            "accountSid": "AC",
                            "tracks": ["inbound"],
                            "customParameters": {"instructions": name},
                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                        },
                    }
                ).decode()
            )
            queue_end = [0.0]
            speaker = _Speakerphone(seconds) if self.echo else None
            t0 = loop.time()

            async def receive() -> None:
                async for message in ws:
                    now = time.perf_counter()
                    ev = orjson.loads(message)
                    kind = ev["event"]
                    if kind == "media":
                        n = _b64len(ev["media"]["payload"])
                        call.out_bytes += n
                        if call.delta_times:
                            call.out_latency.append(now - call.delta_times.popleft())
                        t = loop.time()
                        if speaker is not None:
                            speaker.play(base64.b64decode(ev["media"]["payload"]), max(t, queue_end[0]) - t0)
                        queue_end[0] = max(t, queue_end[0]) + n / 8000
                    elif kind == "mark":
                        text = orjson.dumps({"event": "mark", "streamSid": sid, "mark": ev["mark"]}).decode()
                        loop.call_at(max(loop.time(), queue_end[0]), _send_later, loop, ws, text)
                    elif kind == "clear":
                        queue_end[0] = loop.time()
                        if speaker is not None:
                            speaker.clear(queue_end[0] - t0)

            reader = loop.create_task(receive())
            head = (
                '{"event":"media","sequenceNumber":"%d","streamSid":"'
                + sid
                + '","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"'
            )
            total = int(seconds / 0.02)
            for k in range(total):
                delay = t0 + k * 0.02 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # real-time pacing of the caller
                frame = self.frames[k % len(self.frames)] if speaker is None else speaker.frame(k)
                call.frame_times.append(time.perf_counter())
                await ws.send(head % (k + 2, k + 1, k * 20) + frame + '"}}')
                call.frames_sent += 1
            await ws.send('{"event":"stop","sequenceNumber":"0","streamSid":"' + sid + '","stop":{}}')
            try:
                await asyncio.wait_for(call.session_closed.wait(), 10)
            except TimeoutError:
                pass
            reader.cancel()


def _send_later(loop: asyncio.AbstractEventLoop, ws: Any, text: str) -> None:
    loop.create_task(_send(ws, text))


async def _send(ws, text: str) -> None:
    try:
        await ws.send(text)
    except Exception:
        pass


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _rss_kb(pid: int) -> int:
    m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


# `python -m telephony`, after one line saying where the package was imported from:
# the baseline must run the code of its checkout, not ours (installed in the venv).
_SERVE = (
    "import runpy, telephony; print('telephony: imported from', telephony.__file__, flush=True); "
    "runpy.run_module('telephony', run_name='__main__', alter_sys=True)"
)


async def _start_server(
    bridge: str, fake_url: str, records: str, baseline: Path | None = None, database_url: str | None = None
):
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-load",
        "OPENAI_BASE_URL": fake_url,
        "TELEPHONY_TRANSCRIPTION_MODEL": "",
        "TELEPHONY_RECORDS_PATH": records,
        "TELEPHONY_MAX_CALLS": "5000",
        "TELEPHONY_QUIET_TIMEOUT": "60",
    }
    env.pop("TWILIO_AUTH_TOKEN", None)
    if bridge == "ours-pg":
        assert database_url
        env["TELEPHONY_DATABASE_URL"] = database_url
    cwd = ROOT
    if bridge == "passthrough":
        cmd = [sys.executable, "-m", "benchmarks.passthrough", "--port", "0"]
    else:
        cmd = [sys.executable, "-c", _SERVE, "serve", "--host", "127.0.0.1", "--port", "0"]
        if bridge == "baseline":
            assert baseline is not None
            cwd = baseline
            env["PYTHONPATH"] = str(baseline)
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        imported, port = await asyncio.wait_for(_started(proc), 30)
        # ours must run this tree's code and the baseline its checkout's, else stop here
        if bridge != "passthrough" and not (imported and Path(imported).resolve().is_relative_to(cwd.resolve())):
            raise RuntimeError(f"{bridge}: the server imported telephony from {imported}, not from {cwd}")
    except BaseException:
        await _stop(proc)
        raise
    return proc, port


async def _started(proc) -> tuple[str | None, int]:
    """The server's start-up lines on stdout, up to "listening on ...:PORT": (where
    telephony was imported from, PORT)."""
    imported = None
    while raw := await proc.stdout.readline():
        line = raw.decode().strip()
        if line.startswith("telephony: imported from "):
            imported = line.removeprefix("telephony: imported from ")
        elif m := re.search(r"listening on \S*:(\d+)", line):
            return imported, int(m.group(1))
    raise RuntimeError(f"{proc.pid}: the server exited before listening (exit code {await proc.wait()})")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def run(
    bridges: list[str],
    n: int,
    seconds: float,
    baseline: Path | None = None,
    database_url: str | None = None,
    echo: bool = False,
    profile: Path | None = None,
) -> list[dict[str, float]]:
    """N calls against each bridge in ``bridges`` ("ours", "passthrough", "baseline":
    the checkout at ``baseline``, "ours-pg": ours on PostgreSQL at ``database_url``), all at the same time when there are several, so
    that they see the same machine at the same moment."""
    async with contextlib.AsyncExitStack() as stack:
        loads, procs, urls = [], [], []
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        for k, bridge in enumerate(bridges):
            load = Load(pcm=bridge != "passthrough", echo=echo)
            fake = await stack.enter_async_context(
                serve(load.realtime, "127.0.0.1", 0, compression=None, max_size=None)
            )
            fake_url = f"http://127.0.0.1:{fake.sockets[0].getsockname()[1]}/v1"
            proc, port = await _start_server(bridge, fake_url, str(Path(tmp) / f"calls{k}.db"), baseline, database_url)
            stack.push_async_callback(_stop, proc)
            loads.append(load)
            procs.append(proc)
            urls.append(f"ws://127.0.0.1:{port}/media-stream")
        await asyncio.sleep(1.0)  # let the idle servers settle before the baseline
        rss_idle = [_rss_kb(p.pid) for p in procs]
        ramp = min(2.0, n * 0.01)
        tasks = []
        for i in range(n):
            for load, url in zip(loads, urls, strict=True):
                tasks.append(asyncio.create_task(load.twilio(url, f"call-{i}", seconds)))
            await asyncio.sleep(ramp / n)  # staggered starts, as real calls arrive
        await asyncio.sleep(1.0)
        cpu0, t0 = [_cpu_s(p.pid) for p in procs], time.monotonic()
        window = max(1.0, seconds - ramp - 2.5)
        spies = [await _profile(profile, bridge, n, p.pid, window) for bridge, p in zip(bridges, procs, strict=True)]
        rss_peak = [0] * len(procs)
        end = t0 + window
        while time.monotonic() < end:
            rss_peak = [max(r, _rss_kb(p.pid)) for r, p in zip(rss_peak, procs, strict=True)]
            await asyncio.sleep(0.5)
        cpu1, t1 = [_cpu_s(p.pid) for p in procs], time.monotonic()
        for spy in spies:
            if spy is not None:
                await asyncio.wait_for(spy.wait(), 30)
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), seconds + 30)
    results = []
    for k, load in enumerate(loads):
        calls = list(load.calls.values())
        in_lat = [x for c in calls for x in c.in_latency]
        out_lat = [x for c in calls for x in c.out_latency]
        lost = sum(1 for c in calls if c.in_bytes != c.frames_sent * c.frame_bytes or c.out_bytes != c.expected_out)
        results.append(
            {
                "cpu_ms_per_call_s": (cpu1[k] - cpu0[k]) * 1000 / (n * (t1 - t0)),
                "cpu_cores": (cpu1[k] - cpu0[k]) / (t1 - t0),
                "rss_per_call_kb": (rss_peak[k] - rss_idle[k]) / n,
                "in_p50": _pct(in_lat, 0.5),
                "in_p99": _pct(in_lat, 0.99),
                "out_p50": _pct(out_lat, 0.5),
                "out_p99": _pct(out_lat, 0.99),
                "lost": lost,
                "frames": sum(c.frames_sent for c in calls),
                "answers": sum(c.expected_out > 0 for c in calls),
            }
        )
    return results


async def _profile(profile: Path | None, bridge: str, n: int, pid: int, seconds: float):
    """Start py-spy on ``pid`` for ``seconds`` (None without ``--profile``)."""
    if profile is None:
        return None
    k = len(list(profile.glob(f"{bridge}-n{n}-*.raw")))
    out = profile / f"{bridge}-n{n}-{k}.raw"
    return await asyncio.create_subprocess_exec(
        _py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "250",
        "--nonblocking", "--format", "raw", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


async def _stop(proc) -> None:
    if proc.returncode is None:
        proc.terminate()
        proc.terminate()
    await proc.wait()


def _row(bridge: str, n: int, runs: list[dict[str, float]]) -> str:
    cpu = sorted(r["cpu_ms_per_call_s"] for r in runs)
    med = statistics.median(cpu)
    spread = f" ({cpu[0]:.2f}-{cpu[-1]:.2f})" if len(cpu) > 1 else ""
    best = min(runs, key=lambda r: abs(r["cpu_ms_per_call_s"] - med))  # the median run's other figures
    lost = max(r["lost"] for r in runs)
    return (
        f"| {bridge} | {n} | {med:.2f}{spread} | {statistics.median(r['cpu_cores'] for r in runs):.2f} "
        f"| {best['rss_per_call_kb']:.0f} KB | {best['in_p50']:.2f} / {best['in_p99']:.2f} ms "
        f"| {best['out_p50']:.2f} / {best['out_p99']:.2f} ms | {lost} / {n} |"
    )


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def _checkout(rev: str) -> Iterator[tuple[Path, str]]:
    """A throwaway detached worktree of this repository at ``rev``: (its path, the commit)."""
    found = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        raise SystemExit(f"--baseline: {rev!r} is not a commit of {ROOT}")
    commit = found.stdout.strip()
    path = Path(tempfile.mkdtemp(prefix="telephony-baseline-"))
    try:
        added = _git("worktree", "add", "--detach", str(path), commit)
        if added.returncode != 0:
            raise SystemExit(f"--baseline: git worktree add failed: {added.stderr.strip()}")
        yield path, commit
    finally:
        removed = _git("worktree", "remove", "--force", str(path))
        if removed.returncode != 0 and path.exists():
            print(f"warning: could not remove the baseline worktree {path}: {removed.stderr.strip()}", file=sys.stderr)
        shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="runs per bridge and N, alternating bridges; the table shows the median (min-max)",
    )
    parser.add_argument(
        "--bridges",
        nargs="+",
        default=["ours", "passthrough"],
        choices=["ours", "passthrough", "baseline", "ours-pg"],
        help="baseline: `telephony serve` from --baseline REV (added when --baseline is given); "
        "ours-pg: ours with records in PostgreSQL (added when --database-url is given)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="also run ours with TELEPHONY_DATABASE_URL=URL (records in PostgreSQL), as 'ours-pg'",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run `telephony serve` as of this git revision (e.g. origin/main), as 'baseline'",
    )
    parser.add_argument(
        "--echo",
        action="store_true",
        help="callers on speakerphone: what they hear comes back in their audio (150 ms, 10 dB down, a room)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="sample each server with py-spy over the steady window into DIR (CPU figures are then not comparable)",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="run all selected bridges at the same time (N calls each) instead of alternating",
    )
    args = parser.parse_args()
    args.bridges = list(dict.fromkeys(args.bridges))
    if args.baseline and "baseline" not in args.bridges:
        args.bridges.append("baseline")
    if "baseline" in args.bridges and not args.baseline:
        parser.error("the baseline bridge needs --baseline REV")
    if args.database_url and "ours-pg" not in args.bridges:
        args.bridges.append("ours-pg")
    if "ours-pg" in args.bridges and not args.database_url:
        parser.error("the ours-pg bridge needs --database-url URL")
    if args.profile is not None:
        if not Path(_py_spy()).exists():
            parser.error("--profile needs py-spy: pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
    # SIGTERM unwinds like Ctrl-C: the servers are stopped and the baseline worktree removed
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.ExitStack() as stack:
        baseline = None
        if args.baseline:
            baseline, commit = stack.enter_context(_checkout(args.baseline))
        at_once = "both bridges at once" if len(args.bridges) <= 2 else f"all {len(args.bridges)} bridges at once"
        print(
            f"{os.cpu_count()} cores, python {sys.version.split()[0]}; {args.seconds:g} s calls; "
            f"answer {ANSWER_S:g} s every {RESPOND_EVERY_S:g} s of caller audio; {args.rounds} rounds, "
            f"{at_once if args.together else 'alternating'}"
            + ("; callers on speakerphone (echo 150 ms later, 10 dB down, 40 ms room)" if args.echo else "")
            + (
                f"; TELEPHONY_ECHO_CANCELLATION={os.environ['TELEPHONY_ECHO_CANCELLATION']}"
                if os.environ.get("TELEPHONY_ECHO_CANCELLATION")
                else ""
            )
        )
        if baseline is not None:
            print(f"baseline: telephony serve at {commit[:10]} ({args.baseline}), checked out in {baseline}")
        print()
        return _table(args, baseline)


def _table(args: argparse.Namespace, baseline: Path | None) -> int:
    print(
        "| bridge | N | CPU ms / call-s, median (min-max) | server CPU (cores) | RSS / call | in p50 / p99 "
        "| out p50 / p99 | calls that lost audio (worst round) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    others = [b for b in args.bridges if b != "ours"] if "ours" in args.bridges else []
    ratios: dict[str, list[str]] = {b: [] for b in others}
    for n in args.calls:
        runs: dict[str, list[dict[str, float]]] = {b: [] for b in args.bridges}
        for _ in range(args.rounds):
            if args.together:
                results = asyncio.run(
                    run(args.bridges, n, args.seconds, baseline, args.database_url, args.echo, args.profile)
                )
                for bridge, r in zip(args.bridges, results, strict=True):
                    runs[bridge].append(r)
                continue
            for bridge in args.bridges:  # rotate, so slow drifts of the machine hit all alike
                runs[bridge].append(
                    asyncio.run(run([bridge], n, args.seconds, baseline, args.database_url, args.echo, args.profile))[0]
                )
        for bridge in args.bridges:
            print(_row(bridge, n, runs[bridge]), flush=True)
        for other in others:
            pairs = [
                o["cpu_ms_per_call_s"] / p["cpu_ms_per_call_s"] for o, p in zip(runs["ours"], runs[other], strict=True)
            ]
            ratios[other].append(f"N = {n}: {statistics.median(pairs):.2f} ({min(pairs):.2f}-{max(pairs):.2f})")
    if ratios:
        print()
    for other, parts in ratios.items():
        label = "pass-through" if other == "passthrough" else other
        print(f"ours / {label} CPU, round by round, median (min-max): " + "; ".join(parts))
    print(
        "\nCPU: user + system time of the server process over the steady window, per call-second. "
        "latency: added by the bridge, measured in the load process (frame sent -> append received; "
        "delta sent -> media received), so it includes the load generator's own queueing at high N; "
        "shown for the round nearest the median"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
