"""Test kit: a fake Realtime server and a fake Twilio media client speaking the
real wire formats, for testing the bridge and your own tools without a phone."""

from .fake_realtime import FakeRealtimeServer, FakeSession
from .fake_twilio import FakeTwilioCall

__all__ = ["FakeRealtimeServer", "FakeSession", "FakeTwilioCall"]
