"""Settings, from the environment and an optional ``.env`` file.

Unprefixed: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``TWILIO_ACCOUNT_SID``,
``TWILIO_AUTH_TOKEN``, ``TWILIO_API_BASE_URL``, ``PUBLIC_URL``. Everything about
the agent and the server has a ``TELEPHONY_`` prefix (``TELEPHONY_MODEL``...).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .wording import APOLOGY, DEFAULT_INSTRUCTIONS

__all__ = ["DEFAULT_INSTRUCTIONS", "DEFAULT_MODEL", "Settings"]

DEFAULT_MODEL = "gpt-realtime-1.5"


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env(name: str) -> Any:
    return Field(validation_alias=AliasChoices(name, name.lower()))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEPHONY_", env_file=".env", extra="ignore", populate_by_name=True)

    # --- credentials and addresses (no prefix) ---
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"))
    openai_base_url: str = Field(
        "https://api.openai.com/v1", validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    twilio_account_sid: str | None = Field(
        None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
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
    public_url: str | None = Field(None, validation_alias=AliasChoices("PUBLIC_URL", "public_url"))

    # --- the agent ---
    model: str = DEFAULT_MODEL
    voice: str = "marin"
    speed: float = Field(1.0, ge=0.25, le=1.5)
    instructions: str = DEFAULT_INSTRUCTIONS
    greeting: str | None = None
    turn_detection: Literal["server_vad", "semantic_vad", "none"] = "server_vad"
    vad_threshold: float = Field(0.5, ge=0.0, le=1.0)
    vad_prefix_padding_ms: int = Field(300, ge=0)
    vad_silence_ms: int = Field(500, ge=0)
    vad_eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    idle_timeout_ms: int | None = None
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    transcription_language: str | None = None
    noise_reduction: Literal["near_field", "far_field", "none"] = "none"
    max_output_tokens: int | None = None
    #: a ``instructions`` stream parameter (outbound calls) replaces the instructions
    allow_instruction_override: bool = True

    # --- tools and call control ---
    tools: str | None = None
    tool_timeout: float = Field(10.0, gt=0)
    enable_end_call: bool = False
    transfer_number: str | None = None
    transfer_directory: dict[str, str] = Field(default_factory=dict)
    #: caller ID for outbound calls and transfers (`telephony call --from` overrides)
    from_number: str | None = None

    # --- server and limits ---
    host: str = "0.0.0.0"
    port: int = 8000
    max_calls: int = Field(100, ge=1)
    workers: int = Field(1, ge=1)
    max_call_seconds: float = Field(0.0, ge=0)
    quiet_timeout: float = Field(20.0, ge=0)
    drain_seconds: float = Field(30.0, ge=0)
    reconnect_attempts: int = Field(5, ge=1)
    reconnect_backoff: float = Field(0.25, ge=0)
    session_rollover_seconds: float = Field(55 * 60, gt=0)
    apology: str = APOLOGY
    max_message_bytes: int = Field(64 * 1024, ge=1024)
    trust_forwarded_headers: bool = False
    #: SQLite file for call records ("" turns recording off)
    records_path: str = "telephony-calls.db"
    #: bearer token for GET /calls (unset: those endpoints answer 403)
    api_token: SecretStr | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    # --- hostile input: proofs and bounds (see README, Security) ---
    #: key of the per-call stream token (unset: derived from TWILIO_AUTH_TOKEN)
    stream_secret: SecretStr | None = None
    #: a stream token issued by /incoming-call is valid this long (outbound calls add 600 s of ring time)
    stream_token_seconds: float = Field(60.0, gt=0)
    #: webhook bodies larger than this are refused (413) before they are read
    max_webhook_bytes: int = Field(64 * 1024, ge=1024)
    #: a request's headers, or a webhook's body, must arrive within this many seconds
    request_timeout: float = Field(10.0, gt=0)
    #: connections whose request headers are still arriving, at most (beyond it the oldest is closed)
    max_pending_connections: int = Field(128, ge=1)
    #: a WebSocket message from Twilio in more fragments than this ends that call (close 1009)
    max_fragments: int = Field(64, ge=1)
    #: media streams still waiting for their ``start``, at most (beyond it the oldest is closed)
    max_pending_streams: int = Field(64, ge=1)
    #: a media stream must send ``start`` within this many seconds of connecting
    start_timeout: float = Field(5.0, gt=0)
    #: caller audio faster than this multiple of real time (over ~2 s) is dropped
    max_audio_rate: float = Field(1.2, ge=1.0)
    #: keypad digits accepted per call, and per second
    max_digits: int = Field(200, ge=1)
    max_digits_per_second: float = Field(10.0, gt=0)
    #: synchronous tools run in their own pool of this many threads, at most this many per call
    tool_threads: int = Field(64, ge=1)
    max_tools_per_call: int = Field(4, ge=1)
    #: allow OPENAI_BASE_URL=http:// to a host other than loopback (the API key then travels in clear)
    allow_insecure_openai_url: bool = False
    #: string fields of a log line are cut at this many characters
    log_max_field: int = Field(2000, ge=80)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("PUBLIC_URL must be an http(s) origin such as https://example.ngrok.app")
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    @field_validator("transcription_model", "greeting", "transfer_number", "tools", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @model_validator(mode="after")
    def _openai_key_not_in_clear(self) -> Settings:
        parts = urlsplit(self.openai_base_url)
        if parts.scheme in ("http", "ws") and not self.allow_insecure_openai_url and not _loopback(parts.hostname):
            raise ValueError(
                f"OPENAI_BASE_URL is {parts.scheme}:// to {parts.hostname}: the API key would travel unencrypted. "
                "Use https://, or set TELEPHONY_ALLOW_INSECURE_OPENAI_URL=true if this is really wanted"
            )
        return self

    # --- derived ---
    @property
    def signatures_required(self) -> bool:
        return self.twilio_auth_token is not None or bool(self.twilio_webhook_shared_keys)

    @property
    def realtime_url(self) -> str:
        """``OPENAI_BASE_URL`` with http->ws, https->wss, plus ``/realtime?model=``."""
        parts = urlsplit(self.openai_base_url.rstrip("/"))
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path + "/realtime", f"model={self.model}", ""))

    def secrets(self) -> list[str]:
        out = []
        for s in (
            self.openai_api_key,
            self.twilio_auth_token,
            self.api_token,
            self.stream_secret,
            *self.twilio_webhook_shared_keys.values(),
        ):
            if s is not None and s.get_secret_value():
                out.append(s.get_secret_value())
        return out
