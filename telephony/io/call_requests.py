"""What tools and Twilio's callbacks ask of a live call.

``CallContext.end_call()``, ``transfer()`` and ``send_dtmf()`` (the
``CallControl`` interface) and the answering-machine verdict from
``/amd-status`` all end up here. Tools may run in a worker thread: each request
is carried onto the call's event loop, handed to the core with the loop's
clock, and what the core queued is carried out at once. ``send_dtmf`` returns
once the core reports the tones played (``TonesPlayed``), or False if the call
ended first.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from ..audio.dtmf import check_digits
from ..call import Call, TonesPlayed
from ..tools import CallContext
from ..tools.context import CallControl
from .transfers import CallTransfers

__all__ = ["CallRequests"]


class CallRequests(CallControl):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        call: Call,
        pump: Callable[[], None],
        transfers: CallTransfers,
        context: Callable[[], CallContext | None],
        voicemail_message: str | None,
    ) -> None:
        """``pump()``: carry out what the core queued; ``context()``: the call's
        context once it started; ``voicemail_message``: the default (setting)."""
        self._loop = loop
        self._call = call
        self._pump = pump
        self._transfers = transfers
        self._context = context
        self._voicemail = voicemail_message
        self._thread = threading.get_ident()
        #: keypad tones asked for by token, resolved when they have played (TonesPlayed)
        self._tones: dict[str, asyncio.Future[bool]] = {}

    def _in_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the event loop (tools may call from a worker thread)."""
        if threading.get_ident() == self._thread:
            fn()
            self._pump()
        else:
            self._loop.call_soon_threadsafe(self._run_and_flush, fn)

    def _run_and_flush(self, fn: Callable[[], None]) -> None:
        fn()
        self._pump()

    def request_hangup(self, reason: str) -> None:
        self._in_loop(lambda: self._call.request_hangup(reason, self._loop.time()))

    async def request_transfer(self, target: str, warm: bool | None = None, summary: str | None = None) -> str:
        """Resolve ``target`` (directory name or E.164 number) and schedule it."""
        number, label = self._transfers.target(target, warm, summary)
        self._in_loop(lambda: self._call.request_transfer(number, label, self._loop.time()))
        return f"Transferring the caller to {label} once you finish speaking."

    def answered(self, answered_by: str) -> None:
        """Twilio's answering-machine verdict for this call (from ``/amd-status``)."""
        ctx = self._context()
        message = (ctx.parameters.get("voicemail_message") if ctx else None) or self._voicemail
        self._in_loop(lambda: self._call.verdict(answered_by, self._loop.time(), voicemail=message))

    async def send_dtmf(self, digits: str) -> bool:
        """Keypad tones into the call after what is queued; True once they have played."""
        check_digits(digits)  # ValueError here, in the tool's own task
        waiter: asyncio.Future[bool] = self._loop.create_future()
        token = f"dtmf{len(self._tones)}-{id(waiter)}"
        self._tones[token] = waiter
        self._in_loop(lambda: self._call.send_tones(digits, token, self._loop.time()))
        return await waiter

    def tones_played(self, ev: TonesPlayed) -> None:
        waiter = self._tones.pop(ev.token, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(ev.played)
