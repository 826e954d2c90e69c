"""OpenTelemetry traces of calls (``pip install 'telephony[otel]'``), off unless configured.

One trace per call: a ``call`` span from the stream's start to its end, with child spans
for each turn (the caller's end of speech to the agent's first audio), each tool call,
each reconnect of the Realtime session and each transfer. Fed by ``CallReport`` with the
call core's notices (never per audio frame). Attributes carry no secret, no phone number,
no transcript, no tool argument and no keypad digit: the call SID, the model, outcomes,
durations, tool names and error types.

Configured by the standard ``OTEL_*`` variables: tracing starts when a tracer provider
was installed by the host (``opentelemetry-instrument``) or when ``OTEL_TRACES_EXPORTER``
or an ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set (``otlp`` over HTTP, ``console``);
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keeps it off.
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the service (default
``telephony``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..call import events as ev
from ..logs import log_event

if TYPE_CHECKING:
    from ..tools.registry import ToolResult

__all__ = ["CallTrace", "CallTracer", "tracer_from_env"]

log = logging.getLogger("telephony.server")


class CallTracer:
    """Starts one ``CallTrace`` per call on an OpenTelemetry ``Tracer``."""

    def __init__(self, tracer: Any, model: str = "") -> None:
        self.tracer = tracer
        self.model = model

    def call(self, started: ev.CallStarted, now: float) -> CallTrace:
        return CallTrace(self, started, now)


class CallTrace:
    """One call's spans. ``now`` values are the loop's clock; spans get wall-clock times."""

    __slots__ = ("_offset_ns", "_reconnect", "_tools", "_tracer", "_transfer", "context", "span")

    def __init__(self, tracer: CallTracer, started: ev.CallStarted, now: float) -> None:
        from opentelemetry import trace

        self._tracer = tracer.tracer
        self._offset_ns = time.time_ns() - int(now * 1e9)
        self.span = self._tracer.start_span(
            "call",
            start_time=self._ns(now),
            attributes={
                "telephony.call_sid": started.start.call_sid,
                "telephony.model": tracer.model,
                "telephony.console": started.start.custom_parameters.get("console") == "true",
            },
        )
        self.context = trace.set_span_in_context(self.span)
        self._tools: dict[str, Any] = {}
        self._reconnect: Any = None
        self._transfer: Any = None

    def _ns(self, now: float) -> int:
        return self._offset_ns + int(now * 1e9)

    def _child(self, name: str, now: float, attributes: Mapping[str, Any] | None = None) -> Any:
        return self._tracer.start_span(name, context=self.context, start_time=self._ns(now), attributes=attributes)

    def event(self, event: ev.Event, now: float) -> None:
        from opentelemetry.trace import Status, StatusCode

        match event:
            case ev.FirstAudio():
                turn = self._child(
                    "turn", now - event.seconds, {"telephony.response_latency_ms": round(event.seconds * 1000)}
                )
                turn.end(end_time=self._ns(now))
            case ev.RunTool():
                self._tools[event.call_id] = self._child(f"tool {event.name}", now, {"telephony.tool": event.name})
            case ev.BargeIn():
                cut = event.truncated[0] if event.truncated else None
                attrs = (
                    {"telephony.audio_end_ms": cut.audio_end_ms, "telephony.received_ms": cut.received_ms}
                    if cut
                    else {}
                )
                self.span.add_event("barge_in", attributes=attrs, timestamp=self._ns(now))
            case ev.RealtimeLost():
                if self._reconnect is None:
                    self._reconnect = self._child("realtime.reconnect", now, {"telephony.reason": event.reason})
                self._reconnect.set_attribute("telephony.attempts", event.attempt)
            case ev.RealtimeReconnected():
                if self._reconnect is not None:
                    self._reconnect.set_attribute("telephony.restored_items", event.restored_items)
                    self._reconnect.end(end_time=self._ns(now))
                    self._reconnect = None
            case ev.RealtimeGaveUp():
                if self._reconnect is not None:
                    self._reconnect.set_status(Status(StatusCode.ERROR, "gave up"))
                    self._reconnect.end(end_time=self._ns(now))
                    self._reconnect = None
            case ev.TransferRequested():
                self._transfer = self._child("transfer", now, {"telephony.transfer_label": event.label})
            case ev.TransferFailed():
                if self._transfer is not None:
                    self._transfer.set_status(Status(StatusCode.ERROR, "transfer failed"))
                    self._transfer.end(end_time=self._ns(now))
                    self._transfer = None
            case ev.CallEnded():
                for span in [*self._tools.values(), self._reconnect, self._transfer]:
                    if span is not None:
                        span.end(end_time=self._ns(now))
                self._tools.clear()
                self.span.set_attributes(
                    {
                        "telephony.outcome": event.outcome,
                        "telephony.reconnects": event.reconnects,
                        "telephony.invalid_messages": event.invalid_messages,
                    }
                )
                if event.outcome == "failed":
                    self.span.set_status(Status(StatusCode.ERROR, event.outcome))
                self.span.end(end_time=self._ns(now))
            case _:
                pass

    def tool_finished(self, result: ToolResult) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self._tools.pop(result.call_id, None)
        if span is None:
            return
        span.set_attribute("telephony.tool_ok", result.ok)
        if not result.ok:
            kind = (result.error or "error").split(":", 1)[0][:64]  # the error's type, not its text
            span.set_attribute("telephony.tool_error", kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        span.end()


def tracer_from_env(model: str = "", environ: Mapping[str, str] | None = None) -> CallTracer | None:
    """The call tracer the ``OTEL_*`` variables ask for, or None (off, or the extra missing)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    exporter_name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter_name == "none":
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        if exporter_name or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            log_event(log, "tracing.unavailable", logging.WARNING, reason="pip install 'telephony[otel]'")
        return None
    installed = trace.get_tracer_provider()
    if not isinstance(installed, trace.ProxyTracerProvider):  # the host set one up
        return CallTracer(installed.get_tracer("telephony"), model)
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not exporter_name and not endpoint:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    except ImportError:
        log_event(log, "tracing.unavailable", logging.WARNING, reason="pip install 'telephony[otel]'")
        return None
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "telephony"}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in (exporter_name or "otlp").split(","):
        exporter: SpanExporter
        name = name.strip()
        if name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                log_event(log, "tracing.unavailable", logging.WARNING, reason="no OTLP exporter installed")
                return None
            exporter = OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_* itself
        else:
            log_event(log, "tracing.unknown_exporter", logging.WARNING, exporter=name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    log_event(log, "tracing.on", exporters=exporter_name or "otlp")
    return CallTracer(provider.get_tracer("telephony"), model)
