"""Wire formats: Twilio Media Streams and Realtime GA events, parsed once at the
edge into small typed objects. Parsers never raise: malformed input becomes an
``Invalid`` value and unknown events an ``Unknown`` value."""

from . import realtime, twilio

__all__ = ["realtime", "twilio"]
