"""Audio path benchmark: ours vs audioop.ratecv vs soxr, side by side.

    python -m benchmarks.audio

Quality is measured on the speech samples of tests/audio_data.py against soxr VHQ
(the ideal reference), inside 100-3400 Hz, after aligning the constant delay. Delay
is the group delay plus what a streaming resampler holds back when fed 20 ms
frames. Cost is microseconds per 20 ms frame on one core, mu-law included.
"""

from __future__ import annotations

import audioop
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import soxr

from telephony.audio import CallerToModel, ModelToCaller
from telephony.audio.g711 import ULAW_TO_INT
from tests import audio_quality as q
from tests.audio_data import agent_pcm24, caller_pcm8


def _time_per_frame(fn, frames, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the mean microseconds per frame."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for f in frames:
            fn(f)
        runs.append((time.perf_counter() - t0) / len(frames) * 1e6)
    return statistics.median(runs)


# --- the four methods, streaming, bytes in and out like the bridge -------------------


class Ours:
    name = "ours (polyphase FIR, 103 taps)"

    def __init__(self):
        self.up, self.down = CallerToModel(), ModelToCaller()

    def up_frame(self, ulaw: bytes) -> bytes:
        return self.up.convert(ulaw)

    def down_frame(self, pcm24: bytes) -> bytes:
        return self.down.convert(pcm24)

    def down_pcm(self, pcm24: bytes) -> bytes:
        return self.down._down.process(np.frombuffer(pcm24, "<i2")).tobytes()


class Ratecv:
    name = "audioop.ratecv"

    def __init__(self):
        self.su = self.sd = None

    def up_frame(self, ulaw: bytes) -> bytes:
        out, self.su = audioop.ratecv(audioop.ulaw2lin(ulaw, 2), 2, 1, 8000, 24000, self.su)
        return out

    def down_pcm(self, pcm24: bytes) -> bytes:
        out, self.sd = audioop.ratecv(pcm24, 2, 1, 24000, 8000, self.sd)
        return out

    def down_frame(self, pcm24: bytes) -> bytes:
        return audioop.lin2ulaw(self.down_pcm(pcm24), 2)


class Soxr:
    def __init__(self, quality: str):
        self.name = f"soxr {quality}"
        self.up = soxr.ResampleStream(8000, 24000, 1, dtype="int16", quality=quality)
        self.down = soxr.ResampleStream(24000, 8000, 1, dtype="int16", quality=quality)

    def up_frame(self, ulaw: bytes) -> bytes:
        return bytes(self.up.resample_chunk(ULAW_TO_INT[np.frombuffer(ulaw, np.uint8)]).tobytes())

    def down_pcm(self, pcm24: bytes) -> bytes:
        return bytes(self.down.resample_chunk(np.frombuffer(pcm24, "<i2")).tobytes())

    def down_frame(self, pcm24: bytes) -> bytes:
        return audioop.lin2ulaw(self.down_pcm(pcm24), 2)


def measure(make) -> dict[str, float]:
    x8 = caller_pcm8()
    ulaw = audioop.lin2ulaw(x8.astype("<i2").tobytes(), 2)
    x24 = agent_pcm24()
    ref_up = q.soxr_resample(x8, 8000, 24000, "VHQ")
    ref_down = q.soxr_resample(x24, 24000, 8000, "VHQ")

    m = make()
    up_chunks: list[bytes] = []
    up_held, fed, produced = 0.0, 0.0, 0.0
    for i in range(0, len(ulaw), 160):
        frame = ulaw[i : i + 160]
        out = m.up_frame(frame)
        up_chunks.append(out)
        fed += len(frame) / 8  # ms in
        produced += len(out) / 48  # ms out
        up_held = max(up_held, fed - produced)
    up = np.frombuffer(b"".join(up_chunks), "<i2").astype(float)
    snr_up, delay_up = q.band_snr(up, ref_up, 24000)

    m = make()
    pcm = x24.tobytes()
    down_chunks: list[bytes] = []
    down_held, fed, produced = 0.0, 0.0, 0.0
    for i in range(0, len(pcm), 960):
        chunk = pcm[i : i + 960]
        out = m.down_frame(chunk)
        down_chunks.append(out)
        fed += len(chunk) / 48
        produced += len(out) / 8
        down_held = max(down_held, fed - produced)
    down = ULAW_TO_INT[np.frombuffer(b"".join(down_chunks), np.uint8)].astype(float)
    snr_down, delay_down = q.band_snr(down, ref_down, 8000)

    # Aliasing: the down path's resampler alone (before mu-law, whose own noise
    # would mask it) on the 4.6-12 kHz part of the speech, scaled to use 16 bits.
    def down_only(sig: np.ndarray) -> np.ndarray:
        mm = make()
        s16 = np.clip(np.rint(sig), -32768, 32767).astype("<i2").tobytes()
        raw = b"".join(mm.down_pcm(s16[i : i + 960]) for i in range(0, len(s16), 960))
        return np.frombuffer(raw, "<i2").astype(float)

    hf = q.highpass_fft(x24, 24000, 4600.0, 12000.0)
    fold = q.folded_db(down_only, x24 * (16000.0 / np.abs(hf).max()))

    mf = make()
    frames_up = [ulaw[i : i + 160] for i in range(0, len(ulaw) - 160, 160)]
    frames_down = [pcm[i : i + 960] for i in range(0, len(pcm) - 960, 960)]
    us_up = _time_per_frame(mf.up_frame, frames_up)
    us_down = _time_per_frame(mf.down_frame, frames_down)
    return {
        "snr_up": snr_up,
        "images": q.energy_ratio_db(up, 24000, 4600.0, 12000.0),
        "snr_down": snr_down,
        "fold": fold,
        "delay_up": delay_up / 24 + up_held,
        "delay_down": delay_down / 8 + down_held,
        "us_up": us_up,
        "us_down": us_down,
    }


def main() -> int:
    x24 = agent_pcm24()
    ref8 = q.soxr_resample(x24, 24000, 8000, "VHQ")
    ideal_ulaw, _ = q.band_snr(q.ulaw_roundtrip(ref8), ref8, 8000)
    methods: list[Callable[[], Any]] = [Ours, Ratecv, lambda: Soxr("HQ"), lambda: Soxr("VHQ")]
    rows = []
    for make in methods:
        r = measure(make)
        rows.append((make().name, r))
    print(
        f"Audio path on speech, 100-3400 Hz, against soxr VHQ one-shot; ideal resampling + mu-law = {ideal_ulaw:.1f} dB"
    )
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, soxr {soxr.__version__}\n")
    head = (
        "| method | 8k→24k SNR | images >4.6k | 24k→8k μ-law SNR | folded 4.6–12k | delay in | delay out "
        "| µs/frame in | µs/frame out |"
    )
    print(head)
    print("|" + "---|" * 9)
    for name, r in rows:
        print(
            f"| {name} | {r['snr_up']:.1f} dB | {r['images']:.1f} dB | {r['snr_down']:.2f} dB | {r['fold']:.1f} dB "
            f"| {r['delay_up']:.1f} ms | {r['delay_down']:.1f} ms | {r['us_up']:.1f} | {r['us_down']:.1f} |"
        )
    print(
        "\ndelay = group delay + most held back when streaming 20 ms frames; "
        "µs/frame: one 20 ms frame, μ-law codec included, median of 5 runs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
