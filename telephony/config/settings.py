"""``Settings``: every setting, from the environment and an optional ``.env`` file.

One pydantic model made of one part per concern (each a module of this package,
with its fields' comments and checks): addresses and credentials, the agent,
tools and call control, the server and its limits, hostile input. Checks that
span parts (an empty value is unset; the API key never travels in clear) and
what is derived from several settings are here.
"""

from __future__ import annotations

import difflib
import ipaddress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .addresses import AddressSettings
from .agent import AgentSettings
from .calls import CallSettings
from .security import SecuritySettings
from .server import ServerSettings

__all__ = ["PARTS", "Settings"]


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# pydantic orders the fields from the last base to the first: the parts are listed
# in reverse, so the fields (and .env.example, and the README's table) keep the
# order addresses, agent, call control, server, hostile input.
class Settings(SecuritySettings, ServerSettings, CallSettings, AgentSettings, AddressSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEPHONY_", env_file=".env", extra="ignore", populate_by_name=True)

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


#: the parts of ``Settings``, in the order of their fields
PARTS: tuple[type, ...] = (AddressSettings, AgentSettings, CallSettings, ServerSettings, SecuritySettings)
