"""Barge-in through the real app: clear at once, truncate to what was heard,
no stale audio after the clear, the next answer plays normally."""

from __future__ import annotations

import asyncio
import base64

import pytest

from telephony.audio import DELAY_MS, ModelToCaller
from tests.audio_data import agent_pcm24
from tests.harness import IO_MODES, bridge

pytestmark = pytest.mark.anyio


def _media(messages: list[dict]) -> bytes:
    return b"".join(base64.b64decode(m["media"]["payload"]) for m in messages if m["event"] == "media")


async def test_barge_in_clears_truncates_exactly_and_drops_stale_audio(io):
    async with bridge(server_options=IO_MODES[io]) as b:
        call, session = await b.live_call()

        pcm = agent_pcm24()[:72000].tobytes()  # 3 s, sent much faster than real time
        rid, item = await session.respond_audio(pcm, chunk_bytes=4800, finish=False)
        await call.wait_echoed(5)  # about 0.5 s has played, the rest is queued at "Twilio"
        await session.speech_started(audio_start_ms=1000)

        clear = await call.wait_for("clear")
        assert clear["streamSid"] == call.stream_sid
        truncate = await session.wait_for("conversation.item.truncate")
        assert truncate["item_id"] == item and truncate["content_index"] == 0
        heard_ms = call.heard_at_last_clear / 8 - DELAY_MS  # what the caller heard, in model time
        assert 450 <= heard_ms <= 800
        # Exact to within loopback latency and scheduling, never past what was heard + 10 ms.
        assert abs(truncate["audio_end_ms"] - heard_ms) <= 15, (truncate["audio_end_ms"], heard_ms)
        assert truncate["audio_end_ms"] <= 3000  # clamped to what was sent
        assert not session.events("response.cancel")  # interrupt_response does it server-side

        # Late audio of the interrupted item must not reach the caller.
        media_before = len(call.events("media"))
        clear_index = call.received.index(clear)
        await session.audio_delta(rid, item, pcm[:9600])
        await session.audio_done(rid, item)
        await session.response_done(rid, status="cancelled", reason="turn_detected")

        # The next answer plays normally, from a clean filter state.
        answer = agent_pcm24()[30000:40000].tobytes()
        await session.respond_audio(answer, chunk_bytes=2000)
        expected = ModelToCaller()
        expected_bytes = expected.convert(answer) + expected.flush()

        # Wait until as many bytes as the answer makes arrived after the clear (stale ones would count too).
        await call.wait_media_bytes(len(_media(call.received[:clear_index])) + len(expected_bytes))
        assert _media(call.received[clear_index:]) == expected_bytes  # nothing stale, nothing lost
        assert len(call.events("media")) > media_before
        assert b.observer.counters["barge_ins"] == 1


async def test_speech_with_nothing_playing_is_not_a_barge_in():
    async with bridge() as b:
        call, session = await b.live_call()
        await session.respond_audio(agent_pcm24()[:2400].tobytes())  # 100 ms
        await call.wait_echoed(2)  # one delta + the filter tail: all of it has played
        await session.speech_started()
        # A barrier: caller audio sent after this point arrives after the bridge
        # handled speech_started, so anything it sent would already be here.
        await call.send_audio(b"\xff" * 160)
        await session.wait_audio(960)
        await asyncio.wait_for(call.send_audio(b"\xff" * 160), 1)
        await session.wait_audio(1920)
        assert not call.events("clear")
        assert not session.events("conversation.item.truncate")
