"""The Realtime ``session`` object: what the call's ``session.update`` carries.

Built from the settings once per session (not per frame), with an agent's
overrides on top; the tests validate it against the ``openai`` SDK's
``RealtimeSessionCreateRequest``. ``create_response`` and ``interrupt_response``
of turn detection come from here and only here (``turn_options``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["HANDOFF_FIELDS", "PCM_24K", "handoff_config", "session_config", "turn_options"]

#: The model's audio both ways: PCM16 little-endian mono at 24 kHz.
PCM_24K: dict[str, Any] = {"type": "audio/pcm", "rate": 24000}

#: What a handoff's ``session.update`` may change on a live session: not the model
#: (fixed per session), not the audio (the voice cannot change once the model has
#: spoken), not tracing (fixed once enabled).
HANDOFF_FIELDS = (
    "instructions",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "reasoning",
    "parallel_tool_calls",
    "prompt",
)


def turn_options(s: Settings) -> dict[str, bool]:
    """Whether the model answers by itself at the end of the caller's turn, and
    whether the caller's speech cuts its answer: the one place these are decided.
    With a barge-in minimum (``barge_in_min_ms``) the server must not cut the answer
    itself: the bridge interrupts once the caller has spoken that long."""
    return {
        "create_response": s.create_response,
        "interrupt_response": s.interrupt_response and not s.barge_in_min_ms,
    }


def barge_in_fallback_ms(s: Settings) -> int | None:
    """With the barge-in policy on, how long the server's turn detection must have
    heard the caller before its word alone interrupts the agent (the local detector
    not having confirmed): longer than any backchannel, whose ``speech_stopped``
    comes after the minimum plus the silence window. None: no fallback (policy off,
    or semantic turn detection, whose end of turn has no fixed bound)."""
    if not (s.interrupt_response and s.barge_in_min_ms) or s.turn_detection != "server_vad":
        return None
    return s.barge_in_min_ms + s.vad_silence_ms + 200


def _turn_detection(s: Settings) -> dict[str, Any] | None:
    if s.turn_detection == "server_vad":
        td: dict[str, Any] = {
            "type": "server_vad",
            "threshold": s.vad_threshold,
            "prefix_padding_ms": s.vad_prefix_padding_ms,
            "silence_duration_ms": s.vad_silence_ms,
            **turn_options(s),
        }
        if s.idle_timeout_ms:
            td["idle_timeout_ms"] = s.idle_timeout_ms
        return td
    if s.turn_detection == "semantic_vad":
        return {"type": "semantic_vad", "eagerness": s.vad_eagerness, **turn_options(s)}
    return None


def _transcription(s: Settings) -> dict[str, Any] | None:
    if not s.transcription_model:
        return None
    out: dict[str, Any] = {"model": s.transcription_model}
    if s.transcription_language:
        out["language"] = s.transcription_language
    if s.transcription_languages:
        out["languages"] = list(s.transcription_languages)
    if s.transcription_keywords:
        out["keywords"] = list(s.transcription_keywords)
    if s.transcription_prompt:
        out["prompt"] = s.transcription_prompt
    if s.transcription_delay:
        out["delay"] = s.transcription_delay
    return out


def session_config(
    s: Settings,
    tools: list[dict[str, Any]],
    instructions: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    minimal: bool = False,
) -> dict[str, Any]:
    """The ``session`` object of the call's ``session.update``; ``instructions``
    replaces the configured ones (an agent's, or a verified per-call override);
    ``overrides`` are an agent's own values (``voice``, ``speed``,
    ``reasoning_effort``, ``tool_choice``, ``max_output_tokens``, ``prompt``),
    ``None`` meaning "as configured". ``minimal`` keeps what the call cannot work
    without (formats, turn detection, instructions, tools) and drops the optional
    rest (voice, speed, transcription, noise reduction, max_output_tokens...): the
    retry after the server refused the full update."""
    from ..config import takes_reasoning

    o = {k: v for k, v in (overrides or {}).items() if v is not None}
    audio_in: dict[str, Any] = {"format": dict(PCM_24K), "turn_detection": _turn_detection(s)}
    if minimal:
        return {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": instructions if instructions is not None else s.instructions,
            "audio": {"input": audio_in, "output": {"format": dict(PCM_24K)}},
            "tools": tools,
            "tool_choice": "auto",
        }
    transcription = _transcription(s)
    if transcription is not None:
        audio_in["transcription"] = transcription
    if s.noise_reduction != "none":
        nr: dict[str, Any] = {"type": s.noise_reduction}
        if s.noise_reduction_strength is not None:
            nr["strength"] = s.noise_reduction_strength
        audio_in["noise_reduction"] = nr
    voice = o.get("voice", s.voice)
    session: dict[str, Any] = {
        "type": "realtime",
        "model": s.model,
        "output_modalities": ["audio"],
        "instructions": instructions if instructions is not None else s.instructions,
        "audio": {
            "input": audio_in,
            "output": {
                "format": dict(PCM_24K),
                "voice": dict(voice) if isinstance(voice, Mapping) else voice,
                "speed": o.get("speed", s.speed),
            },
        },
        "tools": tools,
        "tool_choice": o.get("tool_choice", s.tool_choice),
        "truncation": s.truncation,
    }
    max_tokens = o.get("max_output_tokens", s.max_output_tokens)
    if max_tokens is not None:
        session["max_output_tokens"] = max_tokens
    if takes_reasoning(s.model):
        effort = o.get("reasoning_effort", s.reasoning_effort)
        if effort is not None:
            session["reasoning"] = {"effort": effort}
        if s.parallel_tool_calls is not None:
            session["parallel_tool_calls"] = s.parallel_tool_calls
    prompt = o.get("prompt", s.prompt)
    if prompt is not None:
        session["prompt"] = prompt
    if s.tracing is not None:
        session["tracing"] = s.tracing
    if s.include:
        session["include"] = list(s.include)
    return session


def handoff_config(full: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a session object a live session may take at a handoff."""
    return {"type": "realtime", **{k: full[k] for k in HANDOFF_FIELDS if k in full}}
