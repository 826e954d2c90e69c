"""The FastAPI app: Twilio's webhooks and media stream, the operators' API.

``create_app(settings, registry, connect_realtime=..., rest=..., store=...)``:
the Realtime connector, the Twilio REST client and the records store are handed
in, so tests use loopback fakes and production uses websockets and the
``twilio`` library. The routes live with what they talk to
(``twilio/routes.py``, ``api.py``); what they share is ``state.AppState``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI

from ..agents import Agents
from ..config import Settings
from ..logs import log_event
from ..pricing import Prices
from ..records import CallStore, open_store
from ..tools import ToolRegistry
from .api import add_operator_routes
from .observe import CallObserver
from .realtime.client import RealtimeConnector
from .services import Services
from .state import Admission, AppState
from .tracing import tracer_from_env
from .twilio.rest import TwilioRest
from .twilio.routes import add_twilio_routes

__all__ = ["Admission", "AppState", "create_app", "drain"]

log = logging.getLogger("telephony.server")


def create_app(
    settings: Settings,
    registry: ToolRegistry | None = None,
    connect_realtime: RealtimeConnector | None = None,
    rest: TwilioRest | None = None,
    store: CallStore | None = None,
    agents: Agents | None = None,
) -> FastAPI:
    services = Services(settings, registry if registry is not None else ToolRegistry(), connect_realtime, rest, agents)
    if store is None:
        store = open_store(settings)
    observer = CallObserver(
        store, settings.records_buffer, settings.records_retry_seconds, settings.model, Prices(settings.prices)
    )
    observer.tracer = tracer_from_env(settings.model)
    observer.record_dtmf = settings.record_dtmf
    state = AppState(services, observer)
    state.observer.known_tools = frozenset(t.name for t in services.registry)  # metric labels: known names only
    app = FastAPI(title="telephony", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.telephony = state
    add_operator_routes(app, state)
    add_twilio_routes(app, state)
    from ..console import add_console_routes  # the console imports io: imported here, not at the top

    add_console_routes(app, state)
    return app


async def drain(state: AppState, deadline_s: float) -> None:
    """Stop taking calls, let those in progress finish, then end the rest."""
    admission = state.admission
    admission.draining = True
    state.observer.live.wake()  # the console's live streams end instead of holding the shutdown
    log_event(log, "server.draining", active_calls=admission.active, deadline_s=deadline_s)
    end = time.monotonic() + deadline_s
    while admission.sessions and time.monotonic() < end:
        waits = [asyncio.ensure_future(s.wait_ended()) for s in list(admission.sessions)]
        await asyncio.wait(waits, timeout=max(0.0, end - time.monotonic()), return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
    for session in list(admission.sessions):
        session.end_now("failed", "server shutting down")
    if admission.sessions:
        await asyncio.wait([asyncio.ensure_future(s.wait_ended()) for s in list(admission.sessions)], timeout=5)
    await state.observer.close(timeout=5)  # the last records written, the store's connections closed
