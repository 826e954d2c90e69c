"""Every sentence the product says to a caller or tells the model, in one place.

The call core takes a ``Wording`` in its configuration and never spells text
itself, so wording can change (or be translated) without touching the protocol
logic. Placeholders are ``str.format`` fields.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "APOLOGY",
    "BUSY_MESSAGE",
    "DEFAULT_INSTRUCTIONS",
    "DIAL_STATUS",
    "DRAINING_MESSAGE",
    "TOOL_FAILED",
    "WHISPER",
    "WHISPER_NO_SUMMARY",
    "Wording",
]

DEFAULT_INSTRUCTIONS = (
    "You are a friendly, efficient phone agent. You are speaking with a caller on a telephone line, "
    "so keep answers short and conversational, one idea at a time, and never read out markup or lists. "
    "Use the tools you have to look things up or act; never invent facts. If you cannot help, say so."
)
#: Said (TwiML ``<Say>``) when every call slot is taken.
BUSY_MESSAGE = "All of our agents are busy right now. Please call again in a few minutes. Goodbye."
#: Said while the server drains before a restart.
DRAINING_MESSAGE = "We are restarting our phone system. Please call back in a minute. Goodbye."
#: Said when the bridge gives up on a call (default of ``TELEPHONY_APOLOGY``).
APOLOGY = "Sorry, we are having technical difficulties. Please call back in a few minutes. Goodbye."

#: What the model reads when a tool raised an unexpected exception (the details go to the log only).
TOOL_FAILED = (
    "The {name} tool failed because of an internal error. Do not retry it now; tell the caller "
    "you could not complete that and offer other help."
)

#: Why a transfer came back, by Twilio's ``DialCallStatus`` (told to the model).
DIAL_STATUS = {
    "no-answer": "nobody answered",
    "busy": "the line was busy",
    "failed": "the number could not be reached",
    "canceled": "the transfer was cancelled",
    "declined": "your colleague could not take the call",
}
#: Said to the human of a warm transfer before the caller is connected.
WHISPER = "Incoming transfer from the phone agent. {summary} Press 1 to take the call."
#: The whisper when the model gave no summary.
WHISPER_NO_SUMMARY = "A caller needs {label}."


@dataclass(frozen=True, slots=True)
class Wording:
    """What the call core tells the model, as templates."""

    #: ``response.create`` instructions for the greeting; ``{greeting}`` is the setting
    greeting: str = (
        "Greet the caller now to open the call. If the following is a greeting, say it "
        "word for word; if it is an instruction, follow it: {greeting}"
    )
    #: a batch of keypad digits, ``{keys}`` space-separated
    keypad: str = "[The caller pressed these keys on the phone keypad: {keys}]"
    #: a redirect to a human failed
    transfer_failed: str = "The transfer to {label} ({number}) failed: {reason}. Tell the caller and offer other help."
    #: ``response.create`` instructions when an answering machine took the call
    voicemail: str = (
        "An answering machine took this call and is recording now. Leave this voicemail message; "
        "if it is a text, say it word for word; if it is an instruction, follow it. Then stop: {message}"
    )
    #: the call is back from a transfer nobody took; ``{status}``: why (see ``dial_status``)
    transfer_returned: str = (
        "The transfer to {label} did not connect ({status}); the caller is back on the line with you. "
        "Tell them briefly, then offer to take a message for a callback or to try another number."
    )
    #: a tool result whose call was made in a Realtime session that is gone
    late_tool_result: str = "Result of your earlier {name} tool call ({call_id}): {output}"
    #: a denied MCP approval request (``TELEPHONY_MCP_APPROVAL=deny``)
    mcp_denied: str = "Calling MCP tools that need approval is not allowed on this line."
    #: ``response.create`` instructions after a response was cut off at max_output_tokens
    cut_short: str = (
        "Your last answer was cut off because it was too long. Finish it now in one or two short sentences."
    )
    #: ``response.create`` instructions after the content filter stopped a response
    filtered: str = (
        "Your last answer was stopped by the content filter. Briefly tell the caller you cannot help "
        "with that, and ask whether there is anything else you can do for them."
    )
    #: ``response.create`` instructions when nothing followed the caller's turn (dead air)
    dead_air: str = "The caller is waiting for your answer. Respond to them now."
    #: the caller's turn whose transcription failed, in records and restored conversations
    untranscribed: str = "[The caller spoke here, but their words could not be transcribed.]"
    #: label of the fallback transfer when the model keeps failing
    fallback_label: str = "a colleague"


#: The ``handoff_to_<name>`` tool's result: the model reads it right after its
#: instructions and tools switched to ``{agent}``'s (``{previous}`` handed over).
HANDOFF = (
    "Handoff done: you are now the {agent} agent (taking over from {previous}) and follow your new "
    "instructions. Do not greet the caller again; carry on from where the conversation is."
)
