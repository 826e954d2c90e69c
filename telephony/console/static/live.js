// Live calls: the server pushes the whole list (Server-Sent Events) on every change;
// durations tick here. Untrusted values are set with textContent, never as HTML.
"use strict";
(function () {
  const body = document.querySelector("#live-calls tbody");
  const empty = document.getElementById("live-empty");
  const status = document.getElementById("live-status");
  let calls = [];
  let skew = 0; // server clock - our clock, seconds

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  function duration(started) {
    const s = Math.max(0, Math.floor(Date.now() / 1000 + skew - started));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function render() {
    body.replaceChildren();
    for (const c of calls) {
      const row = document.createElement("tr");
      row.dataset.callSid = c.call_sid;
      cell(row, c.call_sid, "sid");
      cell(row, c.console ? "browser phone" : c.from_number);
      cell(row, c.to_number);
      cell(row, c.agent || "—");
      cell(row, duration(c.started_at), "duration").dataset.started = c.started_at;
      cell(row, c.state, "state " + c.state.replace(/ /g, "-"));
      body.appendChild(row);
    }
    empty.hidden = calls.length > 0;
  }
  function tick() {
    for (const td of body.querySelectorAll("td.duration")) td.textContent = duration(Number(td.dataset.started));
  }
  const source = new EventSource("/console/live/events");
  source.addEventListener("calls", function (e) {
    const data = JSON.parse(e.data);
    skew = data.now - Date.now() / 1000;
    calls = data.calls;
    status.textContent = "Live: updates as calls start, change and end.";
    render();
  });
  source.onerror = function () { status.textContent = "Disconnected; reconnecting…"; };
  setInterval(tick, 1000);
})();
