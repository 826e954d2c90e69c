"""``POST /amd-status``: Twilio's asynchronous answering-machine verdict.

The verdict (``AnsweredBy``) arrives on an HTTP request while the call lives in
a ``CallSession`` of this process: it is handed to the live session with that
CallSid. With several workers or replicas the request may reach a process that
does not hold the call: it is logged (``amd.unrouted``) and answered 204, and
that call's greeting goes ahead when ``TELEPHONY_AMD_WAIT_SECONDS`` runs out
(treated as a person). Route Twilio's callbacks by CallSid, or run one worker,
where voicemail detection matters.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response

from ...logs import log_event

if TYPE_CHECKING:
    from ..state import AppState
    from .routes import SignedForm

__all__ = ["VERDICTS", "add_amd_routes"]

log = logging.getLogger("telephony.amd")

#: Twilio's AnsweredBy values with MachineDetection=DetectMessageEnd
VERDICTS = frozenset(
    {"human", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax", "unknown", "machine_start"}
)


def add_amd_routes(app: FastAPI, state: AppState, signed_form: SignedForm) -> None:
    admission = state.admission

    @app.post("/amd-status")
    async def amd_status(request: Request) -> Response:
        params = await signed_form(request)
        if isinstance(params, Response):  # refused: bad signature, too large, too slow
            return params
        call_sid = str(params.get("CallSid") or "")
        answered_by = str(params.get("AnsweredBy") or "unknown")
        if answered_by not in VERDICTS:
            answered_by = "unknown"
        session = next((s for s in admission.sessions if s.call_sid == call_sid), None)
        if session is None:
            log_event(log, "amd.unrouted", logging.WARNING, call_sid=call_sid, answered_by=answered_by)
            return Response(status_code=204)
        session.requests.answered(answered_by)
        return Response(status_code=204)
