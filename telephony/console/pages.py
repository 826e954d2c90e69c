"""The console's HTML, as ``string.Template`` templates filled with escaped values.

Everything shown that came from a call (numbers, transcripts, tool arguments and
results, reasons) is untrusted and goes through ``esc``; the pages load no inline
script (the Content-Security-Policy forbids it) and nothing from another origin.
"""

from __future__ import annotations

import json
import time
from html import escape
from string import Template
from typing import Any
from urllib.parse import urlencode

from ..records import CallRecord

__all__ = ["OUTCOMES", "call_page", "history_page", "live_page", "login_page", "message_page", "phone_page"]

OUTCOMES = ("completed", "hung_up_by_agent", "transferred", "failed")


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


_LAYOUT = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · telephony</title>
<link rel="stylesheet" href="/console/static/console.css">
</head>
<body>
<header>
<span class="brand">telephony</span>
$nav
</header>
<main>
<h1>$title</h1>
$body
</main>
$scripts
</body>
</html>
""")

_NAV = Template("""<nav>
<a href="/console"$live>Live</a>
<a href="/console/calls"$history>History</a>
<a href="/console/phone"$phone>Phone</a>
<form method="post" action="/console/logout" class="inline"><button type="submit">Log out</button></form>
</nav>""")


def _layout(title: str, body: str, active: str | None = None, scripts: tuple[str, ...] = ()) -> str:
    nav = ""
    if active is not None:
        marks = {k: ' aria-current="page"' if k == active else "" for k in ("live", "history", "phone")}
        nav = _NAV.substitute(marks)
    tags = "\n".join(f'<script src="/console/static/{esc(s)}"></script>' for s in scripts)
    return _LAYOUT.substitute(title=esc(title), nav=nav, body=body, scripts=tags)


def message_page(title: str, text: str) -> str:
    return _layout(title, f'<p class="notice">{esc(text)}</p>')


def login_page(error: str | None = None) -> str:
    err = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = f"""{err}
<form method="post" action="/console/login" class="login">
<label for="token">API token (TELEPHONY_API_TOKEN)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>"""
    return _layout("Log in", body)


def live_page() -> str:
    body = """<p class="muted" id="live-status">Connecting…</p>
<table id="live-calls">
<thead><tr><th>Call</th><th>Caller</th><th>Number</th><th>Agent</th><th>Duration</th><th>State</th></tr></thead>
<tbody></tbody>
</table>
<p class="muted" id="live-empty">No live calls.</p>"""
    return _layout("Live calls", body, "live", ("live.js",))


def _when(unix: float | None) -> str:
    if not unix:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


def history_page(
    records: list[CallRecord], q: str, outcome: str, page: int, has_next: bool, error: str | None = None
) -> str:
    options = ['<option value="">any outcome</option>'] + [
        f'<option value="{o}"{" selected" if o == outcome else ""}>{o.replace("_", " ")}</option>' for o in OUTCOMES
    ]
    rows = []
    for r in records:
        rows.append(
            "<tr>"
            f'<td><a href="/console/calls/{esc(r.call_sid)}">{esc(r.call_sid)}</a></td>'
            f"<td>{esc(r.from_number)}</td><td>{esc(r.to_number)}</td>"
            f"<td>{esc(_when(r.started_at))}</td><td>{esc(_duration(r.duration_s))}</td>"
            f'<td class="outcome {esc(r.outcome)}">{esc((r.outcome or "in progress").replace("_", " "))}</td>'
            f"<td>{len(r.transcript)}</td><td>{esc(_cost(r))}</td>"
            "</tr>"
        )
    table = (
        '<table id="history"><thead><tr><th>Call</th><th>Caller</th><th>Number</th><th>Started</th>'
        "<th>Duration</th><th>Outcome</th><th>Turns</th><th>Cost</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        if rows
        else '<p class="muted">No calls match.</p>'
    )

    def link(p: int, label: str) -> str:
        args = {k: v for k, v in (("q", q), ("outcome", outcome)) if v}
        if p:
            args["page"] = str(p)
        return f'<a href="/console/calls?{esc(urlencode(args))}" rel="{"prev" if p < page else "next"}">{label}</a>'

    pager = []
    if page > 0:
        pager.append(link(page - 1, "← newer"))
    pager.append(f"<span>page {page + 1}</span>")
    if has_next:
        pager.append(link(page + 1, "older →"))
    err = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = f"""<form method="get" action="/console/calls" class="search">
