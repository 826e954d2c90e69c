"""The call: one state machine per phone call, no I/O, no clock.

Feed it Twilio and Realtime events with the time they arrived; it appends what
to send to ``to_twilio`` / ``to_realtime`` (JSON text, in order) and everything
else to ``actions`` (open or close the Realtime session, run a tool, end or
transfer the call, and ``Notice``s worth logging or recording). The I/O layer
drains those after every call. Timers are ``next_deadline()`` + ``tick(now)``.

What lives here and why:

* **Transcoding**: 8 kHz mu-law <-> 24 kHz PCM16 per call, with filter state.
* **Playback clock** (``PlaybackClock``): what the caller actually heard.
* **Barge-in**: on ``speech_started`` while our audio may still be playing,
  ``clear`` Twilio, truncate each assistant item to what was heard (clamped to
  the audio received), and drop that item's and that response's late audio.
* **Response gating**: only one response may be active, so ``response.create``
  waits for ``response.done``; the two known races are benign.
* **Tools**: every function call gets exactly one output; one
  ``response.create`` follows once no call of that turn is pending.
* **Call control**: hang up or transfer only after the agent's words played.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..audio import DELAY_MS, CallerToModel, ModelToCaller
from ..wire import realtime as rt
from ..wire import twilio as tw
from .playback import PlaybackClock

__all__ = [
    "Call",
    "CallConfig",
    "Phase",
    "OpenRealtime",
    "CloseRealtime",
    "RunTool",
    "EndCall",
    "TransferCall",
    "Notice",
    "Action",
]


# --- actions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenRealtime:
    """Open the call's Realtime session (Twilio's ``start`` arrived), or, with
    ``reconnect``, replace a lost or expiring one: close the old socket first, so
    a call never has two live sessions."""

    start: tw.Start
    reconnect: bool = False


@dataclass(frozen=True, slots=True)
class CloseRealtime:
    reason: str


@dataclass(frozen=True, slots=True)
class RunTool:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class EndCall:
    """Close the Twilio stream (which hangs up, TwiML having nothing after it)."""

    outcome: str  # completed | hung_up_by_agent | transferred | failed
    reason: str
    apologize: bool = False  # tell the caller we failed (TwiML after the stream) before hanging up


@dataclass(frozen=True, slots=True)
class TransferCall:
    """Redirect the live call to ``number`` (REST update with ``<Dial>``)."""

    number: str
    label: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth a log line, a call record entry or a metric."""

    kind: str
    data: dict[str, Any]


Action = OpenRealtime | CloseRealtime | RunTool | EndCall | TransferCall | Notice


class Phase(Enum):
    WAITING = "waiting"  # socket open, no ``start`` yet
    STARTING = "starting"  # ``start`` seen, Realtime session opening
    LIVE = "live"
    RECONNECTING = "reconnecting"  # session lost or rolling over: caller audio is held
    ENDED = "ended"


@dataclass(frozen=True)
class CallConfig:
    greeting: str | None = None
    #: caller audio held while the Realtime session opens (ms of 24 kHz PCM)
    max_buffer_ms: int = 5000
    #: DTMF digits are sent to the model after this pause, or at once on '#'
    dtmf_pause_s: float = 1.5
    #: no Twilio media for this long ends the call (0 = never)
    quiet_timeout_s: float = 20.0
    #: hard limit on a call's length (0 = none)
    max_duration_s: float = 0.0
    #: wait this long past the estimated end of playback for the last mark echo
    playback_grace_s: float = 2.0
    #: invalid Twilio messages tolerated on one call before it is ended
    max_invalid_messages: int = 100
    #: tries to (re)open the Realtime session before the call is ended with an apology
    reconnect_attempts: int = 5
    #: wait before the 2nd try; doubles each try (the 1st try is immediate), capped at 4 s
    reconnect_backoff_s: float = 0.25
    #: open a fresh session between turns once this old (the API's cap is 60 minutes)
    rollover_after_s: float = 55 * 60
    #: conversation text restored into a new session (most recent first), in characters
    restore_chars: int = 16000


class _Segment:
    """One assistant item's audio on the playback timeline."""

    __slots__ = ("item_id", "response_id", "start", "end", "model_bytes", "done")

    def __init__(self, item_id: str, response_id: str, start: int) -> None:
        self.item_id = item_id
        self.response_id = response_id
        self.start = start
        self.end = start
        self.model_bytes = 0
        self.done = False


