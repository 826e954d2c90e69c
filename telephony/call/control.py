"""Call control: hang-up and transfer requests, and keypad digits.

A hang-up or transfer waits until the agent's words have been said and played:
the façade says whether the agent is still busy (a response, a tool, audio
arriving); ``Control`` then waits for the last mark echo (with a grace deadline
in case echoes stop coming) and issues ``TransferCall`` or ends the call. A
transfer's outcome comes from its REST reply: if the stream stopped first (the
redirect took effect, or the caller hung up), the ending is reported once the
reply says whether the transfer happened. A failed transfer is told to the
model, and the conversation goes on.

Keypad digits (``Keypad``) are limited per call and per second (a token
bucket), and sent to the model in batches: after a pause, or at once on ``#``.
"""

from __future__ import annotations

from collections.abc import Callable

from . import events
from .config import CallConfig
from .playout import Playout

__all__ = ["Control", "Keypad"]


class Control:
    __slots__ = (
        "_actions",
        "_config",
        "_end",
        "_report",
        "_tell",
        "deadline",
        "end_pending",
        "hangup",
        "transfer",
        "transfer_in_flight",
    )

    def __init__(
        self,
        config: CallConfig,
        actions: list[events.Event],
        end: Callable[[str, str, bool], None],
        report: Callable[[str, str, bool], None],
        tell: Callable[[str, float], None],
    ) -> None:
        """``end(outcome, reason, apologize)``: end the call now; ``report(outcome,
        reason, apologize)``: report an ending that was pending; ``tell(text, now)``:
        tell the model and ask for a response."""
        self._config = config
        self._actions = actions
        self._end = end
        self._report = report
        self._tell = tell
        self.hangup: tuple[str, str] | None = None  # (outcome, reason)
        self.transfer: tuple[str, str] | None = None  # (number, label)
        #: TransferCall was issued; waiting for transfer_done / transfer_failed
        self.transfer_in_flight = False
        #: when to stop waiting for the last mark echo (playback grace)
        self.deadline: float | None = None
        #: the stream ended while a transfer's REST reply was pending: (outcome, reason, apologize),
        #: reported (CallEnded) once the reply says whether the transfer happened
        self.end_pending: tuple[str, str, bool] | None = None

    @property
    def idle(self) -> bool:
        """Nothing asked: no hang-up, no transfer."""
        return self.hangup is None and self.transfer is None

    @property
    def waiting(self) -> bool:
        """Something asked that still waits for the agent to finish."""
        return self.hangup is not None or (self.transfer is not None and not self.transfer_in_flight)

    def transfer_ended(self) -> tuple[str, str] | None:
        """Forget the transfer (it failed); returns what it was."""
        transfer, self.transfer = self.transfer, None
        self.transfer_in_flight = False
        self.deadline = None
        return transfer

    def check(self, now: float, busy: bool, playout: Playout) -> None:
        """Something waits (``waiting``): carry it out once the agent is not ``busy``
        (a response, a tool, audio arriving) and what was sent has played."""
        if busy:
            self.deadline = None
            return
        if playout.unconfirmed:
            # Wait for the last mark echo, but not forever if echoes stop coming.
            self.deadline = playout.drained_at(now) + self._config.playback_grace_s
            return
        self.deadline = None
        if self.transfer is not None:
            if not self.transfer_in_flight:  # else wait for transfer_done / transfer_failed
                self.transfer_in_flight = True
                self._actions.append(events.TransferCall(*self.transfer))
            return
        if self.hangup is not None:
            self._end(*self.hangup, False)

    def defer_end(self, outcome: str, reason: str, apologize: bool) -> bool:
        """The call ends: True if its ending waits for the transfer's REST reply."""
        if self.transfer_in_flight and outcome != "transferred":
            # Twilio stops the stream when the redirect takes effect, maybe before its
            # REST reply: the reply (transfer_done / transfer_failed) decides the outcome.
            self.end_pending = (outcome, reason, apologize)
            return True
        return False

    def failed(self, reason: str, now: float, ended: bool, escalating: bool) -> None:
        """The redirect failed (``escalating``: it was the fallback for a failing model)."""
        if self.end_pending is not None:  # the caller hung up meanwhile: that is how it ended
            number = self.transfer[0] if self.transfer else "?"
            self._actions.append(events.TransferFailed(number, reason))
            outcome, why, _ = self.end_pending
            self._report_pending(outcome, f"{why}; the transfer to {number} failed: {reason}")
            return
        if ended or self.transfer is None:
            return
        transfer = self.transfer_ended()
        assert transfer is not None
        number, label = transfer
        self._actions.append(events.TransferFailed(number, reason))
        if escalating:  # the fallback for a failing model failed too
            self._end("failed", f"fallback transfer failed: {reason}", True)
            return
        self._tell(self._config.wording.transfer_failed.format(label=label, number=number, reason=reason), now)

    def done(self) -> tuple[str, str] | None:
        """The redirect happened. Returns (outcome, reason) to end the call with,
        unless its ending was pending (then it is reported here)."""
        if self.end_pending is not None:  # the stream stopped first: Twilio's redirect ended it
            label = self.transfer[1] if self.transfer else "?"
            self._report_pending("transferred", f"transferred to {label} (the stream stopped before the REST reply)")
            return None
        if self.transfer is not None:
            return "transferred", f"transferred to {self.transfer[1]}"
        return None

    def unresolved(self, why: str) -> None:
        """No REST reply will come (shutdown): report the ending with what is known."""
        if self.end_pending is not None:
            outcome, reason, _ = self.end_pending
            number = self.transfer[0] if self.transfer else "?"
            self._report_pending(outcome, f"{reason}; transfer to {number} unconfirmed ({why})")

    def _report_pending(self, outcome: str, reason: str) -> None:
        pending, self.end_pending = self.end_pending, None
        apologize = pending[2] if pending else False
        self.transfer_ended()
        self._report(outcome, reason, apologize)


