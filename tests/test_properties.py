"""Property-based tests: parsers on arbitrary input, and the call state machine
under random event orders, checked against the bridge's invariants."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from telephony.call import Call, CallConfig, CloseRealtime, EndCall, OpenRealtime, Phase, RunTool
from telephony.wire import realtime as rt
from telephony.wire import twilio as tw
from tests.openai_models import validate_client_event

TW_TYPES = (tw.Connected, tw.Start, tw.Media, tw.Mark, tw.Dtmf, tw.Stop, tw.Unknown, tw.Invalid)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def twilio_like(draw):
    event = draw(st.sampled_from(["media", "start", "mark", "dtmf", "stop", "connected", "x", None]))
    body = draw(
        st.dictionaries(
            st.sampled_from(["media", "start", "mark", "dtmf", "stop", "streamSid", "event"]), json_values, max_size=4
        )
    )
    if event is not None:
        body["event"] = event
    return json.dumps(body)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), twilio_like(), json_values.map(json.dumps)))
def test_twilio_parser_never_raises(raw):
    assert isinstance(tw.parse(raw), TW_TYPES)


@st.composite
def realtime_like(draw):
    kind = draw(st.sampled_from([*sorted(rt.KNOWN_EVENT_TYPES), "unknown.event"]))
    body = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "response",
                    "item_id",
                    "response_id",
                    "delta",
                    "call_id",
                    "name",
                    "arguments",
                    "audio_start_ms",
                    "audio_end_ms",
                    "transcript",
                    "error",
                    "session",
                ]
            ),
            json_values,
            max_size=6,
        )
    )
    body["type"] = kind
    return json.dumps(body)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=100), realtime_like(), json_values.map(json.dumps)))
def test_realtime_parser_never_raises(raw):
    ev = rt.parse(raw)
    assert type(ev).__module__ == rt.__name__


# --- the state machine under random event orders -------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("media"), st.integers(0, 400)),
    st.tuples(st.just("mark"), st.integers(0, 6)),
    st.tuples(st.just("bogus_mark"), st.sampled_from(["", "x", "999999", "-1", "1" * 30])),
    st.tuples(st.just("clear_echo")),
    st.tuples(st.just("dtmf"), st.sampled_from(list("0123#"))),
    st.tuples(st.just("stop")),
    st.tuples(st.just("twilio_invalid")),
    st.tuples(st.just("audio"), st.integers(0, 3), st.integers(0, 2), st.integers(0, 9000)),
    st.tuples(st.just("audio_done"), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("speech_started")),
    st.tuples(st.just("speech_stopped")),
    st.tuples(st.just("resp_created"), st.integers(0, 2)),
    st.tuples(st.just("resp_done"), st.integers(0, 2)),
    st.tuples(
        st.just("resp_failed"),
        st.integers(0, 2),
        st.sampled_from([("failed", None), ("incomplete", "max_output_tokens"), ("incomplete", "content_filter")]),
    ),
    st.tuples(st.just("transcript_failed"), st.integers(0, 3)),
    st.tuples(st.just("transfer_done")),
    st.tuples(st.just("fcall"), st.integers(0, 4)),
    st.tuples(st.just("fcall"), st.integers(0, 4)),
    st.tuples(st.just("tool_done"), st.integers(0, 4)),
    st.tuples(
        st.just("rt_error"),
        st.sampled_from(
            ["response_cancel_not_active", "conversation_already_has_active_response", "bad_response_create", None]
        ),
    ),
    st.tuples(st.just("rt_drop")),
    st.tuples(st.just("open_ok")),
    st.tuples(st.just("open_fail")),
    st.tuples(st.just("transcript"), st.integers(0, 3)),
    st.tuples(st.just("hangup")),
    st.tuples(st.just("transfer")),
    st.tuples(st.just("transfer_fail")),
    st.tuples(st.just("tick")),
)


class Harness:
    """Plays the I/O layer's part faithfully: answers OpenRealtime, runs tools,
    drains outboxes after every step, and checks the invariants."""

    START = tw.Start("MZ1", "CA1", "AC1", {"From": "+1", "To": "+2"})

    def __init__(self) -> None:
        self.call = Call(
            CallConfig(quiet_timeout_s=30, reconnect_attempts=3, reconnect_backoff_s=0.05, rollover_after_s=5.0)
        )
        self.now = 0.0
        self.open_pending = False
        self.live = False
        self.marks: list[str] = []  # names sent, not yet echoed, in order
        self.received_ms: dict[str, float] = {}
        self.truncated: set[str] = set()
        self.tools_started: list[str] = []
        self.tools_finished: set[str] = set()
        self.outputs: dict[str, int] = {}
        self.restored: set[str] = set()  # function calls replayed into the current session
        self.ended = False
        self.call.receive_twilio(self.START, 0.0)
        self.drain()

    def drain(self, check_no_media: bool = False) -> None:
        c = self.call
        for text in c.drain_twilio():
            msg = json.loads(text)
            assert msg["event"] in ("media", "mark", "clear")
            assert not (check_no_media and msg["event"] in ("media", "mark")), "audio of a truncated item played"
            if msg["event"] == "mark":
                self.marks.append(msg["mark"]["name"])
            elif msg["event"] == "clear":
                self.pending_clear = True
        for text in c.drain_realtime():
            event = json.loads(text)
            validate_client_event(event)
            assert self.live, f"{event['type']} sent with no live session"
            if event["type"] == "conversation.item.truncate":
                item = event["item_id"]
                assert event["audio_end_ms"] <= self.received_ms.get(item, 0) + 1e-9, "truncated past the audio"
                assert event["audio_end_ms"] >= 0
                self.truncated.add(item)
            if event["type"] == "conversation.item.create":
                it = event["item"]
                if it["type"] == "function_call":  # only ever sent to restore history
                    self.restored.add(it["call_id"])
                elif it["type"] == "function_call_output" and it["call_id"] in self.restored:
                    self.restored.discard(it["call_id"])  # history replayed into a new session: not an answer
                elif it["type"] == "function_call_output":
                    self.outputs[it["call_id"]] = self.outputs.get(it["call_id"], 0) + 1
                elif it.get("role") == "system":
                    for cid in self.tools_started:
                        if f"({cid})" in it["content"][0]["text"]:
                            self.outputs[cid] = self.outputs.get(cid, 0) + 1
        for action in c.drain_actions():
            if isinstance(action, OpenRealtime):
                assert not self.open_pending, "a second session opened while one was opening"
                self.restored = set()
                self.live = False  # the bridge closes the old socket before opening
                self.open_pending = True
            elif isinstance(action, CloseRealtime):
                self.live = False
                self.open_pending = False
            elif isinstance(action, RunTool):
                assert action.call_id not in self.tools_started, "a tool call ran twice"
                self.tools_started.append(action.call_id)
            elif isinstance(action, EndCall):
                self.ended = True
        for cid, n in self.outputs.items():
            assert n <= 1, f"tool call {cid} answered {n} times"

    def step(self, op: tuple) -> None:
        c, kind = self.call, op[0]
        self.now += 0.037
        now = self.now
        check_no_media = False
        if kind == "media":
            c.receive_twilio(tw.Media(b"\x7f" * op[1]), now)
        elif kind == "mark" and self.marks:
            name = self.marks.pop(min(op[1], len(self.marks) - 1))
            c.receive_twilio(tw.Mark(name), now)
        elif kind == "bogus_mark":
            c.receive_twilio(tw.Mark(op[1]), now)
        elif kind == "clear_echo":
            for name in self.marks:
                c.receive_twilio(tw.Mark(name), now)
            self.marks.clear()
        elif kind == "dtmf":
            c.receive_twilio(tw.Dtmf(op[1]), now)
        elif kind == "stop":
            c.receive_twilio(tw.Stop("CA1"), now)
        elif kind == "twilio_invalid":
            c.receive_twilio(tw.Invalid("junk"), now)
        elif kind == "audio":
            item, resp = f"item_{op[1]}", f"resp_{op[2]}"
            pcm = bytes(2 * op[3])
            if c.phase is Phase.LIVE:
                self.received_ms[item] = self.received_ms.get(item, 0) + op[3] / 24
            check_no_media = item in self.truncated
            c.receive_realtime(rt.AudioDelta(resp, item, pcm), now)
        elif kind == "audio_done":
            item = f"item_{op[1]}"
            check_no_media = item in self.truncated
            c.receive_realtime(rt.AudioDone(f"resp_{op[2]}", item), now)
        elif kind == "speech_started":
            c.receive_realtime(rt.SpeechStarted("u", 0), now)
        elif kind == "speech_stopped":
            c.receive_realtime(rt.SpeechStopped("u", 0), now)
        elif kind == "resp_created":
            c.receive_realtime(rt.ResponseCreated(f"resp_{op[1]}"), now)
        elif kind == "resp_done":
            c.receive_realtime(rt.ResponseDone(f"resp_{op[1]}", "completed", None, None), now)
        elif kind == "resp_failed":
            status, reason = op[2]
            c.receive_realtime(rt.ResponseDone(f"resp_{op[1]}", status, reason, None, "server_error", "m"), now)
        elif kind == "transcript_failed":
            c.receive_realtime(rt.InputTranscriptFailed(f"u{op[1]}", "unclear"), now)
        elif kind == "transfer_done":
            c.transfer_done(now)
        elif kind == "fcall":
            c.receive_realtime(rt.FunctionCallDone("resp_0", "fc", f"call_{op[1]}", "f", "{}"), now)
        elif kind == "tool_done":
            cid = f"call_{op[1]}"
            if cid in self.tools_started and cid not in self.tools_finished:
                self.tools_finished.add(cid)
                self.finished_live = getattr(self, "finished_live", set())
                if not self.ended:
                    self.finished_live.add(cid)
            c.tool_finished(cid, '"ok"', now)  # also for unknown / repeated ids: must be ignored
        elif kind == "rt_error":
            c.receive_realtime(rt.Error("invalid_request_error", op[1], "m", None), now)
        elif kind == "rt_drop" and self.live:
            self.live = False
            c.realtime_closed("dropped", now)
        elif kind == "open_ok" and self.open_pending:
            self.open_pending = False
            self.live = True
            c.realtime_opened('{"type":"session.update","session":{"type":"realtime"}}', now)
        elif kind == "open_fail" and self.open_pending:
            self.open_pending = False
            c.realtime_closed("refused", now)
        elif kind == "transcript":
            c.receive_realtime(rt.TranscriptDone(f"item_{op[1]}", "some words here"), now)
            c.receive_realtime(rt.InputTranscript(f"u{op[1]}", "caller words"), now)
        elif kind == "hangup":
            c.request_hangup("bye", now)
        elif kind == "transfer":
            c.request_transfer("+15550001111", "desk", now)
        elif kind == "transfer_fail":
            c.transfer_failed("busy", now)
        elif kind == "tick":
            deadline = c.next_deadline()
            self.now = max(self.now, deadline or self.now)
            c.tick(self.now)
        self.drain(check_no_media)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=60))
# A tool answered, then a reconnect replays the call and its output into the new session.
@example([("fcall", 0), ("tool_done", 0), ("rt_drop",), ("open_ok",)])
def test_state_machine_invariants_under_random_event_orders(steps):
    h = Harness()
    h.step(("open_ok",))
    for op in steps:
        h.step(op)
    # Every tool call that finished while the call was up was answered exactly once,
    # unless its answer is still waiting for a session that is being opened.
    for cid in getattr(h, "finished_live", set()):
        answered = h.outputs.get(cid, 0)
        waiting = any(f"({cid})" in text for text in h.call.deferred)
        assert answered == 1 or waiting or h.ended, (cid, answered)
    # Every RunTool is answered at most once (checked per step); the machine never
    # holds more than one session: checked on every OpenRealtime.
