"""OpenTelemetry traces: one trace per call with spans for turns, tool calls,
reconnects and transfers, and nothing secret, no number and no digit in them
(checked with the SDK's in-memory exporter)."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from telephony import tool
from telephony.call import events as ev
from telephony.io.tracing import CallTracer, tracer_from_env
from telephony.wire import twilio as tw
from tests.audio_data import agent_pcm24
from tests.harness import bridge

pytestmark = pytest.mark.anyio

SECRETS = ("sk-test-key-abcdef", "+15550001111", "+15550002222", "4242", "Oslo")


@tool
def weather(city: str) -> dict:
    """Weather."""
    raise ValueError(f"no weather for {city}")


def memory_tracer() -> tuple[CallTracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return CallTracer(provider.get_tracer("test"), "gpt-realtime-1.5"), exporter


def _dump(spans) -> str:
    return json.dumps([json.loads(s.to_json()) for s in spans])


async def test_a_call_is_one_trace_with_turn_and_tool_spans_and_no_secrets():
    tracer, exporter = memory_tracer()
    async with bridge(tools=[weather]) as b:
        b.observer.tracer = tracer
        call, session = await b.live_call()
        caller = await session.speech_started()
        await session.speech_stopped(caller)
        await session.function_call("weather", {"city": "Oslo"})
        await session.wait_for("response.create")
        await session.respond_audio(agent_pcm24()[:24000].tobytes(), transcript="Sorry, I could not.")
        for digit in "4242":
            await call.dtmf(digit)
        await call.hang_up()
        await asyncio.wait_for(session.closed.wait(), 5)
        await asyncio.gather(*(s.wait_ended() for s in list(b.admission.sessions)))
    spans = exporter.get_finished_spans()
    by_name = {s.name: s for s in spans}
    assert sorted(by_name) == ["call", "tool weather", "turn"]
    root = by_name["call"]
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert all(s.parent.span_id == root.context.span_id for s in spans if s is not root)
    assert root.attributes["telephony.call_sid"] == call.call_sid
    assert root.attributes["telephony.outcome"] == "completed"
    tool_span = by_name["tool weather"]
    assert tool_span.status.status_code is StatusCode.ERROR and tool_span.attributes["telephony.tool_ok"] is False
    turn = by_name["turn"]
    assert turn.attributes["telephony.response_latency_ms"] >= 0
    assert root.start_time <= turn.start_time <= turn.end_time <= root.end_time
    dump = _dump(spans)
    for secret in SECRETS:
        assert secret not in dump, secret


def _started() -> ev.CallStarted:
    return ev.CallStarted(tw.Start("MZ1", "CA1", "AC1", {"From": "+15550001111", "To": "+15550002222"}))


def test_reconnects_and_transfers_are_spans_of_the_call():
    tracer, exporter = memory_tracer()
    trace = tracer.call(_started(), 100.0)
    trace.event(ev.RealtimeLost("closed 1006", 1, 0.25), 101.0)
    trace.event(ev.RealtimeLost("closed 1006", 2, 0.5), 101.5)
    trace.event(ev.RealtimeReconnected(2, 4), 102.0)
    trace.event(ev.TransferRequested("+15550009999", "sales"), 103.0)
    trace.event(ev.TransferFailed("+15550009999", "busy"), 104.0)
    trace.event(ev.RealtimeLost("closed", 1, 0.25), 105.0)
    trace.event(ev.RealtimeGaveUp("closed", 5), 106.0)
    trace.event(ev.CallEnded("failed", "realtime gave up", 0, 0, 3, True), 107.0)
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names == ["realtime.reconnect", "transfer", "realtime.reconnect", "call"]
    first, transfer, second, root = spans
    assert (first.end_time - first.start_time) == 1_000_000_000  # 101.0 -> 102.0
    assert first.attributes["telephony.attempts"] == 2 and first.attributes["telephony.restored_items"] == 4
    assert transfer.attributes["telephony.transfer_label"] == "sales"
    assert transfer.status.status_code is StatusCode.ERROR and second.status.status_code is StatusCode.ERROR
    assert root.status.status_code is StatusCode.ERROR and (root.end_time - root.start_time) == 7_000_000_000
    assert "+1555" not in _dump(spans)


def test_tracing_is_off_unless_the_otel_variables_ask_for_it():
    assert tracer_from_env(environ={}) is None
    assert tracer_from_env(environ={"OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracer_from_env(environ={"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) is None
    tracer = tracer_from_env("gpt-realtime-1.5", environ={"OTEL_TRACES_EXPORTER": "console"})
    assert tracer is not None and tracer.model == "gpt-realtime-1.5"
