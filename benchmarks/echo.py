"""Echo canceller benchmark: ours vs SpeexDSP's and WebRTC's, side by side.

    python -m benchmarks.echo            # the full table (about a minute)
    python -m benchmarks.echo --quick    # ours only, fewer cases

Signals: the agent's voice (telephony/testing/data, through the bridge's own
24 -> 8 kHz path and mu-law: exactly what the caller is played) is the
reference; the caller's line carries its echo (``telephony.testing.lines.echo``:
a delay, a 40 ms room, 6-20 dB below the agent), light noise (-65 dBFS) and,
for double talk, the caller's own voice (tests/data), all mu-law coded as
Twilio delivers it. Each canceller sees 20 ms frames, the reference frame
first, as the bridge will feed it.

ERLE is the echo's energy over the residual echo's, where the residual echo is
the output minus everything in the line that is not echo (the caller, noise and
mu-law's rounding of both): 10 log10(sum echo² / sum (out - (line - echo))²),
over [1 s, 2 s) and [3 s, 4 s) of the agent's speech. Convergence: the first
time the ERLE over the next 500 ms reaches 30 dB. Double talk: the caller talks
from 3 s on over the agent (echo 150 ms, 12 dB down); the correlation of the
output with the caller's clean voice over that span. No echo: the agent plays
but nothing comes back; the change the canceller makes to the caller's voice,
10 log10(sum (out - line)² / sum line²). µs/frame: mean per 20 ms frame of the
calling thread's CPU time (ours makes no threaded BLAS call) while the agent speaks (echo 150 ms, 12 dB): over the whole
6.7 s, and after 3 s.

A second table gives the CPU over a 10 s call where the agent answers 1.5 s
every 3 s (the load benchmark's pattern): on a speakerphone line (echo 150 ms,
12 dB down) and on a line without echo where the caller talks throughout (what
the load benchmark sends); mean µs per 20 ms frame over all frames, and the
slowest frame.

The libraries (optional; ``pip install pyaec livekit`` to include them):
``pyaec`` wraps SpeexDSP's MDF canceller (through aec-rs, ctypes); ``livekit``
ships WebRTC's audio processing module (AEC3) in its FFI library.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from telephony.audio import ModelToCaller
from telephony.audio.echo import EchoCanceller
from telephony.audio.g711 import ULAW_TO_INT
from telephony.testing import lines
from tests.audio_data import agent_pcm24, caller_pcm8

RATE = 8000
FRAME = 160
NOISE_DBFS = -65.0
DOUBLE_TALK_AT_S = 3.0

# --- signals -------------------------------------------------------------------------


@functools.cache
def agent_played() -> np.ndarray:
    """The agent's voice as the caller is played it: 8 kHz, mu-law decoded."""
    ulaw = ModelToCaller().convert(agent_pcm24().tobytes())
    out: np.ndarray = ULAW_TO_INT[np.frombuffer(ulaw, np.uint8)]
    return out


@dataclass(frozen=True)
class Case:
    played: np.ndarray  # the reference
    line: np.ndarray  # what the caller's line sends (mu-law decoded)
    echo: np.ndarray  # the clean echo in it (zeros when none)
    caller: np.ndarray  # the caller's clean voice in it (zeros when none)


def make_case(delay_ms: float | None, level_db: float = 12.0, *, talk_at_s: float | None = None, seed: int = 0) -> Case:
    played = agent_played()
    n = played.shape[0]
    echo = lines.echo(played, delay_ms, level_db, seed=seed) if delay_ms is not None else np.zeros(n, np.int16)
    caller = np.zeros(n, np.int16)
    if talk_at_s is not None:
        caller = lines.insert(caller, caller_pcm8(), talk_at_s * 1000)
    line = lines.mix(echo, caller, lines.noise(n, NOISE_DBFS, seed=seed + 1))
    n -= n % FRAME
    line = lines.from_ulaw(lines.to_ulaw(line))  # Twilio's mu-law
    return Case(played[:n], line[:n], echo[:n], caller[:n])


# --- the candidates: feed(reference frame, line frame) -> output frame -------------------


class Ours:
    name = "ours (numpy, 400 ms tail, 32 ms filter)"

    def __init__(self) -> None:
        self.aec = EchoCanceller(tail_ms=400)

    def __call__(self, ref: np.ndarray, mic: np.ndarray) -> np.ndarray:
        self.aec.played(ref)
        return self.aec.process(mic)

    def ulaw(self, ref: bytes, mic: bytes, silent: bool) -> np.ndarray | None:
        """As the bridge feeds it (``call.aec.EchoPath``): mu-law codes, no reference
        while the caller hears silence, nothing at all while it is idle."""
        if not silent:
            self.aec.played_ulaw(ref)
        elif self.aec.idle:
            return None
        return self.aec.process_ulaw(mic)


