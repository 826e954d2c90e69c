"""Answering-machine detection on outbound calls: who (or what) answered.

With Twilio's asynchronous AMD the stream starts at once and the verdict
(``AnsweredBy``) arrives later on an HTTP callback. Until then the greeting
waits; the callee speaking first, or ``wait_s`` passing, ends the wait (the
call is then treated as answered by a person).
"""

from __future__ import annotations

__all__ = ["MACHINE_END", "Screening"]

#: verdicts of ``MachineDetection=DetectMessageEnd`` meaning the machine's greeting is over
MACHINE_END = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other"})


class Screening:
    """The wait for the verdict of one call."""

    __slots__ = ("answered_by", "deadline", "greet_pending", "since", "voicemail", "waiting")

    def __init__(self) -> None:
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
