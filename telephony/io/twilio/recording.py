"""Call recordings (``TELEPHONY_RECORDING=twilio``): Twilio's dual-channel
recording, started through the REST API when the stream starts (left: the
caller, right: what the agent played), and ``POST /recording-status`` (signed)
storing the recording's SID and URL in the call record once Twilio reports it
completed (usually after the call ended: the stored record is updated).

A notice (``TELEPHONY_RECORDING_NOTICE``) is said with ``<Say>`` before the
stream connects, so it comes before anything else.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response

from ...config import Settings
from ...logs import log_event

if TYPE_CHECKING:
    from ..state import AppState
    from .routes import SignedForm

__all__ = ["add_recording_routes", "recording_notice"]

log = logging.getLogger("telephony.recording")


def recording_notice(settings: Settings) -> str | None:
    return settings.recording_notice if settings.recording != "off" else None


def add_recording_routes(app: FastAPI, state: AppState, signed_form: SignedForm) -> None:
    observer, admission = state.observer, state.admission

    @app.post("/recording-status")
    async def recording_status(request: Request) -> Response:
        params = await signed_form(request)
        if isinstance(params, Response):  # refused: bad signature, too large, too slow
            return params
        call_sid = str(params.get("CallSid") or "")
        status = str(params.get("RecordingStatus") or "")
        sid = str(params.get("RecordingSid") or "")
        url = str(params.get("RecordingUrl") or "")
        observer.counters[f"recording_{status or 'unknown'}"] += 1
        log_event(log, "recording.status", call_sid=call_sid, recording_sid=sid, status=status, url=url)
        if status != "completed" or not url:
            return Response(status_code=204)
        live = next((s for s in admission.sessions if s.call_sid == call_sid), None)
        if live is not None and live.report.recorder is not None:  # still on the line: saved at its end
            live.report.recorder.record.recording, live.report.recorder.record.recording_sid = url, sid
            return Response(status_code=204)
        store = observer.store
        if store is None:
            return Response(status_code=204)
        await observer.flush_records(5.0)  # the call's own record is written first
        record = await store.get(call_sid)
        if record is None:
            log_event(log, "recording.unmatched", logging.WARNING, call_sid=call_sid, recording_sid=sid)
            return Response(status_code=204)
        record.recording, record.recording_sid = url, sid
        observer.save(record)
        await observer.flush_records(5.0)
        return Response(status_code=204)
