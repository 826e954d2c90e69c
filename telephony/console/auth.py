"""The console's session: a login form takes ``TELEPHONY_API_TOKEN`` once and sets
an HttpOnly, SameSite=Strict cookie holding a signed session value (never the
token). The value is ``<expiry>.<nonce>.<HMAC-SHA256>`` under a key derived from
the token, so changing the token ends every session. Requests that change state
(the login, the logout, the browser phone's WebSocket) must come from the
console's own origin (the ``Origin`` header)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["COOKIE", "LoginThrottle", "check_session", "make_session", "same_origin", "token_matches"]

COOKIE = "telephony_console"


def _key(token: str) -> bytes:
    return hashlib.sha256(b"telephony console session\0" + token.encode()).digest()


def _sign(token: str, body: str) -> str:
    return hmac.new(_key(token), body.encode(), hashlib.sha256).hexdigest()


def make_session(token: str, lifetime_s: float, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + lifetime_s)
    body = f"{expiry}.{secrets.token_hex(12)}"
    return f"{body}.{_sign(token, body)}"


def check_session(token: str, value: str | None, now: float | None = None) -> bool:
    """Whether ``value`` is a session this token signed and it has not expired."""
    if not token or not value or value.count(".") != 2:
        return False
    body, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac.encode(), _sign(token, body).encode()):
        return False
    try:
        expiry = int(body.split(".", 1)[0])
    except ValueError:
        return False
    return expiry > (time.time() if now is None else now)


def token_matches(token: str, given: str) -> bool:
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def same_origin(headers: Mapping[str, str], public_url: str | None, trust_forwarded: bool) -> bool:
    """The request's ``Origin`` names this server: its Host (or, behind a trusted
    proxy, X-Forwarded-Host), or ``PUBLIC_URL``. A missing Origin is refused:
    every browser sends one with a form POST and a WebSocket handshake."""
    origin = headers.get("origin")
    if not origin or origin == "null":
        return False
    netloc = urlsplit(origin).netloc.lower()
    allowed = {headers.get("host", "").lower()}
    if trust_forwarded and headers.get("x-forwarded-host"):
        allowed.add(headers["x-forwarded-host"].split(",")[0].strip().lower())
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    allowed.discard("")
    return netloc in allowed


class LoginThrottle:
    """At most ``limit`` failed logins per client address in ``window_s``; the addresses
    tracked are bounded (the least recently failing are forgotten first)."""

    def __init__(self, limit: int, window_s: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit, self.window_s, self.max_clients = limit, window_s, max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client) or deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def blocked(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return len(self._recent(client, now)) >= self.limit

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        failures = self._recent(client, now)
        failures.append(now)
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
