"""Real phone lines through the real app (issue 15): the barge-in policy over loopback."""

from __future__ import annotations

import numpy as np
import pytest

from telephony.audio import DELAY_MS
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
