"""Test kit: ``bridge()`` (the real app against the fakes), a fake Realtime server and a fake Twilio media client speaking the
real wire formats, for testing the bridge and your own tools without a phone,
and ``lines``: what real phone lines do to audio (echo, noise, backchannels,
jitter, lost frames)."""

from . import lines
from .bridge import Bridge, bridge
from .fake_realtime import FakeRealtimeServer, FakeSession
from .fake_twilio import FakeTwilioCall
from .fake_twilio_rest import FakeTwilioRest
from .lines import Line

__all__ = [
    "Bridge",
    "FakeRealtimeServer",
    "FakeSession",
    "FakeTwilioCall",
    "FakeTwilioRest",
    "Line",
    "bridge",
    "lines",
]