<input name="q" value="{esc(q)}" placeholder="number (+15551234567) or call SID" aria-label="number or call SID">
<select name="outcome" aria-label="outcome">{"".join(options)}</select>
<button type="submit">Search</button>
</form>
{err}{table}
<p class="pager">{" ".join(pager)}</p>"""
    return _layout("History", body, "history")


def _cost(r: CallRecord) -> str:
    return _dollars(r.cost_usd)


def _dollars(cost: Any) -> str:
    return f"${cost:.4f}" if isinstance(cost, (int, float)) else ""


def _tokens(tokens: dict[str, int]) -> str:
    """'audio 700 in (20 cached), 200 out; text 30 in, 10 out'"""
    parts = []
    for kind in ("audio", "text", "image"):
        n_in, cached, out = (tokens.get(f"{kind}_{k}", 0) for k in ("input", "cached_input", "output"))
        if n_in or cached or out:
            text = f"{kind} {n_in + cached} in"
            if cached:
                text += f" ({cached} cached)"
            if out:
                text += f", {out} out"
            parts.append(text)
    return "; ".join(parts)


def _timeline(r: CallRecord) -> list[tuple[float, str, str]]:
    """(t, kind, HTML) for every entry of the call, in time order."""
    out: list[tuple[float, str, str]] = []
    for e in r.transcript:
        role = "caller" if e.get("role") == "caller" else "agent"
        who = "Caller" if role == "caller" else "Agent"
        agent = e.get("agent")  # which agent spoke, once calls can hand off between agents
        if role == "agent" and agent:
            who = f"Agent ({esc(agent)})"
        out.append((e.get("t", 0.0), role, f'<span class="who">{who}</span> <q>{esc(e.get("text"))}</q>'))
    for b in r.barge_ins:
        cuts = "; ".join(
            f"agent cut at {esc(t.get('audio_end_ms'))} ms of {esc(t.get('received_ms'))} ms received"
            for t in b.get("truncated", [])
        )
        out.append((b.get("t", 0.0), "barge-in", f'<span class="who">Barge-in</span> {cuts or "nothing was playing"}'))
    for c in r.tool_calls:
        status = "ok" if c.get("ok") else ("error" if c.get("ok") is False else "no result")
        detail = f"<dt>arguments</dt><dd><code>{esc(c.get('arguments'))}</code></dd>"
        if c.get("result") is not None:
            detail += f"<dt>result</dt><dd><code>{esc(_json(c.get('result')))}</code></dd>"
        if c.get("error"):
            detail += f'<dt>error</dt><dd class="error">{esc(c.get("error"))}</dd>'
        dur = c.get("duration_ms")
        out.append(
            (
                c.get("t", 0.0),
                "tool",
                f'<span class="who">Tool</span> <code>{esc(c.get("name"))}</code> '
                f'<span class="status {status}">{status}</span>'
                f"{f' in {esc(dur)} ms' if dur is not None else ''}<dl>{detail}</dl>",
            )
        )
    for e in r.events:
        kind, t = e.get("kind"), e.get("t", 0.0)
        if kind == "response_latency":
            html = f'<span class="who">Latency</span> agent answered {esc(e.get("ms"))} ms after the caller stopped'
        elif kind == "response":
            u = e.get("usage") or {}
            html = (
                f'<span class="who">Response</span> {esc(e.get("status"))}: '
                f"{esc(u.get('input_tokens', 0))} tokens in, {esc(u.get('output_tokens', 0))} out"
            )
            if e.get("cost_usd") is not None:
                html += f" ({esc(_dollars(e.get('cost_usd')))})"
        elif kind == "realtime_lost":
            html = f'<span class="who">Reconnecting</span> session lost ({esc(e.get("reason"))}), attempt {esc(e.get("attempt"))}'
        elif kind == "realtime_reconnected":
            html = f'<span class="who">Reconnected</span> {esc(e.get("restored_items"))} items restored'
        elif kind == "realtime_gave_up":
            html = f'<span class="who">Gave up</span> {esc(e.get("reason"))}'
        elif kind == "transfer_requested":
            html = f'<span class="who">Transfer</span> to {esc(e.get("label") or e.get("number"))}'
        elif kind == "transfer_failed":
            html = f'<span class="who">Transfer failed</span> {esc(e.get("reason"))}'
        elif kind == "hangup_requested":
            html = f'<span class="who">Hang-up</span> by the agent: {esc(e.get("reason"))}'
        else:
            html = f'<span class="who">{esc(kind)}</span>'
        out.append((t, esc(kind).replace("_", "-"), html))
    out.sort(key=lambda x: x[0])
    return out


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def call_page(r: CallRecord) -> str:
    usage = r.usage or {}
    recording = getattr(r, "recording_url", None)  # once recordings are kept (not in this version)
    if recording:
        player = f'<audio controls preload="none" src="{esc(recording)}"></audio>'
    else:
        player = '<p class="muted">No recording of this call.</p>'
    facts = [
        ("Caller", esc(r.from_number)),
        ("Number", esc(r.to_number)),
        ("Started", esc(_when(r.started_at))),
        ("Duration", esc(_duration(r.duration_s))),
        ("Outcome", esc((r.outcome or "in progress").replace("_", " "))),
        ("Reason", esc(r.reason)),
        (
            "Tokens",
            f"{esc(usage.get('input_tokens', 0))} in, {esc(usage.get('output_tokens', 0))} out "
            f"over {esc(usage.get('responses', 0))} responses" + (f" ({esc(_tokens(r.tokens))})" if r.tokens else ""),
        ),
        (
            "Cost",
            esc(_cost(r))
            or f'<span class="muted">not priced (no price for {esc(r.model or "the model")}: see TELEPHONY_PRICES)</span>',
        ),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    items = "".join(
        f'<li class="{kind}"><span class="t">+{t:.1f} s</span> {html}</li>' for t, kind, html in _timeline(r)
    )
    body = f"""<p class="sid"><code>{esc(r.call_sid)}</code></p>
<dl class="facts">{dl}</dl>
<section id="recording"><h2>Recording</h2>{player}</section>
<section><h2>Timeline</h2><ol id="timeline">{items or '<li class="muted">Nothing was said.</li>'}</ol></section>"""
    return _layout("Call", body, "history")


def phone_page() -> str:
    body = """<p>Talk to your agent from this browser: the same path a phone call takes (μ-law 8 kHz, 20 ms frames).</p>
<p><button id="phone-call" type="button">Call</button> <button id="phone-hangup" type="button" disabled>Hang up</button></p>
<p id="phone-status" class="muted">Idle.</p>
<dl class="facts">
<dt>Sent</dt><dd><span id="phone-sent">0</span> frames</dd>
<dt>Played</dt><dd><span id="phone-played">0</span> samples</dd>
<dt>Marks</dt><dd><span id="phone-marks">0</span> echoed</dd>
<dt>Cleared</dt><dd><span id="phone-clears">0</span> times</dd>
</dl>"""
    return _layout("Browser phone", body, "phone", ("phone.js",))
