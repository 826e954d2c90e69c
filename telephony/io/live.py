"""Which calls are live right now, and what each is doing (for the console).

Fed by ``CallReport`` with the call core's notices and actions (never per audio
frame): a call appears at ``CallStarted`` and leaves at ``CallEnded``; its state
follows the notices (the agent's first audio of a turn: speaking; a barge-in, a
finished response: listening; a tool running; the session lost: reconnecting).
Watchers (the console's Server-Sent Events) wait on ``changed()``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from ..call import events as ev

__all__ = ["LiveCall", "LiveCalls"]


@dataclass
class LiveCall:
    call_sid: str
    from_number: str | None
    to_number: str | None
    agent: str | None
    started_at: float  # unix time
    state: str = "listening"  # listening | speaking | running a tool | reconnecting
    tools_running: int = 0
    console: bool = False  # the browser phone, not a phone line

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "from_number": self.from_number,
            "to_number": self.to_number,
            "agent": self.agent,
            "started_at": self.started_at,
            "state": self.state,
            "console": self.console,
        }


class LiveCalls:
    """This process's live calls, by CallSid; a version number that moves on every change."""

    def __init__(self) -> None:
        self.calls: dict[str, LiveCall] = {}
        self.version = 0
        self._changed = asyncio.Event()

    def snapshot(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in sorted(self.calls.values(), key=lambda c: c.started_at)]

    async def changed(self, since: int, timeout: float) -> bool:
        """Wait until the version passes ``since`` (or ``timeout``); whether it did."""
        while self.version <= since:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return False
        return True

    def wake(self) -> None:
        """Wake every watcher (the server is draining: they look and leave)."""
        self._touch()

    def _touch(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()  # the next waiters wait for the next change

    def observe(self, call_sid: str, event: ev.Event) -> None:
        """One notice or action of a call (cheap: a dict look-up and an assignment)."""
        if isinstance(event, ev.CallStarted):
            params = event.start.custom_parameters
            self.calls[call_sid] = LiveCall(
                call_sid,
                event.from_number,
                event.to_number,
                params.get("agent"),
                time.time(),
                console=params.get("console") == "true",
            )
            self._touch()
            return
        call = self.calls.get(call_sid)
        if call is None:
            return
        state = call.state
        match event:
            case ev.CallEnded():
                del self.calls[call_sid]
                self._touch()
                return
            case ev.FirstAudio():
                state = "speaking"
            case ev.BargeIn() | ev.ResponseFinished():
                state = "running a tool" if call.tools_running else "listening"
            case ev.RunTool():
                call.tools_running += 1
                state = "running a tool"
            case ev.RealtimeLost():
                state = "reconnecting"
            case ev.RealtimeReconnected():
                state = "running a tool" if call.tools_running else "listening"
            case _:
                return
        if state != call.state:
            call.state = state
            self._touch()

    def tool_finished(self, call_sid: str) -> None:
        call = self.calls.get(call_sid)
        if call is None:
            return
        call.tools_running = max(0, call.tools_running - 1)
        if call.state == "running a tool" and not call.tools_running:
            call.state = "listening"
            self._touch()
