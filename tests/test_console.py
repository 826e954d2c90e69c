"""The web console over HTTP: who may see it, what the pages show (escaped), the
live-call registry, history search and paging. The browser tests are in
test_console_browser.py."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest
import websockets

from telephony.call import events as ev
from telephony.console.auth import COOKIE, LoginThrottle, check_session, make_session
from telephony.io.live import LiveCalls
from telephony.records import CallRecord
from telephony.wire import twilio as tw
from tests.harness import bridge

pytestmark = pytest.mark.anyio

API_TOKEN = "console-token-0123456789abcdef"


@contextlib.asynccontextmanager
async def client(b, origin: str | None = None):
    headers = {"Origin": origin if origin is not None else b.origin}
    async with httpx.AsyncClient(base_url=b.origin, headers=headers, follow_redirects=False) as c:
        yield c


async def logged_in(c: httpx.AsyncClient) -> None:
    r = await c.post("/console/login", data={"token": API_TOKEN})
    assert r.status_code == 303 and r.headers["location"] == "/console", r.text


async def test_console_is_off_without_a_token():
    async with bridge() as b, client(b) as c:
        for path in ("/console", "/console/login", "/console/calls", "/console/phone"):
            r = await c.get(path)
            assert r.status_code == 403 and "TELEPHONY_API_TOKEN" in r.text, path
        assert (await c.post("/console/login", data={"token": ""})).status_code == 403
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"ws://127.0.0.1:{b.port}/console/phone/stream", origin=b.origin)
        assert refused.value.response.status_code == 403


async def test_login_sets_a_signed_httponly_strict_cookie_and_checks_the_origin():
    async with bridge(api_token=API_TOKEN) as b:
        async with client(b) as c:
            r = await c.get("/console")
            assert r.status_code == 303 and r.headers["location"] == "/console/login"
            assert (await c.get("/console/live/events")).status_code == 401
            form = await c.get("/console/login")
            assert form.status_code == 200 and 'name="token"' in form.text and API_TOKEN not in form.text
            assert "script-src 'self'" in form.headers["content-security-policy"]
            wrong = await c.post("/console/login", data={"token": API_TOKEN[:-1] + "x"})
            assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
            await logged_in(c)
            (cookie,) = list(c.cookies.jar)
            assert cookie.name == COOKIE and API_TOKEN not in cookie.value
            assert cookie.path == "/console" and cookie.has_nonstandard_attr("HttpOnly")
            assert cookie.get_nonstandard_attr("SameSite").lower() == "strict"
            page = await c.get("/console")
            assert page.status_code == 200 and 'id="live-calls"' in page.text and API_TOKEN not in page.text
            # A forged or tampered session is refused.
            c.cookies.set(COOKIE, cookie.value[:-1] + ("0" if cookie.value[-1] != "0" else "1"), path="/console")
            assert (await c.get("/console")).status_code == 303
        # A login posted from another site (or without an Origin) sets nothing.
        for origin in ("https://evil.example", ""):
            async with client(b, origin) as c:
                if not origin:
                    c.headers.pop("Origin")
                r = await c.post("/console/login", data={"token": API_TOKEN})
                assert r.status_code == 403 and not c.cookies, origin


def test_session_values_expire_and_are_bound_to_the_token():
    value = make_session("token-a", 60, now=1000.0)
    assert check_session("token-a", value, now=1059.0)
    assert not check_session("token-a", value, now=1061.0)
    assert not check_session("token-b", value, now=1000.0)
    assert not check_session("token-a", "garbage", now=1000.0)


async def test_pages_escape_what_callers_said_and_search_and_page_the_history():
    hostile = "<script>alert('x')</script>"
    async with bridge(api_token=API_TOKEN) as b, client(b) as c:
        store = b.observer.store
        for i in range(30):
            await store.save(
                CallRecord(
                    f"CA{i:032d}",
                    "+15550000001" if i % 2 else f'"><img src=x onerror=alert({i})>',
                    "+15559990000",
                    started_at=1_700_000_000 + i,
                    duration_s=12.5,
                    outcome="failed" if i % 3 == 0 else "completed",
                    transcript=[
                        {"t": 0.5, "role": "caller", "text": hostile},
                        {"t": 1.0, "role": "agent", "text": "Hi"},
                    ],
                    tool_calls=[
                        {
                            "t": 0.8,
                            "name": "lookup",
                            "arguments": '{"q": "<b>"}',
                            "ok": False,
                            "result": None,
                            "error": "ToolError: <i>nope</i>",
                            "duration_ms": 12.0,
                        }
                    ],
                    barge_ins=[{"t": 1.2, "truncated": [{"item_id": "i", "audio_end_ms": 640, "received_ms": 2000}]}],
                    events=[{"t": 0.9, "kind": "response_latency", "ms": 420}],
                )
            )
        await logged_in(c)
        page = (await c.get(f"/console/calls/CA{1:032d}")).text
        assert hostile not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
        assert "<i>nope</i>" not in page and "&lt;i&gt;nope&lt;/i&gt;" in page
        assert "agent cut at 640 ms of 2000 ms received" in page and "420 ms" in page
        assert "No recording of this call." in page
        first = (await c.get("/console/calls")).text
        assert "onerror=alert" not in first.replace("&quot;&gt;&lt;img src=x onerror=alert", "")
        assert first.count('href="/console/calls/CA') == 25 and 'rel="next"' in first
        second = (await c.get("/console/calls", params={"page": 1})).text
        assert second.count('href="/console/calls/CA') == 5 and 'rel="next"' not in second
        assert f"CA{29:032d}" in first and f"CA{0:032d}" in second  # newest first
        by_number = (await c.get("/console/calls", params={"q": "+15550000001", "outcome": "failed"})).text
        odd_failed = [i for i in range(30) if i % 2 and i % 3 == 0]
        assert by_number.count('href="/console/calls/CA') == len(odd_failed)
        by_sid = (await c.get("/console/calls", params={"q": f"CA{7:032d}"})).text
        assert by_sid.count('href="/console/calls/CA') == 1
        assert (await c.get("/console/calls/CAnone")).status_code == 404


def _start(sid: str) -> ev.CallStarted:
    return ev.CallStarted(tw.Start("MZ1", sid, "AC1", {"From": "+1555", "To": "+1666"}))


def test_live_registry_follows_a_calls_notices():
    live = LiveCalls()
    live.observe("CA1", _start("CA1"))
    assert [c["state"] for c in live.snapshot()] == ["listening"]
    steps = [
        (ev.FirstAudio(0.4), "speaking"),
        (ev.BargeIn(()), "listening"),
        (ev.RunTool("c1", "weather", "{}"), "running a tool"),
        (ev.ResponseFinished("r", "completed", None, None), "running a tool"),
        (ev.RealtimeLost("closed", 1, 0.25), "reconnecting"),
        (ev.RealtimeReconnected(2, 3), "running a tool"),
    ]
    for event, state in steps:
        live.observe("CA1", event)
        assert live.calls["CA1"].state == state, event
    live.tool_finished("CA1")
    assert live.calls["CA1"].state == "listening"
    version = live.version
    live.observe("CA1", ev.CallEnded("completed", "stop", 0, 0, 0, False))
    assert live.snapshot() == [] and live.version > version


async def test_live_events_stream_a_call_as_it_starts_and_ends():
    async with bridge(api_token=API_TOKEN) as b, client(b) as c:
        await logged_in(c)
        async with c.stream("GET", "/console/live/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()

            async def next_calls() -> list:
                async for line in lines:
                    if line.startswith("data: "):
                        return json.loads(line[6:])["calls"]
                raise AssertionError("stream ended")

            assert await asyncio.wait_for(next_calls(), 5) == []
            call, _session = await b.live_call(parameters={"From": "+15550001111", "To": "+15550002222"})
            calls = await asyncio.wait_for(next_calls(), 5)
            assert [(x["call_sid"], x["from_number"], x["state"]) for x in calls] == [
                (call.call_sid, "+15550001111", "listening")
            ]
            await call.hang_up()
            assert await asyncio.wait_for(next_calls(), 5) == []


async def test_the_phone_stream_needs_a_session_and_the_consoles_origin():
    async with bridge(api_token=API_TOKEN) as b, client(b) as c:
        await logged_in(c)
        cookie = f"{COOKIE}={c.cookies[COOKIE]}"
        url = f"ws://127.0.0.1:{b.port}/console/phone/stream"
        for origin, headers in (
            (b.origin, {}),
            ("https://evil.example", {"Cookie": cookie}),
            (None, {"Cookie": cookie}),
        ):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(url, origin=origin, additional_headers=headers)
            assert refused.value.response.status_code == 403, origin
        assert b.observer.counters["console_phone_refused"] == 3
        async with websockets.connect(url, origin=b.origin, additional_headers={"Cookie": cookie}) as ws:
            session = await b.fake.next_session()
            await session.wait_for("session.update")
            await ws.send(json.dumps({"event": "media", "media": {"payload": "//////////8="}}))
            await session.wait_audio(1)
            assert [c.call_sid[:8] for c in b.observer.live.calls.values()] == ["console-"]
        assert b.observer.counters["console_phone_streams"] == 1


async def test_draining_ends_the_live_streams():
    from telephony.io.app import drain

    async with bridge(api_token=API_TOKEN) as b, client(b) as c:
        await logged_in(c)
        async with c.stream("GET", "/console/live/events") as stream:
            lines = stream.aiter_lines()
            async for line in lines:
                if line.startswith("data: "):
                    break
            await drain(b.state, 1.0)

            async def rest() -> list[str]:
                return [line async for line in lines]

            await asyncio.wait_for(rest(), 5)  # the response ends (well before the 15 s keep-alive)


def test_login_throttle_counts_failures_per_client_within_the_window():
    throttle = LoginThrottle(3, window_s=60.0, max_clients=2)
    for t in (0.0, 1.0, 2.0):
        assert not throttle.blocked("a", t)
        throttle.failed("a", t)
    assert throttle.blocked("a", 3.0) and not throttle.blocked("b", 3.0)
    assert not throttle.blocked("a", 60.5)  # the first failure left the window
    throttle.failed("b", 4.0)
    throttle.failed("c", 5.0)  # a third client: the least recent ("a") is forgotten
    assert not throttle.blocked("a", 6.0)


async def test_repeated_wrong_tokens_are_throttled():
    async with bridge(api_token=API_TOKEN, console_login_attempts=2) as b, client(b) as c:
        for _ in range(2):
            assert (await c.post("/console/login", data={"token": "wrong"})).status_code == 401
        assert (await c.post("/console/login", data={"token": "wrong"})).status_code == 429
        assert (await c.post("/console/login", data={"token": API_TOKEN})).status_code == 429
