"""Answering-machine detection on outbound calls: who (or what) answered, and
what the call does about it.

With Twilio's asynchronous AMD the stream starts at once and the verdict
(``AnsweredBy``) arrives later on an HTTP callback. Until then the greeting
waits; the callee speaking first, or ``wait_s`` passing, ends the wait (the
call is then treated as answered by a person). A person is greeted; after a
machine's greeting, the voicemail is left once and the call hangs up once it
has played; ``fax``/``unknown`` do what ``amd_fax``/``amd_unknown`` say.

Without screening, the greeting is asked for as soon as the session is
configured. Requests go through the façade (``ask``, ``hang_up``).
"""

from __future__ import annotations

from collections.abc import Callable

from . import events
from .config import CallConfig

__all__ = ["MACHINE_END", "Screening"]

#: verdicts of ``MachineDetection=DetectMessageEnd`` meaning the machine's greeting is over
MACHINE_END = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other"})


class Screening:
    """The wait for the verdict of one call, and the greeting or voicemail it decides."""

    __slots__ = (
        "_actions",
        "_ask",
        "_config",
        "_hang_up",
        "answered_by",
        "deadline",
        "greet_pending",
        "since",
        "voicemail",
        "waiting",
    )

    def __init__(
        self,
        config: CallConfig,
        actions: list[events.Event],
        ask: Callable[[str | None, float], None],
        hang_up: Callable[[str, float, str], None],
    ) -> None:
        """``ask(instructions, now)``: request a response; ``hang_up(reason, now,
        outcome)``: once what is queued has played."""
        self._config = config
        self._actions = actions
        self._ask = ask
        self._hang_up = hang_up
        self.waiting = False
        self.since: float | None = None
        self.deadline: float | None = None
        #: the session is configured and the greeting waits for the verdict
        self.greet_pending = False
        self.answered_by: str | None = None
        #: the voicemail instructions, for the session once it is configured
        self.voicemail: str | None = None

    def start(self, now: float, wait_s: float) -> None:
        self.waiting = True
        self.since = now
        self.deadline = now + wait_s

    def stop(self) -> bool:
        """Stop waiting; True if the greeting was waiting (it is due now)."""
        was, self.greet_pending = self.greet_pending, False
        self.waiting = False
        self.deadline = None
        return was

    def verdict(self, answered_by: str, now: float, voicemail: str | None, configured: bool) -> None:
        """Twilio's verdict (``configured``: the session is, so voicemail can be left now)."""
        if self.answered_by is not None:
            return  # decided already (the callee spoke, or the wait ran out)
        self.answered_by = answered_by
        latency = now - (self.since if self.since is not None else now)
        self._actions.append(events.Answered(answered_by, round(latency, 3)))
        was_pending = self.stop()
        config = self._config
        if answered_by in MACHINE_END:
            if not voicemail:
                self._hang_up("answering machine, no voicemail message set", now, "voicemail")
                return
            instructions = config.wording.voicemail.format(message=voicemail)
            if configured:
                self._leave_voicemail(instructions, now)
            else:
                self.voicemail = instructions  # left once the session is configured
            return
        action = config.amd_fax if answered_by == "fax" else config.amd_unknown if answered_by == "unknown" else "greet"
        if action == "hangup":
            self._hang_up(f"answered by {answered_by}", now, "machine")
            return
        self._greet(was_pending, now)

    def session_configured(self, now: float) -> None:
        """The first session is configured: greet, unless the verdict decides."""
        if self.waiting:
            self.greet_pending = True  # the verdict decides
        elif self.voicemail is not None:
            self._leave_voicemail(self.voicemail, now)
        elif self._config.greeting:
            self._ask(self._config.wording.greeting.format(greeting=self._config.greeting), now)

    def callee_spoke(self, now: float) -> None:
        """Speech while waiting: a person, greet them."""
        if self.waiting:
            self.answered_by = "human"
            self._greet(self.stop(), now)

    def tick(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:  # no verdict in time: greet
            self.answered_by = "unknown"
            since = self.since if self.since is not None else now
            self._actions.append(events.Answered("unknown", round(now - since, 3), timed_out=True))
            self._greet(self.stop(), now)

    def _leave_voicemail(self, instructions: str, now: float) -> None:
        self._ask(instructions, now)
        self._hang_up("voicemail left", now, "voicemail")  # once it has played

    def _greet(self, due: bool, now: float) -> None:
        if due and self._config.greeting:
            self._ask(self._config.wording.greeting.format(greeting=self._config.greeting), now)
