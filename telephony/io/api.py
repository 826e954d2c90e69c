"""The operators' HTTP API: health, Prometheus metrics, call records."""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from ..logs import log_event
from ..records import CallQuery, CallRecord, CallStore
from .state import AppState

__all__ = ["add_operator_routes"]

log = logging.getLogger("telephony.server")


def add_operator_routes(app: FastAPI, state: AppState) -> None:
    settings, admission, observer = state.settings, state.admission, state.observer

    @app.get("/healthz")
    async def healthz() -> Response:
        failing = observer.records_error
        body: dict[str, object] = {
            "status": "draining" if admission.draining else "records_failing" if failing else "ok",
            "active_calls": admission.active,
            "pid": os.getpid(),
        }
        if failing:
            body["records_error"] = failing  # calls still work; their records are being lost
        return JSONResponse(body, status_code=503 if admission.draining or failing else 200)

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
            return JSONResponse(
                {"error": "call records are off (TELEPHONY_RECORDS_PATH and TELEPHONY_DATABASE_URL are empty)"},
                status_code=404,
            )
        return observer.store

    @app.get("/calls")
    async def list_calls(
        request: Request,
        limit: int = 50,
        offset: int = 0,
        number: str | None = None,
        outcome: str | None = None,
        after: float | None = None,
        before: float | None = None,
    ) -> Response:
        """Newest first. ``number`` matches the caller or the called number; ``after``
        and ``before`` bound the start (unix time); ``limit`` (1–1000) and ``offset``
        page through the rest."""
        store = _records(request)
        if isinstance(store, Response):
            return store
        query = CallQuery(number, outcome, after, before, max(1, min(limit, 1000)), max(0, offset))
        try:
            records = await store.list(query)
        except Exception as exc:
            return _unavailable(exc)
        return JSONResponse([_summary(r) for r in records])

    async def _record(request: Request, call_sid: str) -> CallRecord | Response | None:
        """The call's record (None: no such call), or the refusal or failure to answer."""
        store = _records(request)
        if isinstance(store, Response):
            return store
        try:
            return await store.get(call_sid)
        except Exception as exc:
            return _unavailable(exc)

    @app.get("/calls/{call_sid}")
    async def get_call(request: Request, call_sid: str) -> Response:
        record = await _record(request, call_sid)
        if isinstance(record, Response):
            return record
        if record is None:
            return JSONResponse({"error": f"no call {call_sid}"}, status_code=404)
        return JSONResponse(record.to_dict())

    @app.get("/calls/{call_sid}/recording")
    async def get_recording(request: Request, call_sid: str) -> Response:
        """The call's local recording (TELEPHONY_RECORDING=local), a stereo WAV."""
        record = await _record(request, call_sid)
        if isinstance(record, Response):
            return record
        path = Path(record.recording) if record is not None and record.recording else None
        if path is None or path.suffix != ".wav" or not path.is_file():
            return JSONResponse({"error": f"no local recording of call {call_sid}"}, status_code=404)
        return FileResponse(path, media_type="audio/wav", filename=path.name)


def _unavailable(exc: Exception) -> Response:
    """The store failed (a database outage): say so, 503, and log it."""
    error = f"{type(exc).__name__}: {exc}"
    log_event(log, "records.read_failed", logging.ERROR, error=error)
    return JSONResponse({"error": f"call records are unavailable: {error}"}, status_code=503)


def _summary(r: CallRecord) -> dict[str, Any]:
    return {
        "call_sid": r.call_sid,
        "from_number": r.from_number,
        "to_number": r.to_number,
        "started_at": r.started_at,
        "duration_s": r.duration_s,
        "outcome": r.outcome,
        "turns": len(r.transcript),
        "tool_calls": len(r.tool_calls),
        "barge_ins": len(r.barge_ins),
    }
