"""The per-call stream token: proof that a media stream's ``start`` belongs to
a call this server answered.

Twilio signs the ``/media-stream`` upgrade over the bare stream URL, so that
signature is the same for every call and can be replayed. The webhook (and
``place_call``) therefore adds a ``token`` ``<Parameter>``: an HMAC-SHA256 over
the CallSid, an expiry, a nonce and every other custom parameter of the stream,
keyed by ``TELEPHONY_STREAM_SECRET`` (by default derived from
``TWILIO_AUTH_TOKEN`` with a fixed label, so every worker and replica agrees
without shared state). On ``start`` the bridge checks it: the MAC covers what
the ``start`` carries, it names the ``start``'s CallSid, it has not expired and
it was not used before in this process (used tokens are remembered until they
expire, in bounded memory).

Outbound calls (``place_call``) write their TwiML before Twilio assigns a
CallSid: their token names no CallSid and is bound to its nonce instead
(single-use, and it expires after the ring time).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping

from ...config import Settings
from ...logs import log_event
from ...wire import twilio as tw

log = logging.getLogger("telephony.server")

__all__ = ["TOKEN_PARAMETER", "StreamTokens", "without_token"]

#: The custom parameter that carries the token.
TOKEN_PARAMETER = "token"
_VERSION = "v1"
_LABEL = b"telephony media-stream token v1"


def derive_secret(settings: Settings) -> bytes | None:
    """``TELEPHONY_STREAM_SECRET``, else HMAC(auth token, fixed label); None in dev mode."""
    if settings.stream_secret is not None and settings.stream_secret.get_secret_value():
        return settings.stream_secret.get_secret_value().encode()
    if settings.twilio_auth_token is not None and settings.twilio_auth_token.get_secret_value():
        key = settings.twilio_auth_token.get_secret_value().encode()
        return hmac.new(key, _LABEL, hashlib.sha256).digest()
    return None


class StreamTokens:
    """Issues and checks stream tokens; remembers the used ones until they expire."""

    def __init__(self, settings: Settings, max_remembered: int = 100_000) -> None:
        self.secret = derive_secret(settings)
        #: tokens are checked only when webhooks are signed (no auth token: dev mode)
        self.required = settings.signatures_required and self.secret is not None
        self.ttl = settings.stream_token_seconds
        self.max_remembered = max_remembered
        self.evicted = 0  # unexpired tokens forgotten because the memory was full
        self._used: OrderedDict[str, float] = OrderedDict()  # nonce -> expiry, oldest first
        self._live: set[str] = set()  # CallSids with a live stream in this process

    def _mac(self, call_sid: str, expires: int, nonce: str, params: Mapping[str, str]) -> str:
        assert self.secret is not None
        body = json.dumps(
            [_VERSION, call_sid, expires, nonce, sorted((k, v) for k, v in params.items() if k != TOKEN_PARAMETER)],
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        digest = hmac.new(self.secret, body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(
        self, call_sid: str, params: Mapping[str, str], now: float | None = None, ttl: float | None = None
    ) -> str:
        """A token for a stream of ``call_sid`` ("" when not known yet) carrying ``params``."""
        if self.secret is None:
            return ""
        now = time.time() if now is None else now
        expires = int(now + (self.ttl if ttl is None else ttl)) + 1
        nonce = secrets.token_hex(8)
        return f"{_VERSION}.{call_sid}.{expires}.{nonce}.{self._mac(call_sid, expires, nonce, params)}"

    def check(self, call_sid: str, params: Mapping[str, str], now: float | None = None) -> str | None:
        """None if ``params`` (a ``start``'s custom parameters) carry a valid, unused
        token for ``call_sid`` (it is then used up), else why not."""
        if not self.required:
            return None
        token = params.get(TOKEN_PARAMETER)
        if not token:
            return "no stream token"
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != _VERSION or not parts[2].isdigit():
            return "malformed stream token"
        _, bound_sid, expires_s, nonce, mac = parts
        expires = int(expires_s)
        if not hmac.compare_digest(mac, self._mac(bound_sid, expires, nonce, params)):
            return "stream token does not match the stream's parameters"
        if bound_sid and bound_sid != call_sid:
            return "stream token was issued for another call"
        now = time.time() if now is None else now
        if now > expires:
            return "stream token expired"
        used = self._used
        while used and (next(iter(used.values())) < now or len(used) >= self.max_remembered):
            _, until = used.popitem(last=False)
            if until >= now:  # forgotten before it expired: a replay of it would now pass
                self.evicted += 1
                if self.evicted == 1 or self.evicted % 10_000 == 0:
                    log_event(
                        log,
                        "stream_token.memory_full",
                        logging.WARNING,
                        evicted=self.evicted,
                        limit=self.max_remembered,
                        setting="TELEPHONY_MAX_REMEMBERED_TOKENS",
                    )
        if nonce in used:
            return "stream token already used"
        used[nonce] = expires
        return None

    def admit(self, start: tw.Start) -> str | None:
        """None if ``start`` may open a session: its token is valid (and used up now)
        and no other stream of its call is live here (its CallSid is claimed until
        ``release``); else why not."""
        reason = self.check(start.call_sid, start.custom_parameters)
        if reason is None and not self.claim(start.call_sid):
            reason = "another stream of this call is live"
        return reason

    # --- one live stream per CallSid (in this process) ---------------------------

    def claim(self, call_sid: str) -> bool:
        if call_sid in self._live:
            return False
        self._live.add(call_sid)
        return True

    def release(self, call_sid: str) -> None:
        self._live.discard(call_sid)


def without_token(start: tw.Start) -> tw.Start:
    """The ``start`` the core sees: its custom parameters without the token."""
    if TOKEN_PARAMETER not in start.custom_parameters:
        return start
    params = {k: v for k, v in start.custom_parameters.items() if k != TOKEN_PARAMETER}
    return dataclasses.replace(start, custom_parameters=params)
