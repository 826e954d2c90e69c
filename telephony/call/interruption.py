"""Barge-in: what the caller's speech over the agent stops, and what it cuts.

Two ways in. With the barge-in policy off (``barge_in_min_ms`` 0) the server
cancels its own response on ``speech_started``; the bridge drops that
response's late audio and cuts what still plays. With the policy on
(``bargein.BargeInPolicy``: local VAD and the server both hear the caller) the
bridge cancels the response itself (``response.cancel``) and cuts what plays.

A cut sends ``clear`` to Twilio and truncates each item still playing to what
was heard (``conversation.item.truncate``, remembered for a restored session).
Keypad tones are not the agent's words: if only they are playing, nothing is
cut; if a cut clears them, the unconfirmed ones are sent again. With
``greeting_interruptible`` off (and the policy on), the greeting plays in full.
"""

from __future__ import annotations

from ..wire import realtime as rt
from . import events
from .bargein import BargeInPolicy
from .config import CallConfig
from .playout import Playout
from .responses import ResponseGate
from .session import SessionLifecycle
from .tones import Tones

__all__ = ["Interruption"]


class Interruption:
    """Appends ``response.cancel``/``conversation.item.truncate`` to ``realtime_out``
    and ``BargeIn`` notices to ``actions``."""

    __slots__ = (
        "_actions",
        "_gate",
        "_greeting_id",
        "_greeting_text",
        "_out",
        "_playout",
        "_session",
        "_tones",
        "policy",
    )

    def __init__(
        self,
        config: CallConfig,
        realtime_out: list[str | bytes],
        actions: list[events.Event],
        playout: Playout,
        gate: ResponseGate,
        tones: Tones,
        session: SessionLifecycle,
    ) -> None:
        self._out = realtime_out
        self._actions = actions
        self._playout = playout
        self._gate = gate
        self._tones = tones
        self._session = session
        self.policy = BargeInPolicy(config.barge_in_min_ms, config.barge_in_fallback_ms)
        #: the greeting's response (kept from barge-in when not greeting_interruptible)
        self._greeting_id: str | None = None
        self._greeting_text: str | None = None
        if config.greeting and not config.greeting_interruptible and config.barge_in_min_ms:
            self._greeting_text = config.wording.greeting.format(greeting=config.greeting)

    def response_created(self, response_id: str) -> None:
        """After ``ResponseGate.created``: is it the greeting (protected)?"""
        greeting = self._greeting_text
        if greeting is not None and self._greeting_id is None and self._gate.instructions == greeting:
            self._greeting_id = response_id  # protected unless greeting_interruptible

    def speech_started(self, now: float) -> None:
        """The server heard the caller begin."""
        if self.policy.enabled:
            # interrupt_response=false: the bridge decides (bargein.BargeInPolicy).
            if self.policy.speech_started():
                self.interrupt(now)
            return
        active = self._gate.active_id
        if active is not None:
            # interrupt_response=true: the server cancels it; late deltas must not play.
            self._playout.drop_response(active)
        if not self._playout.playing:
            return  # nothing of ours is playing: not a barge-in
        self._cut(now)

    def interrupt(self, now: float) -> None:
        """The barge-in policy says the caller is really speaking over the agent:
        cancel the response being produced (the server will not) and cut what plays."""
        greeting = self._greeting_id
        if greeting is not None and (self._gate.active_id == greeting or self._playout.plays(greeting)):
            return  # the greeting is protected (greeting_interruptible=False)
        active = self._gate.active_id
        if active is not None:
            self._out.append(rt.response_cancel())
            self._playout.drop_response(active)
        if self._playout.playing:
            self._cut(now)

    def _cut(self, now: float) -> None:
        """``clear`` Twilio and truncate every item still playing to what was heard."""
        tones = self._tones
        if tones.pending and not self._playout.agent_unheard(now):
            return  # only keypad tones are playing: they are not cut
        cut = self._playout.barge_in(now)
        if tones.sent:
            tones.resend(now)
        for t in cut:
            self._out.append(rt.truncate(t.item_id, t.audio_end_ms))
            self._session.cut(t.item_id, t.audio_end_ms / t.received_ms if t.received_ms else 0.0)
        self._actions.append(events.BargeIn(cut))
