"""Tools: the ``@tool`` decorator, the registry that runs tools, and the loader."""

from .context import CallContext
from .loader import ToolLoadError, load_tools
from .registry import DEFAULT_TIMEOUT, Tool, ToolError, ToolRegistry, ToolResult, tool

__all__ = [
    "DEFAULT_TIMEOUT",
    "CallContext",
    "Tool",
    "ToolError",
    "ToolLoadError",
    "ToolRegistry",
    "ToolResult",
    "load_tools",
    "tool",
]
