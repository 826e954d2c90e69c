"""Settings: the agent (model, voice, turn detection, transcription, the
session's options) and how it sounds on the line (barge-in, echo, hold sound).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from ..wording import DEFAULT_INSTRUCTIONS

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "REASONING_MODEL_PREFIXES",
    "VOICES",
    "AgentSettings",
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


#: The Realtime API's built-in voices: a closed list (the ``openai`` SDK's
#: ``RealtimeAudioConfigOutput.voice`` literals; tests/test_settings_start.py keeps them equal).
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


class AgentSettings(BaseModel):
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
    #: remove the agent's own voice (speakerphone echo) from the caller's audio: 30 dB within
    #: 0.3-1.2 s on the test echo paths, a line without echo untouched (README: Real phone lines)
    echo_cancellation: bool = True
    #: false: the greeting plays in full, the caller cannot cut it (with barge_in_min_ms > 0)
    greeting_interruptible: bool = True
    #: a tool running this long (ms) with nothing playing: the caller hears the hold sound
    hold_after_ms: int = Field(1000, ge=0, le=60000)
    #: "builtin" (a soft synthesised loop), "off", or the path of a WAV file
    hold_sound: str = "builtin"
    #: a ``instructions`` stream parameter (outbound calls) replaces the instructions
    allow_instruction_override: bool = True

    @field_validator("hold_sound")
    @classmethod
    def _hold_sound(cls, v: str) -> str:
        from ..audio.hold import hold_sound

        hold_sound(v)  # a WAV path is read now: an unreadable one fails at start, not per call
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
