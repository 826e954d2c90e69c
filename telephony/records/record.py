"""One call's record (``CallRecord``) and what builds it from the call's notices
and tool results (``CallRecorder``; no per-frame work)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..call.events import (
    AgentChanged,
    Answered,
    BargeIn,
    CallEnded,
    Event,
    FirstAudio,
    HangupRequested,
    KeyPressed,
    McpApproval,
    McpCall,
    RealtimeGaveUp,
    RealtimeLost,
    RealtimeReconnected,
    ResponseFinished,
    RunTool,
    Transcript,
    TransferFailed,
    TransferRequested,
)
from ..pricing import cost_usd, usage_tokens

if TYPE_CHECKING:
    from ..tools.registry import ToolResult

__all__ = ["CallQuery", "CallRecord", "CallRecorder"]


@dataclass
class CallRecord:
    call_sid: str
    from_number: str | None = None
    to_number: str | None = None
    started_at: float = 0.0  # unix time
    ended_at: float | None = None
    duration_s: float | None = None
    outcome: str | None = None  # completed | transferred | hung_up_by_agent | failed
    reason: str | None = None
    apologized: bool = False  # the bridge gave up and the caller is told so (/stream-ended)
    transcript: list[dict[str, Any]] = field(default_factory=list)  # {t, role, text}, in order
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    barge_ins: list[dict[str, Any]] = field(default_factory=list)
    dtmf: str = ""
    usage: dict[str, int] = field(
        default_factory=lambda: {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "responses": 0}
    )
    parameters: dict[str, str] = field(default_factory=dict)
    #: who spoke from when: {t, agent, previous, how, reason}; agent turns in
    #: ``transcript`` name their agent too
    agents: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None  # the Realtime model that answered
    #: tokens by price kind, summed over responses (see telephony.pricing.PRICE_KINDS)
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None  # None: the model has no price (TELEPHONY_PRICES)
    #: the rest of the call's story, in order: {t, kind, ...} with kind one of
    #: response_latency (ms from the caller's last word to the agent's first audio),
    #: response (id, status, usage), realtime_lost, realtime_reconnected,
    #: realtime_gave_up, transfer_requested, transfer_failed, hangup_requested
    events: list[dict[str, Any]] = field(default_factory=list)
    #: the call's recording: its URL (TELEPHONY_RECORDING=twilio, once Twilio reports it completed)
    recording: str | None = None
    recording_sid: str | None = None
    #: answering-machine verdict of an outbound call (Twilio's AnsweredBy; "unknown" if none came in time)
    answered_by: str | None = None
    #: seconds from the stream's start to the verdict
    answered_by_latency_s: float | None = None
    #: each transfer attempt: {number, label, status (Twilio's DialCallStatus), duration_s, at (unix)}
    transfers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class CallQuery:
    """Which records ``CallStore.list`` returns: newest first (``started_at``, then
    ``call_sid``, descending), every filter given must match, then ``offset``
    records are skipped and at most ``limit`` returned."""

    number: str | None = None  # the caller's or the called number (exact)
    outcome: str | None = None  # completed | transferred | hung_up_by_agent | failed
    after: float | None = None  # started_at >= after (unix time)
    before: float | None = None  # started_at < before (unix time)
    limit: int = 50
    offset: int = 0


class CallRecorder:
    """Builds one call's ``CallRecord`` from what the call reports (its notices,
    the tools it ran). Times are the loop's monotonic clock; the record keeps
    seconds since the call started, and unix time for its start and end."""

    def __init__(
        self,
        call_sid: str,
        now_mono: float,
        parameters: dict[str, str] | None = None,
        model: str | None = None,
        price: dict[str, float] | None = None,
    ) -> None:
        params = parameters or {}
        self.record = CallRecord(
            call_sid, params.get("From"), params.get("To"), started_at=time.time(), parameters=dict(params), model=model
        )
        self._price = price
        if price is not None:
            self.record.cost_usd = 0.0
        self._started_mono = now_mono
        self._calls: dict[str, dict[str, Any]] = {}
        self._agent: str | None = None

    def continue_from(self, earlier: CallRecord, now_mono: float) -> None:
        """This stream continues ``earlier`` (the same call back from a transfer):
        keep its story, with times counted from its start."""
        r = self.record
        self._started_mono = now_mono - max(0.0, r.started_at - earlier.started_at)
        r.started_at = earlier.started_at
        for name in ("transcript", "tool_calls", "barge_ins", "agents", "events"):
            getattr(r, name)[:0] = getattr(earlier, name)
        r.dtmf = earlier.dtmf + r.dtmf
        r.answered_by, r.answered_by_latency_s = earlier.answered_by, earlier.answered_by_latency_s
        r.transfers[:0] = earlier.transfers
        for key, value in earlier.usage.items():
            r.usage[key] = r.usage.get(key, 0) + value
        for kind, n in earlier.tokens.items():
            r.tokens[kind] = r.tokens.get(kind, 0) + n
        if r.cost_usd is not None and earlier.cost_usd is not None:
            r.cost_usd = round(r.cost_usd + earlier.cost_usd, 6)

    def _t(self, mono: float) -> float:
        return round(mono - self._started_mono, 3)

    def observe(self, event: Event, now: float) -> None:
        r = self.record
        match event:
            case Transcript():
                turn: dict[str, Any] = {"t": self._t(event.at), "role": event.role, "text": event.text}
                if event.role == "agent" and self._agent is not None:
                    turn["agent"] = self._agent
                r.transcript.append(turn)
                r.transcript.sort(key=lambda e: e["t"])
            case AgentChanged():
                self._agent = event.agent
                r.agents.append(
                    {
                        "t": self._t(now),
                        "agent": event.agent,
                        "previous": event.previous,
                        "how": event.how,
                        "reason": event.reason,
                    }
                )
            case McpCall():
                r.tool_calls.append(
                    {
                        "t": self._t(now),
                        "call_id": event.item_id,
                        "name": event.name,
                        "mcp_server": event.server_label,
                        "arguments": event.arguments,
                        "ok": event.error is None,
                        "result": event.output,
                        "error": event.error,
                        "duration_ms": None,
                    }
                )
            case McpApproval():
                r.tool_calls.append(
                    {
                        "t": self._t(now),
                        "call_id": event.request_id,
                        "name": event.name,
                        "mcp_server": event.server_label,
                        "approval": "approved" if event.approved else "denied",
                    }
                )
            case RunTool():
                call = {
                    "t": self._t(now),
                    "call_id": event.call_id,
                    "name": event.name,
                    "arguments": event.arguments,
                    "ok": None,
                    "result": None,
                    "error": None,
                    "duration_ms": None,
                }
                self._calls[event.call_id] = call
                r.tool_calls.append(call)
            case BargeIn():
                r.barge_ins.append({"t": self._t(now), "truncated": [asdict(t) for t in event.truncated]})
            case KeyPressed():
                r.dtmf += event.digit
            case FirstAudio():
                r.events.append({"t": self._t(now), "kind": "response_latency", "ms": round(event.seconds * 1000)})
            case RealtimeLost():
                r.events.append(
                    {"t": self._t(now), "kind": "realtime_lost", "reason": event.reason, "attempt": event.attempt}
                )
            case RealtimeReconnected():
                r.events.append(
                    {"t": self._t(now), "kind": "realtime_reconnected", "restored_items": event.restored_items}
                )
            case RealtimeGaveUp():
                r.events.append({"t": self._t(now), "kind": "realtime_gave_up", "reason": event.reason})
            case TransferRequested():
                r.events.append(
                    {"t": self._t(now), "kind": "transfer_requested", "number": event.number, "label": event.label}
                )
            case TransferFailed():
                r.events.append(
                    {"t": self._t(now), "kind": "transfer_failed", "number": event.number, "reason": event.reason}
                )
            case Answered():
                r.answered_by = event.answered_by
                r.answered_by_latency_s = event.latency_s
            case HangupRequested():
                r.events.append({"t": self._t(now), "kind": "hangup_requested", "reason": event.reason})
            case ResponseFinished():
                usage = event.usage or {}
                tokens = usage_tokens(usage)
                cost = cost_usd(tokens, self._price)
                for kind, n in tokens.items():
                    if n:
                        r.tokens[kind] = r.tokens.get(kind, 0) + n
                if r.cost_usd is not None:
                    r.cost_usd = None if cost is None else round(r.cost_usd + cost, 6)
                r.events.append(
                    {
                        "t": self._t(now),
                        "kind": "response",
                        "status": event.status,
                        "usage": {k: v for k, v in usage.items() if isinstance(v, int)},
                        "tokens": {k: n for k, n in tokens.items() if n},
                        "cost_usd": None if cost is None else round(cost, 6),
                    }
                )
                r.usage["responses"] += 1
                for key in ("input_tokens", "output_tokens", "total_tokens"):
                    value = usage.get(key)
                    if isinstance(value, int):
                        r.usage[key] += value
            case CallEnded():
                r.outcome, r.reason = event.outcome, event.reason
                r.apologized = event.apologize
                r.ended_at = time.time()
                r.duration_s = round(now - self._started_mono, 3)
            case _:
                pass

    def tool_finished(self, result: ToolResult) -> None:
        call = self._calls.get(result.call_id)
        if call is not None:
            call.update(
                ok=result.ok,
                result=result.output if result.ok else None,
                error=result.error,
                duration_ms=round(1000 * result.duration_s, 1),
            )
