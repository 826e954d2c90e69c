"""Test kit: a fake Realtime server and a fake Twilio media client speaking the
real wire formats, for testing the bridge and your own tools without a phone,
and ``lines``: what real phone lines do to audio (echo, noise, backchannels,
jitter, lost frames)."""

from . import lines
from .fake_realtime import FakeRealtimeServer, FakeSession
from .fake_twilio import FakeTwilioCall
from .lines import Line

__all__ = ["FakeRealtimeServer", "FakeSession", "FakeTwilioCall", "Line", "lines"]
