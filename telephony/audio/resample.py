"""Streaming 3:1 polyphase resamplers (8 kHz <-> 24 kHz) for telephone speech.

One linear-phase low-pass FIR serves both directions: 103 taps, Kaiser window
(beta 7.9), cut-off 4 kHz at 24 kHz. Passband (0-3.4 kHz) error and stopband
(>= 4.6 kHz) leakage are both about -80 dB. The delay is 51 samples at 24 kHz,
exactly 17 samples at 8 kHz: 2.125 ms each way.

Bit-exact chunk invariance: taps are rounded to multiples of 2**-24 and samples
are integers, so every product and partial sum is an integer times 2**-24 below
2**29: float64 holds it exactly, whatever order BLAS sums in. The output is
therefore the same bit for bit however the input is chunked.

Nothing is held back: ``Upsampler.process`` returns 3 samples per input sample;
``Downsampler.process`` returns one sample per 3 input samples (carrying at most
2 over to the next call). ``Downsampler.flush`` returns the filter's tail at the
end of an utterance and resets the state.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

try:  # the clip ufunc itself: np.clip's Python wrapper costs more than the clipping, per frame
    from numpy._core.umath import clip as clip_ufunc  # type: ignore[attr-defined]  # numpy 2
except ImportError:  # pragma: no cover
    from numpy.core.umath import clip as clip_ufunc  # type: ignore[no-redef]  # numpy 1.26

__all__ = ["DELAY_8K", "DELAY_24K", "DELAY_MS", "FILTER_TAPS", "Downsampler", "Upsampler", "design_filter"]

NUM_TAPS = 103
KAISER_BETA = 7.9
CUTOFF_HZ = 4000.0
_SCALE_BITS = 24
_SCALE = float(1 << _SCALE_BITS)

DELAY_24K = (NUM_TAPS - 1) // 2  # 51 samples
DELAY_8K = DELAY_24K // 3  # 17 samples
DELAY_MS = DELAY_24K / 24.0  # 2.125 ms


def design_filter(num_taps: int = NUM_TAPS, beta: float = KAISER_BETA, cutoff_hz: float = CUTOFF_HZ) -> np.ndarray:
    """Windowed-sinc low-pass at 24 kHz with unit DC gain (float64)."""
    n = np.arange(num_taps) - (num_taps - 1) / 2
    fc = cutoff_hz / 24000.0
    h: np.ndarray = 2 * fc * np.sinc(2 * fc * n) * np.kaiser(num_taps, beta)
    return h / h.sum()  # type: ignore[no-any-return]


FILTER_TAPS = design_filter()


def _quantize_taps(taps: np.ndarray) -> np.ndarray:
    """Round taps to multiples of 2**-24 (see the module docstring)."""
    return np.rint(taps * _SCALE) / _SCALE


def _to_int16(acc: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Saturate, round half to even and cast to int16 into ``out``: two ufuncs."""
    clip_ufunc(acc, -32768.0, 32767.0, out=acc)
    np.rint(acc, out=out, casting="unsafe")
    return out


_BLOCK = 40  # upsampler block: outputs of 40 input samples per row (>= taps per phase)


