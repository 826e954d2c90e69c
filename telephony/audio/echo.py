"""Echo cancellation for the caller -> model path: the agent's own voice, played
to a speakerphone and picked up again, is removed from the caller's audio.

``EchoCanceller`` is linear (no suppressor: what is not echo passes bit for bit)
and pure numpy, with no I/O. 8 kHz, 20 ms frames of 160 samples, in mu-law as
the line carries them (``played_ulaw``, ``process_ulaw``: the bridge's path) or
int16 (``played``, ``process``: mu-law coded on the way in). It keeps both
histories as mu-law codes and decodes only what a look, a fit or the filter
reads: while it only searches, a frame costs two copies of 160 bytes.

How it works, and why:

* **Where the echo is**: every 5-10 frames of the agent's audio until it is
  found (every 25 after 3 s of looking in vain, every 50 after 10 s, every
  100 once found), the
  generalised cross-correlation of what was played and what the line sent
  (``echo_estimate.DelayFinder``, GCC-PHAT over the whole tail, at 4 kHz)
  shows the echo's strongest path as a sharp peak; a peak 8 times the
  correlation's RMS at the same place on two looks in a row, 10 ms or more
  after playback, is the echo (chance peaks of a caller's voice against the
  agent's move from look to look; one that does not gets fewer fits: see
  below). Nothing adapts per frame to find it:
  ~50-100 µs a look, not a 400 ms filter every frame.
* **What the echo is**: a 32 ms filter (256 taps) starting 3 ms before that
  peak covers a small room's response. Its taps are *solved*, not adapted
  (``echo_estimate.PathFit``): the regularised least-squares fit of the last
  2 s (at most), every 200 ms for the first second after the echo is found,
  then every 5 s of the agent's audio to follow slow changes (10, then 20 s
  while refits find nothing better); about 2 ms a fit, on one core. That is
  what reaches 30 dB within a second: each fit is as
  good as all the audio so far allows (with a prior that keeps the taps of
  barely excited bands small), where an adaptive filter needs many passes
  and a second of speech does not excite every band the next words bring.
* **Double talk**: a fit is only a *candidate*. The filter in use (the
  foreground) takes it only when, on the frames after the fit (audio the fit
  never saw), it leaves clearly less than the foreground does, and at most
  half of the line's energy, for a few frames in a row. (The first fit is
  used at once when it leaves less than a tenth of its own window: no
  caller's voice there to pull it off.) A fit pulled off by
  the caller's voice (the caller talking during its window) does worse on new
  audio and is dropped, so the caller's voice reaches the model intact, and a
  line with no echo keeps no filter at all (the output is the input). When
  the first two fits at a place each leave more than half of the line and
  neither is taken, the place is doubtful (two voices alike at one delay, or
  an echo at the noise floor): the rest of the first second's fits are
  skipped and it is refitted on the later schedule only, where a real faint
  echo's fits, on longer windows, can still be taken.
* **A changed echo path**: when the foreground makes the line louder for a
  few frames in a row (it subtracts an echo that is no longer there), it is
  dropped and the search starts again: never much worse than no canceller.
  The search also keeps looking (every 2 s of the agent's audio) and moves
  the filter when the peak has clearly moved out of it.
* When nothing was played within the tail, the frame is returned unchanged
  and nothing is computed: no cost and no change while only the caller speaks.

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
  removed (a wrong reference only wastes fits: the foreground does not take
  a filter that does not help).
* After a ``clear`` (barge-in) the unplayed audio must not be fed: it was
  never heard.
* ``played`` may run ahead: samples queue (up to the tail) and each
  ``process`` takes the oldest 160. A missing reference counts as silence,
  and so does a frame of zeros given to ``played`` (it is queued, but a
  canceller whose tail holds only silence goes idle).

Cost (``python -m benchmarks.echo``; ``work`` counts it): while the agent's
audio is in the tail, about a µs per frame, plus one ``np.correlate`` (~6 µs)
per frame once a filter is in use, plus the looks and fits above; nothing
while nothing was played within the tail. The arrays it returns are reused by
the next call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .echo_estimate import DelayFinder, PathFit, shared_fit
from .g711 import INT16_TO_ULAW, ULAW_SILENCE, ULAW_TO_FLOAT
from .resample import clip_ufunc

__all__ = ["EchoCanceller", "EchoWork"]

_RATE = 8000
_TAPS = 256  # the filter: 32 ms...
_LEAD = 24  # ...starting 3 ms before the echo's strongest path
_DECAY_MS = 40.0  # the fit's prior: a room's response falls by 60 dB over this
_WINDOW = 2 * _RATE  # a fit's window: the last 2 s (at most) of the current echo path
_FIT_AFTER = 8  # frames of the agent's audio after the echo is found before its first fit
_FIT_EVERY = ((50, 10),)  # (until this many frames after it is found, fit every n frames)
_FIT_LATER = 250  # ...then every this many frames, doubling while no refit is taken...
_FIT_LATEST = 1000  # ...up to this many
_LOOK_EVERY = ((50, 5), (150, 10), (500, 25))  # (until this many frames of the agent's audio, look every n)
_LOOK_LATER = 50  # ...then every this many; once found, every _LOOK_FOUND
_LOOK_FOUND = 100
_LOOK_STEP = 5  # every interval above is a multiple of this: no look in between
_MIN_DELAY_MS = 10  # no echo comes back sooner over a phone network (nor do chance peaks count)
_FOUND = 8.0  # a correlation peak this many times its RMS, twice in a row at one place, is an echo
_MOVED = 15.0  # ...and moves the filter once found
_BETTER = 0.95  # the candidate must leave less than this of the foreground's error...
_HALF = 0.5  # ...and less than this of the line's energy...
_SUSTAINED = 3  # ...for this many frames in a row to be taken
_AT_ONCE = 0.1  # a first fit that leaves less than this of its window is taken at once
_TRIAL = 25  # frames a candidate is tried before it is dropped
_WORSE = 1.5  # the foreground's error above this times the line's energy...
_WORSE_FOR = 5  # ...for this many frames in a row: the echo path changed
_SMOOTH = 0.6  # decay of the smoothed energies that decide
_DOUBTFUL = 0.5  # two fits that each leave more than this of the line, none taken: a doubtful place
_DECODE = ULAW_TO_FLOAT.take


def _int16(samples: np.ndarray) -> np.ndarray:
    if samples.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {samples.dtype}")
    return samples


@dataclass
class EchoWork:
    """What a canceller has done since it was made (or reset): what its CPU goes to."""

    active: int = 0  # frames with the agent's audio within the tail (the rest cost nothing)
    looks: int = 0  # delay searches (~50-100 µs each)
    fits: int = 0  # least-squares fits (~2 ms each)
    filtered: int = 0  # frames the foreground filtered (one np.correlate each)
    doubtful: int = 0  # places whose first two fits explained little: refitted on the later schedule only


class EchoCanceller:
    """Removes the echo of what was ``played`` from what the caller's line
    sends (``process``), 8 kHz int16 in 160-sample frames.

    ``tail_ms``: the longest echo delay (plus room) it can cancel.
    """

    def __init__(self, tail_ms: int = 400, frame: int = 160) -> None:
        tail = tail_ms * _RATE // 1000
        if frame <= 0 or tail < _TAPS + frame:
            raise ValueError(
                f"tail_ms must cover the {_TAPS * 1000 // _RATE} ms filter and a frame, got tail_ms={tail_ms}, frame={frame}"
            )
        self.frame = n = frame
        self.tail_ms = tail_ms
        self._tail_frames = -(-tail // n)
        # The filter [lag - lead, lag - lead + taps) stays within the tail. The search
        # runs at 4 kHz (pairs of samples summed: half the FFT, lags to 2 samples,
        # well within the lead).
        self._max_lag = (tail - _TAPS + _LEAD) // 2 * 2
        self._finder = DelayFinder(
            self._max_lag // 2, 1 << (self._max_lag // 2 + 5 * n // 2).bit_length(), _MIN_DELAY_MS * _RATE // 2000
        )
        self._fit: PathFit | None = None  # the thread's shared one (its ~2 MB are work arrays), at the first fit
        # History, oldest first, as mu-law codes in one buffer each for the reference
        # and the line (bytearrays: a frame is a slice copy; the numpy views decode);
        # positions are absolute sample counts, the buffers hold [_base, _base + size).
        # The reference may hold up to a tail (and a frame) fed ahead.
        self._keep = _WINDOW + tail + 2 * _TAPS + n
        self._ahead = tail + n
        size = self._keep + self._ahead + _RATE // 2
        self._xb = bytearray([ULAW_SILENCE]) * size
        self._mb = bytearray([ULAW_SILENCE]) * size
        self._x = np.frombuffer(self._xb, np.uint8)
        self._m = np.frombuffer(self._mb, np.uint8)
        self._silence = bytes([ULAW_SILENCE]) * n
        self._base = -self._keep  # so that position 0 starts after a silent history
        self._t = 0  # samples processed
        self._queued = 0  # samples played ahead of _t
        self._heard_to = 0  # where the last sound (not silence) given to played() ends
        self._since_played = self._tail_frames + 2  # frames since the last one with sound in it
        self._out = np.zeros(n)
        self._int_out = np.zeros(n, np.int16)
        self.work = EchoWork()
        self._forget()

    def _forget(self, keep_frames: bool = False) -> None:
        """Forget the echo path (keep the histories): search from the next frame on
        (``keep_frames``: at the pace reached so far)."""
        if not keep_frames:
            self._frames = 0  # frames of the agent's audio since then
        self._path_from = self._t  # where the audio of the current echo path starts
        self._lag: int | None = None  # the echo's strongest path, once found (samples)...
        self._offset = 0  # ...and the filter's first tap's delay
        self._seen: int | None = None  # the peak's place at the last look, if high enough
        self._found_at = 0
        self._fits = 0
        self._left = self._left_before = 1.0  # the share of its window's line energy the last two fits left
        self._doubtful = False  # see _due
        self._next_fit = 0  # after the first second: the frame of the next refit...
        self._fit_later = _FIT_LATER  # ...and the interval after it
        self._took = False  # a candidate became the foreground since the last refit
        self._fg: np.ndarray | None = None  # the foreground's taps, reversed (for np.correlate)
        self._cand: np.ndarray | None = None  # a fit on trial
        self._trial = self._good = self._worse = 0
        self._e_fg = self._e_cand = self._e_mic = 0.0
        self._finder.reset()

    def reset(self) -> None:
        """Forget the echo path and the queued reference (a new call)."""
        self.__init__(self.tail_ms, self.frame)  # type: ignore[misc]

    @property
    def idle(self) -> bool:
        """Nothing played within the tail and nothing queued: a frame now would be
        returned unchanged and teach nothing, so the caller may skip both ``played``
        and ``process`` (time stands still for the canceller; the reference and the
        line stay aligned)."""
        return self._queued == 0 and self._since_played > self._tail_frames + 1

    @property
    def delay_ms(self) -> int | None:
        """The echo's delay (its strongest path) as last found; None before."""
        return None if self._lag is None else round(self._lag * 1000 / _RATE)

    # -- feeding --------------------------------------------------------------------

    def played(self, pcm8: np.ndarray) -> None:
        """Queue what the caller heard (int16, 8 kHz; mu-law coded here). See the
        module docstring for when to call it."""
        self.played_ulaw(INT16_TO_ULAW.take(_int16(pcm8).view(np.uint16)).tobytes(), silent=not pcm8.any())

    def played_ulaw(self, codes: bytes | bytearray | memoryview, silent: bool = False) -> None:
        """Queue what the caller heard, as mu-law codes (what was sent to Twilio);
        ``silent``: it is silence (kept in line, but no sound to cancel). Samples
        beyond the tail are dropped (oldest first): they can no longer cancel anything."""
        m = len(codes)
        if m >= self._ahead:
            codes, m = codes[m - self._ahead :], self._ahead
        self._make_room()
        i = self._t - self._base
        q = self._queued
        xb = self._xb
        if q + m > self._ahead:
            drop = q + m - self._ahead
            xb[i : i + q - drop] = xb[i + drop : i + q]
            q -= drop
        xb[i + q : i + q + m] = codes
        self._queued = q + m
        if not silent:
            self._heard_to = self._t + q + m

    def _make_room(self) -> None:
        """Move the kept history to the buffers' start when the next frame and a
        full queue would not fit."""
        i = self._t - self._base
        if i + self._ahead + self.frame <= len(self._xb):
            return
        shift = i - self._keep
        for buf in (self._xb, self._mb):
            buf[: len(buf) - shift] = buf[shift:]
        self._base += shift

    # -- the caller's frame -----------------------------------------------------------

    def process(self, mic8: np.ndarray) -> np.ndarray:
        """The caller's frame (int16, ``frame`` samples; mu-law coded here) with the
        echo removed: ``mic8`` itself when nothing was removed.

        The returned array is reused by the next call: copy it to keep it."""
        if mic8.shape[0] != self.frame:
            raise ValueError(f"expected a frame of {self.frame} samples, got {mic8.shape[0]}")
        out = self.process_ulaw(INT16_TO_ULAW.take(_int16(mic8).view(np.uint16)).tobytes())
        return mic8 if out is None else out

    def process_ulaw(self, codes: bytes | bytearray | memoryview) -> np.ndarray | None:
        """The caller's frame (``frame`` mu-law codes) with the echo removed, as
        int16 samples; None when nothing was removed (use ``codes`` as they are).

        The returned array is reused by the next call: copy it to keep it."""
        n = self.frame
        if len(codes) != n:
            raise ValueError(f"expected a frame of {n} samples, got {len(codes)}")
        self._make_room()
        t = self._t
        i = t - self._base
        q = self._queued
        if q >= n:
            self._queued = q - n
        else:
            self._xb[i + q : i + n] = self._silence[q:]
            self._queued = 0
        self._mb[i : i + n] = codes
        self._t = t + n
        if self._heard_to > t:
            self._since_played = 0
        else:
            self._since_played += 1
            if self._since_played > self._tail_frames + 1:
                return None  # nothing played within the tail: no echo to remove
        self._frames += 1
        self.work.active += 1
        k = self._frames
        if k % _LOOK_STEP == 0 and (self._lag is None or k % _LOOK_FOUND == 0):
            self._look()
        if self._lag is None:
            return None
        if self._due():
            self._solve()
        fg, cand = self._fg, self._cand
        if fg is None and cand is None:
            return None
        # The frame's echo: sum_j h[j] x[t - lag + lead - j] for its samples t.
        end = i + n - self._offset
        seg = _DECODE(self._x[end - n - _TAPS + 1 : end])
        mic = _DECODE(self._m[i : i + n])
        a = _SMOOTH
        self._e_mic = a * self._e_mic + float(np.dot(mic, mic))
        out = self._out
        if fg is None:
            out[:] = mic
        else:
            np.subtract(mic, np.correlate(seg, fg), out=out)
        self._e_fg = a * self._e_fg + float(np.dot(out, out))
        if cand is not None:
            e = mic - np.correlate(seg, cand)
            self._e_cand = a * self._e_cand + float(np.dot(e, e))
            if self._try(e):
                out[:] = e
        if self._fg is not None and self._e_fg > _WORSE * self._e_mic:
            self._worse += 1
            if self._worse >= _WORSE_FOR:
                # The foreground adds energy: the echo path changed (a new phone,
                # a call moved to speaker) and it subtracts an echo that is no
                # longer there. Never worse than no canceller: start over.
                self._forget()
                return None
        else:
            self._worse = 0
        if self._fg is None:
            return None
        self.work.filtered += 1
        clip_ufunc(out, -32768.0, 32767.0, out=out)
        np.rint(out, out=self._int_out, casting="unsafe")
        return self._int_out

    def _try(self, e: np.ndarray) -> bool:
        """One frame of the candidate's trial; True when it becomes the foreground."""
        self._trial += 1
        if self._e_cand < _HALF * self._e_mic and self._e_cand < _BETTER * self._e_fg:
            self._good += 1
            if self._good >= _SUSTAINED:
                self._fg, self._cand = self._cand, None
                self._e_fg = self._e_cand
                self._took = True
                return True
        else:
            self._good = 0
        if self._trial >= _TRIAL:
            self._cand = None
        return False

    def _look(self) -> None:
        """Every few frames of the agent's audio, add the frames since the last look
        to the delay search; take or move the echo's place when the peak is clear."""
        k = self._frames
        every = next((e for until, e in _LOOK_EVERY if k <= until), _LOOK_LATER)
        if self._lag is not None:
            every = _LOOK_FOUND
        if k % every:
            return
        d = self._max_lag
        b = min(every * self.frame, 2 * self._finder.longest, self._t - self._path_from) // 2 * 2
        if b < self.frame:
            return
        i = self._t - self._base
        self.work.looks += 1
        ref = _DECODE(self._x[i - b - d : i])
        ref = ref[::2] + ref[1::2]
        line = _DECODE(self._m[i - b : i])
        line = line[::2] + line[1::2]
        lag, height = self._finder.add(ref, line)
        lag *= 2
        # A peak counts when two looks in a row put it at the same place: a chance
        # peak of the caller's voice against the agent's moves from look to look.
        seen, self._seen = self._seen, (lag if height >= _FOUND else None)
        if seen is None or abs(lag - seen) > 2:
            return
        if self._lag is None:
            self._place(lag)
        elif height >= _MOVED and not self._lag - _LEAD // 2 <= lag <= self._lag + _TAPS // 4:
            self._place(lag)  # moved: fit afresh there
            self._fg = self._cand = None

    def _place(self, lag: int) -> None:
        self._lag, self._offset = lag, max(lag - _LEAD, 0)
        self._found_at, self._fits = self._frames, 0
        self._next_fit = self._frames + _FIT_AFTER + _FIT_LATER
        self._fit_later = _FIT_LATER
        self._left = self._left_before = 1.0
        self._doubtful = False

    def _due(self) -> bool:
        since = self._frames - self._found_at
        if since < _FIT_AFTER:
            return False
        if self._fits == 0:
            return True
        for until, every in _FIT_EVERY:
            if since <= until:
                if self._doubtful or (since - _FIT_AFTER) % every:
                    return False
                if self._fits == 2 and self._fg is None and min(self._left, self._left_before) > _DOUBTFUL:
                    # Neither of the first two fits explained much of the line, and none
                    # was taken: no more fits this first second (the later schedule stays).
                    self._doubtful = True
                    self.work.doubtful += 1
                    return False
                return True
        if self._frames < self._next_fit:
            return False
        # A refit that was not taken found nothing new: the path is steady, so the
        # next one comes twice as late (up to _FIT_LATEST); one that was taken resets.
        self._fit_later = _FIT_LATER if self._took else min(2 * self._fit_later, _FIT_LATEST)
        self._took = False
        self._next_fit = self._frames + self._fit_later
        return True

    def _solve(self) -> None:
        """Fit the echo path at the current place on the window's audio; the fit
        goes on trial (replacing any candidate still on trial)."""
        assert self._lag is not None
        size = min(_WINDOW, self._t - self._path_from)
        fits = (1 << (size + _TAPS - 2).bit_length() - 1) - _TAPS + 1  # the most an FFT half the size takes
        if size - fits < size // 5:
            size = fits  # a little less audio for half the FFT
        size -= size % self.frame
        if size < 4 * self.frame:
            return
        i = self._t - self._base
        end = i - self._offset  # u[q] = x[q - offset]: the reference at the filter's first tap
        ref = _DECODE(self._x[end - size - 2 * _TAPS + 1 : end])
        line = _DECODE(self._m[i - size : i])
        frames = line.reshape(-1, self.frame)
        noise = max(float(np.min(np.einsum("ij,ij->i", frames, frames))) / self.frame, 4.0)
        self._fit = shared_fit(_TAPS, _LEAD, _DECAY_MS)  # this thread's: a dict lookup
        h = self._fit.solve(ref, line, noise)
        # (the fit is shared by the thread's cancellers: keep ours; no taps, nothing explained)
        self._left_before, self._left = self._left, (self._fit.left if h is not None else 1.0)
        self._fits += 1
        self.work.fits += 1
        if h is None:
            return  # (never seen: the prior keeps the system well posed)
        self._cand = h[::-1].copy()
        self._trial = self._good = 0
        if self._fg is None and self._left < _AT_ONCE:
            self._took = True
            # Nothing in use yet and the fit explains its window almost entirely
            # (no caller's voice in it to pull it off): use it from now on.
            self._fg, self._cand = self._cand, None
        self._e_cand = self._e_fg
