"""No dead air while tools run: the hold sound.

Once a tool has run for ``hold_after_s`` with nothing of the agent's playing, the
hold sound (``audio.hold``) is sent to the caller, looped, about 400 ms ahead of
playback (a 200 ms chunk whenever less than 200 ms is queued; the deadline comes
from ``next_deadline``/``tick``). Its marks are named ``h<n>``: they are not part
of any assistant segment (``PlaybackClock`` ignores them), so the hold sound never
counts as agent speech for truncation, barge-in or records. It stops with a
``clear`` just before the agent's next audio (nothing of the answer is cut: the
clear goes out before the answer's first media), when the caller starts
speaking, or when the turn ends without audio.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

from ..wire import twilio as tw
from .aec import EchoPath
from .config import CallConfig
from .playout import Playout

__all__ = ["Hold"]

_CHUNK = 1600  # 200 ms of mu-law
_AHEAD_S = 0.4
_CHUNK_S = _CHUNK / 8000


class Hold:
    """Appends the hold sound's Twilio messages to ``twilio_out``."""

    __slots__ = (
        "_loop",
        "_no_hold",
        "_out",
        "_pos",
        "_seq",
        "_stream",
        "active",
        "after_s",
        "deadline",
        "echo",
        "sent_until",
        "since",
        "tap",
        "tap_clear",
    )

    def __init__(self, twilio_out: list[str], config: CallConfig) -> None:
        self._out = twilio_out
        sound, after_s = config.hold_sound, config.hold_after_s
        #: tools that play audio themselves (keypad tones): no hold sound while they run
        self._no_hold = config.no_hold_tools
        if sound and len(sound) < _CHUNK:
            sound = sound * -(-_CHUNK // len(sound))
        self._loop = sound or b""
        self.after_s = after_s
        self._stream: tw.OutboundStream | None = None
        self._pos = 0
        self._seq = 0
        self.active = False
        #: when the running tools began (None: no tool running)
        self.since: float | None = None
        self.deadline: float | None = None
        self.sent_until = 0.0
        #: the echo canceller's reference (``aec.EchoPath``), when echo cancellation is on
        self.echo: EchoPath | None = None
        #: a local recording: told every chunk sent and every ``clear`` (the caller hears them)
        self.tap: Callable[[bytes], None] | None = None
        self.tap_clear: Callable[[], None] | None = None

    def begin(self, stream_sid: str) -> None:
        self._stream = tw.OutboundStream(stream_sid)

    def tool_started(self, name: str, now: float) -> None:
        if name in self._no_hold or not self._loop or self.since is not None:
            return
        self.since = now
        if not self.active:
            self.deadline = now + self.after_s

    def tools_done(self) -> None:
        """No tool runs any more: the sound plays on until the agent's next audio."""
        self.since = None
        if not self.active:
            self.deadline = None

    def tick(self, now: float, playout: Playout, tones_pending: bool) -> None:
        if self.active:
            self._fill(now)
            return
        if self.since is None or self._stream is None:
            self.deadline = None
            return
        drained_at = playout.drained_at(now)  # by the estimate: marks may stop coming back
        # Keypad tones not yet confirmed are still playing (a send_dtmf tool returns
        # once they are): no hold sound over them or just after them.
        if playout.receiving or drained_at > now or tones_pending:
            # The agent is still speaking ("let me check"): look again once it has played.
            self.deadline = max(drained_at, now + 0.1)
            return
        self.active = True
        self.sent_until = now
        self._fill(now)

    def _fill(self, now: float) -> None:
        stream = self._stream
        assert stream is not None
        if self.sent_until < now:
            self.sent_until = now  # the queue at Twilio ran dry (a late tick)
        loop, out = self._loop, self._out
        while self.sent_until - now < _AHEAD_S:
            end = self._pos + _CHUNK
            chunk = loop[self._pos : end]
            if len(chunk) < _CHUNK:  # wrap around the loop
                chunk += loop[: _CHUNK - len(chunk)]
            self._pos = (self._pos + _CHUNK) % len(loop)
            self._seq += 1
            out.append(stream.media(binascii.b2a_base64(chunk, newline=False).decode("ascii")))
            out.append(stream.mark(f"h{self._seq}"))
            if self.echo is not None:
                self.echo.sent(chunk, now)
            if self.tap is not None:
                self.tap(chunk)
            self.sent_until += _CHUNK_S
        self.deadline = self.sent_until - _AHEAD_S + _CHUNK_S

    def stop(self, now: float) -> None:
        """Stop the sound at once (``clear``); if a tool still runs, it may come back
        after ``after_s`` of silence."""
        if self.active:
            assert self._stream is not None
            self._out.append(self._stream.clear)
            if self.echo is not None:
                self.echo.cleared()
            if self.tap_clear is not None:
                self.tap_clear()
            self.active = False
        self.deadline = None if self.since is None else now + self.after_s
