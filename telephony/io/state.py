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
    """Which calls get in: the call limit, and nothing new while draining."""

    def __init__(self, max_calls: int) -> None:
        self.max_calls = max_calls
        self.sessions: set[CallSession] = set()
        self.draining = False

    @property
    def active(self) -> int:
        return len(self.sessions)

    def full(self, slack: int = 0) -> bool:
        return len(self.sessions) >= self.max_calls + slack


class AppState:
    """What every route shares."""

    def __init__(self, services: Services, observer: CallObserver) -> None:
        self.settings = services.settings
        self.services = services
        self.signatures = Signatures(services.settings)
        self.admission = Admission(services.settings.max_calls)
        self.observer = observer
        self.started = time.time()
