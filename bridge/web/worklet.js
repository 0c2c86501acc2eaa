// Auralis player, audio side: an AudioWorklet that plays decoded stereo frames
// from a ring buffer (the jitter buffer), buffering the way a radio player does.
//
// - It starts once `start` seconds are buffered (a fraction of a second, so sound
//   comes quickly), and after an underrun only once the whole `target` is
//   buffered again; it fades in over 10 ms.
// - `target` is the cushion it keeps: the page sets it from the jitter it sees
//   and grows it after an underrun. Below the cushion one frame in 500 is played
//   twice, above 1.5 times it one frame in 500 is skipped (0.2 % of speed, which
//   nobody hears), so the delay drifts towards the cushion without a jump.
// - When the buffer is about to run dry the output fades out over its last
//   10 ms, so an underrun is a soft dip, never a click.
// - A sequence gap is concealed: the queued tail fades out over 10 ms and the
//   next chunk fades in.
class AuralisPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.capacity = sampleRate * 10;
    this.left = new Float32Array(this.capacity);
    this.right = new Float32Array(this.capacity);
    this.read = 0;
    this.write = 0;
    this.underruns = 0;
    this.started = false;
    this.fade = 1;
    this.fadeStep = 1 / Math.max(1, Math.round(sampleRate * 0.01));
    this.start = Math.round(sampleRate * 0.4);
    this.target = Math.round(sampleRate * 2);
    this.everStarted = false;
    this.stretched = 0;
    this.played = 0;
    this.skipped = 0;
    this.lastReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  buffered() {
    return this.write - this.read;
  }

  fadeOutTail() {
    const n = Math.min(this.buffered(), Math.round(sampleRate * 0.01));
    for (let i = 0; i < n; i++) {
      const at = (this.write - n + i) % this.capacity;
      const g = 1 - (i + 1) / n;
      this.left[at] *= g;
      this.right[at] *= g;
    }
  }

  push(left, right, gap) {
    const n = left.length;
    if (gap) this.fadeOutTail();
    if (this.buffered() + n > this.capacity) {
      // A stalled tab came back with far too much queued: drop the oldest.
      this.read = this.write + n - this.capacity;
    }
    const fadeLen = gap ? Math.min(n, Math.round(sampleRate * 0.01)) : 0;
    for (let i = 0; i < n; i++) {
      const at = (this.write + i) % this.capacity;
      const g = i < fadeLen ? (i + 1) / fadeLen : 1;
      this.left[at] = left[i] * g;
      this.right[at] = right[i] * g;
    }
    this.write += n;
  }

  onMessage(msg) {
    if (msg.type === 'chunk') this.push(msg.left, msg.right, msg.gap);
    else if (msg.type === 'target') this.target = Math.round(sampleRate * msg.seconds);
    else if (msg.type === 'start') this.start = Math.round(sampleRate * msg.seconds);
    else if (msg.type === 'reset') {
      this.read = this.write;
      this.started = false;
      this.everStarted = false;
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const n = out[0].length;
    const fadeLen = Math.round(sampleRate * 0.01);
    if (!this.started && this.buffered() >= (this.everStarted ? this.target : this.start)) {
      this.started = true;
      this.everStarted = true;
      this.fade = 0;
    }
    const excess = this.buffered() > this.target * 1.5 + sampleRate * 0.1;
    const short = this.buffered() < this.target * 0.75;
    for (let i = 0; i < n; i++) {
      if (this.started && this.buffered() > 0) {
        const tick = this.played % 500 === 0;
        if (excess && tick && this.buffered() > 1) {
          this.read++;
          this.skipped++;
        }
        const at = this.read % this.capacity;
        this.fade = Math.min(1, this.fade + this.fadeStep);
        // About to run dry: fade out over the last samples.
        const g = Math.min(this.fade, this.buffered() / fadeLen);
        out[0][i] = this.left[at] * g;
        if (out[1]) out[1][i] = this.right[at] * g;
        if (short && tick && this.buffered() > fadeLen) this.stretched++;
        else this.read++;
        this.played++;
      } else {
        if (this.started) {
          this.underruns++;
          this.started = false;
        }
        out[0][i] = 0;
        if (out[1]) out[1][i] = 0;
      }
    }
    if (currentTime - this.lastReport > 0.25) {
      this.lastReport = currentTime;
      this.port.postMessage({
        type: 'stats',
        bufferedMs: (1000 * this.buffered()) / sampleRate,
        targetMs: (1000 * this.target) / sampleRate,
        underruns: this.underruns,
        playedSeconds: this.played / sampleRate,
        skipped: this.skipped,
        stretched: this.stretched,
      });
    }
    return true;
  }
}

registerProcessor('auralis-player', AuralisPlayer);