class Keypad:
    """The caller's keys: every key pressed (``pressed``, shared with ``CallContext``),
    the batch not yet sent, and the limits; ``KeyPressed`` goes to ``actions``."""

    __slots__ = ("_actions", "_at", "_config", "_credit", "_limit", "deadline", "dropped", "pending", "pressed")

    def __init__(self, config: CallConfig, actions: list[events.Event], limit: Callable[[str, str], None]) -> None:
        """``limit(what, limit)``: notice caller input over a limit (once per call and kind)."""
        self._config = config
        self._actions = actions
        self._limit = limit
        self.pressed: list[str] = []
        self.pending: list[str] = []
        self.deadline: float | None = None
        self._credit = config.max_digits_per_s
        self._at = 0.0
        self.dropped = 0

    def key(self, digit: str, now: float) -> bool:
        """A key from the caller; True if the batch should go now ('#')."""
        config = self._config
        credit = min(config.max_digits_per_s, self._credit + (now - self._at) * config.max_digits_per_s)
        self._at = now
        if len(self.pressed) >= config.max_digits or credit < 1.0:
            self._credit = credit
            self.dropped += 1
            self._limit("keypad", f"{config.max_digits} per call, {config.max_digits_per_s:g} per second")
            return False
        self._credit = credit - 1.0
        self.pressed.append(digit)
        self._actions.append(events.KeyPressed(digit))
        return self.press(digit, now, config.dtmf_pause_s)

    def press(self, digit: str, now: float, pause_s: float) -> bool:
        """A key for the batch; True if the batch should go now ('#')."""
        self.pending.append(digit)
        if digit == "#":
            return True
        self.deadline = now + pause_s
        return False

    def take(self) -> str | None:
        """The batch, space-separated, or None."""
        self.deadline = None
        if not self.pending:
            return None
        keys = " ".join(self.pending)
        self.pending.clear()
        return keys
