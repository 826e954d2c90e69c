"""Settings: credentials and addresses (OpenAI, Twilio, this server's public origin).

These have no ``TELEPHONY_`` prefix: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``, ``TWILIO_WEBHOOK_SHARED_KEYS``,
``TWILIO_API_BASE_URL``, ``PUBLIC_URL``.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator

__all__ = ["AddressSettings"]


class AddressSettings(BaseModel):
    #: your OpenAI API key (required by `serve`)
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"))
    openai_base_url: str = Field(
        "https://api.openai.com/v1", validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    #: for REST actions (outbound calls, transfers, `telephony configure`)
    twilio_account_sid: str | None = Field(
        None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
    #: checks Twilio's signatures (unset: NOT checked, and `serve` warns loudly)
    twilio_auth_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )
    #: HMAC-SHA256 shared keys: {"<key id>": "<secret>"}, for requests that carry
    #: X-Twilio-Webhooks-Signature-Settings (the auth token signs the others)
    twilio_webhook_shared_keys: dict[str, SecretStr] = Field(
        default_factory=dict, validation_alias=AliasChoices("TWILIO_WEBHOOK_SHARED_KEYS", "twilio_webhook_shared_keys")
    )
    twilio_api_base_url: str | None = Field(
        None, validation_alias=AliasChoices("TWILIO_API_BASE_URL", "twilio_api_base_url")
    )
    #: this server's public https:// origin, as Twilio reaches it (signatures are checked against it)
    public_url: str | None = Field(None, validation_alias=AliasChoices("PUBLIC_URL", "public_url"))

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("PUBLIC_URL must be an http(s) origin such as https://example.ngrok.app")
        if parts.path.strip("/") or parts.query or parts.fragment:
            # Twilio signs the full URL it calls: a path here would be added to every
            # route's and never match what Twilio signed.
            raise ValueError(
                f"PUBLIC_URL must be an origin without a path (got path {parts.path!r}): "
                f"set it to {parts.scheme}://{parts.netloc}"
            )
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))

    @field_validator("openai_base_url")
    @classmethod
    def _openai_base_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname or parts.query:
            raise ValueError(
                f"OPENAI_BASE_URL {v!r} is not an http(s) URL without a query: "
                "use e.g. https://api.openai.com/v1 (or unset it)"
            )
        return v
