"""Local call recordings (``TELEPHONY_RECORDING=local``): one stereo 8 kHz
16-bit WAV per call, left the caller as received, right the agent exactly as the
caller heard it.

The right channel follows Twilio's playout: what we send to Twilio (the agent's
words, keypad tones, any other audio through the call core's playout) waits in
a buffer, and each 20 ms caller frame (Twilio's real-time clock) moves the same
amount from it to the right channel, silence when nothing is playing. A
``clear`` (barge-in) drops what was sent and not yet played, as Twilio does, so
the recording is cut where the caller heard it cut.

The hot path only appends bytes to buffers; every ``FLUSH_S`` seconds of audio
the buffers are handed to one writer thread (shared by all calls, so each
file's writes stay in order) that decodes, interleaves, appends to the file and
rewrites the RIFF sizes: a crash keeps what was flushed.

``record_locally`` starts a call's local recording (a call back from a transfer
goes on in the same file); ``record_with_twilio`` asks Twilio to record the call
instead (``TELEPHONY_RECORDING=twilio``, dual channel, over REST).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..audio.g711 import ULAW_TO_INT
from ..call import Call
from ..config import Settings
from ..errors import TelephonyError
from ..logs import log_event
from ..records import CallRecorder
from ..wire import twilio as tw
from .twilio.dial import RETURN_PARAMETER
from .twilio.rest import TwilioRest

__all__ = ["LocalRecorder", "prune_recordings", "record_locally", "record_with_twilio"]

log = logging.getLogger("telephony.recording")
#: a call's recording started or failed: logged with the call's other lines
_call_log = logging.getLogger("telephony.call")

RATE = 8000
#: audio buffered before it is written (seconds)
FLUSH_S = 2.0
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telephony-recording")
_SILENCE = 0xFF
#: forget played bytes at the front of the playout buffer past this size
_COMPACT = 64000
_last_prune = 0.0


def _header(data_bytes: int) -> bytes:
    channels, bits = 2, 16
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, RATE, RATE * block, block, bits)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class LocalRecorder:
    """One call's stereo recording (see the module docstring)."""

    __slots__ = ("_flush_at", "_futures", "_left", "_pending", "_pos", "_right", "_written", "path")

    def __init__(self, path: Path, append: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        if append and path.exists():
            written = max(0, path.stat().st_size - len(_header(0)))
        else:
            with open(path, "wb") as f:
                f.write(_header(0))
        self._left = bytearray()
        self._right = bytearray()
        self._pending = bytearray()  # sent to Twilio, not yet played
        self._pos = 0  # played bytes at the front of _pending
        self._flush_at = int(RATE * FLUSH_S)
        self._written = written  # data bytes in the file (writer thread's view, submitted in order)
        self._futures: list[Future[None]] = []

    # --- hot path: appends only -----------------------------------------------------

    def caller(self, ulaw: bytes) -> None:
        """One caller frame: its audio (left) and as much of ours as played meanwhile (right)."""
        n = len(ulaw)
        self._left += ulaw
        pending, pos = self._pending, self._pos
        take = pending[pos : pos + n]
        got = len(take)
        self._right += take
        if got < n:
            self._right += bytes((_SILENCE,)) * (n - got)
        pos += got
        if pos >= _COMPACT:
            del pending[:pos]
            pos = 0
        self._pos = pos
        if len(self._left) >= self._flush_at:
            self._flush()

    def agent(self, ulaw: bytes) -> None:
        """Audio sent to Twilio (it plays after what is queued)."""
        self._pending += ulaw

    def cleared(self) -> None:
        """Twilio was told to ``clear``: what was not played never will be."""
        self._pending.clear()
        self._pos = 0

    # --- writing, off the event loop ----------------------------------------------------

    def _flush(self) -> None:
        if not self._left:
            return
        left, right = bytes(self._left), bytes(self._right)
        self._left.clear()
        self._right.clear()
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(_WRITER.submit(self._write, left, right))

    def _write(self, left: bytes, right: bytes) -> None:
        try:
            frames = np.empty((len(left), 2), dtype="<i2")
            frames[:, 0] = ULAW_TO_INT[np.frombuffer(left, dtype=np.uint8)]
            frames[:, 1] = ULAW_TO_INT[np.frombuffer(right, dtype=np.uint8)]
            data = frames.tobytes()
            with open(self.path, "r+b") as f:
                f.seek(0, os.SEEK_END)
                f.write(data)
                self._written += len(data)
                f.seek(0)
                f.write(_header(self._written))
        except OSError as exc:
            log_event(log, "recording.write_failed", logging.WARNING, path=str(self.path), error=str(exc))

    async def close(self) -> None:
        """Write what is buffered and wait for the writer (the call ended)."""
        self._flush()
        futures, self._futures = self._futures, []
        for f in futures:
            await asyncio.wrap_future(f)


def prune_recordings(directory: Path, days: float, every_s: float = 3600.0) -> None:
    """Delete recordings older than ``days`` (at most once per ``every_s``, in the writer thread)."""
    global _last_prune
    now = time.time()
    if days <= 0 or now - _last_prune < every_s:
        return
    _last_prune = now

    def prune() -> None:
        cutoff = now - days * 86400
        removed = 0
        for path in directory.glob("*.wav"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        if removed:
            log_event(log, "recording.pruned", directory=str(directory), removed=removed, days=days)

    _WRITER.submit(prune)


def record_locally(
    start: tw.Start, settings: Settings, call: Call, recorder: CallRecorder | None
) -> LocalRecorder | None:
    """Start the call's local recording: the agent's side tapped from the core's
    playout; None if the file cannot be opened (logged; the call goes on)."""
    directory = Path(settings.recordings_dir)
    call_sid = start.call_sid
    name = call_sid if call_sid.isalnum() else start.stream_sid
    try:  # a call back from a transfer goes on in the same file
        rec = LocalRecorder(directory / f"{name}.wav", append=RETURN_PARAMETER in start.custom_parameters)
    except OSError as exc:
        log_event(_call_log, "recording.failed", logging.WARNING, call_sid=call_sid, error=str(exc))
        return None
    call.tap_playout(rec.agent, rec.cleared)
    if recorder is not None:
        recorder.record.recording = str(rec.path)
    prune_recordings(directory, settings.recordings_retention_days)
    log_event(_call_log, "recording.started", call_sid=call_sid, path=str(rec.path))
    return rec


async def record_with_twilio(
    rest: TwilioRest | None, call_sid: str, origin: str, recorder: CallRecorder | None
) -> None:
    """TELEPHONY_RECORDING=twilio: Twilio records the call (dual channel)."""
    if rest is None:
        log_event(_call_log, "recording.failed", logging.WARNING, call_sid=call_sid, error="no REST credentials")
        return
    try:
        sid = await rest.start_recording(call_sid, origin + "/recording-status")
    except TelephonyError as exc:
        log_event(_call_log, "recording.failed", logging.WARNING, call_sid=call_sid, error=str(exc))
        return
    log_event(_call_log, "recording.started", call_sid=call_sid, recording_sid=sid)
    if recorder is not None and recorder.record.recording_sid is None:
        recorder.record.recording_sid = sid
