"""What a tool knows about the call it runs in."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CallContext"]


@dataclass
class CallContext:
    """Handed to any tool parameter annotated ``CallContext``.

    ``parameters`` are the stream's custom parameters (TwiML ``<Parameter>``s).
    ``dtmf`` holds the keys the caller pressed so far, in order.
    ``end_call()`` and ``transfer(target)`` ask the bridge to hang up or hand the
    caller to a human once the agent's current words have played.
    """

    call_sid: str
    from_number: str | None = None
    to_number: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    dtmf: list[str] = field(default_factory=list)
    #: outbound calls with answering-machine detection: Twilio's verdict once known
    #: (human, machine_end_beep, machine_end_silence, machine_end_other, fax, unknown)
    answered_by: str | None = None
    _controller: CallControl | None = field(default=None, repr=False, compare=False)

    def end_call(self, reason: str = "ended by tool") -> None:
        """Hang up after the agent's words that are queued now have played."""
        if self._controller is None:
            raise RuntimeError("this CallContext is not attached to a live call")
        self._controller.request_hangup(reason)

    async def transfer(self, target: str, warm: bool | None = None, summary: str | None = None) -> str:
        """Redirect the caller to ``target`` (a directory name or an E.164 number)
        after the agent's queued words have played. Returns a status text.
        ``warm`` (default: ``TELEPHONY_TRANSFER_WARM`` lists the target): the human
        first hears ``summary`` and presses 1 to accept; otherwise the caller comes back."""
        if self._controller is None:
            raise RuntimeError("this CallContext is not attached to a live call")
        return await self._controller.request_transfer(target, warm, summary)

    async def send_dtmf(self, digits: str) -> bool:
        """Press keys in the call (``0-9 * # A-D``, ``w`` a 0.5 s pause) as in-band
        tones, after what is already playing. Returns once they have played
        (True), or False if the call ended first. ValueError for other digits."""
        if self._controller is None:
            raise RuntimeError("this CallContext is not attached to a live call")
        return await self._controller.send_dtmf(digits)


class CallControl:
    """Interface the bridge implements for ``CallContext`` (kept tiny on purpose)."""

    def request_hangup(self, reason: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def request_transfer(  # pragma: no cover - interface
        self, target: str, warm: bool | None = None, summary: str | None = None
    ) -> str:
        raise NotImplementedError

    async def send_dtmf(self, digits: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError
