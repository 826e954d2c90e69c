"""Transfers that come back: the ``<Dial action>`` round trip.

A transfer redirects the live call to ``<Dial action=/dial-ended timeout=…
answerOnBridge="true">``; Twilio ends our media stream, rings the human, and
posts the dial's result (``DialCallStatus``, ``DialCallDuration``) to the
action. Bridged (``completed``/``answered``): the call is the human's, hang up
when they do. Otherwise the action answers ``<Connect><Stream>`` again for the
same CallSid, and the new stream's session continues with the conversation the
first stream left here (``TransferLedger``) and the model is told why.

The ledger lives in this process, keyed by CallSid. With several workers or
replicas the action may reach another process than the one that parked the
conversation: the call still comes back to the agent (the stream parameters
say why), but without the earlier conversation (logged
``transfer.returned`` with ``restored=0``). Kept for
``TELEPHONY_TRANSFER_KEEP_SECONDS`` at most.

The routes are added by ``add_dial_routes`` (own function, so per-call stream
tokens can cover this re-entry without touching the other Twilio routes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response

from ...logs import log_event
from ...wire.twiml import connect_stream, empty, hangup, stream_url, whisper
from ...wording import WHISPER
from .stream_token import TOKEN_PARAMETER

if TYPE_CHECKING:
    from ..state import AppState
    from .routes import SignedForm

__all__ = ["RETURN_PARAMETER", "RETURN_PARAMETERS", "Parked", "TransferLedger", "add_dial_routes", "dial_action_url"]

log = logging.getLogger("telephony.transfer")

#: the stream parameter that marks a stream as the call back from a transfer (its value: DialCallStatus)
RETURN_PARAMETER = "TransferStatus"
#: the stream parameters the dial action adds (dropped when a returned call is parked again)
RETURN_PARAMETERS = frozenset({RETURN_PARAMETER, "TransferLabel"})
#: Twilio's statuses for a dial that bridged the caller to the human
BRIDGED = frozenset({"completed", "answered"})
#: metric labels (anything else is counted as "other")
_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})


@dataclass
class Parked:
    """What a transferred call leaves for its possible return."""

    number: str
    label: str
    conversation: tuple[list[list[str]], dict[str, float]]
    agent: str | None = None
    first_agent: str | None = None
    #: the first stream's custom parameters (From, To, direction, ...), given to the returning stream
    parameters: dict[str, str] = field(default_factory=dict)
    #: the first stream's call record (complete once that stream ended), continued by the return
    record: Any = None
    #: a warm transfer: the human hears ``summary`` and must press 1 (``accepted``)
    warm: bool = False
    summary: str = ""
    accepted: bool = False
    parked_at: float = field(default_factory=time.monotonic)
    #: each attempt: {number, label, status, duration_s, at}
    attempts: list[dict[str, Any]] = field(default_factory=list)


class TransferLedger:
    """Conversations of calls ringing a transfer, by CallSid (this process only)."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._parked: dict[str, Parked] = {}

    def park(self, call_sid: str, parked: Parked) -> None:
        self._expire()
        previous = self._parked.get(call_sid)
        if previous is not None:  # a second transfer of the same call keeps the first's story
            parked.attempts = previous.attempts
        self._parked[call_sid] = parked

    def get(self, call_sid: str) -> Parked | None:
        self._expire()
        return self._parked.get(call_sid)

    def take(self, call_sid: str) -> Parked | None:
        self._expire()
        return self._parked.pop(call_sid, None)

    def __len__(self) -> int:
        return len(self._parked)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.keep_s
        for sid in [s for s, p in self._parked.items() if p.parked_at < cutoff]:
            del self._parked[sid]


def dial_action_url(origin: str, label: str) -> str:
    """The ``<Dial action>`` URL (the label rides in the query, which Twilio signs)."""
    return f"{origin}/dial-ended?{urlencode({'label': label})}"


def whisper_url(origin: str, call_sid: str) -> str:
    """The warm transfer's ``<Number url>`` (the caller's CallSid in the signed query)."""
    return f"{origin}/whisper?{urlencode({'call': call_sid})}"


def add_dial_routes(app: FastAPI, state: AppState, signed_form: SignedForm) -> None:
    """``POST /dial-ended``: Twilio's ``<Dial action>`` (a signed form)."""
    ledger: TransferLedger = state.services.transfers
    signatures, observer = state.signatures, state.observer

    async def _record_attempts(call_sid: str, parked: Parked) -> None:
        """The human took the call: its record (written when the stream ended) gets the attempts."""
        store = observer.store
        if store is None:
            return
        await observer.flush_records(5.0)
        record = await store.get(call_sid)
        if record is not None:
            record.transfers.extend(parked.attempts)
            observer.save(record)
            await observer.flush_records(5.0)

    @app.post("/whisper")
    async def whisper_twiml(request: Request) -> Response:
        """``<Number url>`` of a warm transfer: the summary, then press 1 to accept."""
        params = await signed_form(request)
        if isinstance(params, Response):  # refused: bad signature, too large, too slow
            return params
        call_sid = request.query_params.get("call") or ""
        parked = ledger.get(call_sid)
        if parked is None:  # the caller is gone (or another process holds the call)
            return Response(hangup(), media_type="application/xml")
        origin = signatures.origin(request.url.scheme, request.headers, request.url.netloc)
        action = f"{origin}/whisper-answer?{urlencode({'call': call_sid})}"
        text = WHISPER.format(summary=parked.summary)
        return Response(whisper(text, action), media_type="application/xml")

    @app.post("/whisper-answer")
    async def whisper_answer(request: Request) -> Response:
        params = await signed_form(request)
        if isinstance(params, Response):  # refused: bad signature, too large, too slow
            return params
        call_sid = request.query_params.get("call") or ""
        parked = ledger.get(call_sid)
        accepted = params.get("Digits") == "1" and parked is not None
        log_event(log, "transfer.whisper", call_sid=call_sid, accepted=accepted)
        if not accepted:
            return Response(hangup(), media_type="application/xml")
        assert parked is not None
        parked.accepted = True
        return Response(empty(), media_type="application/xml")  # the whisper ends: Twilio bridges

    @app.post("/dial-ended")
    async def dial_ended(request: Request) -> Response:
        params = await signed_form(request)
        if isinstance(params, Response):  # refused: bad signature, too large, too slow
            return params
        call_sid = str(params.get("CallSid") or "")
        status = str(params.get("DialCallStatus") or "failed")
        try:
            duration = int(str(params.get("DialCallDuration") or 0))
        except ValueError:
            duration = 0
        label = request.query_params.get("label") or "a colleague"
        observer.counters[f"transfer_{status}"] += 1
        observer.metrics.transfers.labels(status if status in _STATUSES else "other").inc()
        parked = ledger.get(call_sid)
        if parked is not None:
            parked.attempts.append(
                {"number": parked.number, "label": label, "status": status, "duration_s": duration, "at": time.time()}
            )
        log_event(log, "transfer.result", call_sid=call_sid, status=status, duration_s=duration, label=label)
        if status in BRIDGED and parked is not None and parked.warm and not parked.accepted:
            status = "declined"  # the human hung up or did not press 1 during the whisper
            parked.attempts[-1]["status"] = status
        if status in BRIDGED:
            ledger.take(call_sid)
            if parked is not None:
                await _record_attempts(call_sid, parked)
            return Response(hangup(), media_type="application/xml")
        origin = signatures.origin(request.url.scheme, request.headers, request.url.netloc)
        if parked is not None:
            parameters = dict(parked.parameters)
        else:  # parked by another process, or kept too long: the call still comes back
            parameters = {k: params[k] for k in ("From", "To", "CallSid") if isinstance(params.get(k), str)}
            if str(params.get("Direction") or "").startswith("outbound"):
                parameters["direction"] = "outbound"
        parameters[RETURN_PARAMETER] = status
        parameters["TransferLabel"] = label
        # The new stream proves itself like any other: a fresh token for this CallSid
        # covering these parameters (the first stream's token was single-use).
        parameters.pop(TOKEN_PARAMETER, None)
        proof = state.services.streams.issue(call_sid, parameters)
        if proof:
            parameters[TOKEN_PARAMETER] = proof
        twiml = connect_stream(
            stream_url(origin), parameters, action=origin + "/stream-ended", status_callback=origin + "/stream-status"
        )
        return Response(twiml, media_type="application/xml")
