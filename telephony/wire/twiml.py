"""TwiML documents the bridge answers with, built with the twilio library's
builder (escaping included). Their expected shapes are the golden files in the
repository's top-level ``twiml/`` folder, which the tests compare against."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from twilio.twiml.voice_response import Connect, Dial, Gather, VoiceResponse

__all__ = [
    "PARAMETER_LIMIT",
    "connect_stream",
    "dial",
    "empty",
    "hangup",
    "parameter_room",
    "say_and_hangup",
    "stream_url",
    "whisper",
    "xml_safe",
]

#: Twilio refuses a <Parameter> whose name + value reach 500 characters.
PARAMETER_LIMIT = 499

#: Characters XML 1.0 forbids in a document (C0 controls but tab, LF, CR; surrogates; U+FFFE/U+FFFF).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters a well-formed XML document cannot hold."""
    return _XML_FORBIDDEN.sub("", text)


def parameter_room(name: str) -> int:
    """How many characters a ``<Parameter>`` named ``name`` may hold."""
    return max(0, PARAMETER_LIMIT - len(name))


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
    """``<Connect><Stream>`` with the given custom parameters. One that does not fit
    a ``<Parameter>`` raises ``ValueError`` (never cut silently: callers refuse it
    clearly). ``action``: Twilio asks it what to do once our server closes the stream;
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
        value = xml_safe(str(value))
        if len(value) > parameter_room(name):
            raise ValueError(
                f"stream parameter {name!r} is {len(value)} characters; a <Parameter> holds {parameter_room(name)}"
            )
        stream.parameter(name=xml_safe(name), value=value)
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
    response.say(xml_safe(text))
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
