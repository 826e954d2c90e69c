"""Settings, from the environment and an optional ``.env`` file.

Unprefixed: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``TWILIO_ACCOUNT_SID``,
``TWILIO_AUTH_TOKEN``, ``TWILIO_API_BASE_URL``, ``PUBLIC_URL``. Everything about
the agent and the server has a ``TELEPHONY_`` prefix (``TELEPHONY_MODEL``...).
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .wording import APOLOGY, DEFAULT_INSTRUCTIONS

__all__ = ["DEFAULT_INSTRUCTIONS", "DEFAULT_MODEL", "Settings"]

DEFAULT_MODEL = "gpt-realtime-1.5"
#: The Realtime API's built-in voices: a closed list (the ``openai`` SDK's
#: ``RealtimeAudioConfigOutput.voice`` literals; tests/test_settings_start.py keeps them equal).
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"\+[1-9]\d{6,14}")


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
    #: a failed or incomplete response is asked for again this many times in a row
    response_retries: int = Field(2, ge=0, le=10)
    #: silence after the caller's turn before the agent is asked again, then the call handed on (0 = off)
    dead_air_seconds: float = Field(4.0, ge=0)
    max_message_bytes: int = Field(64 * 1024, ge=1024)
    trust_forwarded_headers: bool = False
    #: SQLite file for call records ("" turns recording off)
    records_path: str = "telephony-calls.db"
    #: bearer token for GET /calls (unset: those endpoints answer 403)
    api_token: SecretStr | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

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

    # --- checked at start (issue 12): each error names the setting and the fix ---

    @field_validator("voice")
    @classmethod
    def _voice(cls, v: str) -> str:
        if v not in VOICES:
            raise ValueError(f"TELEPHONY_VOICE {v!r} is not a Realtime voice; use one of: {', '.join(VOICES)}")
        return v

    @field_validator("transfer_number")
    @classmethod
    def _transfer_number(cls, v: str | None) -> str | None:
        if v is not None and not E164.fullmatch(v):
            raise ValueError(
                f"TELEPHONY_TRANSFER_NUMBER {v!r} is not E.164: write it as +<country><number>, e.g. +14155550100"
            )
        return v

    @field_validator("transfer_directory")
    @classmethod
    def _transfer_directory(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {name: number for name, number in v.items() if not E164.fullmatch(str(number))}
        if bad:
            raise ValueError(
                f"TELEPHONY_TRANSFER_DIRECTORY entries are not E.164 numbers: {bad}; "
                'write each as +<country><number>, e.g. {"billing": "+14155550100"}'
            )
        return v

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

    @field_validator("turn_detection")
    @classmethod
    def _turn_detection(cls, v: str) -> str:
        if v == "none":
            raise ValueError(
                "TELEPHONY_TURN_DETECTION=none is not supported on phone calls (nothing would commit the "
                "caller's audio or ask for an answer: the agent would be deaf); use server_vad or semantic_vad"
            )
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"TELEPHONY_LOG_LEVEL {v!r} is not a level name; use one of: {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("transcription_model", "greeting", "transfer_number", "tools", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

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

    @classmethod
    def unknown_env(cls, environ: dict[str, str]) -> list[str]:
        """Warnings for ``TELEPHONY_*`` variables that are no setting, naming the closest one."""
        known = {f"TELEPHONY_{name.upper()}" for name in cls.model_fields}
        out = []
        for key in sorted(environ):
            if key.upper().startswith("TELEPHONY_") and key.upper() not in known:
                close = difflib.get_close_matches(key.upper(), sorted(known), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]}?" if close else ""
                out.append(f"{key} is not a setting and is ignored{hint}")
        return out

    def secrets(self) -> list[str]:
        out = []
        for s in (
            self.openai_api_key,
            self.twilio_auth_token,
            self.api_token,
            *self.twilio_webhook_shared_keys.values(),
        ):
            if s is not None and s.get_secret_value():
                out.append(s.get_secret_value())
        return out
