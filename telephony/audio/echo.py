"""Echo cancellation for the caller -> model path: the agent's own voice, played
to a speakerphone and picked up again, is removed from the caller's audio.

``EchoCanceller`` is linear (no suppressor: what is not echo passes bit for bit)
and pure numpy, with no I/O. 8 kHz int16, 20 ms frames of 160 samples.

How it works, and why:

* A *long* frequency-domain adaptive filter spans the whole tail (``tail_ms``,
  default 400 ms: 20 partitions of one frame, overlap-save with FFTs of 320)
  and adapts with proportionate steps (a partition holding more of the echo
  path adapts faster). It never makes the output: it finds where the echo is
  (its strongest tap: the direct path) and watches for it moving.
* Two *short* filters of 80 ms start one frame before that place. Each is one
  block of 1024 points, so each bin's step is normalised over 128 ms of the
  reference: that whitens speech far better than 20 ms partitions do, and
  converges several times faster than a long filter could.
* The *background* short filter adapts on every frame with a large step. The
  *foreground* makes the output and copies the background only when the
  background has removed clearly more, and at least half of the line's energy,
  for a few frames in a row. When the caller talks over the agent (double
  talk) the background is pulled off by the caller's voice and its error
  grows, so it is not copied, and once it is much worse it is reset to the
  foreground. The caller's voice therefore reaches the model intact, and a
  line with no echo keeps a zero foreground (the output is the input).
* For 2 s after the echo is found (or moves), the background is also trained
  again on the last half second every other frame (data reuse): it gets most
  of the way to the least-squares fit of that audio long before new audio
  would take it there.
* When nothing was played within the tail, the frame is returned unchanged
  and nothing adapts: no cost and no change while only the caller speaks.

Alignment contract (what the bridge must do):

* For every caller frame it gives ``process``, it first gives ``played`` the
  160 samples the caller was hearing while that frame was captured: the agent
  audio that the playback clock (the marks Twilio echoes once audio has
  played) says was playing at the caller at that time, or zeros when nothing
  was. The echo of a played sample must arrive *after* it is fed and within
  ``tail_ms``: the network's and the phone's delay after Twilio played it are
  what the tail is for; the model's audio sent ahead and buffered at Twilio is
  not, so feed by the playback clock, not when audio is sent.
* Everything the caller hears is reference: the agent's voice, the hold sound
  and any DTMF tones the bridge plays. Audio the canceller never saw cannot be
  removed (a wrong reference only wastes adaptation: the foreground does not
  take a filter that does not help).
* After a ``clear`` (barge-in) the unplayed audio must not be fed: it was
  never heard.
* ``played`` may run ahead: samples queue (up to the tail) and each
  ``process`` takes the oldest 160. A missing reference counts as silence.

Cost (``python -m benchmarks.echo``): about 100-170 µs per frame while the
agent's audio is in the tail, more for the 2 s of data reuse, a few µs when
nothing was played. The arrays it returns are reused by the next call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EchoCanceller"]

_RATE = 8000
_ALPHA = 0.5  # the long filter's proportionate steps (IPNLMS): -1 = plain NLMS, towards 1 = proportionate
_LONG_STEP = 0.5
_FIRST = 0.8  # the long filter must leave less than this of the line's energy to be believed first...
_MOVED = 0.5  # ...and less than this (and less than the short filters) to move them
_SETTLED_EVERY = 4  # once settled (or searching in vain), the long filter steps every this many frames
_SEARCH_FOR = 250  # frames of the agent's audio without finding an echo: then look less often
_WORSE = 1.5  # both filters' error above this times the line's energy...
_WORSE_FOR = 5  # ...for this many frames in a row: the echo path changed
_FIND_EVERY = 5  # frames between looks at where the long filter holds the echo
_SHORT = 4  # the short filters' length in frames: 80 ms from one frame before the echo's onset
_SHORT_STEP = 0.5  # the background's normalised step
_SPREAD = 0.3  # the short step's normaliser is at least this times the mean bin power (see _adapt_short)
_SMOOTH = 0.3  # weight of the newest block in the short filter's power per bin
_BETTER = 0.95  # the background must leave less than this of the foreground's error...
_SUSTAINED = 3  # ...for this many frames in a row to be copied
_REUSE_MS = 500  # data reuse: the span the background is trained on again...
_REUSE_EVERY = 2  # ...every this many frames...
_REUSE_FOR = 100  # ...for this many frames after the echo is found or moves


class EchoCanceller:
    """Removes the echo of what was ``played`` from what the caller's line
    sends (``process``), 8 kHz int16 in 160-sample frames.

    ``tail_ms``: the longest echo delay (plus room) it can cancel.
    """

    def __init__(self, tail_ms: int = 400, frame: int = 160) -> None:
        if frame <= 0 or tail_ms * _RATE // 1000 < _SHORT * frame:
            raise ValueError(f"tail_ms must cover at least {_SHORT} frames, got tail_ms={tail_ms}, frame={frame}")
        n = self.frame = frame
        self.tail_ms = tail_ms
        p = self.partitions = -(-tail_ms * _RATE // 1000 // n)  # ceil
        k = n + 1
        # Reference spectra, newest first, in a doubled ring so that the window
        # self._xs[i : i + p] is always contiguous without shifting the rows.
        self._xs = np.zeros((2 * p, k), np.complex128)
        self._xp = np.zeros((2 * p, k))  # their powers
        self._head = 0
        self._long = np.zeros((p, k), np.complex128)
        # The short filters: one block each (no partitions), with an FFT of
        # 1024 at 20 ms frames, so each bin's step is normalised over 128 ms
        # of the reference: that whitens speech far better than 20 ms
        # partitions do, and converges several times faster.
        self._taps = _SHORT * n
        fft = self._fft = 1 << (self._taps + n - 1).bit_length()
        ks = fft // 2 + 1
        self._fg = np.zeros(ks, np.complex128)
        self._bg = np.zeros(ks, np.complex128)
        self._hist = np.zeros(p * n + fft + _REUSE_MS * _RATE // 1000)  # the reference, oldest first
        self._mic_hist = np.zeros(_REUSE_MS * _RATE // 1000 // n * n)
        self._found_at = 0
        self._spow = np.zeros(ks)  # smoothed reference power per bin (short FFT)
        self._seblock = np.zeros(fft)
        self._offset = 0  # the short filters' first partition within the tail
        self._found = False  # the long filter has shown where the echo is
        self._delay = 0  # samples, where it found it
        self._prod = np.zeros((p, k), np.complex128)
        self._y = np.zeros(k, np.complex128)
        self._block = np.zeros(2 * n)  # last two reference frames
        self._eblock = np.zeros(2 * n)  # zeros then an error, for its spectrum
        self._out = np.zeros(n)
        self._int_out = np.zeros(n, np.int16)
        self._norm = np.zeros(k)
        self._mag = np.zeros(p)
        self._gain = np.ones(p)
        # Reference FIFO: what was played and not yet paired with a caller frame.
        self._fifo = np.zeros(p * n + n)
        self._queued = 0
        self._since_played = p + 1  # frames since the last non-silent reference
        self._frames = 0
        self._constrain_next = 0
        self._e_fg = 0.0  # smoothed energies: errors and the caller's line
        self._e_bg = 0.0
        self._e_long = 0.0
        self._mic = 0.0
        self._bad = 0  # frames in a row the background did much worse
        self._good = 0  # frames in a row it did better
        self._worse = 0  # frames in a row both filters made the line louder
        # A floor for the step's normaliser: a quiet reference (|x| ~ 4 LSB)
        # must not make the step explode in bins it hardly excites.
        self._floor = 2 * n * 16.0
        self._sfloor = fft * 16.0
        self._snorm = np.zeros(ks)

    # -- feeding --------------------------------------------------------------------

    def played(self, pcm8: np.ndarray) -> None:
        """Queue what the caller heard (int16 or float, 8 kHz). See the module
        docstring for when to call it. Samples beyond the tail are dropped
        (oldest first): they can no longer cancel anything."""
        fifo = self._fifo
        m = pcm8.shape[0]
        if m >= fifo.shape[0]:
            fifo[:] = pcm8[m - fifo.shape[0] :]
            self._queued = fifo.shape[0]
            return
        q = self._queued
        if q + m > fifo.shape[0]:
            drop = q + m - fifo.shape[0]
            fifo[: q - drop] = fifo[drop:q]
            q -= drop
        fifo[q : q + m] = pcm8
        self._queued = q + m

    def reset(self) -> None:
        """Forget the echo path and the queued reference (a new call)."""
        self.__init__(self.tail_ms, self.frame)  # type: ignore[misc]

    def _forget(self) -> None:
        """Forget the echo path (the filters), keep the reference and history."""
        for w in (self._long, self._fg, self._bg):
            w[:] = 0.0
        self._found = False
        self._e_fg = self._e_bg = self._e_long = 0.0
        self._good = self._bad = self._worse = 0

    @property
    def delay_ms(self) -> int | None:
        """The echo's delay (its strongest path) as the long filter found it,
        once found; None before."""
        return round(self._delay * 1000 / _RATE) if self._found else None

    # -- the caller's frame -----------------------------------------------------------

    def process(self, mic8: np.ndarray) -> np.ndarray:
        """The caller's frame (int16, ``frame`` samples) with the echo removed.

        The returned array is reused by the next call: copy it to keep it."""
        n = self.frame
        if mic8.shape[0] != n:
            raise ValueError(f"expected a frame of {n} samples, got {mic8.shape[0]}")
        block = self._block
        block[:n] = block[n:]
        q = self._queued
        fifo = self._fifo
        if q >= n:
            block[n:] = fifo[:n]
            fifo[: q - n] = fifo[n:q]
            self._queued = q - n
        else:
            block[n : n + q] = fifo[:q]
            block[n + q :] = 0.0
            self._queued = 0
        if block[n:].any():
            self._since_played = 0
        else:
            self._since_played += 1
        if self._since_played > self.partitions + 1:
            # Nothing played within the tail (and the block overlap is silent):
            # no echo to remove; the caller's audio passes untouched. The
            # histories still move on, so that data reuse stays aligned.
            self._push(self._hist, block[n:])
            self._push(self._mic_hist, mic8)
            return mic8
        return self._cancel(mic8)

    def _cancel(self, mic8: np.ndarray) -> np.ndarray:
        n, p = self.frame, self.partitions
        head = self._head = (self._head - 1) % p
        spec = np.fft.rfft(self._block)
        self._xs[head] = spec
        self._xs[head + p] = spec
        pw = spec.real * spec.real + spec.imag * spec.imag
        self._xp[head] = pw
        self._xp[head + p] = pw
        x = self._xs[head : head + p]
        xp = self._xp[head : head + p]
        mic = mic8.astype(np.float64)

        self._frames += 1
        settled = self._found and self._frames - self._found_at > _REUSE_FOR
        # No echo after _SEARCH_FOR frames of the agent's audio: most callers
        # hold the phone to the ear. Keep looking, at a quarter of the cost.
        searching = not self._found and self._frames > _SEARCH_FOR
        if not (settled or searching) or self._frames % _SETTLED_EVERY == 0:
            # Once the echo is found and the short filters have settled, the
            # long filter only watches for the echo moving: a step every few
            # frames is enough for that, and it is half the cost.
            self._adapt_long(x, xp, mic)
            if self._frames % _FIND_EVERY == 0:
                self._find_echo()

        hist = self._hist
        self._push(hist, self._block[n:])
        if searching and self._frames % _SETTLED_EVERY and not self._fg.any():
            self._push(self._mic_hist, mic)
            return mic8
        end = hist.shape[0] - self._offset * n
        xs = np.fft.rfft(hist[end - self._fft : end])
        sp = self._spow
        sp *= 1.0 - _SMOOTH
        sp += _SMOOTH * (xs.real * xs.real + xs.imag * xs.imag)
        e_fg = self._short_error(self._fg, xs, mic)
        e_bg = self._short_error(self._bg, xs, mic)
        out = self._out
        out[:] = e_fg

        # Smoothed energies decide between the two short filters: the foreground
        # takes the background only when it removes clearly more, and at least
        # half of the line's energy (so a line without echo keeps a zero filter).
        a = 0.6
        self._e_fg = a * self._e_fg + float(np.dot(e_fg, e_fg))
        self._e_bg = a * self._e_bg + float(np.dot(e_bg, e_bg))
        self._mic = a * self._mic + float(np.dot(mic, mic))
        if self._e_bg < 0.5 * self._mic and self._e_bg < _BETTER * self._e_fg:
            self._good += 1
            if self._good >= _SUSTAINED:
                self._fg[:] = self._bg
                self._e_fg = self._e_bg
                self._good = 0
        else:
            self._good = 0
        if self._e_bg > 4.0 * self._e_fg:
            self._bad += 1
            if self._bad >= 3:  # the background was pulled off by the caller's voice
                self._bg[:] = self._fg
                self._e_bg = self._e_fg
                self._bad = 0
        else:
            self._bad = 0
        if self._e_fg > _WORSE * self._mic and self._e_bg > _WORSE * self._mic:
            self._worse += 1
            if self._worse >= _WORSE_FOR:
                # Both filters add energy: the echo path changed (a new phone,
                # a call moved to speaker) and the filters subtract an echo that
                # is no longer there. Never worse than no canceller: start over.
                self._forget()
                self._push(self._mic_hist, mic)
                self._int_out[:] = mic8
                return self._int_out
        else:
            self._worse = 0

        self._adapt_short(xs, sp, e_bg)
        self._push(self._mic_hist, mic)
        if self._found and self._frames - self._found_at <= _REUSE_FOR and self._frames % _REUSE_EVERY == 0:
            self._reuse()

        np.rint(out, out=out)
        np.clip(out, -32768.0, 32767.0, out=out)
        self._int_out[:] = out
        return self._int_out

    def _push(self, buf: np.ndarray, frame: np.ndarray) -> None:
        n = self.frame
        buf[:-n] = buf[n:]
        buf[-n:] = frame

    def _adapt_short(self, xs: np.ndarray, sp: np.ndarray, e: np.ndarray) -> None:
        """One step of the background filter on its error ``e`` (constrained:
        taps beyond _SHORT frames are zeroed, or the circular convolution would
        wrap)."""
        n = self.frame
        eb = self._seblock
        eb[-n:] = e
        grad = np.fft.rfft(eb)
        grad *= xs.conj()
        norm = self._snorm
        # Normalising each bin by its own power alone makes huge steps in the
        # bins speech hardly excites, and the constraint (a window in time)
        # smears them into the loud bins next to them: floor the normaliser.
        np.maximum(sp, _SPREAD * float(sp.mean()) + self._sfloor, out=norm)
        np.divide(_SHORT_STEP, norm, out=norm)
        grad *= norm
        g = np.fft.irfft(grad, self._fft)
        g[self._taps :] = 0.0
        self._bg += np.fft.rfft(g)

    def _reuse(self) -> None:
        """Early in a call, run the background filter once more over the last
        half second (data reuse): it takes the filter most of the way to the
        least-squares fit of that audio, several times faster than waiting for
        new audio. A few ms, a few times per call."""
        n = self.frame
        hist, mh = self._hist, self._mic_hist
        blocks = mh.shape[0] // n
        sp = np.zeros_like(self._spow)
        base = hist.shape[0] - self._offset * n
        for j in range(blocks - 1, -1, -1):  # oldest first
            end = base - j * n
            xs = np.fft.rfft(hist[end - self._fft : end])
            sp *= 1.0 - _SMOOTH
            sp += _SMOOTH * (xs.real * xs.real + xs.imag * xs.imag)
            m = mh[mh.shape[0] - (j + 1) * n : mh.shape[0] - j * n]
            self._adapt_short(xs, sp, self._short_error(self._bg, xs, m))

    def _adapt_long(self, x: np.ndarray, xp: np.ndarray, mic: np.ndarray) -> None:
        """The long filter spans the whole tail; it is there to find where the
        echo is, so it adapts with proportionate steps (a partition that holds
        more of the echo path adapts faster) and never makes the output."""
        p = self.partitions
        e = self._error(self._long, x, mic)
        self._e_long = 0.6 * self._e_long + float(np.dot(e, e))
        w = self._long
        mag = self._mag
        np.einsum("pk,pk->p", w.real, w.real, out=mag)
        mag += np.einsum("pk,pk->p", w.imag, w.imag)
        np.sqrt(mag, out=mag)
        gain = self._gain
        gain[:] = (1.0 - _ALPHA) / 2.0 + (1.0 + _ALPHA) * p / 2.0 * mag / (float(mag.sum()) + 1e-9)
        norm = self._norm
        np.dot(gain, xp, out=norm)
        self._step_over(norm, _LONG_STEP)
        grad = self._gradient(x, e)
        grad *= norm
        grad *= gain[:, None]
        w += grad
        # Overlap-save wants each partition's taps in the first half of its
        # block; unconstrained steps leak into the second half (wrap-around).
        # One partition's taps are put back in place per frame, in turn: a full
        # constraint on every step costs 2 x partitions FFTs a frame.
        c = self._constrain_next
        self._constrain_next = (c + 1) % p
        self._constrain(w[c : c + 1])

    def _find_echo(self) -> None:
        """Point the short filters at where the long filter's strongest tap is
        (the direct path), starting one frame earlier: a room's reflections
        follow the direct path, and a little comes before it."""
        n = self.frame
        taps = np.fft.irfft(self._long, 2 * n, axis=1)[:, :n]  # what overlap-save uses of each partition
        energy = np.einsum("pk,pk->p", taps, taps)
        peak = int(np.argmax(energy))
        if energy[peak] == 0.0 or energy[peak] < 4.0 * float(np.median(energy)):
            return  # no clear echo yet
        if self._e_long > (_MOVED if self._found else _FIRST) * self._mic:
            # The long filter does not model the echo (yet, or the caller's
            # voice is pulling it off: double talk): its peak proves nothing.
            return
        delay = int(np.argmax(np.abs(taps[peak]))) + peak * n
        if self._found and self._offset < peak < self._offset + _SHORT:
            self._delay = delay  # still within the short filters' reach
            return
        self._delay = delay
        new = min(max(peak - 1, 0), self.partitions - _SHORT)
        if not self._found:
            # A head start: the long filter's estimate at that place.
            head = np.zeros(self._fft)
            head[: self._taps] = taps[new : new + _SHORT].reshape(-1)
            self._bg[:] = np.fft.rfft(head)
        else:
            shift = (new - self._offset) * self.frame
            for w in (self._fg, self._bg):
                t = np.fft.irfft(w, self._fft)
                if abs(shift) >= self._taps:
                    t[:] = 0.0
                elif shift > 0:
                    t[: self._taps - shift] = t[shift : self._taps].copy()
                    t[self._taps - shift : self._taps] = 0.0
                else:
                    t[-shift : self._taps] = t[: self._taps + shift].copy()
                    t[:-shift] = 0.0
                w[:] = np.fft.rfft(t)
            self._e_fg = self._e_bg = 0.0
        self._found_at = self._frames  # (re)start data reuse at the new place
        self._found = True
        self._offset = new

    def _constrain(self, w: np.ndarray) -> None:
        """Zero the second half of each row's impulse response (in place)."""
        n = self.frame
        t = np.fft.irfft(w, 2 * n, axis=1)
        t[:, n:] = 0.0
        w[:] = np.fft.rfft(t, axis=1)

    def _step_over(self, norm: np.ndarray, step: float) -> None:
        """``norm`` (the reference power per bin) -> step / power, floored."""
        np.maximum(norm, self._floor + 1e-3 * float(norm.mean()), out=norm)
        np.divide(step, norm, out=norm)

    def _gradient(self, x: np.ndarray, e: np.ndarray) -> np.ndarray:
        n = self.frame
        eb = self._eblock
        eb[n:] = e
        err = np.fft.rfft(eb)
        grad = self._prod[: x.shape[0]]
        np.conjugate(x, out=grad)
        grad *= err
        return grad

    def _short_error(self, w: np.ndarray, xs: np.ndarray, mic: np.ndarray) -> np.ndarray:
        y = np.fft.irfft(w * xs, self._fft)
        return mic - y[-self.frame :]

    def _error(self, w: np.ndarray, x: np.ndarray, mic: np.ndarray) -> np.ndarray:
        """mic minus the echo that filter ``w`` predicts (overlap-save's valid half)."""
        prod = self._prod[: w.shape[0]]
        np.multiply(w, x, out=prod)
        prod.sum(axis=0, out=self._y)
        y = np.fft.irfft(self._y, 2 * self.frame)
        return mic - y[self.frame :]
