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
import json
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from time import perf_counter_ns
from typing import Any

from starlette.websockets import WebSocket

from ..agents import Agent
from ..audio.hold import hold_sound
from ..call import (
    AgentChanged,
    Call,
    CallConfig,
    CallStarted,
    CloseRealtime,
    EndCall,
    Event,
    OpenRealtime,
    Phase,
    RunTool,
    TransferCall,
)
from ..errors import ConfigError, TelephonyError
from ..logs import log_event
from ..tools import CallContext
from ..tools.context import CallControl
from ..tools.registry import ToolResult
from ..wire import realtime as rt
from ..wire import twilio as tw
from ..wire.twiml import dial
from ..wording import HANDOFF
from .observe import CallReport
from .realtime.client import RealtimeConnectError, RealtimeConnection
from .services import Services
from .twilio.media import MAX_TWILIO_BUFFER, MediaSocket
from .twilio.rest import validate_e164

__all__ = ["MAX_TWILIO_BUFFER", "CallSession", "call_config"]

log = logging.getLogger("telephony.call")

#: At the end of a call whose stream stopped before the transfer's REST reply, wait this long for it.
TRANSFER_REPLY_WAIT_S = 10.0

_MEDIA = tw.Media
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
        hold_after_s=settings.hold_after_ms / 1000,
        echo_cancellation=settings.echo_cancellation,
        greeting_interruptible=settings.greeting_interruptible,
        hold_sound=hold_sound(settings.hold_sound),
        fallback_transfer=settings.transfer_number if services.rest is not None else None,
    )


class CallSession(CallControl):
    def __init__(self, ws: WebSocket, services: Services, report: CallReport) -> None:
        self.ws = ws
        self.services = services
        self.report = report
        self.call = Call(call_config(services))
        self.loop = asyncio.get_running_loop()
        self.call_sid = ""
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
                t0 = perf_counter_ns()
                call.receive_twilio(ev, self.loop.time())
                self._in_ns += perf_counter_ns() - t0
                self._in_frames += 1
                self._pump(False)
            else:
                call.receive_twilio(ev, self.loop.time())
                self._pump()
        except Exception:
            self._crashed("twilio")

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
        finally:
            for conn in list(self._conns):
                self._uncount(conn)
                conn.abort()
            self._conns.clear()
            self.report.transcoding(self._in_ns, self._in_frames, self._out_ns, self._out_frames)
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

    async def request_transfer(self, target: str) -> str:
        """Resolve ``target`` (directory name or E.164 number) and schedule it."""
        number, label = self.services.resolve_transfer_target(target)
        if self.services.rest is None:
            raise ConfigError("transfers need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        self._in_loop(lambda: self.call.request_transfer(number, label, self.loop.time()))
        return f"Transferring the caller to {label} once you finish speaking."

    async def _transfer(self, action: TransferCall) -> None:
        rest = self.services.rest
        try:
            if rest is None:
                raise ConfigError("Twilio REST credentials are not configured")
            validate_e164(action.number)
            caller_id = self.context.to_number if self.context else None
            await rest.redirect(self.call_sid, dial(action.number, caller_id))
        except TelephonyError as exc:
            self.call.transfer_failed(str(exc), self.loop.time())  # logged once, as the machine's notice
        else:
            log_event(log, "transfer.done", call_sid=self.call_sid, to=action.number, label=action.label)
            self.call.transfer_done(self.loop.time())
        self._pump()

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
