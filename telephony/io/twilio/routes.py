"""Twilio's side of the app: the voice webhook, the stream's end and status
callbacks (signed forms), and the media-stream WebSocket (signed upgrade)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response, WebSocket

from ...logs import log_event
from ...wire.twiml import connect_stream, hangup, say_and_hangup, stream_url
from ...wording import BUSY_MESSAGE, DRAINING_MESSAGE
from ..bridge import CallSession
from ..observe import CALL_STATUSES
from ..state import AppState
from .amd import add_amd_routes
from .callbacks import add_callback_routes
from .dial import add_dial_routes
from .recording import add_recording_routes, recording_notice
from .stream_token import TOKEN_PARAMETER

__all__ = ["add_twilio_routes"]

#: ``await signed_form(request)``: the webhook's form fields when the request is
#: signed and within limits, else the refusal to return (403, 408, 413, 415).
SignedForm = Callable[[Request], Awaitable["dict[str, Any] | Response"]]

log = logging.getLogger("telephony.server")


def add_twilio_routes(app: FastAPI, state: AppState) -> None:
    settings, services = state.settings, state.services
    signatures, admission, observer = state.signatures, state.admission, state.observer

    max_body = settings.max_webhook_bytes

    def _refused(status: int, text: str, path: str) -> Response:
        observer.counters[f"webhook_refused_{status}"] += 1
        log_event(log, "webhook.refused", logging.WARNING, path=path, status=status, reason=text)
        return Response(text, status_code=status, media_type="text/plain")

    async def _read_body(request: Request) -> bytes | Response:
        """A webhook's body, read only if it is a small urlencoded form that arrives
        in time (Twilio's webhooks are): else the refusal to answer, unread."""
        path = request.url.path
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("", "application/x-www-form-urlencoded"):
            return _refused(415, "Twilio webhooks are application/x-www-form-urlencoded", path)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return _refused(413, f"body over {max_body} bytes", path)
        body = bytearray()

        async def read() -> bool:
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > max_body:
                    return False
            return True

        try:
            if not await asyncio.wait_for(read(), settings.request_timeout):
                return _refused(413, f"body over {max_body} bytes", path)
        except TimeoutError:
            return _refused(408, f"body not received within {settings.request_timeout:g} s", path)
        return bytes(body)

    async def _signed_form(request: Request) -> dict[str, Any] | Response:
        body = await _read_body(request)
        if isinstance(body, Response):
            return body
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
            params.setdefault(key, []).append(value)
        flat: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in params.items()}
        origin = signatures.origin(request.url.scheme, request.headers, request.url.netloc)
        url = origin + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if not signatures.valid(url, flat, request.headers):
            observer.counters["webhook_rejected_signature"] += 1
            log_event(
                log,
                "signature.rejected",
                logging.WARNING,
                path=request.url.path,
                url=url,
                hint="the signature is checked against this URL: set PUBLIC_URL to the origin Twilio calls",
                call_sid=flat.get("CallSid") if isinstance(flat.get("CallSid"), str) else None,
            )
            return _forbidden()
        return flat

    def _forbidden() -> Response:
        return Response("invalid Twilio signature", status_code=403, media_type="text/plain")

    def _twiml(body: str) -> Response:
        return Response(body, media_type="application/xml")

    @app.post("/incoming-call")
    async def incoming_call(request: Request) -> Response:
        params = await _signed_form(request)
        if isinstance(params, Response):
            return params
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
        token = services.streams.issue(parameters.get("CallSid", ""), parameters)
        if token:
            parameters[TOKEN_PARAMETER] = token
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
        if isinstance(params, Response):
            return params
        sid = str(params.get("CallSid") or "")
        services.endings.ended(sid)
        ended = observer.ended.get(sid)
        if ended is not None and ended.reason.startswith("busy:"):  # refused at the stream: every slot taken
            return _twiml(say_and_hangup(BUSY_MESSAGE))
        if await observer.apologized(sid):
            return _twiml(say_and_hangup(settings.apology))
        return _twiml(hangup())

    @app.post("/call-status")
    async def call_status(request: Request) -> Response:
        params = await _signed_form(request)
        if isinstance(params, Response):
            return params
        status = params.get("CallStatus")
        if status in ("completed", "busy", "failed", "no-answer", "canceled"):
            services.endings.ended(str(params.get("CallSid") or ""))
        known = status if isinstance(status, str) and status in CALL_STATUSES else "other"  # labels: known values only
        observer.counters[f"status_{known}"] += 1
        observer.metrics.status_callbacks.labels(known).inc()
        log_event(
            log,
            "call.status",
            call_sid=params.get("CallSid"),
            status=status,
            duration_s=params.get("CallDuration"),
            direction=params.get("Direction"),
        )
        return Response(status_code=204)

    def _admit(session: CallSession) -> str | None:
        """A stream's start was proven: it takes a call slot, exactly up to TELEPHONY_MAX_CALLS."""
        admission.pending.pop(session, None)
        if admission.full():
            observer.counters["stream_rejected_busy"] += 1
            observer.metrics.rejected.labels("stream_busy").inc()
            log_event(
                log, "stream.rejected_busy", logging.WARNING, call_sid=session.call_sid, calls=len(admission.calls)
            )
            return f"busy: {admission.max_calls} calls in progress (TELEPHONY_MAX_CALLS)"
        admission.calls.add(session)
        return None

    @app.websocket("/media-stream")
    async def media_stream(ws: WebSocket) -> None:
        origin = signatures.origin(ws.url.scheme, ws.headers, ws.url.netloc)
        if not signatures.valid(stream_url(origin), {}, ws.headers):
            observer.counters["stream_rejected_signature"] += 1
            log_event(log, "signature.rejected", logging.WARNING, path="/media-stream")
            await ws.close(code=1008)  # before accept: the upgrade is refused (HTTP 403)
            return
        if admission.draining:
            await ws.close(code=1013)
            return
        while len(admission.pending) >= admission.max_pending:  # the oldest stream without start goes
            oldest = next(iter(admission.pending))
            admission.pending.pop(oldest, None)
            observer.counters["stream_evicted_pending"] += 1
            oldest.end_now("failed", "too many streams waiting for start")
        await ws.accept()
        session = CallSession(ws, services, observer.call(), admit=_admit)
        observer.counters["media_streams_direct" if session.direct else "media_streams_asgi"] += 1
        admission.sessions.add(session)
        admission.pending[session] = None
        observer.metrics.active_calls.set(admission.active)
        try:
            await session.run()
        finally:
            admission.sessions.discard(session)
            admission.pending.pop(session, None)
            admission.calls.discard(session)
            observer.metrics.active_calls.set(admission.active)
