"""What calls report: log lines, metrics, counters, call records, listeners.

The call core's notices and actions, and the tool results the I/O layer sees,
arrive here through one ``CallReport`` per call; nothing here runs per audio
frame. Records are written off the event loop, once per call (``RecordWriter``,
record_writer.py).

Somewhat over the ~400 lines we aim for, on purpose: ``CallReport.event`` is one
case per notice, with that notice's log line, counters and metric together.
Split into logs and metrics, every notice would be handled in two files and a
new notice would need both changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import asdict

from ..call import events as ev
from ..logs import log_event
from ..metrics import Metrics
from ..pricing import Prices, cost_usd, usage_tokens
from ..records import CallRecord, CallRecorder, CallStore
from ..tools.registry import ToolResult
from .live import LiveCalls
from .record_writer import RecordWriter
from .tracing import CallTrace, CallTracer

__all__ = ["CallObserver", "CallReport", "Listener", "Observed"]

log = logging.getLogger("telephony.call")

#: What a listener is shown: every event of the call core, and each tool result.
Observed = ev.Event | ToolResult
#: ``listener(call_sid, observed)``: extra observers (the simulator prints with one).
Listener = Callable[[str, Observed], None]

#: Twilio's ``CallStatus`` values: only these become metric labels (anything else is "other").
CALL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "answered",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }
)

#: What logs and records show for a keypad digit unless TELEPHONY_RECORD_DTMF is on.
MASKED_KEY = ev.KeyPressed("•")
#: How many recent call endings are kept in memory for ``/stream-ended``.
RECENT_ENDINGS = 2000


class CallObserver:
    """Shared by every call of one app."""

    def __init__(
        self,
        store: CallStore | None = None,
        records_buffer: int = 1000,
        records_retry_s: float = 3600.0,
        model: str = "",
        prices: Prices | None = None,
    ) -> None:
        self.metrics = Metrics()
        self.model = model  # the Realtime model calls use, and its price (None: not priced)
        self.price = (prices or Prices()).for_model(model)
        self.tracer: CallTracer | None = None  # OpenTelemetry (tracing.py), when configured
        self.record_dtmf = False  # keypad digits in clear in logs and records (else masked)
        self.counters: Counter[str] = Counter()
        self.records = RecordWriter(store, records_buffer, records_retry_s, self.counters)
        self.listeners: list[Listener] = []
        self.live = LiveCalls()  # this process's live calls (the console)
        self.open_realtime = 0  # Realtime sessions open right now
        self.known_tools: frozenset[str] = frozenset()  # tool names that may become metric labels
        self.ended: OrderedDict[str, ev.EndCall] = OrderedDict()  # how recent calls ended (for /stream-ended)

    def call(self) -> CallReport:
        return CallReport(self)

    # --- Realtime sessions ----------------------------------------------------------------

    def realtime_opened(self, reconnect: bool) -> None:
        self.open_realtime += 1
        self.counters["realtime_sessions_opened"] += 1
        if reconnect:
            self.metrics.reconnects.inc()

    def realtime_closed(self) -> None:
        self.open_realtime -= 1

    # --- records (written by ``RecordWriter``) ------------------------------------------------

    @property
    def store(self) -> CallStore | None:
        return self.records.store

    @store.setter
    def store(self, store: CallStore | None) -> None:
        self.records.store = store

    @property
    def records_error(self) -> str | None:
        """The last record write failed with this (cleared by a success): /healthz says so."""
        return self.records.error

    def save(self, record: CallRecord, after: asyncio.Future[None] | None = None) -> None:
        """Queue a finished call's record (``RecordWriter.save``)."""
        self.records.save(record, after)

    async def flush_records(self, timeout: float | None = None) -> bool:
        """Wait until every finished call's record is written (or ``timeout``);
        whether none is left waiting."""
        return await self.records.flush(timeout)

    async def close(self, timeout: float = 5.0) -> None:
        """At shutdown: write what waits (for up to ``timeout``), then close the store."""
        await self.records.close(timeout)

    async def apologized(self, call_sid: str, wait_s: float = 1.0) -> bool:
        """Whether the bridge gave up on this call (so the caller is owed an apology).
        Known here if this process ran the stream; else the call's record (written
        by whichever replica ran it, to the shared store) says so. The record is
        written as the stream closes, so it may land a moment after Twilio asks:
        look a few times within ``wait_s``."""
        end = self.ended.get(call_sid)
        if end is not None or not call_sid or self.store is None:
            return end is not None and end.apologize
        store = self.store
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            try:
                record = await asyncio.wait_for(store.get(call_sid), max(0.05, deadline - loop.time()))
            except Exception:
                return False
            if record is not None and record.outcome is not None:
                return record.apologized
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.1)  # the other replica's write is a network hop away: poll briefly

    def _ended(self, call_sid: str, end: ev.EndCall) -> None:
        if call_sid:
            self.ended[call_sid] = end
            while len(self.ended) > RECENT_ENDINGS:
                self.ended.popitem(last=False)


