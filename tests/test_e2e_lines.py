"""Real phone lines through the real app (issue 15): the barge-in policy and the hold
sound over loopback."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from telephony import tool
from telephony.audio import DELAY_MS, ModelToCaller
from telephony.audio.hold import builtin_hold_sound
from telephony.testing import lines
from tests.audio_data import agent_pcm24, caller_pcm8
from tests.harness import bridge

pytestmark = pytest.mark.anyio


def _quiet(ms: int) -> bytes:
    return lines.to_ulaw(lines.noise(ms * 8, -65.0, seed=ms))


def _speech(ms: int) -> bytes:
    return lines.to_ulaw(caller_pcm8()[20 * 8 : (20 + ms) * 8])


async def test_backchannel_plays_through_and_a_real_interruption_cuts_the_answer():
    async with bridge(barge_in_min_ms=400) as b:
        call, session = await b.live_call()
        update = session.events("session.update")[0]
        assert update["session"]["audio"]["input"]["turn_detection"]["interrupt_response"] is False

        pcm = np.tile(agent_pcm24(), 2)[: 24000 * 8].tobytes()  # an 8 s answer, queued at "Twilio"
        await session.respond_audio(pcm, chunk_bytes=4800, finish=False)
        await call.wait_echoed(3)

        # "mhm" (250 ms) in the middle of the answer; the server hears it too.
        await call.send_audio(_quiet(600) + _speech(250), pace=1.0)
        item = await session.speech_started(audio_start_ms=600)
        await call.send_audio(_quiet(600), pace=1.0)
        await session.speech_stopped(item, audio_end_ms=850)
        await call.send_audio(_quiet(200), pace=1.0)
        assert not call.events("clear")
        assert not session.events("response.cancel") and not session.events("conversation.item.truncate")

        # A real interruption: 1.5 s of speech; the bridge cuts the answer after 400 ms of it.
        await call.send_audio(_speech(200), pace=1.0)
        await session.speech_started(audio_start_ms=1650)
        await call.send_audio(_speech(1500)[200 * 8 :], pace=1.0)
        await call.wait_for("clear")
        await session.wait_for("response.cancel")
        truncate = await session.wait_for("conversation.item.truncate")
        heard_ms = call.heard_at_last_clear / 8 - DELAY_MS
        assert abs(truncate["audio_end_ms"] - heard_ms) <= 120, (truncate["audio_end_ms"], heard_ms)
        assert b.observer.counters["barge_ins"] == 1


async def test_speech_only_the_server_hears_still_interrupts_after_the_fallback():
    """The local detector hears nothing (a quiet line): the server's word alone cuts
    the answer once it has heard the caller for the minimum + its silence window
    + 200 ms (1.1 s here), counted in the caller's audio."""
    async with bridge(barge_in_min_ms=400) as b:
        call, session = await b.live_call()
        pcm = np.tile(agent_pcm24(), 2)[: 24000 * 8].tobytes()
        await session.respond_audio(pcm, chunk_bytes=4800, finish=False)
        await call.wait_echoed(3)
        await call.send_audio(_quiet(200), pace=1.0)
        await session.speech_started(audio_start_ms=200)
        await call.send_audio(_quiet(900), pace=1.0)
        await session.wait_audio(1100 * 48)  # the bridge has handled every frame so far
        assert not call.events("clear")  # 0.9 s of the server's speech: could still be a "mhm"
        await call.send_audio(_quiet(400), pace=1.0)
        await call.wait_for("clear")
        await session.wait_for("response.cancel")
        await session.wait_for("conversation.item.truncate")
        assert b.observer.counters["barge_ins"] == 1


def _media(messages: list[dict]) -> bytes:
    return b"".join(base64.b64decode(m["media"]["payload"]) for m in messages if m["event"] == "media")


async def test_a_slow_tool_plays_the_hold_sound_then_clears_it_before_the_full_answer():
    release = asyncio.Event()

    @tool
    async def slow_lookup(query: str) -> str:
        """A tool that waits for the test to release it."""
        await release.wait()
        return f"slow result for {query}"

    async with bridge(tools=[slow_lookup], hold_after_ms=300) as b:
        call, session = await b.live_call()
        await session.function_call("slow_lookup", {"query": "q"})
        await call.wait_media_bytes(2 * 1600)  # the hold sound, in 200 ms chunks
        sound = builtin_hold_sound()
        assert _media(call.received)[:3200] == sound[:3200]
        assert not session.events("conversation.item.truncate")

        release.set()
        await session.wait_for("response.create")
        answer = agent_pcm24()[:24000].tobytes()  # 1 s
        await session.respond_audio(answer, chunk_bytes=4800)
        clear = await call.wait_for("clear")
        at = call.received.index(clear)
        expected = ModelToCaller()
        answer_ulaw = expected.convert(answer) + expected.flush()
        await call.wait_media_bytes(len(_media(call.received[:at])) + len(answer_ulaw))
        # After the clear: the answer, whole, and nothing of the hold sound.
        assert _media(call.received[at:]) == answer_ulaw
        assert [m for m in call.received[at:] if m["event"] == "mark" and m["mark"]["name"].startswith("h")] == []


async def test_the_fake_servers_vad_follows_turn_detection_and_the_bridge_decides():
    async with bridge(barge_in_min_ms=400) as b:
        b.fake.vad = True  # the fake server hears the caller audio itself
        call, session = await b.live_call()
        assert session.vad is not None
        pcm = np.tile(agent_pcm24(), 2)[: 24000 * 8].tobytes()
        await session.respond_audio(pcm, chunk_bytes=4800, finish=False)
        await call.wait_echoed(3)

        mhm = _quiet(400) + _speech(250) + _quiet(700)
        await call.send_audio(mhm, pace=1.0)
        await session.wait_audio(6 * len(mhm))  # all of it reached the server (3:1, 2 bytes a sample)
        assert len(session.vad.starts) == 1  # the server heard the "mhm"...
        assert session.active_response is not None  # ...and, told interrupt_response=false, did not cut
        assert not call.events("clear") and not session.events("response.cancel")

        await call.send_audio(_speech(1500), pace=1.0)
        await call.wait_for("clear")
        await session.wait_for("response.cancel")
        assert len(session.vad.starts) == 2
