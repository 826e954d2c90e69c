"""``--tools PATH_OR_MODULE``: import a .py file or a dotted module and collect
every ``@tool`` function defined there, its ``Agent``s and its ``route`` function."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ToolLoadError
from .registry import Tool, tool_spec

__all__ = ["Loaded", "ToolLoadError", "load_module", "load_tools"]


def _import(target: str) -> ModuleType:
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ToolLoadError(f"tools file not found: {target}")
        name = f"telephony_user_tools_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ToolLoadError(f"cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))  # let it import its siblings
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ToolLoadError(f"error while importing {target}: {type(exc).__name__}: {exc}") from exc
        return module
    try:
        return importlib.import_module(target)
    except Exception as exc:
        raise ToolLoadError(f"cannot import tools module {target!r}: {type(exc).__name__}: {exc}") from exc


def load_tools(target: str) -> list[Tool]:
    return load_tools_from(_import(target))


@dataclass
class Loaded:
    """What a ``--tools`` module defines: its ``@tool`` functions (and those its
    agents list), its ``Agent`` values and its ``route(ctx)`` function."""

    tools: list[Tool] = field(default_factory=list)
    agents: list[Any] = field(default_factory=list)  # telephony.agents.Agent
    route: Callable[..., Any] | None = None


def load_module(target: str) -> Loaded:
    from ..agents import Agent

    module = _import(target)
    out = Loaded(tools=load_tools_from(module))
    for v in vars(module).values():
        if isinstance(v, Agent) and v not in out.agents:
            out.agents.append(v)
    route = getattr(module, "route", None)
    if route is not None:
        if not callable(route) or tool_spec(route) is not None:
            raise ToolLoadError(f"{target}: route must be a plain function route(ctx) -> Agent | str")
        out.route = route
    return out


def load_tools_from(module: ModuleType) -> list[Tool]:
    found = [spec for v in vars(module).values() if (spec := tool_spec(v)) is not None]
    return [t for t in found if isinstance(t, Tool)]
