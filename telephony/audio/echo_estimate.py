"""The echo canceller's two estimates of the echo path (``echo.EchoCanceller``):
where the echo is (``DelayFinder``) and what it is (``PathFit``). Pure numpy,
called a few times a second at most, never per frame.

``DelayFinder``: the generalised cross-correlation with phase transform
(GCC-PHAT) of what was played and what the line sent, over batches of up to
~0.6 s, accumulated with forgetting. Whitening every bin to unit magnitude
makes the correlation of speech a sharp peak at the echo's strongest path
(the direct path) whatever the voice's spectrum; its height over the
correlation's RMS says how sure the peak is.

``PathFit``: the echo path's taps from the recent audio by regularised least
squares, solved exactly: the normal equations ``(R + D) h = p`` over the
window's samples (the covariance method: no window taper, so no bias however
loud the speech is at the window's edges), with ``R`` built from one FFT
correlation plus its two edge corrections (O(taps²), no O(samples x taps²)
product) and ``D`` a Bayesian prior: the line's noise power over the prior
variance of each tap, which expects a room's response to decay (60 dB over
``decay_ms`` from the direct path). The prior matters early: with half a
second of speech some bands are barely excited, and the plain least-squares
taps there are mostly noise that the next words would hear as a louder echo;
the prior keeps them small. About 2 ms per fit with 256 taps, on one core.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

__all__ = ["DelayFinder", "PathFit", "shared_fit"]

_RATE = 8000


class DelayFinder:
    """Where the echo is: lags ``0..max_lag`` samples, batches of up to ``fft - max_lag``
    samples of the line."""

    def __init__(self, max_lag: int, fft: int, min_lag: int = 0, forget: float = 0.7) -> None:
        if max_lag >= fft:
            raise ValueError(f"max_lag {max_lag} needs an FFT longer than {fft}")
        self.max_lag = max_lag
        self.min_lag = min_lag
        self.fft = fft
        self.longest = fft - max_lag  # the longest batch
        self._forget = forget
        self._cross = np.zeros(fft // 2 + 1, np.complex128)
        self._line = np.zeros(fft)

    def reset(self) -> None:
        self._cross[:] = 0.0

    def add(self, ref: np.ndarray, line: np.ndarray) -> tuple[int, float]:
        """Add a batch: ``line`` (the line's last samples) and ``ref`` (what was
        played over the same span and the ``max_lag`` samples before it).
        Returns the lag (``min_lag`` or more) of the strongest correlation so far
        and its height over the correlation's RMS (4-10 for no echo, 8-15 and
        growing for an echo on the test lines)."""
        d, b = self.max_lag, line.shape[0]
        buf = self._line
        buf[d : d + b] = line
        buf[d + b :] = 0.0
        cross = self._cross
        cross *= self._forget
        cross += np.fft.rfft(ref, self.fft).conj() * np.fft.rfft(buf)
        mag = np.abs(cross)
        np.maximum(mag, 1e-30, out=mag)  # a bin never excited stays 0
        corr = np.fft.irfft(cross / mag, self.fft)[: d + 1]
        lag = self.min_lag + int(np.argmax(corr[self.min_lag :]))
        rms = float(np.sqrt(np.dot(corr, corr) / corr.shape[0]))
        return lag, float(corr[lag]) / rms if rms > 0.0 else 0.0


class PathFit:
    """The regularised least-squares echo path: ``taps`` taps whose ``lead``-th is the
    strongest path, the prior's decay ``decay_ms`` (60 dB)."""

    def __init__(self, taps: int, lead: int, decay_ms: float) -> None:
        if taps % _BLOCK:
            raise ValueError(f"taps must be a multiple of {_BLOCK}, got {taps}")
        self.taps = n = taps
        r = 10.0 ** (-6.0 / (decay_ms * _RATE / 1000))  # energy ratio from one tap to the next
        shape = r ** np.abs(np.arange(n) - lead)
        self._shape = shape / shape.sum()  # the prior's variance per tap, for an echo of unit gain
        # R's upper triangle is written row by row through a sheared view
        # (R[i, i + k] = sheared[i, k]); its transpose, R's lower triangle, is all
        # the Cholesky factorisation reads (and overwrites).
        self._rows = np.zeros((n, 2 * n))
        s0, s1 = self._rows.strides
        self._sheared = as_strided(self._rows, (n, n), (s0 + s1, s1))
        self._lower = self._rows[:, :n].T
        self._slid = np.zeros((n, n - 1))  # (lag k, row t): products that slid out of the window
        self._slid_in = np.zeros((n, n - 1))
        self.left = 1.0  # the share of the line's energy the last fit left, on its own window

    def solve(self, ref: np.ndarray, line: np.ndarray, noise: float) -> np.ndarray | None:
        """The taps ``h`` minimising ``sum (line[q] - sum_j h[j] u[q - j])²`` plus the
        prior, where ``ref`` holds ``u`` from ``2 taps - 1`` samples before the
        line's first sample to its last (float64), ``noise`` the line's noise
        power per sample. None if the system cannot be solved."""
        n, size = self.taps, line.shape[0]
        fft = 1 << (size + n - 1).bit_length()
        spectra = np.fft.rfft(np.stack((ref[2 * n - 1 :], line)), fft)
        spectra = spectra.conj()
        spectra *= np.fft.rfft(ref[n:], fft)
        corr = np.fft.irfft(spectra, fft)[:, n - 1 :: -1]
        a, p = corr[0], corr[1]  # sum over the window of u[q] u[q - k], and of line[q] u[q - j]
        # Row i of R sums over u[q - i] for q in the window: a[k] minus the products
        # that slid out at the window's end, plus those that slid in at its start
        # (none when the window starts after silence, as a call's first does).
        end = ref[: ref.shape[0] - 2 * n : -1]  # u[B - 1], u[B - 2], ... (2 taps - 1 of them)
        start = ref[2 * n - 2 :: -1]  # u[A - 1], u[A - 2], ...
        slid = self._slid
        np.multiply(sliding_window_view(end, n - 1)[:n], end[: n - 1], out=slid)
        if start.any():
            np.multiply(sliding_window_view(start, n - 1)[:n], start[: n - 1], out=self._slid_in)
            slid -= self._slid_in
        np.cumsum(slid, axis=1, out=slid)
        sheared = self._sheared
        sheared[0] = a
        np.subtract(a, slid.T, out=sheared[1:])
        gain = max(float(np.einsum("i,i->", line, line)) - size * noise, 0.0) / max(float(a[0]), 1.0)
        sheared[:, 0] += noise / (max(gain, 1e-6) * self._shape)  # R's diagonal
        prior = noise / (max(gain, 1e-6) * self._shape)
        try:
            h = _spd_solve(self._lower, p)
        except np.linalg.LinAlgError:  # not with the prior on the diagonal, but never crash a call
            return None
        if not np.isfinite(h).all():
            return None
        # What the fit leaves of the window's line, from (R + D) h = p:
        # |line - X h|² = |line|² - hᵀp - hᵀD h.
        energy = float(np.einsum("i,i->", line, line))
        self.left = (energy - float(np.dot(h, p)) - float(np.dot(h * prior, h))) / max(energy, 1.0)
        return h


