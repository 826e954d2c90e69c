"""Settings, from the environment and an optional ``.env`` file.

Unprefixed: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``TWILIO_ACCOUNT_SID``,
``TWILIO_AUTH_TOKEN``, ``TWILIO_API_BASE_URL``, ``PUBLIC_URL``. Everything about
the agent and the server has a ``TELEPHONY_`` prefix (``TELEPHONY_MODEL``...).

``Settings`` (settings.py) is one model made of one part per concern:
addresses.py (credentials and addresses), agent.py (the agent and how it
sounds), calls.py (tools, agents, call control), server.py (the server, its
limits, records, logs), security.py (hostile input). env_file.py writes
``.env.example``.
"""

from ..wording import DEFAULT_INSTRUCTIONS
from .agent import (
    DEFAULT_MODEL,
    DEFAULT_TRANSCRIPTION_MODEL,
    REASONING_MODEL_PREFIXES,
    VOICES,
    Effort,
    takes_reasoning,
)
from .calls import E164, McpServer
from .env_file import env_example, env_name
from .server import LOG_LEVELS
from .settings import Settings

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_MODEL",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "E164",
    "LOG_LEVELS",
    "REASONING_MODEL_PREFIXES",
    "VOICES",
    "Effort",
    "McpServer",
    "Settings",
    "env_example",
    "env_name",
    "takes_reasoning",
]
