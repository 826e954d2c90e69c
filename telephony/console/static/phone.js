// The browser phone: the microphone to the server as Twilio Media Streams messages
// (20 ms of G.711 mu-law at 8 kHz, base64), the agent's audio from them, "clear"
// honoured and marks echoed once played, as Twilio does.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const callButton = $("phone-call");
  const hangupButton = $("phone-hangup");
  const counts = { sent: 0, played: 0, marks: 0, clears: 0 };
  let ctx = null, ws = null, mic = null, player = null, streamSid = null;

  // G.711 mu-law (ITU-T G.711), 14-bit magnitude with the 0x84 bias.
  function encode(x) {
    let s = Math.round(Math.max(-1, Math.min(1, x)) * 32767);
    const sign = s < 0 ? 0x80 : 0;
    if (s < 0) s = -s;
    s = Math.min(s, 32635) + 0x84;
    let exp = 7;
    for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
    const mant = (s >> (exp + 3)) & 0x0f;
    return ~(sign | (exp << 4) | mant) & 0xff;
  }
  const DECODE = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const u = ~b & 0xff;
    const exp = (u >> 4) & 7;
    const mag = (((u & 0x0f) << 3) + 0x84) << exp;
    DECODE[b] = ((u & 0x80) ? 0x84 - mag : mag - 0x84) / 32768;
  }

  function show(name) { $("phone-" + name).textContent = String(counts[name]); }
  function status(text) { $("phone-status").textContent = text; }
  function send(msg) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); }

  function sendFrame(samples) {
    let bin = "";
    for (let i = 0; i < samples.length; i++) bin += String.fromCharCode(encode(samples[i]));
    send({ event: "media", streamSid: streamSid, media: { track: "inbound", payload: btoa(bin) } });
    counts.sent++;
    if (counts.sent % 25 === 0) show("sent");
  }

  function onServer(e) {
    const msg = JSON.parse(e.data);
    if (msg.streamSid) streamSid = msg.streamSid;
    if (msg.event === "media") {
      const bin = atob(msg.media.payload);
      const samples = new Float32Array(bin.length);
      for (let i = 0; i < bin.length; i++) samples[i] = DECODE[bin.charCodeAt(i)];
      player.port.postMessage({ samples: samples }, [samples.buffer]);
    } else if (msg.event === "mark") {
      player.port.postMessage({ mark: msg.mark.name });
    } else if (msg.event === "clear") {
      player.port.postMessage({ clear: true });
      counts.clears++;
      show("clears");
    }
  }

  async function call() {
    callButton.disabled = true;
    status("Starting the microphone…");
    try {
      ctx = new AudioContext({ sampleRate: 8000 });
      await ctx.audioWorklet.addModule("/console/static/phone-worklet.js");
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      status("No microphone: " + err.message);
      callButton.disabled = false;
      return;
    }
    const source = ctx.createMediaStreamSource(mic);
    const capture = new AudioWorkletNode(ctx, "phone-capture");
    const mute = ctx.createGain();
    mute.gain.value = 0; // the capture node is pulled through a silent path
    source.connect(capture).connect(mute).connect(ctx.destination);
    player = new AudioWorkletNode(ctx, "phone-player", { outputChannelCount: [1] });
    player.connect(ctx.destination);
    player.port.onmessage = (e) => {
      if (e.data.played !== undefined) { counts.played = e.data.played; show("played"); }
      if (e.data.mark !== undefined) {
        send({ event: "mark", streamSid: streamSid, mark: { name: e.data.mark } });
        counts.marks++;
        show("marks");
      }
    };
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(scheme + "//" + location.host + "/console/phone/stream");
    ws.onopen = () => {
      status("On the call: speak.");
      hangupButton.disabled = false;
      capture.port.onmessage = (e) => sendFrame(e.data);
    };
    ws.onmessage = onServer;
    ws.onclose = () => { status("Call ended."); stop(); };
  }

  function stop() {
    hangupButton.disabled = true;
    callButton.disabled = false;
    show("sent");
    if (mic) for (const t of mic.getTracks()) t.stop();
    if (ctx) ctx.close();
    mic = ctx = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
    ws = null;
  }

  callButton.addEventListener("click", call);
  hangupButton.addEventListener("click", () => { send({ event: "stop", streamSid: streamSid }); stop(); });
})();
