"""Settings: the server and its limits, call records, the console, logs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from ..wording import APOLOGY

__all__ = ["LOG_LEVELS", "ServerSettings"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ServerSettings(BaseModel):
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
    #: postgresql://… : keep records in PostgreSQL instead (shared by replicas)
    database_url: SecretStr | None = None
    #: finished calls' records kept in memory while the store is unreachable
    records_buffer: int = Field(1000, ge=1)
    #: how long a record is retried before it is dropped (logged)
    records_retry_seconds: float = Field(3600.0, ge=0)
    #: bearer token for GET /calls (unset: those endpoints answer 403)
    api_token: SecretStr | None = None
    #: how long a console login lasts (hours)
    console_session_hours: float = Field(12.0, gt=0)
    #: failed console logins allowed per client address per minute (then 429 until the minute passes)
    console_login_attempts: int = Field(10, ge=1)
    #: per-model token prices overriding or adding to telephony.pricing.DEFAULT_PRICES (JSON:
    #: {"<model>": {"audio_input": 32.0, ...}}, USD per 1M tokens)
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    #: keypad digits in clear in logs and call records (off: masked, as they may be PINs or
    #: card numbers; the model and ``ctx.dtmf`` get them either way)
    record_dtmf: bool = False
    #: with TELEPHONY_LOG_LEVEL=DEBUG, also a line per WebSocket frame (off: those loggers stay at INFO)
    log_frames: bool = False

    @field_validator("prices")
    @classmethod
    def _prices(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        from ..pricing import Prices

        Prices(v)  # unknown kinds are refused by name
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"TELEPHONY_LOG_LEVEL {v!r} is not a level name; use one of: {', '.join(LOG_LEVELS)}")
        return level
