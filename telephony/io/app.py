"""The FastAPI app: Twilio's webhooks and the media-stream WebSocket.

``create_app(settings, registry, connect_realtime=..., rest=...)``: the Realtime
connector and the Twilio REST client are handed in, so tests can use loopback
fakes and production uses ``websockets`` and the ``twilio`` library.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, OrderedDict
from typing import Any

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator, get_signature_algorithm

from ..call import EndCall, Notice
from ..config import Settings
from ..logs import log_event
from ..metrics import Metrics
from ..records import CallRecord, CallRecorder, CallStore, SqliteCallStore
from ..tools import ToolRegistry
from ..wire.twiml import connect_stream, hangup, say_and_hangup, stream_url
from .bridge import CallSession
from .realtime_client import RealtimeConnector, WebsocketsConnector
from .twilio_rest import TwilioRest, validate_e164

__all__ = ["create_app", "AppState", "drain"]

log = logging.getLogger("telephony.server")
BUSY_MESSAGE = "All of our agents are busy right now. Please call again in a few minutes. Goodbye."
DRAINING_MESSAGE = "We are restarting our phone system. Please call back in a minute. Goodbye."


class AppState:
    """What every call shares: settings, tools, connectors, counters."""

    def __init__(
        self,
        settings: Settings,
        registry: ToolRegistry,
        connect_realtime: RealtimeConnector | None = None,
        rest: TwilioRest | None = None,
        store: CallStore | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.tool_schemas = registry.schemas()
        if connect_realtime is None:
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
            connect_realtime = WebsocketsConnector(settings.realtime_url, key)
        self.connect_realtime = connect_realtime
        if rest is None and settings.twilio_account_sid and settings.twilio_auth_token:
            rest = TwilioRest(
                settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(), settings.twilio_api_base_url
            )
        self.rest = rest
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        self.validator = RequestValidator(token) if token else None
        self.shared_keys = {k: RequestValidator(v.get_secret_value())
                            for k, v in settings.twilio_webhook_shared_keys.items()}
        self.ended: OrderedDict[str, EndCall] = OrderedDict()  # how recent calls ended (for /stream-ended)
        self.sessions: set[CallSession] = set()
        self.draining = False
        self.open_realtime = 0
        self.counters: Counter[str] = Counter()
        self.started = time.time()
        self.metrics = Metrics()
        if store is None and settings.records_path:
            store = SqliteCallStore(settings.records_path)
        self.store = store
        self._writes: set[asyncio.Future[Any]] = set()
        #: extra observers of every notice: callables (session, notice) -> None (the simulator prints)
        self.listeners: list[Any] = []

    # --- counters ----------------------------------------------------------------

    def realtime_opened(self) -> None:
        self.open_realtime += 1
        self.counters["realtime_sessions_opened"] += 1

    def realtime_closed(self) -> None:
        self.open_realtime -= 1

    def on_call_start(self, session: CallSession) -> None:
        self.counters["calls_started"] += 1
        if self.store is not None and session.context is not None:
            session.recorder = CallRecorder(session.call_sid, session.loop.time(), session.context.parameters)

    def call_ended(self, call_sid: str, end: EndCall) -> None:
        if call_sid:
            self.ended[call_sid] = end
            while len(self.ended) > 2000:
                self.ended.popitem(last=False)

    def on_notice(self, session: CallSession, notice: Notice) -> None:
        kind, data = notice.kind, notice.data
        sid = session.call_sid
        recorder = session.recorder
        if recorder is not None:
            recorder.on_notice(kind, data, session.loop.time())
        for listener in self.listeners:
            listener(session, notice)
        m = self.metrics
        if kind == "call.start":
            log_event(log, "call.start", call_sid=sid, **data)
        elif kind == "call.end":
            self.counters[f"calls_{data['outcome']}"] += 1
            m.calls.labels(data["outcome"]).inc()
            log_event(log, "call.end", call_sid=sid or None, **data)
            if recorder is not None:
                self._save(recorder.record)
        elif kind == "barge_in":
            self.counters["barge_ins"] += 1
            m.barge_ins.inc()
            log_event(log, "barge_in", call_sid=sid, **data)
        elif kind == "tool.result":
            name = data.get("name", "?")
            m.tool_calls.labels(name, "ok" if data.get("ok") else "error").inc()
            m.tool_seconds.labels(name).observe(data.get("duration_s", 0.0))
        elif kind == "latency.first_audio":
            m.response_latency.observe(data["seconds"])
        elif kind in ("realtime.error", "twilio.invalid", "realtime.invalid", "twilio.media_before_start"):
            self.counters[kind] += 1
            if kind == "realtime.error":
                m.realtime_errors.labels(data.get("code") or "none").inc()
            log_event(log, kind, logging.WARNING, call_sid=sid or None, **data)
        elif kind in ("dtmf", "hangup.requested", "transfer.requested", "transfer.failed", "twilio.duplicate_start"):
            log_event(log, kind, call_sid=sid, **data)
        elif kind == "transcript":
            log_event(log, "transcript", logging.DEBUG, call_sid=sid, role=data["role"], text=data["text"])

    # --- records -------------------------------------------------------------------

    def _save(self, record: CallRecord) -> None:
        store = self.store
        assert store is not None

        def write() -> None:
            try:
                store.save(record)
            except Exception as exc:  # a full disk must not break calls
                log_event(log, "records.save_failed", logging.ERROR, call_sid=record.call_sid,
                          error=f"{type(exc).__name__}: {exc}")

        future = asyncio.get_running_loop().run_in_executor(None, write)
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)

    async def apologized_elsewhere(self, call_sid: str, wait_s: float = 1.0) -> bool:
        """Whether the call's record (written by whichever worker ran its stream,
        to the shared records file) says the bridge gave up. The record is written
        as the stream closes, so it may land a moment after Twilio asks: look a
        few times within ``wait_s``."""
        store = self.store
        assert store is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            try:
                record = await loop.run_in_executor(None, store.get, call_sid)
            except Exception:
                return False
            if record is not None and record.outcome is not None:
                return record.apologized
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.1)

    async def flush_records(self) -> None:
        """Wait until every finished call's record is written."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    # --- transfers ---------------------------------------------------------------

    def resolve_transfer_target(self, target: str) -> tuple[str, str]:
        """(E.164 number, label) for a directory name, a number, or '' (the default)."""
        settings = self.settings
        directory = {k.strip().lower(): v for k, v in settings.transfer_directory.items()}
        key = (target or "").strip().lower()
        if key in directory:
            return validate_e164(directory[key]), target.strip()
        if not key and settings.transfer_number:
            return validate_e164(settings.transfer_number), "a colleague"
        if key.startswith("+") and settings.transfer_number is None and not directory:
            return validate_e164(target), target
        if key.startswith("+") and (key in directory.values() or key == settings.transfer_number):
            return validate_e164(target), target
        names = ", ".join(sorted(directory)) or "none"
        raise ValueError(f"unknown transfer target {target!r}; known: {names}")

    # --- URLs and signatures -------------------------------------------------------

    def origin(self, scheme: str, headers: Any, netloc: str) -> str:
        """The https origin Twilio used to reach us."""
        if self.settings.public_url:
            return self.settings.public_url
        if self.settings.trust_forwarded_headers:
            proto = (headers.get("x-forwarded-proto") or scheme).split(",")[0].strip()
            host = (headers.get("x-forwarded-host") or headers.get("host") or netloc).split(",")[0].strip()
        else:
            proto, host = scheme, headers.get("host") or netloc
        proto = {"ws": "http", "wss": "https"}.get(proto, proto)
        return f"{proto}://{host}"

    def valid_signature(self, url: str, params: dict[str, Any], headers: Any) -> bool:
        """Twilio's ``X-Twilio-Signature``: HMAC-SHA1 with the auth token, or, when
        ``X-Twilio-Webhooks-Signature-Settings`` names a shared key, that key's
        secret with the algorithm it names (HMAC-SHA256), as the twilio library does."""
        if not self.settings.signatures_required:
            return True
        signature = headers.get("x-twilio-signature")
        if not signature:
            return False
        sig_settings = headers.get("x-twilio-webhooks-signature-settings")
        validator = self.validator
        algorithm = None
        if sig_settings:
            key = next((p.partition("=")[2].strip() for p in sig_settings.split(",")
                        if p.partition("=")[0].strip() == "key"), "")
            validator = self.shared_keys.get(key)
            algorithm = get_signature_algorithm(sig_settings)
        if validator is None:
            return False
        try:
            return bool(validator.validate(url, params, signature, algorithm))
        except Exception:
            return False


