"""Audio core: codec exactness, exact lengths, delay, chunk invariance, reset."""

from __future__ import annotations

import audioop  # stdlib on 3.11/3.12, audioop-lts on 3.13+

import numpy as np
import pytest

from telephony.audio import (
    DELAY_8K,
    DELAY_24K,
    CallerToModel,
    Downsampler,
    ModelToCaller,
    Upsampler,
    ulaw_decode,
    ulaw_encode,
)
from tests.audio_data import agent_pcm24, caller_pcm8


def test_ulaw_decode_matches_audioop_and_formula_for_all_codes():
    codes = bytes(range(256))
    assert ulaw_decode(codes) == audioop.ulaw2lin(codes, 2)
    decoded = np.frombuffer(ulaw_decode(codes), "<i2")
    for byte in range(256):  # the G.711 reference formula
        u = ~byte & 0xFF
        t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
        assert decoded[byte] == (0x84 - t if u & 0x80 else t - 0x84)


def test_ulaw_encode_matches_audioop_for_all_int16():
    every = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert ulaw_encode(every) == audioop.lin2ulaw(every, 2)
    assert ulaw_encode(np.zeros(4, "<i2").tobytes()) == b"\xff" * 4


def _feed(obj, data: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < data.size:
        n = sizes[k % len(sizes)]
        out.append(obj.process(data[i : i + n]).copy())
        i, k = i + n, k + 1
    return np.concatenate(out)


@pytest.mark.parametrize("sizes", [[160], [37, 481, 1201], [1], [7, 2, 999], [160, 1201, 80, 7, 160, 40]])
def test_upsampler_is_chunk_invariant_and_exact_length(sizes):
    x = caller_pcm8()
    whole = Upsampler().process(x).copy()
    assert whole.size == 3 * x.size
    assert np.array_equal(_feed(Upsampler(), x, sizes), whole)


@pytest.mark.parametrize("sizes", [[480], [37, 481, 1201], [1], [2, 5, 4800], [24000, 7, 2400]])
def test_downsampler_is_chunk_invariant_and_exact_length(sizes):
    x = agent_pcm24()
    d = Downsampler()
    whole = np.concatenate([d.process(x).copy(), d.flush()])
    d = Downsampler()
    chunked = np.concatenate([_feed(d, x, sizes), d.flush()])
    assert np.array_equal(chunked, whole)
    # Every output whose window holds a real sample: m = 0 .. (n - 1 + 102) // 3.
    assert whole.size == (x.size - 1 + 2 * DELAY_24K) // 3 + 1


def test_twenty_ms_in_gives_twenty_ms_out():
    up, down = Upsampler(), Downsampler()
    for _ in range(5):
        assert up.process(np.ones(160, np.int16)).size == 480
        assert down.process(np.ones(480, np.int16)).size == 160
    # Odd sizes: at most 2 input samples wait for the next call.
    d = Downsampler()
    assert d.process(np.ones(1, np.int16)).size == 1  # output 0 needs only x[0]
    assert d.process(np.ones(2, np.int16)).size == 0
    assert d.process(np.ones(1, np.int16)).size == 1


def test_delay_is_the_stated_constant():
    impulse = np.zeros(200, np.int16)
    impulse[0] = 10000
    assert int(np.argmax(Upsampler().process(impulse))) == DELAY_24K == 51
    impulse24 = np.zeros(600, np.int16)
    impulse24[0] = 30000
    assert int(np.argmax(Downsampler().process(impulse24))) == DELAY_8K == 17


def test_dc_passes_at_unit_gain():
    up = Upsampler().process(np.full(400, 1000, np.int16))
    assert np.all(up[200:] == 1000)
    down = Downsampler().process(np.full(1200, -1000, np.int16))
    assert np.all(down[100:] == -1000)


def test_full_scale_saturates_instead_of_wrapping():
    square = np.tile(np.r_[np.full(20, 32767), np.full(20, -32768)], 20).astype(np.int16)
    y = Upsampler().process(square)
    assert y.max() == 32767 and y.min() == -32768  # overshoot clipped, not wrapped


def test_flush_resets_so_next_utterance_starts_clean():
    x = agent_pcm24()[:4800]
    fresh = ModelToCaller().convert(x.tobytes())
    m = ModelToCaller()
    m.convert(agent_pcm24()[20000:21000].tobytes())  # a cut-off utterance
    m.flush()
    assert m.convert(x.tobytes()) == fresh
    m.convert(b"\x01")  # half a sample
    m.reset()
    assert m.convert(x.tobytes()) == fresh


def test_model_to_caller_handles_odd_byte_chunks():
    pcm = agent_pcm24()[:9600].tobytes()
    whole = ModelToCaller().convert(pcm)
    m = ModelToCaller()
    parts = b"".join(m.convert(pcm[i : i + 333]) for i in range(0, len(pcm), 333))
    assert parts == whole


def test_caller_to_model_frame():
    c = CallerToModel()
    out = c.convert(bytes([0xFF]) * 160)
    assert len(out) == 960 and not any(out)  # mu-law silence -> exact zeros
    assert c.convert(b"") == b""
