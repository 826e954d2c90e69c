"""Never silent: failed or incomplete responses are asked for again, and dead
air after the caller's turn is noticed.

Holds the counters and deadlines; the façade decides (it knows whether the
caller is speaking, a tool is running, audio is playing). A failed response is
retried after a short backoff, at most ``response_retries`` times in a row; an
``incomplete`` one is answered with instructions that fit its reason (see
``Wording``). Dead air: once the caller stops speaking (or we ask for a
response) and nothing follows within ``dead_air_s``, a response is asked for
once more; if that too brings nothing, the call is handed on (transfer or
apology).
"""

from __future__ import annotations

__all__ = ["Recovery"]


class Recovery:
    __slots__ = ("dead_air_at", "dead_air_nudged", "escalating", "failures", "retry_at", "retry_instructions")

    def __init__(self) -> None:
        #: failed/incomplete responses in a row (a completed one resets it)
        self.failures = 0
        #: when to send the retry's response.create, and with what instructions
        self.retry_at: float | None = None
        self.retry_instructions: str | None = None
        #: when silence since the caller's turn (or our request) becomes dead air
        self.dead_air_at: float | None = None
        #: dead air was met once in this stretch: the next time, give up
        self.dead_air_nudged = False
        #: handing the call to a person because the model keeps failing
        self.escalating = False

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, now: float, backoff_s: float, instructions: str | None) -> float:
        """Count one failure; schedule the retry; returns its delay."""
        self.failures += 1
        delay = backoff_s * float(2 ** (self.failures - 1))
        self.retry_at = now + delay
        self.retry_instructions = instructions
        return delay

    def retry_due(self, now: float) -> bool:
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            return True
        return False

    def expect(self, now: float, dead_air_s: float) -> None:
        """Something should follow within ``dead_air_s`` (0: dead air is not watched)."""
        if dead_air_s > 0:
            self.dead_air_at = now + dead_air_s

    def heard(self) -> None:
        """Agent audio, a tool call or the caller's speech: the silence is over."""
        self.dead_air_at = None
        self.dead_air_nudged = False
