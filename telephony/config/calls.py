"""Settings: tools, agents and call control (hang-up, transfers, recordings,
answering-machine detection, keypad tones).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["E164", "CallSettings", "McpServer"]

#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"\+[1-9]\d{6,14}")


class McpServer(BaseModel):
    """A remote MCP server the Realtime API calls itself (a ``type: "mcp"`` tool)."""

    model_config = ConfigDict(extra="forbid")

    server_label: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    server_url: str = Field(pattern=r"^https?://")
    server_description: str | None = None
    headers: dict[str, str] | None = None
    authorization: str | None = None
    allowed_tools: list[str] | dict[str, Any] | None = None
    require_approval: Literal["always", "never"] | dict[str, Any] | None = None

    def tool(self) -> dict[str, Any]:
        """The ``session.tools`` entry."""
        return {"type": "mcp", **self.model_dump(exclude_none=True)}


class CallSettings(BaseModel):
    tools: str | None = None
    #: the agent that answers (an Agent's name in the --tools module)
    agent: str | None = None
    #: the agent by the called number, JSON: {"+15551230000": "billing"}
    agents_by_number: dict[str, str] = Field(default_factory=dict)
    #: how long the module's route(ctx) may take before the default agent answers
    route_timeout: float = Field(2.0, gt=0)
    #: remote MCP servers offered to every agent, JSON list of
    #: {server_label, server_url, headers?, authorization?, allowed_tools?, require_approval?}
    mcp_servers: list[McpServer] = Field(default_factory=list)
    #: how the bridge answers the API's MCP approval requests (no human is on hand)
    mcp_approval: Literal["approve", "deny"] = "deny"
    tool_timeout: float = Field(10.0, gt=0)
    enable_end_call: bool = False
    #: offer the built-in send_dtmf tool (keypad tones into the call, for phone menus)
    enable_send_dtmf: bool = False
    transfer_number: str | None = None
    transfer_directory: dict[str, str] = Field(default_factory=dict)
    #: caller ID for outbound calls and transfers (`telephony call --from` overrides)
    from_number: str | None = None
    #: the number's voice fallback (`telephony configure`): Twilio asks it when the webhook
    #: fails; best on another host (a TwiML Bin); unset: PUBLIC_URL/voice-fallback
    voice_fallback_url: str | None = None
    #: when the bridge ends a call by closing its stream and Twilio has not gone on within
    #: this many seconds (no /stream-ended, no completed status), hang up by REST (0 = off)
    hangup_fallback_seconds: float = Field(5.0, ge=0)
    #: call recording: off, or Twilio's dual-channel recording through the REST API
    recording: Literal["off", "local", "twilio"] = "off"
    #: where local recordings go (one <CallSid>.wav per call)
    recordings_dir: Path = Path("recordings")
    #: local recordings older than this many days are deleted (0 = kept)
    recordings_retention_days: float = Field(0.0, ge=0)
    #: said before anything else when recording (e.g. "This call is recorded.")
    recording_notice: str | None = None
    #: answering-machine detection on outbound calls (`telephony call --amd` per call)
    amd: bool = False
    #: the greeting waits at most this long for the verdict (then: a person)
    amd_wait_seconds: float = Field(10.0, gt=0, le=60)
    #: left on an answering machine (a text or an instruction, like the greeting); unset: hang up
    voicemail_message: str | None = None
    #: what a "fax" / "unknown" verdict does
    amd_fax: Literal["greet", "hangup"] = "hangup"
    amd_unknown: Literal["greet", "hangup"] = "greet"
    #: warm transfers: the directory names (or "*" for every target) whose human first hears
    #: the model's summary and presses 1 to accept
    transfer_warm: list[str] = Field(default_factory=list)
    #: seconds a transfer rings before it comes back to the agent (`<Dial timeout>`)
    transfer_ring_seconds: int = Field(25, ge=5, le=600)
    #: caller ID shown to the transfer's human; unset: the business's number (the called
    #: number of an inbound call, the calling number of an outbound one)
    transfer_caller_id: str | None = None
    #: how long a transferred call's conversation is kept in this process for its return
    transfer_keep_seconds: float = Field(900.0, gt=0)

    @field_validator("transfer_number")
    @classmethod
    def _transfer_number(cls, v: str | None) -> str | None:
        if v is not None and not E164.fullmatch(v):
            raise ValueError(
                f"TELEPHONY_TRANSFER_NUMBER {v!r} is not E.164: write it as +<country><number>, e.g. +14155550100"
            )
        return v

    @field_validator("transfer_caller_id")
    @classmethod
    def _transfer_caller_id(cls, v: str | None) -> str | None:
        if v is not None and not E164.fullmatch(v):
            raise ValueError(
                f"TELEPHONY_TRANSFER_CALLER_ID {v!r} is not E.164: write it as +<country><number>, e.g. +14155550100"
            )
        return v

    @field_validator("transfer_directory")
    @classmethod
    def _transfer_directory(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {name: number for name, number in v.items() if not E164.fullmatch(str(number))}
        if bad:
            raise ValueError(
                f"TELEPHONY_TRANSFER_DIRECTORY entries are not E.164 numbers: {bad}; "
                'write each as +<country><number>, e.g. {"billing": "+14155550100"}'
            )
        return v
