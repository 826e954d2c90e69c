"""Built-in call-control tools the model can use (opt in with settings):
``end_call`` (TELEPHONY_ENABLE_END_CALL=true), ``send_dtmf``
(TELEPHONY_ENABLE_SEND_DTMF=true) and ``transfer_call``
(TELEPHONY_TRANSFER_NUMBER and/or TELEPHONY_TRANSFER_DIRECTORY)."""

from typing import Literal, Optional

from .context import CallContext
from .registry import Tool, tool, tool_spec

__all__ = ["end_call_tool", "send_dtmf_tool", "transfer_call_tool"]


def _spec(fn: object) -> Tool:
    spec = tool_spec(fn)
    assert spec is not None
    return spec


def end_call_tool() -> Tool:
    @tool(name="end_call")
    def end_call(ctx: CallContext, reason: str = "conversation finished") -> str:
        """Hang up the phone call. Say goodbye first, in the same turn; the line is
        cut only after your last words have played to the caller.

        Args:
            reason: Why the call is ending, for the call record.
        """
        ctx.end_call(reason)
        return "The call ends once your last words have played. Say nothing more."

    return _spec(end_call)


def send_dtmf_tool() -> Tool:
    @tool(name="send_dtmf")
    async def send_dtmf(ctx: CallContext, digits: str) -> str:
        """Press keys on the phone keypad, to navigate an automated phone menu or enter a
        number it asks for. The tones play after anything you are saying; this returns
        once they have played.

        Args:
            digits: The keys, in order: 0-9, *, #, A-D; w waits half a second.
        """
        try:
            played = await ctx.send_dtmf(digits)
        except ValueError as exc:
            return str(exc)
        return f"Pressed {digits}." if played else "The call ended before the keys were pressed."

    return _spec(send_dtmf)


_SUMMARY_ARG = (
    "\n    summary: Two sentences for the colleague about who is calling and what they need "
    "(they hear it before taking the call)."
)


def transfer_call_tool(names: list[str], has_default: bool) -> Tool:
    doc = (
        "Transfer the caller to a human. Tell the caller first, in the same turn; the call is handed over "
        "after your words have played. If the transfer fails you will be told, and the call goes on."
    )
    if names:
        Target = Literal[tuple(names)]  # type: ignore[valid-type]

        if has_default:

            async def transfer_call(
                ctx: CallContext,
                target: Target | None = None,  # type: ignore[valid-type]
                summary: str | None = None,
            ) -> str:
                return await ctx.transfer(target or "", summary=summary)

        else:

            async def transfer_call(  # type: ignore[misc]
                ctx: CallContext,
                target: Target,  # type: ignore[valid-type]
                summary: str | None = None,
            ) -> str:
                return await ctx.transfer(target, summary=summary)

        transfer_call.__doc__ = doc + "\n\nArgs:\n    target: Who to transfer to." + _SUMMARY_ARG
    else:

        async def transfer_call(ctx: CallContext, summary: str | None = None) -> str:  # type: ignore[misc]
            return await ctx.transfer("", summary=summary)

        transfer_call.__doc__ = doc + "\n\nArgs:" + _SUMMARY_ARG
    if names:  # real objects, not strings: the Literal is built at run time
        target = Optional[Target] if has_default else Target  # noqa: UP045 (built at run time)
        transfer_call.__annotations__ = {
            "ctx": CallContext,
            "target": target,
            "summary": Optional[str],  # noqa: UP045 (built at run time)
            "return": str,
        }
    else:
        transfer_call.__annotations__ = {"ctx": CallContext, "summary": Optional[str], "return": str}  # noqa: UP045
    return _spec(tool(transfer_call))
