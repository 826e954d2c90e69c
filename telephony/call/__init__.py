"""The call core: one state machine per phone call, no I/O and no clock.

``Call`` (machine.py) composes one part per concern (its docstring lists them:
playout, interruption, responses, recovery, tools, session, control, amd, tones,
hold, aec, transcripts). What it asks of the I/O layer and tells observers is in
events.py.
"""

from . import events
from .config import CallConfig, Phase
from .events import *  # noqa: F403  (actions and notices: the core's whole vocabulary)
from .machine import Call, RealtimeMessage
from .playback import PlaybackClock

__all__ = ["Call", "CallConfig", "Phase", "PlaybackClock", "RealtimeMessage", *events.__all__]
