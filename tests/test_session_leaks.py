"""Item 1 of issue 12: every Realtime session that reaches the open state is
closed, whatever ends the call when. The fake server answers the upgrade after
``handshake_delay`` and counts sessions still open; each test ends calls at
chosen points of the open/close paths and checks that count is 0 after each."""

from __future__ import annotations

import asyncio
import random

import pytest

from telephony import tool
from telephony.io.app import drain
from telephony.testing import FakeRealtimeServer, FakeTwilioCall
from tests.audio_data import agent_pcm24
from tests.harness import bridge

pytestmark = pytest.mark.anyio

DELAY = 0.05  # the fake's handshake: long enough to hang up inside it, short for CI


async def _hang_up(call: FakeTwilioCall, how: str, max_bytes: int) -> None:
    if how == "close":
        await call.close()
    elif how == "stop":
        await call.stop()
    else:  # a frame over TELEPHONY_MAX_MESSAGE_BYTES: the server closes the call in ~ms
        await call.send_raw("x" * (max_bytes + 10))


async def _settled(fake: FakeRealtimeServer) -> None:
    await fake.wait_all_closed(timeout=3.0)
    assert fake.open_sessions == 0


async def _wait_handshaking(fake: FakeRealtimeServer) -> None:
    await fake.wait_handshaking(timeout=3.0)


@pytest.mark.parametrize("how", ["close", "stop", "oversize"])
async def test_hang_up_at_each_point_of_opening_leaks_no_session(how):
    async with bridge(reconnect_backoff=0.01, reconnect_attempts=3) as b:
        fake = b.fake
        fake.handshake_delay = DELAY
        limit = b.settings.max_message_bytes

        # 1. Right after start, before the connect has got anywhere.
        call = b.twilio()
        await call.connect()
        await call.start()
        await _hang_up(call, how, limit)
        await _settled(fake)

        # 2. While the upgrade is under way (the server holds its answer).
        call = b.twilio()
        await call.connect()
        await call.start()
        await _wait_handshaking(fake)
        await _hang_up(call, how, limit)
        await _settled(fake)

        # 3. The moment the server has the session open (before the bridge reads it).
        call = b.twilio()
        await call.connect()
        await call.start()
        session = await fake.next_session()
        await _hang_up(call, how, limit)
        await _settled(fake)

        # 4. Configured and live.
        call, session = await b.live_call()
        await _hang_up(call, how, limit)
        await _settled(fake)

        # 5. Mid-answer.
        call, session = await b.live_call()
        await session.respond_audio(agent_pcm24()[:48000].tobytes(), finish=False)
        await call.wait_for("media")
        await _hang_up(call, how, limit)
        await _settled(fake)

        # 6. During a barge-in (speech started over the agent's answer).
        call, session = await b.live_call()
        await session.respond_audio(agent_pcm24()[:48000].tobytes(), finish=False)
        await call.wait_for("media")
        await session.speech_started()
        await call.wait_for("clear")
        await _hang_up(call, how, limit)
        await _settled(fake)

        # 7. During a reconnect: the session drops, the new one is mid-handshake.
        call, session = await b.live_call()
        await session.close(1011, "internal error")
        await _wait_handshaking(fake)
        await _hang_up(call, how, limit)
        await _settled(fake)
        assert len(fake.sessions) >= 5  # steps 3-7 reached the open state on the server


async def test_hang_up_during_a_tool_and_during_rollover_leaks_no_session():
    started, release = asyncio.Event(), asyncio.Event()

    @tool
    async def slow_lookup(order: str) -> str:
        """Look an order up (slowly)."""
        started.set()
        await release.wait()
        return "ready"

    async with bridge([slow_lookup], session_rollover_seconds=0.2, reconnect_backoff=0.01) as b:
        fake = b.fake
        fake.handshake_delay = DELAY
        call, session = await b.live_call()
        await session.function_call("slow_lookup", {"order": "A1"})
        await asyncio.wait_for(started.wait(), 3)
        await call.close()
        await _settled(fake)
        release.set()

        # Rollover: the idle session is replaced; hang up while the new one connects.
        call, session = await b.live_call()
        await asyncio.wait_for(session.closed.wait(), 3)  # rolled over
        await _wait_handshaking(fake)
        await call.close()
        await _settled(fake)


async def test_server_drain_while_sessions_connect_leaks_none():
    async with bridge() as b:
        fake = b.fake
        fake.handshake_delay = DELAY
        calls = [b.twilio() for _ in range(3)]
        for call in calls:
            await call.connect()
            await call.start()
        await _wait_handshaking(fake)
        await drain(b.state, 0.0)
    # the server stopped (the bridge's exit): nothing stays open on the fake
    await _settled(fake)


async def test_randomized_hang_ups_leak_no_session():
    """N calls, each ended at a random time within the open path (seeded: any
    failure reproduces). Sessions leaked / N must be 0."""
    rng = random.Random(12)
    n = 30
    leaked = 0
    async with bridge() as b:
        fake = b.fake
        fake.handshake_delay = DELAY
        for _ in range(n):
            call = b.twilio()
            await call.connect()
            await call.start()
            try:
                await asyncio.wait_for(call.closed.wait(), rng.uniform(0.0, DELAY * 2))
            except TimeoutError:
                pass
            await _hang_up(call, rng.choice(["close", "stop", "oversize"]), b.settings.max_message_bytes)
            try:
                await fake.wait_all_closed(timeout=1.5)
            except TimeoutError:
                leaked += fake.open_sessions
                for s in fake.sessions:
                    if not s.closed.is_set():
                        await s.close()
    print(f"sessions leaked: {leaked}/{n}")
    assert leaked == 0, f"{leaked}/{n} sessions leaked"


async def test_connect_and_close_cancelled_at_every_await_point_leak_nothing():
    """The connector and close cancelled after k turns of the event loop, for
    every k until they finish on their own: each await point of both paths is hit."""
    from telephony.io.realtime.client import WebsocketsConnector
    from telephony.io.realtime.connections import quiet_close as _quiet_close

    async with FakeRealtimeServer() as fake:
        connector = WebsocketsConnector(fake.base_url.replace("http", "ws") + "/realtime?model=m", "sk-test")
        points = 0
        for k in range(10_000):
            task = asyncio.ensure_future(connector())
            for _ in range(k):
                await asyncio.sleep(0)  # one turn of the loop: the fault is placed, not waited for
            if task.done():
                conn = task.result()
                closing = asyncio.ensure_future(_quiet_close(conn))
                for _ in range(k % 7):
                    await asyncio.sleep(0)
                closing.cancel()
                await asyncio.gather(closing, return_exceptions=True)
                await _settled(fake)
                break
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if task.cancelled():
                points += 1
            else:  # it finished between the turn and the cancel
                await _quiet_close(task.result())
            await _settled(fake)
        assert points >= 3  # TCP connect, the upgrade, the server's answer
