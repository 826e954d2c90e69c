"""One phone call's I/O: Twilio media socket <-> ``Call`` <-> Realtime socket.

Thin by design: take a socket's message, feed the state machine with the
loop's clock, carry out what it asks (send, open/close the session, run tools,
end or transfer the call) and report what it tells to the call's
``CallReport``. Callback driven: each message is handled where the socket's
reader delivers it (``on_twilio_message``, ``_on_realtime_message``) and the
machine's outboxes are written at once, synchronously, so messages leave in the
order the machine queued them with no task, queue or lock per frame. Only slow
things (opening a session, tools, transfers) run as tasks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from starlette.websockets import WebSocket

from ..agents import Agent
from ..audio.dtmf import check_digits
from ..audio.hold import hold_sound
from ..call import (
    AgentChanged,
    Answered,
    Call,
    CallConfig,
    CallStarted,
    CloseRealtime,
    EndCall,
    Event,
    OpenRealtime,
    Phase,
    RunTool,
    TonesPlayed,
    TransferCall,
)
from ..errors import ConfigError, TelephonyError
from ..logs import log_event
from ..tools import CallContext
from ..tools.context import CallControl
from ..tools.registry import ToolResult
from ..wire import realtime as rt
from ..wire import twilio as tw
from ..wire.session import barge_in_fallback_ms
from ..wire.twiml import dial
from ..wording import DIAL_STATUS, HANDOFF, WHISPER_NO_SUMMARY
from .observe import CallReport
from .realtime.client import RealtimeConnectError, RealtimeConnection
from .recording import LocalRecorder, prune_recordings
from .services import Services
from .twilio.dial import RETURN_PARAMETER, RETURN_PARAMETERS, Parked, dial_action_url, whisper_url
from .twilio.media import MAX_TWILIO_BUFFER, MediaSocket
from .twilio.rest import validate_e164
from .twilio.stream_token import TOKEN_PARAMETER

__all__ = ["MAX_TWILIO_BUFFER", "CallSession", "call_config"]

log = logging.getLogger("telephony.call")

#: At the end of a call whose stream stopped before the transfer's REST reply, wait this long for it.
TRANSFER_REPLY_WAIT_S = 10.0

#: EndCall reasons meaning Twilio ended the stream (no REST hang-up needed)
_TWILIO_ENDED = frozenset({"Twilio stream closed", "caller hung up or the stream stopped"})

_MEDIA = tw.Media
_START = tw.Start
_AUDIO_DELTA = rt.AudioDelta
_parse_twilio = tw.parse
_parse_realtime = rt.parse


def call_config(services: Services) -> CallConfig:
    settings = services.settings
    return CallConfig(
        greeting=settings.greeting,
        quiet_timeout_s=settings.quiet_timeout,
        max_duration_s=settings.max_call_seconds,
        reconnect_attempts=settings.reconnect_attempts,
        reconnect_backoff_s=settings.reconnect_backoff,
        rollover_after_s=settings.session_rollover_seconds,
        mcp_approve=settings.mcp_approval == "approve",
        response_retries=settings.response_retries,
        dead_air_s=settings.dead_air_seconds,
        # interrupt_response=false by choice: the caller never cuts the agent, so no policy either
        barge_in_min_ms=settings.barge_in_min_ms if settings.interrupt_response else 0,
        barge_in_fallback_ms=barge_in_fallback_ms(settings),
        hold_after_s=settings.hold_after_ms / 1000,
        echo_cancellation=settings.echo_cancellation,
        greeting_interruptible=settings.greeting_interruptible,
        hold_sound=hold_sound(settings.hold_sound),
        fallback_transfer=settings.transfer_number if services.rest is not None else None,
        start_timeout_s=settings.start_timeout,
        max_audio_rate=settings.max_audio_rate,
        max_digits=settings.max_digits,
        max_digits_per_s=settings.max_digits_per_second,
        amd_fax=settings.amd_fax,
        amd_unknown=settings.amd_unknown,
    )


class CallSession(CallControl):
    def __init__(
        self,
        ws: WebSocket,
        services: Services,
        report: CallReport,
        admit: Callable[[CallSession], str | None] | None = None,
    ) -> None:
        """``admit(session)``: asked once the start is proven; a reason refuses the call (busy)."""
        self.ws = ws
        self._admit = admit
        self.services = services
        self.report = report
        self.loop = asyncio.get_running_loop()
        self.call = Call(call_config(services), connected_at=self.loop.time())
        self.call_sid = ""
        self._claimed: str | None = None  # the CallSid this stream holds (one live stream per CallSid)
        self.context: CallContext | None = None
        self.agent: Agent | None = None  # the agent speaking now (None: no agents defined)
        self.first_agent: Agent | None = None  # the one that answered: its voice stays
        self._start: tw.Start | None = None
        self._rt: RealtimeConnection | None = None
        #: every connection the connector returned, until its close finished
        self._conns: set[RealtimeConnection] = set()
        #: those counted open in the report (counted closed when their close begins)
        self._counted: set[RealtimeConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transfers: set[asyncio.Task[None]] = set()
        #: TELEPHONY_RECORDING=local: this call's stereo WAV
        self._recording: LocalRecorder | None = None
        #: the next transfer is warm: the whisper's summary (None: cold)
        self._warm: str | None = None
        #: keypad tones asked for by token, resolved when they have played (TonesPlayed)
        self._tones: dict[str, asyncio.Future[bool]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ended = asyncio.Event()
        self._thread = threading.get_ident()
        self._in_ns = self._in_frames = self._out_ns = self._out_frames = 0
        self.twilio = MediaSocket(ws, self.loop)
        self.direct = self.twilio.direct

    # --- main loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Serve the media stream until it closes. With the direct channel,
        messages arrive through ``on_twilio_message`` from the socket's reader and
        ``receive()`` only brings the disconnect; without it, this loop feeds them."""
        ws, call = self.ws, self.call
        self.twilio.attach(self.on_twilio_message)
        self._schedule_timer()  # the start deadline
        try:
            while True:
                message = await ws.receive()
                if message["type"] != "websocket.receive":
                    call.twilio_closed(self.loop.time())
                    self.flush()
                    break
                data = message.get("text")
                self.on_twilio_message(data if data is not None else message.get("bytes") or b"")
                if call.phase is Phase.ENDED:
                    break
        except Exception:  # a bug here must end this call only
            self._crashed("twilio")
        finally:
            self.twilio.detach()
            await self.shutdown()

    def on_twilio_message(self, data: str | bytes) -> None:
        """One Media Streams message (called for every frame: keep it lean)."""
        call = self.call
        try:
            ev = _parse_twilio(data)
            if type(ev) is _MEDIA:
                if self._recording is not None:
                    self._recording.caller(ev.audio)
                t0 = perf_counter_ns()
                call.receive_twilio(ev, self.loop.time())
                self._in_ns += perf_counter_ns() - t0
                self._in_frames += 1
                self._pump(False)
            else:
                if type(ev) is _START and call.phase is Phase.WAITING:
                    proven = self._proven_start(ev)
                    if proven is None:
                        return
                    ev = proven
                call.receive_twilio(ev, self.loop.time())
                self._pump()
        except Exception:
            self._crashed("twilio")

    def _proven_start(self, start: tw.Start) -> tw.Start | None:
        """The I/O layer decides whether a ``start`` may open a session: its stream
        token must be valid for its CallSid (single-use), and no other stream of
        that call may be live here. Returns the start without its token, or None
        after ending the call (no Realtime session is opened)."""
        streams = self.services.streams
        reason = streams.check(start.call_sid, start.custom_parameters)
        if reason is None:
            if streams.claim(start.call_sid):
                self._claimed = start.call_sid
            else:
                reason = "another stream of this call is live"
        if reason is not None:
            self.report.stream_refused(start.call_sid, reason)
            self.call.end("failed", f"stream refused: {reason}")
            self._pump()
            return None
        self.call_sid = start.call_sid
        busy = self._admit(self) if self._admit is not None else None
        if busy is not None:  # logged and counted by the admission
            self.report.call_sid = start.call_sid  # so /stream-ended can tell the caller we are busy
            self.call.end("failed", busy)
            self._pump()
            return None
        if TOKEN_PARAMETER not in start.custom_parameters:
            return start
        params = {k: v for k, v in start.custom_parameters.items() if k != TOKEN_PARAMETER}
        return dataclasses.replace(start, custom_parameters=params)

    def end_now(self, outcome: str, reason: str) -> None:
        """End the call at once (server shutdown): the stream closes, the session too."""
        self.call.end(outcome, reason)
        self.flush()

    def _crashed(self, side: str) -> None:
        log_event(log, "call.error", logging.ERROR, call_sid=self.call_sid, side=side, exc_info=True)
        if self.call.phase is not Phase.ENDED:
            self.call.end("failed", "internal error")
            try:
                self._pump()
            except Exception:
                pass

    async def shutdown(self) -> None:
        """End the call if it is still up, cancel its tasks, close both sockets.
        Every Realtime connection opened for the call is closed, or dropped if this
        is cancelled in turn: none outlives the call."""
        call = self.call
        try:
            if call.phase is not Phase.ENDED:
                call.end("failed", "bridge stopped")
            self._handle(call.drain_actions())
            if self._timer is not None:
                self._timer.cancel()
            if call.transfer_unconfirmed and self._transfers:
                # The stream stopped before the REST reply: it says whether the call was
                # transferred (the record must be exact), so wait for it, bounded.
                await asyncio.wait(self._transfers, timeout=TRANSFER_REPLY_WAIT_S)
            if call.transfer_unconfirmed:
                call.transfer_unresolved("no REST reply")
            self._handle(call.drain_actions())
            while self._tasks:  # a cancelled task may have spawned another
                tasks = list(self._tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._tasks.difference_update(tasks)
            await self._close_realtime()
            for conn in list(self._conns):  # opened while the call ended, or released
                await self._close_conn(conn)
            await self._close_twilio()
            if self._recording is not None:
                await self._recording.close()
        finally:
            for conn in list(self._conns):
                self._uncount(conn)
                conn.abort()
            self._conns.clear()
            if self._claimed is not None:
                self.services.streams.release(self._claimed)
                self._claimed = None
            self.report.transcoding(self._in_ns, self._in_frames, self._out_ns, self._out_frames)
            self.report.input_dropped(call.audio_dropped, call.keys_dropped)
            self._ended.set()

    # --- carrying out what the machine queued ------------------------------------

    def flush(self) -> None:
        """Carry out everything the machine has queued and re-arm its timer."""
        self._pump()

    def _pump(self, reschedule: bool = True) -> None:
        """Carry out what the machine queued: actions, then messages, in order.
        Sends are synchronous writes, so nothing interleaves between two pumps."""
        call = self.call
        actions = call.drain_actions()
        if actions:
            self._handle(actions)
        conn = self._rt
        if conn is not None:  # else they wait for the session (the machine defers)
            messages = call.drain_realtime()
            if messages:
                send = conn.send
                for message in messages:
                    send(message)
        to_twilio = call.drain_twilio()
        if to_twilio:
            self.send_to_twilio(to_twilio)
        if reschedule:
            self._schedule_timer()

    def send_to_twilio(self, messages: Iterable[str]) -> None:
        """Write to the Twilio socket; a socket that stopped reading (more than
        ``MAX_TWILIO_BUFFER`` unsent) ends the call instead of growing forever."""
        twilio = self.twilio
        send = twilio.send
        for text in messages:
            send(text)
        if twilio.overflowing() and self.call.phase is not Phase.ENDED:
            self.call.end("failed", "Twilio stopped reading the media stream")
            self._handle(self.call.drain_actions())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _handle(self, events: Iterable[Event]) -> None:
        report, now = self.report, self.loop.time()
        for ev in events:
            match ev:
                case CallStarted():
                    self._on_start(ev.start)
                    report.event(ev, now)
                    if RETURN_PARAMETER in ev.start.custom_parameters:
                        self._returned(ev.start, now)
                    if self.services.settings.recording == "local":
                        self._record_locally(ev.start)
                    continue
                case RunTool():
                    self._spawn(self._run_tool(ev))
                case OpenRealtime():
                    self._spawn(self._open_realtime(ev.start, ev.reconnect))
                case CloseRealtime():
                    self._spawn(self._close_realtime())
                case TransferCall():
                    task = self._spawn(self._transfer(ev))
                    self._transfers.add(task)
                    task.add_done_callback(self._transfers.discard)
                case EndCall():
                    self._spawn(self._close_twilio())
                    rest = self.services.rest
                    if rest is not None and ev.outcome != "transferred" and ev.reason not in _TWILIO_ENDED:
                        self.services.endings.watch(self.call_sid, rest.hangup)
                case Answered():
                    if self.context is not None:
                        self.context.answered_by = ev.answered_by
                case TonesPlayed():
                    waiter = self._tones.pop(ev.token, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(ev.played)
            report.event(ev, now)

    # --- timers ------------------------------------------------------------------

    def _schedule_timer(self) -> None:
        deadline = self.call.next_deadline()
        if deadline is None:
            return
        if self._timer_at is not None and self._timer_at <= deadline:
            return  # the pending timer fires first; it reschedules
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.call.tick(self.loop.time())
            self._pump()
        except Exception:
            self._crashed("timer")

    # --- the Realtime side -------------------------------------------------------

    def _on_start(self, start: tw.Start) -> None:
        self.call_sid = start.call_sid
        params = start.custom_parameters
        self.context = CallContext(
            call_sid=start.call_sid,
            from_number=params.get("From"),
            to_number=params.get("To"),
            parameters=dict(params),
            dtmf=self.call.dtmf,
            _controller=self,
        )
        if self.services.settings.recording == "twilio" and RETURN_PARAMETER not in params:
            self._spawn(self._start_recording())
        if params.get("amd") == "1":  # outbound with answering-machine detection
            self.call.await_verdict(self.loop.time(), self.services.settings.amd_wait_seconds)

    def _returned(self, start: tw.Start, now: float) -> None:
        """This stream is the call back from a transfer nobody took: continue the
        conversation parked by the first stream (if this process has it)."""
        params = start.custom_parameters
        status = params.get(RETURN_PARAMETER, "")
        parked = self.services.transfers.take(start.call_sid)
        label = parked.label if parked is not None else params.get("TransferLabel") or "a colleague"
        notice = self.call.config.wording.transfer_returned.format(label=label, status=DIAL_STATUS.get(status, status))
        self.call.resume_after_transfer(parked.conversation if parked is not None else None, notice)
        agents = self.services.agents
        if parked is not None and agents is not None and parked.agent in agents.by_name:
            self.agent = agents.by_name[parked.agent]
            self.first_agent = agents.by_name.get(parked.first_agent or "", self.agent)
        recorder = self.report.recorder
        if parked is not None and recorder is not None:
            if parked.record is not None:
                recorder.continue_from(parked.record, now)
            recorder.record.transfers.extend(parked.attempts)
        restored = len(parked.conversation[0]) if parked is not None else 0
        log_event(log, "transfer.returned", call_sid=start.call_sid, status=status, label=label, restored=restored)

    async def _choose_agent(self) -> None:
        """Which agent answers this call (route(), the called number, the default)."""
        agents = self.services.agents
        if agents is None or self.agent is not None or self.context is None:
            return
        agent, how = await agents.choose(self.context)
        self.agent = self.first_agent = agent
        self.report.event(AgentChanged(agent.name, None, how), self.loop.time())

    async def _open_realtime(self, start: tw.Start, reconnect: bool) -> None:
        self._start = start
        if self._rt is not None:  # replacing a session: never two live ones per call
            await self._close_realtime()
        choosing = self.loop.create_task(self._choose_agent())  # while the socket opens
        conn: RealtimeConnection | None = None
        try:
            conn = await self.services.connect_realtime()  # cancelled: the connector drops the socket
        except RealtimeConnectError as exc:
            self._report_realtime_closed(str(exc), exc.retryable)
            return
        except Exception as exc:
            self._report_realtime_closed(f"cannot open the Realtime session: {type(exc).__name__}")
            return
        finally:
            if conn is not None:
                self._conns.add(conn)  # from here shutdown closes it, whatever is cancelled when
                if not choosing.done():
                    await choosing
            else:
                choosing.cancel()  # no session: the next attempt chooses again
        if self.call.phase is Phase.ENDED:  # the caller hung up while we connected
            log_event(log, "realtime.close", call_sid=self.call_sid, reason="the call ended while it was connecting")
            await self._close_conn(conn)
            return
        self._rt = conn
        self._counted.add(conn)
        self.report.realtime_opened(reconnect)
        log_event(log, "realtime.open", call_sid=self.call_sid, reconnect=reconnect)
        services = self.services
        update = services.session_update(start, self.agent, self.first_agent)
        minimal = services.session_update(start, self.agent, self.first_agent, minimal=True)
        self.call.realtime_opened(update, self.loop.time(), minimal)
        self._pump()
        conn.start(partial(self._on_realtime_message, conn), partial(self._on_realtime_lost, conn))

    def _on_realtime_message(self, conn: RealtimeConnection, data: bytes) -> None:
        """One server event (called from the socket's reader)."""
        if self._rt is not conn:
            return  # replaced: its stragglers mean nothing now
        call = self.call
        try:
            ev = _parse_realtime(data)
            if type(ev) is _AUDIO_DELTA:
                t0 = perf_counter_ns()
                call.receive_realtime(ev, self.loop.time())
                self._out_ns += perf_counter_ns() - t0
                self._out_frames += 1
                self._pump(False)
            else:
                call.receive_realtime(ev, self.loop.time())
                self._pump()
        except Exception:
            self._crashed("realtime")

    def _on_realtime_lost(self, conn: RealtimeConnection, reason: str) -> None:
        if self.call.phase is not Phase.ENDED and self._rt is conn:
            self._report_realtime_closed(reason)

    def _report_realtime_closed(self, reason: str, retryable: bool = True) -> None:
        log_event(log, "realtime.closed", logging.WARNING, call_sid=self.call_sid, reason=reason)
        if self._rt is not None:
            conn, self._rt = self._rt, None
            self._uncount(conn)  # counted closed from here: nothing more is sent or read
            self._spawn(self._close_conn(conn))
        self.call.realtime_closed(reason, self.loop.time(), retryable)
        self._pump()

    def _uncount(self, conn: RealtimeConnection) -> None:
        if conn in self._counted:
            self._counted.discard(conn)
            self.report.realtime_closed()

    async def _close_conn(self, conn: RealtimeConnection) -> None:
        self._uncount(conn)
        try:
            await _quiet_close(conn)
        finally:
            self._conns.discard(conn)

    async def _close_realtime(self) -> None:
        conn, self._rt = self._rt, None
        if conn is not None:
            log_event(log, "realtime.close", call_sid=self.call_sid)
            await self._close_conn(conn)

    async def _close_twilio(self) -> None:
        to_twilio = self.call.drain_twilio()
        if to_twilio:
            self.send_to_twilio(to_twilio)
        await self.twilio.close()

    # --- tools -------------------------------------------------------------------

    async def _run_tool(self, action: RunTool) -> None:
        assert self.context is not None
        services = self.services
        target = services.handoff_target(self.agent, action.name)
        if target is not None:
            self._hand_off(action, target)
            return
        if services.offers(self.agent, action.name):
            result = await services.registry.run(action.call_id, action.name, action.arguments, self.context)
        else:  # a tool of another agent, or none: refused like an unknown one
            message = f"{action.name} is not available to you now"
            result = ToolResult(action.call_id, action.name, json.dumps({"error": message}), False, message, 0.0)
        self.report.tool_finished(result)
        self.call.tool_finished(action.call_id, result.output, self.loop.time())
        self._pump()

    def _hand_off(self, action: RunTool, target: Agent) -> None:
        """Switch the live session to ``target``: one ``session.update`` (instructions,
        tools), then the tool's output tells the model whom it now is."""
        assert self._start is not None and self.agent is not None and self.first_agent is not None
        try:
            args = json.loads(action.arguments or "{}")
        except ValueError:
            args = {}
        reason = args.get("reason") if isinstance(args, dict) and isinstance(args.get("reason"), str) else None
        previous, self.agent = self.agent, target
        message, new_session = self.services.handoff_update(self._start, target, self.first_agent)
        now = self.loop.time()
        notice = AgentChanged(target.name, previous.name, "handoff", reason)
        self.call.update_session(message, new_session, now, notice)
        output = json.dumps({"handoff": target.name, "note": HANDOFF.format(agent=target.name, previous=previous.name)})
        self.report.tool_finished(ToolResult(action.call_id, action.name, output, True, None, 0.0))
        self.call.tool_finished(action.call_id, output, now)
        self._pump()

    # --- call control (CallControl, used by CallContext and built-in tools) -----

    def _in_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the event loop (tools may call from a worker thread)."""
        if threading.get_ident() == self._thread:
            fn()
            self._pump()
        else:
            self.loop.call_soon_threadsafe(self._run_and_flush, fn)

    def _run_and_flush(self, fn: Callable[[], None]) -> None:
        fn()
        self._pump()

    def request_hangup(self, reason: str) -> None:
        self._in_loop(lambda: self.call.request_hangup(reason, self.loop.time()))

    async def request_transfer(self, target: str, warm: bool | None = None, summary: str | None = None) -> str:
        """Resolve ``target`` (directory name or E.164 number) and schedule it."""
        number, label = self.services.resolve_transfer_target(target)
        if self.services.rest is None:
            raise ConfigError("transfers need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if warm is None:
            listed = {n.strip().lower() for n in self.services.settings.transfer_warm}
            warm = "*" in listed or label.strip().lower() in listed or target.strip().lower() in listed
        self._warm = (summary or WHISPER_NO_SUMMARY.format(label=label)) if warm else None
        self._in_loop(lambda: self.call.request_transfer(number, label, self.loop.time()))
        return f"Transferring the caller to {label} once you finish speaking."

    def _origin(self) -> str:
        """This server's public http(s) origin, for the URLs Twilio calls back."""
        public = self.services.settings.public_url
        if public:
            return public.rstrip("/")
        return f"https://{self.ws.headers.get('host', 'localhost')}"

    def _business_number(self) -> str | None:
        """The caller ID a transfer shows: the setting, else the business's own number
        (the called number of an inbound call, the calling number of an outbound one)."""
        settings, ctx = self.services.settings, self.context
        if settings.transfer_caller_id:
            return settings.transfer_caller_id
        if ctx is None:
            return None
        return ctx.from_number if ctx.parameters.get("direction") == "outbound" else ctx.to_number

    async def _transfer(self, action: TransferCall) -> None:
        rest = self.services.rest
        ledger = self.services.transfers
        try:
            if rest is None:
                raise ConfigError("Twilio REST credentials are not configured")
            validate_e164(action.number)
            params = self.context.parameters if self.context else {}
            ledger.park(  # before the redirect: the dial's action may come back quickly
                self.call_sid,
                Parked(
                    action.number,
                    action.label,
                    self.call.conversation(),
                    agent=self.agent.name if self.agent else None,
                    first_agent=self.first_agent.name if self.first_agent else None,
                    # the return is no new answer: no second answering-machine wait
                    parameters={k: v for k, v in params.items() if k not in RETURN_PARAMETERS and k != "amd"},
                    record=self.report.recorder.record if self.report.recorder else None,
                    warm=self._warm is not None,
                    summary=self._warm or "",
                ),
            )
            twiml = dial(
                action.number,
                self._business_number(),
                action=dial_action_url(self._origin(), action.label),
                timeout_s=self.services.settings.transfer_ring_seconds,
                answer_on_bridge=True,
                number_url=whisper_url(self._origin(), self.call_sid) if self._warm is not None else None,
            )
            await rest.redirect(self.call_sid, twiml)
        except TelephonyError as exc:
            ledger.take(self.call_sid)
            self.call.transfer_failed(str(exc), self.loop.time())  # logged once, as the machine's notice
        else:
            log_event(log, "transfer.done", call_sid=self.call_sid, to=action.number, label=action.label)
            self.call.transfer_done(self.loop.time())
        self._pump()

    def _record_locally(self, start: tw.Start) -> None:
        settings = self.services.settings
        directory = Path(settings.recordings_dir)
        name = start.call_sid if start.call_sid.isalnum() else start.stream_sid
        try:  # a call back from a transfer goes on in the same file
            rec = LocalRecorder(directory / f"{name}.wav", append=RETURN_PARAMETER in start.custom_parameters)
        except OSError as exc:
            log_event(log, "recording.failed", logging.WARNING, call_sid=self.call_sid, error=str(exc))
            return
        self._recording = rec
        self.call.tap_playout(rec.agent, rec.cleared)
        if self.report.recorder is not None:
            self.report.recorder.record.recording = str(rec.path)
        prune_recordings(directory, settings.recordings_retention_days)
        log_event(log, "recording.started", call_sid=self.call_sid, path=str(rec.path))

    async def _start_recording(self) -> None:
        """TELEPHONY_RECORDING=twilio: Twilio records the call (dual channel)."""
        rest = self.services.rest
        if rest is None:
            log_event(log, "recording.failed", logging.WARNING, call_sid=self.call_sid, error="no REST credentials")
            return
        try:
            sid = await rest.start_recording(self.call_sid, self._origin() + "/recording-status")
        except TelephonyError as exc:
            log_event(log, "recording.failed", logging.WARNING, call_sid=self.call_sid, error=str(exc))
            return
        log_event(log, "recording.started", call_sid=self.call_sid, recording_sid=sid)
        if self.report.recorder is not None and self.report.recorder.record.recording_sid is None:
            self.report.recorder.record.recording_sid = sid

    def answered(self, answered_by: str) -> None:
        """Twilio's answering-machine verdict for this call (from ``/amd-status``)."""
        ctx = self.context
        message = (ctx.parameters.get("voicemail_message") if ctx else None) or self.services.settings.voicemail_message
        self._in_loop(lambda: self.call.verdict(answered_by, self.loop.time(), voicemail=message))

    async def send_dtmf(self, digits: str) -> bool:
        """Keypad tones into the call after what is queued; True once they have played."""
        check_digits(digits)  # ValueError here, in the tool's own task
        waiter: asyncio.Future[bool] = self.loop.create_future()
        token = f"dtmf{len(self._tones)}-{id(waiter)}"
        self._tones[token] = waiter
        self._in_loop(lambda: self.call.send_tones(digits, token, self.loop.time()))
        return await waiter

    async def wait_ended(self) -> None:
        await self._ended.wait()


async def _quiet_close(conn: RealtimeConnection) -> None:
    """Close politely within 2 s; on failure or cancellation, drop the socket."""
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except BaseException as exc:
        conn.abort()
        if not isinstance(exc, Exception):
            raise
