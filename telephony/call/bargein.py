"""The barge-in policy: short caller sounds do not stop the agent.

With a minimum (``TELEPHONY_BARGE_IN_MIN_MS`` > 0) the server is told not to cut
its answer itself (``interrupt_response: false``); the bridge decides. It
interrupts once both agree that the caller is speaking over the agent:

* the local detector (``audio.vad.EnergyVad`` on the caller's frames) has heard
  a run of speech lasting at least the minimum, and
* the server's turn detection has said ``speech_started`` and not yet
  ``speech_stopped`` (its confirmation: a cough or a door the energy detector
  takes for speech is rarely speech to the server's model).

Whichever comes second triggers the interruption, once per run of speech.
Durations are measured in audio time (20 ms per 20 ms frame received), not
arrival time, so jittery, bursty delivery does not stretch a "mhm" into speech. A
250 ms "mhm" is a run of ~260 ms: below a 400 ms minimum, nothing happens; the
answer plays on. With a minimum of 0 the policy is off: today's immediate
barge-in on the server's ``speech_started``.
"""

from __future__ import annotations

from ..audio.vad import EnergyVad

__all__ = ["BargeInPolicy"]


class BargeInPolicy:
    __slots__ = ("_audio_s", "_fired_onset", "min_s", "server_speaking", "vad")

    def __init__(self, min_ms: int) -> None:
        self.min_s = min_ms / 1000.0
        self.vad = EnergyVad()
        self.server_speaking = False
        self._fired_onset: float | None = None  # the run already interrupted for
        self._audio_s = 0.0  # caller audio received so far (the detector's clock)

    @property
    def enabled(self) -> bool:
        return self.min_s > 0

    def frame(self, ulaw: bytes, now: float) -> bool:
        """One caller frame; True when the agent should be interrupted now."""
        vad = self.vad
        self._audio_s += len(ulaw) / 8000.0
        if not vad.frame(ulaw, self._audio_s):
            return False
        return self.server_speaking and self._due()

    def speech_started(self) -> bool:
        """The server heard the caller begin; True when the agent should be interrupted now."""
        self.server_speaking = True
        return self._due()

    def speech_stopped(self) -> None:
        self.server_speaking = False

    def _due(self) -> bool:
        vad = self.vad
        if vad.onset is None or vad.onset == self._fired_onset or vad.speech_s < self.min_s - 1e-9:
            return False
        self._fired_onset = vad.onset
        return True
