"""A fake Twilio REST API on 127.0.0.1 (a thread), for tests of REST actions.

It records every request (method, path, basic-auth user, form fields) and
answers like the Calls and IncomingPhoneNumbers resources. Point the bridge at
it with ``TWILIO_API_BASE_URL=fake.base_url``. ``fail_next`` makes the next
request answer with an error status.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeTwilioRest", "RestRequest"]


@dataclass
class RestRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    user: str | None
    password: str | None

    def field(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class FakeTwilioRest:
    account_sid: str = "AC" + "1" * 32
    auth_token: str = "test-auth-token-0123456789"
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RestRequest] = field(default_factory=list)
    fail_next: tuple[int, str] | None = None
    #: when set, replies wait until it is set (a slow REST API; at most 5 s)
    hold: threading.Event | None = None
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _event: threading.Condition = field(default_factory=threading.Condition)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_number(self, number: str, **fields: Any) -> None:
        sid = "PN" + f"{len(self.numbers) + 1:032x}"
        self.numbers[number] = {
            "sid": sid,
            "phone_number": number,
            "voice_url": None,
            "voice_method": "POST",
            "status_callback": None,
            "status_callback_method": "POST",
            "voice_fallback_url": None,
            "voice_fallback_method": "POST",
            "account_sid": self.account_sid,
            **fields,
        }

    def wait_requests(self, count: int, timeout: float = 5.0) -> list[RestRequest]:
        with self._event:
            if not self._event.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} REST requests, got {len(self.requests)}")
            return list(self.requests)

    def start(self) -> FakeTwilioRest:
        fake = self
        ids = itertools.count(1)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode()) if length else {}
                user = password = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                req = RestRequest(method, url.path, parse_qs(url.query), form, user, password)
                with fake._event:
                    fake.requests.append(req)
                    fake._event.notify_all()
                if fake.hold is not None:
                    fake.hold.wait(5)
                if user != fake.account_sid or password != fake.auth_token:
                    return self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                if fake.fail_next is not None:
                    status, message = fake.fail_next
                    fake.fail_next = None
                    return self._reply(status, {"code": 21210, "message": message, "status": status})
                prefix = f"/2010-04-01/Accounts/{fake.account_sid}"
                path = url.path
                if method == "POST" and path == prefix + "/Calls.json":
                    sid = "CA" + f"{next(ids):032x}"
                    return self._reply(
                        201,
                        {
                            "sid": sid,
                            "status": "queued",
                            "to": req.field("To"),
                            "from": req.field("From"),
                            "account_sid": fake.account_sid,
                        },
                    )
                m = re.fullmatch(prefix + r"/Calls/(CA\w+)/Recordings\.json", path)
                if method == "POST" and m:
                    return self._reply(
                        201,
                        {
                            "sid": "RE" + f"{next(ids):032x}",
                            "call_sid": m.group(1),
                            "status": "in-progress",
                            "channels": 2 if req.field("RecordingChannels") == "dual" else 1,
                            "account_sid": fake.account_sid,
                        },
                    )
                m = re.fullmatch(prefix + r"/Calls/(CA\w+)\.json", path)
                if method == "POST" and m:
                    return self._reply(
                        200,
                        {
                            "sid": m.group(1),
                            "status": req.field("Status") or "in-progress",
                            "account_sid": fake.account_sid,
                        },
                    )
                if method == "GET" and path == prefix + "/IncomingPhoneNumbers.json":
                    asked = req.query.get("PhoneNumber")
                    wanted = asked[0] if asked else None
                    found = [n for k, n in fake.numbers.items() if wanted in (None, k)]
                    return self._reply(
                        200,
                        {
                            "incoming_phone_numbers": found,
                            "next_page_uri": None,
                            "page": 0,
                            "page_size": 50,
                            "uri": path,
                        },
                    )
                m = re.fullmatch(prefix + r"/IncomingPhoneNumbers/(PN\w+)\.json", path)
                if method == "POST" and m:
                    for n in fake.numbers.values():
                        if n["sid"] == m.group(1):
                            keys = ("VoiceUrl", "VoiceMethod", "StatusCallback", "StatusCallbackMethod")
                            for key in (*keys, "VoiceFallbackUrl", "VoiceFallbackMethod"):
                                if req.field(key) is not None:
                                    n[re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()] = req.field(key)
                            return self._reply(200, n)
                return self._reply(404, {"code": 20404, "message": "not found", "status": 404})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeTwilioRest:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
