"""Never silent: failed or incomplete responses are asked for again, and dead
air after the caller's turn is noticed.

A failed response is retried after a short backoff, at most ``response_retries``
times in a row; an ``incomplete`` one is answered with instructions that fit its
reason (see ``Wording``). Dead air: once the caller stops speaking (or we ask for
a response) and nothing follows within ``dead_air_s``, a response is asked for
once more; if that too brings nothing, the call is handed on (transfer to
``fallback_transfer``, or an apology and the end).

The façade answers the questions that span parts and passes the answer in
(``busy``: the caller is speaking, a tool runs, audio plays, a hang-up or
transfer is asked); what to do then is decided here, and carried out through
the façade's own requests (``ask``, ``transfer``, ``end``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..wire import realtime as rt
from . import events
from .config import CallConfig

__all__ = ["Recovery"]


class Recovery:
    __slots__ = (
        "_actions",
        "_ask",
        "_config",
        "_end",
        "_transfer",
        "dead_air_at",
        "dead_air_nudged",
        "escalating",
        "failures",
        "retry_at",
        "retry_instructions",
    )

    def __init__(
        self,
        config: CallConfig,
        actions: list[events.Event],
        ask: Callable[[str | None, float], None],
        transfer: Callable[[str, str, float], None],
        end: Callable[[str, str, bool], None],
    ) -> None:
        """``ask(instructions, now)``: request a response (dead air watched from
        ``now``); ``transfer(number, label, now)``; ``end(outcome, reason, apologize)``."""
        self._config = config
        self._actions = actions
        self._ask = ask
        self._transfer = transfer
        self._end = end
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

    def response_failed(self, ev: rt.ResponseDone, instructions: str | None, now: float, busy: bool) -> None:
        """A response ended failed or incomplete: ask again (bounded), never leave
        silence. ``busy``: the caller is speaking or a hang-up/transfer is asked."""
        config, wording = self._config, self._config.wording
        label = ev.label
        if busy or self.escalating:
            self.failures += 1  # the caller's turn brings a response; the call is ending
            self._actions.append(
                events.ResponseFailed(ev.response_id, ev.status, label, ev.error_message, self.failures, "none", 0.0)
            )
            return
        if self.failures >= config.response_retries:
            self.failures += 1
            self._actions.append(
                events.ResponseFailed(ev.response_id, ev.status, label, ev.error_message, self.failures, "gave_up", 0.0)
            )
            self._hand_on(f"the model's responses keep failing ({ev.status}: {label})", now)
            return
        if ev.status == "incomplete":
            # Not retried blindly: a cut-off answer is finished briefly, a filtered one declined.
            if ev.reason == "content_filter":
                instructions = wording.filtered
            elif ev.reason == "max_output_tokens":
                instructions = wording.cut_short
            delay = self.failed(now, 0.0, instructions)
        else:
            delay = self.failed(now, config.response_retry_backoff_s, instructions)
        self._actions.append(
            events.ResponseFailed(
                ev.response_id, ev.status, label, ev.error_message, self.failures, "retry", round(delay, 3)
            )
        )
        if delay == 0.0 and self.retry_due(now):
            self._ask(self.retry_instructions, now)

    def dead_air(self, now: float, live: bool, busy: bool) -> None:
        """Nothing followed the caller's turn (or our request) in time. ``busy``:
        the caller is speaking, a tool runs, audio plays or a hang-up/transfer is asked."""
        config = self._config
        self.dead_air_at = None
        if not live:
            self.expect(now, config.dead_air_s)  # a reconnect is under way: it asks again itself
            return
        if busy:
            self.heard()  # someone is speaking or something is running: not dead air
            return
        if not self.dead_air_nudged:
            self.dead_air_nudged = True
            self._actions.append(events.DeadAir(config.dead_air_s, "asked_again"))
            self._ask(config.wording.dead_air, now)
            return
        self._actions.append(events.DeadAir(config.dead_air_s, "gave_up"))
        self._hand_on(f"no answer for {config.dead_air_s:g} s after asking again", now)

    def _hand_on(self, reason: str, now: float) -> None:
        """The model cannot answer: transfer to a person if one is set, else apologise
        and end. (Both callers checked that no hang-up or transfer is asked.)"""
        self.retry_at = self.dead_air_at = None
        number = self._config.fallback_transfer
        if number and not self.escalating:
            self.escalating = True
            self._transfer(number, self._config.wording.fallback_label, now)
            return
        self._end("failed", reason, True)
