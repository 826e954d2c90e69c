"""Outbound calls and number set-up through the Twilio REST API."""

from __future__ import annotations

from typing import Any

from ...config import Settings
from ...errors import ConfigError, OutboundCallError
from ...wire.twiml import connect_stream, parameter_room, stream_url, xml_safe
from .recording import recording_notice
from .rest import TwilioRest, validate_e164
from .stream_token import TOKEN_PARAMETER, StreamTokens

#: Outbound tokens must outlive the ring time (Twilio rings for at most 600 s).
RING_SECONDS = 600

__all__ = ["configure_number", "outbound_twiml", "place_call", "rest_client"]

#: Twilio refuses inline TwiML longer than this.
MAX_TWIML = 4000


def rest_client(settings: Settings) -> TwilioRest:
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    return TwilioRest(settings.twilio_account_sid, token, settings.twilio_api_base_url)


def _public_url(settings: Settings) -> str:
    if not settings.public_url:
        raise ConfigError("PUBLIC_URL must be set: Twilio needs to reach this server's /media-stream")
    return settings.public_url


def outbound_twiml(
    settings: Settings, to: str, from_: str, instructions: str | None = None, parameters: dict[str, str] | None = None
) -> str:
    if parameters and TOKEN_PARAMETER in parameters:
        raise OutboundCallError(f"the parameter name {TOKEN_PARAMETER!r} is reserved for the stream token: rename it")
    params: dict[str, str] = {"From": from_, "To": to, "direction": "outbound"}
    if instructions:
        params["instructions"] = instructions
    params.update(parameters or {})
    params = {xml_safe(str(k)): xml_safe(str(v)) for k, v in params.items() if v is not None}
    for name, value in params.items():
        if len(value) > parameter_room(name):
            what = "instructions" if name == "instructions" else f"parameter {name!r}"
            raise OutboundCallError(
                f"the call's {what} is {len(value)} characters; a Twilio stream parameter holds at most "
                f"{parameter_room(name)}, and longer values are not cut: shorten it, or put long instructions in "
                "TELEPHONY_INSTRUCTIONS on the server"
            )
    # Outbound TwiML is written before Twilio assigns the CallSid: the token names none
    # and is bound to its single-use nonce, valid through the ring time.
    token = StreamTokens(settings).issue("", params, ttl=settings.stream_token_seconds + RING_SECONDS)
    if token:
        params[TOKEN_PARAMETER] = token
    base = _public_url(settings)
    twiml = connect_stream(
        stream_url(base),
        params,
        action=base + "/stream-ended",
        status_callback=base + "/stream-status",
        notice=recording_notice(settings),
    )
    if len(twiml) > MAX_TWIML:
        raise OutboundCallError(
            f"the call's TwiML is {len(twiml)} characters; Twilio accepts at most {MAX_TWIML}: "
            "shorten the instructions or parameters"
        )
    return twiml


async def place_call(
    to: str,
    *,
    settings: Settings | None = None,
    from_number: str | None = None,
    instructions: str | None = None,
    parameters: dict[str, str] | None = None,
    rest: TwilioRest | None = None,
    amd: bool | None = None,
    voicemail_message: str | None = None,
) -> str:
    """Call ``to`` and connect the answer to this server's agent. Returns the call SID.

    ``instructions`` replace the agent's instructions for this call; ``parameters``
    reach ``CallContext.parameters``. ``amd`` (default ``TELEPHONY_AMD``): Twilio's
    asynchronous answering-machine detection; on a machine, ``voicemail_message``
    (default ``TELEPHONY_VOICEMAIL_MESSAGE``) is left, then the call hangs up.
    """
    settings = settings or Settings()
    to = validate_e164(to)
    from_ = validate_e164(from_number or settings.from_number or "")
    amd = settings.amd if amd is None else amd
    params = dict(parameters or {})
    if amd:
        params["amd"] = "1"
        if voicemail_message:
            params["voicemail_message"] = voicemail_message
    twiml = outbound_twiml(settings, to, from_, instructions, params)
    client = rest or rest_client(settings)
    base = _public_url(settings)
    return await client.create_call(
        to, from_, twiml, status_callback=base + "/call-status", amd_callback=base + "/amd-status" if amd else None
    )


async def configure_number(
    number: str, *, settings: Settings | None = None, rest: TwilioRest | None = None
) -> dict[str, Any]:
    """Point ``number``'s voice webhook at ``PUBLIC_URL/incoming-call``, its status
    callback at ``PUBLIC_URL/call-status`` and its voice fallback at
    ``TELEPHONY_VOICE_FALLBACK_URL`` (default ``PUBLIC_URL/voice-fallback``).
    Returns what changed: {field: (old, new)}."""
    settings = settings or Settings()
    number = validate_e164(number)
    base = _public_url(settings)
    client = rest or rest_client(settings)
    fallback = settings.voice_fallback_url or base + "/voice-fallback"
    return await client.configure_number(number, base + "/incoming-call", base + "/call-status", fallback)
