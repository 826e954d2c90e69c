"""What the routes share, split by concern.

``services`` (what calls use: settings, tools, the Realtime connector, Twilio
REST), ``signatures`` (Twilio's request signatures), ``admission`` (the call
limit, draining) and ``observer`` (logs, metrics, counters, records).
"""

from __future__ import annotations

import time

from .bridge import CallSession
from .observe import CallObserver
from .services import Services
from .twilio.signatures import Signatures

__all__ = ["Admission", "AppState"]


class Admission:
    """Which calls get in: the call limit, and nothing new while draining.

    A media stream holds a call slot once its ``start`` is proven (stream token);
    before that it waits in ``pending``, bounded apart (the oldest is closed
    beyond ``max_pending``), so streams that never start cannot take real
    callers' slots, and ``max_calls`` holds exactly."""

    def __init__(self, max_calls: int, max_pending: int = 64) -> None:
        self.max_calls = max_calls
        self.max_pending = max_pending
        self.sessions: set[CallSession] = set()  # every open media stream
        self.calls: set[CallSession] = set()  # streams with a proven start: the call slots
        self.pending: dict[CallSession, None] = {}  # streams waiting for start, oldest first
        self.draining = False

    @property
    def active(self) -> int:
        return len(self.sessions)

    def full(self) -> bool:
        return len(self.calls) >= self.max_calls


class AppState:
    """What every route shares."""

    def __init__(self, services: Services, observer: CallObserver) -> None:
        self.settings = services.settings
        self.services = services
        self.signatures = Signatures(services.settings)
        self.admission = Admission(services.settings.max_calls, services.settings.max_pending_streams)
        self.observer = observer
        self.started = time.time()
