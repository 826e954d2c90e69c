"""The call core's configuration and its phases."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..wording import Wording

__all__ = ["CallConfig", "Phase"]


class Phase(Enum):
    WAITING = "waiting"  # socket open, no ``start`` yet
    STARTING = "starting"  # ``start`` seen, Realtime session opening
    LIVE = "live"
    RECONNECTING = "reconnecting"  # session lost or rolling over: caller audio is held
    ENDED = "ended"


@dataclass(frozen=True)
class CallConfig:
    greeting: str | None = None
    #: caller audio held while the Realtime session opens (ms of 24 kHz PCM)
    max_buffer_ms: int = 5000
    #: DTMF digits are sent to the model after this pause, or at once on '#'
    dtmf_pause_s: float = 1.5
    #: no Twilio media for this long ends the call (0 = never)
    quiet_timeout_s: float = 20.0
    #: hard limit on a call's length (0 = none)
    max_duration_s: float = 0.0
    #: wait this long past the estimated end of playback for the last mark echo
    playback_grace_s: float = 2.0
    #: invalid Twilio messages tolerated on one call before it is ended
    max_invalid_messages: int = 100
    #: tries to (re)open the Realtime session before the call is ended with an apology
    reconnect_attempts: int = 5
    #: wait before the 2nd try; doubles each try (the 1st try is immediate), capped at 4 s
    reconnect_backoff_s: float = 0.25
    #: open a fresh session between turns once this old (the API's cap is 60 minutes)
    rollover_after_s: float = 55 * 60
    #: conversation text restored into a new session (most recent first), in characters
    restore_chars: int = 16000
    #: answer the API's MCP approval requests yes (else no)
    mcp_approve: bool = False
    #: a failed or incomplete response is asked for again this many times in a row
    response_retries: int = 2
    #: wait before the 1st retry of a failed response; doubles each retry
    response_retry_backoff_s: float = 0.25
    #: silence after the caller's turn (or our request) before a response is asked for again (0 = off)
    dead_air_s: float = 4.0
    #: where to transfer the caller when the model keeps failing (None: end with the apology)
    fallback_transfer: str | None = None
    #: a stream that sends no ``start`` this long after connecting is ended (0 = never)
    start_timeout_s: float = 5.0
    #: caller audio faster than this multiple of real time, over ``audio_window_s``, is dropped
    max_audio_rate: float = 1.2
    audio_window_s: float = 2.0
    #: keypad digits accepted per call, and per second (a burst of one second's worth)
    max_digits: int = 200
    max_digits_per_s: float = 10.0
    #: answering-machine verdicts: what to do on ``fax`` and ``unknown`` ("greet" or "hangup")
    amd_fax: str = "hangup"
    amd_unknown: str = "greet"
    #: while the agent speaks, caller speech shorter than this does not interrupt it;
    #: 0: the server's speech_started interrupts at once (interrupt_response: true)
    barge_in_min_ms: int = 0
    #: with a minimum: the server's speech alone interrupts after this long, when the
    #: local detector has not confirmed it (None: never; see bargein.BargeInPolicy)
    barge_in_fallback_ms: int | None = None
    #: False: the greeting plays in full whatever the caller says (needs barge_in_min_ms > 0:
    #: with 0 the server cuts answers itself)
    greeting_interruptible: bool = True
    #: the hold sound (8 kHz mu-law, looped) once a tool has run this long with nothing playing
    hold_after_s: float = 1.0
    #: None: no hold sound (dead air while tools run)
    hold_sound: bytes | None = None
    #: cancel the echo of what the caller hears from their audio (audio.EchoCanceller)
    echo_cancellation: bool = True
    #: tools that play audio themselves (keypad tones to a phone menu): no hold sound while they run
    no_hold_tools: frozenset[str] = frozenset({"send_dtmf"})
    #: what the core tells the model (greeting prompt, keypad digits, failed transfers)
    wording: Wording = field(default_factory=Wording)
