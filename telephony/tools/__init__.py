"""Tools: the ``@tool`` decorator, the registry that runs tools, and the loader."""

from .context import CallContext
from .loader import ToolLoadError, load_tools
from .registry import DEFAULT_TIMEOUT, Tool, ToolError, ToolRegistry, ToolResult, tool

__all__ = [
    "CallContext",
    "tool",
    "Tool",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "DEFAULT_TIMEOUT",
    "load_tools",
    "ToolLoadError",
]
