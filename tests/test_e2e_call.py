"""A whole call through the real app over loopback WebSockets."""

from __future__ import annotations

import asyncio

import pytest

from telephony.audio import ModelToCaller
from telephony.config import DEFAULT_MODEL
from tests.audio_data import agent_pcm24, caller_ulaw
from tests.harness import IO_MODES, bridge

pytestmark = pytest.mark.anyio


async def test_whole_call_audio_both_ways_and_session_closed(io):
    async with bridge(server_options=IO_MODES[io]) as b:
        call = b.twilio()
        await call.connect()
        await call.start()
        session = await b.fake.next_session()
        assert "authorization" in {k.lower() for k in session.headers}
        assert session.headers.get("authorization") == "Bearer sk-test-key-abcdef"
        assert "openai-beta" not in session.headers
        assert session.path == f"/v1/realtime?model={DEFAULT_MODEL}"
        update = await session.wait_for("session.update")
        fmt = update["session"]["audio"]
        assert fmt["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert fmt["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
        # The session is configured exactly once, before any audio.
        assert session.received[0]["type"] == "session.update"

        ulaw = caller_ulaw()
        await call.send_audio(ulaw)
        audio = await session.wait_audio(len(ulaw) * 6)
        assert len(audio) == len(ulaw) * 6  # 3x samples, 2 bytes each: nothing dropped or doubled

        pcm = agent_pcm24()[:24000].tobytes()  # 1 s
        await session.respond_audio(pcm, chunk_bytes=4801)  # odd-sized deltas
        await call.wait_for("mark", count=1)
        # 1 s at 24 kHz -> 8000 bytes at 8 kHz, plus the filter's 2 x 17-sample
        # tail flushed at the end of the item: every output a real sample reaches.
        await call.wait_media_bytes(8034)
        media = call.media_bytes()
        assert len(media) == 8034
        reference = ModelToCaller()
        assert media == reference.convert(pcm) + reference.flush()  # bit for bit
        # Every media message is followed by a mark with our name.
        kinds = [m["event"] for m in call.received if m["event"] in ("media", "mark")]
        assert kinds[0::2] == ["media"] * (len(kinds) // 2) and kinds[1::2] == ["mark"] * (len(kinds) // 2)

        await call.hang_up()
        await asyncio.wait_for(session.closed.wait(), 1.0)  # closed within a second
        assert b.observer.open_realtime == 0
