"""What the call core asks of the I/O layer (actions) and tells observers (notices).

Every value is a small frozen dataclass, matched by type. Actions need the I/O
layer to do something (open or close the Realtime session, run a tool, end or
transfer the call); notices are facts worth a log line, a record entry or a
metric, and need nothing done. Both come out of ``Call.drain_actions()`` in the
order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..wire import twilio as tw

__all__ = [
    "Action",
    "AgentChanged",
    "Answered",
    "BargeIn",
    "CallEnded",
    "CallStarted",
    "CloseRealtime",
    "DeadAir",
    "DuplicateStart",
    "EndCall",
    "Event",
    "FirstAudio",
    "HangupRequested",
    "InputLimited",
    "InvalidRealtimeEvent",
    "InvalidTwilioMessage",
    "KeyPressed",
    "McpApproval",
    "McpCall",
    "McpProgress",
    "MediaBeforeStart",
    "Notice",
    "OpenRealtime",
    "RealtimeErrorReported",
    "RealtimeGaveUp",
    "RealtimeLost",
    "RealtimeReconnected",
    "RealtimeRollover",
    "ResponseFailed",
    "ResponseFinished",
    "RunTool",
    "SessionRejected",
    "TonesPlayed",
    "Transcript",
    "TranscriptionFailed",
    "TransferCall",
    "TransferFailed",
    "TransferRequested",
    "Truncation",
]


# --- actions: the I/O layer must do something -------------------------------------


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


Action = OpenRealtime | CloseRealtime | RunTool | EndCall | TransferCall


# --- notices: facts for logs, records and metrics ------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A valid ``start`` arrived: the call is known (CallSid, numbers, parameters)."""

    start: tw.Start

    @property
    def from_number(self) -> str | None:
        return self.start.custom_parameters.get("From")

    @property
    def to_number(self) -> str | None:
        return self.start.custom_parameters.get("To")


@dataclass(frozen=True, slots=True)
class CallEnded:
    outcome: str
    reason: str
    invalid_messages: int
    pending_tools: int
    reconnects: int
    apologize: bool


@dataclass(frozen=True, slots=True)
class DuplicateStart:
    stream_sid: str


@dataclass(frozen=True, slots=True)
class MediaBeforeStart:
    pass


@dataclass(frozen=True, slots=True)
class InvalidTwilioMessage:
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class InvalidRealtimeEvent:
    reason: str


@dataclass(frozen=True, slots=True)
class KeyPressed:
    digit: str


@dataclass(frozen=True, slots=True)
class InputLimited:
    """The caller's input went over a limit (``what``: "audio" or "keypad"); the
    excess is dropped. Noticed once per call and kind."""

    what: str
    limit: str


@dataclass(frozen=True, slots=True)
class Truncation:
    """One assistant item cut at a barge-in: the model keeps ``audio_end_ms`` of
    the ``received_ms`` it sent (what the caller heard)."""

    item_id: str
    audio_end_ms: int
    received_ms: int


@dataclass(frozen=True, slots=True)
class BargeIn:
    truncated: tuple[Truncation, ...]


@dataclass(frozen=True, slots=True)
class FirstAudio:
    """The agent's first audio of a turn left for the caller, ``seconds`` after the
    caller stopped speaking (nothing of ours is queued then, so it plays at once)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Transcript:
    role: str  # caller | agent
    text: str
    item_id: str
    at: float  # when that speech began (loop clock), for ordering


@dataclass(frozen=True, slots=True)
class TranscriptionFailed:
    """The caller's words for ``item_id`` could not be transcribed (kept as a marker)."""

    item_id: str
    message: str


@dataclass(frozen=True, slots=True)
class ResponseFinished:
    response_id: str
    status: str
    reason: str | None
    usage: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ResponseFailed:
    """A response ended ``failed`` or ``incomplete``: what happens next."""

    response_id: str
    status: str
    label: str  # metric label: a known reason or error code, else "other"
    message: str | None  # status_details.error.message (failed)
    failures: int  # in a row
    next: str  # retry | gave_up | none (the caller is speaking, or the call is ending)
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class DeadAir:
    """Nothing followed the caller's turn (or our request) for ``seconds``."""

    seconds: float
    next: str  # asked_again | gave_up


@dataclass(frozen=True, slots=True)
class SessionRejected:
    """The server refused our ``session.update``: the call would run unconfigured."""

    code: str | None
    message: str
    next: str  # retry_minimal | gave_up


@dataclass(frozen=True, slots=True)
class RealtimeErrorReported:
    type: str
    code: str | None
    message: str
    about: str | None = None  # the kind of our event it names (wire.realtime.caused_by), if any


@dataclass(frozen=True, slots=True)
class RealtimeLost:
    reason: str
    attempt: int
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class RealtimeGaveUp:
    reason: str
    attempts: int


@dataclass(frozen=True, slots=True)
class RealtimeReconnected:
    generation: int
    restored_items: int


@dataclass(frozen=True, slots=True)
class RealtimeRollover:
    age_s: float


@dataclass(frozen=True, slots=True)
class HangupRequested:
    reason: str


@dataclass(frozen=True, slots=True)
class TransferRequested:
    number: str
    label: str


@dataclass(frozen=True, slots=True)
class TransferFailed:
    number: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentChanged:
    """The agent that speaks from now on: chosen at the start (``how`` is route,
    number or default; ``previous`` None) or by a handoff (``how="handoff"``)."""

    agent: str
    previous: str | None
    how: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class McpProgress:
    """The API listing an MCP server's tools or calling one (``what``: list_tools | call)."""

    what: str
    status: str  # in_progress | completed | failed
    item_id: str


@dataclass(frozen=True, slots=True)
class McpCall:
    """A call the API made to a remote MCP server, finished."""

    item_id: str
    server_label: str
    name: str
    arguments: str
    output: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class McpApproval:
    """The API asked to call an MCP tool; answered by ``TELEPHONY_MCP_APPROVAL``."""

    request_id: str
    server_label: str
    name: str
    approved: bool


@dataclass(frozen=True, slots=True)
class TonesPlayed:
    """Keypad tones asked for with ``token`` have played (``played``), or never will (the call ended)."""

    token: str
    played: bool


@dataclass(frozen=True, slots=True)
class Answered:
    """Twilio's answering-machine verdict (``AnsweredBy``), ``latency_s`` after the stream started
    (``timed_out``: none came in time, the call was treated as answered by a person)."""

    answered_by: str
    latency_s: float
    timed_out: bool = False


Notice = (
    CallStarted
    | CallEnded
    | DuplicateStart
    | MediaBeforeStart
    | InvalidTwilioMessage
    | InvalidRealtimeEvent
    | KeyPressed
    | InputLimited
    | BargeIn
    | FirstAudio
    | Transcript
    | TranscriptionFailed
    | ResponseFinished
    | ResponseFailed
    | DeadAir
    | SessionRejected
    | RealtimeErrorReported
    | RealtimeLost
    | RealtimeGaveUp
    | RealtimeReconnected
    | RealtimeRollover
    | HangupRequested
    | TransferRequested
    | TransferFailed
    | AgentChanged
    | McpProgress
    | McpCall
    | McpApproval
    | TonesPlayed
    | Answered
)

#: Everything ``Call.drain_actions()`` returns.
Event = Action | Notice
