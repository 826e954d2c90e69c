"""The FastAPI app: Twilio's webhooks, the media-stream WebSocket, the calls API.

``create_app(settings, registry, connect_realtime=..., rest=..., store=...)``:
the Realtime connector, the Twilio REST client and the records store are handed
in, so tests use loopback fakes and production uses websockets and the
``twilio`` library. What the routes share is ``AppState``, split by concern:
``services`` (what calls use), ``signatures``, ``admission`` (limits,
draining) and ``observer`` (logs, metrics, records).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from typing import Any

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse

from ..config import Settings
from ..logs import log_event
from ..records import CallRecord, CallStore, SqliteCallStore
from ..tools import ToolRegistry
from ..wire.twiml import connect_stream, hangup, say_and_hangup, stream_url
from ..wording import BUSY_MESSAGE, DRAINING_MESSAGE
from .bridge import CallSession
from .observe import CallObserver
from .realtime_client import RealtimeConnector
from .services import Services
from .signatures import Signatures
from .twilio_rest import TwilioRest

__all__ = ["create_app", "AppState", "Admission", "drain"]

log = logging.getLogger("telephony.server")


class Admission:
    """Which calls get in: the call limit, and nothing new while draining."""

    def __init__(self, max_calls: int) -> None:
        self.max_calls = max_calls
        self.sessions: set[CallSession] = set()
        self.draining = False

    @property
    def active(self) -> int:
        return len(self.sessions)

    def full(self, slack: int = 0) -> bool:
        return len(self.sessions) >= self.max_calls + slack


class AppState:
    """What every route shares."""

    def __init__(self, services: Services, observer: CallObserver) -> None:
        self.settings = services.settings
        self.services = services
        self.signatures = Signatures(services.settings)
        self.admission = Admission(services.settings.max_calls)
        self.observer = observer
        self.started = time.time()


def create_app(
    settings: Settings,
    registry: ToolRegistry | None = None,
    connect_realtime: RealtimeConnector | None = None,
    rest: TwilioRest | None = None,
    store: CallStore | None = None,
) -> FastAPI:
    services = Services(settings, registry if registry is not None else ToolRegistry(), connect_realtime, rest)
    if store is None and settings.records_path:
        store = SqliteCallStore(settings.records_path)
    state = AppState(services, CallObserver(store))
    signatures, admission, observer = state.signatures, state.admission, state.observer
    app = FastAPI(title="telephony", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.telephony = state

    @app.get("/healthz")
    async def healthz() -> Response:
        body = {"status": "draining" if admission.draining else "ok", "active_calls": admission.active,
                "pid": os.getpid()}
        return JSONResponse(body, status_code=503 if admission.draining else 200)

    # --- Twilio webhooks ---------------------------------------------------------------

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
            log_event(log, "signature.rejected", logging.WARNING, path=request.url.path,
                      call_sid=flat.get("CallSid") if isinstance(flat.get("CallSid"), str) else None)
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
            log_event(log, "call.rejected_busy", logging.WARNING, call_sid=params.get("CallSid"),
                      active=admission.active)
            return _twiml(say_and_hangup(BUSY_MESSAGE))
        origin = signatures.origin(request.url.scheme, request.headers, request.url.netloc)
        parameters = {k: params[k] for k in ("From", "To", "CallSid") if isinstance(params.get(k), str)}
        log_event(log, "call.incoming", call_sid=parameters.get("CallSid"))
        return _twiml(connect_stream(stream_url(origin), parameters, action=origin + "/stream-ended"))

    @app.post("/stream-ended")
    async def stream_ended(request: Request) -> Response:
        """``<Connect action>``: Twilio asks what to do after we closed the stream.
        If the bridge gave up (the Realtime side failed), apologise first."""
        params = await _signed_form(request)
        if params is None:
            return _forbidden()
        if await observer.apologized(str(params.get("CallSid") or "")):
            return _twiml(say_and_hangup(settings.apology))
        return _twiml(hangup())

    @app.post("/call-status")
    async def call_status(request: Request) -> Response:
        params = await _signed_form(request)
        if params is None:
            return _forbidden()
        status = params.get("CallStatus")
        observer.counters[f"status_{status}"] += 1
        observer.metrics.status_callbacks.labels(str(status)).inc()
        log_event(log, "call.status", call_sid=params.get("CallSid"), status=status,
                  duration_s=params.get("CallDuration"), direction=params.get("Direction"))
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

    # --- operators: metrics and call records -----------------------------------------------

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(observer.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def _records(request: Request) -> CallStore | Response:
        """The store, if the request may read it; else the refusal."""
        token = settings.api_token.get_secret_value() if settings.api_token else ""
        if not token:
            return JSONResponse({"error": "set TELEPHONY_API_TOKEN to enable the call records API"}, status_code=403)
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        if observer.store is None:
            return JSONResponse({"error": "call records are off (TELEPHONY_RECORDS_PATH is empty)"}, status_code=404)
        return observer.store

    @app.get("/calls")
    async def list_calls(request: Request, limit: int = 50) -> Response:
        store = _records(request)
        if isinstance(store, Response):
            return store
        records = await asyncio.to_thread(store.list, max(1, min(limit, 1000)))
        return JSONResponse([_summary(r) for r in records])

    @app.get("/calls/{call_sid}")
    async def get_call(request: Request, call_sid: str) -> Response:
        store = _records(request)
        if isinstance(store, Response):
            return store
        record = await asyncio.to_thread(store.get, call_sid)
        if record is None:
            return JSONResponse({"error": f"no call {call_sid}"}, status_code=404)
        return JSONResponse(record.to_dict())

    return app


def _summary(r: CallRecord) -> dict[str, Any]:
    return {"call_sid": r.call_sid, "from_number": r.from_number, "to_number": r.to_number,
            "started_at": r.started_at, "duration_s": r.duration_s, "outcome": r.outcome,
            "turns": len(r.transcript), "tool_calls": len(r.tool_calls), "barge_ins": len(r.barge_ins)}


async def drain(state: AppState, deadline_s: float) -> None:
    """Stop taking calls, let those in progress finish, then end the rest."""
    admission = state.admission
    admission.draining = True
    log_event(log, "server.draining", active_calls=admission.active, deadline_s=deadline_s)
    end = time.monotonic() + deadline_s
    while admission.sessions and time.monotonic() < end:
        waits = [asyncio.ensure_future(s.wait_ended()) for s in list(admission.sessions)]
        await asyncio.wait(waits, timeout=max(0.0, end - time.monotonic()), return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
    for session in list(admission.sessions):
        session.end_now("failed", "server shutting down")
    if admission.sessions:
        await asyncio.wait([asyncio.ensure_future(s.wait_ended()) for s in list(admission.sessions)], timeout=5)
