"""Keys out: the agent presses keys in a phone menu (send_dtmf) through the real app."""

from __future__ import annotations

import pytest

from telephony.tools.builtin import send_dtmf_tool
from tests.audio_data import agent_pcm24
from tests.dtmf import decode_dtmf
from tests.harness import bridge

pytestmark = pytest.mark.anyio


async def test_send_dtmf_tool_plays_tones_after_the_agents_words_and_returns_once_played():
    async with bridge(tools=[send_dtmf_tool()]) as b:
        call, session = await b.live_call()
        update = session.events("session.update")[0]
        assert "send_dtmf" in {t["name"] for t in update["session"]["tools"]}
        words = agent_pcm24()[:4800].tobytes()  # 0.2 s "pressing 1 then #"
        rid, item = await session.respond_audio(words, finish=False)
        await session.audio_done(rid, item)
        await session.function_call("send_dtmf", {"digits": "1w#"}, call_id="call_k")
        output = await session.wait_for(
            "conversation.item.create", lambda e: e["item"].get("call_id") == "call_k", timeout=10
        )
        assert output["item"]["call_id"] == "call_k" and "Pressed 1w#" in output["item"]["output"]
        # The output came after every tone was heard (their marks echoed).
        heard = call.heard()
        assert len(heard) == len(call.media_bytes())
        assert decode_dtmf(heard) == "1#"
        assert len(heard) >= 2 * 1600 + 4000  # two keys and the 0.5 s pause
        await session.function_call("send_dtmf", {"digits": "12x"}, call_id="call_bad")
        bad = await session.wait_for(
            "conversation.item.create", lambda e: e["item"].get("call_id") == "call_bad", timeout=5
        )
        assert "0-9" in bad["item"]["output"]  # told to the model, nothing played
        assert len(call.media_bytes()) == len(heard)
        assert not b.validation_errors()
