"""``telephony simulate``: a recording plays the caller through the real bridge.

The same code path as a phone call: the FastAPI app runs on a loopback port and
a fake Twilio client streams the recording as 20 ms mu-law frames at real-time
pace, plays the agent's audio like Twilio does (marks, clear) and keeps what the
caller heard. The agent is the Realtime API, or with ``offline=True`` the
built-in offline simulator (no network, no key).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from .agents import Agents
from .audio.g711 import INT16_TO_ULAW, ULAW_SILENCE, ULAW_TO_INT
from .audio.wav import read_wav, resample, write_wav
from .call import (
    AgentChanged,
    BargeIn,
    CallEnded,
    CallStarted,
    FirstAudio,
    McpCall,
    RealtimeErrorReported,
    RunTool,
    Transcript,
)
from .config import Settings
from .io.observe import Observed
from .io.server import listen_socket, start_server, uvicorn_config
from .tools import ToolRegistry
from .tools.registry import ToolResult

__all__ = ["SimulationResult", "caller_ulaw", "simulate"]


@dataclass
class SimulationResult:
    call_sid: str
    heard_path: Path
    heard_seconds: float
    outcome: str | None
    transcript: list[tuple[str, str]]
    tool_calls: int
    barge_ins: int
    #: with ``line``: barge-ins after the caller's recording ended (the line's doing)
    false_barge_ins: int = 0
    #: with ``line``: the longest time nothing played, from the agent's first audio on (s)
    longest_silence: float = 0.0
    #: with ``line="speakerphone"`` and ``offline``: the echo's energy over what reached the model (dB)
    erle_db: float | None = None
    #: the agent never answered the recording ("no speech detected")
    no_speech: bool = False


def caller_ulaw(path: str | Path) -> bytes:
    """Any common WAV -> 8 kHz mono mu-law bytes (raises WavError with the reason)."""
    wav = read_wav(path)
    if wav.format == "ulaw" and wav.rate == 8000:
        return bytes(INT16_TO_ULAW.take(wav.samples.view(np.uint16)))  # exact round trip
    pcm8 = resample(wav.samples, wav.rate, 8000)
    return INT16_TO_ULAW.take(pcm8.view(np.uint16)).tobytes()


class _Printer:
    def __init__(self, emit: Callable[[str], None], t0: float) -> None:
        self.emit, self.t0 = emit, t0
        self.transcript: list[tuple[str, str]] = []
        self.tool_calls = 0
        self.barge_ins = 0
        self.outcome: str | None = None

    def __call__(self, call_sid: str, ev: Observed) -> None:
        t = time.monotonic() - self.t0
        line = None
        match ev:
            case CallStarted():
                line = f"call started ({call_sid})"
            case Transcript():
                self.transcript.append((ev.role, ev.text))
                line = f"{ev.role}: {ev.text}"
            case RunTool():
                self.tool_calls += 1
                line = f"tool call {ev.name}({ev.arguments})"
            case ToolResult():
                verdict = ev.output if ev.ok else f"ERROR {ev.error}"
                line = f"tool result {ev.name}: {verdict} ({1000 * ev.duration_s:.0f} ms)"
            case BargeIn():
                self.barge_ins += 1
                cut = ", ".join(f"{c.audio_end_ms} of {c.received_ms} ms" for c in ev.truncated)
                line = f"barge-in: the caller spoke over the agent; agent cut at {cut or 'nothing'}"
            case FirstAudio():
                line = f"agent started answering {1000 * ev.seconds:.0f} ms after the caller stopped"
            case RealtimeErrorReported():
                line = f"Realtime error {ev.code}: {ev.message}"
            case AgentChanged():
                why = f" ({ev.reason})" if ev.reason else ""
                line = f"agent {ev.agent} speaks now ({ev.how}{' from ' + ev.previous if ev.previous else ''}){why}"
            case McpCall():
                line = f"MCP {ev.server_label}.{ev.name}: {ev.output if ev.error is None else 'ERROR ' + ev.error}"
            case CallEnded():
                self.outcome = ev.outcome
                line = f"call ended: {ev.outcome} ({ev.reason})"
            case _:
                pass
        if line:
            self.emit(f"[{t:6.2f}s] {line}")


class _LineFeed:
    """The caller's side of a simulated phone line (``telephony.testing.lines``), 100 ms
    at a time: the recording with the line's noise, then silence with it; on
    ``speakerphone`` plus the echo of what the caller heard (its delay, level and
    room); on ``backchannel`` a 250 ms "mhm" (the recording's first voiced 250 ms)
    once the agent's answer after the recording has played for 1 s. Lines with
    ``loss`` replace lost frames by silence and lines with ``jitter_ms`` deliver
    the frames in bursts, each up to that late (``send``), as ``Line.deliver`` does."""

    BLOCK = 800  # 100 ms
    FRAME = 160  # 20 ms

    def __init__(self, name: str, ulaw: bytes, call: Any) -> None:
        from .testing import lines

        self.lines = lines
        presets = {"speakerphone": lines.SPEAKERPHONE, "noisy": lines.NOISY, "backchannel": lines.BACKCHANNEL}
        self.line = presets[name]
        self.name = name
        self.call = call
        self.caller = lines.from_ulaw(ulaw).astype(np.float64)
        voiced = np.flatnonzero(np.abs(self.caller) > 1000)
        at = int(voiced[0]) if voiced.size else 0
        self.mhm = self.caller[at : at + 2000].copy()
        self.pos = 0  # samples sent
        self.recording_done = False
        self.fir = lines.room_response(self.line.echo_delay_ms or 0.0, self.line.room_ms, seed=self.line.seed)
        self.echo_gain = 10 ** (-self.line.echo_level_db / 20)
        self.echo_sent: list[np.ndarray] = []
        self.after_recording = 0  # sample index where the recording ended
        self.mhm_at: int | None = None
        self.heard_len = 0
        self.answer_heard_from: int | None = None
        self.silent_blocks = 0
        self.longest_silence = 0.0
        self.erle_db: float | None = None
        self.frames_sent = 0
        self.frames_lost = 0
        self._rng = np.random.default_rng(self.line.seed + 2)
        self._release_ms = 0.0  # the network releases what it holds at this time
        self._origin: float | None = None  # when the line's first sample went out (time.monotonic())

    def schedule(self, block: bytes) -> list[tuple[float, bytes]]:
        """The block's 20 ms frames as the line delivers them: (arrival ms since the
        first frame, frame), lost frames silence; never before a frame is due, in order."""
        line, out = self.line, []
        for i in range(0, len(block), self.FRAME):
            frame = block[i : i + self.FRAME]
            if line.loss and self._rng.random() < line.loss:
                frame = bytes([ULAW_SILENCE]) * len(frame)
                self.frames_lost += 1
            due = self.frames_sent * 20.0
            if due > self._release_ms:  # held frames went out: hold the next ones a while
                self._release_ms = due + (float(self._rng.uniform(0, line.jitter_ms)) if line.jitter_ms else 0.0)
            out.append((self._release_ms, frame))
            self.frames_sent += 1
        return out

    async def send(self, block: bytes, speed: float) -> None:
        """Send one block through the line, paced at ``speed`` x real time from the
        line's first frame on (a sample clock, as a phone's: no drift)."""
        loop = asyncio.get_running_loop()
        if self._origin is None:
            self._origin = loop.time()  # (loop.time() is time.monotonic())
        for arrival_ms, frame in self.schedule(block):
            delay = self._origin + arrival_ms / 1000 / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the sender, as the line delivers
            await self.call.send_audio(frame)
        due_end = self._origin + self.frames_sent * 0.02 / speed - loop.time()
        if due_end > 0:
            await asyncio.sleep(due_end)  # the block's real time, whatever was held

    def next_block(self) -> bytes:
        lines, n = self.lines, self.BLOCK
        if self._origin is None:  # the first block: it goes out now
            self._origin = time.monotonic()
        block = np.zeros(n)
        if self.pos < len(self.caller):
            part = self.caller[self.pos : self.pos + n]
            block[: len(part)] = part
        heard = self.call.heard()
        grew = len(heard) > self.heard_len
        self.heard_len = len(heard)
        if self.recording_done:
            self.silent_blocks = 0 if grew else self.silent_blocks + 1
            if heard:
                self.longest_silence = max(self.longest_silence, self.silent_blocks * 0.1)
            if self.answer_heard_from is None and grew:
                self.answer_heard_from = len(heard)
            if (
                self.name == "backchannel"
                and self.mhm_at is None
                and self.answer_heard_from is not None
                and len(heard) - self.answer_heard_from >= 8000
            ):
                self.mhm_at = self.pos
            if self.mhm_at is not None and self.pos - self.mhm_at < len(self.mhm):
                part = self.mhm[self.pos - self.mhm_at : self.pos - self.mhm_at + n]
                block[: len(part)] += part
        echo = np.zeros(n)
        if self.line.echo_delay_ms is not None and heard:
            # What the phone played, sample by sample in time, up to the end of this
            # block (sent from now on): its echo comes back through the room's delay.
            # The block's first sample goes out at the line's sample clock: origin + pos.
            k = len(self.fir)
            at = self._origin + self.pos / 8000
            played = self.call.played_between(at - (k - 1) / 8000, at + n / 8000)
            echo = np.convolve(lines.from_ulaw(played).astype(np.float64), self.fir, "valid")[:n] * self.echo_gain
        self.echo_sent.append(echo)
        if self.line.noise_dbfs is not None:
            block += lines.noise(n, self.line.noise_dbfs, seed=self.pos)
        self.pos += n
        if self.pos >= len(self.caller) and not self.recording_done:
            self.recording_done = True
            self.after_recording = self.pos
        return bytes(lines.to_ulaw(np.clip(block + echo, -32768, 32767).astype(np.int16)))

    def measure_erle(self, model_input: bytes) -> None:
        """ERLE after the recording: the echo sent over what reached the model (24 kHz)."""
        if self.line.echo_delay_ms is None:
            return
        start = self.after_recording
        echo = np.concatenate(self.echo_sent)[start:]
        got = np.frombuffer(model_input[6 * start : 6 * (start + len(echo))], "<i2")[::3].astype(np.float64)
        m = min(len(echo), len(got))
        if m < 8000 or not echo[:m].any():
            return
        self.erle_db = 10 * float(np.log10(np.mean(echo[:m] ** 2) / max(np.mean(got[:m] ** 2), 1e-9)))


async def simulate(
    audio: str | Path,
    *,
    settings: Settings,
    registry: ToolRegistry,
    offline: bool,
    agents: Agents | None = None,
    out: str | Path,
    emit: Callable[[str], None],
    speed: float = 1.0,
    tail_seconds: float = 2.0,
    max_wait: float = 60.0,
    line: str | None = None,
    no_speech_seconds: float = 10.0,
    from_number: str | None = None,
    call_sid: str | None = None,
) -> SimulationResult:
    """``no_speech_seconds``: after the recording, how long to wait for the agent's
    first audio before saying "no speech detected" and hanging up. Each run gets its
    own ``call_sid`` (a random one unless given)."""
    from .io.app import create_app
    from .testing import FakeRealtimeServer, FakeTwilioCall
    from .testing.offline_agent import OfflineAgent

    ulaw = caller_ulaw(audio)
    fake = None
    overrides: dict[str, Any] = {}
    if offline:
        fake = await FakeRealtimeServer(on_session=OfflineAgent().run).start()
        overrides["openai_base_url"] = fake.base_url
        overrides["openai_api_key"] = SecretStr("offline")
    sock = listen_socket()
    port = sock.getsockname()[1]
    overrides.update(public_url=f"http://127.0.0.1:{port}", twilio_auth_token=None, quiet_timeout=0)
    # The simulated caller talks at ``speed`` x real time: the audio rate limit follows.
    overrides["max_audio_rate"] = max(settings.max_audio_rate, speed * settings.max_audio_rate)
    sim_settings = settings.model_copy(update=overrides)
    app = create_app(sim_settings, registry, agents=agents)
    state = app.state.telephony
    t0 = time.monotonic()
    printer = _Printer(emit, t0)
    state.observer.listeners.append(printer)
    sid = call_sid or "CA" + secrets.token_hex(16)
    call = FakeTwilioCall(
        f"ws://127.0.0.1:{port}/media-stream",
        call_sid=sid,
        parameters={"From": from_number or "+15550000000", "To": "+15550000001", "CallSid": sid, "simulated": "1"},
        play_speed=speed,
    )
    server = serving = None
    try:
        server, serving = await start_server(uvicorn_config(app, sim_settings.max_message_bytes), [sock])
        await call.connect()
        await call.start()
        emit(f"[{time.monotonic() - t0:6.2f}s] caller audio: {len(ulaw) / 8000:.1f} s from {audio}")
        feed = _LineFeed(line, ulaw, call) if line else None
        if feed is None:
            await call.send_audio(ulaw, pace=speed)
        else:
            how = [f"{100 * feed.line.loss:g}% of frames lost"] if feed.line.loss else []
            how += [f"frames up to {feed.line.jitter_ms:g} ms late, in bursts"] if feed.line.jitter_ms else []
            emit(f"[{time.monotonic() - t0:6.2f}s] line: {line}{' (' + ', '.join(how) + ')' if how else ''}")
            while not feed.recording_done:
                await feed.send(feed.next_block(), speed)
        barge_ins_before = printer.barge_ins
        # Then silence, as a phone line sends, until the agent has finished answering.
        deadline = time.monotonic() + max_wait
        silence = b"\xff" * 160
        quiet_since = audio_end = time.monotonic()
        seen = 0
        no_speech = False
        while time.monotonic() < deadline and not call.closed.is_set():
            if feed is None:
                await call.send_audio(silence * 5, pace=speed)  # 100 ms
            else:
                await feed.send(feed.next_block(), speed)
            media = len(call.events("media"))
            playing = len(call.echoed) < len(call.events("mark"))
            sessions = state.admission.sessions
            if media != seen or playing or any(s.call.pending_tools for s in sessions):
                seen, quiet_since = media, time.monotonic()
            elif time.monotonic() - quiet_since >= tail_seconds and media:
                break
            elif not media and time.monotonic() - audio_end >= no_speech_seconds:
                emit(
                    f"[{time.monotonic() - t0:6.2f}s] no speech detected: the agent did not answer within "
                    f"{no_speech_seconds:.0f} s after the recording ended (is {audio} speech, and loud enough?)"
                )
                no_speech = True
                break
        if not call.closed.is_set():
            await call.hang_up()
        for s in list(state.admission.sessions):
            await asyncio.wait_for(s.wait_ended(), 5)
        await state.observer.flush_records()
        if feed is not None and fake is not None and fake.sessions:
            feed.measure_erle(bytes(fake.sessions[0].input_audio))
    finally:
        await call.close()
        if server is not None and serving is not None:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
        if fake is not None:
            await fake.stop()
    heard = call.heard()
    write_wav(out, ULAW_TO_INT.take(np.frombuffer(heard, np.uint8)), 8000)
    emit(f"[{time.monotonic() - t0:6.2f}s] wrote what the caller heard ({len(heard) / 8000:.1f} s) to {out}")
    return SimulationResult(
        call.call_sid,
        Path(out),
        len(heard) / 8000,
        printer.outcome,
        printer.transcript,
        printer.tool_calls,
        printer.barge_ins,
        printer.barge_ins - barge_ins_before if feed is not None else 0,
        feed.longest_silence if feed is not None else 0.0,
        feed.erle_db if feed is not None else None,
        no_speech,
    )