def create_app(
    settings: Settings,
    registry: ToolRegistry | None = None,
    connect_realtime: RealtimeConnector | None = None,
    rest: TwilioRest | None = None,
    store: CallStore | None = None,
) -> FastAPI:
    state = AppState(settings, registry if registry is not None else ToolRegistry(), connect_realtime, rest, store)
    app = FastAPI(title="telephony", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.telephony = state

    @app.get("/healthz")
    async def healthz() -> Response:
        body = {"status": "draining" if state.draining else "ok", "active_calls": len(state.sessions),
                "pid": os.getpid()}
        return JSONResponse(body, status_code=503 if state.draining else 200)

    async def _signed_form(request: Request) -> dict[str, Any] | None:
        form = await request.form()
        params: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                params.setdefault(key, []).append(value)
        flat = {k: v[0] if len(v) == 1 else v for k, v in params.items()}
        origin = state.origin(request.url.scheme, request.headers, request.url.netloc)
        url = origin + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if not state.valid_signature(url, flat, request.headers):
            log_event(log, "signature.rejected", logging.WARNING, path=request.url.path,
                      call_sid=flat.get("CallSid") if isinstance(flat.get("CallSid"), str) else None)
            return None
        return flat

    @app.post("/incoming-call")
    async def incoming_call(request: Request) -> Response:
        params = await _signed_form(request)
        if params is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        if state.draining:
            return Response(say_and_hangup(DRAINING_MESSAGE), media_type="application/xml")
        if len(state.sessions) >= settings.max_calls:
            state.counters["calls_rejected_busy"] += 1
            state.metrics.rejected.labels("busy").inc()
            log_event(log, "call.rejected_busy", logging.WARNING, call_sid=params.get("CallSid"),
                      active=len(state.sessions))
            return Response(say_and_hangup(BUSY_MESSAGE), media_type="application/xml")
        origin = state.origin(request.url.scheme, request.headers, request.url.netloc)
        parameters = {k: params.get(k) for k in ("From", "To", "CallSid") if isinstance(params.get(k), str)}
        twiml = connect_stream(stream_url(origin), parameters, action=origin + "/stream-ended")
        log_event(log, "call.incoming", call_sid=parameters.get("CallSid"))
        return Response(twiml, media_type="application/xml")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def _authorized(request: Request) -> Response | None:
        token = settings.api_token.get_secret_value() if settings.api_token else ""
        if not token:
            return JSONResponse({"error": "set TELEPHONY_API_TOKEN to enable the call records API"}, status_code=403)
        import hmac

        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        if state.store is None:
            return JSONResponse({"error": "call records are off (TELEPHONY_RECORDS_PATH is empty)"}, status_code=404)
        return None

    @app.get("/calls")
    async def list_calls(request: Request, limit: int = 50) -> Response:
        denied = _authorized(request)
        if denied is not None:
            return denied
        records = await asyncio.to_thread(state.store.list, max(1, min(limit, 1000)))
        return JSONResponse([_summary(r) for r in records])

    @app.get("/calls/{call_sid}")
    async def get_call(request: Request, call_sid: str) -> Response:
        denied = _authorized(request)
        if denied is not None:
            return denied
        record = await asyncio.to_thread(state.store.get, call_sid)
        if record is None:
            return JSONResponse({"error": f"no call {call_sid}"}, status_code=404)
        return JSONResponse(record.to_dict())

    @app.post("/stream-ended")
    async def stream_ended(request: Request) -> Response:
        """``<Connect action>``: Twilio asks what to do after we closed the stream.
        If the bridge gave up (the Realtime side failed), apologise first."""
        params = await _signed_form(request)
        if params is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        sid = str(params.get("CallSid") or "")
        end = state.ended.get(sid)
        if end is None and sid and state.store is not None:
            apologize = await state.apologized_elsewhere(sid)  # the stream ran on another worker
        else:
            apologize = end is not None and end.apologize
        if apologize:
            return Response(say_and_hangup(settings.apology), media_type="application/xml")
        return Response(hangup(), media_type="application/xml")

    @app.post("/call-status")
    async def call_status(request: Request) -> Response:
        params = await _signed_form(request)
        if params is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        status = params.get("CallStatus")
        state.counters[f"status_{status}"] += 1
        state.metrics.status_callbacks.labels(str(status)).inc()
        log_event(log, "call.status", call_sid=params.get("CallSid"), status=status,
                  duration_s=params.get("CallDuration"), direction=params.get("Direction"))
        return Response(status_code=204)

    @app.websocket("/media-stream")
    async def media_stream(ws: WebSocket) -> None:
        origin = state.origin(ws.url.scheme, ws.headers, ws.url.netloc)
        url = stream_url(origin)
        if not state.valid_signature(url, {}, ws.headers):
            state.counters["stream_rejected_signature"] += 1
            log_event(log, "signature.rejected", logging.WARNING, path="/media-stream")
            await ws.close(code=1008)  # before accept: the upgrade is refused (HTTP 403)
            return
        if state.draining or len(state.sessions) >= settings.max_calls + 5:
            await ws.close(code=1013)
            return
        await ws.accept()
        session = CallSession(ws, state)
        state.counters["media_streams_direct" if session.direct else "media_streams_asgi"] += 1
        state.sessions.add(session)
        state.metrics.active_calls.set(len(state.sessions))
        try:
            await session.run()
        finally:
            state.sessions.discard(session)
            state.metrics.active_calls.set(len(state.sessions))

    return app


def _summary(r: CallRecord) -> dict[str, Any]:
    return {"call_sid": r.call_sid, "from_number": r.from_number, "to_number": r.to_number,
            "started_at": r.started_at, "duration_s": r.duration_s, "outcome": r.outcome,
            "turns": len(r.transcript), "tool_calls": len(r.tool_calls), "barge_ins": len(r.barge_ins)}


async def drain(state: AppState, deadline_s: float) -> None:
    """Stop taking calls, let those in progress finish, then end the rest."""
    state.draining = True
    log_event(log, "server.draining", active_calls=len(state.sessions), deadline_s=deadline_s)
    end = time.monotonic() + deadline_s
    while state.sessions and time.monotonic() < end:
        waits = [asyncio.ensure_future(s.wait_ended()) for s in list(state.sessions)]
        await asyncio.wait(waits, timeout=max(0.0, end - time.monotonic()), return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
    for session in list(state.sessions):
        session.call.end("failed", "server shutting down")
        session._pump()
    if state.sessions:
        await asyncio.wait([asyncio.ensure_future(s.wait_ended()) for s in list(state.sessions)], timeout=5)

