"""The tool ledger: every function call gets exactly one output.

A call is remembered with the turn and the Realtime session it was made in, so
a result that comes back after a reconnect can be delivered in a form the new
session understands, and one ``response.create`` follows once no call of that
turn is pending.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PendingTool", "ToolLedger"]


@dataclass(frozen=True, slots=True)
class PendingTool:
    name: str
    turn: int
    generation: int  # the Realtime session it was made in


class ToolLedger:
    __slots__ = ("_pending", "_seen", "needs_response")

    def __init__(self) -> None:
        self._pending: dict[str, PendingTool] = {}
        self._seen: set[str] = set()
        #: a finished call of the current turn wants a response once none is pending
        self.needs_response = False

    def called(self, call_id: str, name: str, turn: int, generation: int) -> bool:
        """Register a function call; False if that call id was seen before."""
        if call_id in self._seen:
            return False
        self._seen.add(call_id)
        self._pending[call_id] = PendingTool(name, turn, generation)
        return True

    def finished(self, call_id: str) -> PendingTool | None:
        """The pending call, now answered (None: unknown or already answered)."""
        return self._pending.pop(call_id, None)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def take_needs_response(self) -> bool:
        needs, self.needs_response = self.needs_response, False
        return needs
