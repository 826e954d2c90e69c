"""Validate what the bridge sends against the ``openai`` SDK's own Realtime
models, unknown keys included, so our fakes cannot drift from the real API."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pydantic
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent


def _models_by_type(union: Any) -> Mapping[str, type[pydantic.BaseModel]]:
    """Event type -> the SDK model for it (the first model naming a type wins)."""
    models: dict[str, type[pydantic.BaseModel]] = {}
    for cls in typing.get_args(typing.get_args(union)[0]):
        for kind in typing.get_args(cls.model_fields["type"].annotation):
            models.setdefault(kind, cls)
    return MappingProxyType(models)


_CLIENT = _models_by_type(RealtimeClientEvent)
_SERVER = _models_by_type(RealtimeServerEvent)

#: Beta-only names the GA API rejects.
BETA_ONLY = frozenset(
    {
        "input_audio_format",
        "output_audio_format",
        "modalities",
        "turn_detection",
        "voice",
        "input_audio_transcription",
        "temperature",
    }
)


def _extras(node: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(node, pydantic.BaseModel):
        for key in node.__pydantic_extra__ or {}:
            found.append(f"{path}.{key}")
        for name in type(node).model_fields:
            found += _extras(getattr(node, name), f"{path}.{name}")
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            found += _extras(v, f"{path}[{i}]")
    elif isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (pydantic.BaseModel, list)):
                found += _extras(v, f"{path}.{k}")
    return found


def validate_client_event(event: dict[str, Any]) -> None:
    """Raise unless ``event`` is a valid GA client event with no unknown keys."""
    kind = event.get("type")
    cls = _CLIENT.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"not a GA client event type: {kind!r}")
    model = cls.model_validate(event)
    extras = _extras(model, kind)
    if extras:
        raise ValueError(f"unknown keys: {extras}")
    if kind == "session.update" and BETA_ONLY & set(event["session"]):
        raise ValueError(f"beta-only session fields: {BETA_ONLY & set(event['session'])}")


def validate_server_event(event: dict[str, Any]) -> None:
    """The fake's own events must be real GA server events too."""
    kind = event.get("type")
    cls = _SERVER.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"not a GA server event type: {kind!r}")
    cls.model_validate(event)
