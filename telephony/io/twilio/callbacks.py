"""Smaller Twilio callbacks: the stream's status and the number's voice fallback.

``POST /stream-status`` (``<Stream statusCallback>``): Twilio reports the
stream's ``stream-started``, ``stream-stopped`` and ``stream-error`` (with
``StreamError``), so a stream that never connected is visible in the logs
(``stream.status``; errors at WARNING) and counters (``stream_<event>``).

``POST /voice-fallback``: the number's ``voice_fallback_url`` when
``TELEPHONY_VOICE_FALLBACK_URL`` is not set (``telephony configure`` sets
one): Twilio asks it when ``/incoming-call`` failed or timed out; it says the
apology and hangs up rather than Twilio's generic error message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response

from ...logs import log_event
from ...wire.twiml import say_and_hangup

if TYPE_CHECKING:
    from ..state import AppState
    from .routes import SignedForm

__all__ = ["CallEndings", "add_callback_routes"]

log = logging.getLogger("telephony.server")


class CallEndings:
    """Hang-up by REST as a fallback: when the bridge closes a stream to end the call,
    Twilio should ask ``/stream-ended`` (or report ``completed``) within seconds; if
    it does not (in this process), the call is hung up through the REST API."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self._waiting: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, call_sid: str, hangup: Callable[[str], Awaitable[None]]) -> None:
        """The bridge closed ``call_sid``'s stream to end it: make sure it ends."""
        if self.wait_s <= 0 or not call_sid or call_sid in self._waiting:
            return
        ended = self._waiting[call_sid] = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._fallback(call_sid, ended, hangup))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def ended(self, call_sid: str) -> None:
        """Twilio went on with (or finished) the call after its stream closed."""
        event = self._waiting.pop(call_sid, None)
        if event is not None:
            event.set()

    async def _fallback(self, call_sid: str, ended: asyncio.Event, hangup: Callable[[str], Awaitable[None]]) -> None:
        try:
            await asyncio.wait_for(ended.wait(), self.wait_s)
            return
        except TimeoutError:
            pass
        finally:
            self._waiting.pop(call_sid, None)
        log_event(log, "call.hangup_fallback", logging.WARNING, call_sid=call_sid, waited_s=self.wait_s)
        try:
            await hangup(call_sid)
        except Exception as exc:  # the call may have ended meanwhile: logged, nothing else to do
            log_event(log, "call.hangup_fallback_failed", logging.WARNING, call_sid=call_sid, error=str(exc))


_STREAM_EVENTS = frozenset({"stream-started", "stream-stopped", "stream-error"})


def add_callback_routes(app: FastAPI, state: AppState, signed_form: SignedForm) -> None:
    observer, settings = state.observer, state.settings

    @app.post("/stream-status")
    async def stream_status(request: Request) -> Response:
        params = await signed_form(request)
        if isinstance(params, Response):  # refused: bad signature, too large, too slow
            return params
        event = str(params.get("StreamEvent") or "")
        event = event if event in _STREAM_EVENTS else "other"
        observer.counters[f"stream_{event}"] += 1
        log_event(
            log,
            "stream.status",
            logging.WARNING if event == "stream-error" else logging.INFO,
            call_sid=params.get("CallSid"),
            stream_sid=params.get("StreamSid"),
            stream_event=event,
            error=params.get("StreamError"),
        )
        return Response(status_code=204)

    @app.post("/voice-fallback")
    async def voice_fallback(request: Request) -> Response:
        params = await signed_form(request)
        if isinstance(params, Response):  # refused: bad signature, too large, too slow
            return params
        observer.counters["voice_fallback"] += 1
        log_event(
            log,
            "call.voice_fallback",
            logging.WARNING,
            call_sid=params.get("CallSid"),
            error=params.get("ErrorCode"),
            url=params.get("ErrorUrl"),
        )
        return Response(say_and_hangup(settings.apology), media_type="application/xml")
