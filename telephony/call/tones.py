"""Keypad tones the agent plays into the call (``send_dtmf``), as non-agent audio.

Each request's keys are sent after whatever is already queued to Twilio (if an
agent item is still arriving, after its end), one chunk (tone + gap) per key,
each with its own mark; the request is reported played (``TonesPlayed``) when
its last mark echoes. They are not the agent's words: nothing is truncated, a
caller (or phone menu) speaking over them does not cut them; if a barge-in
clears the agent's audio while keys are queued, the keys not yet confirmed are
sent again after the ``clear``.
"""

from __future__ import annotations

from ..audio.dtmf import GAP_MS, PAUSE_MS, RATE, TONE_MS, check_digits, dtmf_ulaw
from .events import Event, TonesPlayed
from .playout import Playout

__all__ = ["Tones", "key_chunks"]


def key_chunks(digits: str) -> list[bytes]:
    """One mu-law chunk per key (its tone and the gap after it; ``w``: the pause)."""
    keys = check_digits(digits)
    audio = dtmf_ulaw(keys)
    out: list[bytes] = []
    pos = 0
    for key in keys:
        n = RATE * (PAUSE_MS if key == "w" else TONE_MS + GAP_MS) // 1000
        out.append(audio[pos : pos + n])
        pos += n
    return out


class Tones:
    """Requests waiting to be sent, and chunks sent (through ``playout``, after
    the agent's audio) and not yet confirmed; ``TonesPlayed`` goes to ``actions``."""

    __slots__ = ("_actions", "_playout", "marks", "sent", "waiting")

    def __init__(self, actions: list[Event], playout: Playout) -> None:
        self._actions = actions
        self._playout = playout
        #: (token, chunks) not sent yet (an agent item was still arriving)
        self.waiting: list[tuple[str, list[bytes]]] = []
        #: chunks sent and not confirmed: (token, chunk, mark name), in order
        self.sent: list[tuple[str, bytes, str]] = []
        self.marks: set[str] = set()

    @property
    def pending(self) -> bool:
        return bool(self.waiting or self.sent)

    def request(self, token: str, digits: str) -> None:
        self.waiting.append((token, key_chunks(digits)))

    def flush(self, now: float) -> None:
        """Send every waiting chunk."""
        send = self._playout.send_other
        for token, chunks in self.waiting:
            for chunk in chunks:
                self._sent(token, chunk, send(chunk, now))
        self.waiting.clear()

    def _sent(self, token: str, chunk: bytes, mark: str) -> None:
        self.sent.append((token, chunk, mark))
        self.marks.add(mark)

    def echoed(self, mark: str) -> None:
        """A mark came back: report the requests whose keys have now all played."""
        if mark not in self.marks:
            return
        done: list[str] = []
        while self.sent:  # marks echo in order: everything up to this one has played
            token, _chunk, name = self.sent.pop(0)
            self.marks.discard(name)
            if not any(t == token for t, _c, _m in self.sent) and not any(t == token for t, _c in self.waiting):
                done.append(token)
            if name == mark:
                break
        for token in done:
            self._actions.append(TonesPlayed(token, True))

    def resend(self, now: float) -> None:
        """Twilio's buffer was cleared: send the unconfirmed chunks again."""
        again, self.sent = self.sent, []
        self.marks.clear()
        send = self._playout.send_other
        for token, chunk, _mark in again:
            self._sent(token, chunk, send(chunk, now))

    def abandon(self) -> None:
        """The call ended (or cannot play them): report every request still pending as not played."""
        tokens = list(dict.fromkeys([t for t, _c, _m in self.sent] + [t for t, _c in self.waiting]))
        self.sent.clear()
        self.waiting.clear()
        self.marks.clear()
        for token in tokens:
            self._actions.append(TonesPlayed(token, False))
