"""Agents: several prompts with their own tools on one bridge, and handoffs.

``Agent`` is what a ``--tools`` module declares; ``Agents`` is the set the
loader found, with the rules for which agent answers a call:

1. the module's ``route(ctx) -> Agent | str`` when there is one (sync or async,
   at most ``TELEPHONY_ROUTE_TIMEOUT``; an error or a timeout falls back, logged);
2. ``TELEPHONY_AGENTS_BY_NUMBER`` by the called number (``To``);
3. the default: ``TELEPHONY_AGENT``, else the agent named ``default``, else the
   only one (several and none chosen is refused at start).

An agent's ``handoffs`` are offered to the model as ``handoff_to_<name>`` tools.
The model cannot change within a session and the voice cannot change once the
model has spoken, so a handoff keeps both (``wire.session.HANDOFF_FIELDS``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .logs import log_event

if TYPE_CHECKING:
    from .tools.context import CallContext

__all__ = ["HANDOFF_PREFIX", "Agent", "Agents", "handoff_schema"]

log = logging.getLogger("telephony.agents")

HANDOFF_PREFIX = "handoff_to_"
_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,50}$")


@dataclass(eq=False)
class Agent:
    """One agent: its instructions, its tools (``@tool`` functions), the agents
    it may hand the caller to, its remote MCP servers (dicts as in
    ``TELEPHONY_MCP_SERVERS``) and per-agent session overrides (``None``: as
    configured). ``voice`` only counts for the agent that answers the call."""

    name: str
    instructions: str
    tools: Sequence[Callable[..., Any]] = ()
    handoffs: Sequence[Agent | str] = ()
    voice: str | dict[str, str] | None = None
    speed: float | None = None
    reasoning_effort: str | None = None
    tool_choice: str | dict[str, Any] | None = None
    max_output_tokens: int | str | None = None
    prompt: dict[str, Any] | None = None
    mcp_servers: Sequence[Mapping[str, Any]] = ()
    description: str = ""
    _handoff_names: tuple[str, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(f"agent name {self.name!r}: use 1-50 letters, digits, '_' or '-'")

    def overrides(self) -> dict[str, Any]:
        return {
            "voice": self.voice,
            "speed": self.speed,
            "reasoning_effort": self.reasoning_effort,
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "prompt": self.prompt,
        }

    @property
    def handoff_names(self) -> tuple[str, ...]:
        """The agents this one may hand over to (resolved by ``Agents``)."""
        return self._handoff_names


def handoff_schema(target: Agent) -> dict[str, Any]:
    """The ``handoff_to_<name>`` function tool."""
    what = target.description or f"the {target.name} agent"
    return {
        "type": "function",
        "name": HANDOFF_PREFIX + target.name,
        "description": f"Hand the caller over to {what}. The conversation continues with that agent.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why, in a few words."}},
            "required": [],
            "additionalProperties": False,
        },
    }


Route = Callable[["CallContext"], Any]

_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")


def _check(a: Agent) -> None:
    """Refuse at start what the API would refuse mid-call."""
    from pydantic import ValidationError

    from .config import McpServer

    where = f"agent {a.name!r}"
    if a.reasoning_effort is not None and a.reasoning_effort not in _EFFORTS:
        raise ConfigError(f"{where}: reasoning_effort must be one of {', '.join(_EFFORTS)}")
    m = a.max_output_tokens
    if m is not None and m != "inf" and not (isinstance(m, int) and 1 <= m <= 4096):
        raise ConfigError(f"{where}: max_output_tokens must be 1-4096 or 'inf'")
    if a.speed is not None and not 0.25 <= a.speed <= 1.5:
        raise ConfigError(f"{where}: speed must be 0.25-1.5")
    if isinstance(a.tool_choice, str) and a.tool_choice not in ("auto", "none", "required"):
        raise ConfigError(f"{where}: tool_choice must be auto, none, required or a dict")
    for server in a.mcp_servers:
        try:
            McpServer.model_validate(dict(server))
        except (ValidationError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: bad MCP server {server!r}: {exc}") from exc


class Agents:
    """The agents of one app and who answers which call."""

    def __init__(
        self,
        agents: Sequence[Agent],
        default: str | None = None,
        by_number: Mapping[str, str] | None = None,
        route: Route | None = None,
        route_timeout: float = 2.0,
    ) -> None:
        self.by_name: dict[str, Agent] = {}
        for a in agents:
            if a.name in self.by_name and self.by_name[a.name] is not a:
                raise ConfigError(f"two agents are named {a.name!r}")
            self.by_name[a.name] = a
        names = ", ".join(sorted(self.by_name)) or "none"
        for a in self.by_name.values():
            _check(a)
            resolved = []
            for h in a.handoffs:
                name = h.name if isinstance(h, Agent) else h
                if name not in self.by_name:
                    raise ConfigError(f"agent {a.name!r} hands off to unknown agent {name!r}; known: {names}")
                resolved.append(name)
            a._handoff_names = tuple(dict.fromkeys(resolved))
        if default is not None:
            if default not in self.by_name:
                raise ConfigError(f"TELEPHONY_AGENT={default!r} names no agent; known: {names}")
        elif "default" in self.by_name:
            default = "default"
        elif len(self.by_name) == 1:
            default = next(iter(self.by_name))
        else:
            raise ConfigError(f"several agents ({names}) and none chosen: set TELEPHONY_AGENT or name one 'default'")
        self.default = self.by_name[default]
        self.by_number = dict(by_number or {})
        for number, name in self.by_number.items():
            if name not in self.by_name:
                raise ConfigError(f"TELEPHONY_AGENTS_BY_NUMBER: {number} -> unknown agent {name!r}; known: {names}")
        self.route = route
        self.route_timeout = route_timeout

    def __getitem__(self, name: str) -> Agent:
        return self.by_name[name]

    async def choose(self, ctx: CallContext) -> tuple[Agent, str]:
        """(the agent for this call, how it was chosen: route | number | default)."""
        if self.route is not None:
            try:
                if inspect.iscoroutinefunction(self.route):
                    value = await asyncio.wait_for(self.route(ctx), self.route_timeout)
                else:  # in a thread, so a slow one is cut off too
                    value = await asyncio.wait_for(asyncio.to_thread(self.route, ctx), self.route_timeout)
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(value, self.route_timeout)
                name = value.name if isinstance(value, Agent) else value
                if name is not None:
                    if name not in self.by_name:
                        raise LookupError(f"route() chose unknown agent {name!r}")
                    return self.by_name[name], "route"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_event(
                    log,
                    "agents.route_failed",
                    logging.WARNING,
                    call_sid=ctx.call_sid,
                    error=f"{type(exc).__name__}: {exc}",
                    fallback=self.default.name,
                )
                return self.default, "default"
        if ctx.to_number and ctx.to_number in self.by_number:
            return self.by_name[self.by_number[ctx.to_number]], "number"
        return self.default, "default"
