"""Settings: hostile input, its proofs and bounds (see the README, Security)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

__all__ = ["SecuritySettings"]


class SecuritySettings(BaseModel):
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
    #: bytes we wrote to a media socket that its peer has not read (e.g. pongs to a ping flood);
    #: beyond it the connection is dropped
    max_unsent_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024)
    #: used stream tokens remembered (to refuse a replay) until they expire, at most
    max_remembered_tokens: int = Field(100_000, ge=1000)
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
