"""The Realtime session's lifecycle, as seen by one call.

Opening and re-opening (attempts, backoff, give-up), rollover before the API's
session time limit, the conversation kept to restore into a new session, the
messages and caller audio held while no session is live.
"""

from __future__ import annotations

import binascii

from ..wire import realtime as rt
from .config import CallConfig

__all__ = ["MAX_BACKOFF_S", "SessionLifecycle"]

#: the wait between tries doubles up to this
MAX_BACKOFF_S = 4.0


class SessionLifecycle:
    __slots__ = (
        "_config",
        "_cut",
        "_deferred",
        "_held",
        "_held_bytes",
        "_history",
        "_tool_entries",
        "attempts",
        "configured",
        "connecting",
        "generation",
        "reconnect_at",
        "reconnects",
        "resume",
        "rollover_at",
        "started_at",
        "update",
    )

    def __init__(self, config: CallConfig) -> None:
        self._config = config
        self.generation = 0  # sessions opened so far
        self.reconnects = 0
        self.connecting = False  # an OpenRealtime is being carried out
        self.attempts = 0  # consecutive failed opens
        self.reconnect_at: float | None = None
        self.resume = False  # ask for a response once the new session is restored
        self.started_at: float | None = None
        self.rollover_at: float | None = None  # look for a quiet moment to roll over from then on
        self.configured = False  # the session confirmed our session.update (greets once)
        #: (item id, role, text), in order; role "tool": [call id, "tool", name, arguments, output]
        self._history: list[list[str]] = []
        self._tool_entries: dict[str, list[str]] = {}  # call id -> its history entry (output filled in)
        self._cut: dict[str, float] = {}  # assistant item -> fraction heard (truncated items)
        self._deferred: list[str | bytes] = []  # for the session being opened (sent after its set-up)
        self._held: list[bytes] = []
        self._held_bytes = 0
        #: the session.update a new session gets (set by the first open, then by
        #: each agent switch), so a reconnect keeps the agent now speaking
        self.update: str | None = None

    # --- caller audio while no session is live ------------------------------------------

    def hold(self, pcm: bytes) -> None:
        """Keep caller audio (24 kHz PCM) for the session being opened: the newest
        ``max_buffer_ms`` of it."""
        self._held.append(pcm)
        self._held_bytes += len(pcm)
        limit = self._config.max_buffer_ms * 48
        while self._held_bytes > limit and self._held:
            self._held_bytes -= len(self._held.pop(0))

    def take_held_audio(self) -> str | None:
        """The held audio as one ``input_audio_buffer.append``, or None."""
        if not self._held:
            return None
        audio = b"".join(self._held)
        self.drop_held_audio()
        return rt.audio_append(binascii.b2a_base64(audio, newline=False).decode("ascii"))

    def drop_held_audio(self) -> None:
        self._held.clear()
        self._held_bytes = 0

    # --- messages for the next session --------------------------------------------------------

    def defer(self, message: str | bytes) -> None:
        self._deferred.append(message)

    def take_deferred(self) -> list[str | bytes]:
        out, self._deferred = self._deferred, []
        return out

    @property
    def deferred(self) -> tuple[str | bytes, ...]:
        """Messages waiting for the session being opened (read only)."""
        return tuple(self._deferred)

    # --- opening, losing, rolling over ----------------------------------------------------------

    def configure(self, session_update: str) -> str:
        """The ``session.update`` for a session just opened: the current one if
        the call switched agents, else ``session_update`` (which becomes current)."""
        if self.update is None:
            self.update = session_update
        return self.update

    def opened(self, now: float, reconnected: bool) -> None:
        self.connecting = False
        self.attempts = 0
        self.generation += 1
        self.started_at = now
        self.rollover_at = now + self._config.rollover_after_s
        self.configured = reconnected  # the greeting is for the first session only
        if reconnected:
            self.reconnects += 1

    def lost(self, was_live: bool) -> None:
        """The session closed or failed to open (a failed open counts as an attempt)."""
        self.connecting = False
        if not was_live:
            self.attempts += 1

    def should_give_up(self, retryable: bool) -> bool:
        return not retryable or self.attempts >= self._config.reconnect_attempts

    def schedule_retry(self, now: float) -> float:
        """Set when to try again; returns the delay (0 for the first try)."""
        attempts = self.attempts
        delay = 0.0 if attempts == 0 else min(MAX_BACKOFF_S, self._config.reconnect_backoff_s * 2 ** (attempts - 1))
        self.reconnect_at = now + delay
        return delay

    def retry_due(self, now: float) -> bool:
        """Whether to open a session now (and, if so, counts it as under way)."""
        if self.reconnect_at is None or now < self.reconnect_at or self.connecting:
            return False
        self.reconnect_at = None
        self.connecting = True
        return True

    def rollover_due(self, now: float) -> bool:
        return self.rollover_at is not None and now >= self.rollover_at

    def postpone_rollover(self, now: float) -> None:
        self.rollover_at = now + 1.0  # look again soon (events also trigger a look)

    def begin_rollover(self) -> None:
        self.rollover_at = None
        self.reconnect_at = None
        self.connecting = True

    # --- the conversation, to restore into a new session ---------------------------------------

    def remember(self, item_id: str, role: str, text: str) -> None:
        self._history.append([item_id, role, text])

    def remember_call(self, call_id: str, name: str, arguments: str) -> None:
        """A tool call the model made; restored with its output once it has one."""
        entry = [call_id, "tool", name, arguments, ""]
        self._history.append(entry)
        self._tool_entries[call_id] = entry

    def remember_output(self, call_id: str, output: str) -> None:
        entry = self._tool_entries.pop(call_id, None)
        if entry is not None:
            entry[4] = output

    def cut(self, item_id: str, fraction_heard: float) -> None:
        self._cut[item_id] = fraction_heard

    def snapshot(self) -> tuple[list[list[str]], dict[str, float]]:
        """The conversation as kept (a copy), to carry into another stream of the same call."""
        return [list(e) for e in self._history], dict(self._cut)

    def adopt(self, snapshot: tuple[list[list[str]], dict[str, float]]) -> None:
        """Take a conversation kept by ``snapshot`` (before the first session opens)."""
        history, cut = snapshot
        self._history = [list(e) for e in history]
        self._cut = dict(cut)

    def restore(self) -> list[str]:
        """The conversation so far, most recent kept within ``restore_chars``:
        caller and agent words as text (agent words cut to the fraction the
        caller heard), tool calls with their outputs as function call items.
        A call still without output is left out (its result arrives as a
        late-result message)."""
        budget = self._config.restore_chars
        keep: list[list[str]] = []
        for entry in reversed(self._history):
            item_id, role, text = entry[0], entry[1], entry[2]
            if role == "tool":
                if not entry[4]:
                    continue
                size = len(entry[2]) + len(entry[3]) + len(entry[4])
            else:
                if role == "agent" and item_id in self._cut:
                    words = text.split()
                    text = " ".join(words[: int(len(words) * self._cut[item_id])])  # what was heard
                    if not text:
                        continue
                size = len(text)
            if size > budget:
                break
            budget -= size
            keep.append(entry if role == "tool" else [item_id, role, text])
        out: list[str] = []
        for entry in reversed(keep):
            role = entry[1]
            if role == "tool":
                out.append(rt.function_call(entry[0], entry[2], entry[3]))
                out.append(rt.function_call_output(entry[0], entry[4]))
            elif role == "agent":
                out.append(rt.assistant_text(entry[2]))
            else:
                out.append(rt.user_text(entry[2]))
        return out
