"""Line impairments: what a real phone line does to audio, for tests and for trying
an agent before a real caller does.

Signals are 8 kHz int16 numpy arrays (decode mu-law with ``from_ulaw``); frame
streams are lists of 20 ms frames (160 int16 samples, or 160 mu-law bytes).
Everything random takes a ``seed`` and gives the same result for the same seed.

* ``echo``: the agent's voice coming back from a speakerphone: a delay, a short
  room-like impulse response (exponentially decaying noise) and a level in dB
  below the agent's.
* ``noise``: white noise at a level in dBFS (0 dBFS = a full-scale sine's RMS).
* ``insert``: an utterance (a backchannel "mhm", a cough) mixed in at a time.
* ``mix``: sum signals with saturation, as a line would.
* ``frames`` / ``join``: a signal as 20 ms frames and back.
* ``lose``: frames lost (replaced by silence: zeros, or mu-law's 0xFF).
* ``bursty``: jittery delivery: every frame, in order, but held back and
  released in bursts; returns (arrival ms, frame) pairs.
* ``Line``: a preset of the above (``SPEAKERPHONE``, ``NOISY``, ``BACKCHANNEL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from telephony.audio.g711 import INT16_TO_ULAW, ULAW_SILENCE, ULAW_TO_INT

__all__ = [
    "BACKCHANNEL",
    "FRAME",
    "NOISY",
    "RATE",
    "SPEAKERPHONE",
    "Line",
    "bursty",
    "echo",
    "frames",
    "from_ulaw",
    "insert",
    "join",
    "lose",
    "mix",
    "noise",
    "rms_db",
    "room_response",
    "to_ulaw",
]

RATE = 8000
FRAME = 160  # 20 ms
_FULL_SCALE_RMS = 32767 / np.sqrt(2)  # 0 dBFS: a full-scale sine

Frame = TypeVar("Frame", np.ndarray, bytes)


def to_ulaw(pcm8: np.ndarray) -> bytes:
    """int16 -> mu-law bytes (what Twilio carries)."""
    return bytes(INT16_TO_ULAW[np.asarray(pcm8, np.int16).view(np.uint16)].tobytes())


def from_ulaw(ulaw: bytes) -> np.ndarray:
    """mu-law bytes -> int16."""
    out: np.ndarray = ULAW_TO_INT[np.frombuffer(ulaw, np.uint8)]
    return out


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS (-inf for silence)."""
    x = np.asarray(x, np.float64)
    r = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return 20 * np.log10(r / _FULL_SCALE_RMS) if r > 0 else float("-inf")


