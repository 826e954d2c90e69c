"""Settings fail at start, not on the first call (issue 12, item 7): each error
names the setting and the fix; unknown TELEPHONY_* variables get a warning."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import typing

import pytest
from pydantic import ValidationError

from telephony.config import VOICES, Settings
from tests.harness import bridge
from tests.test_serve_process import _env

BASE = {"openai_api_key": "sk-test"}


def _error(**values: object) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, **BASE, **values)
    return str(info.value)


@pytest.mark.parametrize(
    ("values", "named", "fix"),
    [
        ({"voice": "nova"}, "TELEPHONY_VOICE", "marin"),
        ({"transfer_number": "555-0100"}, "TELEPHONY_TRANSFER_NUMBER", "+14155550100"),
        ({"transfer_directory": {"billing": "0800 123"}}, "TELEPHONY_TRANSFER_DIRECTORY", "+<country><number>"),
        ({"openai_base_url": "api.openai.com/v1"}, "OPENAI_BASE_URL", "https://api.openai.com/v1"),
        ({"public_url": "https://voice.example.com/agent"}, "PUBLIC_URL", "https://voice.example.com"),
        ({"turn_detection": "none"}, "TELEPHONY_TURN_DETECTION=none", "server_vad"),
        ({"log_level": "VERBOSE"}, "TELEPHONY_LOG_LEVEL", "DEBUG"),
    ],
)
def test_each_bad_setting_is_refused_naming_the_setting_and_the_fix(values, named, fix):
    message = _error(**values)
    assert named in message and fix in message


def test_good_values_pass_and_log_levels_are_normalised():
    s = Settings(
        _env_file=None,
        **BASE,
        voice="cedar",
        transfer_number="+14155550100",
        transfer_directory={"billing": "+442071234567"},
        public_url="https://voice.example.com/",
        log_level="debug",
    )
    assert s.public_url == "https://voice.example.com" and s.log_level == "DEBUG"


def test_the_voice_list_is_the_apis_closed_list():
    from openai.types.realtime.realtime_audio_config_output import Voice

    [literal] = [arg for arg in typing.get_args(Voice) if typing.get_origin(arg) is typing.Literal]
    assert set(VOICES) == set(typing.get_args(literal))


def test_unknown_telephony_variables_are_named_with_the_closest_setting():
    warnings = Settings.unknown_env({"TELEPHONY_VOIC": "marin", "TELEPHONY_MODEL": "x", "HOME": "/root"})
    assert warnings == ["TELEPHONY_VOIC is not a setting and is ignored; did you mean TELEPHONY_VOICE?"]


def test_serve_refuses_an_unwritable_records_path_at_start_and_warns_of_typos(tmp_path):
    (tmp_path / "not-a-dir").write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "telephony", "serve", "--port", "0"],
        cwd=tmp_path,
        env=_env(
            OPENAI_API_KEY="sk-test",
            TELEPHONY_RECORDS_PATH=str(tmp_path / "not-a-dir" / "calls.db"),
            TELEPHONY_DEAD_AIR_SECOND="3",
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "TELEPHONY_RECORDS_PATH" in proc.stderr and "writable" in proc.stderr
    assert "did you mean TELEPHONY_DEAD_AIR_SECONDS?" in proc.stderr


class _BrokenStore:
    def __init__(self) -> None:
        self.tried = asyncio.Event()

    async def save(self, record: object) -> None:
        self.tried.set()
        raise PermissionError("attempt to write a readonly database")

    async def get(self, call_sid: str) -> None:
        return None

    async def close(self) -> None:
        pass


@pytest.mark.anyio
async def test_healthz_is_not_healthy_while_records_fail():
    async with bridge() as b:
        assert (await b.get("/healthz")).status_code == 200
        broken = b.observer.store = _BrokenStore()
        call, _ = await b.live_call()
        [bridged] = list(b.admission.sessions)
        await call.hang_up()
        await bridged.wait_ended()
        await asyncio.wait_for(broken.tried.wait(), 5)  # the writer tried, failed, and will retry
        r = await b.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "records_failing"
        assert "readonly" in r.json()["records_error"]
