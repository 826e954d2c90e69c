"""The call: one state machine per phone call, no I/O, no clock.

Feed it Twilio and Realtime events with the time they arrived; then drain what
it queued: ``drain_twilio()`` and ``drain_realtime()`` (messages, in order) and
``drain_actions()`` (``events.Action``s for the I/O layer to carry out and
``events.Notice``s to log, record or count). Timers are ``next_deadline()`` +
``tick(now)``.

``Call`` is a façade: it owns the phase and the outboxes, routes each event to
the parts below and answers the questions that span them (is the call idle
enough to roll the session over? is the agent busy, so a hang-up waits?). Each
concern lives in its own module:

* ``playout.Playout``: the agent's audio to the caller, the playback clock;
* ``interruption.Interruption``: barge-in (with ``bargein.BargeInPolicy``):
  what the caller's speech stops and cuts;
* ``responses.ResponseGate``: one model response at a time;
* ``recovery.Recovery``: failed responses asked for again, dead air, handing on;
* ``tools.ToolLedger``: one output per function call;
* ``session.SessionLifecycle``: (re)opening, rollover, restoring the
  conversation, audio and messages held while no session is live;
* ``control.Control`` / ``control.Keypad``: hang-up and transfer after the
  agent's words have played, transfer outcomes; keypad digits in batches;
* ``amd.Screening``: answering-machine verdicts, the greeting or voicemail;
* ``tones.Tones``, ``hold.Hold``, ``aec.EchoPath``: keypad tones we play, the
  hold sound, the echo canceller's reference;
* ``transcripts.Transcripts``: transcripts in spoken order, first-audio latency.

This file is longer than the ~400 lines we aim for, on purpose. What is left
is the façade's own: the phase machine (every transition: start, session
opened, lost, rolled over, refused, ended), the two routers, the timers, where a
tool's result goes (this session, a later one, or a message), the entry points
the I/O layer calls (most a line or two handing over to a part), and the
per-frame paths (``receive_twilio``'s media branch, ``_on_media``,
``receive_realtime``'s audio branches, the drains), written out here with no
extra call per frame. The transitions each read and change several parts and
the phase; moved out, one phase machine would be spread over several files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..audio import CallerToModel
from ..wire import realtime as rt
from ..wire import twilio as tw
from . import events
from .aec import EchoPath
from .amd import Screening
from .config import CallConfig, Phase
from .control import Control, Keypad
from .hold import Hold
from .interruption import Interruption
from .playout import Playout
from .recovery import Recovery
from .responses import ResponseGate
from .session import SessionLifecycle
from .tones import Tones
from .tools import ToolLedger
from .transcripts import Transcripts

__all__ = ["Call", "RealtimeMessage"]

#: A message for the Realtime socket: JSON text (``bytes`` on the per-frame path).
RealtimeMessage = str | bytes

#: Invalid messages are noticed (logged) this many times per call, then only counted.
_NOTICE_INVALID_LIMIT = 3
_NOTHING: tuple[()] = ()


class Call:
    """One phone call. See the module docstring."""

    def __init__(self, config: CallConfig | None = None, connected_at: float | None = None) -> None:
        """``connected_at``: when the stream connected (starts the ``start`` deadline)."""
        self.config = config = config or CallConfig()
        self.phase = Phase.WAITING
        self._connected_at = connected_at
        self.start: tw.Start | None = None
        self.started_at: float | None = None
        self.outcome: str | None = None
        self.invalid_twilio = 0
        self.media_before_start = 0
        # Caller input limits: audio and keys are token buckets (credit, last refill time).
        self._audio_rate = 8000 * config.max_audio_rate  # μ-law bytes (samples) per second
        self._audio_burst = self._audio_rate * config.audio_window_s
        self._audio_credit = self._audio_burst
        self._audio_at: float | None = None
        self.audio_dropped = 0  # μ-law bytes of caller audio dropped for coming too fast
        self._limited: set[str] = set()

        self._twilio: list[str] = []
        self._realtime: list[RealtimeMessage] = []
        self._actions: list[events.Event] = []

        self._in = CallerToModel()
        self._playout = Playout(self._twilio)
        self._gate = ResponseGate(self._realtime)
        self._tools = ToolLedger()
        self._session = SessionLifecycle(self.config)
        self._control = Control(config, self._actions, self._end, self._call_ended, self._tell)
        self._keypad = Keypad(config, self._actions, self._limit)
        self.dtmf = self._keypad.pressed  # every key pressed, shared with CallContext
        self._transcripts = Transcripts(self._actions, self._session)
        self._recovery = Recovery(config, self._actions, self._request_response, self.request_transfer, self._end)
        self._tones = Tones(self._actions, self._playout)
        self._screening = Screening(config, self._actions, self._request_response, self.request_hangup)
        self._interruption = Interruption(
            config, self._realtime, self._actions, self._playout, self._gate, self._tones, self._session
        )
        self._barge = self._interruption.policy
        self._interrupt = self._interruption.interrupt  # bound once: called from the per-frame path
        self._hold = Hold(self._twilio, config)
        self._echo = EchoPath() if self.config.echo_cancellation else None
        self._playout.echo = self._hold.echo = self._echo
        #: the session.update without optional fields, sent once if the full one is refused
        self._minimal_update: str | None = None
        #: this stream continues a call that came back from a transfer: what to tell the model
        self._returning: str | None = None

        self._user_speaking = False
        self._turn = 0
        self._last_media_at: float | None = None

    # --- outboxes ------------------------------------------------------------------------

    # The three drains are written out (not one shared helper): they run for every
    # audio frame, and a second function call each is measurable there.

    def drain_twilio(self) -> Sequence[str]:
        """Messages for the Twilio socket, in order (each taken once)."""
        out = self._twilio
        if not out:
            return _NOTHING
        batch = out.copy()
        out.clear()  # the parts append to this same list object
        return batch

    def drain_realtime(self) -> Sequence[RealtimeMessage]:
        """Messages for the live Realtime socket, in order (each taken once)."""
        out = self._realtime
        if not out:
            return _NOTHING
        batch = out.copy()
        out.clear()
        return batch

    def drain_actions(self) -> Sequence[events.Event]:
        """Actions and notices, in the order they happened (each taken once)."""
        out = self._actions
        if not out:
            return _NOTHING
        batch = out.copy()
        out.clear()
        return batch

    # --- read-only views -------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Realtime sessions opened so far."""
        return self._session.generation

    @property
    def reconnects(self) -> int:
        return self._session.reconnects

    @property
    def transfer_unconfirmed(self) -> bool:
        """The call ended while a transfer's REST reply was pending (its outcome waits for it)."""
        return self._control.end_pending is not None

    @property
    def keys_dropped(self) -> int:
        """Keys dropped over the keypad limits."""
        return self._keypad.dropped

    @property
    def pending_tools(self) -> int:
        return self._tools.pending

    @property
    def deferred(self) -> tuple[RealtimeMessage, ...]:
        """Messages waiting for the Realtime session being opened."""
        return self._session.deferred

    # --- Twilio ------------------------------------------------------------------------------

    def receive_twilio(self, ev: tw.TwilioEvent, now: float) -> None:
        match ev:
            case tw.Media():
                self._on_media(ev, now)
            case tw.Mark():
                if self._tones.marks:
                    self._tones.echoed(ev.name)
                if self._playout.mark_echoed(ev.name, now):
                    self._check_control(now)
                    if self._session.rollover_due(now):
                        self._maybe_rollover(now)
            case tw.Start():
                self._on_start(ev, now)
            case tw.Dtmf():
                if (
                    self.phase is not Phase.WAITING
                    and self.phase is not Phase.ENDED
                    and self._keypad.key(ev.digit, now)
                ):
                    self._flush_keys(now)
            case tw.Stop():
                self._end("completed", "caller hung up or the stream stopped")
            case tw.Invalid():
                self._invalid(ev.reason)
            case tw.Unknown():
                self._invalid(f"unknown event {ev.event[:40]!r}")  # counted like invalid ones
            case _:
                pass  # Connected carries nothing we act on

    def twilio_closed(self, now: float) -> None:
        """The media socket closed (with or without ``stop``)."""
        self._end("completed" if self.phase is not Phase.WAITING else "failed", "Twilio stream closed")

    def _on_start(self, ev: tw.Start, now: float) -> None:
        if self.phase is not Phase.WAITING:
            self._actions.append(events.DuplicateStart(ev.stream_sid))
            return
        if ev.encoding != "audio/x-mulaw" or ev.sample_rate != 8000:
            self._end("failed", f"unsupported media format {ev.encoding}/{ev.sample_rate}")
            return
        self.start = ev
        self.started_at = now
        self._last_media_at = now
        self._playout.begin(ev.stream_sid)
        self._hold.begin(ev.stream_sid)
        self.phase = Phase.STARTING
        self._actions.append(events.CallStarted(ev))
        self._actions.append(events.OpenRealtime(ev))

    def _on_media(self, ev: tw.Media, now: float) -> None:
        phase = self.phase
        # Real time, give or take: a token bucket of μ-law bytes (O(1), no allocation).
        n = len(ev.audio)
        at = self._audio_at
        credit = self._audio_credit if at is None else self._audio_credit + (now - at) * self._audio_rate
        if credit > self._audio_burst:
            credit = self._audio_burst
        self._audio_at = now
        if credit < n and phase is not Phase.WAITING:
            self._audio_credit = credit
            self.audio_dropped += n
            if self.audio_dropped == n:
                self._limit("audio", f"{self.config.max_audio_rate:g}x real time")
            return
        self._audio_credit = credit - n
        if phase is Phase.LIVE:
            self._last_media_at = now
            echo = self._echo
            clean = None if echo is None else echo.process(ev.audio, now)
            b64 = self._in.convert_b64(ev.audio) if clean is None else self._in.convert_pcm_b64(clean)
            if b64:
                self._realtime.append(rt.audio_append_bytes(b64))
            barge = self._barge
            if barge.min_s and b64 and barge.frame(self._in.power(), n):
                self._interrupt(now)
        elif phase is Phase.STARTING or phase is Phase.RECONNECTING:
            self._last_media_at = now
            clean = None if self._echo is None else self._echo.process(ev.audio, now)
            self._session.hold(self._in.convert(ev.audio) if clean is None else self._in.convert_pcm(clean))
        elif phase is Phase.WAITING:
            self.media_before_start += 1
            if self.media_before_start == 1:
                self._actions.append(events.MediaBeforeStart())
            self._count_invalid()

    def _limit(self, what: str, limit: str) -> None:
        """Caller input over a limit: noticed once per call and kind (the excess is dropped)."""
        if what not in self._limited:
            self._limited.add(what)
            self._actions.append(events.InputLimited(what, limit))

    def _flush_keys(self, now: float | None = None) -> None:
        """Send the pending digits to the model (kept until a session is live)."""
        self._keypad.deadline = None
        if self.phase is not Phase.LIVE:
            return
        keys = self._keypad.take()
        if keys is None:
            return
        self._realtime.append(rt.user_text(self.config.wording.keypad.format(keys=keys)))
        self._request_response(now=now)

    # --- the Realtime session ---------------------------------------------------------------

    def realtime_opened(self, session_update: str, now: float, minimal_update: str | None = None) -> None:
        """The Realtime socket is open: configure it, restore the conversation
        (after a reconnect) and send the held caller audio. ``minimal_update``
        (the same without optional fields) is sent if the server refuses the first."""
        if self.phase is not Phase.STARTING and self.phase is not Phase.RECONNECTING:
            return
        self._minimal_update = minimal_update
        session = self._session
        reconnected = self.phase is Phase.RECONNECTING
        self.phase = Phase.LIVE
        session.opened(now, reconnected)
        self._realtime.append(session.configure(session_update))
        if reconnected:
            restored = session.restore()
            self._realtime.extend(restored)
            self._actions.append(events.RealtimeReconnected(session.generation, len(restored)))
        returning, self._returning = self._returning, None
        if returning is not None:  # back from a transfer: no greeting, the conversation goes on
            session.configured = True
            self._realtime.extend(session.restore())
            self._realtime.append(rt.system_text(returning))
        self._realtime.extend(session.take_deferred())
        held = session.take_held_audio()
        if held is not None:
            self._realtime.append(held)
        if self._keypad.pending and self._keypad.deadline is None:
            self._flush_keys(now)
        if ((reconnected and session.resume) or returning is not None) and not self._user_speaking:
            self._request_response(now=now)
        session.resume = False

    def update_session(self, message: str, new_session: str, now: float, notice: events.Notice | None = None) -> None:
        """Change the live session (an agent handoff): send ``message`` (a
        ``session.update``) now if a session is live; a session opened from now on
        is configured with ``new_session`` instead of the first one. Nothing is
        deferred: a session being opened gets ``new_session`` whole."""
        if self.phase is Phase.ENDED:
            return
        self._session.update = new_session
        if self.phase is Phase.LIVE:
            self._realtime.append(message)
        if notice is not None:
            self._actions.append(notice)

    def realtime_closed(self, reason: str, now: float, retryable: bool = True) -> None:
        """The Realtime socket closed (or failed to open) without us asking: try
        again with backoff; after ``reconnect_attempts`` failures, or at once if
        retrying cannot help, end the call with an apology rather than dead air."""
        if self.phase is Phase.ENDED or self.phase is Phase.WAITING:
            return
        session = self._session
        was_live = self.phase is Phase.LIVE
        session.lost(was_live)
        if was_live:
            self.phase = Phase.RECONNECTING
            # Whatever the old session was doing is gone: finish what we were playing,
            # forget its response, and ask for one once restored if it was mid-answer.
            session.resume = self._gate.reset() or session.resume
            self._realtime.clear()  # unsent messages were for the lost session
            if self._playout.receiving:
                self._playout.finish_item(now)
            self._user_speaking = False
        if session.should_give_up(retryable):
            self._actions.append(events.RealtimeGaveUp(reason, session.attempts))
            self._end("failed", f"Realtime session unavailable: {reason}", apologize=True)
            return
        delay = session.schedule_retry(now)
        self._actions.append(events.RealtimeLost(reason, session.attempts + 1, delay))
        if delay == 0.0:
            self.tick(now)

    def _maybe_rollover(self, now: float) -> None:
        """Between turns, replace a session nearing the API's time limit."""
        session = self._session
        if self.phase is not Phase.LIVE or not session.rollover_due(now):
            return
        if not self._idle():
            session.postpone_rollover(now)
            return
        self._actions.append(events.RealtimeRollover(round(now - (session.started_at or now), 1)))
        self.phase = Phase.RECONNECTING
        session.begin_rollover()
        assert self.start is not None
        self._actions.append(events.OpenRealtime(self.start, reconnect=True))

    def _idle(self) -> bool:
        """Nobody is speaking, nothing is playing, pending or asked for."""
        return (
            self._gate.idle
            and not self._user_speaking
            and not self._tools.pending
            and not self._playout.playing
            and self._control.idle
        )

    def receive_realtime(self, ev: rt.RealtimeEvent, now: float) -> None:
        if self.phase is not Phase.LIVE:
            return  # a closed or replaced session's stragglers
        match ev:
            case rt.AudioDelta():
                if self._hold.active:
                    self._hold.stop(now)  # cleared before the answer's first audio goes out
                if self._playout.audio(ev, now):
                    self._agent_started(ev.item_id, now)
            case rt.AudioDone():
                self._playout.audio_done(ev.item_id, now)
                if self._tones.waiting:
                    self._tones.flush(now)
            case rt.SpeechStarted():
                self._on_speech_started(ev, now)
            case rt.SpeechStopped():
                self._user_speaking = False
                self._barge.speech_stopped()
                self._transcripts.speech_stopped_at = now
                self._recovery.expect(now, self.config.dead_air_s)
            case rt.ResponseCreated():
                self._gate.created(ev.response_id)
                self._interruption.response_created(ev.response_id)
            case rt.ResponseDone():
                instructions = self._gate.instructions
                self._gate.done(ev.response_id)
                self._actions.append(events.ResponseFinished(ev.response_id, ev.status, ev.reason, ev.usage))
                if ev.status == "completed":
                    self._recovery.succeeded()
                elif ev.status == "failed" or ev.status == "incomplete":
                    busy = self._user_speaking or not self._control.idle
                    self._recovery.response_failed(ev, instructions, now, busy)
                    if self.phase is Phase.ENDED:
                        return
                if self._hold.active and not self._tools.pending and not self._playout.receiving:
                    self._hold.stop(now)  # the turn ended without audio
                self._check_control(now)
                self._maybe_rollover(now)
            case rt.FunctionCallDone():
                self._recovery.heard()
                if self._tools.called(ev.call_id, ev.name, self._turn, self._session.generation):
                    self._hold.tool_started(ev.name, now)
                    self._session.remember_call(ev.call_id, ev.name, ev.arguments)
                    self._actions.append(events.RunTool(ev.call_id, ev.name, ev.arguments))
            case rt.InputTranscript():
                self._transcripts.transcript("caller", ev.item_id, ev.transcript, now)
            case rt.InputTranscriptFailed():
                # The turn is kept (records, replay) as a marker, not silently lost.
                self._actions.append(events.TranscriptionFailed(ev.item_id, ev.message))
                self._transcripts.transcript("caller", ev.item_id, self.config.wording.untranscribed, now)
            case rt.TranscriptDone():
                self._transcripts.transcript("agent", ev.item_id, ev.transcript, now)
            case rt.SessionUpdated():
                if not self._session.configured:
                    self._session.configured = True
                    self._screening.session_configured(now)
            case rt.Error():
                self._on_error(ev, now)
            case rt.McpProgress():
                self._actions.append(events.McpProgress(ev.what, ev.status, ev.item_id))
            case rt.McpCallDone():
                self._actions.append(
                    events.McpCall(ev.item_id, ev.server_label, ev.name, ev.arguments, ev.output, ev.error)
                )
            case rt.McpApprovalRequest():
                self._on_mcp_approval(ev)
            case rt.Invalid():
                self._actions.append(events.InvalidRealtimeEvent(ev.reason))
            case _:
                pass

    def _on_mcp_approval(self, ev: rt.McpApprovalRequest) -> None:
        """Answer by policy; the API continues once a response is asked for."""
        approve = self.config.mcp_approve
        reason = None if approve else self.config.wording.mcp_denied
        self._realtime.append(rt.mcp_approval_response(ev.request_id, approve, reason))
        self._actions.append(events.McpApproval(ev.request_id, ev.server_label, ev.name, approve))
        self._request_response()

    def _on_error(self, ev: rt.Error, now: float) -> None:
        """An ``error``, matched to the client event it names (``event_id``)."""
        if ev.code in rt.BENIGN_ERRORS:
            return
        about = rt.caused_by(ev.event_id)
        if about == rt.SESSION_UPDATE:
            self._session_rejected(ev, now)
            return
        if about is None or about == rt.RESPONSE_CREATE:
            self._gate.refused()  # only our create's refusal frees the gate (not a failed truncate)
        self._actions.append(events.RealtimeErrorReported(ev.type, ev.code, ev.message, about))

    def _session_rejected(self, ev: rt.Error, now: float) -> None:
        """Our ``session.update`` was refused: the session would run without the
        instructions and tools. Retry once without optional fields, else give up."""
        minimal, self._minimal_update = self._minimal_update, None
        if minimal is not None and self.phase is Phase.LIVE:
            self._actions.append(events.SessionRejected(ev.code, ev.message, "retry_minimal"))
            self._realtime.append(minimal)
            return
        self._actions.append(events.SessionRejected(ev.code, ev.message, "gave_up"))
        self._end("failed", f"the Realtime API refused the session configuration: {ev.code}", apologize=True)

    def _agent_started(self, item_id: str, now: float) -> None:
        """The first audio of an assistant item went to the caller."""
        self._recovery.heard()
        self._transcripts.agent_started(item_id, now)

    def _on_speech_started(self, ev: rt.SpeechStarted, now: float) -> None:
        self._screening.callee_spoke(now)  # the callee spoke first: a person, greet them
        self._recovery.heard()
        if self._hold.active:
            self._hold.stop(now)
        self._recovery.retry_at = None  # the caller's turn brings its own response
        self._transcripts.spoken(ev.item_id, now)
        self._user_speaking = True
        self._turn += 1
        self._transcripts.speech_stopped_at = None
        self._interruption.speech_started(now)

    # --- responses -----------------------------------------------------------------------------

    def _to_session(self, message: str) -> None:
        """Send to the live session, or keep for the one being opened."""
        if self.phase is Phase.LIVE:
            self._realtime.append(message)
        else:
            self._session.defer(message)

    def _tell(self, text: str, now: float) -> None:
        """Tell the model (now, or in the session being opened) and ask for a response."""
        self._to_session(rt.system_text(text))
        self._request_response(now=now)

    def _request_response(self, instructions: str | None = None, now: float | None = None) -> None:
        """Ask for a response; with ``now``, dead air is watched from then."""
        if now is not None:
            self._recovery.expect(now, self.config.dead_air_s)
        if self.phase is not Phase.LIVE:
            self._session.resume = True  # asked for once the new session is restored
            return
        self._gate.request(instructions)

    # --- tools -------------------------------------------------------------------------------

    def tool_finished(self, call_id: str, output: str, now: float) -> None:
        """A tool returned (or failed: ``output`` is then the error text for the model)."""
        pending = self._tools.finished(call_id)
        if pending is None or self.phase is Phase.ENDED:
            return
        if not self._tools.pending:
            self._hold.tools_done()
        turn = pending.turn
        self._session.remember_output(call_id, output)  # restored with its call into later sessions
        if pending.generation == self._session.generation and self.phase is Phase.LIVE:
            self._realtime.append(rt.function_call_output(call_id, output))
        else:
            # The call was made in a session that is gone; the new one does not know
            # the call id, so the result goes in as a message the model can read.
            text = self.config.wording.late_tool_result.format(name=pending.name, call_id=call_id, output=output)
            self._to_session(rt.system_text(text))
            turn = self._turn
        if self.phase is not Phase.LIVE:
            self._session.resume = self._session.resume or not self._tools.pending
            return
        if turn == self._turn:
            self._tools.needs_response = True
        if self._tools.pending:
            return  # one response.create once the turn's calls are all answered
        self._check_control(now)  # a hang-up or transfer may have waited for this tool
        needs = self._tools.take_needs_response()
        # After end_call/transfer the agent's words are already said: no new response.
        # If the caller spoke since, their turn's response will read the output.
        if needs and not self._user_speaking and self._control.idle:
            self._request_response(now=now)

    # --- call control ------------------------------------------------------------------------

    def request_hangup(self, reason: str, now: float, outcome: str = "hung_up_by_agent") -> None:
        """End the call once the agent's words that are queued now have played."""
        if self.phase is Phase.ENDED or self._control.hangup is not None:
            return
        self._control.hangup = (outcome, reason)
        self._actions.append(events.HangupRequested(reason))
        self._check_control(now)

    def request_transfer(self, number: str, label: str, now: float) -> None:
        """Redirect the call to ``number`` once the agent's queued words have played."""
        if self.phase is Phase.ENDED or self._control.transfer is not None:
            return
        self._control.transfer = (number, label)
        self._actions.append(events.TransferRequested(number, label))
        self._check_control(now)

    def transfer_failed(self, reason: str, now: float) -> None:
        """The redirect failed: tell the model, and the conversation goes on."""
        self._control.failed(reason, now, self.phase is Phase.ENDED, self._recovery.escalating)

    def send_tones(self, digits: str, token: str, now: float) -> None:
        """Play keypad tones for ``digits`` after what is queued (ValueError: bad digits);
        ``TonesPlayed(token, ...)`` reports when they have played."""
        self._tones.request(token, digits)
        if self.phase is Phase.ENDED or self.start is None:
            self._tones.abandon()
            return
        if not self._playout.receiving:
            self._tones.flush(now)

    def await_verdict(self, now: float, wait_s: float) -> None:
        """An outbound call with answering-machine detection: the greeting waits for
        ``verdict`` (or the callee speaking first, or ``wait_s``)."""
        self._screening.start(now, wait_s)

    def verdict(self, answered_by: str, now: float, voicemail: str | None = None) -> None:
        """Twilio's verdict: a person is greeted; after a machine's greeting,
        ``voicemail`` (a text or an instruction) is left once and the call hangs up
        once it has played. ``fax``/``unknown``: as configured."""
        if self.phase is not Phase.ENDED:
            self._screening.verdict(answered_by, now, voicemail, self._session.configured)

    def tap_playout(self, sent: Callable[[bytes], None], cleared: Callable[[], None]) -> None:
        """A local recording: ``sent`` gets every mu-law chunk sent to Twilio, ``cleared`` each ``clear``."""
        self._playout.tap = self._hold.tap = sent
        self._playout.tap_clear = self._hold.tap_clear = cleared

    def conversation(self) -> tuple[list[list[str]], dict[str, float]]:
        """The conversation so far (a copy), kept while a transfer rings."""
        return self._session.snapshot()

    def resume_after_transfer(self, conversation: tuple[list[list[str]], dict[str, float]] | None, notice: str) -> None:
        """This stream is the same call back from a transfer nobody answered: the
        first session gets ``conversation`` restored (as after a reconnect) and
        ``notice`` told to the model, and answers instead of greeting."""
        if conversation is not None:
            self._session.adopt(conversation)
        self._returning = notice

    def transfer_done(self, now: float) -> None:
        ending = self._control.done()
        if ending is not None:
            self._end(*ending)

    def transfer_unresolved(self, why: str) -> None:
        """No REST reply will come (shutdown): report the ending with what is known."""
        self._control.unresolved(why)

    def _check_control(self, now: float) -> None:
        """Hang up / transfer once the agent has finished speaking and it has played."""
        control = self._control
        if control.waiting and self.phase is not Phase.ENDED:
            control.check(
                now, not self._gate.idle or bool(self._tools.pending) or self._playout.receiving, self._playout
            )

    # --- timers --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time ``tick`` has something to do, or None."""
        if self.phase is Phase.ENDED:
            return None
        session, config = self._session, self.config
        recovery = self._recovery
        candidates = [
            self._keypad.deadline,
            self._screening.deadline,
            session.reconnect_at,
            session.rollover_at,
            self._control.deadline,
            recovery.retry_at,
            recovery.dead_air_at,
            self._hold.deadline,
        ]
        if self.phase is Phase.WAITING and self._connected_at is not None and config.start_timeout_s > 0:
            candidates.append(self._connected_at + config.start_timeout_s)
        if self._last_media_at is not None and config.quiet_timeout_s > 0:
            candidates.append(self._last_media_at + config.quiet_timeout_s)
        if self.started_at is not None and config.max_duration_s > 0:
            candidates.append(self.started_at + config.max_duration_s)
        present = [c for c in candidates if c is not None]
        return min(present) if present else None

    def tick(self, now: float) -> None:
        if self.phase is Phase.ENDED:
            return
        session, config, control = self._session, self.config, self._control
        if self.phase is Phase.WAITING and self._connected_at is not None and config.start_timeout_s > 0:
            if now >= self._connected_at + config.start_timeout_s:
                self._end("failed", f"no start within {config.start_timeout_s:g} s of connecting")
            return
        if session.retry_due(now):
            assert self.start is not None
            self._actions.append(events.OpenRealtime(self.start, reconnect=self.phase is Phase.RECONNECTING))
        if session.rollover_due(now):
            self._maybe_rollover(now)
        if self._keypad.deadline is not None and now >= self._keypad.deadline:
            self._flush_keys(now)
        self._screening.tick(now)
        recovery = self._recovery
        if recovery.retry_due(now):
            self._request_response(recovery.retry_instructions, now)
        if recovery.dead_air_at is not None and now >= recovery.dead_air_at:
            busy = self._user_speaking or self._tools.pending or self._playout.playing or not self._control.idle
            recovery.dead_air(now, self.phase is Phase.LIVE, bool(busy))
            if self.phase is Phase.ENDED:
                return
        hold = self._hold
        if hold.deadline is not None and now >= hold.deadline:
            hold.tick(now, self._playout, self._tones.pending)
        if control.deadline is not None and now >= control.deadline:
            control.deadline = None
            self._playout.assume_played()  # marks stopped coming back
            self._check_control(now)
        if self._last_media_at is not None and config.quiet_timeout_s > 0:
            if now >= self._last_media_at + config.quiet_timeout_s:
                self._end("failed", f"no media from Twilio for {config.quiet_timeout_s:g} s")
                return
        if self.started_at is not None and config.max_duration_s > 0:
            if now >= self.started_at + config.max_duration_s:
                self._end("completed", f"maximum call duration ({config.max_duration_s:g} s) reached")

    # --- ending ------------------------------------------------------------------------------

    def end(self, outcome: str, reason: str) -> None:
        """End the call now (shutdown, fatal error)."""
        self._end(outcome, reason)

    def _end(self, outcome: str, reason: str, apologize: bool = False) -> None:
        if self.phase is Phase.ENDED:
            return
        was_waiting = self.phase is Phase.WAITING
        self.phase = Phase.ENDED
        self.outcome = outcome
        self._session.drop_held_audio()
        if self._tones.pending:
            self._tones.abandon()
        if not was_waiting:
            self._actions.append(events.CloseRealtime(reason))
        if not self._control.defer_end(outcome, reason, apologize):
            self._call_ended(outcome, reason, apologize)
        self._actions.append(events.EndCall(outcome, reason, apologize))

    def _call_ended(self, outcome: str, reason: str, apologize: bool) -> None:
        self.outcome = outcome
        self._actions.append(
            events.CallEnded(
                outcome, reason, self.invalid_twilio, self._tools.pending, self._session.reconnects, apologize
            )
        )

    def _invalid(self, reason: str) -> None:
        self.invalid_twilio += 1
        if self.invalid_twilio <= _NOTICE_INVALID_LIMIT:
            self._actions.append(events.InvalidTwilioMessage(reason, self.invalid_twilio))
        self._count_invalid()

    def _count_invalid(self) -> None:
        if self.invalid_twilio + self.media_before_start > self.config.max_invalid_messages:
            self._end("failed", "too many invalid messages from Twilio")
