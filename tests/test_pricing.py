"""Cost per call: response.done usage split by kind, priced per model; in the
record, the console and the telephony_cost_usd_total metric."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from openai.types.realtime.realtime_response_usage import RealtimeResponseUsage
from pydantic import ValidationError

from telephony.config import Settings
from telephony.pricing import DEFAULT_PRICES, Prices, cost_usd, usage_tokens
from tests.harness import bridge

pytestmark = pytest.mark.anyio

#: A usage as the Realtime API reports it (validated against the openai SDK's model).
USAGE = RealtimeResponseUsage.model_validate(
    {
        "total_tokens": 1650,
        "input_tokens": 1100,
        "output_tokens": 550,
        "input_token_details": {
            "text_tokens": 100,
            "audio_tokens": 1000,
            "image_tokens": 0,
            "cached_tokens": 240,
            "cached_tokens_details": {"text_tokens": 40, "audio_tokens": 200, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 50, "audio_tokens": 500},
    }
).model_dump(exclude_none=True)
# gpt-realtime-1.5 per 1M: text 4 in, 0.40 cached, 16 out; audio 32 in, 0.40 cached, 64 out
EXPECTED = (60 * 4 + 40 * 0.40 + 50 * 16 + 800 * 32 + 200 * 0.40 + 500 * 64) / 1e6


def test_usage_is_split_into_uncached_cached_text_and_audio():
    tokens = usage_tokens(USAGE)
    assert tokens["text_input"] == 60 and tokens["text_cached_input"] == 40 and tokens["text_output"] == 50
    assert tokens["audio_input"] == 800 and tokens["audio_cached_input"] == 200 and tokens["audio_output"] == 500
    assert cost_usd(tokens, Prices().for_model("gpt-realtime-1.5")) == pytest.approx(EXPECTED)
    # Without a breakdown the tokens count as audio (the dearer kind), never as free.
    bare = usage_tokens({"input_tokens": 10, "output_tokens": 5})
    assert bare["audio_input"] == 10 and bare["audio_output"] == 5
    assert cost_usd(bare, None) is None
    assert Prices().for_model("no-such-model") is None


def test_telephony_prices_overrides_and_adds_models(monkeypatch):
    monkeypatch.setenv(
        "TELEPHONY_PRICES",
        '{"my-model": {"audio_input": 1, "audio_output": 2}, "gpt-realtime-1.5": {"audio_output": 70}}',
    )
    settings = Settings(_env_file=None)
    prices = Prices(settings.prices)
    assert cost_usd({"audio_input": 1_000_000, "audio_output": 500_000}, prices.for_model("my-model")) == 2.0
    assert prices.for_model("gpt-realtime-1.5")["audio_output"] == 70
    assert prices.for_model("gpt-realtime-1.5")["audio_input"] == DEFAULT_PRICES["gpt-realtime-1.5"]["audio_input"]
    # A kind used but not priced makes the cost unknown, not zero.
    assert cost_usd({"text_input": 5}, prices.for_model("my-model")) is None
    monkeypatch.setenv("TELEPHONY_PRICES", '{"m": {"audio_in": 1}}')
    with pytest.raises(ValidationError, match="unknown kinds"):
        Settings(_env_file=None)


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def test_a_calls_cost_reaches_its_record_the_console_and_the_metric():
    token = "console-token-0123456789abcdef"
    async with bridge(api_token=token, model="gpt-realtime-1.5") as b:
        call, session = await b.live_call()
        for _ in range(2):
            rid = await session.response_created()
            await session.response_done(rid, usage=USAGE)
        await call.hang_up()
        await asyncio.wait_for(session.closed.wait(), 5)
        await asyncio.gather(*(s.wait_ended() for s in list(b.admission.sessions)))
        await b.observer.flush_records()
        record = await b.observer.store.get(call.call_sid)
        assert record.model == "gpt-realtime-1.5"
        assert record.cost_usd == pytest.approx(2 * EXPECTED)
        assert record.tokens["audio_output"] == 1000
        metrics = (await b.get("/metrics")).text
        assert _metric(metrics, 'telephony_cost_usd_total{model="gpt-realtime-1.5"}') == pytest.approx(2 * EXPECTED)
        async with httpx.AsyncClient(base_url=b.origin, headers={"Origin": b.origin}) as c:
            await c.post("/console/login", data={"token": token})
            page = (await c.get(f"/console/calls/{call.call_sid}")).text
            assert f"${2 * EXPECTED:.4f}" in page and "audio 2000 in (400 cached), 1000 out" in page
            listing = (await c.get("/console/calls")).text
            assert f"${2 * EXPECTED:.4f}" in listing


async def test_a_model_without_a_price_is_not_priced():
    async with bridge(api_token="t" * 24, model="some-unpriced-model") as b:
        call, session = await b.live_call()
        rid = await session.response_created()
        await session.response_done(rid, usage=USAGE)
        await call.hang_up()
        await asyncio.wait_for(session.closed.wait(), 5)
        await asyncio.gather(*(s.wait_ended() for s in list(b.admission.sessions)))
        await b.observer.flush_records()
        record = await b.observer.store.get(call.call_sid)
        assert record.cost_usd is None and record.tokens["audio_input"] == 800
        assert "telephony_cost_usd_total{" not in (await b.get("/metrics")).text
