"""One phone call's I/O: Twilio media socket <-> ``Call`` <-> Realtime socket.

Thin by design: read a socket, feed the state machine with the loop's clock,
carry out what it asks (send, open/close the session, run tools, end or
transfer the call). Each socket has one writer at a time (a lock), so messages
leave in the order the machine queued them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from time import perf_counter_ns
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketState

from ..call import Call, CallConfig, CloseRealtime, EndCall, Notice, OpenRealtime, Phase, RunTool, TransferCall
from ..logs import log_event
from ..tools import CallContext
from ..tools.context import CallControl
from ..wire import realtime as rt
from ..wire import twilio as tw
from ..wire.twiml import dial
from .realtime_client import RealtimeConnectError, RealtimeConnection
from .twilio_rest import TwilioRestError, validate_e164

if TYPE_CHECKING:
    from .app import AppState

__all__ = ["CallSession"]

log = logging.getLogger("telephony.call")

_MEDIA = tw.Media
_AUDIO_DELTA = rt.AudioDelta


class CallSession(CallControl):
    def __init__(self, ws: WebSocket, state: AppState) -> None:
        self.ws = ws
        self.state = state
        settings = state.settings
        self.call = Call(
            CallConfig(
                greeting=settings.greeting,
                quiet_timeout_s=settings.quiet_timeout,
                max_duration_s=settings.max_call_seconds,
                reconnect_attempts=settings.reconnect_attempts,
                reconnect_backoff_s=settings.reconnect_backoff,
                rollover_after_s=settings.session_rollover_seconds,
            )
        )
        self.loop = asyncio.get_running_loop()
        self.call_sid = ""
        self.context: CallContext | None = None
        self._rt: RealtimeConnection | None = None
        self._rt_lock = asyncio.Lock()
        self._tw_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ended = asyncio.Event()
        self._thread = threading.get_ident()
        self.recorder: Any = None  # a CallRecorder when records are on
        self._in_ns = self._in_frames = self._out_ns = self._out_frames = 0

    # --- main loop ---------------------------------------------------------------

    async def run(self) -> None:
        call, loop, receive = self.call, self.loop, self.ws.receive
        parse = tw.parse
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    call.twilio_closed(loop.time())
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                ev = parse(data)
                if type(ev) is _MEDIA:
                    t0 = perf_counter_ns()
                    call.receive_twilio(ev, loop.time())
                    self._in_ns += perf_counter_ns() - t0
                    self._in_frames += 1
                    await self._pump(False)
                else:
                    call.receive_twilio(ev, loop.time())
                    await self._pump(True)
                if call.phase is Phase.ENDED:
                    break
        except Exception:  # a bug here must end this call only
            log_event(log, "call.error", logging.ERROR, call_sid=self.call_sid, exc_info=True)
            call.end("failed", "internal error")
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        call = self.call
        if call.phase is not Phase.ENDED:
            call.end("failed", "bridge stopped")
        self._handle_actions()
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_realtime()
        await self._close_twilio()
        m = self.state.metrics
        m.transcode_seconds.labels("in").inc(self._in_ns / 1e9)
        m.transcode_frames.labels("in").inc(self._in_frames)
        m.transcode_seconds.labels("out").inc(self._out_ns / 1e9)
        m.transcode_frames.labels("out").inc(self._out_frames)
        self._ended.set()

    # --- pumping the machine's output -------------------------------------------

    async def _pump(self, reschedule: bool = True) -> None:
        call = self.call
        if call.actions:
            self._handle_actions()
        if call.to_realtime and self._rt is not None:
            await self._flush_realtime()
        if call.to_twilio:
            await self._flush_twilio()
        if reschedule:
            self._schedule_timer()

    async def _flush_twilio(self) -> None:
        call, ws = self.call, self.ws
        async with self._tw_lock:
            while call.to_twilio:
                batch, call.to_twilio = call.to_twilio, []
                if ws.application_state is not WebSocketState.CONNECTED:
                    return
                for text in batch:
                    await ws.send_text(text)

    async def _flush_realtime(self) -> None:
        call = self.call
        async with self._rt_lock:
            while call.to_realtime and self._rt is not None:
                batch, call.to_realtime = call.to_realtime, []
                conn = self._rt
                try:
                    for text in batch:
                        await conn.send(text)
                except Exception as exc:  # closed under us: the reader reports why
                    log_event(log, "realtime.send_failed", logging.WARNING, call_sid=self.call_sid,
                              error=type(exc).__name__)
                    return

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _handle_actions(self) -> None:
        actions, self.call.actions = self.call.actions, []
        for action in actions:
            kind = type(action)
            if kind is Notice:
                self._on_notice(action)  # type: ignore[arg-type]
            elif kind is RunTool:
                self._spawn(self._run_tool(action))  # type: ignore[arg-type]
            elif kind is OpenRealtime:
                self._spawn(self._open_realtime(action.start, action.reconnect))  # type: ignore[union-attr]
            elif kind is CloseRealtime:
                self._spawn(self._close_realtime())
            elif kind is TransferCall:
                self._spawn(self._transfer(action))  # type: ignore[arg-type]
            elif kind is EndCall:
                self.state.call_ended(self.call_sid, action)  # type: ignore[arg-type]
                self._spawn(self._close_twilio())

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
        self.call.tick(self.loop.time())
        self._spawn(self._pump())

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
        self.state.on_call_start(self)

    def _session_update(self, start: tw.Start) -> str:
        settings = self.state.settings
        instructions = None
        override = start.custom_parameters.get("instructions")
        if override and settings.allow_instruction_override:
            instructions = override
        return rt.session_update(settings.session(self.state.tool_schemas, instructions))

    async def _open_realtime(self, start: tw.Start, reconnect: bool) -> None:
        if self._rt is not None:  # replacing a session: never two live ones per call
            await self._close_realtime()
        try:
            conn = await self.state.connect_realtime()
        except RealtimeConnectError as exc:
            self._report_realtime_closed(str(exc), exc.retryable)
            return
        except Exception as exc:
            self._report_realtime_closed(f"cannot open the Realtime session: {type(exc).__name__}")
            return
        if self.call.phase is Phase.ENDED:  # the caller hung up while we connected
            await _quiet_close(conn)
            return
        self._rt = conn
        self.state.realtime_opened()
        if reconnect:
            self.state.metrics.reconnects.inc()
        log_event(log, "realtime.open", call_sid=self.call_sid, reconnect=reconnect)
        self.call.realtime_opened(self._session_update(start), self.loop.time())
        await self._pump()
        self._spawn(self._read_realtime(conn))

    async def _read_realtime(self, conn: RealtimeConnection) -> None:
        call, loop, parse = self.call, self.loop, rt.parse
        reason = "closed by the server"
        try:
            async for message in conn:
                if self._rt is not conn:
                    return  # replaced: its stragglers mean nothing now
                ev = parse(message)
                if type(ev) is _AUDIO_DELTA:
                    t0 = perf_counter_ns()
                    call.receive_realtime(ev, loop.time())
                    self._out_ns += perf_counter_ns() - t0
                    self._out_frames += 1
                    await self._pump(False)
                else:
                    call.receive_realtime(ev, loop.time())
                    await self._pump(True)
                if call.phase is Phase.ENDED:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"connection lost ({type(exc).__name__})"
        if call.phase is not Phase.ENDED and self._rt is conn:
            self._report_realtime_closed(reason)

    def _report_realtime_closed(self, reason: str, retryable: bool = True) -> None:
        log_event(log, "realtime.closed", logging.WARNING, call_sid=self.call_sid, reason=reason)
        if self._rt is not None:
            conn, self._rt = self._rt, None
            self._spawn(self._release(conn))
        self.call.realtime_closed(reason, self.loop.time(), retryable)
        self._spawn(self._pump())

    async def _release(self, conn: RealtimeConnection) -> None:
        await _quiet_close(conn)
        self.state.realtime_closed()

    async def _close_realtime(self) -> None:
        conn, self._rt = self._rt, None
        if conn is not None:
            await _quiet_close(conn)
            self.state.realtime_closed()
            log_event(log, "realtime.close", call_sid=self.call_sid)

    async def _close_twilio(self) -> None:
        await self._flush_twilio()
        if self.ws.application_state is WebSocketState.CONNECTED:
            try:
                await self.ws.close(1000)
            except Exception:
                pass

    # --- tools -------------------------------------------------------------------

    async def _run_tool(self, action: RunTool) -> None:
        assert self.context is not None
        result = await self.state.registry.run(action.call_id, action.name, action.arguments, self.context)
        log_event(
            log,
            "tool.call",
            logging.INFO if result.ok else logging.WARNING,
            call_sid=self.call_sid,
            tool=action.name,
            ok=result.ok,
            error=result.error,
            duration_ms=round(result.duration_s * 1000, 1),
        )
        self.call.tool_finished(
            action.call_id, result.output, self.loop.time(), name=action.name, ok=result.ok, error=result.error,
            duration_s=result.duration_s,
        )
        await self._pump()

    # --- call control (CallControl, used by CallContext and built-in tools) -----

    def _in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` on the event loop (tools may call from a worker thread)."""
        if threading.get_ident() == self._thread:
            fn(*args)
            self._spawn(self._pump())
        else:
            self.loop.call_soon_threadsafe(lambda: (fn(*args), self._spawn(self._pump())))

    def request_hangup(self, reason: str) -> None:
        self._in_loop(lambda: self.call.request_hangup(reason, self.loop.time()))

    async def request_transfer(self, target: str) -> str:
        """Resolve ``target`` (directory name or E.164 number) and schedule it."""
        number, label = self.state.resolve_transfer_target(target)
        if self.state.rest is None:
            raise TwilioRestError("transfers need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        self._in_loop(lambda: self.call.request_transfer(number, label, self.loop.time()))
        return f"Transferring the caller to {label} once you finish speaking."

    async def _transfer(self, action: TransferCall) -> None:
        rest = self.state.rest
        try:
            if rest is None:
                raise TwilioRestError("Twilio REST credentials are not configured")
            validate_e164(action.number)
            caller_id = self.context.to_number if self.context else None
            await rest.redirect(self.call_sid, dial(action.number, caller_id))
        except (TwilioRestError, ValueError) as exc:
            log_event(log, "transfer.failed", logging.WARNING, call_sid=self.call_sid, error=str(exc))
            self.call.transfer_failed(str(exc), self.loop.time())
        else:
            log_event(log, "transfer.done", call_sid=self.call_sid, to=action.number, label=action.label)
            self.call.transfer_done(self.loop.time())
        await self._pump()

    # --- notices -----------------------------------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        if notice.kind == "call.start" and self.call.start is not None:
            self._on_start(self.call.start)
        self.state.on_notice(self, notice)

    async def wait_ended(self) -> None:
        await self._ended.wait()


async def _quiet_close(conn: RealtimeConnection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except Exception:
        pass
