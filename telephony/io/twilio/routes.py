"""Twilio's side of the app: the voice webhook, the stream's end and status
callbacks (signed forms), and the media-stream WebSocket (signed upgrade)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response, WebSocket

from ...logs import log_event
from ...wire.twiml import connect_stream, hangup, say_and_hangup, stream_url
from ...wording import BUSY_MESSAGE, DRAINING_MESSAGE
from ..bridge import CallSession
from ..state import AppState
from .amd import add_amd_routes
from .callbacks import add_callback_routes
from .dial import add_dial_routes
from .recording import add_recording_routes, recording_notice

__all__ = ["add_twilio_routes"]

log = logging.getLogger("telephony.server")


def add_twilio_routes(app: FastAPI, state: AppState) -> None:
    settings, services = state.settings, state.services
    signatures, admission, observer = state.signatures, state.admission, state.observer

    async def _signed_form(request: Request) -> dict[str, Any] | None:
        form = await request.form()
        params: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                params.setdefault(key, []).append(value)
        flat = {k: v[0] if len(v) == 1 else v for k, v in params.items()}
        origin = signatures.origin(request.url.scheme, request.headers, request.url.netloc)
        url = origin + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if not signatures.valid(url, flat, request.headers):
            log_event(
                log,
                "signature.rejected",
                logging.WARNING,
                path=request.url.path,
                call_sid=flat.get("CallSid") if isinstance(flat.get("CallSid"), str) else None,
            )
            return None
        return flat

    def _forbidden() -> Response:
        return Response("invalid Twilio signature", status_code=403, media_type="text/plain")

    def _twiml(body: str) -> Response:
        return Response(body, media_type="application/xml")

    @app.post("/incoming-call")
    async def incoming_call(request: Request) -> Response:
        params = await _signed_form(request)
        if params is None:
            return _forbidden()
        if admission.draining:
            return _twiml(say_and_hangup(DRAINING_MESSAGE))
        if admission.full():
            observer.counters["calls_rejected_busy"] += 1
            observer.metrics.rejected.labels("busy").inc()
            log_event(
                log, "call.rejected_busy", logging.WARNING, call_sid=params.get("CallSid"), active=admission.active
            )
            return _twiml(say_and_hangup(BUSY_MESSAGE))
        origin = signatures.origin(request.url.scheme, request.headers, request.url.netloc)
        parameters = {k: params[k] for k in ("From", "To", "CallSid") if isinstance(params.get(k), str)}
        log_event(log, "call.incoming", call_sid=parameters.get("CallSid"))
        return _twiml(
            connect_stream(
                stream_url(origin),
                parameters,
                action=origin + "/stream-ended",
                status_callback=origin + "/stream-status",
                notice=recording_notice(settings),
            )
        )

    add_dial_routes(app, state, _signed_form)  # transfers that come back (<Dial action>)
    add_amd_routes(app, state, _signed_form)  # answering-machine verdicts (outbound)
    add_callback_routes(app, state, _signed_form)  # stream status, voice fallback
    add_recording_routes(app, state, _signed_form)  # Twilio recordings' status

    @app.post("/stream-ended")
    async def stream_ended(request: Request) -> Response:
        """``<Connect action>``: Twilio asks what to do after we closed the stream.
        If the bridge gave up (the Realtime side failed), apologise first."""
        params = await _signed_form(request)
        if params is None:
            return _forbidden()
        services.endings.ended(str(params.get("CallSid") or ""))
        if await observer.apologized(str(params.get("CallSid") or "")):
            return _twiml(say_and_hangup(settings.apology))
        return _twiml(hangup())

    @app.post("/call-status")
    async def call_status(request: Request) -> Response:
        params = await _signed_form(request)
        if params is None:
            return _forbidden()
        status = params.get("CallStatus")
        if status in ("completed", "busy", "failed", "no-answer", "canceled"):
            services.endings.ended(str(params.get("CallSid") or ""))
        observer.counters[f"status_{status}"] += 1
        observer.metrics.status_callbacks.labels(str(status)).inc()
        log_event(
            log,
            "call.status",
            call_sid=params.get("CallSid"),
            status=status,
            duration_s=params.get("CallDuration"),
            direction=params.get("Direction"),
        )
        return Response(status_code=204)

    @app.websocket("/media-stream")
    async def media_stream(ws: WebSocket) -> None:
        origin = signatures.origin(ws.url.scheme, ws.headers, ws.url.netloc)
        if not signatures.valid(stream_url(origin), {}, ws.headers):
            observer.counters["stream_rejected_signature"] += 1
            log_event(log, "signature.rejected", logging.WARNING, path="/media-stream")
            await ws.close(code=1008)  # before accept: the upgrade is refused (HTTP 403)
            return
        if admission.draining or admission.full(slack=5):
            await ws.close(code=1013)
            return
        await ws.accept()
        session = CallSession(ws, services, observer.call())
        observer.counters["media_streams_direct" if session.direct else "media_streams_asgi"] += 1
        admission.sessions.add(session)
        observer.metrics.active_calls.set(admission.active)
        try:
            await session.run()
        finally:
            admission.sessions.discard(session)
            observer.metrics.active_calls.set(admission.active)
