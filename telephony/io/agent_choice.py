"""Which agent speaks on a call.

Chosen once, while the first Realtime session opens (``Agents.choose``:
``route()``, the called number, the default); switched by a handoff tool (one
``session.update`` with the new instructions and tools, then the tool's output
tells the model whom it now is); carried back when a transferred call returns.
The first agent's voice stays for the whole call (a session cannot change its
voice once it has spoken). Without agents defined, ``agent`` stays None.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..agents import Agent
from ..call import AgentChanged, Call, RunTool
from ..tools import CallContext
from ..tools.registry import ToolResult
from ..wire import twilio as tw
from ..wording import HANDOFF
from .observe import CallReport
from .services import Services

__all__ = ["AgentChoice"]


class AgentChoice:
    __slots__ = ("_call", "_clock", "_report", "_services", "agent", "first_agent")

    def __init__(self, services: Services, call: Call, report: CallReport, clock: Callable[[], float]) -> None:
        self._services = services
        self._clock = clock
        self._call = call
        self._report = report
        self.agent: Agent | None = None  # the agent speaking now (None: no agents defined)
        self.first_agent: Agent | None = None  # the one that answered: its voice stays

    async def choose(self, context: CallContext | None) -> None:
        """Which agent answers this call (route(), the called number, the default)."""
        agents = self._services.agents
        if agents is None or self.agent is not None or context is None:
            return
        agent, how = await agents.choose(context)
        self.agent = self.first_agent = agent
        self._report.event(AgentChanged(agent.name, None, how), self._clock())

    def resume(self, agent: str | None, first_agent: str | None) -> None:
        """A transferred call came back: the agents that spoke before (if still defined)."""
        agents = self._services.agents
        if agents is not None and agent in agents.by_name:
            self.agent = agents.by_name[agent]
            self.first_agent = agents.by_name.get(first_agent or "", self.agent)

    def hand_off(self, action: RunTool, target: Agent, start: tw.Start | None, now: float) -> None:
        """Switch the live session to ``target``: one ``session.update`` (instructions,
        tools), then the tool's output tells the model whom it now is."""
        assert start is not None and self.agent is not None and self.first_agent is not None
        try:
            args = json.loads(action.arguments or "{}")
        except ValueError:
            args = {}
        reason = args.get("reason") if isinstance(args, dict) and isinstance(args.get("reason"), str) else None
        previous, self.agent = self.agent, target
        message, new_session = self._services.handoff_update(start, target, self.first_agent)
        notice = AgentChanged(target.name, previous.name, "handoff", reason)
        self._call.update_session(message, new_session, now, notice)
        output = json.dumps({"handoff": target.name, "note": HANDOFF.format(agent=target.name, previous=previous.name)})
        self._report.tool_finished(ToolResult(action.call_id, action.name, output, True, None, 0.0))
        self._call.tool_finished(action.call_id, output, now)