class CallReport:
    """One call's reporting: its log lines, metrics and record."""

    __slots__ = ("_observer", "call_sid", "recorder", "recording_written", "started", "trace")

    def __init__(self, observer: CallObserver) -> None:
        self._observer = observer
        self.call_sid = ""
        self.recorder: CallRecorder | None = None
        #: the local recording's last write (set by the bridge as the call ends): the
        #: record, which names the file, is written after it
        self.recording_written: asyncio.Future[None] | None = None
        self.trace: CallTrace | None = None
        self.started: float | None = None  # when the call started (loop clock)

    def event(self, event: ev.Event, now: float) -> None:
        """A notice or action of the call core, in order."""
        o = self._observer
        if type(event) is ev.KeyPressed and not o.record_dtmf:
            event = MASKED_KEY  # logs, records, listeners: masked; the model already has the digit
        if isinstance(event, ev.CallStarted):
            self.call_sid = event.start.call_sid
            self.started = now
            o.counters["calls_started"] += 1
            if o.store is not None:
                self.recorder = CallRecorder(
                    self.call_sid, now, event.start.custom_parameters, o.model or None, o.price
                )
        if self.recorder is not None:
            self.recorder.observe(event, now)
        o.live.observe(self.call_sid, event)
        if self.trace is not None:
            self.trace.event(event, now)
        elif o.tracer is not None and isinstance(event, ev.CallStarted):
            self.trace = o.tracer.call(event, now)
        for listener in o.listeners:
            listener(self.call_sid, event)
        sid = self.call_sid or None
        m = o.metrics
        match event:
            case ev.CallStarted():
                log_event(
                    log,
                    "call.start",
                    call_sid=sid,
                    stream_sid=event.start.stream_sid,
                    from_number=event.from_number,
                    to_number=event.to_number,
                )
            case ev.CallEnded():
                o.counters[f"calls_{event.outcome}"] += 1
                m.calls.labels(event.outcome).inc()
                log_event(
                    log,
                    "call.end",
                    logging.WARNING if event.outcome == "failed" else logging.INFO,
                    call_sid=sid,
                    duration_s=None if self.started is None else round(now - self.started, 3),
                    **asdict(event),
                )
                if self.recorder is not None:
                    o.save(self.recorder.record, self.recording_written)
            case ev.EndCall():
                o._ended(self.call_sid, event)
            case ev.BargeIn():
                o.counters["barge_ins"] += 1
                m.barge_ins.inc()
                log_event(log, "barge_in", call_sid=sid, truncated=[asdict(t) for t in event.truncated])
            case ev.FirstAudio():
                m.response_latency.observe(event.seconds)
            case ev.ResponseFinished():
                cost = cost_usd(usage_tokens(event.usage), o.price)
                if cost:
                    m.cost.labels(o.model).inc(cost)
            case ev.RealtimeErrorReported():
                o.counters["realtime.error"] += 1
                m.realtime_errors.labels((event.code or "none")[:64]).inc()
                log_event(
                    log,
                    "realtime.error",
                    logging.WARNING,
                    call_sid=sid,
                    type=event.type,
                    code=event.code,
                    message=event.message,
                    about=event.about,
                )
            case ev.ResponseFailed():
                o.counters[f"responses_{event.status}"] += 1
                m.responses_failed.labels(event.status, event.label).inc()
                log_event(
                    log,
                    "response.failed",
                    logging.ERROR if event.next == "gave_up" else logging.WARNING,
                    call_sid=sid,
                    response_id=event.response_id,
                    status=event.status,
                    reason=event.label,
                    message=event.message,
                    failures=event.failures,
                    next=event.next,
                    retry_in_s=event.retry_in_s,
                )
            case ev.DeadAir():
                o.counters["dead_air"] += 1
                m.dead_air.labels(event.next).inc()
                log_event(
                    log,
                    "call.dead_air",
                    logging.ERROR if event.next == "gave_up" else logging.WARNING,
                    call_sid=sid,
                    seconds=event.seconds,
                    next=event.next,
                )
            case ev.SessionRejected():
                o.counters["realtime.session_rejected"] += 1
                m.realtime_errors.labels("session_update_rejected").inc()
                log_event(
                    log,
                    "realtime.session_rejected",
                    logging.ERROR,
                    call_sid=sid,
                    code=event.code,
                    message=event.message,
                    next=event.next,
                )
            case ev.TranscriptionFailed():
                o.counters["transcription_failed"] += 1
                log_event(
                    log,
                    "transcript.failed",
                    logging.WARNING,
                    call_sid=sid,
                    item_id=event.item_id,
                    message=event.message,
                )
            case ev.InvalidTwilioMessage():
                o.counters["twilio.invalid"] += 1
                log_event(log, "twilio.invalid", logging.WARNING, call_sid=sid, reason=event.reason, count=event.count)
            case ev.InvalidRealtimeEvent():
                o.counters["realtime.invalid"] += 1
                log_event(log, "realtime.invalid", logging.WARNING, call_sid=sid, reason=event.reason)
            case ev.MediaBeforeStart():
                o.counters["twilio.media_before_start"] += 1
                log_event(log, "twilio.media_before_start", logging.WARNING, call_sid=sid)
            case ev.DuplicateStart():
                log_event(log, "twilio.duplicate_start", call_sid=sid, stream_sid=event.stream_sid)
            case ev.InputLimited():
                o.counters[f"input_limited_{event.what}"] += 1
                log_event(log, "input.limited", logging.WARNING, call_sid=sid, what=event.what, limit=event.limit)
            case ev.KeyPressed():
                log_event(log, "dtmf", call_sid=sid, digit=event.digit)
            case ev.HangupRequested():
                log_event(log, "hangup.requested", call_sid=sid, reason=event.reason)
            case ev.Answered():
                o.counters[f"amd_{event.answered_by}"] += 1
                m.answered_by.labels(event.answered_by).inc()
                log_event(
                    log,
                    "call.answered_by",
                    call_sid=sid,
                    answered_by=event.answered_by,
                    latency_s=event.latency_s,
                    timed_out=event.timed_out,
                )
            case ev.TransferRequested():
                log_event(log, "transfer.requested", call_sid=sid, number=event.number, label=event.label)
            case ev.TransferFailed():
                log_event(
                    log, "transfer.failed", logging.WARNING, call_sid=sid, number=event.number, reason=event.reason
                )
            case ev.RealtimeLost():
                log_event(
                    log,
                    "realtime.lost",
                    logging.WARNING,
                    call_sid=sid,
                    reason=event.reason,
                    attempt=event.attempt,
                    retry_in_s=event.retry_in_s,
                )
            case ev.RealtimeGaveUp():
                log_event(
                    log, "realtime.gave_up", logging.ERROR, call_sid=sid, reason=event.reason, attempts=event.attempts
                )
            case ev.RealtimeReconnected():
                log_event(
                    log,
                    "realtime.reconnected",
                    call_sid=sid,
                    generation=event.generation,
                    restored_items=event.restored_items,
                )
            case ev.RealtimeRollover():
                log_event(log, "realtime.rollover", call_sid=sid, age_s=event.age_s)
            case ev.Transcript():
                log_event(log, "transcript", logging.DEBUG, call_sid=sid, role=event.role, text=event.text)
            case ev.AgentChanged():
                o.counters["agent_handoffs" if event.how == "handoff" else "agent_chosen"] += 1
                log_event(
                    log, "agent." + ("handoff" if event.how == "handoff" else "chosen"), call_sid=sid, **asdict(event)
                )
            case ev.McpProgress():
                if event.status == "failed":
                    o.counters[f"mcp_{event.what}_failed"] += 1
                    log_event(log, f"mcp.{event.what}_failed", logging.WARNING, call_sid=sid, item_id=event.item_id)
            case ev.McpCall():
                o.counters["mcp_calls"] += 1
                level = logging.INFO if event.error is None else logging.WARNING
                log_event(
                    log,
                    "mcp.call",
                    level,
                    call_sid=sid,
                    server=event.server_label,
                    name=event.name,
                    ok=event.error is None,
                    error=event.error,
                )
            case ev.McpApproval():
                o.counters["mcp_approvals" if event.approved else "mcp_denials"] += 1
                log_event(log, "mcp.approval", call_sid=sid, **asdict(event))
            case _:
                pass

    def stream_refused(self, call_sid: str, reason: str) -> None:
        """A ``start`` without a valid stream token (or for a call already streaming)."""
        o = self._observer
        o.counters["stream_rejected_token"] += 1
        o.metrics.rejected.labels("stream_token").inc()
        log_event(log, "stream.rejected", logging.WARNING, call_sid=call_sid[:64], reason=reason)

    def realtime_opened(self, reconnect: bool) -> None:
        self._observer.realtime_opened(reconnect)

    def realtime_closed(self) -> None:
        self._observer.realtime_closed()

    def tool_finished(self, result: ToolResult) -> None:
        """A tool returned or failed (the I/O layer ran it)."""
        o = self._observer
        label = result.name if result.name in o.known_tools else "unknown"  # the model may invent names
        o.metrics.tool_calls.labels(label, "ok" if result.ok else "error").inc()
        o.metrics.tool_seconds.labels(label).observe(result.duration_s)
        log_event(
            log,
            "tool.call",
            logging.INFO if result.ok else logging.WARNING,
            call_sid=self.call_sid,
            tool=result.name,
            ok=result.ok,
            error=result.error,
            duration_ms=round(result.duration_s * 1000, 1),
        )
        if self.recorder is not None:
            self.recorder.tool_finished(result)
        o.live.tool_finished(self.call_sid)
        if self.trace is not None:
            self.trace.tool_finished(result)
        for listener in o.listeners:
            listener(self.call_sid, result)

    def input_dropped(self, audio_bytes: int, keys: int) -> None:
        """Caller audio (μ-law bytes) and keys dropped over the input limits, added at the end."""
        if audio_bytes:
            self._observer.counters["caller_audio_dropped_ms"] += audio_bytes // 8
        if keys:
            self._observer.counters["keys_dropped"] += keys

    def transcoding(self, in_ns: int, in_frames: int, out_ns: int, out_frames: int) -> None:
        """The call's audio handling time, added once at its end."""
        m = self._observer.metrics
        m.transcode_seconds.labels("in").inc(in_ns / 1e9)
        m.transcode_frames.labels("in").inc(in_frames)
        m.transcode_seconds.labels("out").inc(out_ns / 1e9)
        m.transcode_frames.labels("out").inc(out_frames)
