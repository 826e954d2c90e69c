"""The console and the browser phone in a real headless Chromium (Debian's, driven
by Playwright): log in, watch a live call appear, change state and end, open its
timeline; talk to the agent from a fake microphone. A screenshot of each page is
kept (tests/artifacts/, and the test's tmp dir)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from telephony import tool
from telephony.audio.wav import write_wav
from tests.audio_data import agent_pcm24, caller_pcm8
from tests.browser import chromium, screenshot
from tests.harness import bridge

pytestmark = pytest.mark.anyio

API_TOKEN = "console-token-0123456789abcdef"
DOCS = Path(__file__).resolve().parent.parent / "docs"


@tool
def find_booking(name: str) -> dict:
    """Look up a booking by the caller's name."""
    return {"name": name, "table": 4, "time": "19:30"}


async def log_in(page, origin: str) -> None:
    await page.goto(origin + "/console")
    assert page.url.endswith("/console/login")
    await page.fill("#token", API_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(origin + "/console")


@pytest.mark.async_timeout(60)
async def test_console_shows_a_live_call_then_its_timeline(tmp_path):
    async with chromium() as browser, bridge(tools=[find_booking], api_token=API_TOKEN) as b:
        page = await browser.new_page(viewport={"width": 1100, "height": 760})
        await log_in(page, b.origin)
        await page.wait_for_selector("#live-empty", state="visible")
        await screenshot(page, "console-login-live-empty", tmp_path)

        call, session = await b.live_call(parameters={"From": "+15550001111", "To": "+15550002222"})
        row = page.locator(f'tr[data-call-sid="{call.call_sid}"]')
        await row.wait_for()
        assert await row.locator("td").nth(1).text_content() == "+15550001111"
        assert await row.locator("td.state").text_content() == "listening"

        # The caller speaks; the agent looks a booking up, then answers, and is cut off.
        caller_item = await session.speech_started()
        await session.speech_stopped(caller_item)
        await session.function_call("find_booking", {"name": "Ada <Lovelace>"})
        await session.wait_for("response.create")
        rid, item = await session.respond_audio(agent_pcm24()[:48000].tobytes(), transcript=None, finish=False)
        await row.locator("td.state", has_text="speaking").wait_for()
        await screenshot(page, "console-live-call", tmp_path)
        await call.wait_echoed(2)
        await session.speech_started()  # barge-in
        await call.wait_for("clear")
        await row.locator("td.state", has_text="listening").wait_for()
        await session.audio_done(rid, item, "Your table for four is at half past seven, and")
        await session.response_done(
            rid, "cancelled", "turn_detected", usage={"total_tokens": 900, "input_tokens": 700, "output_tokens": 200}
        )
        await session.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "event_id": "e1",
                "item_id": caller_item,
                "content_index": 0,
                "transcript": "Hi, <b>is</b> my table booked? The name is Ada Lovelace.",
                "usage": {"type": "duration", "seconds": 2},
            }
        )
        await call.hang_up()
        await row.wait_for(state="detached")
        await page.wait_for_selector("#live-empty", state="visible")
        await asyncio.gather(*(s.wait_ended() for s in list(b.admission.sessions)))
        await b.observer.flush_records()

        await page.click("nav >> text=History")
        await page.wait_for_url("**/console/calls")
        link = page.locator(f'a[href="/console/calls/{call.call_sid}"]')
        await link.wait_for()
        await screenshot(page, "console-history", tmp_path)
        await link.click()
        await page.wait_for_selector("#timeline")
        timeline = await page.locator("#timeline").inner_text()
        assert "Hi, <b>is</b> my table booked?" in timeline  # shown as text, not markup
        assert "find_booking" in timeline and '"table": 4' in timeline
        assert "agent cut at" in timeline and "Your table for four" in timeline
        assert "ms after the caller stopped" in timeline
        assert "700 tokens in, 200 out" in timeline
        facts = await page.locator("dl.facts").inner_text()
        assert "+15550001111" in facts and "completed" in facts
        shot = await screenshot(page, "console-call", tmp_path)
        # The README's screenshot: made when missing, or remade with TELEPHONY_UPDATE_SCREENSHOT=1
        # (not on every run, which would leave the work tree changed).
        if not (DOCS / "console-call.png").exists() or os.environ.get("TELEPHONY_UPDATE_SCREENSHOT") == "1":
            DOCS.mkdir(exist_ok=True)
            shutil.copyfile(shot, DOCS / "console-call.png")

        # Logging out ends the session.
        await page.click("nav button")
        await page.wait_for_url("**/console/login")
        await page.goto(b.origin + "/console/calls")
        assert page.url.endswith("/console/login")