_IDLE, _REQUESTED, _ACTIVE = 0, 1, 2
_NOTICE_INVALID_LIMIT = 3


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


class Call:
    """One phone call. See the module docstring."""

    def __init__(self, config: CallConfig | None = None) -> None:
        self.config = config or CallConfig()
        self.phase = Phase.WAITING
        self.to_twilio: list[str] = []
        self.to_realtime: list[str] = []
        self.actions: list[Action] = []
        self.start: tw.Start | None = None
        self.dtmf: list[str] = []  # every key pressed, shared with CallContext
        self.outcome: str | None = None
        self.started_at: float | None = None

        self._out: tw.OutboundStream | None = None
        self._in = CallerToModel()
        self._down = ModelToCaller()
        self._clock = PlaybackClock()
        self._segments: list[_Segment] = []
        self._current: _Segment | None = None
        self._dropped_items: set[str] = set()
        self._dropped_responses: set[str] = set()
        self._held_audio: list[bytes] = []
        self._held_bytes = 0

        self._resp = _IDLE
        self._resp_id: str | None = None
        self._queued: list[str | None] = []
        self._configured = False
        self._user_speaking = False
        self._turn = 0
        self._speech_stopped_at: float | None = None
        self._spoken_at: dict[str, float] = {}  # item id -> when that speech began (for ordering)

        self._tools: dict[str, tuple[int, int, str]] = {}  # pending call_id -> (turn, session, name)
        self._tools_seen: set[str] = set()
        self._tool_turn_needs_response = False

        self._dtmf_pending: list[str] = []
        self._dtmf_deadline: float | None = None
        self._hangup: tuple[str, str] | None = None  # (outcome, reason)
        self._transfer: tuple[str, str] | None = None  # (number, label)
        self._control_deadline: float | None = None
        self._last_media_at: float | None = None

        self.invalid_twilio = 0
        self.media_before_start = 0

        self.generation = 0  # Realtime sessions opened so far
        self._connecting = False
        self._attempts = 0  # consecutive failed opens
        self._reconnect_at: float | None = None
        self._resume = False  # ask for a response once the new session is restored
        self._session_started_at: float | None = None
        self._rollover_check_at: float | None = None
        self._history: list[tuple[str, str, str]] = []  # (item id, role, text), in order
        self._cut: dict[str, float] = {}  # assistant item -> fraction heard (truncated items)
        self._deferred: list[str] = []  # for the session being opened (sent after its set-up)
        self.reconnects = 0
    # --- Twilio ------------------------------------------------------------------

    def receive_twilio(self, ev: tw.TwilioEvent, now: float) -> None:
        kind = type(ev)
        if kind is tw.Media:
            self._on_media(ev, now)  # type: ignore[arg-type]
        elif kind is tw.Mark:
            if self._clock.mark_echoed(ev.name, now):  # type: ignore[union-attr]
                self._prune_segments()
                self._check_control(now)
                if self._rollover_check_at is not None and now >= self._rollover_check_at:
                    self._maybe_rollover(now)
        elif kind is tw.Start:
            self._on_start(ev, now)  # type: ignore[arg-type]
        elif kind is tw.Dtmf:
            self._on_dtmf(ev.digit, now)  # type: ignore[union-attr]
        elif kind is tw.Stop:
            self._end("completed", "caller hung up or the stream stopped")
        elif kind is tw.Invalid:
            self._invalid("twilio", ev.reason)  # type: ignore[union-attr]
        # Connected and Unknown carry nothing we act on.

    def twilio_closed(self, now: float) -> None:
        """The media socket closed (with or without ``stop``)."""
        self._end("completed" if self.phase is not Phase.WAITING else "failed", "Twilio stream closed")

    def _on_start(self, ev: tw.Start, now: float) -> None:
        if self.phase is not Phase.WAITING:
            self._notice("twilio.duplicate_start", stream_sid=ev.stream_sid)
            return
        if ev.encoding != "audio/x-mulaw" or ev.sample_rate != 8000:
            self._end("failed", f"unsupported media format {ev.encoding}/{ev.sample_rate}")
            return
        self.start = ev
        self.started_at = now
        self._last_media_at = now
        self._out = tw.OutboundStream(ev.stream_sid)
        self.phase = Phase.STARTING
        self._notice(
            "call.start",
            stream_sid=ev.stream_sid,
            from_number=ev.custom_parameters.get("From"),
            to_number=ev.custom_parameters.get("To"),
        )
        self.actions.append(OpenRealtime(ev))

    def _on_media(self, ev: tw.Media, now: float) -> None:
        phase = self.phase
        if phase is Phase.LIVE:
            self._last_media_at = now
            b64 = self._in.convert_b64(ev.audio)
            if b64:
                self.to_realtime.append(rt.audio_append_bytes(b64))
        elif phase is Phase.STARTING or phase is Phase.RECONNECTING:
            self._last_media_at = now
            pcm = self._in.convert(ev.audio)
            self._held_audio.append(pcm)
            self._held_bytes += len(pcm)
            limit = self.config.max_buffer_ms * 48
            while self._held_bytes > limit and self._held_audio:
                self._held_bytes -= len(self._held_audio.pop(0))
        elif phase is Phase.WAITING:
            self.media_before_start += 1
            if self.media_before_start == 1:
                self._notice("twilio.media_before_start")
            self._count_invalid()

    def _on_dtmf(self, digit: str, now: float) -> None:
        if self.phase is Phase.WAITING or self.phase is Phase.ENDED:
            return
        self.dtmf.append(digit)
        self._dtmf_pending.append(digit)
        self._notice("dtmf", digit=digit)
        if digit == "#":
            self._flush_dtmf(now)
        else:
            self._dtmf_deadline = now + self.config.dtmf_pause_s

    def _flush_dtmf(self, now: float) -> None:
        self._dtmf_deadline = None
        if not self._dtmf_pending or self.phase is not Phase.LIVE:
            return
        keys = " ".join(self._dtmf_pending)
        self._dtmf_pending.clear()
        self.to_realtime.append(rt.user_text(f"[The caller pressed these keys on the phone keypad: {keys}]"))
        self._request_response()

    # --- Realtime ----------------------------------------------------------------

    def realtime_opened(self, session_update: str, now: float) -> None:
        """The Realtime socket is open: configure it, restore the conversation
        (after a reconnect) and send the held caller audio."""
        if self.phase is not Phase.STARTING and self.phase is not Phase.RECONNECTING:
            return
        reconnected = self.phase is Phase.RECONNECTING
        self.phase = Phase.LIVE
        self._connecting = False
        self._attempts = 0
        self.generation += 1
        self._session_started_at = now
        self._rollover_check_at = now + self.config.rollover_after_s
        self._configured = reconnected  # the greeting is for the first session only
        self.to_realtime.append(session_update)
        if reconnected:
            self.reconnects += 1
            restored = self._restore_history()
            self._notice("realtime.reconnected", generation=self.generation, restored_items=restored)
        if self._deferred:
            self.to_realtime.extend(self._deferred)
            self._deferred.clear()
        if self._held_audio:
            self.to_realtime.append(rt.audio_append(_b64(b"".join(self._held_audio))))
            self._held_audio.clear()
            self._held_bytes = 0
        if self._dtmf_pending and self._dtmf_deadline is None:
            self._flush_dtmf(now)
        if reconnected and self._resume and not self._user_speaking:
            self._request_response()
        self._resume = False

    def _restore_history(self) -> int:
        """Replay the conversation so far as text items into the new session."""
        budget = self.config.restore_chars
        keep: list[tuple[str, str]] = []
        for item_id, role, text in reversed(self._history):
            if role == "agent" and item_id in self._cut:
                words = text.split()
                text = " ".join(words[: int(len(words) * self._cut[item_id])])  # what was heard
                if not text:
                    continue
            if len(text) > budget:
                break
            budget -= len(text)
            keep.append((role, text))
        for role, text in reversed(keep):
            self.to_realtime.append(rt.assistant_text(text) if role == "agent" else rt.user_text(text))
        return len(keep)

    def realtime_closed(self, reason: str, now: float, retryable: bool = True) -> None:
        """The Realtime socket closed (or failed to open) without us asking: try
        again with backoff; after ``reconnect_attempts`` failures, or at once if
        retrying cannot help, end the call with an apology rather than dead air."""
        if self.phase is Phase.ENDED or self.phase is Phase.WAITING:
            return
        was_live = self.phase is Phase.LIVE
        self._connecting = False
        if was_live:
            self.phase = Phase.RECONNECTING
            # Whatever the old session was doing is gone: finish what we were playing,
            # forget its response, and ask for one once restored if it was mid-answer.
            self._resume = self._resp != _IDLE or bool(self._queued) or self._resume
            self._resp, self._resp_id = _IDLE, None
            self._queued.clear()
            self.to_realtime.clear()  # unsent messages were for the lost session
            if self._current is not None:
                self._finish_item(now)
            self._user_speaking = False
        else:
            self._attempts += 1
        if not retryable or self._attempts >= self.config.reconnect_attempts:
            self._notice("realtime.gave_up", reason=reason, attempts=self._attempts)
            self._end("failed", f"Realtime session unavailable: {reason}", apologize=True)
            return
        delay = 0.0 if self._attempts == 0 else min(4.0, self.config.reconnect_backoff_s * 2 ** (self._attempts - 1))
        self._reconnect_at = now + delay
        self._notice("realtime.lost", reason=reason, attempt=self._attempts + 1, retry_in_s=delay)
        if delay == 0.0:
            self.tick(now)

    def _maybe_rollover(self, now: float) -> None:
        """Between turns, replace a session nearing the API's time limit."""
        if (self.phase is not Phase.LIVE or self._rollover_check_at is None or now < self._rollover_check_at):
            return
        idle = (self._resp == _IDLE and not self._queued and not self._user_speaking and not self._tools
                and self._current is None and not self._clock.pending and self._hangup is None
                and self._transfer is None)
        if not idle:
            self._rollover_check_at = now + 1.0  # look again soon (events also trigger a look)
            return
        self._notice("realtime.rollover", age_s=round(now - (self._session_started_at or now), 1))
        self.phase = Phase.RECONNECTING
        self._rollover_check_at = None
        self._reconnect_at = None
        self._connecting = True
        assert self.start is not None
        self.actions.append(OpenRealtime(self.start, reconnect=True))

    def receive_realtime(self, ev: rt.RealtimeEvent, now: float) -> None:
        if self.phase is not Phase.LIVE:
            return  # a closed or replaced session's stragglers
        kind = type(ev)
        if kind is rt.AudioDelta:
            self._on_audio(ev, now)  # type: ignore[arg-type]
        elif kind is rt.AudioDone:
            if self._current is not None and self._current.item_id == ev.item_id:  # type: ignore[union-attr]
                self._finish_item(now)
        elif kind is rt.SpeechStarted:
            self._on_speech_started(ev, now)  # type: ignore[arg-type]
        elif kind is rt.SpeechStopped:
            self._user_speaking = False
            self._speech_stopped_at = now
        elif kind is rt.ResponseCreated:
            self._resp = _ACTIVE
            self._resp_id = ev.response_id  # type: ignore[union-attr]
        elif kind is rt.ResponseDone:
            self._on_response_done(ev, now)  # type: ignore[arg-type]
        elif kind is rt.FunctionCallDone:
            self._on_function_call(ev, now)  # type: ignore[arg-type]
        elif kind is rt.InputTranscript or kind is rt.TranscriptDone:
            role = "caller" if kind is rt.InputTranscript else "agent"
            at = self._spoken_at.pop(ev.item_id, now)  # type: ignore[union-attr]
            if ev.transcript:  # type: ignore[union-attr]
                self._history.append((ev.item_id, role, ev.transcript))  # type: ignore[union-attr]
            self._notice("transcript", role=role, text=ev.transcript, item_id=ev.item_id, at=at)  # type: ignore[union-attr]
        elif kind is rt.SessionUpdated:
            if not self._configured:
                self._configured = True
                if self.config.greeting:
                    self._request_response(
                        "Greet the caller now to open the call. If the following is a greeting, say it "
                        f"word for word; if it is an instruction, follow it: {self.config.greeting}"
                    )
        elif kind is rt.Error:
            self._on_error(ev, now)  # type: ignore[arg-type]
        elif kind is rt.Invalid:
            self._notice("realtime.invalid", reason=ev.reason)  # type: ignore[union-attr]

    def _on_audio(self, ev: rt.AudioDelta, now: float) -> None:
        if ev.item_id in self._dropped_items or ev.response_id in self._dropped_responses:
            return
        if self._out is None:
            return
        seg = self._current
        if seg is None or seg.item_id != ev.item_id:
            if seg is not None:
                self._finish_item(now)
            seg = self._current = _Segment(ev.item_id, ev.response_id, self._clock.sent)
            self._segments.append(seg)
            self._remember_spoken(ev.item_id, now)
            if self._speech_stopped_at is not None:
                # Nothing of ours is queued at Twilio after a turn, so sent = starts playing.
                self._notice("latency.first_audio", seconds=round(now - self._speech_stopped_at, 4))
                self._speech_stopped_at = None
        seg.model_bytes += len(ev.audio)
        ulaw = self._down.convert(ev.audio)
        if ulaw:
            self._send_audio(seg, ulaw, now)

    def _send_audio(self, seg: _Segment, ulaw: bytes, now: float) -> None:
        out = self._out
        assert out is not None
        self.to_twilio.append(out.media(_b64(ulaw)))
        self.to_twilio.append(out.mark(self._clock.sent_chunk(len(ulaw), now)))
        seg.end = self._clock.sent

    def _finish_item(self, now: float) -> None:
        """End of an item's audio: send the filter tail, start the next item clean."""
        seg = self._current
        self._current = None
        if seg is None:
            return
        tail = self._down.flush()
        if tail:
            self._send_audio(seg, tail, now)
        seg.done = True

    def _on_speech_started(self, ev: rt.SpeechStarted, now: float) -> None:
        self._remember_spoken(ev.item_id, now)
        self._user_speaking = True
        self._turn += 1
        self._speech_stopped_at = None
        if self._resp == _ACTIVE and self._resp_id is not None:
            # interrupt_response=true: the server cancels it; late deltas must not play.
            self._dropped_responses.add(self._resp_id)
        if not self._clock.pending and self._current is None:
            return  # nothing of ours is playing: not a barge-in
        self._barge_in(now)

    def _barge_in(self, now: float) -> None:
        assert self._out is not None
        heard_pos = self._clock.position(now)
        self.to_twilio.append(self._out.clear)
        cut: list[dict[str, Any]] = []
        for seg in self._segments:
            if seg.done and seg.end <= heard_pos:
                continue  # fully heard: nothing to forget
            heard = min(max(heard_pos - seg.start, 0), seg.end - seg.start)
            model_ms = seg.model_bytes // 48  # 24 kHz x 2 bytes per ms
            audio_end_ms = min(max(int(heard / 8 - DELAY_MS), 0), model_ms)
            self.to_realtime.append(rt.truncate(seg.item_id, audio_end_ms))
            self._dropped_items.add(seg.item_id)
            self._cut[seg.item_id] = audio_end_ms / model_ms if model_ms else 0.0
            cut.append({"item_id": seg.item_id, "audio_end_ms": audio_end_ms, "received_ms": model_ms})
        self._segments.clear()
        self._current = None
        self._clock.clear()
        self._down.reset()
        self._notice("barge_in", truncated=cut)

    def _remember_spoken(self, item_id: str, now: float) -> None:
        if len(self._spoken_at) > 64:  # transcripts that never came: forget the oldest
            self._spoken_at.pop(next(iter(self._spoken_at)))
        self._spoken_at.setdefault(item_id, now)

    def _prune_segments(self) -> None:
        """Forget items the caller has heard in full (after a mark echo)."""
        if not self._clock.pending and self._current is None:
            self._segments.clear()
            self._clock.clear()  # everything played: restart positions at 0
        elif len(self._segments) > 1:
            confirmed = self._clock.confirmed
            self._segments = [s for s in self._segments if not (s.done and s.end <= confirmed)]

    def _on_response_done(self, ev: rt.ResponseDone, now: float) -> None:
        if self._resp_id is None or ev.response_id == self._resp_id or self._resp != _IDLE:
            self._resp = _IDLE
            self._resp_id = None
        self._notice("response.done", response_id=ev.response_id, status=ev.status, reason=ev.reason, usage=ev.usage)
        if self._queued:
            self._send_response(self._queued.pop(0))
        self._check_control(now)
        self._maybe_rollover(now)

    def _on_error(self, ev: rt.Error, now: float) -> None:
        if ev.code in rt.BENIGN_ERRORS:
            return
        if self._resp == _REQUESTED:
            # Our response.create was refused: do not wait forever for response.created.
            self._resp = _IDLE
            if self._queued:
                self._send_response(self._queued.pop(0))
        self._notice("realtime.error", type=ev.type, code=ev.code, message=ev.message)

    # --- responses ---------------------------------------------------------------

    def _to_session(self, text: str) -> None:
        """Send to the live session, or keep for the one being opened."""
        if self.phase is Phase.LIVE:
            self.to_realtime.append(text)
        else:
            self._deferred.append(text)

    def _request_response(self, instructions: str | None = None) -> None:
        if self.phase is not Phase.LIVE:
            self._resume = True  # asked for once the new session is restored
            return
        if self._resp == _IDLE:
            self._send_response(instructions)
        elif len(self._queued) < 4:
            self._queued.append(instructions)

    def _send_response(self, instructions: str | None) -> None:
        self._resp = _REQUESTED
        self.to_realtime.append(rt.response_create(instructions))

    # --- tools -------------------------------------------------------------------

    def _on_function_call(self, ev: rt.FunctionCallDone, now: float) -> None:
        if ev.call_id in self._tools_seen:
            return
        self._tools_seen.add(ev.call_id)
        self._tools[ev.call_id] = (self._turn, self.generation, ev.name)
        self._notice("tool.call", call_id=ev.call_id, name=ev.name, arguments=ev.arguments)
        self.actions.append(RunTool(ev.call_id, ev.name, ev.arguments))

    def tool_finished(self, call_id: str, output: str, now: float, **details: Any) -> None:
        """A tool returned (or failed: ``output`` is then the error text for the model)."""
        pending = self._tools.pop(call_id, None)
        if pending is None or self.phase is Phase.ENDED:
            return
        turn, generation, name = pending
        if generation == self.generation and self.phase is Phase.LIVE:
            self.to_realtime.append(rt.function_call_output(call_id, output))
        else:
            # The call was made in a session that is gone; the new one does not know
            # the call id, so the result goes in as a message the model can read.
            self._to_session(rt.system_text(f"Result of your earlier {name} tool call ({call_id}): {output}"))
            turn = self._turn
        self._notice("tool.result", call_id=call_id, output=output, **details)
        if self.phase is not Phase.LIVE:
            self._resume = self._resume or not self._tools
            return
        if turn == self._turn:
            self._tool_turn_needs_response = True
        if self._tools:
            return  # one response.create once the turn's calls are all answered
        self._check_control(now)  # a hang-up or transfer may have waited for this tool
        needs = self._tool_turn_needs_response
        self._tool_turn_needs_response = False
        # After end_call/transfer the agent's words are already said: no new response.
        # If the caller spoke since, their turn's response will read the output.
        if needs and not self._user_speaking and self._hangup is None and self._transfer is None:
            self._request_response()

    @property
    def pending_tools(self) -> int:
        return len(self._tools)

    # --- call control ------------------------------------------------------------

    def request_hangup(self, reason: str, now: float, outcome: str = "hung_up_by_agent") -> None:
        """End the call once the agent's words that are queued now have played."""
        if self.phase is Phase.ENDED or self._hangup is not None:
            return
        self._hangup = (outcome, reason)
        self._notice("hangup.requested", reason=reason)
        self._check_control(now)

    def request_transfer(self, number: str, label: str, now: float) -> None:
        """Redirect the call to ``number`` once the agent's queued words have played."""
        if self.phase is Phase.ENDED or self._transfer is not None:
            return
        self._transfer = (number, label)
        self._notice("transfer.requested", number=number, label=label)
        self._check_control(now)

    def transfer_failed(self, reason: str, now: float) -> None:
        """The redirect failed: tell the model, and the conversation goes on."""
        if self.phase is Phase.ENDED or self._transfer is None:
            return
        number, label = self._transfer
        self._transfer = None
        self._control_deadline = None
        self._notice("transfer.failed", number=number, reason=reason)
        self._to_session(
            rt.system_text(f"The transfer to {label} ({number}) failed: {reason}. Tell the caller and offer other help.")
        )
        self._request_response()

    def transfer_done(self, now: float) -> None:
        if self._transfer is not None:
            self._end("transferred", f"transferred to {self._transfer[1]}")

    def _check_control(self, now: float) -> None:
        """Hang up / transfer once the agent has finished speaking and it has played."""
        if self._hangup is None and (self._transfer is None or self._control_deadline == float("inf")):
            return
        if self.phase is Phase.ENDED:
            return
        if self._resp != _IDLE or self._queued or self._tools or self._current is not None:
            self._control_deadline = None
            return
        if self._clock.pending:
            # Wait for the last mark echo, but not forever if echoes stop coming.
            self._control_deadline = self._clock.drained_at(now) + self.config.playback_grace_s
            return
        self._control_deadline = None
        if self._transfer is not None:
            number, label = self._transfer
            self._control_deadline = float("inf")  # wait for transfer_done / transfer_failed
            self.actions.append(TransferCall(number, label))
            return
        if self._hangup is not None:
            self._end(*self._hangup)

    # --- timers ------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time ``tick`` has something to do, or None."""
        if self.phase is Phase.ENDED:
            return None
        candidates = [self._dtmf_deadline, self._reconnect_at, self._rollover_check_at]
        if self._control_deadline is not None and self._control_deadline != float("inf"):
            candidates.append(self._control_deadline)
        if self._last_media_at is not None and self.config.quiet_timeout_s > 0:
            candidates.append(self._last_media_at + self.config.quiet_timeout_s)
        if self.started_at is not None and self.config.max_duration_s > 0:
            candidates.append(self.started_at + self.config.max_duration_s)
        present = [c for c in candidates if c is not None]
        return min(present) if present else None

    def tick(self, now: float) -> None:
        if self.phase is Phase.ENDED:
            return
        if self._reconnect_at is not None and now >= self._reconnect_at and not self._connecting:
            self._reconnect_at = None
            self._connecting = True
            assert self.start is not None
            self.actions.append(OpenRealtime(self.start, reconnect=self.phase is Phase.RECONNECTING))
        if self._rollover_check_at is not None and now >= self._rollover_check_at:
            self._maybe_rollover(now)
        if self._dtmf_deadline is not None and now >= self._dtmf_deadline:
            self._flush_dtmf(now)
        if self._control_deadline is not None and now >= self._control_deadline:
            self._control_deadline = None
            self._clock.clear()  # marks stopped coming back: assume played
            self._check_control(now)
        if self._last_media_at is not None and self.config.quiet_timeout_s > 0:
            if now >= self._last_media_at + self.config.quiet_timeout_s:
                self._end("failed", f"no media from Twilio for {self.config.quiet_timeout_s:g} s")
                return
        if self.started_at is not None and self.config.max_duration_s > 0:
            if now >= self.started_at + self.config.max_duration_s:
                self._end("completed", f"maximum call duration ({self.config.max_duration_s:g} s) reached")

    # --- ending --------------------------------------------------------------------

    def end(self, outcome: str, reason: str) -> None:
        """End the call now (shutdown, fatal error)."""
        self._end(outcome, reason)

    def _end(self, outcome: str, reason: str, apologize: bool = False) -> None:
        if self.phase is Phase.ENDED:
            return
        was_waiting = self.phase is Phase.WAITING
        self.phase = Phase.ENDED
        self.outcome = outcome
        self._held_audio.clear()
        if not was_waiting:
            self.actions.append(CloseRealtime(reason))
        self._notice(
            "call.end",
            outcome=outcome,
            reason=reason,
            invalid_messages=self.invalid_twilio,
            pending_tools=len(self._tools),
            reconnects=self.reconnects,
            apologize=apologize,
        )
        self.actions.append(EndCall(outcome, reason, apologize))

    def _invalid(self, side: str, reason: str) -> None:
        self.invalid_twilio += 1
        if self.invalid_twilio <= _NOTICE_INVALID_LIMIT:
            self._notice(f"{side}.invalid", reason=reason, count=self.invalid_twilio)
        self._count_invalid()

    def _count_invalid(self) -> None:
        if self.invalid_twilio + self.media_before_start > self.config.max_invalid_messages:
            self._end("failed", "too many invalid messages from Twilio")

    def _notice(self, kind: str, **data: Any) -> None:
        self.actions.append(Notice(kind, data))
