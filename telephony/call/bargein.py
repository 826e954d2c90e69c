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

The server alone can also decide, later (``fallback_ms``): when its turn
detection has heard the caller for longer than any backchannel can last (the
minimum, plus its silence window, plus 200 ms: a "mhm" gets its
``speech_stopped`` before that) while the local detector has not confirmed, the
agent is interrupted anyway. That covers what an energy detector misses (a
caller quieter than the line's noise floor, an echo residue that raised the
floor), so a caller can always take the turn. Off with semantic turn detection,
whose end of turn has no fixed bound.
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
    __slots__ = (
        "_audio_s",
        "_fired_onset",
        "_server_acted",
        "_server_since",
        "fallback_s",
        "min_s",
        "server_speaking",
        "vad",
    )

    def __init__(self, min_ms: int, fallback_ms: int | None = None) -> None:
        self.min_s = min_ms / 1000.0
        #: the server's speech alone interrupts after this long (None: never)
        self.fallback_s = None if fallback_ms is None else fallback_ms / 1000.0
        self.vad = EnergyVad()
        self.server_speaking = False
        self._fired_onset: float | None = None  # the run already interrupted for
        self._server_since: float | None = None  # the server's speech, not yet acted on (audio time)
        self._server_acted = False  # the fallback interrupted during the server's current turn
        self._audio_s = 0.0  # caller audio received so far (the detector's clock)

    @property
    def enabled(self) -> bool:
        return self.min_s > 0

    def frame(self, mean_square: float, samples: int) -> bool:
        """One caller frame (its mean square, int16 scale, and its length at 8 kHz);
        True when the agent should be interrupted now."""
        duration = samples / 8000.0
        self._audio_s = audio_s = self._audio_s + duration
        voiced = self.vad.frame_power(mean_square, duration, audio_s)
        if not self.server_speaking:
            return False
        if voiced and self._due():
            return True
        since = self._server_since
        if since is not None and audio_s - since >= self.fallback_s:  # type: ignore[operator]
            self._server_since = None
            self._fired_onset = self.vad.onset  # this run is acted on...
            self._server_acted = True  # ...and this turn of the server's, whatever the detector hears next
            return True
        return False

    def speech_started(self) -> bool:
        """The server heard the caller begin; True when the agent should be interrupted now."""
        self.server_speaking = True
        self._server_acted = False
        if self.fallback_s is not None:
            self._server_since = self._audio_s
        return self._due()

    def speech_stopped(self) -> None:
        self.server_speaking = False
        self._server_since = None
        self._server_acted = False

    def _due(self) -> bool:
        vad = self.vad
        if (
            self._server_acted
            or vad.onset is None
            or vad.onset == self._fired_onset
            or vad.speech_s < self.min_s - 1e-9
        ):
            return False
        self._fired_onset = vad.onset
        self._server_since = None
        return True