@functools.cache
def _up_matrices() -> tuple[np.ndarray, np.ndarray]:
    """The upsampler's window matrix (35 x 3) and block matrix (80 x 120), made once
    and shared by every upsampler (calls share the CPU caches: one copy stays in them)."""
    taps = np.zeros(3 * ((NUM_TAPS + 2) // 3))
    taps[:NUM_TAPS] = _quantize_taps(FILTER_TAPS * 3)
    k = taps.size // 3  # taps per phase (35)
    # matrix[i, p] = h[3*(k-1-i) + p]: window row i=k-1 is the newest sample.
    matrix = np.ascontiguousarray(taps.reshape(k, 3)[::-1])
    # block[s, 3r + p] = matrix[s - r, p]: input s of a block pair, output r of its first block
    block = np.zeros((2 * _BLOCK, 3 * _BLOCK))
    for r in range(_BLOCK):
        block[r : r + k, 3 * r : 3 * r + 3] = matrix
    matrix.flags.writeable = block.flags.writeable = False
    return matrix, block


class Upsampler:
    """8 kHz -> 24 kHz, streaming. Feed int16 samples (or codes and a decode
    table), get 3x as many samples back.

    Output sample ``3n + p`` is ``sum_i buf[n + i] * matrix[i, p]`` over a window
    of 35 inputs. For a 20 ms frame that is computed in blocks of 40 inputs: row
    ``a`` of a (4 x 80) view of the buffer (inputs ``40a .. 40a + 79``, rows
    overlapping by 40) times one fixed (80 x 120) matrix gives the 120 outputs of
    inputs ``40a .. 40a + 39``: one small matrix product that numpy runs faster
    than the (160 x 35) one of overlapping windows. Sizes that are not a multiple
    of 40 use the windows directly. Same sums, exact either way.
    """

    def __init__(self) -> None:
        self._matrix, self._block = _up_matrices()
        self._k = k = self._matrix.shape[0]  # taps per phase (35)
        self._hist = k - 1
        self._buf = np.zeros(160 + _BLOCK)
        self._plans: dict[int, tuple[np.ndarray, ...]] = {}
        #: the last input, decoded (float64, int16 scale; a view reused by the next call)
        self.last: np.ndarray = self._buf[:0]

    def reset(self) -> None:
        self._buf[: self._hist] = 0.0

    def _plan(self, n: int) -> tuple[np.ndarray, ...]:
        """Views and buffers for ``n`` input samples, made once per size."""
        blocks = n // _BLOCK if n % _BLOCK == 0 else 0
        need = n + _BLOCK if blocks else self._hist + n
        if need > self._buf.size:
            buf = np.zeros(need)
            buf[: self._hist] = self._buf[: self._hist]
            self._buf = buf
            self._plans.clear()
        if len(self._plans) > 8:
            self._plans.clear()
        buf, hist = self._buf, self._hist
        if blocks:  # rows of 80 inputs, 40 apart (the last one reads past the frame: zero weights)
            windows = as_strided(buf, shape=(blocks, 2 * _BLOCK), strides=(8 * _BLOCK, 8), writeable=False)
            matrix, shape = self._block, (blocks, 3 * _BLOCK)
        else:
            windows = as_strided(buf, shape=(n, self._k), strides=(8, 8), writeable=False)
            matrix, shape = self._matrix, (n, 3)
        out = np.empty(shape, dtype="<i2")
        plan = (
            windows,
            np.empty(shape),
            out,
            out.reshape(-1),
            buf[hist : hist + n],
            buf[:hist],
            buf[n : n + hist],
            matrix,
        )
        self._plans[n] = plan
        return plan

    def _run(self, plan: tuple[np.ndarray, ...]) -> np.ndarray:
        windows, acc, out, flat, _, head, tail, matrix = plan
        np.matmul(windows, matrix, out=acc)
        head[...] = tail  # keep the newest hist samples (numpy handles the overlap)
        _to_int16(acc, out)
        return flat

    def process(self, samples: np.ndarray) -> np.ndarray:
        """int16 samples at 8 kHz -> int16 samples at 24 kHz (a reused buffer: copy to keep)."""
        n = samples.size
        if n == 0:
            return np.empty(0, dtype="<i2")
        plan = self._plans.get(n) or self._plan(n)
        plan[4][...] = samples
        self.last = plan[4]
        return self._run(plan)

    def process_codes(self, codes: np.ndarray, table: np.ndarray) -> np.ndarray:
        """Like ``process(table[codes])`` with the lookup written straight into the
        filter's buffer (``table``: float64 sample values, e.g. mu-law decoding)."""
        n = codes.size
        if n == 0:
            return np.empty(0, dtype="<i2")
        plan = self._plans.get(n) or self._plan(n)
        table.take(codes, out=plan[4])
        self.last = plan[4]
        return self._run(plan)


_DOWN_BLOCK = 20  # downsampler block: 20 outputs per row
_DOWN_ROWS = 64  # rows per product (160 ms of output): OpenBLAS goes multi-threaded on larger ones


@functools.cache
def _down_matrix() -> np.ndarray:
    """The downsampler's block matrix (162 x 20), made once and shared by every downsampler."""
    reverse = _quantize_taps(FILTER_TAPS)[::-1]
    # matrix[3r + s, r] = h[len - 1 - s]: output r of a row from the row's inputs s
    matrix = np.zeros((3 * _DOWN_BLOCK + reverse.size - 1, _DOWN_BLOCK))
    for r in range(_DOWN_BLOCK):
        matrix[3 * r : 3 * r + reverse.size, r] = reverse
    matrix.flags.writeable = False
    return matrix


class Downsampler:
    """24 kHz -> 8 kHz, streaming. Feed int16 samples, get one per 3 back.

    Output ``m`` is ``sum_k h[k] * x[3m - k]``: it is emitted as soon as input
    sample ``3m`` has arrived, so at most 2 input samples wait for the next call.
    Computed in blocks of 20 outputs: row ``a`` of a strided view of the buffer
    (the 162 inputs that outputs ``20a .. 20a + 19`` read, rows 60 inputs apart)
    times one fixed (162 x 20) matrix shared by every downsampler: one small
    matrix product per chunk, four times faster than three polyphase
    convolutions for a 100 ms chunk (the last row may read past the input: those
    outputs are not used). Input is copied into one persistent buffer. The
    returned array is reused: copy it to keep it.
    """

    def __init__(self) -> None:
        self._matrix = _down_matrix()
        self._n = NUM_TAPS
        self._buf = np.zeros(self._n - 1 + 2 + 480)
        self._outs: dict[int, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        # _buf[:_held] holds input samples with global indices [_start, _start + _held).
        self._buf[: self._n - 1] = 0.0
        self._held = self._n - 1
        self._start = -(self._n - 1)
        self._next = 0  # next output index

    def process(self, samples: np.ndarray) -> np.ndarray:
        """int16 samples at 24 kHz -> int16 samples at 8 kHz (a reused buffer)."""
        n = samples.size
        if n == 0:
            return np.empty(0, dtype="<i2")
        held, history = self._held, self._n - 1
        need = held + n
        end = self._start + need
        last = (end - 1) // 3
        first = self._next
        count = last - first + 1
        rows = -(-count // _DOWN_BLOCK)
        at = 3 * first - history - self._start  # the first output's oldest input
        size = max(need, at + 3 * _DOWN_BLOCK * rows + history)
        if size > self._buf.size:
            grown = np.zeros(size + 480)
            grown[:held] = self._buf[:held]
            self._buf = grown
        buf = self._buf
        buf[held:need] = samples
        if count <= 0:
            self._held = need
            return np.empty(0, dtype="<i2")
        width = self._matrix.shape[0]
        windows = as_strided(buf[at:], shape=(rows, width), strides=(8 * 3 * _DOWN_BLOCK, 8), writeable=False)
        if rows <= _DOWN_ROWS:
            acc = np.matmul(windows, self._matrix).reshape(-1)[:count]
        else:  # a long chunk: a few products, each small enough for one BLAS thread
            acc = np.concatenate(
                [np.matmul(windows[a : a + _DOWN_ROWS], self._matrix).reshape(-1) for a in range(0, rows, _DOWN_ROWS)]
            )[:count]
        out = self._outs.get(count)
        if out is None:
            if len(self._outs) > 16:
                self._outs.clear()
            out = self._outs[count] = np.empty(count, dtype="<i2")
        _to_int16(acc, out)
        self._next = last + 1
        new_start = 3 * self._next - history
        keep_from = new_start - self._start
        self._held = need - keep_from
        buf[: self._held] = buf[keep_from:need]
        self._start = new_start
        return out

    def flush(self) -> np.ndarray:
        """Emit the filter tail of the current utterance (every output that still
        depends on a real input sample) and reset for the next utterance."""
        tail = self.process(np.zeros(self._n - 1)).copy()
        self.reset()
        return tail
