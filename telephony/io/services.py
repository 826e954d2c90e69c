"""What every call uses: settings, tools, the Realtime connector, Twilio REST.

Handed to each ``CallSession``; tests hand in loopback fakes for the
connector and the REST client.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import TransferTargetError
from ..tools import ToolRegistry
from ..wire import realtime as rt
from ..wire import twilio as tw
from ..wire.session import session_config
from .realtime.client import RealtimeConnector, WebsocketsConnector
from .twilio.rest import TwilioRest, validate_e164
from .twilio.stream_token import StreamTokens

__all__ = ["Services"]


class Services:
    def __init__(
        self,
        settings: Settings,
        registry: ToolRegistry,
        connect_realtime: RealtimeConnector | None = None,
        rest: TwilioRest | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        registry.limit(settings.tool_threads, settings.max_tools_per_call)
        self.tool_schemas: list[dict[str, Any]] = registry.schemas()
        if connect_realtime is None:
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
            connect_realtime = WebsocketsConnector(settings.realtime_url, key)
        self.connect_realtime = connect_realtime
        if rest is None and settings.twilio_account_sid and settings.twilio_auth_token:
            rest = TwilioRest(
                settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(), settings.twilio_api_base_url
            )
        self.rest = rest
        #: per-call stream tokens (issued by the webhook, checked on ``start``)
        self.streams = StreamTokens(settings)

    def session_update(self, start: tw.Start) -> str:
        """The ``session.update`` for this call: a per-call ``instructions``
        parameter replaces the configured ones when the settings allow it (the
        bridge only lets a ``start`` this far when its stream token covers it)."""
        settings = self.settings
        override = start.custom_parameters.get("instructions")
        instructions = override if override and settings.allow_instruction_override else None
        return rt.session_update(session_config(settings, self.tool_schemas, instructions))

    def resolve_transfer_target(self, target: str) -> tuple[str, str]:
        """(E.164 number, label) for a directory name, a number, or '' (the default)."""
        settings = self.settings
        directory = {k.strip().lower(): v for k, v in settings.transfer_directory.items()}
        key = (target or "").strip().lower()
        if key in directory:
            return validate_e164(directory[key]), target.strip()
        if not key and settings.transfer_number:
            return validate_e164(settings.transfer_number), "a colleague"
        if key.startswith("+") and settings.transfer_number is None and not directory:
            return validate_e164(target), target
        if key.startswith("+") and (key in directory.values() or key == settings.transfer_number):
            return validate_e164(target), target
        names = ", ".join(sorted(directory)) or "none"
        raise TransferTargetError(f"unknown transfer target {target!r}; known: {names}")
