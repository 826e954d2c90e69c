"""The Realtime ``session`` object: what the call's ``session.update`` carries.

Built from the settings once per session (not per frame); the tests validate
it against the ``openai`` SDK's ``RealtimeSessionCreateRequest``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["PCM_24K", "session_config"]

#: The model's audio both ways: PCM16 little-endian mono at 24 kHz.
PCM_24K: dict[str, Any] = {"type": "audio/pcm", "rate": 24000}


def _turn_detection(s: Settings) -> dict[str, Any] | None:
    if s.turn_detection == "server_vad":
        td: dict[str, Any] = {
            "type": "server_vad",
            "threshold": s.vad_threshold,
            "prefix_padding_ms": s.vad_prefix_padding_ms,
            "silence_duration_ms": s.vad_silence_ms,
            "create_response": True,
            "interrupt_response": True,
        }
        if s.idle_timeout_ms:
            td["idle_timeout_ms"] = s.idle_timeout_ms
        return td
    if s.turn_detection == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": s.vad_eagerness,
            "create_response": True,
            "interrupt_response": True,
        }
    return None


def session_config(
    s: Settings, tools: list[dict[str, Any]], instructions: str | None = None, minimal: bool = False
) -> dict[str, Any]:
    """The ``session`` object of the call's ``session.update``; ``instructions``
    replaces the configured ones (a verified per-call override). ``minimal``
    keeps what the call cannot work without (formats, turn detection,
    instructions, tools) and drops the optional rest (voice, speed,
    transcription, noise reduction, max_output_tokens): the retry after a refusal."""
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
    if s.transcription_model:
        transcription: dict[str, Any] = {"model": s.transcription_model}
        if s.transcription_language:
            transcription["language"] = s.transcription_language
        audio_in["transcription"] = transcription
    if s.noise_reduction != "none":
        audio_in["noise_reduction"] = {"type": s.noise_reduction}
    session: dict[str, Any] = {
        "type": "realtime",
        "model": s.model,
        "output_modalities": ["audio"],
        "instructions": instructions if instructions is not None else s.instructions,
        "audio": {"input": audio_in, "output": {"format": dict(PCM_24K), "voice": s.voice, "speed": s.speed}},
        "tools": tools,
        "tool_choice": "auto",
    }
    if s.max_output_tokens:
        session["max_output_tokens"] = s.max_output_tokens
    return session