class Speex:
    """SpeexDSP's MDF (two filters, learning rate from its double-talk estimate),
    through pyaec's ctypes binding called with numpy buffers (its list-based
    wrapper would triple the cost)."""

    def __init__(self, preprocess: bool = False) -> None:
        self.lib = importlib.import_module("pyaec").lib
        self.handle = self.lib.AecNew(FRAME, 3200, RATE, preprocess)
        self.out = np.zeros(FRAME, np.int16)
        self.name = "speexdsp MDF 400 ms (pyaec)" + (" + preprocess" if preprocess else "")

    def __call__(self, ref: np.ndarray, mic: np.ndarray) -> np.ndarray:
        p = ctypes.POINTER(ctypes.c_int16)
        mic = np.ascontiguousarray(mic, np.int16)
        ref = np.ascontiguousarray(ref, np.int16)
        self.lib.AecCancelEcho(
            self.handle, mic.ctypes.data_as(p), ref.ctypes.data_as(p), self.out.ctypes.data_as(p), FRAME
        )
        return self.out

    def __del__(self) -> None:
        if getattr(self, "handle", None):
            self.lib.AecDestroy(self.handle)


class WebRtc:
    """WebRTC's APM (AEC3) from livekit's FFI library: 10 ms frames, so two per 20 ms."""

    name = "webrtc AEC3 (livekit APM)"

    def __init__(self) -> None:
        self.rtc = importlib.import_module("livekit.rtc")
        self.apm = self.rtc.AudioProcessingModule(echo_cancellation=True)
        self.out = np.zeros(FRAME, np.int16)

    def __call__(self, ref: np.ndarray, mic: np.ndarray) -> np.ndarray:
        half = FRAME // 2
        for i in (0, half):
            r = self.rtc.AudioFrame(np.ascontiguousarray(ref[i : i + half], np.int16).tobytes(), RATE, 1, half)
            self.apm.process_reverse_stream(r)
            m = self.rtc.AudioFrame(np.ascontiguousarray(mic[i : i + half], np.int16).tobytes(), RATE, 1, half)
            self.apm.set_stream_delay_ms(0)
            self.apm.process_stream(m)
            self.out[i : i + half] = np.frombuffer(m.data, np.int16)
        return self.out


def half_speaking_call(echo: bool, seconds: int = 10) -> Case:
    """The agent answers 1.5 s every 3 s (successive parts of its voice); with
    ``echo`` the line carries it back (150 ms, 12 dB down), else the caller talks
    throughout and nothing comes back."""
    voice = agent_played()
    n = seconds * RATE
    played = np.zeros(n, np.int16)
    answer = 3 * RATE // 2
    for k, at in enumerate(range(0, n, 3 * RATE)):
        part = voice[(k * answer) % (voice.shape[0] - answer) :][:answer]
        played[at : at + answer] = part[: n - at]
    if echo:
        line_echo = lines.echo(played, 150, 12)
        caller = np.zeros(n, np.int16)
    else:
        line_echo = np.zeros(n, np.int16)
        caller = np.resize(caller_pcm8(), n)
    line = lines.from_ulaw(lines.to_ulaw(lines.mix(line_echo, caller, lines.noise(n, NOISE_DBFS, seed=1))))
    return Case(played, line, line_echo, caller)


