"""telephony: put an OpenAI Realtime voice agent on a Twilio phone number.

Public API: ``tool`` (decorator), ``CallContext``, ``ToolError``, ``Settings``,
``create_app``, and ``TelephonyError``, the root of every error telephony raises
(the tree is in ``telephony.errors``).
"""

from typing import Any

from .errors import TelephonyError

from .tools import CallContext, ToolError, tool

__version__ = "0.1.0"
__all__ = ["tool", "CallContext", "ToolError", "TelephonyError", "Settings", "create_app", "__version__"]


def __getattr__(name: str) -> Any:  # keep `import telephony` light for tool modules
    if name == "Settings":
        from .config import Settings

        return Settings
    if name == "create_app":
        from .io.app import create_app

        return create_app
    raise AttributeError(name)
