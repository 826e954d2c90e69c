"""What every call uses: settings, tools, the Realtime connector, Twilio REST.

Handed to each ``CallSession``; tests hand in loopback fakes for the
connector and the REST client.
"""

from __future__ import annotations

from typing import Any

from ..agents import HANDOFF_PREFIX, Agent, Agents, handoff_schema
from ..audio.hold import hold_sound
from ..call import CallConfig
from ..config import McpServer, Settings
from ..errors import TransferTargetError
from ..tools import ToolRegistry
from ..wire import realtime as rt
from ..wire import twilio as tw
from ..wire.session import barge_in_fallback_ms, handoff_config, session_config
from .realtime.client import RealtimeConnector, WebsocketsConnector
from .twilio.callbacks import CallEndings
from .twilio.dial import TransferLedger
from .twilio.rest import TwilioRest, validate_e164
from .twilio.stream_token import StreamTokens

__all__ = ["BUILTIN_TOOLS", "Services", "call_config"]

#: Built-in tools every agent is offered when the settings turn them on.
BUILTIN_TOOLS = frozenset({"end_call", "send_dtmf", "transfer_call"})


class Services:
    def __init__(
        self,
        settings: Settings,
        registry: ToolRegistry,
        connect_realtime: RealtimeConnector | None = None,
        rest: TwilioRest | None = None,
        agents: Agents | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        registry.limit(settings.tool_threads, settings.max_tools_per_call)
        self.agents = agents
        self.mcp_tools = [m.tool() for m in settings.mcp_servers]
        self.tool_schemas: list[dict[str, Any]] = registry.schemas() + self.mcp_tools
        #: agent name -> (its session.tools, the function names it may call)
        self._agent_tools: dict[str, tuple[list[dict[str, Any]], frozenset[str]]] = {}
        if agents is not None:
            for agent in agents.by_name.values():
                self._agent_tools[agent.name] = self._tools_of(agent)
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
        self.streams = StreamTokens(settings, settings.max_remembered_tokens)
        #: conversations of calls ringing a transfer, for their return (this process only)
        self.transfers = TransferLedger(settings.transfer_keep_seconds)
        #: calls whose stream the bridge closed to end them, hung up by REST if that did not end them
        self.endings = CallEndings(settings.hangup_fallback_seconds)

    def _tools_of(self, agent: Agent) -> tuple[list[dict[str, Any]], frozenset[str]]:
        assert self.agents is not None
        schemas: list[dict[str, Any]] = []
        names: set[str] = set()
        for fn in agent.tools:
            t = self.registry.add(fn)  # already there (the loader added it) or added now
            schemas.append(t.schema())
            names.add(t.name)
        for builtin in sorted(BUILTIN_TOOLS):
            found = self.registry.get(builtin)
            if found is not None and found.name not in names:
                schemas.append(found.schema())
                names.add(found.name)
        for target in agent.handoff_names:
            schemas.append(handoff_schema(self.agents[target]))
            names.add(HANDOFF_PREFIX + target)
        mcp = list(self.mcp_tools)
        for server in agent.mcp_servers:
            mcp.append(McpServer.model_validate(dict(server)).tool())
        return schemas + mcp, frozenset(names)

    def agent_tools(self, name: str) -> list[dict[str, Any]]:
        """The ``session.tools`` of the agent called ``name``."""
        return self._agent_tools[name][0]

    def offers(self, agent: Agent | None, name: str) -> bool:
        """Whether ``agent`` (None: no agents defined) was offered the function ``name``."""
        if agent is None:
            return True
        return name in self._agent_tools[agent.name][1]

    def handoff_target(self, agent: Agent | None, name: str) -> Agent | None:
        """The agent a ``handoff_to_<name>`` call from ``agent`` goes to, if it may."""
        if agent is None or self.agents is None or not name.startswith(HANDOFF_PREFIX):
            return None
        target = name[len(HANDOFF_PREFIX) :]
        return self.agents[target] if target in agent.handoff_names else None

    def session_object(
        self, start: tw.Start, agent: Agent | None = None, voice_of: Agent | None = None, minimal: bool = False
    ) -> dict[str, Any]:
        """The ``session`` for this call: ``agent``'s instructions, tools and
        overrides (none: the settings'), the voice of ``voice_of`` (the agent that
        answered: a session keeps its voice); a per-call ``instructions`` parameter
        replaces the first agent's instructions when the settings allow it (the
        bridge only lets a ``start`` this far when its stream token covers it).
        ``minimal``: without the optional fields (sent if the server refuses the full one)."""
        settings = self.settings
        override = start.custom_parameters.get("instructions")
        instructions = override if override and settings.allow_instruction_override else None
        if agent is None:
            return session_config(settings, self.tool_schemas, instructions, minimal=minimal)
        first = voice_of or agent
        overrides = agent.overrides()
        overrides["voice"] = first.voice
        if agent is not first:
            instructions = None  # the override was for the agent that answered
        tools = self._agent_tools[agent.name][0]
        return session_config(
            settings, tools, instructions if instructions is not None else agent.instructions, overrides, minimal
        )

    def session_update(
        self, start: tw.Start, agent: Agent | None = None, voice_of: Agent | None = None, minimal: bool = False
    ) -> str:
        """The ``session.update`` that configures a new session for this call."""
        return rt.session_update(self.session_object(start, agent, voice_of, minimal))

    def handoff_update(self, start: tw.Start, agent: Agent, voice_of: Agent) -> tuple[str, str]:
        """(the ``session.update`` that switches a live session to ``agent``, the
        one that configures a new session as ``agent``)."""
        full = self.session_object(start, agent, voice_of)
        return rt.session_update(handoff_config(full)), rt.session_update(full)

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


def call_config(services: Services) -> CallConfig:
    settings = services.settings
    return CallConfig(
        greeting=settings.greeting,
        quiet_timeout_s=settings.quiet_timeout,
        max_duration_s=settings.max_call_seconds,
        reconnect_attempts=settings.reconnect_attempts,
        reconnect_backoff_s=settings.reconnect_backoff,
        rollover_after_s=settings.session_rollover_seconds,
        mcp_approve=settings.mcp_approval == "approve",
        response_retries=settings.response_retries,
        dead_air_s=settings.dead_air_seconds,
        # interrupt_response=false by choice: the caller never cuts the agent, so no policy either
        barge_in_min_ms=settings.barge_in_min_ms if settings.interrupt_response else 0,
        barge_in_fallback_ms=barge_in_fallback_ms(settings),
        hold_after_s=settings.hold_after_ms / 1000,
        echo_cancellation=settings.echo_cancellation,
        greeting_interruptible=settings.greeting_interruptible,
        hold_sound=hold_sound(settings.hold_sound),
        fallback_transfer=settings.transfer_number if services.rest is not None else None,
        start_timeout_s=settings.start_timeout,
        max_audio_rate=settings.max_audio_rate,
        max_digits=settings.max_digits,
        max_digits_per_s=settings.max_digits_per_second,
        amd_fax=settings.amd_fax,
        amd_unknown=settings.amd_unknown,
    )
