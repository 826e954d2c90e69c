"""Two real ``telephony serve`` processes sharing one PostgreSQL database, as two
replicas behind a load balancer: Twilio's callbacks may reach either."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from telephony.testing.fake_twilio import sign_webhook
from tests.test_serve_process import TOKEN, Server, fake  # noqa: F401 (fake is a fixture)

pytestmark = pytest.mark.anyio

API = "replica-api-token-123456"


@pytest.mark.async_timeout(90)
async def test_two_replicas_share_records_and_the_apology(fake, postgres_url):  # noqa: F811
    env = {
        "TELEPHONY_DATABASE_URL": postgres_url,
        "TELEPHONY_API_TOKEN": API,
        "TELEPHONY_RECONNECT_ATTEMPTS": "2",
        "TELEPHONY_RECONNECT_BACKOFF": "0.01",
        "TELEPHONY_LOG_LEVEL": "DEBUG",
    }
    async with Server(fake, **env) as a, Server(fake, **env) as b:
        # A call fails on replica a: the Realtime API refuses every reconnect.
        call, s1 = await a.live_call()
        fake.refuse_status = 503
        await s1.close(1011)
        await call.wait_closed(5)
        await a.wait_log("records.saved")
        fake.refuse_status = None

        # Twilio's /stream-ended for that call reaches replica b, which never saw it.
        url = f"http://127.0.0.1:{b.port}/stream-ended"
        async with httpx.AsyncClient() as http:
            for sid, spoken in ((call.call_sid, True), ("CA" + "0" * 32, False)):
                params = {"CallSid": sid, "CallStatus": "in-progress"}
                r = await http.post(url, data=params, headers={"X-Twilio-Signature": sign_webhook(TOKEN, url, params)})
                assert r.status_code == 200 and "<Hangup />" in r.text
                assert ("<Say>Sorry, we are having technical difficulties" in r.text) is spoken

        # Another call completes on replica b.
        call2, s2 = await b.live_call()
        await call2.send_audio(b"\xff" * 800)
        await s2.wait_audio(4800)
        await call2.hang_up()
        await b.wait_log("records.saved")

        # Either replica lists both calls, filters them, and shows each.
        auth = {"Authorization": f"Bearer {API}"}
        async with httpx.AsyncClient() as http:
            for server in (a, b):
                origin = f"http://127.0.0.1:{server.port}"
                listing = (await http.get(origin + "/calls", headers=auth)).json()
                assert {c["call_sid"]: c["outcome"] for c in listing} == {
                    call.call_sid: "failed",
                    call2.call_sid: "completed",
                }
                failed = (await http.get(origin + "/calls", params={"outcome": "failed"}, headers=auth)).json()
                assert [c["call_sid"] for c in failed] == [call.call_sid]
                page = (await http.get(origin + "/calls", params={"limit": 1, "offset": 1}, headers=auth)).json()
                assert [c["call_sid"] for c in page] == [listing[1]["call_sid"]]
                record = (await http.get(f"{origin}/calls/{call.call_sid}", headers=auth)).json()
                assert record["apologized"] is True
    # The CLI reads the same database.
    cli_env = {**os.environ, "TELEPHONY_DATABASE_URL": postgres_url}
    out = subprocess.run(
        [sys.executable, "-m", "telephony", "calls", "--outcome", "failed"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert call.call_sid in out.stdout and call2.call_sid not in out.stdout
    assert "replica-api-token" not in "\n".join(a.log + b.log)
    assert postgres_url not in "\n".join(a.log + b.log)
