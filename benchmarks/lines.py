"""Real phone lines: ours with and without each issue-15 feature, side by side.

    python -m benchmarks.lines      # a few seconds, deterministic

Each row drives the call core (``telephony.call.Call``) with explicit clocks, as
the machine tests do: the agent's audio arrives in real time (100 ms deltas), the
caller's line is built with ``telephony.testing.lines`` from the test speech
(tests/data) and arrives in 20 ms frames; the server's ``speech_started`` /
``speech_stopped`` come where a server VAD with a 500 ms silence window puts them
(120 ms after the speech's onset; 500 ms after its end). What the caller hears is
replayed from what the bridge sent (in order, real time, ``clear`` drops the queue).

* backchannel: a 250 ms "mhm" 1.5 s into a 4 s answer (quiet line). False
  barge-ins = clears; answer heard = what of the answer the caller heard.
* interruption: 1.5 s of speech 1.5 s into the answer. Clear after onset, and
  truncation error (what the model was told was heard minus what was heard).
* quiet caller: the same 40 dB quieter (below the local detector's -45 dBFS, as
  a caller far from the phone), which the server still hears: without the
  fallback the caller cannot cut the agent; with it (minimum + 500 ms silence
  window + 200 ms = 1.1 s after the server's ``speech_started``) they can.
* slow tool: a 6 s tool. Longest silence at the caller from the tool call to the
  answer; overlap of the hold sound with the answer.
* speakerphone: a 6 s answer comes back 150 ms later, 10 dB down, with a room.
  ERLE (the model's input with the canceller off over on, 3-6 s); echo taken for
  speech = how long the local detector, on the model's input, was in a run of
  400 ms or more (a false barge-in whenever the server's VAD agreed).
"""

from __future__ import annotations

import argparse
import base64
import json

import numpy as np

from telephony.audio import DELAY_MS, ModelToCaller
from telephony.audio.hold import builtin_hold_sound
from telephony.audio.vad import EnergyVad
from telephony.call import Call, CallConfig
from telephony.testing import lines
from telephony.wire import realtime as rt
from telephony.wire import twilio as tw
from tests.audio_data import agent_pcm24, caller_pcm8

START = tw.Start("MZ1", "CA1", "AC1", {})
DELTA_S = 0.1


class Caller:
    """Replays Twilio's side: media plays in order in real time, ``clear`` drops what
    is queued. Collects (start, end, kind) of every stretch heard, and the marks."""

    def __init__(self) -> None:
        self.heard: list[tuple[float, float, str]] = []
        self.end = 0.0
        self.marks: list[str] = []

    def take(self, c: Call, now: float, kind: str) -> None:
        for raw in c.drain_twilio():
            m = json.loads(raw)
            if m["event"] == "clear":
                self.heard = [(s, min(e, now), k) for s, e, k in self.heard if s < now]
                self.end = now
            elif m["event"] == "media":
                n = len(base64.b64decode(m["media"]["payload"]))
                start = max(now, self.end)
                self.end = start + n / 8000
                self.heard.append((start, self.end, kind))
            elif m["event"] == "mark":
                self.marks.append(m["mark"]["name"])

    def gaps(self, since: float, until: float) -> float:
        """The longest silence heard between ``since`` and ``until``."""
        longest, cursor = 0.0, since
        for s, e, _ in sorted(self.heard):
            if e <= cursor:
                continue
            longest = max(longest, s - cursor)
            cursor = max(cursor, e)
        return max(longest, until - cursor)


