"""An opt-in energy VAD for the fake Realtime server (``FakeRealtimeServer(vad=True)``).

It follows the session's ``turn_detection`` as the bridge configured it: on the
caller audio appended (PCM16 24 kHz, 20 ms at a time) a frame louder than
``threshold`` (RMS) is speech; ``start_ms`` of speech sends
``input_audio_buffer.speech_started`` (and, with ``interrupt_response``, cancels
the active response: ``response.done`` cancelled / ``turn_detected``);
``silence_duration_ms`` of quiet sends ``speech_stopped`` and ``committed`` and,
with ``create_response`` and no response active, an (empty) response. It hears
energy, not words: a cough is speech to it, as a server VAD may take it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .fake_realtime import FakeSession

__all__ = ["FakeVad"]

_FRAME = 960  # bytes: 20 ms of PCM16 at 24 kHz


class FakeVad:
    def __init__(self, threshold: float = 400.0, start_ms: int = 60) -> None:
        self.threshold = threshold
        self.start_frames = max(1, start_ms // 20)
        self.pos = 0
        self.loud = 0
        self.quiet = 0
        self.in_speech = False
        self.item = ""
        self.start_ms = 0
        #: every speech_started this VAD sent (ms of input audio), for tests
        self.starts: list[int] = []

    @staticmethod
    def _turn(session: FakeSession) -> dict[str, Any]:
        updates = session.events("session.update")
        if not updates:
            return {}
        return updates[-1].get("session", {}).get("audio", {}).get("input", {}).get("turn_detection") or {}

    async def feed(self, session: FakeSession) -> None:
        """Examine the caller audio appended since the last call."""
        from .fake_realtime import new_id

        turn = self._turn(session)
        if not turn:
            return  # turn detection off: the client commits
        silence_frames = max(1, int(turn.get("silence_duration_ms", 500)) // 20)
        audio = session.input_audio
        while self.pos + _FRAME <= len(audio):
            frame = np.frombuffer(bytes(audio[self.pos : self.pos + _FRAME]), "<i2").astype(np.float64)
            self.pos += _FRAME
            rms = float(np.sqrt(np.mean(frame * frame)))
            at_ms = self.pos // 48
            if not self.in_speech:
                self.loud = self.loud + 1 if rms > self.threshold else 0
                if self.loud >= self.start_frames:
                    self.in_speech, self.quiet = True, 0
                    self.start_ms = max(0, at_ms - 20 * self.loud)
                    self.starts.append(self.start_ms)
                    self.item = await session.speech_started(self.start_ms)
                    active = session.active_response
                    if turn.get("interrupt_response", True) and active is not None:
                        await session.response_done(active, status="cancelled", reason="turn_detected")
            else:
                self.quiet = self.quiet + 1 if rms <= self.threshold else 0
                if self.quiet >= silence_frames:
                    self.in_speech, self.loud = False, 0
                    await session.speech_stopped(self.item, at_ms - 20 * self.quiet)
                    await session.send(
                        {
                            "type": "input_audio_buffer.committed",
                            "event_id": new_id("event"),
                            "item_id": self.item,
                            "previous_item_id": None,
                        }
                    )
                    if turn.get("create_response", True) and session.active_response is None:
                        rid = await session.response_created()
                        await session.response_done(rid)
