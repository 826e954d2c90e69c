// The browser phone's audio threads (AudioContext at 8 kHz, so the browser resamples
// the microphone and the speaker for us).
// phone-capture: the microphone in 160-sample (20 ms) frames, posted to the page.
// phone-player: the agent's audio, queued with Twilio's marks between chunks; a
// mark is posted back when the audio before it has played; "clear" drops the
// queued audio and posts every pending mark at once (as Twilio does).
"use strict";

const FRAME = 160;

class PhoneCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Float32Array(FRAME);
    this.n = 0;
  }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) {
      for (let i = 0; i < input.length; i++) {
        this.frame[this.n++] = input[i];
        if (this.n === FRAME) {
          this.port.postMessage(this.frame, [this.frame.buffer]);
          this.frame = new Float32Array(FRAME);
          this.n = 0;
        }
      }
    }
    return true;
  }
}

class PhonePlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // Float32Array chunks and {mark: name}
    this.offset = 0; // into queue[0] when it is audio
    this.played = 0; // samples played since the call began
    this.reported = 0;
    this.port.onmessage = (e) => {
      const d = e.data;
      if (d.clear) {
        for (const item of this.queue) if (!(item instanceof Float32Array)) this.port.postMessage({ mark: item.mark });
        this.queue = [];
        this.offset = 0;
      } else if (d.samples) {
        this.queue.push(d.samples);
      } else if (d.mark !== undefined) {
        this.queue.push({ mark: d.mark });
      }
    };
  }
  marks() {
    while (this.queue.length && !(this.queue[0] instanceof Float32Array)) {
      this.port.postMessage({ mark: this.queue.shift().mark, played: this.played });
      this.reported = this.played;
    }
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    this.marks();
    while (i < out.length && this.queue.length) {
      const head = this.queue[0];
      const n = Math.min(out.length - i, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + n), i);
      i += n;
      this.offset += n;
      this.played += n;
      if (this.offset >= head.length) {
        this.queue.shift();
        this.offset = 0;
        this.marks();
      }
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (this.played !== this.reported && (this.played - this.reported >= 800 || !this.queue.length)) {
      this.port.postMessage({ played: this.played });
      this.reported = this.played;
    }
    return true;
  }
}

registerProcessor("phone-capture", PhoneCapture);
registerProcessor("phone-player", PhonePlayer);
