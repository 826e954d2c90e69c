"""A fake Twilio Media Streams client: what Twilio does on a bidirectional stream.

It connects to ``/media-stream`` (signed like Twilio when given the auth token),
sends ``connected``/``start``/``media``/``dtmf``/``stop``, and plays the audio it
receives the way Twilio does: in order, in real time, echoing each mark when the
audio queued before it has played, and on ``clear`` dropping what is unplayed
and echoing every pending mark at once. ``heard()`` is what the caller heard.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from ._wait import wait_until

__all__ = ["FakeTwilioCall", "sign_webhook", "sign_websocket"]

_sids = itertools.count(1)


def sign_websocket(token: str, wss_url: str) -> str:
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(token).compute_signature(wss_url, {}))


def sign_webhook(token: str, url: str, params: dict[str, str]) -> str:
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(token).compute_signature(url, params))


class FakeTwilioCall:
    def __init__(
        self,
        ws_url: str,
        *,
        auth_token: str | None = None,
        signed_url: str | None = None,
        call_sid: str | None = None,
        parameters: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        play_speed: float = 1.0,
        stream_token: Callable[[str, dict[str, str]], str] | None = None,
    ) -> None:
        n = next(_sids)
        #: playback pace, x real time (1 = like Twilio; more only for quick offline runs)
        self.rate = 8000 * play_speed
        self.ws_url = ws_url
        self.auth_token = auth_token
        self.signed_url = signed_url
        self.call_sid = call_sid or f"CA{n:032x}"
        self.stream_sid = f"MZ{n:032x}"
        self.parameters = (
            parameters
            if parameters is not None
            else {"From": "+15550001111", "To": "+15550002222", "CallSid": self.call_sid}
        )
        self.extra_headers = headers or {}
        #: ``stream_token(call_sid, parameters)``: what the webhook's TwiML would add as
        #: the ``token`` parameter (e.g. ``services.streams.issue`` of the app under test)
        self.stream_token = stream_token
        self.ws: ClientConnection | None = None
        self.received: list[dict[str, Any]] = []
        self.clears: list[float] = []
        self.echoed: list[str] = []  # mark names echoed back, in order
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._seq = 0
        self._chunk = 0
        self._media_ts = 0
        # Playback emulation: (start time, bytes) chunks, marks due at a time.
        self._play: list[tuple[float, bytes]] = []
        self._queue_end = 0.0
        self._marks: list[tuple[float, str, asyncio.TimerHandle]] = []
        self._heard_before_clear = bytearray()
        self._before_clear: list[tuple[float, bytes]] = []  # chunks as they played before a clear
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    # --- connection -------------------------------------------------------------

    async def connect(self) -> FakeTwilioCall:
        headers = dict(self.extra_headers)
        if self.auth_token:
            headers["X-Twilio-Signature"] = sign_websocket(self.auth_token, self.signed_url or self.ws_url)
        self.ws = await connect(self.ws_url, additional_headers=headers, compression=None, max_size=None)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                msg = json.loads(message)
                now = time.monotonic()
                kind = msg.get("event")
                if kind == "media":
                    audio = base64.b64decode(msg["media"]["payload"])
                    start = max(now, self._queue_end)
                    self._play.append((start, audio))
                    self._queue_end = start + len(audio) / self.rate
                elif kind == "mark":
                    self._schedule_mark(msg["mark"]["name"], now)
                elif kind == "clear":
                    self._clear(now)
                self.received.append(msg)
                async with self._changed:
                    self._changed.notify_all()
        except Exception:
            pass
        finally:
            if self.ws is not None:
                self.close_code = self.ws.close_code
            self.closed.set()
            async with self._changed:
                self._changed.notify_all()

    def _schedule_mark(self, name: str, now: float) -> None:
        due = max(now, self._queue_end)
        loop = asyncio.get_running_loop()
        handle = loop.call_at(loop.time() + (due - now), lambda: loop.create_task(self._echo_mark(name)))
        self._marks.append((due, name, handle))

    async def _echo_mark(self, name: str) -> None:
        self._marks = [m for m in self._marks if m[1] != name]
        self.echoed.append(name)
        async with self._changed:
            self._changed.notify_all()
        await self._send_json(
            {"event": "mark", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid, "mark": {"name": name}}
        )

    def _clear(self, now: float) -> None:
        self.clears.append(now)
        self._heard_before_clear += self._played(now)
        self._before_clear = [c for c in self._before_clear if c[0] > now - 30.0]  # what a line still needs
        for start, audio in self._play:
            if now <= start:
                break
            self._before_clear.append((start, audio[: round((now - start) * self.rate)]))
        self._play.clear()
        self._queue_end = now
        pending, self._marks = self._marks, []
        for _, name, handle in pending:
            handle.cancel()
            asyncio.get_running_loop().create_task(self._echo_mark(name))

    def _played(self, now: float) -> bytes:
        out = bytearray()
        for start, audio in self._play:
            if now <= start:
                break
            out += audio[: int((now - start) * self.rate)]
        return bytes(out)

    def played_between(self, t0: float, t1: float) -> bytes:
        """mu-law codes the caller's phone played from ``t0`` to ``t1`` (monotonic
        clock), sample by sample in time, silence (0xFF) where nothing played: what a
        line's echo is made of. Audio queued and not yet cleared counts as played at
        its time."""
        rate = self.rate
        n = max(0, round((t1 - t0) * rate))
        out = bytearray(b"\xff") * n
        for start, audio in [*self._before_clear, *self._play]:
            at = round((start - t0) * rate)  # the chunk's first sample in out
            lo, hi = max(0, -at), min(len(audio), n - at)
            if hi > lo:
                out[at + lo : at + hi] = audio[lo:hi]
        return bytes(out)

    def heard(self, now: float | None = None) -> bytes:
        """mu-law audio the caller has heard so far (what played before any clear, then since)."""
        return bytes(self._heard_before_clear) + self._played(time.monotonic() if now is None else now)

    @property
    def heard_at_last_clear(self) -> int:
        return len(self._heard_before_clear)

    # --- sending ------------------------------------------------------------------

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def _send_json(self, msg: dict[str, Any]) -> None:
        if self.ws is not None and not self.closed.is_set():
            try:
                await self.ws.send(json.dumps(msg))
            except Exception:
                pass

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def start(self) -> None:
        await self._send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send_json(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": "AC" + "0" * 32,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.stream_parameters(),
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )

    def stream_parameters(self) -> dict[str, str]:
        """The ``start``'s custom parameters: ``parameters`` plus the stream token, if any."""
        if self.stream_token is None:
            return self.parameters
        return {**self.parameters, "token": self.stream_token(self.call_sid, self.parameters)}

    async def send_audio(self, ulaw: bytes, frame_bytes: int = 160, pace: float = 0.0) -> None:
        """Caller audio in 20 ms frames; ``pace`` > 0 sends at that multiple of real time."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(0, len(ulaw), frame_bytes):
            frame = ulaw[i : i + frame_bytes]
            self._chunk += 1
            await self._send_json(
                {
                    "event": "media",
                    "sequenceNumber": self._next_seq(),
                    "streamSid": self.stream_sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._chunk),
                        "timestamp": str(self._media_ts),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
            )
            self._media_ts += len(frame) // 8
            if pace > 0:
                due = t0 + (i + len(frame)) / 8000 / pace
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the sender, not waiting for a result

    async def dtmf(self, digit: str) -> None:
        await self._send_json(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def stop(self) -> None:
        await self._send_json(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid},
            }
        )

    async def hang_up(self) -> None:
        """Twilio's end of a call: ``stop`` then the socket closes."""
        await self.stop()
        await self.close()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=2)
        for _, _, handle in self._marks:
            handle.cancel()

    # --- waiting --------------------------------------------------------------------

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("event") == kind]

    def media_bytes(self) -> bytes:
        return b"".join(base64.b64decode(m["media"]["payload"]) for m in self.events("media"))

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            found = self.events(kind)
            return found[count - 1] if len(found) >= count else None

        return await wait_until(self._changed, ready, self.closed, f"{count} x {kind}", timeout)

    async def wait_media_bytes(self, nbytes: int, timeout: float = 5.0) -> None:
        await wait_until(
            self._changed,
            lambda: True if len(self.media_bytes()) >= nbytes else None,
            self.closed,
            f"{nbytes} bytes of agent audio",
            timeout,
        )

    async def wait_echoed(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` marks have been echoed (played or cleared)."""

        await wait_until(
            self._changed,
            lambda: True if len(self.echoed) >= count else None,
            self.closed,
            f"{count} mark echoes",
            timeout,
        )

    async def wait_closed(self, timeout: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"waited {timeout:g} s for the bridge to close call {self.call_sid}") from None

    async def __aenter__(self) -> FakeTwilioCall:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
