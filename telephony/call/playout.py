"""The agent's audio on its way to the caller, and barge-in.

Each assistant item's audio is transcoded to 8 kHz mu-law and sent to Twilio
with a mark after every chunk; ``PlaybackClock`` turns the mark echoes into what
the caller has heard. On a barge-in, Twilio is told to ``clear`` and each item
still playing is cut to what was heard (clamped to the audio received), and
that item's and that response's late audio is dropped.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

from ..audio import DELAY_MS, ModelToCaller
from ..wire import realtime as rt
from ..wire import twilio as tw
from .aec import EchoPath
from .events import Truncation
from .playback import PlaybackClock

__all__ = ["Playout"]


class _Segment:
    """One assistant item's audio on the playback timeline."""

    __slots__ = ("done", "end", "item_id", "model_bytes", "response_id", "start")

    def __init__(self, item_id: str, response_id: str, start: int) -> None:
        self.item_id = item_id
        self.response_id = response_id
        self.start = start
        self.end = start
        self.model_bytes = 0
        self.done = False


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


class Playout:
    """Appends Twilio ``media``/``mark``/``clear`` messages to ``twilio_out``."""

    __slots__ = (
        "_clock",
        "_current",
        "_down",
        "_dropped_items",
        "_dropped_responses",
        "_out",
        "_segments",
        "_stream",
        "echo",
        "tap",
        "tap_clear",
    )

    def __init__(self, twilio_out: list[str]) -> None:
        self._out = twilio_out
        self._stream: tw.OutboundStream | None = None
        self._down = ModelToCaller()
        self._clock = PlaybackClock()
        self._segments: list[_Segment] = []
        self._current: _Segment | None = None
        self._dropped_items: set[str] = set()
        self._dropped_responses: set[str] = set()
        #: a local recording: told every mu-law chunk sent, and every ``clear``
        self.tap: Callable[[bytes], None] | None = None
        self.tap_clear: Callable[[], None] | None = None
        #: the echo canceller's reference (``aec.EchoPath``), when echo cancellation is on
        self.echo: EchoPath | None = None

    def begin(self, stream_sid: str) -> None:
        self._stream = tw.OutboundStream(stream_sid)

    @property
    def playing(self) -> bool:
        """Audio of ours may still be playing (or an item is still arriving)."""
        return self._current is not None or bool(self._clock.pending)

    def plays(self, response_id: str) -> bool:
        """Audio of this response may still be playing."""
        return bool(self._clock.pending) and any(s.response_id == response_id for s in self._segments)

    @property
    def receiving(self) -> bool:
        """An item's audio is still arriving from the model."""
        return self._current is not None

    @property
    def unconfirmed(self) -> bool:
        """Marks sent and not yet echoed: the caller may not have heard it all."""
        return bool(self._clock.pending)

    # --- the model's audio ------------------------------------------------------------

    def audio(self, ev: rt.AudioDelta, now: float) -> bool:
        """Send one delta's audio; True when it starts a new item."""
        if ev.item_id in self._dropped_items or ev.response_id in self._dropped_responses:
            return False
        if self._stream is None:
            return False
        seg = self._current
        started = False
        if seg is None or seg.item_id != ev.item_id:
            if seg is not None:
                self.finish_item(now)
            seg = self._current = _Segment(ev.item_id, ev.response_id, self._clock.sent)
            self._segments.append(seg)
            started = True
        seg.model_bytes += len(ev.audio)
        ulaw = self._down.convert(ev.audio)
        if ulaw:
            self._send(seg, ulaw, now)
        return started

    def audio_done(self, item_id: str, now: float) -> None:
        if self._current is not None and self._current.item_id == item_id:
            self.finish_item(now)

    def _send(self, seg: _Segment, ulaw: bytes, now: float) -> None:
        stream = self._stream
        assert stream is not None
        self._out.append(stream.media(_b64(ulaw)))
        self._out.append(stream.mark(self._clock.sent_chunk(len(ulaw), now)))
        if self.echo is not None:
            self.echo.sent(ulaw, now)
        seg.end = self._clock.sent
        if self.tap is not None:
            self.tap(ulaw)

    def finish_item(self, now: float) -> None:
        """End of an item's audio: send the filter tail, start the next item clean."""
        seg = self._current
        self._current = None
        if seg is None:
            return
        tail = self._down.flush()
        if tail:
            self._send(seg, tail, now)
        seg.done = True

    def send_other(self, ulaw: bytes, now: float) -> str:
        """Queue non-agent audio (keypad tones) after what was sent; returns its mark's name.
        It is no item: a barge-in never truncates it."""
        stream = self._stream
        assert stream is not None
        name = self._clock.sent_chunk(len(ulaw), now)
        self._out.append(stream.media(_b64(ulaw)))
        self._out.append(stream.mark(name))
        if self.echo is not None:  # the caller's line echoes tones too
            self.echo.sent(ulaw, now)
        if self.tap is not None:
            self.tap(ulaw)
        return name

    def agent_unheard(self, now: float) -> bool:
        """Some of the agent's audio is still arriving or not yet heard."""
        if self._current is not None:
            return True
        heard = self._clock.position(now)
        return any(s.end > heard for s in self._segments)

    def drop_response(self, response_id: str) -> None:
        """Late audio of this response must not play (the server cancelled it)."""
        self._dropped_responses.add(response_id)

    # --- what the caller heard ------------------------------------------------------------

    def mark_echoed(self, name: str, now: float) -> bool:
        """A mark came back; True if it advanced playback."""
        if not self._clock.mark_echoed(name, now):
            return False
        self._prune()
        return True

    def _prune(self) -> None:
        """Forget items the caller has heard in full (after a mark echo)."""
        if not self._clock.pending and self._current is None:
            self._segments.clear()
            self._clock.clear()  # everything played: restart positions at 0
        elif len(self._segments) > 1:
            confirmed = self._clock.confirmed
            self._segments = [s for s in self._segments if not (s.done and s.end <= confirmed)]

    def drained_at(self, now: float) -> float:
        """When what was sent will have finished playing (estimate)."""
        return self._clock.drained_at(now)

    def assume_played(self) -> None:
        """Mark echoes stopped coming back: take everything sent as played."""
        self._clock.clear()

    def barge_in(self, now: float) -> tuple[Truncation, ...]:
        """The caller spoke over us: ``clear`` Twilio; return the cut of every item
        still playing (its later audio will be dropped)."""
        assert self._stream is not None
        heard_pos = self._clock.position(now)
        self._out.append(self._stream.clear)
        if self.tap_clear is not None:
            self.tap_clear()
        if self.echo is not None:
            self.echo.cleared()
        cut: list[Truncation] = []
        for seg in self._segments:
            if seg.done and seg.end <= heard_pos:
                continue  # fully heard: nothing to forget
            heard = min(max(heard_pos - seg.start, 0), seg.end - seg.start)
            model_ms = seg.model_bytes // 48  # 24 kHz x 2 bytes per ms
            audio_end_ms = min(max(int(heard / 8 - DELAY_MS), 0), model_ms)
            self._dropped_items.add(seg.item_id)
            cut.append(Truncation(seg.item_id, audio_end_ms, model_ms))
        self._segments.clear()
        self._current = None
        self._clock.clear()
        self._down.reset()
        return tuple(cut)
