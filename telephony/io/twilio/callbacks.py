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

import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response

from ...logs import log_event
from ...wire.twiml import say_and_hangup

if TYPE_CHECKING:
    from ..state import AppState

__all__ = ["add_callback_routes"]

log = logging.getLogger("telephony.server")

_STREAM_EVENTS = frozenset({"stream-started", "stream-stopped", "stream-error"})


def add_callback_routes(app: FastAPI, state: AppState, signed_form: Any) -> None:
    observer, settings = state.observer, state.settings

    @app.post("/stream-status")
    async def stream_status(request: Request) -> Response:
        params = await signed_form(request)
        if params is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
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
        if params is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
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