_FITS = threading.local()


def shared_fit(taps: int, lead: int, decay_ms: float) -> PathFit:
    """One ``PathFit`` per shape and thread: its ~2 MB are work arrays only (a fit
    keeps nothing but ``left``, read right after ``solve``), so every call a
    thread runs shares them instead of holding its own."""
    fits = getattr(_FITS, "fits", None)
    if fits is None:
        fits = _FITS.fits = {}
    fit = fits.get((taps, lead, decay_ms))
    if fit is None:
        fit = fits[(taps, lead, decay_ms)] = PathFit(taps, lead, decay_ms)
    return fit


_BLOCK = 64  # LAPACK and BLAS calls of at most 64 x 64 x 64: OpenBLAS runs them on one thread


def _spd_solve(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``a⁻¹ p`` for a symmetric positive definite ``a`` of which only the lower
    triangle is read (and overwritten), by a block Cholesky factorisation in
    64 x 64 blocks. One ``np.linalg.solve`` of the whole
    matrix costs about as much on one core, but OpenBLAS runs it on all of them and
    its threads then spin for a while: twice the CPU for the same result."""
    b = _BLOCK
    k = a.shape[0] // b
    blocks = [slice(j * b, (j + 1) * b) for j in range(k)]
    inverse = []  # of each diagonal block of the factor L
    for j, jj in enumerate(blocks):
        ljj = np.linalg.cholesky(a[jj, jj])
        inv = np.linalg.inv(ljj)
        inverse.append(inv)
        for ii in blocks[j + 1 :]:
            a[ii, jj] = a[ii, jj] @ inv.T
        for i in range(j + 1, k):
            for m in range(j + 1, i + 1):
                a[blocks[i], blocks[m]] -= a[blocks[i], jj] @ a[blocks[m], jj].T
    z = np.empty_like(p)  # L z = p
    for j, jj in enumerate(blocks):
        s = p[jj].copy()
        for m in range(j):
            s -= a[jj, blocks[m]] @ z[blocks[m]]
        z[jj] = inverse[j] @ s
    h = np.empty_like(p)  # L.T h = z
    for j in range(k - 1, -1, -1):
        s = z[blocks[j]].copy()
        for m in range(j + 1, k):
            s -= a[blocks[m], blocks[j]].T @ h[blocks[m]]
        h[blocks[j]] = inverse[j].T @ s
    return h