def _call(**config: object) -> Call:
    c = Call(CallConfig(quiet_timeout_s=0, dead_air_s=0, **config))  # type: ignore[arg-type]
    c.receive_twilio(START, 0.0)
    c.realtime_opened('{"type":"session.update"}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    c.drain_twilio(), c.drain_realtime(), c.drain_actions()
    return c


def _answer_pcm(seconds: float) -> bytes:
    return np.tile(agent_pcm24(), 2)[: int(24000 * seconds)].astype("<i2").tobytes()


def _collect(c: Call, now: float, clears: list[float], truncations: list[tuple[float, int]]) -> None:
    for out in c.drain_twilio():
        if json.loads(out)["event"] == "clear":
            clears.append(now)
    for raw in c.drain_realtime():
        m = json.loads(raw)
        if m["type"] == "conversation.item.truncate":
            truncations.append((now, m["audio_end_ms"]))


def _talk(min_ms: int, speech_ms: int, fallback_ms: int | None = None, gain_db: float = 0.0) -> dict[str, str]:
    """The agent answers for 4 s; the caller speaks ``speech_ms`` from 1.5 s
    (``gain_db`` louder than the test speech)."""
    c = _call(barge_in_min_ms=min_ms, barge_in_fallback_ms=fallback_ms)
    onset, answer_s = 1.5, 4.0
    n = int(5.5 * 8000)
    speech = caller_pcm8()[20 * 8 : (20 + speech_ms) * 8]
    speech = (speech * 10 ** (gain_db / 20)).astype(np.int16)
    line = lines.BACKCHANNEL.apply(lines.insert(np.zeros(n, np.int16), speech, onset * 1000))
    frames = lines.frames(lines.to_ulaw(line))
    server: dict[float, rt.RealtimeEvent] = {round(onset + 0.12, 2): rt.SpeechStarted("u1", 0)}
    server[round(onset + speech_ms / 1000 + 0.5, 2)] = rt.SpeechStopped("u1", 0)
    pcm = _answer_pcm(answer_s)
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    clears: list[float] = []
    truncations: list[tuple[float, int]] = []
    for k, frame in enumerate(frames):
        now = round(k * 0.02, 2)
        if k % 5 == 0 and now < answer_s:
            i = int(now / DELTA_S) * 4800
            c.receive_realtime(rt.AudioDelta("r1", "item_a", pcm[i : i + 4800]), now)
        if now in server:
            c.receive_realtime(server[now], now)
            _collect(c, now, clears, truncations)
        c.receive_twilio(tw.Media(frame), now + 0.02)
        _collect(c, now + 0.02, clears, truncations)
    heard_s = clears[0] if clears else answer_s
    row = {"answer heard": f"{min(heard_s, answer_s):.2f} / {answer_s:g} s"}
    if speech_ms < 400:
        row["false barge-ins"] = str(len(clears))
    elif clears:
        row["clear after onset"] = f"{(clears[0] - onset) * 1000:.0f} ms"
        t, end_ms = truncations[0]  # the answer streams from t=0 in real time: heard = t - DELAY_MS
        row["truncation error"] = f"{end_ms - (t * 1000 - DELAY_MS):+.0f} ms"
    return row


def _tool(sound: bytes | None) -> dict[str, str]:
    c, caller = _call(hold_sound=sound, hold_after_s=1.0), Caller()

    def advance(until: float) -> None:
        while (d := c.next_deadline()) is not None and d <= until:
            c.tick(d)
            caller.take(c, d, "hold")

    c.receive_realtime(rt.ResponseCreated("r1"), 0.4)
    c.receive_realtime(rt.FunctionCallDone("r1", "fc", "call_1", "lookup", "{}"), 0.5)
    c.receive_realtime(rt.ResponseDone("r1", "completed", None, None), 0.5)
    advance(6.5)
    c.tool_finished("call_1", "{}", 6.5)
    first = 6.9
    advance(first)
    c.receive_realtime(rt.ResponseCreated("r2"), first)
    pcm = _answer_pcm(2.0)
    for k in range(20):
        t = first + k * DELTA_S
        advance(t)
        c.receive_realtime(rt.AudioDelta("r2", "item_b", pcm[k * 4800 : (k + 1) * 4800]), t)
        caller.take(c, t, "answer")
    longest, cursor = 0.0, 0.5
    for s, e, _ in sorted(caller.heard):
        if s >= first:
            break
        longest, cursor = max(longest, s - cursor), max(cursor, e)
    longest = max(longest, first - cursor)
    hold_end = max((e for _, e, k in caller.heard if k == "hold"), default=0.0)
    answer = sum(e - s for s, e, k in caller.heard if k == "answer")
    return {
        "longest silence": f"{longest:.2f} s",
        "hold overlap": f"{max(0.0, hold_end - first) * 1000:.0f} ms",
        "answer heard": f"{answer:.2f} / 2 s",
    }


def speakerphone_model_input(seconds: int, caller: np.ndarray | None = None, **config: object) -> np.ndarray:
    """The agent speaks for ``seconds`` (100 ms deltas in real time); the speakerphone
    line returns its echo (150 ms, 10 dB down, a room, light noise) plus ``caller``
    (8 kHz int16). What the model got, at 8 kHz (every 3rd sample of its 24 kHz audio)."""
    c = _call(**config)
    pcm = _answer_pcm(seconds)
    down = ModelToCaller()
    played = lines.from_ulaw(down.convert(pcm) + down.flush())[: 8000 * seconds]
    line = lines.SPEAKERPHONE.apply(np.zeros(8000 * seconds, np.int16) if caller is None else caller, played)
    got = []
    c.receive_realtime(rt.ResponseCreated("r1"), 0.0)
    for k, frame in enumerate(lines.frames(lines.to_ulaw(line))[: 50 * seconds]):
        now = k * 0.02
        if k % 5 == 0:
            c.receive_realtime(rt.AudioDelta("r1", "item_a", pcm[k * 960 : (k + 5) * 960]), now)
        c.receive_twilio(tw.Media(frame), now + 0.02)
        c.drain_twilio()
        for raw in c.drain_realtime():
            m = json.loads(raw)
            if m["type"] == "input_audio_buffer.append":
                got.append(np.frombuffer(base64.b64decode(m["audio"]), "<i2"))
    return np.concatenate(got)[::3].astype(np.int16)


def _speakerphone(aec: bool) -> dict[str, str]:
    seconds = 6
    x = speakerphone_model_input(seconds, echo_cancellation=aec, barge_in_min_ms=400)
    vad, risky, last = EnergyVad(), 0, 0.0
    for k, f in enumerate(lines.frames(lines.to_ulaw(x))):
        vad.frame(f, (k + 1) * 0.02)
        if vad.speech_s >= 0.4:
            risky += 1
            last = (k + 1) * 0.02
    late = x[3 * 8000 :].astype(np.float64)
    return {
        "power": f"{float(np.mean(late**2)):.6g}",
        "echo taken for speech": f"{risky * 0.02:.1f} s (last at {last:.1f} s)",
    }


def rows() -> list[tuple[str, str, dict[str, str]]]:
    out = [
        ("backchannel 250 ms", "barge-in min 0 (server cuts)", _talk(0, 250)),
        ("backchannel 250 ms", "barge-in min 400 ms", _talk(400, 250)),
        ("interruption 1.5 s", "barge-in min 0 (server cuts)", _talk(0, 1500)),
        ("interruption 1.5 s", "barge-in min 400 ms", _talk(400, 1500)),
        ("quiet caller 1.5 s, -40 dB", "barge-in min 400 ms, no fallback", _talk(400, 1500, None, -40.0)),
        ("quiet caller 1.5 s, -40 dB", "barge-in min 400 ms + server fallback", _talk(400, 1500, 1100, -40.0)),
        ("slow tool 6 s", "hold sound off", _tool(None)),
        ("slow tool 6 s", "hold sound builtin", _tool(builtin_hold_sound())),
    ]
    off, on = _speakerphone(False), _speakerphone(True)
    erle = 10 * np.log10(float(off.pop("power")) / float(on.pop("power")))
    off["ERLE 3-6 s"] = "0 dB"
    on["ERLE 3-6 s"] = f"{erle:.1f} dB"
    out += [("speakerphone", "echo cancellation off", off), ("speakerphone", "echo cancellation on", on)]
    return out


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    table = rows()
    columns: list[str] = []
    for _, _, r in table:
        columns += [k for k in r if k not in columns]
    print("| line | ours with | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for line, setting, r in table:
        print(f"| {line} | {setting} | " + " | ".join(r.get(k, "") for k in columns) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
