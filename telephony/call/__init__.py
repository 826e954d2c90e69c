"""The call: the per-call state machine (no I/O) and its playback clock."""

from .machine import (
    Action,
    Call,
    CallConfig,
    CloseRealtime,
    EndCall,
    Notice,
    OpenRealtime,
    Phase,
    RunTool,
    TransferCall,
)
from .playback import PlaybackClock

__all__ = [
    "Action",
    "Call",
    "CallConfig",
    "CloseRealtime",
    "EndCall",
    "Notice",
    "OpenRealtime",
    "Phase",
    "RunTool",
    "TransferCall",
    "PlaybackClock",
]
