"""Audio quality measurements shared by tests/test_audio_quality.py and benchmarks/audio.py
(the samples they measure on come from tests/audio_data.py).

Everything is measured inside the telephone band (100-3400 Hz) against an ideal
reference (soxr VHQ), after aligning the constant, possibly fractional, delay
between the two signals (estimated from the cross-spectrum's phase slope).
"""

from __future__ import annotations

import numpy as np

BAND = (100.0, 3400.0)


def _spectra(a: np.ndarray, b: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = min(a.size, b.size)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    fa = np.fft.rfft(np.asarray(a[:n], float), nfft)
    fb = np.fft.rfft(np.asarray(b[:n], float), nfft)
    return fa, fb, np.fft.rfftfreq(nfft, 1.0 / rate)


def estimate_delay(test: np.ndarray, ref: np.ndarray, rate: int) -> float:
    """Delay of ``test`` behind ``ref`` in samples (fractional): the shift that
    minimises the in-band error, found by cross-correlation then a fine search."""
    fa, fb, f = _spectra(test, ref, rate)
    xc = np.fft.irfft(fa * np.conj(fb))
    lag = int(np.argmax(xc))
    if lag > xc.size // 2:
        lag -= xc.size
    band = (f >= BAND[0]) & (f <= BAND[1])
    cross, w = (fa * np.conj(fb))[band], 2 * np.pi * f[band] / rate

    def score(d: np.ndarray) -> np.ndarray:
        return np.real(np.exp(1j * np.outer(d, w)) @ cross)

    centre, width = float(lag), 1.5
    for _ in range(6):  # zoom in: each pass narrows the window 20x
        grid = centre + np.linspace(-width, width, 61)
        centre = float(grid[np.argmax(score(grid))])
        width /= 20
    return centre


def band_snr(test: np.ndarray, ref: np.ndarray, rate: int, delay: float | None = None) -> tuple[float, float]:
    """(SNR in dB inside the band, delay in samples used) of ``test`` against ``ref``."""
    if delay is None:
        delay = estimate_delay(test, ref, rate)
    fa, fb, f = _spectra(test, ref, rate)
    fb = fb * np.exp(-2j * np.pi * f * delay / rate)  # delay the reference to match
    band = (f >= BAND[0]) & (f <= BAND[1])
    signal = np.sum(np.abs(fb[band]) ** 2)
    noise = np.sum(np.abs(fa[band] - fb[band]) ** 2)
    return float(10 * np.log10(signal / noise)), delay


def energy_ratio_db(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    """Energy of ``x`` between lo and hi Hz relative to its total energy, in dB."""
    spec = np.abs(np.fft.rfft(np.asarray(x, float))) ** 2
    f = np.fft.rfftfreq(x.size, 1.0 / rate)
    part = spec[(f >= lo) & (f <= hi)].sum()
    return 10 * np.log10(max(part, 1e-30) / spec.sum())


def highpass_fft(x: np.ndarray, rate: int, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(np.asarray(x, float))
    f = np.fft.rfftfreq(x.size, 1.0 / rate)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, x.size)


def folded_db(down, x24: np.ndarray) -> float:
    """Energy that content between 4.6 and 12 kHz leaves inside the band after
    ``down`` (a function 24 kHz float -> 8 kHz float), relative to that content's
    own energy."""
    hf = highpass_fft(x24, 24000, 4600.0, 12000.0)
    y = down(hf)
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(y.size, 1.0 / 8000)
    inband = spec[(f >= BAND[0]) & (f <= BAND[1])].sum() / y.size * 3  # Parseval, per-rate
    return 10 * np.log10(max(inband, 1e-30) / np.sum(hf**2))


# --- the methods compared -------------------------------------------------


def ours_up(x8: np.ndarray) -> np.ndarray:
    from telephony.audio import Upsampler

    return Upsampler().process(np.asarray(x8, np.int16)).astype(float)


def ours_down_float(x24: np.ndarray) -> np.ndarray:
    """Our decimator without int16 rounding (for the fold measurement)."""
    from numpy.lib.stride_tricks import sliding_window_view

    from telephony.audio.resample import FILTER_TAPS

    padded = np.concatenate([np.zeros(FILTER_TAPS.size - 1), np.asarray(x24, float)])
    win = sliding_window_view(padded, FILTER_TAPS.size)[::3]
    return win @ FILTER_TAPS[::-1]


def ours_down_ulaw(x24: np.ndarray) -> np.ndarray:
    """Our whole model->caller path: PCM16 24 kHz -> mu-law 8 kHz -> decoded int16."""
    from telephony.audio import ModelToCaller
    from telephony.audio.g711 import ULAW_TO_INT

    m = ModelToCaller()
    ulaw = m.convert(np.asarray(x24, "<i2").tobytes()) + m.flush()
    return ULAW_TO_INT[np.frombuffer(ulaw, np.uint8)].astype(float)


def soxr_resample(x: np.ndarray, rin: int, rout: int, quality: str) -> np.ndarray:
    import soxr

    return soxr.resample(np.asarray(x, np.float64), rin, rout, quality)


def ulaw_roundtrip(x: np.ndarray) -> np.ndarray:
    from telephony.audio.g711 import INT16_TO_ULAW, ULAW_TO_INT

    i16 = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return ULAW_TO_INT[INT16_TO_ULAW[i16.view(np.uint16)]].astype(float)
