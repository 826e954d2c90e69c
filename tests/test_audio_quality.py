"""The audio path's quality targets, measured on speech against soxr VHQ.

Deterministic figures, so they are tests: SNR inside 100-3400 Hz after delay
alignment, image and alias energy, and the mu-law path against ideal resampling
followed by the same encoder.
"""

from __future__ import annotations

import pytest

from tests import audio_quality as q
from tests.audio_data import agent_pcm24, caller_pcm8

soxr = pytest.importorskip("soxr")


@pytest.fixture(scope="module")
def caller():
    return caller_pcm8()


@pytest.fixture(scope="module")
def agent():
    return agent_pcm24()


def test_upsampling_snr_and_images(caller):
    ref = q.soxr_resample(caller, 8000, 24000, "VHQ")
    ours = q.ours_up(caller)
    snr, delay = q.band_snr(ours, ref, 24000)
    assert snr >= 70.0, snr  # measured 85.2 dB
    assert abs(delay - 51.0) < 0.01  # 2.125 ms, an exact sample count
    images = q.energy_ratio_db(ours, 24000, 4600.0, 12000.0)
    assert images <= -70.0, images  # measured -83.6 dB


def test_downsampling_to_ulaw_is_within_1db_of_ideal(agent):
    ref8 = q.soxr_resample(agent, 24000, 8000, "VHQ")
    ideal, _ = q.band_snr(q.ulaw_roundtrip(ref8), ref8, 8000)
    ours, delay = q.band_snr(q.ours_down_ulaw(agent), ref8, 8000)
    assert 36.0 <= ideal <= 40.0  # mu-law itself is the limit
    assert ours >= ideal - 1.0, (ours, ideal)  # measured 38.11 vs 38.14 dB
    assert abs(delay - 17.0) < 0.01


def test_downsampling_before_ulaw_is_transparent(agent):
    ref8 = q.soxr_resample(agent, 24000, 8000, "VHQ")
    snr, _ = q.band_snr(q.ours_down_float(agent), ref8, 8000)
    assert snr >= 70.0, snr  # measured 88.6 dB


def test_high_band_content_does_not_fold_into_the_band(agent):
    folded = q.folded_db(q.ours_down_float, agent)
    assert folded <= -70.0, folded  # measured -84.5 dB
    # The measurement itself detects aliasing: plain decimation folds loudly.
    assert q.folded_db(lambda s: s[::3], agent) > -10.0
