"""The ``telephony`` command as a new operator meets it: version, help, the tools
the model sees, clear errors, and ``simulate`` / ``calls`` without side effects."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from telephony import __version__
from telephony.cli import main
from telephony.config import Settings
from telephony.records import SqliteCallStore
from telephony.simulate import simulate
from telephony.tools import ToolRegistry

ROOT = Path(__file__).resolve().parent.parent
CALLER_WAV = ROOT / "tests" / "data" / "caller-8k-ulaw.wav"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    """No .env and no operator settings leak in: each test says what it sets."""
    monkeypatch.chdir(tmp_path)
    for name in ("TELEPHONY_FROM_NUMBER", "TELEPHONY_RECORDS_PATH", "TELEPHONY_DATABASE_URL", "TELEPHONY_TOOLS"):
        monkeypatch.delenv(name, raising=False)


def _silent_wav(path: Path, seconds: float = 1.0) -> Path:
    body = b"\x00\x00" * int(8000 * seconds)
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"telephony {__version__}"


def test_bare_command_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("serve", "call", "simulate", "calls", "tools"):
        assert command in out
    assert out.startswith("usage: telephony")


def test_tools_prints_the_schemas_the_model_sees(capsys, monkeypatch):
    monkeypatch.setenv("TELEPHONY_ENABLE_END_CALL", "true")
    assert main(["tools", "--tools", str(ROOT / "examples" / "tools.py")]) == 0
    schemas = json.loads(capsys.readouterr().out)
    names = [t["name"] for t in schemas]
    assert "lookup_order" in names and "end_call" in names
    order = next(t for t in schemas if t["name"] == "lookup_order")
    assert order["type"] == "function" and order["parameters"]["required"] == ["order_id"]


def test_tools_prints_each_agents_schemas(capsys):
    assert main(["tools", "--tools", str(ROOT / "examples" / "agents.py")]) == 0
    by_agent = json.loads(capsys.readouterr().out)
    assert set(by_agent) == {"default", "billing", "sales"}
    assert "handoff_to_billing" in [t["name"] for t in by_agent["default"]]


def test_call_without_a_caller_id_names_the_setting(capsys, monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "x" * 32)
    monkeypatch.setenv("PUBLIC_URL", "https://voice.example.com")
    with pytest.raises(SystemExit) as exc:
        main(["call", "+15551234567"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "TELEPHONY_FROM_NUMBER" in err and "--from" in err


def test_calls_does_not_create_a_database(tmp_path, capsys, monkeypatch):
    db = tmp_path / "nothing-yet.db"
    monkeypatch.setenv("TELEPHONY_RECORDS_PATH", str(db))
    assert main(["calls"]) == 0
    assert "no calls recorded yet" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["calls", "show", "CA" + "1" * 32])
    assert not db.exists()


def test_calls_shows_what_each_call_cost(tmp_path, capsys, monkeypatch):
    from telephony.records import CallRecord

    db = tmp_path / "calls.db"
    store = SqliteCallStore(db)
    store.save_now(CallRecord("CA" + "1" * 32, started_at=1.0, outcome="completed", cost_usd=0.01234))
    store.save_now(CallRecord("CA" + "2" * 32, started_at=2.0, outcome="completed", cost_usd=None))
    store.close_now()
    monkeypatch.setenv("TELEPHONY_RECORDS_PATH", str(db))
    assert main(["calls"]) == 0
    listed = capsys.readouterr().out
    assert "cost=$0.0123" in listed and "cost=not priced" in listed
    assert main(["calls", "show", "CA" + "1" * 32]) == 0
    assert "cost $0.0123" in capsys.readouterr().out


@pytest.mark.parametrize("speed", ["0", "-1", "nan"])
def test_simulate_refuses_a_speed_that_is_not_positive(speed, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--audio", str(CALLER_WAV), "--offline", "--speed", speed])
    assert exc.value.code == 2 and "--speed must be more than 0" in capsys.readouterr().err


def test_simulate_records_apart_with_its_own_sid_and_caller(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TELEPHONY_RECORDS_PATH", str(tmp_path / "calls.db"))
    args = ["simulate", "--audio", str(CALLER_WAV), "--offline", "--speed", "4", "--from", "+15557654321"]
    args += ["--out", str(tmp_path / "heard.wav")]
    for _ in range(2):
        code = main(args)
        assert code == 0, capsys.readouterr()
    assert not (tmp_path / "calls.db").exists()  # the real records are untouched
    store = SqliteCallStore(tmp_path / "calls.simulated.db")
    from telephony.records import CallQuery

    records = store.list_now(CallQuery(limit=10))
    store.close_now()
    assert len(records) == 2 and records[0].call_sid != records[1].call_sid
    assert {r.from_number for r in records} == {"+15557654321"}


def test_simulate_never_records_in_the_real_database(tmp_path, capsys, monkeypatch):
    """With PostgreSQL configured, simulated calls still go to the SQLite file beside."""
    monkeypatch.setenv("TELEPHONY_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.setenv("TELEPHONY_RECORDS_PATH", str(tmp_path / "calls.db"))
    args = ["simulate", "--audio", str(CALLER_WAV), "--offline", "--speed", "4", "--out", str(tmp_path / "h.wav")]
    assert main(args) == 0, capsys.readouterr()
    assert (tmp_path / "calls.simulated.db").exists()


def test_simulate_records_where_told(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TELEPHONY_RECORDS_PATH", str(tmp_path / "calls.db"))
    args = ["simulate", "--audio", str(CALLER_WAV), "--offline", "--speed", "4", "--records", str(tmp_path / "x.db")]
    args += ["--out", str(tmp_path / "heard.wav")]
    assert main(args) == 0, capsys.readouterr()
    assert (tmp_path / "x.db").exists() and not (tmp_path / "calls.simulated.db").exists()


@pytest.mark.anyio
@pytest.mark.async_timeout(20)
async def test_simulate_says_no_speech_detected_instead_of_waiting(tmp_path):
    lines: list[str] = []
    settings = Settings(_env_file=None, records_path="")
    result = await simulate(
        _silent_wav(tmp_path / "silence.wav"),
        settings=settings,
        registry=ToolRegistry(),
        offline=True,
        out=tmp_path / "heard.wav",
        emit=lines.append,
        speed=4.0,
        no_speech_seconds=1.0,
    )
    assert result.no_speech and any("no speech detected" in line for line in lines), lines
