"""The environment's view of ``Settings``: each setting's variable name, and
the text of ``.env.example`` (every setting at its default, with its comment)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import AliasChoices, SecretStr

from .settings import PARTS, Settings

__all__ = ["env_example", "env_name"]


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
    """The ``#:`` comments above each field of ``Settings``, in its parts' sources."""
    import inspect

    out: dict[str, list[str]] = {}
    pending: list[str] = []
    lines = [line for part in PARTS for line in inspect.getsource(part).splitlines()]
    for line in lines:
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
        "#   python -m telephony.config > .env.example",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        lines.append("")
        lines += [f"# {c}" for c in comments.get(name, [])]
        lines.append(f"# {env_name(name)}={_env_value(default)}")
    return "\n".join(lines) + "\n"
