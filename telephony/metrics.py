"""Prometheus metrics (``GET /metrics``). One registry per app, so several apps
(tests) never collide. Nothing here is touched per frame: transcoding time is
summed per call and added when the call ends."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.active_calls = Gauge("telephony_active_calls", "Calls in progress", registry=r)
        self.calls = Counter("telephony_calls", "Calls ended, by outcome", ["outcome"], registry=r)
        self.rejected = Counter("telephony_calls_rejected", "Calls refused, by reason", ["reason"], registry=r)
        self.barge_ins = Counter("telephony_barge_ins", "Caller interrupted the agent", registry=r)
        self.tool_calls = Counter(
            "telephony_tool_calls", "Tool calls, by tool and result", ["tool", "result"], registry=r
        )
        self.tool_seconds = Histogram(
            "telephony_tool_duration_seconds",
            "Tool run time",
            ["tool"],
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.response_latency = Histogram(
            "telephony_response_latency_seconds",
            "Caller's end of speech (VAD) to the first agent audio sent to Twilio (it plays at once)",
            registry=r,
            buckets=(0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2, 3, 5, 10),
        )
        self.cost = Counter(
            "telephony_cost_usd",
            "What the calls' Realtime responses cost (US dollars), by model",
            ["model"],
            registry=r,
        )
        self.reconnects = Counter("telephony_realtime_reconnects", "Realtime sessions re-opened mid-call", registry=r)
        self.realtime_errors = Counter(
            "telephony_realtime_errors", "Realtime error events, by code", ["code"], registry=r
        )
        self.responses_failed = Counter(
            "telephony_responses_failed",
            "Responses that ended failed or incomplete, by status and reason (known values only)",
            ["status", "reason"],
            registry=r,
        )
        self.dead_air = Counter(
            "telephony_dead_air", "Silences after the caller's turn, by what followed", ["next"], registry=r
        )
        self.transcode_seconds = Counter(
            "telephony_transcode_seconds",
            "Time spent handling audio frames (transcoding included), by direction",
            ["direction"],
            registry=r,
        )
        self.transcode_frames = Counter(
            "telephony_transcode_frames", "Audio messages handled, by direction", ["direction"], registry=r
        )
        self.status_callbacks = Counter(
            "telephony_call_status", "Twilio status callbacks, by status", ["status"], registry=r
        )
        self.answered_by = Counter(
            "telephony_answered_by", "Answering-machine verdicts of outbound calls", ["verdict"], registry=r
        )
        self.transfers = Counter("telephony_transfers", "Transfer results, by DialCallStatus", ["status"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
