"""Recordings (TELEPHONY_RECORDING=twilio) through the real app, the fake Twilio
REST server and the fakes over loopback."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import numpy as np
import pytest

from telephony.audio.g711 import ULAW_TO_INT
from telephony.io.recording import LocalRecorder
from telephony.io.twilio.rest import TwilioRest
from tests.audio_data import agent_pcm24
from tests.harness import ACCOUNT, TOKEN, bridge

pytestmark = pytest.mark.anyio

# (the synchronous test below is not a coroutine: anyio leaves it alone)


async def test_twilio_recording_is_started_announced_and_stored_when_completed(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    async with bridge(rest=rest, recording="twilio", recording_notice="This call is recorded.") as b:
        answer = await b.post("/incoming-call", {"CallSid": "CA" + "a" * 32, "From": "+15550001111", "To": "+1555"})
        assert answer.text.index("<Say>This call is recorded.</Say>") < answer.text.index("<Connect")
        call, _session = await b.live_call()
        [req] = await asyncio.to_thread(rest_fake.wait_requests, 1)
        assert req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{call.call_sid}/Recordings.json"
        assert req.field("RecordingChannels") == "dual"
        assert req.field("RecordingStatusCallback") == f"{b.origin}/recording-status"
        await call.stop()
        await call.wait_closed()
        assert await b.observer.flush_records(5)
        url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1"
        form = {"CallSid": call.call_sid, "RecordingSid": "RE1", "RecordingUrl": url, "RecordingStatus": "completed"}
        assert (await b.post("/recording-status", form, sign=False)).status_code == 403
        assert (await b.post("/recording-status", form)).status_code == 204
        record = await b.observer.store.get(call.call_sid)
        assert record.recording == url and record.recording_sid == "RE1"


async def test_no_notice_and_no_recording_when_off(rest_fake):
    rest = TwilioRest(ACCOUNT, TOKEN, rest_fake.base_url)
    async with bridge(rest=rest, recording_notice="This call is recorded.") as b:
        answer = await b.post("/incoming-call", {"CallSid": "CA" + "a" * 32, "From": "+15550001111", "To": "+1555"})
        assert "<Say>" not in answer.text
        call, _session = await b.live_call()
        await call.stop()
        await call.wait_closed()
        assert not [r for r in rest_fake.requests if "Recordings" in r.path]


def _stereo(path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    channels, rate = struct.unpack("<HI", data[22:28])
    assert (channels, rate) == (2, 8000)
    size = struct.unpack("<I", data[40:44])[0]
    assert size == len(data) - 44  # the header matches what was written
    return np.frombuffer(data[44:], dtype="<i2").reshape(-1, 2)


async def test_local_recording_is_stereo_caller_left_agent_as_heard_right_and_served(tmp_path):
    async with bridge(recording="local", recordings_dir=str(tmp_path), api_token="rec-token") as b:
        call, session = await b.live_call()
        words = agent_pcm24()[:7200].tobytes()  # 0.3 s of the agent
        rid, item = await session.respond_audio(words, finish=False)
        await session.audio_done(rid, item)
        await session.response_done(rid)
        sent = len(call.media_bytes())
        await call.wait_media_bytes(sent)
        caller = bytes(range(0, 256, 2)) * 50  # 0.8 s of caller audio, paced as Twilio does
        await call.send_audio(caller, pace=1.0)
        await call.stop()
        await call.wait_closed()
        assert await b.observer.flush_records(5)
        record = await b.observer.store.get(call.call_sid)
        path = Path(record.recording)
        assert path == tmp_path / f"{call.call_sid}.wav"
        frames = _stereo(path)
        assert len(frames) == len(caller)
        assert np.array_equal(frames[:, 0], ULAW_TO_INT[np.frombuffer(caller, dtype=np.uint8)])
        agent = ULAW_TO_INT[np.frombuffer(call.media_bytes(), dtype=np.uint8)]
        assert np.array_equal(frames[: len(agent), 1], agent)  # the agent, as played
        assert not frames[len(agent) :, 1].any()  # then silence
        denied = await b.get(f"/calls/{call.call_sid}/recording")
        assert denied.status_code == 401
        served = await b.get(f"/calls/{call.call_sid}/recording", authorization="Bearer rec-token")
        assert served.status_code == 200 and served.content == path.read_bytes()


async def test_the_record_is_written_once_its_recording_is_complete(tmp_path, monkeypatch):
    """The record names the WAV file: whoever reads it after the record is written
    finds the whole call, even when the disk is slow (each write takes 0.3 s here)."""
    import threading

    write = LocalRecorder._write
    slow = threading.Event()

    def slow_write(self, left: bytes, right: bytes) -> None:
        slow.wait(0.3)  # the writer thread, not the event loop: a slow disk
        write(self, left, right)

    monkeypatch.setattr(LocalRecorder, "_write", slow_write)
    async with bridge(recording="local", recordings_dir=str(tmp_path)) as b:
        call, _session = await b.live_call()
        caller = bytes(range(0, 256, 2)) * 25  # 0.4 s
        await call.send_audio(caller, pace=1.0)
        await call.stop()
        await call.wait_closed()
        assert await b.observer.flush_records(5)
        record = await b.observer.store.get(call.call_sid)
        assert len(_stereo(Path(record.recording))) == len(caller)


def test_a_clear_cuts_what_the_caller_did_not_hear_from_the_recording(tmp_path):
    rec = LocalRecorder(tmp_path / "CA1.wav")
    agent = bytes(range(1, 161)) * 4  # 80 ms sent to Twilio
    rec.agent(agent)
    rec.caller(b"\x7f" * 160)  # 20 ms pass: the first 20 ms played
    rec.cleared()  # barge-in: Twilio drops the rest
    rec.caller(b"\x7f" * 160)
    rec._flush()
    for f in rec._futures:
        f.result(5)
    frames = _stereo(rec.path)
    assert np.array_equal(frames[:160, 1], ULAW_TO_INT[np.frombuffer(agent[:160], dtype=np.uint8)])
    assert np.array_equal(frames[160:, 1], np.full(160, ULAW_TO_INT[0xFF]))  # silence after the cut
