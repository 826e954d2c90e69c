"""Every exception telephony raises on purpose derives from ``TelephonyError``.

    TelephonyError
    ├── ConfigError [ValueError]          a setting this action needs is missing (PUBLIC_URL, credentials)
    ├── InvalidPhoneNumber [ValueError]   not an E.164 number
    ├── TransferTargetError [ValueError]  not a transfer target this server knows
    ├── OutboundCallError [ValueError]    the outbound call cannot be placed as asked (TwiML too long)
    ├── AudioFormatError [ValueError]     audio this code cannot read
    │   └── WavError                      ... a WAV file (unreadable, malformed, unsupported encoding)
    ├── ToolDefinitionError [TypeError, ValueError]
    │                                     @tool or ToolRegistry refused a function (name, hints, duplicate)
    ├── ToolLoadError                     the ``--tools`` file or module could not be imported
    ├── ToolArgumentsError [ValueError]   the model's arguments for a tool are not a JSON object
    ├── ToolError                         raised *by a tool* to hand the model a clean error text
    ├── TwilioError                       Twilio's side of things
    │   └── TwilioRestError               a REST request failed
    └── RealtimeError                     the OpenAI Realtime side of things
        └── RealtimeConnectError          opening the session failed, proxy included (``retryable`` says if a retry can help)

Classes marked ``[ValueError]`` (or ``[TypeError, ValueError]``) also derive
from those built-ins: the same conditions raised them before this module
existed, and callers (the CLI, the transfer path, user code) catch them as
such. New code should catch the telephony class.

The classes are also importable from where they were defined before
(``telephony.ToolError``, ``telephony.tools.ToolLoadError``,
``telephony.audio.wav.WavError``, ``telephony.io.twilio.rest.TwilioRestError``).

Settings validation is not here: pydantic reports it as ``ValidationError``.
"""

from __future__ import annotations

__all__ = [
    "AudioFormatError",
    "ConfigError",
    "InvalidPhoneNumber",
    "OutboundCallError",
    "RealtimeConnectError",
    "RealtimeError",
    "TelephonyError",
    "ToolArgumentsError",
    "ToolDefinitionError",
    "ToolError",
    "ToolLoadError",
    "TransferTargetError",
    "TwilioError",
    "TwilioRestError",
    "WavError",
]


class TelephonyError(Exception):
    """The root: ``except TelephonyError`` catches every error telephony raises on purpose."""


class ConfigError(TelephonyError, ValueError):
    """A setting this action needs is missing or unusable (the message names it).
    Also a ``ValueError``."""


class InvalidPhoneNumber(TelephonyError, ValueError):
    """Not an E.164 phone number (like +15551234567). Also a ``ValueError``."""


class TransferTargetError(TelephonyError, ValueError):
    """A transfer target that is neither in the directory nor an allowed number.
    Also a ``ValueError``."""


class OutboundCallError(TelephonyError, ValueError):
    """An outbound call that cannot be placed as asked (e.g. its TwiML is too long).
    Also a ``ValueError``."""


class AudioFormatError(TelephonyError, ValueError):
    """Audio this code cannot read. Also a ``ValueError``."""


class WavError(AudioFormatError):
    """The file is not a WAV this reader understands (the message says why)."""


class ToolDefinitionError(TelephonyError, TypeError, ValueError):
    """``@tool`` or ``ToolRegistry.add`` refused a function: a bad name, a parameter
    without a type hint, ``*args``, two tools with one name. Raised at decoration
    time. Also a ``TypeError`` and a ``ValueError`` (what it used to be)."""


class ToolLoadError(TelephonyError):
    """The tools file or module (``--tools``, ``TELEPHONY_TOOLS``) could not be imported."""


class ToolArgumentsError(TelephonyError, ValueError):
    """The model's arguments for a tool do not fit it. ``ToolRegistry.run`` turns this
    into an error text for the model; it never escapes. Also a ``ValueError``."""


class ToolError(TelephonyError):
    """Raise from a tool to give the model a clean error text (no traceback type).

    ``raise ToolError("No order 42; ask the caller to check the number.")``: the
    model reads exactly that message. Public as ``from telephony import ToolError``.
    """


class TwilioError(TelephonyError):
    """Something on Twilio's side failed."""


class TwilioRestError(TwilioError):
    """A REST action failed; the message names what and why, never credentials."""


class RealtimeError(TelephonyError):
    """Something on the OpenAI Realtime side failed."""


class RealtimeConnectError(RealtimeError):
    """Opening the Realtime session failed (the message is safe to log).
    ``retryable`` is False when trying again cannot help (bad key, bad URL)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
