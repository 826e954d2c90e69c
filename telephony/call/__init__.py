"""The call core: one state machine per phone call, no I/O and no clock.

``Call`` (machine.py) composes one part per concern: ``Playout`` (playout.py),
``ResponseGate`` (responses.py), ``ToolLedger`` (tools.py), ``SessionLifecycle``
(session.py), ``Control``/``Keypad`` (control.py). What it asks of the I/O
layer and tells observers is in events.py.
"""

from .config import CallConfig, Phase
from .events import (
    Action,
    BargeIn,
    CallEnded,
    CallStarted,
    CloseRealtime,
    DuplicateStart,
    EndCall,
    Event,
    FirstAudio,
    HangupRequested,
    InvalidRealtimeEvent,
    InvalidTwilioMessage,
    KeyPressed,
    MediaBeforeStart,
    Notice,
    OpenRealtime,
    RealtimeErrorReported,
    RealtimeGaveUp,
    RealtimeLost,
    RealtimeReconnected,
    RealtimeRollover,
    ResponseFinished,
    RunTool,
    Transcript,
    TransferCall,
    TransferFailed,
    TransferRequested,
    Truncation,
)
from .machine import Call, RealtimeMessage
from .playback import PlaybackClock

__all__ = [
    "Action",
    "BargeIn",
    "Call",
    "CallConfig",
    "CallEnded",
    "CallStarted",
    "CloseRealtime",
    "DuplicateStart",
    "EndCall",
    "Event",
    "FirstAudio",
    "HangupRequested",
    "InvalidRealtimeEvent",
    "InvalidTwilioMessage",
    "KeyPressed",
    "MediaBeforeStart",
    "Notice",
    "OpenRealtime",
    "Phase",
    "PlaybackClock",
    "RealtimeErrorReported",
    "RealtimeGaveUp",
    "RealtimeLost",
    "RealtimeMessage",
    "RealtimeReconnected",
    "RealtimeRollover",
    "ResponseFinished",
    "RunTool",
    "Transcript",
    "TransferCall",
    "TransferFailed",
    "TransferRequested",
    "Truncation",
]
