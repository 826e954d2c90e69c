"""One phone call's I/O: Twilio media socket <-> ``Call`` <-> Realtime socket.

Thin by design: take a socket's message, feed the state machine with the
loop's clock, carry out what it asks (send, open/close the session, run tools,
end or transfer the call) and report what it tells to the call's
``CallReport``. Callback driven: each message is handled where the socket's
reader delivers it (``on_twilio_message``, ``_on_realtime_message``) and the
machine's outboxes are written at once, synchronously, so messages leave in the
order the machine queued them with no task, queue or lock per frame. Only slow
things (opening a session, tools, transfers) run as tasks.

What else a call does in I/O has its own module: which agent speaks
(``agent_choice.py``), transfers and the call coming back (``transfers.py``),
recordings (``recording.py``), what tools and Twilio's callbacks ask of the call
(``call_requests.py``), the call's Realtime connections until closed
(``realtime/connections.py``), whether a ``start`` may open a session
(``twilio/stream_token.py``).

Somewhat over the ~400 lines we aim for, on purpose: what is left is the pump
itself (both sockets' per-frame paths, the action dispatcher, the timer,
opening and losing the session, and the shutdown's order under cancellation).
These share the live connection and the call's tasks, and the per-frame paths
stay written out here with no call into another object per frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from functools import partial
from time import perf_counter_ns
from typing import Any

from starlette.websockets import WebSocket

from ..call import (
    Answered,
    Call,
    CallEnded,
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
from ..logs import log_event
from ..tools import CallContext
from ..tools.registry import ToolResult
from ..wire import realtime as rt
from ..wire import twilio as tw
from .agent_choice import AgentChoice
from .call_requests import CallRequests
from .observe import CallReport
from .realtime.client import RealtimeConnectError, RealtimeConnection
from .realtime.connections import CallConnections
from .recording import LocalRecorder, record_locally, record_with_twilio
from .services import Services, call_config
from .transfers import CallTransfers
from .twilio.dial import RETURN_PARAMETER
from .twilio.media import MAX_TWILIO_BUFFER, MediaSocket
from .twilio.stream_token import without_token

__all__ = ["MAX_TWILIO_BUFFER", "CallSession", "call_config"]

log = logging.getLogger("telephony.call")

#: EndCall reasons meaning Twilio ended the stream (no REST hang-up needed)
_TWILIO_ENDED = frozenset({"Twilio stream closed", "caller hung up or the stream stopped"})

_MEDIA = tw.Media
_START = tw.Start
_AUDIO_DELTA = rt.AudioDelta
_parse_twilio = tw.parse
_parse_realtime = rt.parse


class CallSession:
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
        self.agents = AgentChoice(services, self.call, report, self.loop.time)
        self.transfers = CallTransfers(services, self.call, report, self.agents, self._origin)
        self._start: tw.Start | None = None
        self._rt: RealtimeConnection | None = None
        self._conns = CallConnections(report)
        self._tasks: set[asyncio.Task[Any]] = set()
        #: TELEPHONY_RECORDING=local: this call's stereo WAV
        self._recording: LocalRecorder | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ended = asyncio.Event()
        settings = services.settings
        self.requests = CallRequests(
            self.loop, self.call, self._pump, self.transfers, lambda: self.context, settings.voicemail_message
        )
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
        reason = self.services.streams.admit(start)
        if reason is not None:
            self.report.stream_refused(start.call_sid, reason)
            self.call.end("failed", f"stream refused: {reason}")
            self._pump()
            return None
        self._claimed = self.call_sid = start.call_sid
        busy = self._admit(self) if self._admit is not None else None
        if busy is not None:  # logged and counted by the admission
            self.report.call_sid = start.call_sid  # so /stream-ended can tell the caller we are busy
            self.call.end("failed", busy)
            self._pump()
            return None
        return without_token(start)

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
            if call.transfer_unconfirmed:
                await self.transfers.wait_replies()
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
            await self._conns.close_all()
            await self._close_twilio()
            if self._recording is not None:
                await self._recording.close()  # also what arrived after the call ended
        finally:
            written = self.report.recording_written
            if written is not None and not written.done():
                written.set_result(None)  # the file is complete (or will never be): the record may go
            self._conns.abort_all()
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

    def send_to_twilio(self, messages: Sequence[str]) -> None:
        """Write to the Twilio socket; a socket that stopped reading (more than
        ``MAX_TWILIO_BUFFER`` unsent) ends the call instead of growing forever."""
        twilio = self.twilio
        twilio.send_all(messages)
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
                        self.transfers.returned(ev.start, now)
                    if self.services.settings.recording == "local":
                        self._recording = record_locally(ev.start, self.services.settings, self.call, report.recorder)
                    continue
                case RunTool():
                    self._spawn(self._run_tool(ev))
                case OpenRealtime():
                    self._spawn(self._open_realtime(ev.start, ev.reconnect))
                case CloseRealtime():
                    self._spawn(self._close_realtime())
                case TransferCall():
                    self.transfers.track(self._spawn(self._transfer(ev)))
                case EndCall():
                    self._spawn(self._close_twilio())
                    rest = self.services.rest
                    if rest is not None and ev.outcome != "transferred" and ev.reason not in _TWILIO_ENDED:
                        self.services.endings.watch(self.call_sid, rest.hangup)
                case Answered():
                    if self.context is not None:
                        self.context.answered_by = ev.answered_by
                case TonesPlayed():
                    self.requests.tones_played(ev)
                case CallEnded() if self._recording is not None and report.recording_written is None:
                    # The record names the recording: it is written once the file is
                    # complete, i.e. after shutdown's last write (see shutdown).
                    report.recording_written = self.loop.create_future()
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
            _controller=self.requests,
        )
        if self.services.settings.recording == "twilio" and RETURN_PARAMETER not in params:
            self._spawn(record_with_twilio(self.services.rest, self.call_sid, self._origin(), self.report.recorder))
        if params.get("amd") == "1":  # outbound with answering-machine detection
            self.call.await_verdict(self.loop.time(), self.services.settings.amd_wait_seconds)

    async def _open_realtime(self, start: tw.Start, reconnect: bool) -> None:
        self._start = start
        if self._rt is not None:  # replacing a session: never two live ones per call
            await self._close_realtime()
        choosing = self.loop.create_task(self.agents.choose(self.context))  # while the socket opens
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
            await self._conns.close(conn)
            return
        self._rt = conn
        self._conns.count(conn, reconnect)
        log_event(log, "realtime.open", call_sid=self.call_sid, reconnect=reconnect)
        services = self.services
        agents = self.agents
        update = services.session_update(start, agents.agent, agents.first_agent)
        minimal = services.session_update(start, agents.agent, agents.first_agent, minimal=True)
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
            self._conns.uncount(conn)  # counted closed from here: nothing more is sent or read
            self._spawn(self._conns.close(conn))
        self.call.realtime_closed(reason, self.loop.time(), retryable)
        self._pump()

    async def _close_realtime(self) -> None:
        conn, self._rt = self._rt, None
        if conn is not None:
            log_event(log, "realtime.close", call_sid=self.call_sid)
            await self._conns.close(conn)

    async def _close_twilio(self) -> None:
        to_twilio = self.call.drain_twilio()
        if to_twilio:
            self.send_to_twilio(to_twilio)
        await self.twilio.close()

    # --- tools -------------------------------------------------------------------

    async def _run_tool(self, action: RunTool) -> None:
        assert self.context is not None
        services = self.services
        target = services.handoff_target(self.agents.agent, action.name)
        if target is not None:
            self.agents.hand_off(action, target, self._start, self.loop.time())
            self._pump()
            return
        if services.offers(self.agents.agent, action.name):
            result = await services.registry.run(action.call_id, action.name, action.arguments, self.context)
        else:  # a tool of another agent, or none: refused like an unknown one
            message = f"{action.name} is not available to you now"
            result = ToolResult(action.call_id, action.name, json.dumps({"error": message}), False, message, 0.0)
        self.report.tool_finished(result)
        self.call.tool_finished(action.call_id, result.output, self.loop.time())
        self._pump()

    # --- what the core asks of Twilio -------------------------------------------------

    def _origin(self) -> str:
        """This server's public http(s) origin, for the URLs Twilio calls back."""
        public = self.services.settings.public_url
        if public:
            return public.rstrip("/")
        return f"https://{self.ws.headers.get('host', 'localhost')}"

    async def _transfer(self, action: TransferCall) -> None:
        await self.transfers.run(action, self.call_sid, self.context, self.loop.time)
        self._pump()

    async def wait_ended(self) -> None:
        await self._ended.wait()
