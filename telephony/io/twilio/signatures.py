"""Twilio request signatures (``X-Twilio-Signature``) and the URL Twilio signed."""

from __future__ import annotations

from typing import Any

from twilio.request_validator import RequestValidator, get_signature_algorithm

from ...config import Settings

__all__ = ["FormParams", "Signatures"]


class FormParams(dict[str, list[str]]):
    """A form's fields, each with all its values: what ``RequestValidator`` reads
    through ``getall`` so a key sent twice is signed the way Twilio signs it
    (every value, sorted)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


class Signatures:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        self._validator = RequestValidator(token) if token else None
        self._shared_keys = {
            k: RequestValidator(v.get_secret_value()) for k, v in settings.twilio_webhook_shared_keys.items()
        }

    def origin(self, scheme: str, headers: Any, netloc: str) -> str:
        """The origin Twilio used to reach us (``PUBLIC_URL`` when set)."""
        if self.settings.public_url:
            return self.settings.public_url
        if self.settings.trust_forwarded_headers:
            proto = (headers.get("x-forwarded-proto") or scheme).split(",")[0].strip()
            host = (headers.get("x-forwarded-host") or headers.get("host") or netloc).split(",")[0].strip()
        else:
            proto, host = scheme, headers.get("host") or netloc
        proto = {"ws": "http", "wss": "https"}.get(proto, proto)
        return f"{proto}://{host}"

    def valid(self, url: str, params: dict[str, Any], headers: Any) -> bool:
        """HMAC-SHA1 with the auth token, or, when ``X-Twilio-Webhooks-Signature-Settings``
        names a shared key, that key's secret with the algorithm it names
        (HMAC-SHA256), as the twilio library does."""
        if not self.settings.signatures_required:
            return True
        signature = headers.get("x-twilio-signature")
        if not signature:
            return False
        sig_settings = headers.get("x-twilio-webhooks-signature-settings")
        validator = self._validator
        algorithm = None
        if sig_settings:
            key = next(
                (p.partition("=")[2].strip() for p in sig_settings.split(",") if p.partition("=")[0].strip() == "key"),
                "",
            )
            validator = self._shared_keys.get(key)
            algorithm = get_signature_algorithm(sig_settings)
        if validator is None:
            return False
        form = FormParams({k: list(v) if isinstance(v, (list, tuple)) else [str(v)] for k, v in params.items()})
        try:
            return bool(validator.validate(url, form, signature, algorithm))
        except Exception:
            return False
