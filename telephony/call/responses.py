"""The response gate: at most one model response at a time.

The API refuses a ``response.create`` while a response is active, so ours wait
in a short queue until ``response.done``. Two races are benign and ignored
upstream (``BENIGN_ERRORS``): a cancel of a response that just ended, and a
create that lost to the server's own VAD-created response.
"""

from __future__ import annotations

from enum import Enum

from ..wire import realtime as rt

__all__ = ["ResponseGate", "ResponseState"]

#: queued ``response.create`` requests beyond this are dropped (one is enough to answer)
MAX_QUEUED = 4


class ResponseState(Enum):
    IDLE = "idle"
    REQUESTED = "requested"  # our response.create is on its way
    ACTIVE = "active"  # response.created seen, response.done not yet


class ResponseGate:
    """Appends ``response.create`` messages to ``realtime_out``."""

    __slots__ = ("_out", "_queue", "_sent", "instructions", "response_id", "state")

    def __init__(self, realtime_out: list[str | bytes]) -> None:
        self._out = realtime_out
        self.state = ResponseState.IDLE
        self.response_id: str | None = None
        self._queue: list[str | None] = []
        self._sent: str | None = None  # instructions of our last response.create
        #: the active response's instructions if it is ours (for a retry), else None
        self.instructions: str | None = None

    @property
    def idle(self) -> bool:
        """No response active, requested or waiting."""
        return self.state is ResponseState.IDLE and not self._queue

    @property
    def active_id(self) -> str | None:
        """The id of the response being produced, if any."""
        return self.response_id if self.state is ResponseState.ACTIVE else None

    def request(self, instructions: str | None = None) -> None:
        if self.state is ResponseState.IDLE:
            self._send(instructions)
        elif len(self._queue) < MAX_QUEUED:
            self._queue.append(instructions)

    def _send(self, instructions: str | None) -> None:
        self.state = ResponseState.REQUESTED
        self._sent = instructions
        self._out.append(rt.response_create(instructions))

    def created(self, response_id: str) -> None:
        self.instructions = self._sent if self.state is ResponseState.REQUESTED else None
        self.state = ResponseState.ACTIVE
        self.response_id = response_id

    def done(self, response_id: str) -> None:
        if self.response_id is None or response_id == self.response_id or self.state is not ResponseState.IDLE:
            self.state = ResponseState.IDLE
            self.response_id = None
        if self._queue:
            self._send(self._queue.pop(0))

    def refused(self) -> None:
        """An error arrived: if it refused our create, do not wait for response.created."""
        if self.state is ResponseState.REQUESTED:
            self.state = ResponseState.IDLE
            if self._queue:
                self._send(self._queue.pop(0))

    def reset(self) -> bool:
        """The session is gone; returns whether a response was wanted or under way."""
        busy = self.state is not ResponseState.IDLE or bool(self._queue)
        self.state, self.response_id = ResponseState.IDLE, None
        self._queue.clear()
        return busy