def _saturate(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return out


def mix(*signals: np.ndarray) -> np.ndarray:
    """Sum signals (the longest's length; shorter ones end in silence), saturated to int16."""
    n = max(s.shape[0] for s in signals)
    acc = np.zeros(n)
    for s in signals:
        acc[: s.shape[0]] += s
    return _saturate(acc)


def room_response(delay_ms: float, room_ms: float = 40.0, *, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """An echo path's impulse response with unit energy: ``delay_ms`` of zeros, then
    ``room_ms`` of noise decaying by 60 dB (a small room's reverberation) after a
    direct path that carries most of the energy."""
    d = round(delay_ms * rate / 1000)
    m = max(1, round(room_ms * rate / 1000))
    rng = np.random.default_rng(seed)
    t = np.arange(m)
    tail = np.clip(rng.standard_normal(m), -3.0, 3.0) * 10 ** (-3 * t / m)  # -60 dB over room_ms
    tail[0] = 0.0
    h = np.zeros(d + m)
    h[d] = 1.0  # the direct path (loudspeaker to microphone), always the strongest tap
    h[d:] += 0.3 * tail
    h /= np.sqrt(np.sum(h * h))
    return h


def echo(played: np.ndarray, delay_ms: float, level_db: float, *, room_ms: float = 40.0, seed: int = 0) -> np.ndarray:
    """The echo of ``played`` (int16): delayed by ``delay_ms`` (to its direct path),
    through ``room_response``, at ``level_db`` dB below ``played``'s RMS level.
    Same length as ``played`` (what would come back after it is cut off)."""
    h = room_response(delay_ms, room_ms, seed=seed)
    x = np.asarray(played, np.float64)
    y = np.convolve(x, h)[: x.shape[0]]
    ry, rx = np.sqrt(np.mean(y * y)), np.sqrt(np.mean(x * x))
    if ry > 0:
        y *= rx / ry * 10 ** (-level_db / 20)
    return _saturate(y)


def noise(samples: int, level_dbfs: float, *, seed: int = 0) -> np.ndarray:
    """White Gaussian noise at ``level_dbfs`` RMS, int16."""
    rng = np.random.default_rng(seed)
    return _saturate(rng.standard_normal(samples) * _FULL_SCALE_RMS * 10 ** (level_dbfs / 20))


def insert(signal: np.ndarray, utterance: np.ndarray, at_ms: float, *, gain_db: float = 0.0) -> np.ndarray:
    """``utterance`` mixed into ``signal`` starting at ``at_ms`` (cut at the signal's end)."""
    start = round(at_ms * RATE / 1000)
    if start < 0 or start >= signal.shape[0]:
        raise ValueError(f"at_ms={at_ms} is outside the signal ({signal.shape[0] * 1000 / RATE:.0f} ms)")
    part = np.asarray(utterance, np.float64)[: signal.shape[0] - start] * 10 ** (gain_db / 20)
    acc = np.asarray(signal, np.float64).copy()
    acc[start : start + part.shape[0]] += part
    return _saturate(acc)


def frames(signal: np.ndarray | bytes, frame: int = FRAME) -> list:
    """20 ms frames of an int16 signal (or mu-law bytes); the last one padded with silence."""
    if isinstance(signal, bytes | bytearray):
        pad = (-len(signal)) % frame
        data = bytes(signal) + bytes([ULAW_SILENCE]) * pad
        return [data[i : i + frame] for i in range(0, len(data), frame)]
    pad = (-signal.shape[0]) % frame
    pcm = np.concatenate([np.asarray(signal, np.int16), np.zeros(pad, np.int16)])
    return [pcm[i : i + frame] for i in range(0, pcm.shape[0], frame)]


def join(stream: list) -> np.ndarray | bytes:
    """Frames back into one signal (int16 array, or mu-law bytes)."""
    if stream and isinstance(stream[0], bytes | bytearray):
        return b"".join(stream)
    return np.concatenate(stream) if stream else np.zeros(0, np.int16)


def _silence_like(f: Frame) -> Frame:
    if isinstance(f, bytes | bytearray):
        return bytes([ULAW_SILENCE]) * len(f)
    return np.zeros_like(f)


def lose(stream: list, rate: float, *, burst: int = 1, seed: int = 0) -> list:
    """Frames lost at ``rate`` (0-1), ``burst`` consecutive frames at a time: each
    lost frame is replaced by silence (a line's concealment at its crudest). The
    stream keeps its length and timing."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within 0-1, got {rate}")
    rng = np.random.default_rng(seed)
    out = list(stream)
    i = 0
    starts = rng.random(len(out)) < rate / max(1, burst)
    while i < len(out):
        if starts[i]:
            for j in range(i, min(i + burst, len(out))):
                out[j] = _silence_like(out[j])
            i += burst
        else:
            i += 1
    return out


def bursty(
    stream: list, max_hold_ms: float = 120.0, *, frame_ms: float = 20.0, seed: int = 0
) -> list[tuple[float, object]]:
    """Jittery delivery: (arrival time in ms, frame) for every frame, in order.
    Frame ``k`` is due at ``k * frame_ms``; the network holds frames back for up
    to ``max_hold_ms`` and then releases what it held at once (a burst).
    Arrival times never decrease, and no frame arrives before it was due."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, object]] = []
    release = 0.0
    k = 0
    while k < len(stream):
        due = k * frame_ms
        hold = float(rng.uniform(0, max_hold_ms))
        release = max(release, due + hold)
        while k < len(stream) and k * frame_ms <= release:
            out.append((release, stream[k]))
            k += 1
    return out


@dataclass(frozen=True, slots=True)
class Line:
    """A phone line's impairments, applied to the caller's side of a call.

    ``apply(caller, played)`` returns what the bridge receives: the caller's
    voice, plus the echo of what was played to them, plus noise, at 8 kHz int16.
    ``deliver(frames)`` then loses frames (``loss``) and delivers the rest with
    jitter (``jitter_ms``): (arrival ms, frame) pairs."""

    name: str
    echo_delay_ms: float | None = None
    echo_level_db: float = 12.0  # below the agent
    room_ms: float = 40.0
    noise_dbfs: float | None = None
    loss: float = 0.0
    jitter_ms: float = 0.0
    seed: int = 0

    def apply(self, caller: np.ndarray, played: np.ndarray | None = None) -> np.ndarray:
        n = max(caller.shape[0], 0 if played is None else played.shape[0])
        parts = [caller]
        if self.echo_delay_ms is not None and played is not None and played.any():
            parts.append(echo(played, self.echo_delay_ms, self.echo_level_db, room_ms=self.room_ms, seed=self.seed))
        if self.noise_dbfs is not None:
            parts.append(noise(n, self.noise_dbfs, seed=self.seed + 1))
        return mix(*parts)

    def deliver(self, stream: list) -> list[tuple[float, object]]:
        """A frame stream as this line delivers it: lost frames are silence,
        the others arrive in bursts up to ``jitter_ms`` late."""
        if self.loss:
            stream = lose(stream, self.loss, seed=self.seed + 2)
        if self.jitter_ms:
            return bursty(stream, self.jitter_ms, seed=self.seed + 3)
        return [(k * 20.0, f) for k, f in enumerate(stream)]


#: A caller on speakerphone: the agent comes back 150 ms later, 10 dB down, with a room.
SPEAKERPHONE = Line("speakerphone", echo_delay_ms=150.0, echo_level_db=10.0, noise_dbfs=-60.0)
#: A noisy street on a mobile: loud broadband noise, a few lost frames, jitter.
NOISY = Line("noisy", noise_dbfs=-35.0, loss=0.02, jitter_ms=60.0)
#: A quiet line where the caller says "mhm" while the agent talks (see ``insert``).
BACKCHANNEL = Line("backchannel", noise_dbfs=-65.0)
