"""The public test kit: the README's snippet runs as written, and waits that run
out say what they waited for."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from telephony.testing import FakeTwilioRest, bridge

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_snippet() -> str:
    section = README.read_text().split("## Test kit", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Test kit section has one Python snippet"
    return blocks[0]


async def test_the_readme_snippet_runs_as_written():
    namespace: dict[str, object] = {"__name__": "readme_snippet"}
    exec(compile(readme_snippet(), str(README), "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert len(tests) == 1
    await tests[0]()  # type: ignore[operator]


async def test_waits_that_run_out_say_what_they_waited_for():
    async with bridge() as b:
        call, session = await b.live_call()
        with pytest.raises(TimeoutError, match=r"waited 0\.2 s for 1 x response\.create"):
            await session.wait_for("response.create", timeout=0.2)
        with pytest.raises(TimeoutError, match=r"waited 0\.2 s for 1 x clear"):
            await call.wait_for("clear", timeout=0.2)
        with pytest.raises(TimeoutError, match=r"waited 0\.2 s for the bridge to open a Realtime session"):
            await b.fake.next_session(timeout=0.2)
        with pytest.raises(TimeoutError, match=rf"waited 0\.2 s for the bridge to close call {call.call_sid}"):
            await call.wait_closed(timeout=0.2)


async def test_fake_twilio_rest_is_exported_and_serves_the_bridge():
    with FakeTwilioRest() as rest:
        async with bridge(twilio_api_base_url=rest.base_url, transfer_number="+15550009999") as b:
            call, session = await b.live_call()
            rid, _call_id = await session.function_call("transfer_call", {})
            await session.response_done(rid)
            (request,) = await asyncio.to_thread(rest.wait_requests, 1)
            await call.wait_closed(10)
    assert request.method == "POST" and call.call_sid in request.path
    assert "+15550009999" in request.form["Twiml"][0]


def test_what_the_fake_phone_played_is_placed_in_time_with_silence_between():
    """``FakeTwilioCall.played_between``: what a line's echo is made of, sample by
    sample in time: chunks at their playback times, silence (0xFF) in the gaps, and
    what a ``clear`` cut is gone from then on."""
    from telephony.testing import FakeTwilioCall

    call = FakeTwilioCall("ws://127.0.0.1:9/media-stream")
    rate = call.rate
    call._play.append((10.0, b"\x01" * 800))  # 10.0-10.1 s
    call._play.append((10.3, b"\x02" * 1600))  # 10.3-10.5 s
    got = call.played_between(9.95, 10.55)
    assert got == b"\xff" * 400 + b"\x01" * 800 + b"\xff" * 1600 + b"\x02" * 1600 + b"\xff" * 400
    assert len(got) == round(0.6 * rate)
    call._clear(10.4)  # half the second chunk played
    assert call.played_between(10.25, 10.55) == b"\xff" * 400 + b"\x02" * 800 + b"\xff" * 1200
