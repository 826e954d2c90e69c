"""TwiML documents the bridge answers with, built with the twilio library's
builder (escaping included). Their expected shapes are the golden files in the
repository's top-level ``twiml/`` folder, which the tests compare against."""

from __future__ import annotations

from urllib.parse import urlsplit

from twilio.twiml.voice_response import Connect, Dial, Gather, VoiceResponse

__all__ = ["connect_stream", "dial", "empty", "hangup", "say_and_hangup", "stream_url", "whisper"]

#: Twilio refuses a <Parameter> whose name + value reach 500 characters.
_PARAM_LIMIT = 499


def stream_url(public_url: str, path: str = "/media-stream") -> str:
    """``wss://<host>/media-stream`` from an http(s) origin."""
    parts = urlsplit(public_url)
    base = parts.path.rstrip("/")
    return f"wss://{parts.netloc}{base}{path}"


def connect_stream(
    url: str,
    parameters: dict[str, str],
    action: str | None = None,
    status_callback: str | None = None,
    notice: str | None = None,
) -> str:
    """``<Connect><Stream>`` with the given custom parameters (too long ones are cut).
    ``action``: Twilio asks it what to do once our server closes the stream;
    ``status_callback``: Twilio posts the stream's start, stop and errors there;
    ``notice``: said (``<Say>``) before anything else (a recording notice)."""
    response = VoiceResponse()
    if notice:
        response.say(notice)
    connect = Connect(action=action) if action else Connect()
    if status_callback:
        stream = connect.stream(url=url, status_callback=status_callback, status_callback_method="POST")
    else:
        stream = connect.stream(url=url)
    for name, value in parameters.items():
        if value is None:
            continue
        value = str(value)[: max(0, _PARAM_LIMIT - len(name))]
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def whisper(text: str, action: str, timeout_s: int = 6) -> str:
    """Said to a transfer's human before bridging: press 1 (posted to ``action``) to
    accept; no key, or another: the human's leg hangs up and the caller comes back."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=action, method="POST", timeout=timeout_s)
    gather.say(text)
    response.append(gather)
    response.hangup()
    return str(response)


def empty() -> str:
    """Nothing more to do here (a whisper accepted: Twilio bridges the call)."""
    return str(VoiceResponse())


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def say_and_hangup(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def dial(
    number: str,
    caller_id: str | None = None,
    action: str | None = None,
    timeout_s: int | None = None,
    answer_on_bridge: bool = False,
    number_url: str | None = None,
) -> str:
    """``<Dial>`` to ``number``. With ``action``, Twilio asks that URL what to do
    when the dial ends (``DialCallStatus``), so an unanswered transfer comes back;
    ``timeout_s``: seconds to ring; ``answer_on_bridge``: the caller keeps hearing
    ringing (not silence) until the human answers; ``number_url``: the whisper."""
    response = VoiceResponse()
    attrs: dict[str, object] = {}
    if caller_id:
        attrs["caller_id"] = caller_id
    if action:
        attrs["action"] = action
        attrs["method"] = "POST"
    if timeout_s is not None:
        attrs["timeout"] = timeout_s
    if answer_on_bridge:
        attrs["answer_on_bridge"] = True
    d = Dial(**attrs)
    if number_url:  # a whisper: TwiML played to the human before the caller is connected
        d.number(number, url=number_url, method="POST")
    else:
        d.number(number)
    response.append(d)
    return str(response)