_AT_LEAST = """([id, minimum]) => new Promise((resolve) => {
  const el = document.getElementById(id);
  const check = () => Number(el.textContent) >= minimum && (resolve(Number(el.textContent)), true);
  if (!check()) new MutationObserver(check).observe(el, { childList: true, characterData: true, subtree: true });
})"""


async def counter_at_least(page, name: str, minimum: int, timeout: float = 10.0) -> int:
    """Wait until the phone page's counter ``#phone-<name>`` reaches ``minimum`` (a
    MutationObserver, so it runs under the page's Content-Security-Policy)."""
    return int(await asyncio.wait_for(page.evaluate(_AT_LEAST, [f"phone-{name}", minimum]), timeout))


def best_match(heard8: np.ndarray, reference: np.ndarray) -> float:
    """The highest normalized cross-correlation of ``heard8`` against any stretch of
    ``reference`` (looped once, as the fake microphone loops): near 1 when the same
    speech, near 0 for a tone or noise."""
    ref = np.concatenate([reference, reference]).astype(np.float64)
    seg = heard8.astype(np.float64) - heard8.mean()
    n, size = len(seg), 1 << int(np.ceil(np.log2(len(ref) + len(seg))))
    dots = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(seg, size)), size)[: len(ref) - n + 1]
    sums = np.concatenate([[0.0], np.cumsum(ref)])
    squares = np.concatenate([[0.0], np.cumsum(ref * ref)])
    window_sum = sums[n:] - sums[:-n]
    window_energy = np.maximum(squares[n:] - squares[:-n] - window_sum**2 / n, 1e-9)
    return float(np.max(dots / np.sqrt(window_energy * np.dot(seg, seg))))


def fake_microphone(path: Path) -> Path:
    """The caller sample as 16-bit PCM at 48 kHz (what Chromium's fake capture reads),
    with a second of silence after it (the file loops)."""
    speech = caller_pcm8()
    pcm8 = np.concatenate([speech, np.zeros(8000, dtype=np.int16)])
    pcm48 = np.repeat(pcm8, 6)  # the browser resamples to the page's 8 kHz anyway
    write_wav(path, pcm48, 48000)
    return path


@pytest.mark.async_timeout(60)
async def test_browser_phone_talks_to_the_agent_through_the_media_stream_path(tmp_path):
    wav = fake_microphone(tmp_path / "mic.wav")
    args = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    async with chromium(args) as browser, bridge(api_token=API_TOKEN) as b:
        context = await browser.new_context(viewport={"width": 1100, "height": 700})
        await context.grant_permissions(["microphone"], origin=b.origin)
        page = await context.new_page()
        await log_in(page, b.origin)
        await page.click("nav >> text=Phone")
        await page.wait_for_url("**/console/phone")
        await page.click("#phone-call")

        session = await b.fake.next_session(timeout=10)
        update = await session.wait_for("session.update")
        assert update["session"]["audio"]["input"]["format"]["type"] == "audio/pcm"
        # The model hears the microphone: the caller's speech, not silence or the fake device's beep.
        heard = np.frombuffer(await session.wait_audio(2 * 48000, timeout=10), dtype=np.int16)
        match = best_match(heard[12000:48000:3], caller_pcm8())  # 0.5–2 s, 24 -> 8 kHz
        print(json.dumps({"mic_to_model_correlation": round(match, 3)}))
        assert match > 0.6, match

        live = list(b.observer.live.calls.values())
        assert len(live) == 1 and live[0].console and live[0].call_sid.startswith("console-")

        # The agent answers: the page plays it and echoes the marks as it plays.
        answer = agent_pcm24()[:24000].tobytes()  # 0.5 s
        _rid, _item = await session.respond_audio(answer, transcript="Hello from your agent.")
        played = await counter_at_least(page, "played", 4000)  # 0.5 s at 8 kHz
        await counter_at_least(page, "marks", 1)
        sessions = list(b.admission.sessions)
        assert len(sessions) == 1
        await screenshot(page, "console-phone", tmp_path)

        # Barge-in: the server's clear reaches the page.
        await session.respond_audio(agent_pcm24()[:96000].tobytes(), transcript=None, finish=False)  # 4 s
        await counter_at_least(page, "played", played + 800)
        await session.speech_started()
        await counter_at_least(page, "clears", 1)
        # The model is told what the page played before the cut, not all it was sent.
        cut = (await session.wait_for("conversation.item.truncate"))["audio_end_ms"]
        assert 0 < cut < 4000, cut

        await page.click("#phone-hangup")
        await asyncio.wait_for(session.closed.wait(), 5)
        await asyncio.gather(*(s.wait_ended() for s in sessions))
        assert b.observer.counters["console_phone_streams"] == 1
        assert b.observer.live.calls == {}
        print(json.dumps({"played_samples": played}))
