"""telephony: put an OpenAI Realtime voice agent on a Twilio phone number.

Public API: ``tool`` (decorator), ``Agent``, ``CallContext``, ``ToolError``, ``Settings``,
``create_app``, ``place_call`` and ``configure_number`` (Twilio REST), and
``TelephonyError``, the root of every error telephony raises (the tree is in
``telephony.errors``).
"""

from typing import TYPE_CHECKING, Any

from .agents import Agent
from .errors import TelephonyError
from .tools import CallContext, ToolError, tool

if TYPE_CHECKING:
    from .config import Settings
    from .io.app import create_app
    from .io.twilio.outbound import configure_number, place_call

__version__ = "0.1.0"
__all__ = [
    "Agent",
    "CallContext",
    "Settings",
    "TelephonyError",
    "ToolError",
    "__version__",
    "configure_number",
    "create_app",
    "place_call",
    "tool",
]

# Imported on first use: tool modules ``import telephony`` and must stay light.
_LAZY = {
    "Settings": ("telephony.config", "Settings"),
    "create_app": ("telephony.io.app", "create_app"),
    "place_call": ("telephony.io.twilio.outbound", "place_call"),
    "configure_number": ("telephony.io.twilio.outbound", "configure_number"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(name)
