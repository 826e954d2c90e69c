"""Minimal WAV (RIFF) reading and writing for the simulator and tests.

Reads PCM 8/16/24/32-bit, IEEE float 32/64, G.711 mu-law and A-law, mono or
multi-channel (WAVE_FORMAT_EXTENSIBLE included), and returns mono int16 at the
file's rate. Anything else raises ``WavError`` with the reason.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WavError
from .g711 import ULAW_TO_INT

__all__ = ["WavAudio", "WavError", "read_wav", "resample", "to_mono_int16", "write_ulaw_wav", "write_wav"]

_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE


@dataclass(frozen=True, slots=True)
class WavAudio:
    samples: np.ndarray  # int16, mono
    rate: int
    channels: int  # of the file
    format: str  # "pcm16", "ulaw", ...


def _alaw_table() -> np.ndarray:
    a = np.arange(256) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0)))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        yield cid, data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)


def to_mono_int16(frames: np.ndarray, channels: int) -> np.ndarray:
    if channels > 1:
        frames = frames.reshape(-1, channels).mean(axis=1)
    out: np.ndarray = np.clip(np.rint(frames), -32768, 32767).astype(np.int16)
    return out


#: Larger files are refused before they are read (about 100 minutes of 16-bit 16 kHz mono).
MAX_WAV_BYTES = 200 * 1024 * 1024


def read_wav(path: str | Path, max_bytes: int = MAX_WAV_BYTES) -> WavAudio:
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise WavError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise WavError(f"{path}: larger than {max_bytes // (1024 * 1024)} MiB; use a shorter recording")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    fmt = body = None
    for cid, chunk in _chunks(data):
        if cid == b"fmt ":
            fmt = chunk
        elif cid == b"data":
            body = chunk
    if fmt is None or body is None or len(fmt) < 16:
        raise WavError(f"{path}: missing fmt or data chunk")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if channels < 1 or rate < 1000:
        raise WavError(f"{path}: implausible header ({channels} channels, {rate} Hz)")
    if tag == _PCM and bits == 16:
        frames, name = np.frombuffer(body[: len(body) // 2 * 2], "<i2").astype(np.float64), "pcm16"
    elif tag == _PCM and bits == 8:
        frames, name = (np.frombuffer(body, np.uint8).astype(np.float64) - 128) * 256, "pcm8"
    elif tag == _PCM and bits == 24:
        raw = np.frombuffer(body[: len(body) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
        v = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        v = np.where(v & 0x800000, v - 0x1000000, v)
        frames, name = v / 256.0, "pcm24"
    elif tag == _PCM and bits == 32:
        frames, name = np.frombuffer(body[: len(body) // 4 * 4], "<i4") / 65536.0, "pcm32"
    elif tag == _FLOAT and bits in (32, 64):
        dt = "<f4" if bits == 32 else "<f8"
        frames, name = np.frombuffer(body[: len(body) // (bits // 8) * (bits // 8)], dt) * 32768.0, f"float{bits}"
    elif tag == _ULAW and bits == 8:
        frames, name = ULAW_TO_INT[np.frombuffer(body, np.uint8)].astype(np.float64), "ulaw"
    elif tag == _ALAW and bits == 8:
        frames, name = _alaw_table()[np.frombuffer(body, np.uint8)].astype(np.float64), "alaw"
    else:
        raise WavError(f"{path}: unsupported WAV encoding (format tag {tag}, {bits} bits)")
    usable = frames.size // channels * channels
    return WavAudio(to_mono_int16(frames[:usable], channels), rate, channels, name)


def _write(path: str | Path, body: bytes, tag: int, rate: int, bits: int) -> None:
    block = bits // 8
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * block, block, bits)
    if tag != _PCM:
        fmt += struct.pack("<H", 0)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    if len(body) & 1:
        riff += b"\0"
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write mono int16 PCM."""
    _write(path, np.asarray(samples, "<i2").tobytes(), _PCM, rate, 16)


def write_ulaw_wav(path: str | Path, ulaw: bytes, rate: int = 8000) -> None:
    """Write raw mu-law bytes as a mono G.711 WAV."""
    _write(path, ulaw, _ULAW, rate, 8)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """One-shot band-limited resampling of a whole recording (offline use only:
    the call path uses the streaming 3:1 filters). 24 kHz -> 8 kHz uses the
    call path's own filter; other ratios use an FFT (brick-wall) resampler."""
    if rate_in == rate_out:
        return np.asarray(samples, np.int16)
    if rate_in == 24000 and rate_out == 8000:
        from .resample import Downsampler

        d = Downsampler()
        return np.concatenate([d.process(np.asarray(samples, np.int16)).copy(), d.flush()])
    x = np.asarray(samples, np.float64)
    if x.size == 0:
        return np.zeros(0, np.int16)  # an empty recording stays empty (the FFT needs one sample)
    n_out = max(1, round(x.size * rate_out / rate_in))
    spec = np.fft.rfft(x)
    keep = min(spec.size, n_out // 2 + 1)
    out_spec = np.zeros(n_out // 2 + 1, dtype=complex)
    out_spec[:keep] = spec[:keep]
    y = np.fft.irfft(out_spec, n_out) * (n_out / x.size)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)
