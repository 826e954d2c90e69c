"""Call records (SQLite, the API, the CLI) and Prometheus metrics, as calls happen."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from telephony import tool
from telephony.records import SqliteCallStore
from tests.audio_data import agent_pcm24
from tests.harness import bridge

pytestmark = pytest.mark.anyio


@tool
def weather(city: str) -> dict:
    """Weather."""
    return {"city": city, "sky": "clear"}


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _full_call(b, session_hook=None):
    call, session = await b.live_call()
    caller_item = await session.speech_started()
    await session.speech_stopped(caller_item)
    rid, _cid = await session.function_call("weather", {"city": "Oslo"})
    await session.wait_for("response.create")
    rid, item = await session.respond_audio(agent_pcm24()[:24000].tobytes(), transcript=None, finish=False)
    await call.wait_echoed(2)
    await session.speech_started()  # barge-in
    await call.wait_for("clear")
    await session.audio_done(rid, item, "It is clear in Oslo today, and")
    await session.response_done(
        rid,
        status="cancelled",
        reason="turn_detected",
        usage={"total_tokens": 50, "input_tokens": 40, "output_tokens": 10},
    )
    await session.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "e",
            "item_id": caller_item,
            "content_index": 0,
            "transcript": "What's the weather in Oslo?",
            "usage": {"type": "duration", "seconds": 1},
        }
    )
    await call.dtmf("7")
    await call.hang_up()
    await asyncio.wait_for(session.closed.wait(), 2)
    return call


async def test_records_and_metrics_follow_a_call(tmp_path):
    db = tmp_path / "calls.db"
    async with bridge(tools=[weather], records_path=str(db), api_token="records-token-xyz") as b:
        before = (await b.get("/metrics")).text
        assert _metric(before, "telephony_calls_total") == 0
        call = await _full_call(b)
        # The session's cleanup runs after the socket closes: wait for it, then the write.
        await asyncio.gather(*(s.wait_ended() for s in list(b.admission.sessions)))
        await b.observer.flush_records()

        text = (await b.get("/metrics")).text
        assert _metric(text, 'telephony_calls_total{outcome="completed"}') == 1
        assert _metric(text, "telephony_barge_ins_total") == 1
        assert _metric(text, 'telephony_tool_calls_total{result="ok",tool="weather"}') == 1
        assert _metric(text, "telephony_tool_duration_seconds_count") == 1
        assert _metric(text, "telephony_response_latency_seconds_count") == 1
        assert _metric(text, 'telephony_transcode_frames_total{direction="out"}') >= 1
        assert _metric(text, "telephony_active_calls") == 0

        # The API needs the token.
        assert (await b.get("/calls")).status_code == 401
        auth = {"Authorization": "Bearer records-token-xyz"}
        listing = (await b.get("/calls", **auth)).json()
        assert [c["call_sid"] for c in listing] == [call.call_sid]
        assert listing[0]["outcome"] == "completed" and listing[0]["tool_calls"] == 1
        record = (await b.get(f"/calls/{call.call_sid}", **auth)).json()
        assert record["from_number"] == "+15550001111" and record["to_number"] == "+15550002222"
        assert [(e["role"], e["text"]) for e in record["transcript"]] == [
            ("caller", "What's the weather in Oslo?"),
            ("agent", "It is clear in Oslo today, and"),
        ]
        tool_call = record["tool_calls"][0]
        assert tool_call["name"] == "weather" and tool_call["ok"] is True
        assert '"sky": "clear"' in tool_call["result"] and tool_call["duration_ms"] >= 0
        assert record["barge_ins"][0]["truncated"][0]["audio_end_ms"] > 0
        assert record["usage"]["total_tokens"] == 80 and record["dtmf"] == "•"  # masked by default
        assert record["duration_s"] > 0 and record["outcome"] == "completed"
        assert (await b.get("/calls/CA404", **auth)).status_code == 404
    sid = call.call_sid
    # Read back by a new store (the file outlives the server), and by the CLI.
    store = SqliteCallStore(tmp_path / "calls.db")
    assert (await store.get(sid)).outcome == "completed"
    env = {**os.environ, "TELEPHONY_RECORDS_PATH": str(tmp_path / "calls.db")}
    out = subprocess.run(
        [sys.executable, "-m", "telephony", "calls"], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and sid in out.stdout and "completed" in out.stdout
    show = subprocess.run(
        [sys.executable, "-m", "telephony", "calls", "show", sid], env=env, capture_output=True, text=True, timeout=30
    )
    assert show.returncode == 0, show.stderr
    assert "caller: What's the weather in Oslo?" in show.stdout and "weather(" in show.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "telephony", "calls", "show", "CAnope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "no call CAnope" in missing.stderr


async def test_records_api_is_off_without_a_token():
    async with bridge() as b:
        r = await b.get("/calls")
        assert r.status_code == 403 and "TELEPHONY_API_TOKEN" in r.json()["error"]
