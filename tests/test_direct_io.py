"""The direct message path (io/direct_ws.py) and the bridge's guards around it."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest
from starlette.websockets import WebSocketState

from telephony.call import Phase
from telephony.config import Settings
from telephony.io.app import create_app
from telephony.io.bridge import MAX_TWILIO_BUFFER, CallSession
from telephony.io.direct_ws import EXTENSION
from tests.harness import IO_MODES, bridge

pytestmark = pytest.mark.anyio


async def test_fragmented_and_binary_messages_arrive_whole(io):
    """A message split over continuation frames (or sent as a binary frame) is
    handed to the call once, whole, on both I/O paths."""
    async with bridge(server_options=IO_MODES[io]) as b:
        call, session = await b.live_call()
        media = json.dumps(
            {
                "event": "media",
                "streamSid": call.stream_sid,
                "media": {"payload": base64.b64encode(b"\x7f" * 160).decode()},
            }
        )
        cut = len(media) // 3
        await call.ws.send([media[:cut], media[cut : 2 * cut], media[2 * cut :]])  # three frames
        await call.send_raw(media.encode())  # one binary frame
        audio = await session.wait_audio(2 * 960)
        assert len(audio) == 2 * 960
        assert b.observer.counters["twilio.invalid"] == 0
        await call.hang_up()


class _StuckChannel:
    """A direct channel whose peer stopped reading: everything stays buffered."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def attach(self, on_message) -> None:
        pass

    def detach(self) -> None:
        pass

    def send_text(self, text: str) -> bool:
        self.sent.append(text)
        return True

    def buffered(self) -> int:
        return sum(map(len, self.sent))


async def test_a_twilio_socket_that_stops_reading_ends_the_call_instead_of_buffering_forever():
    app = create_app(Settings(_env_file=None, openai_api_key="sk-x", records_path=""))
    channel = _StuckChannel()
    ws = SimpleNamespace(scope={"extensions": {EXTENSION: channel}}, application_state=WebSocketState.DISCONNECTED)
    state = app.state.telephony
    session = CallSession(ws, state.services, state.observer.call())  # type: ignore[arg-type]
    assert session.direct
    chunk = "x" * 65536
    for _ in range(MAX_TWILIO_BUFFER // len(chunk)):
        session.send_to_twilio([chunk])
        assert session.call.phase is Phase.WAITING  # under the limit: nothing happens
    session.send_to_twilio([chunk])
    assert session.call.phase is Phase.ENDED and session.call.outcome == "failed"
    await session.shutdown()
