"""The console's routes: login, live calls (Server-Sent Events), history, one call,
the browser phone and its media stream, and the static files they load."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from importlib import resources

import orjson
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from ..io.bridge import CallSession
from ..io.state import AppState
from ..io.twilio.stream_token import TOKEN_PARAMETER
from ..logs import log_event
from ..records import CallQuery, CallRecord
from . import pages
from .auth import COOKIE, LoginThrottle, check_session, make_session, same_origin, token_matches

__all__ = ["add_console_routes"]

log = logging.getLogger("telephony.server")

PAGE_SIZE = 25
#: One Server-Sent Events response lasts at most this long; the browser reconnects by itself.
SSE_LIFETIME_S = 300.0
SSE_KEEPALIVE_S = 15.0

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make the browser send Origin: null
    "Cache-Control": "no-store",
}
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files(__package__).joinpath("static")
    out = {}
    for entry in folder.iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if suffix in _STATIC_TYPES:
            out[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return out


def add_console_routes(app: FastAPI, state: AppState) -> None:
    settings, services, admission, observer = state.settings, state.services, state.admission, state.observer
    live = observer.live
    static = _static()
    lifetime_s = settings.console_session_hours * 3600
    throttle = LoginThrottle(settings.console_login_attempts)

    def client_address(request: Request) -> str:
        if settings.trust_forwarded_headers and request.headers.get("x-forwarded-for"):
            return request.headers["x-forwarded-for"].split(",")[0].strip()
        return request.client.host if request.client else ""

    def token() -> str:
        return settings.api_token.get_secret_value() if settings.api_token else ""

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status, headers=_HEADERS)

    def refused(request: Request) -> Response | None:
        """None if the request carries a valid session; else what to answer."""
        if not token():
            return html(pages.message_page("Console off", "Set TELEPHONY_API_TOKEN to enable the console."), 403)
        if not check_session(token(), request.cookies.get(COOKIE)):
            return RedirectResponse("/console/login", status_code=303, headers=_HEADERS)
        return None

    def origin_ok(headers: object) -> bool:
        return same_origin(headers, settings.public_url, settings.trust_forwarded_headers)  # type: ignore[arg-type]

    def secure(request: Request) -> bool:
        if request.url.scheme == "https":
            return True
        if settings.trust_forwarded_headers and request.headers.get("x-forwarded-proto", "").startswith("https"):
            return True
        return bool(settings.public_url and settings.public_url.startswith("https://"))

    @app.get("/console/login")
    async def login_form() -> Response:
        if not token():
            return html(pages.message_page("Console off", "Set TELEPHONY_API_TOKEN to enable the console."), 403)
        return html(pages.login_page())

    @app.post("/console/login")
    async def login(request: Request) -> Response:
        if not token():
            return html(pages.message_page("Console off", "Set TELEPHONY_API_TOKEN to enable the console."), 403)
        if not origin_ok(request.headers):
            log_event(log, "console.login_refused", logging.WARNING, reason="cross-origin")
            return html(pages.message_page("Refused", "This form must be sent from the console's own page."), 403)
        client = client_address(request)
        if throttle.blocked(client):
            log_event(log, "console.login_throttled", logging.WARNING, client=client)
            return html(pages.login_page("Too many failed logins: wait a minute."), 429)
        form = await request.form()
        given = form.get("token")
        if not isinstance(given, str) or not token_matches(token(), given):
            throttle.failed(client)
            log_event(log, "console.login_failed", logging.WARNING, client=client)
            return html(pages.login_page("Wrong token."), 401)
        log_event(log, "console.login")
        response = RedirectResponse("/console", status_code=303, headers=_HEADERS)
        response.set_cookie(
            COOKIE,
            make_session(token(), lifetime_s),
            max_age=int(lifetime_s),
            path="/console",
            httponly=True,
            samesite="strict",
            secure=secure(request),
        )
        return response

    @app.post("/console/logout")
    async def logout(request: Request) -> Response:
        if not origin_ok(request.headers):
            return html(pages.message_page("Refused", "This form must be sent from the console's own page."), 403)
        response = RedirectResponse("/console/login", status_code=303, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")
        return response

    @app.get("/console/static/{name}")
    async def static_file(name: str) -> Response:
        found = static.get(name)
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "no-cache"})

    @app.get("/console")
    async def live_calls(request: Request) -> Response:
        return refused(request) or html(pages.live_page())

    @app.get("/console/live/events")
    async def live_events(request: Request) -> Response:
        """The live calls as Server-Sent Events: the whole list on every change."""
        no = refused(request)
        if no is not None:
            return no if no.status_code == 403 else Response("log in first", status_code=401)

        async def events() -> AsyncIterator[bytes]:
            loop = asyncio.get_running_loop()
            end = loop.time() + SSE_LIFETIME_S
            version = -1
            yield b"retry: 2000\n\n"
            while loop.time() < end and not admission.draining:
                if live.version != version:
                    version = live.version
                    data = orjson.dumps({"now": time.time(), "calls": live.snapshot()})
                    yield b"event: calls\ndata: " + data + b"\n\n"
                elif not await live.changed(version, min(SSE_KEEPALIVE_S, max(0.0, end - loop.time()))):
                    yield b": keep-alive\n\n"

        headers = dict(_HEADERS, **{"X-Accel-Buffering": "no"})
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @app.get("/console/calls")
    async def history(request: Request, q: str = "", outcome: str = "", page: int = 0) -> Response:
        no = refused(request)
        if no is not None:
            return no
        q, page = q.strip(), max(0, page)
        outcome = outcome if outcome in pages.OUTCOMES else ""
        store = observer.store
        if store is None:
            return html(pages.history_page([], q, outcome, 0, False, "Call records are off."))
        records: list[CallRecord] = []
        has_next = False
        try:
            if q and not q.lstrip("+").isdigit():  # a call SID
                record = await store.get(q)
                records = [record] if record is not None and (not outcome or record.outcome == outcome) else []
            else:
                query = CallQuery(q or None, outcome or None, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE)
                records = await store.list(query)
                has_next = len(records) > PAGE_SIZE
                records = records[:PAGE_SIZE]
        except Exception as exc:
            log_event(log, "records.read_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            return html(pages.history_page([], q, outcome, page, False, "Call records are unavailable."), 503)
        return html(pages.history_page(records, q, outcome, page, has_next))

    @app.get("/console/calls/{call_sid}")
    async def one_call(request: Request, call_sid: str) -> Response:
        no = refused(request)
        if no is not None:
            return no
        if observer.store is None:
            return html(pages.message_page("Call", "Call records are off."), 404)
        try:
            record = await observer.store.get(call_sid)
        except Exception as exc:
            log_event(log, "records.read_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            return html(pages.message_page("Call", "Call records are unavailable."), 503)
        if record is None:
            return html(pages.message_page("Call", f"No call {call_sid}."), 404)
        return html(pages.call_page(record))

    @app.get("/console/phone")
    async def phone(request: Request) -> Response:
        return refused(request) or html(pages.phone_page())

    @app.websocket("/console/phone/stream")
    async def phone_stream(ws: WebSocket) -> None:
        """The browser phone: Media Streams from the page, run exactly like /media-stream,
        except that the start message is built here (the page's own is ignored as a
        duplicate) and the console session stands in for Twilio's signature."""
        if not token() or not check_session(token(), ws.cookies.get(COOKIE)) or not origin_ok(ws.headers):
            observer.counters["console_phone_refused"] += 1
            log_event(log, "console.phone_refused", logging.WARNING)
            await ws.close(code=1008)  # before accept: the upgrade is refused (HTTP 403)
            return
        if admission.draining or admission.full():
            await ws.close(code=1013)
            return
        await ws.accept()

        def admit(session: CallSession) -> str | None:  # a call slot, like a proven Twilio start
            admission.calls.add(session)
            return None

        session = CallSession(ws, services, observer.call(), admit=admit)
        observer.counters["console_phone_streams"] += 1
        admission.sessions.add(session)
        observer.metrics.active_calls.set(admission.active)
        stream_sid = "MZ" + secrets.token_hex(16)
        call_sid = "console-" + secrets.token_hex(8)
        params = {"From": "browser", "To": "console", "console": "true"}
        # The console session stands in for Twilio's signature; the start carries a stream
        # token like one our webhook issues, so it takes the same proven-start path.
        proof = services.streams.issue(call_sid, params)
        if proof:
            params[TOKEN_PARAMETER] = proof
        start = {
            "event": "start",
            "streamSid": stream_sid,
            "start": {
                "streamSid": stream_sid,
                "callSid": call_sid,
                "accountSid": "console",
                "tracks": ["inbound"],
                "customParameters": params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
        try:
            session.on_twilio_message(orjson.dumps(start).decode())
            await session.run()
        finally:
            admission.calls.discard(session)
            admission.sessions.discard(session)
            observer.metrics.active_calls.set(admission.active)
