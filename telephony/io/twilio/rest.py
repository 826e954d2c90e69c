"""The Twilio REST client: a thin async adapter over the ``twilio`` library.

``TWILIO_API_BASE_URL`` points it elsewhere (tests, proxies). The library is
synchronous, so each request runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from ...errors import ConfigError, InvalidPhoneNumber, TwilioRestError

__all__ = ["E164", "InvalidPhoneNumber", "TwilioRest", "TwilioRestError", "validate_e164"]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def validate_e164(number: str) -> str:
    number = (number or "").strip()
    if not E164.match(number):
        raise InvalidPhoneNumber(f"{number!r} is not an E.164 phone number (like +15551234567)")
    return number


class TwilioRest:
    def __init__(self, account_sid: str | None, auth_token: str | None, base_url: str | None = None) -> None:
        if not account_sid or not auth_token:
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set for Twilio REST actions")
        from twilio.rest import Client

        self._client = Client(account_sid, auth_token)
        if base_url:
            self._client.api.base_url = base_url.rstrip("/")
        self.account_sid = account_sid

    async def _run(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except TwilioRestException as exc:
            raise TwilioRestError(f"{what} failed: HTTP {exc.status} {exc.msg}") from None
        except TwilioException as exc:
            raise TwilioRestError(f"{what} failed: {exc}") from None
        except OSError as exc:
            raise TwilioRestError(f"{what} failed: {type(exc).__name__}: {exc}") from None

    async def redirect(self, call_sid: str, twiml: str) -> None:
        """Replace a live call's TwiML (ends its stream)."""
        await self._run(f"updating call {call_sid}", lambda: self._client.calls(call_sid).update(twiml=twiml))

    async def start_recording(self, call_sid: str, status_callback: str) -> str:
        """Twilio's dual-channel recording of a live call; returns the recording SID.
        Its ``completed`` status (with the URL) is posted to ``status_callback``."""
        recording = await self._run(
            f"recording call {call_sid}",
            lambda: self._client.calls(call_sid).recordings.create(
                recording_channels="dual",
                recording_status_callback=status_callback,
                recording_status_callback_method="POST",
                recording_status_callback_event=["completed"],
            ),
        )
        return str(recording.sid)

    async def hangup(self, call_sid: str) -> None:
        await self._run(f"hanging up call {call_sid}", lambda: self._client.calls(call_sid).update(status="completed"))

    async def create_call(
        self, to: str, from_: str, twiml: str, status_callback: str | None = None, amd_callback: str | None = None
    ) -> str:
        """``amd_callback``: asynchronous answering-machine detection, verdict posted there."""
        kwargs: dict[str, Any] = {"to": to, "from_": from_, "twiml": twiml}
        if amd_callback:
            kwargs["machine_detection"] = "DetectMessageEnd"
            kwargs["async_amd"] = "true"
            kwargs["async_amd_status_callback"] = amd_callback
            kwargs["async_amd_status_callback_method"] = "POST"
        if status_callback:
            kwargs["status_callback"] = status_callback
            kwargs["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
        call = await self._run(f"calling {to}", lambda: self._client.calls.create(**kwargs))
        return str(call.sid)

    async def configure_number(
        self, number: str, voice_url: str, status_callback: str | None, voice_fallback_url: str | None = None
    ) -> dict[str, Any]:
        """Point ``number``'s voice webhook (and status callback) at us. Returns
        {field: (old, new)} for what changed."""
        found = await self._run(
            f"looking up {number}", lambda: self._client.incoming_phone_numbers.list(phone_number=number, limit=2)
        )
        if not found:
            raise TwilioRestError(f"{number} is not a phone number of account {self.account_sid}")
        pn = found[0]
        wanted: dict[str, Any] = {"voice_url": voice_url, "voice_method": "POST"}
        if status_callback:
            wanted["status_callback"] = status_callback
            wanted["status_callback_method"] = "POST"
        if voice_fallback_url:
            wanted["voice_fallback_url"] = voice_fallback_url
            wanted["voice_fallback_method"] = "POST"
        changes = {k: (getattr(pn, k, None), v) for k, v in wanted.items() if getattr(pn, k, None) != v}
        if changes:
            await self._run(f"updating {number}", lambda: self._client.incoming_phone_numbers(pn.sid).update(**wanted))
        return changes