def candidates(quick: bool) -> list[Callable[[], Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
    found: list[Callable[[], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = [Ours]
    if quick:
        return found
    try:
        importlib.import_module("pyaec")

        found += [Speex, lambda: Speex(preprocess=True)]
    except Exception:
        print("(pyaec not installed: no SpeexDSP rows)", file=sys.stderr)
    try:
        importlib.import_module("livekit.rtc")

        found.append(WebRtc)
    except Exception:
        print("(livekit not installed: no WebRTC row)", file=sys.stderr)
    return found


# --- measures ----------------------------------------------------------------------


def run(canceller: Callable[[np.ndarray, np.ndarray], np.ndarray], case: Case) -> tuple[np.ndarray, np.ndarray]:
    """The canceller's output over the case and the µs each frame took."""
    out = np.zeros(case.line.shape[0], np.int16)
    spent = np.zeros(case.line.shape[0] // FRAME)
    ulaw = getattr(canceller, "ulaw", None)  # ours takes mu-law, as the line and the bridge have it
    played, line = lines.to_ulaw(case.played), lines.to_ulaw(case.line)
    silent = np.logical_not(case.played[: spent.shape[0] * FRAME].reshape(-1, FRAME).any(axis=1))
    for j, i in enumerate(range(0, case.line.shape[0], FRAME)):
        # CPU time of this thread (the machine may be shared): OpenBLAS threads woken by
        # the measures between runs spin for a while and would count in process time.
        t0 = time.thread_time()
        if ulaw is not None:
            cleaned = ulaw(played[i : i + FRAME], line[i : i + FRAME], silent[j])
            out[i : i + FRAME] = case.line[i : i + FRAME] if cleaned is None else cleaned
        else:
            out[i : i + FRAME] = canceller(case.played[i : i + FRAME], case.line[i : i + FRAME])
        spent[j] = time.thread_time() - t0
    return out, spent * 1e6


def latency(case: Case, out: np.ndarray) -> int:
    """The output's delay behind the line in samples (0-400), by cross-correlation:
    some cancellers hold audio back (a frame, or a resampler's delay). The
    measures below are taken on the output moved back by it."""
    o, d = out.astype(np.float64), case.line.astype(np.float64)
    return max(range(401), key=lambda lag: float(np.dot(o[lag:], d[: d.shape[0] - lag])))


def aligned(out: np.ndarray, lag: int) -> np.ndarray:
    return np.concatenate([out[lag:], np.zeros(lag, out.dtype)]) if lag else out


def erle_db(case: Case, out: np.ndarray, start_s: float, seconds: float = 1.0) -> float:
    a, b = round(start_s * RATE), round((start_s + seconds) * RATE)
    echo = case.echo[a:b].astype(np.float64)
    residual = out[a:b].astype(np.float64) - (case.line[a:b].astype(np.float64) - echo)
    return float(10 * np.log10(np.sum(echo * echo) / max(np.sum(residual * residual), 1e-9)))


def convergence_s(case: Case, out: np.ndarray, target_db: float = 30.0) -> float | None:
    for k in range(0, case.line.shape[0] - RATE // 2, FRAME):
        if erle_db(case, out, k / RATE, 0.5) >= target_db:
            return k / RATE
    return None


def double_talk_correlation(case: Case, out: np.ndarray) -> float:
    a = round(DOUBLE_TALK_AT_S * RATE)
    return float(np.corrcoef(out[a:].astype(np.float64), case.caller[a:].astype(np.float64))[0, 1])


def change_db(case: Case, out: np.ndarray) -> float:
    d = out.astype(np.float64) - case.line
    return float(10 * np.log10(max(np.sum(d * d), 1e-9) / np.sum(case.line.astype(np.float64) ** 2)))


# --- the table ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="ours only, three cases")
    args = parser.parse_args(argv)
    delays = (50, 150, 300)
    levels = (6, 20) if args.quick else (6, 12, 20)
    cases = {(d, lv): make_case(d, lv) for d in delays for lv in levels}
    talk = make_case(150, 12, talk_at_s=DOUBLE_TALK_AT_S)
    quiet = make_case(None, talk_at_s=0.0)
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}; agent voice {cases[delays[0], levels[0]].line.shape[0] / RATE:.2f} s\n"
    )
    print("ERLE dB at 1 s / 3 s (convergence to 30 dB, s), per echo delay and level below the agent\n")
    head = "| canceller | " + " | ".join(f"{d} ms, -{lv} dB" for d in delays for lv in levels)
    head += " | double talk corr | no echo change dB | latency ms | µs / 20 ms frame (mean / after 3 s) |"
    print(head)
    print("|" + "---|" * (len(delays) * len(levels) + 5))
    cost_case = (150, levels[len(levels) // 2])
    costs = []
    for make in candidates(args.quick):
        name = str(getattr(make(), "name", ""))
        out, _ = run(make(), quiet)
        lag = latency(quiet, out)
        change = change_db(quiet, aligned(out, lag))
        cells = []
        for key, case in cases.items():
            out, us = run(make(), case)
            out = aligned(out, lag)
            conv = convergence_s(case, out)
            cells.append(
                f"{erle_db(case, out, 1.0):.0f} / {erle_db(case, out, 3.0):.0f} ({'never' if conv is None else f'{conv:.2f}'})"
            )
            if key == cost_case:
                cost = f"{us.mean():.0f} / {us[3 * RATE // FRAME :].mean():.0f}"
        out, _ = run(make(), talk)
        corr = double_talk_correlation(talk, aligned(out, lag))
        print(f"| {name} | " + " | ".join(cells) + f" | {corr:.3f} | {change:.1f} | {lag / 8:.1f} | {cost} |")
        costs.append((name, make))
    print("\nCPU over a 10 s call, the agent answering 1.5 s every 3 s: µs per 20 ms frame, mean (slowest frame)\n")
    print("| canceller | speakerphone (echo 150 ms, -12 dB) | no echo, the caller talking throughout |")
    print("|---|---|---|")
    calls = (half_speaking_call(True), half_speaking_call(False))
    for name, make in costs:
        cells = []
        for case in calls:
            _, us = run(make(), case)
            cells.append(f"{us.mean():.1f} ({us.max():.0f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
