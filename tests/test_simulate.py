"""telephony simulate, offline: the same path as a phone call, in CI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from telephony.audio import ModelToCaller
from telephony.audio.g711 import ULAW_TO_INT
from telephony.audio.wav import WavError, read_wav, resample
from telephony.config import Settings
from telephony.simulate import caller_ulaw, simulate
from telephony.testing.offline_agent import example_arguments
from telephony.tools import ToolRegistry, load_tools
from tests.audio_data import AGENT_WAV, CALLER_WAV, agent_pcm24, caller_pcm8

pytestmark = pytest.mark.anyio


def _stereo_16k(path):
    """The caller sample as a 16 kHz stereo 16-bit WAV (a format conversion case)."""
    mono = resample(caller_pcm8(), 8000, 16000)
    stereo = np.stack([mono, mono], axis=1).reshape(-1).astype("<i2").tobytes()
    import struct

    fmt = struct.pack("<HHIIHH", 1, 2, 16000, 16000 * 4, 4, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(stereo)) + stereo
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.async_timeout(60)
async def test_offline_simulation_end_to_end(tmp_path):
    wav = _stereo_16k(tmp_path / "caller.wav")
    settings = Settings(_env_file=None, records_path=str(tmp_path / "calls.db"))
    registry = ToolRegistry(load_tools("examples.tools"))
    lines: list[str] = []
    result = await simulate(
        wav,
        settings=settings,
        registry=registry,
        offline=True,
        out=tmp_path / "heard.wav",
        emit=lines.append,
        speed=4.0,
        tail_seconds=0.5,
    )
    text = "\n".join(lines)
    assert result.outcome == "completed", text
    assert result.tool_calls == 4 and "tool result lookup_order" in text and "ERROR" not in text
    assert (
        "agent",
        "Hello, this is the offline simulator. I cannot understand words, but I heard you.",
    ) in result.transcript
    # What the caller heard is exactly the agent's voice through the bridge's audio path.
    heard = read_wav(tmp_path / "heard.wav")
    assert heard.rate == 8000
    voice = read_wav(AGENT_WAV).samples
    m = ModelToCaller()
    expected = ULAW_TO_INT[np.frombuffer(m.convert(voice.tobytes()) + m.flush(), np.uint8)]
    assert np.array_equal(heard.samples, expected)
    # The simulated call was recorded like a real one.
    from telephony.records import SqliteCallStore

    record = SqliteCallStore(tmp_path / "calls.db").get_now(result.call_sid)
    assert record is not None and len(record.tool_calls) == 4 and record.outcome == "completed"


def test_cli_simulate_rejects_files_it_cannot_read(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio")
    out = subprocess.run(
        [sys.executable, "-m", "telephony", "simulate", "--audio", str(bad), "--offline"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "not a WAV file" in out.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "telephony", "simulate", "--audio", "nope.wav", "--offline"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "cannot read nope.wav" in missing.stderr


def _wav(path, tag, bits, rate, channels, body):
    import struct

    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path


@pytest.mark.parametrize(
    "tag,bits,make",
    [
        (1, 8, lambda x: (x // 256 + 128).astype(np.uint8).tobytes()),
        (1, 16, lambda x: x.astype("<i2").tobytes()),
        (1, 24, lambda x: b"".join(int(v * 256).to_bytes(3, "little", signed=True) for v in x)),
        (1, 32, lambda x: (x.astype("<i4") * 65536).tobytes()),
        (3, 32, lambda x: (x / 32768.0).astype("<f4").tobytes()),
        (3, 64, lambda x: (x / 32768.0).astype("<f8").tobytes()),
    ],
)
def test_wav_reader_accepts_common_encodings(tmp_path, tag, bits, make):
    x = (np.sin(np.arange(800) / 10) * 12000).astype(np.int64)
    wav = read_wav(_wav(tmp_path / "a.wav", tag, bits, 8000, 1, make(x)))
    assert wav.rate == 8000 and wav.samples.size == 800
    tolerance = 300 if bits == 8 else 2
    assert np.max(np.abs(wav.samples.astype(int) - x)) <= tolerance


def test_wav_reader_mixes_channels_and_reads_g711(tmp_path):
    left = np.full(100, 1000, "<i2")
    right = np.full(100, 3000, "<i2")
    stereo = np.stack([left, right], 1).reshape(-1).tobytes()
    assert np.all(read_wav(_wav(tmp_path / "s.wav", 1, 16, 8000, 2, stereo)).samples == 2000)
    ulaw = read_wav(CALLER_WAV)
    assert ulaw.format == "ulaw" and ulaw.rate == 8000
    raw = CALLER_WAV.read_bytes()
    assert caller_ulaw(CALLER_WAV) == raw[raw.index(b"data") + 8 :][: len(ulaw.samples)]
    alaw = read_wav(_wav(tmp_path / "a.wav", 6, 8, 8000, 1, bytes([0xD5, 0x55, 0x2A])))
    assert alaw.format == "alaw" and list(alaw.samples[:2]) == [8, -8]


@pytest.mark.parametrize(
    "header,message",
    [
        (b"RIFX....WAVE", "not a WAV file"),
        (b"", "not a WAV file"),
    ],
)
def test_wav_reader_errors_are_clear(tmp_path, header, message):
    p = tmp_path / "x.wav"
    p.write_bytes(header)
    with pytest.raises(WavError, match=message):
        read_wav(p)
    with pytest.raises(WavError, match="unsupported WAV encoding"):
        read_wav(_wav(tmp_path / "y.wav", 0x11, 4, 8000, 1, b"\x00" * 10))  # IMA ADPCM


def test_resample_24k_to_8k_uses_the_call_filter():
    from telephony.audio import Downsampler

    x = agent_pcm24()[:4800]
    d = Downsampler()
    expected = np.concatenate([d.process(x).copy(), d.flush()])
    assert np.array_equal(resample(x, 24000, 8000), expected)


def test_resample_other_rates_keeps_length_and_tone():
    t = np.arange(44100) / 44100
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    y = resample(tone, 44100, 8000)
    assert y.size == 8000
    spectrum = np.abs(np.fft.rfft(y.astype(float)))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1  # 1 Hz bins over 1 s


def test_example_arguments_follow_the_schema():
    schema = {
        "properties": {
            "a": {"type": "string"},
            "b": {"enum": ["x", "y"]},
            "c": {"type": "integer"},
            "d": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
            "e": {"type": "number"},
        },
        "required": ["a", "b", "c", "d"],
    }
    assert example_arguments(schema) == {"a": "A100", "b": "x", "c": 10, "d": True}


@pytest.mark.parametrize(("min_ms", "false_barge_ins"), [(400, 0), (0, 1)])
async def test_simulate_on_a_backchannel_line_counts_false_barge_ins(tmp_path, min_ms, false_barge_ins):
    settings = Settings(_env_file=None, records_path=":memory:", barge_in_min_ms=min_ms)
    printed: list[str] = []
    result = await simulate(
        CALLER_WAV,
        settings=settings,
        registry=ToolRegistry([]),
        offline=True,
        out=tmp_path / "heard.wav",
        emit=printed.append,
        speed=2.0,
        tail_seconds=0.5,
        line="backchannel",
    )
    assert result.outcome == "completed", "\n".join(printed)
    # The 250 ms "mhm" while the agent answers: ignored with the policy, a barge-in without it.
    assert result.false_barge_ins == false_barge_ins, "\n".join(printed)
    assert result.erle_db is None and 0 < result.longest_silence <= 2.0


def test_the_noisy_line_loses_frames_and_delivers_them_in_bursts():
    from telephony.simulate import _LineFeed
    from telephony.testing import lines

    class _Call:
        def heard(self) -> bytes:
            return b""

    feed = _LineFeed("noisy", bytes(range(256)) * 100, _Call())
    arrivals: list[float] = []
    lost = 0
    for _ in range(200):  # 20 s of 100 ms blocks
        for arrival, frame in feed.schedule(feed.next_block()):
            arrivals.append(arrival)
            lost += frame == bytes([0xFF]) * 160
    due = [20.0 * k for k in range(len(arrivals))]
    assert arrivals == sorted(arrivals)  # in order
    assert all(d <= a <= d + lines.NOISY.jitter_ms for a, d in zip(arrivals, due, strict=True))
    held = sum(a > d for a, d in zip(arrivals, due, strict=True))
    assert held > len(arrivals) // 2  # jitter: most frames arrive late, in bursts
    assert len(set(arrivals)) < len(arrivals) * 0.8  # several frames share an arrival (a burst)
    assert 0.005 <= lost / len(arrivals) <= 0.04 and lost == feed.frames_lost  # ~2 % lost
