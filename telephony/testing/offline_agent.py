"""The offline simulator: a stand-in Realtime agent on top of ``FakeRealtimeServer``.

It cannot understand words. It hears energy (a simple VAD on the caller audio
the bridge appends: above ``threshold`` RMS and above the line's noise floor, as
the bridge's own ``audio.vad.EnergyVad`` learns it, so a noisy line's hiss is not
a caller who never stops), and on each caller turn it answers with a recorded voice.
On the first turn it calls every tool the session offers, once, with example
arguments built from the tool's JSON schema, so your tools run for real through
the bridge. It follows the GA event flow a real session uses: speech_started /
speech_stopped, response.created ... response.done, interruption on barge-in.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.vad import EnergyVad
from ..audio.wav import read_wav
from .fake_realtime import FakeSession, new_id

__all__ = ["OfflineAgent", "example_arguments"]

VOICE = Path(__file__).resolve().parent / "data" / "agent-24k-pcm16.wav"
_FRAME = 480  # 20 ms at 24 kHz


def example_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Plausible arguments for a JSON schema: the first enum value, 1 for numbers..."""

    def value(s: dict[str, Any]) -> Any:
        if "enum" in s:
            return s["enum"][0]
        if "anyOf" in s:
            return value(next((x for x in s["anyOf"] if x.get("type") != "null"), s["anyOf"][0]))
        kind = s.get("type")
        if kind == "string":
            return "A100"
        if kind == "integer":
            return 10
        if kind == "number":
            return 1.5
        if kind == "boolean":
            return True
        if kind == "array":
            return [value(s.get("items", {"type": "string"}))]
        if kind == "object":
            props = s.get("properties")
            if props:
                return {k: value(v) for k, v in props.items() if k in s.get("required", props)}
            return {}
        return None

    props = schema.get("properties", {})
    return {k: value(v) for k, v in props.items() if k in schema.get("required", [])}


class OfflineAgent:
    """Use as ``FakeRealtimeServer(on_session=OfflineAgent().run)``."""

    def __init__(self, threshold: float = 400.0, start_ms: int = 60, stop_ms: int = 500, voice: Path = VOICE) -> None:
        self.threshold = threshold
        self.start_frames = max(1, start_ms // 20)
        self.stop_frames = max(1, stop_ms // 20)
        self.voice = read_wav(voice).samples.astype("<i2").tobytes()

    async def run(self, session: FakeSession) -> None:
        try:
            await self._run(session)
        except (TimeoutError, AssertionError, ConnectionError):
            pass
        except Exception:
            pass

    async def _run(self, s: FakeSession) -> None:
        update = await s.wait_for("session.update", timeout=30)
        tools = [t for t in update["session"].get("tools") or [] if t.get("type") == "function"]
        audio_in = update["session"].get("audio", {}).get("input", {})
        transcribe = bool(audio_in.get("transcription"))
        # interrupt_response=false (the bridge's barge-in policy): the caller's speech
        # does not cut the answer here; the bridge's response.cancel does.
        interrupt = (audio_in.get("turn_detection") or {}).get("interrupt_response", True)
        cancels_seen = 0
        speaking: asyncio.Task[None] | None = None
        pos = 0  # bytes of caller audio examined
        loud = quiet = 0
        floor = EnergyVad(margin_db=6.0)  # steady noise is not a caller; quieter syllables still are
        in_speech = False
        speech_item = ""
        speech_start_ms = 0
        turn = 0
        creates_seen = 0
        tools_called = False
        while not s.closed.is_set():
            async with s._changed:
                await s._changed.wait()
            cancels = len(s.events("response.cancel"))
            if cancels > cancels_seen:
                cancels_seen = cancels
                if speaking is not None and not speaking.done():
                    speaking.cancel()
            # Responses the bridge asks for (greeting, after tool outputs, DTMF).
            creates = s.events("response.create")
            while creates_seen < len(creates):
                creates_seen += 1
                if speaking is None or speaking.done():
                    speaking = asyncio.get_running_loop().create_task(self._say(s, turn))
            # Energy VAD over the new caller audio, 20 ms at a time.
            audio = s.input_audio
            while pos + 2 * _FRAME <= len(audio):
                frame = np.frombuffer(bytes(audio[pos : pos + 2 * _FRAME]), "<i2").astype(np.float64)
                pos += 2 * _FRAME
                mean_square = float(np.dot(frame, frame)) / _FRAME
                heard = floor.frame_power(mean_square, 0.02, pos / 48000) and mean_square > self.threshold**2
                if not in_speech:
                    loud = loud + 1 if heard else 0
                    if loud >= self.start_frames:
                        in_speech, quiet = True, 0
                        speech_start_ms = pos // 48 - 20 * loud
                        speech_item = await s.speech_started(max(0, speech_start_ms))
                        if interrupt and speaking is not None and not speaking.done():
                            speaking.cancel()  # interrupt_response: the server cuts its answer
                else:
                    quiet = 0 if heard else quiet + 1
                    if quiet >= self.stop_frames:
                        in_speech, loud = False, 0
                        end_ms = pos // 48 - 20 * quiet
                        await s.speech_stopped(speech_item, end_ms)
                        await s.send(
                            {
                                "type": "input_audio_buffer.committed",
                                "event_id": new_id("event"),
                                "item_id": speech_item,
                                "previous_item_id": None,
                            }
                        )
                        if transcribe:
                            seconds = (end_ms - speech_start_ms) / 1000
                            await s.send(
                                {
                                    "type": "conversation.item.input_audio_transcription.completed",
                                    "event_id": new_id("event"),
                                    "item_id": speech_item,
                                    "content_index": 0,
                                    "transcript": f"(offline simulator: {seconds:.1f} s of caller speech)",
                                    "usage": {"type": "duration", "seconds": seconds},
                                }
                            )
                        turn += 1
                        if tools and not tools_called:
                            tools_called = True
                            speaking = asyncio.get_running_loop().create_task(self._call_tools(s, tools))
                        elif speaking is None or speaking.done():
                            speaking = asyncio.get_running_loop().create_task(self._say(s, turn))

    async def _call_tools(self, s: FakeSession, tools: list[dict[str, Any]]) -> None:
        rid = await s.response_created()
        for i, t in enumerate(tools):
            args = example_arguments(t.get("parameters") or {})
            await s.send(
                {
                    "type": "response.function_call_arguments.done",
                    "event_id": new_id("event"),
                    "response_id": rid,
                    "item_id": new_id("item"),
                    "output_index": i,
                    "call_id": new_id("call"),
                    "name": t["name"],
                    "arguments": json.dumps(args),
                }
            )
        await s.response_done(rid)

    async def _say(self, s: FakeSession, turn: int) -> None:
        rid = await s.response_created()
        item = new_id("item")
        text = (
            "Hello, this is the offline simulator. I cannot understand words, but I heard you."
            if turn
            else "Hello, this is the offline simulator answering."
        )
        try:
            for i in range(0, len(self.voice), 9600):  # 200 ms deltas, faster than real time
                await s.audio_delta(rid, item, self.voice[i : i + 9600])
                await asyncio.sleep(0)
            await s.audio_done(rid, item, text)
            await s.response_done(rid, usage={"total_tokens": 120, "input_tokens": 80, "output_tokens": 40})
        except asyncio.CancelledError:
            await s.audio_done(rid, item, text)
            await s.response_done(rid, status="cancelled", reason="turn_detected")
