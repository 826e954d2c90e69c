"""Settings, from the environment and an optional ``.env`` file.

Unprefixed: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``TWILIO_ACCOUNT_SID``,
``TWILIO_AUTH_TOKEN``, ``TWILIO_API_BASE_URL``, ``PUBLIC_URL``. Everything about
the agent and the server has a ``TELEPHONY_`` prefix (``TELEPHONY_MODEL``...).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .wording import APOLOGY, DEFAULT_INSTRUCTIONS

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_MODEL",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "McpServer",
    "Settings",
    "env_example",
    "takes_reasoning",
]

#: The newest GA Realtime model the ``openai`` SDK lists without a deprecation note.
DEFAULT_MODEL = "gpt-realtime-2.1"
#: Input transcription: not one announced for shutdown (whisper-1 and the gpt-4o
#: transcribe models end on 2027-02-26); the recommended model for live audio.
DEFAULT_TRANSCRIPTION_MODEL = "gpt-live-transcribe"
#: Realtime models that take ``reasoning`` and ``parallel_tool_calls``.
REASONING_MODEL_PREFIXES = ("gpt-realtime-2",)

Effort = Literal["minimal", "low", "medium", "high", "xhigh"]


def takes_reasoning(model: str) -> bool:
    return model.startswith(REASONING_MODEL_PREFIXES)


class McpServer(BaseModel):
    """A remote MCP server the Realtime API calls itself (a ``type: "mcp"`` tool)."""

    model_config = ConfigDict(extra="forbid")

    server_label: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    server_url: str = Field(pattern=r"^https?://")
    server_description: str | None = None
    headers: dict[str, str] | None = None
    authorization: str | None = None
    allowed_tools: list[str] | dict[str, Any] | None = None
    require_approval: Literal["always", "never"] | dict[str, Any] | None = None

    def tool(self) -> dict[str, Any]:
        """The ``session.tools`` entry."""
        return {"type": "mcp", **self.model_dump(exclude_none=True)}


#: The Realtime API's built-in voices: a closed list (the ``openai`` SDK's
#: ``RealtimeAudioConfigOutput.voice`` literals; tests/test_settings_start.py keeps them equal).
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"\+[1-9]\d{6,14}")


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

    # --- the agent ---
    model: str = DEFAULT_MODEL
    #: a built-in voice name, or a custom voice as JSON: {"id": "voice_1234"}
    voice: str | dict[str, str] = "marin"
    speed: float = Field(1.0, ge=0.25, le=1.5)
    instructions: str = DEFAULT_INSTRUCTIONS
    greeting: str | None = None
    turn_detection: Literal["server_vad", "semantic_vad", "none"] = "server_vad"
    vad_threshold: float = Field(0.5, ge=0.0, le=1.0)
    vad_prefix_padding_ms: int = Field(300, ge=0)
    vad_silence_ms: int = Field(500, ge=0)
    vad_eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    idle_timeout_ms: int | None = None
    transcription_model: str | None = DEFAULT_TRANSCRIPTION_MODEL
    transcription_language: str | None = None
    #: possible languages (ISO-639-1), JSON list (gpt-transcribe, gpt-live-transcribe)
    transcription_languages: list[str] | None = None
    #: words to expect, JSON list (gpt-transcribe, gpt-live-transcribe)
    transcription_keywords: list[str] | None = None
    transcription_prompt: str | None = None
    #: latency vs accuracy (gpt-realtime-whisper only)
    transcription_delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None
    noise_reduction: Literal["near_field", "far_field", "none"] = "none"
    noise_reduction_strength: float | None = Field(None, ge=0.0)
    #: 1-4096 tokens per response, or "inf" (the API's default)
    max_output_tokens: int | Literal["inf"] | None = None
    #: reasoning models only (gpt-realtime-2 family); ignored for the others
    reasoning_effort: Effort | None = None
    #: reasoning models only; unset: the API's default
    parallel_tool_calls: bool | None = None
    #: "auto", "none", "required", or JSON such as {"type": "function", "name": "lookup"}
    tool_choice: str | dict[str, Any] = "auto"
    #: "auto", "disabled", or JSON such as {"type": "retention_ratio", "retention_ratio": 0.8}
    truncation: str | dict[str, Any] = "auto"
    #: a stored prompt, JSON: {"id": "pmpt_...", "version": "3", "variables": {...}}
    prompt: dict[str, Any] | None = None
    #: "auto" or JSON {"workflow_name": ..., "group_id": ..., "metadata": {...}}; unset: no tracing
    tracing: str | dict[str, Any] | None = None
    #: extra server outputs, JSON list: ["item.input_audio_transcription.logprobs"]
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None
    #: the model answers by itself at the end of a caller turn (turn detection)
    create_response: bool = True
    #: the caller's speech cuts the model's answer (turn detection)
    interrupt_response: bool = True
    #: while the agent speaks, caller sounds shorter than this (ms) do not interrupt it: the
    #: bridge decides (local VAD + the server's speech_started); 0 = the server cuts at once
    barge_in_min_ms: int = Field(400, ge=0, le=5000)
    #: remove the agent's own voice (speakerphone echo) from the caller's audio; off by default:
    #: ~120 µs per frame while the agent speaks and 1.3-3.1 s to reach 30 dB (README: Real phone lines)
    echo_cancellation: bool = False
    #: false: the greeting plays in full, the caller cannot cut it (with barge_in_min_ms > 0)
    greeting_interruptible: bool = True
    #: a tool running this long (ms) with nothing playing: the caller hears the hold sound
    hold_after_ms: int = Field(1000, ge=0, le=60000)
    #: "builtin" (a soft synthesised loop), "off", or the path of a WAV file
    hold_sound: str = "builtin"
    #: a ``instructions`` stream parameter (outbound calls) replaces the instructions
    allow_instruction_override: bool = True

    # --- tools, agents and call control ---
    tools: str | None = None
    #: the agent that answers (an Agent's name in the --tools module)
    agent: str | None = None
    #: the agent by the called number, JSON: {"+15551230000": "billing"}
    agents_by_number: dict[str, str] = Field(default_factory=dict)
    #: how long the module's route(ctx) may take before the default agent answers
    route_timeout: float = Field(2.0, gt=0)
    #: remote MCP servers offered to every agent, JSON list of
    #: {server_label, server_url, headers?, authorization?, allowed_tools?, require_approval?}
    mcp_servers: list[McpServer] = Field(default_factory=list)
    #: how the bridge answers the API's MCP approval requests (no human is on hand)
    mcp_approval: Literal["approve", "deny"] = "deny"
    tool_timeout: float = Field(10.0, gt=0)
    enable_end_call: bool = False
    #: offer the built-in send_dtmf tool (keypad tones into the call, for phone menus)
    enable_send_dtmf: bool = False
    transfer_number: str | None = None
    transfer_directory: dict[str, str] = Field(default_factory=dict)
    #: caller ID for outbound calls and transfers (`telephony call --from` overrides)
    from_number: str | None = None
    #: the number's voice fallback (`telephony configure`): Twilio asks it when the webhook
    #: fails; best on another host (a TwiML Bin); unset: PUBLIC_URL/voice-fallback
    voice_fallback_url: str | None = None
    #: when the bridge ends a call by closing its stream and Twilio has not gone on within
    #: this many seconds (no /stream-ended, no completed status), hang up by REST (0 = off)
    hangup_fallback_seconds: float = Field(5.0, ge=0)
    #: call recording: off, or Twilio's dual-channel recording through the REST API
    recording: Literal["off", "local", "twilio"] = "off"
    #: where local recordings go (one <CallSid>.wav per call)
    recordings_dir: Path = Path("recordings")
    #: local recordings older than this many days are deleted (0 = kept)
    recordings_retention_days: float = Field(0.0, ge=0)
    #: said before anything else when recording (e.g. "This call is recorded.")
    recording_notice: str | None = None
    #: answering-machine detection on outbound calls (`telephony call --amd` per call)
    amd: bool = False
    #: the greeting waits at most this long for the verdict (then: a person)
    amd_wait_seconds: float = Field(10.0, gt=0, le=60)
    #: left on an answering machine (a text or an instruction, like the greeting); unset: hang up
    voicemail_message: str | None = None
    #: what a "fax" / "unknown" verdict does
    amd_fax: Literal["greet", "hangup"] = "hangup"
    amd_unknown: Literal["greet", "hangup"] = "greet"
    #: warm transfers: the directory names (or "*" for every target) whose human first hears
    #: the model's summary and presses 1 to accept
    transfer_warm: list[str] = Field(default_factory=list)
    #: seconds a transfer rings before it comes back to the agent (`<Dial timeout>`)
    transfer_ring_seconds: int = Field(25, ge=5, le=600)
    #: caller ID shown to the transfer's human; unset: the business's number (the called
    #: number of an inbound call, the calling number of an outbound one)
    transfer_caller_id: str | None = None
    #: how long a transferred call's conversation is kept in this process for its return
    transfer_keep_seconds: float = Field(900.0, gt=0)

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

    @field_validator("prices")
    @classmethod
    def _prices(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        from .pricing import Prices

        Prices(v)  # unknown kinds are refused by name
        return v

    # --- checked at start (issue 12): each error names the setting and the fix ---

    @field_validator("transfer_number")
    @classmethod
    def _transfer_number(cls, v: str | None) -> str | None:
        if v is not None and not E164.fullmatch(v):
            raise ValueError(
                f"TELEPHONY_TRANSFER_NUMBER {v!r} is not E.164: write it as +<country><number>, e.g. +14155550100"
            )
        return v

    @field_validator("transfer_caller_id")
    @classmethod
    def _transfer_caller_id(cls, v: str | None) -> str | None:
        if v is not None and not E164.fullmatch(v):
            raise ValueError(
                f"TELEPHONY_TRANSFER_CALLER_ID {v!r} is not E.164: write it as +<country><number>, e.g. +14155550100"
            )
        return v

    @field_validator("hold_sound")
    @classmethod
    def _hold_sound(cls, v: str) -> str:
        from .audio.hold import hold_sound

        hold_sound(v)  # a WAV path is read now: an unreadable one fails at start, not per call
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

    @field_validator(
        "transcription_model",
        "greeting",
        "transfer_number",
        "tools",
        "agent",
        "transcription_prompt",
        "transcription_delay",
        "reasoning_effort",
        "tracing",
        "prompt",
        "max_output_tokens",
        "noise_reduction_strength",
        "parallel_tool_calls",
        "transcription_languages",
        "transcription_keywords",
        "include",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("voice", "tool_choice", "truncation", "tracing", mode="before")
    @classmethod
    def _json_object(cls, v: Any) -> Any:
        """A value that is a name or a JSON object: parse the object."""
        if isinstance(v, str) and v.lstrip().startswith("{"):
            try:
                return json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc}") from exc
        return v

    @field_validator("max_output_tokens")
    @classmethod
    def _max_output_tokens(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int) and not 1 <= v <= 4096:
            raise ValueError("must be 1-4096 or 'inf'")
        return v

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, v: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(v, str) and v not in ("auto", "none", "required"):
            raise ValueError('must be "auto", "none", "required" or a JSON object')
        if isinstance(v, dict) and (
            v.get("type") not in ("function", "mcp") or not isinstance(v.get("name") or v.get("server_label"), str)
        ):
            raise ValueError(
                'a JSON tool_choice is {"type": "function", "name": ...} or {"type": "mcp", "server_label": ...}'
            )
        return v

    @field_validator("truncation")
    @classmethod
    def _truncation(cls, v: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(v, str) and v not in ("auto", "disabled"):
            raise ValueError('must be "auto", "disabled" or a JSON retention_ratio object')
        if isinstance(v, dict):
            ratio = v.get("retention_ratio")
            if v.get("type") != "retention_ratio" or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
                raise ValueError('JSON truncation is {"type": "retention_ratio", "retention_ratio": 0.0-1.0}')
        return v

    @field_validator("tracing")
    @classmethod
    def _tracing(cls, v: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(v, str) and v != "auto":
            raise ValueError('must be "auto" or a JSON object')
        return v

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and (not isinstance(v.get("id"), str) or set(v) - {"id", "version", "variables"}):
            raise ValueError('a prompt is JSON {"id": "pmpt_...", "version"?: "...", "variables"?: {...}}')
        return v

    @field_validator("voice")
    @classmethod
    def _voice(cls, v: str | dict[str, str]) -> str | dict[str, str]:
        if isinstance(v, dict):
            if set(v) != {"id"} or not isinstance(v["id"], str):
                raise ValueError('a custom voice is JSON {"id": "voice_..."}')
        elif v not in VOICES:
            raise ValueError(
                f"TELEPHONY_VOICE {v!r} is not a Realtime voice; use one of: {', '.join(VOICES)}, "
                'or a custom voice as JSON {"id": "voice_..."}'
            )
        return v

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
            self.database_url,
            self.stream_secret,
            *self.twilio_webhook_shared_keys.values(),
        ):
            if s is not None and s.get_secret_value():
                out.append(s.get_secret_value())
        for server in self.mcp_servers:  # MCP credentials never reach a log line
            out += [v for v in (server.authorization, *(server.headers or {}).values()) if v]
        return out


def env_name(name: str) -> str:
    """The environment variable of the setting ``name`` (``TELEPHONY_<NAME>``, or its alias)."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"TELEPHONY_{name.upper()}"


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"))
    text = str(value)
    return json.dumps(text) if any(c in text for c in "\n\"'# ") else text


def _field_comments() -> dict[str, list[str]]:
    """The ``#:`` comments above each field of ``Settings`` in this file."""
    import inspect

    out: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in inspect.getsource(Settings).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match and match.group(1) in Settings.model_fields and not stripped.startswith("def "):
            out[match.group(1)] = pending
        pending = []
    return out


def env_example() -> str:
    """The text of ``.env.example``: every setting, commented out at its default, with
    the comment its field has (the README's settings table says more)."""
    comments = _field_comments()
    lines = [
        "# Every setting of `telephony serve`, at its default (see the README's settings table).",
        "# Copy to .env (read from the working directory) and uncomment what you change.",
        "# Generated from telephony.config.Settings by:",
        "#   python -c 'from telephony.config import env_example; print(env_example(), end=\"\")' > .env.example",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        lines.append("")
        lines += [f"# {c}" for c in comments.get(name, [])]
        lines.append(f"# {env_name(name)}={_env_value(default)}")
    return "\n".join(lines) + "\n"
