"""Transcripts, stamped with when their speech began, and the first-audio latency.

Transcripts arrive late and out of order (the caller's after the agent has
begun answering); each is stamped with when its item's speech began (the
caller's ``speech_started``, the agent's first audio sent), so records and
replays keep the spoken order. ``FirstAudio`` is the time from the caller's
``speech_stopped`` to the first audio of the answer going out (nothing of ours
is queued at Twilio after a turn, so sent = starts playing).
"""

from __future__ import annotations

from . import events
from .session import SessionLifecycle

__all__ = ["Transcripts"]

#: items whose transcript never came are forgotten beyond this many (oldest first)
_MAX_WAITING = 64


class Transcripts:
    __slots__ = ("_actions", "_session", "_spoken_at", "speech_stopped_at")

    def __init__(self, actions: list[events.Event], session: SessionLifecycle) -> None:
        self._actions = actions
        self._session = session
        self._spoken_at: dict[str, float] = {}  # item id -> when that speech began (for ordering)
        #: when the caller's last turn ended, until the answer's first audio
        self.speech_stopped_at: float | None = None

    def spoken(self, item_id: str, now: float) -> None:
        """Speech of this item began (the caller's turn, or the agent's first audio)."""
        if len(self._spoken_at) > _MAX_WAITING:  # transcripts that never came: forget the oldest
            self._spoken_at.pop(next(iter(self._spoken_at)))
        self._spoken_at.setdefault(item_id, now)

    def agent_started(self, item_id: str, now: float) -> None:
        """The first audio of an assistant item went to the caller."""
        self.spoken(item_id, now)
        if self.speech_stopped_at is not None:
            self._actions.append(events.FirstAudio(round(now - self.speech_stopped_at, 4)))
            self.speech_stopped_at = None

    def transcript(self, role: str, item_id: str, text: str, now: float) -> None:
        at = self._spoken_at.pop(item_id, now)
        if text:
            self._session.remember(item_id, role, text)
        self._actions.append(events.Transcript(role, text, item_id, at))
