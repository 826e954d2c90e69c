"""A call's transfers to a person, as the I/O layer carries them out.

The core decides when (``TransferCall`` once the agent's words have played);
this resolves the target (directory name or E.164 number) and whether it is
warm (the person hears a whisper with the summary and presses 1), parks the
conversation for a possible return (the dial's action URL brings the caller
back if nobody answers), and redirects the live call with a ``<Dial>`` over
Twilio REST. The caller ID shown is ``TELEPHONY_TRANSFER_CALLER_ID``, else the
business's own number. A call that comes back continues the parked
conversation with the same agent, and its record continues too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..call import Call, TransferCall
from ..errors import ConfigError, TelephonyError
from ..logs import log_event
from ..tools import CallContext
from ..wire import twilio as tw
from ..wire.twiml import dial
from ..wording import DIAL_STATUS, WHISPER_NO_SUMMARY
from .agent_choice import AgentChoice
from .observe import CallReport
from .services import Services
from .twilio.dial import RETURN_PARAMETER, RETURN_PARAMETERS, Parked, dial_action_url, whisper_url
from .twilio.rest import validate_e164

__all__ = ["TRANSFER_REPLY_WAIT_S", "CallTransfers"]

log = logging.getLogger("telephony.call")

#: At the end of a call whose stream stopped before the transfer's REST reply, wait this long for it.
TRANSFER_REPLY_WAIT_S = 10.0


class CallTransfers:
    """One call's transfers. ``origin()``: this server's public http(s) origin."""

    def __init__(
        self, services: Services, call: Call, report: CallReport, agents: AgentChoice, origin: Callable[[], str]
    ) -> None:
        self._services = services
        self._call = call
        self._report = report
        self._agents = agents
        self._origin = origin
        #: redirects under way (their REST replies decide the call's outcome)
        self.pending: set[asyncio.Task[None]] = set()
        #: the next transfer is warm: the whisper's summary (None: cold)
        self._warm: str | None = None

    def track(self, task: asyncio.Task[None]) -> None:
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def wait_replies(self) -> None:
        """The stream stopped before a REST reply: it says whether the call was
        transferred (the record must be exact), so wait for it, bounded."""
        if self.pending:
            await asyncio.wait(self.pending, timeout=TRANSFER_REPLY_WAIT_S)

    def target(self, target: str, warm: bool | None, summary: str | None) -> tuple[str, str]:
        """Resolve ``target`` and whether it is warm; returns (number, label)."""
        services = self._services
        number, label = services.resolve_transfer_target(target)
        if services.rest is None:
            raise ConfigError("transfers need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if warm is None:
            listed = {n.strip().lower() for n in services.settings.transfer_warm}
            warm = "*" in listed or label.strip().lower() in listed or target.strip().lower() in listed
        self._warm = (summary or WHISPER_NO_SUMMARY.format(label=label)) if warm else None
        return number, label

    def business_number(self, ctx: CallContext | None) -> str | None:
        """The caller ID a transfer shows: the setting, else the business's own number
        (the called number of an inbound call, the calling number of an outbound one)."""
        settings = self._services.settings
        if settings.transfer_caller_id:
            return settings.transfer_caller_id
        if ctx is None:
            return None
        return ctx.from_number if ctx.parameters.get("direction") == "outbound" else ctx.to_number

    async def run(self, action: TransferCall, call_sid: str, ctx: CallContext | None, now: Callable[[], float]) -> None:
        """Park the conversation and redirect the call; tells the core how it went."""
        rest = self._services.rest
        ledger = self._services.transfers
        agents = self._agents
        try:
            if rest is None:
                raise ConfigError("Twilio REST credentials are not configured")
            validate_e164(action.number)
            params = ctx.parameters if ctx else {}
            ledger.park(  # before the redirect: the dial's action may come back quickly
                call_sid,
                Parked(
                    action.number,
                    action.label,
                    self._call.conversation(),
                    agent=agents.agent.name if agents.agent else None,
                    first_agent=agents.first_agent.name if agents.first_agent else None,
                    # the return is no new answer: no second answering-machine wait
                    parameters={k: v for k, v in params.items() if k not in RETURN_PARAMETERS and k != "amd"},
                    record=self._report.recorder.record if self._report.recorder else None,
                    warm=self._warm is not None,
                    summary=self._warm or "",
                ),
            )
            twiml = dial(
                action.number,
                self.business_number(ctx),
                action=dial_action_url(self._origin(), action.label),
                timeout_s=self._services.settings.transfer_ring_seconds,
                answer_on_bridge=True,
                number_url=whisper_url(self._origin(), call_sid) if self._warm is not None else None,
            )
            await rest.redirect(call_sid, twiml)
        except TelephonyError as exc:
            ledger.take(call_sid)
            self._call.transfer_failed(str(exc), now())  # logged once, as the machine's notice
        else:
            log_event(log, "transfer.done", call_sid=call_sid, to=action.number, label=action.label)
            self._call.transfer_done(now())

    def returned(self, start: tw.Start, now: float) -> None:
        """This stream is the call back from a transfer nobody took: continue the
        conversation parked by the first stream (if this process has it)."""
        params = start.custom_parameters
        status = params.get(RETURN_PARAMETER, "")
        parked = self._services.transfers.take(start.call_sid)
        label = parked.label if parked is not None else params.get("TransferLabel") or "a colleague"
        call = self._call
        notice = call.config.wording.transfer_returned.format(label=label, status=DIAL_STATUS.get(status, status))
        call.resume_after_transfer(parked.conversation if parked is not None else None, notice)
        if parked is not None:
            self._agents.resume(parked.agent, parked.first_agent)
        recorder = self._report.recorder
        if parked is not None and recorder is not None:
            if parked.record is not None:
                recorder.continue_from(parked.record, now)
            recorder.record.transfers.extend(parked.attempts)
        restored = len(parked.conversation[0]) if parked is not None else 0
        log_event(log, "transfer.returned", call_sid=start.call_sid, status=status, label=label, restored=restored)
