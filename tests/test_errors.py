"""One exception tree: every error telephony raises on purpose is a TelephonyError,
the old names still import, and the raise sites raise the new classes."""

from __future__ import annotations

import asyncio

import pytest

from telephony import errors
from telephony.config import Settings
from telephony.errors import (
    AudioFormatError,
    ConfigError,
    InvalidPhoneNumber,
    OutboundCallError,
    RealtimeConnectError,
    RealtimeError,
    TelephonyError,
    ToolDefinitionError,
    ToolLoadError,
    TwilioError,
    TwilioRestError,
    WavError,
)
from telephony.io.twilio.outbound import configure_number, outbound_twiml, place_call
from telephony.io.twilio.rest import TwilioRest, validate_e164
from telephony.testing.fake_twilio_rest import FakeTwilioRest
from telephony.tools import ToolRegistry, load_tools, tool

ACCOUNT = "AC" + "2" * 32
TOKEN = "rest-token-0123456789"


def _settings(**kw) -> Settings:
    values = {"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "public_url": "https://voice.example.com"}
    values.update(kw)
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize("name", errors.__all__)
def test_every_public_error_is_a_telephony_error(name):
    cls = getattr(errors, name)
    assert issubclass(cls, TelephonyError) and issubclass(cls, Exception)


def test_the_tree():
    assert issubclass(WavError, AudioFormatError)
    assert issubclass(TwilioRestError, TwilioError)
    assert issubclass(RealtimeConnectError, RealtimeError)
    assert not issubclass(errors.ToolError, ValueError)  # a tool's message to the model, not a bad value
    assert RealtimeConnectError("refused").retryable is True
    assert RealtimeConnectError("bad key", retryable=False).retryable is False


@pytest.mark.parametrize(
    "name",
    [
        "ConfigError",
        "InvalidPhoneNumber",
        "TransferTargetError",
        "OutboundCallError",
        "AudioFormatError",
        "WavError",
        "ToolDefinitionError",
        "ToolArgumentsError",
    ],
)
def test_errors_that_were_value_errors_still_are(name):
    # The CLI and the transfer path catch ValueError (and so may users' code).
    assert issubclass(getattr(errors, name), ValueError)


def test_old_import_paths_still_work():
    import telephony.audio.wav
    import telephony.io.twilio.rest
    import telephony.tools
    import telephony.tools.registry

    assert telephony.ToolError is errors.ToolError is telephony.tools.ToolError is telephony.tools.registry.ToolError
    assert telephony.TelephonyError is TelephonyError
    assert telephony.tools.ToolLoadError is ToolLoadError
    assert telephony.audio.wav.WavError is WavError
    assert telephony.io.twilio.rest.TwilioRestError is TwilioRestError


def test_wav_reader_raises_wav_error(tmp_path):
    from telephony.audio.wav import read_wav

    not_wav = tmp_path / "x.wav"
    not_wav.write_bytes(b"hello, not a wav file")
    with pytest.raises(WavError, match="not a WAV file"):
        read_wav(not_wav)
    with pytest.raises(AudioFormatError, match="cannot read"):
        read_wav(tmp_path / "missing.wav")


def test_tool_loader_raises_tool_load_error(tmp_path):
    with pytest.raises(ToolLoadError, match="tools file not found"):
        load_tools(str(tmp_path / "nope.py"))
    broken = tmp_path / "broken_tools.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ToolLoadError, match="RuntimeError: boom"):
        load_tools(str(broken))
    with pytest.raises(ToolLoadError, match="cannot import tools module"):
        load_tools("no_such_module_for_telephony_tests")


def test_tool_definitions_raise_tool_definition_error():
    with pytest.raises(ToolDefinitionError):
        tool(name="bad name!")(lambda: None)

    def ping(x: str) -> str:
        """Ping."""
        return x

    def other(x: str) -> str:
        """Another ping."""
        return x

    with pytest.raises(ToolDefinitionError, match="two tools"):
        ToolRegistry([tool(name="ping")(ping), tool(name="ping")(other)])


@pytest.mark.parametrize("number", ["", "5551234567", "+0123456789", "+1555abc", "+1234567890123456"])
def test_validate_e164_raises_invalid_phone_number(number):
    with pytest.raises(InvalidPhoneNumber, match=r"E\.164"):
        validate_e164(number)


def test_rest_client_without_credentials_is_a_config_error():
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        TwilioRest(None, "token")
    with pytest.raises(ConfigError):
        TwilioRest(ACCOUNT, "")


def test_outbound_twiml_errors():
    with pytest.raises(ConfigError, match="PUBLIC_URL must be set"):
        outbound_twiml(_settings(public_url=None), "+15551234567", "+15550009999")
    with pytest.raises(OutboundCallError, match="Twilio accepts at most 4000"):
        # Each value fits a <Parameter>; together they pass 4000 characters.
        outbound_twiml(_settings(), "+15551234567", "+15550009999", parameters={f"p{i}": "x" * 400 for i in range(20)})


def test_rest_failures_raise_twilio_rest_error():
    with FakeTwilioRest(account_sid=ACCOUNT, auth_token=TOKEN) as fake:
        settings = _settings(twilio_api_base_url=fake.base_url)
        with pytest.raises(TwilioRestError, match="is not a phone number of account"):
            asyncio.run(configure_number("+15550000000", settings=settings))
        fake.fail_next = (500, "exploded")
        with pytest.raises(TwilioRestError, match="HTTP 500"):
            asyncio.run(place_call("+15551234567", settings=settings, from_number="+15550009999"))
