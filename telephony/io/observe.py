"""What calls report: log lines, metrics, counters, call records, listeners.

The call core's notices and actions, and the tool results the I/O layer sees,
arrive here through one ``CallReport`` per call; nothing here runs per audio
frame. Records are written off the event loop, once per call.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..call import events as ev
from ..logs import log_event
from ..metrics import Metrics
from ..records import CallRecord, CallRecorder, CallStore
from ..tools.registry import ToolResult

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

#: How many recent call endings are kept in memory for ``/stream-ended``.
RECENT_ENDINGS = 2000


class CallObserver:
    """Shared by every call of one app."""

    def __init__(self, store: CallStore | None = None) -> None:
        self.metrics = Metrics()
        self.store = store
        self.counters: Counter[str] = Counter()
        self.listeners: list[Listener] = []
        self.open_realtime = 0  # Realtime sessions open right now
        self.known_tools: frozenset[str] = frozenset()  # tool names that may become metric labels
        self.ended: OrderedDict[str, ev.EndCall] = OrderedDict()  # how recent calls ended (for /stream-ended)
        self._writes: set[asyncio.Future[Any]] = set()

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

    # --- records ------------------------------------------------------------------------------

    def save(self, record: CallRecord) -> None:
        """Write a finished call's record off the event loop."""
        store = self.store
        if store is None:
            return

        def write() -> None:
            try:
                store.save(record)
            except Exception as exc:  # a full disk must not break calls
                log_event(
                    log,
                    "records.save_failed",
                    logging.ERROR,
                    call_sid=record.call_sid,
                    error=f"{type(exc).__name__}: {exc}",
                )

        future = asyncio.get_running_loop().run_in_executor(None, write)
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)

    async def flush_records(self) -> None:
        """Wait until every finished call's record is written."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def apologized(self, call_sid: str, wait_s: float = 1.0) -> bool:
        """Whether the bridge gave up on this call (so the caller is owed an apology).
        Known here if this process ran the stream; else the call's record (written
        by whichever worker ran it, to the shared records file) says so. The record
        is written as the stream closes, so it may land a moment after Twilio asks:
        look a few times within ``wait_s``."""
        end = self.ended.get(call_sid)
        if end is not None or not call_sid or self.store is None:
            return end is not None and end.apologize
        store = self.store
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
            await asyncio.sleep(0.1)  # the other worker's write is a file away: poll briefly

    def _ended(self, call_sid: str, end: ev.EndCall) -> None:
        if call_sid:
            self.ended[call_sid] = end
            while len(self.ended) > RECENT_ENDINGS:
                self.ended.popitem(last=False)


class CallReport:
    """One call's reporting: its log lines, metrics and record."""

    __slots__ = ("_observer", "call_sid", "recorder")

    def __init__(self, observer: CallObserver) -> None:
        self._observer = observer
        self.call_sid = ""
        self.recorder: CallRecorder | None = None

    def event(self, event: ev.Event, now: float) -> None:
        """A notice or action of the call core, in order."""
        o = self._observer
        if isinstance(event, ev.CallStarted):
            self.call_sid = event.start.call_sid
            o.counters["calls_started"] += 1
            if o.store is not None:
                self.recorder = CallRecorder(self.call_sid, now, event.start.custom_parameters)
        if self.recorder is not None:
            self.recorder.observe(event, now)
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
                log_event(log, "call.end", call_sid=sid, **asdict(event))
                if self.recorder is not None:
                    o.save(self.recorder.record)
            case ev.EndCall():
                o._ended(self.call_sid, event)
            case ev.BargeIn():
                o.counters["barge_ins"] += 1
                m.barge_ins.inc()
                log_event(log, "barge_in", call_sid=sid, truncated=[asdict(t) for t in event.truncated])
            case ev.FirstAudio():
                m.response_latency.observe(event.seconds)
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
