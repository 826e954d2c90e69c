"""What a call costs: the token usage of each ``response.done`` priced per model.

Prices are US dollars per million tokens, by kind: text and audio, input, cached
input and output (the Realtime API's ``usage``: ``input_token_details`` with
``text_tokens``, ``audio_tokens``, ``image_tokens``, ``cached_tokens`` and
``cached_tokens_details``; ``output_token_details`` with ``text_tokens`` and
``audio_tokens``). ``DEFAULT_PRICES`` are OpenAI's published prices as the README
states them (with their date and source); ``TELEPHONY_PRICES`` (JSON, same shape)
overrides or adds models. A model without a price is not priced (cost ``None``),
never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_PRICES", "PRICE_KINDS", "Prices", "cost_usd", "usage_tokens"]

#: The kinds of token a price names, and what ``usage_tokens`` counts.
PRICE_KINDS = (
    "text_input",
    "text_cached_input",
    "text_output",
    "audio_input",
    "audio_cached_input",
    "audio_output",
    "image_input",
    "image_cached_input",
)

# Read from OpenAI's model pages (developers.openai.com/api/docs/models/<model>) on
# 2026-11-21; see the README's "Cost" section. USD per 1M tokens.
_REALTIME_FULL = {
    "text_input": 4.00,
    "text_cached_input": 0.40,
    "audio_input": 32.00,
    "audio_cached_input": 0.40,
    "audio_output": 64.00,
    "image_input": 5.00,
    "image_cached_input": 0.50,
}
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-realtime-1.5": {**_REALTIME_FULL, "text_output": 16.00},
    "gpt-realtime-2": {**_REALTIME_FULL, "text_output": 24.00},
    "gpt-realtime-2.1": {**_REALTIME_FULL, "text_output": 24.00},
    "gpt-realtime-2.1-mini": {
        "text_input": 0.60,
        "text_cached_input": 0.06,
        "text_output": 2.40,
        "audio_input": 10.00,
        "audio_cached_input": 0.30,
        "audio_output": 20.00,
        "image_input": 0.80,
        "image_cached_input": 0.08,
    },
}


def _int(d: Any, key: str) -> int:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, int) and v > 0 else 0


def usage_tokens(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """One ``response.done`` usage split by price kind. Tokens the usage does not
    break down (no ``*_token_details``) count as audio, the dearer kind: the bridge
    speaks audio both ways, and a cost is better over than under."""
    u = dict(usage or {})
    out = dict.fromkeys(PRICE_KINDS, 0)
    inp, outp = u.get("input_token_details"), u.get("output_token_details")
    if isinstance(inp, dict):
        cached = inp.get("cached_tokens_details")
        for kind in ("text", "audio", "image"):
            c = _int(cached, f"{kind}_tokens")
            out[f"{kind}_cached_input"] = c
            out[f"{kind}_input"] = max(0, _int(inp, f"{kind}_tokens") - c)
    else:
        out["audio_input"] = _int(u, "input_tokens")
    if isinstance(outp, dict):
        out["text_output"] = _int(outp, "text_tokens")
        out["audio_output"] = _int(outp, "audio_tokens")
    else:
        out["audio_output"] = _int(u, "output_tokens")
    return out


class Prices:
    """The price table in force: the defaults with ``TELEPHONY_PRICES`` over them."""

    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.table = {model: dict(p) for model, p in DEFAULT_PRICES.items()}
        for model, prices in (overrides or {}).items():
            unknown = set(prices) - set(PRICE_KINDS)
            if unknown:
                raise ValueError(f"TELEPHONY_PRICES[{model!r}]: unknown kinds {sorted(unknown)}; use {PRICE_KINDS}")
            self.table[model] = {**self.table.get(model, {}), **{k: float(v) for k, v in prices.items()}}

    def for_model(self, model: str) -> dict[str, float] | None:
        return self.table.get(model)


def cost_usd(tokens: Mapping[str, int], price: Mapping[str, float] | None) -> float | None:
    """Dollars for ``tokens`` (``usage_tokens``) at ``price``; None when the model has
    no price or a kind used has none."""
    if price is None:
        return None
    total = 0.0
    for kind, n in tokens.items():
        if n:
            if kind not in price:
                return None
            total += n * price[kind]
    return total / 1_000_000
