"""Call control: hang-up and transfer requests, and keypad digits.

A hang-up or transfer waits until the agent's words have been said and played
(the façade decides when; this holds what was asked and the deadline). Keypad
digits are sent to the model in batches: after a pause, or at once on ``#``.
"""

from __future__ import annotations

__all__ = ["Control", "Keypad"]


class Control:
    __slots__ = ("deadline", "hangup", "transfer", "transfer_in_flight")

    def __init__(self) -> None:
        self.hangup: tuple[str, str] | None = None  # (outcome, reason)
        self.transfer: tuple[str, str] | None = None  # (number, label)
        #: TransferCall was issued; waiting for transfer_done / transfer_failed
        self.transfer_in_flight = False
        #: when to stop waiting for the last mark echo (playback grace)
        self.deadline: float | None = None

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


class Keypad:
    __slots__ = ("deadline", "pending")

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.deadline: float | None = None

    def press(self, digit: str, now: float, pause_s: float) -> bool:
        """A key; True if the batch should go now ('#')."""
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
