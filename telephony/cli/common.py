"""What every command shares: the settings (an invalid one ends the command with
one line per error), the tools and agents of ``--tools``, the records path's
check, and the error exit (secrets redacted, on the error path too)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError

if TYPE_CHECKING:
    from ..agents import Agents
    from ..config import Settings
    from ..tools import ToolRegistry

__all__ = ["SECRETS", "build_registry", "build_setup", "check_records_path", "die", "load_settings"]

log = logging.getLogger("telephony.server")


def load_settings(**overrides: Any) -> Settings:
    from ..config import Settings

    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        die("invalid settings:\n" + "\n".join(lines))
    SECRETS.extend(settings.secrets())
    return settings


#: Secrets of the settings loaded so far: never printed, on the error path either.
SECRETS: list[str] = []


def check_records_path(path: str) -> None:
    """Fail at start if call records cannot be written (e.g. a root-owned bind mount)."""
    if not path or path == ":memory:":
        return
    from ..records import CallQuery, SqliteCallStore

    try:
        store = SqliteCallStore(path)
        try:
            store.list_now(CallQuery(limit=1))  # opens (creates) the file and its table: a write
        finally:
            store.close_now()
    except Exception as exc:
        die(
            f"TELEPHONY_RECORDS_PATH {path!r} is not writable ({type(exc).__name__}: {exc}): "
            "point it at a writable file, fix the directory's owner, or set it to '' to turn records off"
        )


def die(message: str, code: int = 2) -> NoReturn:
    from ..logs import RedactSecrets

    print(f"telephony: error: {RedactSecrets(SECRETS).clean(message)}", file=sys.stderr)
    raise SystemExit(code)


def build_registry(settings: Settings, tools_target: str | None) -> ToolRegistry:
    return build_setup(settings, tools_target)[0]


def build_setup(settings: Settings, tools_target: str | None) -> tuple[ToolRegistry, Agents | None]:
    """The tool registry and the agents (None: the module defines no ``Agent``)
    of ``--tools``; a module that cannot load or agents that do not add up end
    the command with a clear error."""
    from ..agents import Agents
    from ..errors import ConfigError, ToolDefinitionError
    from ..tools import ToolLoadError, ToolRegistry
    from ..tools.builtin import end_call_tool, send_dtmf_tool, transfer_call_tool
    from ..tools.loader import Loaded, load_module

    registry = ToolRegistry(default_timeout=settings.tool_timeout)
    target = tools_target or settings.tools
    loaded = Loaded()
    try:
        if target:
            try:
                loaded = load_module(target)
            except ToolLoadError as exc:
                SECRETS.extend(settings.secrets())
                die(str(exc))
            if not loaded.tools and not loaded.agents:
                print(f"telephony: warning: no @tool functions found in {target}", file=sys.stderr)
            for t in loaded.tools:
                registry.add(t)
        if settings.enable_end_call:
            registry.add(end_call_tool())
        if settings.enable_send_dtmf:
            registry.add(send_dtmf_tool())
        if settings.transfer_number or settings.transfer_directory:
            registry.add(transfer_call_tool(sorted(settings.transfer_directory), bool(settings.transfer_number)))
    except ToolDefinitionError as exc:  # e.g. two tools with one name, or one named like a built-in
        die(f"{exc} (built-in tools: end_call, transfer_call): rename one")
    agents = None
    if loaded.agents:
        try:
            agents = Agents(
                loaded.agents, settings.agent, settings.agents_by_number, loaded.route, settings.route_timeout
            )
        except ConfigError as exc:
            die(str(exc))
    elif settings.agent or settings.agents_by_number:
        die("TELEPHONY_AGENT / TELEPHONY_AGENTS_BY_NUMBER are set but the --tools module defines no Agent")
    return registry, agents
