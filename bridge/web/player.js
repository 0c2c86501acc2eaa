// Auralis player, page side: connects to the bridge's /ws/stream, in Opus
// (decoded by WebCodecs' AudioDecoder) where the browser has it and in s16
// otherwise, decodes chunks here (off the audio rendering thread) and feeds the
// AudioWorklet in worklet.js; shows the stream's status and codec, sends control
// messages and reports playback health back with `client_stats`.
'use strict';

const HEADER_BYTES = 44;
const MAGIC_AUR1 = 0x41555231;
const CODEC_S16 = 0;
const CODEC_F32 = 1;
const CODEC_OPUS = 2;
const OPUS_RATE = 48000;
const KEYS = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'];
const LEVELS = ['normal', 'high_load', 'critical', 'overload'];
// Buffering, as a radio player does: sound within a second, then a cushion of a
// few seconds that follows the jitter the link shows. Ambient music needs no low
// latency: a change is heard at the next phrase anyway.
const START_S = 0.4;
const TARGET_MIN_S = 1.5;
const TARGET_MAX_S = 8.0;
const TARGET_GROW_S = 0.5;
const TARGET_SHRINK_S = 0.1;
const STEADY_BEFORE_SHRINK_S = 60;
const JITTER_WINDOW_MS = 60_000;
const JITTER_SETTLE_MS = 3000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
const STATS_EVERY_MS = 3000;
const SLEEP_FADE_S = 60;
const CONTROL_IDS = ['preset', 'key', 'mode', 'bpm', 'intensity'];

const $ = (id) => document.getElementById(id);

const state = {
  ws: null, ctx: null, node: null, gain: null, analyser: null,
  playing: false, backoffMs: BACKOFF_MIN_MS, retry: null, lastSeq: null,
  gaps: 0, role: null, linkFollowed: false, stats: { underruns: 0, bufferedMs: 0, playedSeconds: 0 },
  targetS: 2.0, lastUnderruns: 0, steadySince: performance.now(),
  arrivals: [], connectedAt: 0, jitterMs: 0,
  bufferHistory: [], sleepAt: null, sleepTimer: null, lastError: null,
  codec: null, decoder: null, pendingGap: false, decodeErrors: 0,
};

// ---- settings remembered between visits ------------------------------------
const saved = (() => {
  try { return JSON.parse(localStorage.getItem('auralis.player') || '{}'); } catch { return {}; }
})();
function remember() {
  try {
    localStorage.setItem('auralis.player', JSON.stringify({
      volume: Number($('volume').value), sleep: $('sleep').value, preset: $('preset').value,
    }));
  } catch { /* private mode: nothing to keep */ }
}

for (const k of KEYS) {
  const o = document.createElement('option');
  o.textContent = k;
  $('key').appendChild(o);
}
if (saved.volume !== undefined) $('volume').value = saved.volume;
if (saved.sleep !== undefined) $('sleep').value = saved.sleep;

function say(text) { $('message').textContent = text; }

// This page with `?code=` naming the piece (and any `?bridge=`; never the
// token, which is the sharer's own).
function pieceLink(code) {
  const query = new URLSearchParams(location.search);
  const link = new URLSearchParams();
  if (query.get('bridge')) link.set('bridge', query.get('bridge'));
  link.set('code', code);
  return `${location.origin}${location.pathname}?${link}`;
}

// A link's `?code=`: once connected, a controller asks for that piece; a
// listener is told what the link names and what plays.
function followLink(params) {
  const wanted = new URLSearchParams(location.search).get('code');
  if (!wanted || state.linkFollowed) return;
  state.linkFollowed = true;
  if (params && params.code === wanted) return;
  if (state.role === 'controller') send({ type: 'select_piece', code: wanted });
  else say(`The link names ${wanted}; this stream plays ${(params && params.code) || 'another piece'} and only its controller can change it.`);
}

function setControlsEnabled(enabled, note) {
  for (const id of CONTROL_IDS) $(id).disabled = !enabled;
  $('control-note').textContent = note || '';
}
setControlsEnabled(false, 'Controls unlock once connected.');

function showParams(p) {
  if (!p) return;
  $('key').value = p.key;
  $('mode').value = p.mode;
  $('bpm').value = p.bpm; $('bpm-out').textContent = Math.round(p.bpm);
  $('intensity').value = p.intensity; $('intensity-out').textContent = Number(p.intensity).toFixed(2);
  if (p.preset) $('preset').value = p.preset;
  // The piece code (null from a source that does not know its seed), and a
  // link that opens this page on the same piece.
  $('piece-code').textContent = p.code || '–';
  $('copy-code').disabled = !p.code;
  $('copy-link').disabled = !p.code;
  $('piece-link').href = p.code ? pieceLink(p.code) : '';
  if ('mediaSession' in navigator) {
    navigator.mediaSession.metadata = new MediaMetadata({
      title: `Auralis — ${p.preset || 'custom'}`,
      artist: 'Auralis',
      album: `${p.key} ${p.mode}, ${Math.round(p.bpm)} BPM`,
    });
  }
}

// ---- audio graph ------------------------------------------------------------
async function ensureAudio(sampleRate) {
  if (state.ctx && state.ctx.sampleRate === sampleRate) return;
  if (state.ctx) await state.ctx.close();
  state.ctx = new AudioContext({ sampleRate, latencyHint: 'playback' });
  await state.ctx.audioWorklet.addModule('/worklet.js');
  state.node = new AudioWorkletNode(state.ctx, 'auralis-player', { outputChannelCount: [2] });
  state.gain = state.ctx.createGain();
  state.gain.gain.value = Number($('volume').value);
  state.analyser = state.ctx.createAnalyser();
  state.analyser.fftSize = 2048;
  state.analyser.smoothingTimeConstant = 0.85;
  state.node.connect(state.analyser);
  state.node.connect(state.gain).connect(state.ctx.destination);
  state.node.port.onmessage = (e) => { if (e.data.type === 'stats') onStats(e.data); };
  state.node.port.postMessage({ type: 'start', seconds: START_S });
  setTarget(state.targetS);
}

function setTarget(seconds) {
  state.targetS = Math.min(TARGET_MAX_S, Math.max(TARGET_MIN_S, seconds));
  if (state.node) state.node.port.postMessage({ type: 'target', seconds: state.targetS });
}

// How late chunks arrive against the stream's own clock: the spread of
// (arrival time - stream time) over the last minute is the stall the cushion
// must cover. The first seconds after connecting are left out, since a new
// listener is sent a burst of recent chunks at once.
function noteArrival(position, rate) {
  const now = performance.now();
  if (now - state.connectedAt < JITTER_SETTLE_MS || !rate) return;
  state.arrivals.push([now, now - (1000 * position) / rate]);
  while (state.arrivals.length && now - state.arrivals[0][0] > JITTER_WINDOW_MS) state.arrivals.shift();
  let lo = Infinity;
  let hi = -Infinity;
  for (const [, offset] of state.arrivals) { lo = Math.min(lo, offset); hi = Math.max(hi, offset); }
  state.jitterMs = hi - lo;
  const wanted = (1.5 * state.jitterMs) / 1000 + 0.5;
  if (wanted > state.targetS) setTarget(wanted);
}

// The cushion grows at once after an underrun or when the jitter asks for it,
// and shrinks back slowly once playback has been steady for a minute.
function onStats(s) {
  state.stats = s;
  const now = performance.now();
  if (s.underruns > state.lastUnderruns) {
    state.lastUnderruns = s.underruns;
    state.steadySince = now;
    setTarget(state.targetS + TARGET_GROW_S);
  } else if (now - state.steadySince > STEADY_BEFORE_SHRINK_S * 1000
      && state.targetS > Math.max(TARGET_MIN_S, (1.5 * state.jitterMs) / 1000 + 0.5)) {
    state.steadySince = now;
    setTarget(state.targetS - TARGET_SHRINK_S);
  }
  $('buffer').textContent = `${Math.round(s.bufferedMs)} ms`;
  state.bufferHistory.push(s.bufferedMs);
  if (state.bufferHistory.length > 120) state.bufferHistory.shift();
}

// ---- stream -----------------------------------------------------------------
// Which codec to ask for: Opus where WebCodecs decodes it, else s16.
async function chooseCodec() {
  if (typeof AudioDecoder === 'undefined') return 's16';
  try {
    const { supported } = await AudioDecoder.isConfigSupported({
      codec: 'opus', sampleRate: OPUS_RATE, numberOfChannels: 2,
    });
    return supported ? 'opus' : 's16';
  } catch { return 's16'; }
}

function pushChunk(left, right, gap) {
  state.node.port.postMessage({ type: 'chunk', left, right, gap }, [left.buffer, right.buffer]);
}

// One Opus decoder per connection: its output goes to the worklet in order.
function openDecoder() {
  closeDecoder();
  const decoder = new AudioDecoder({
    output: (data) => {
      const frames = data.numberOfFrames;
      const left = new Float32Array(frames);
      const right = new Float32Array(frames);
      data.copyTo(left, { planeIndex: 0, format: 'f32-planar' });
      data.copyTo(right, { planeIndex: data.numberOfChannels > 1 ? 1 : 0, format: 'f32-planar' });
      data.close();
      if (state.node) pushChunk(left, right, state.pendingGap);
      state.pendingGap = false;
    },
    error: (e) => {
      state.decodeErrors += 1;
      say(`Opus decoding failed (${e.message}); reconnecting…`);
      if (state.ws) state.ws.close(4000, 'decoder error');
    },
  });
  decoder.configure({ codec: 'opus', sampleRate: OPUS_RATE, numberOfChannels: 2 });
  state.decoder = decoder;
}

function closeDecoder() {
  if (state.decoder && state.decoder.state !== 'closed') state.decoder.close();
  state.decoder = null;
}

// The chunk's packets, each prefixed by its u16 length (codec 2).
function decodeOpus(buf, rate, position) {
  if (!state.decoder || state.decoder.state !== 'configured') return;
  const bytes = new Uint8Array(buf, HEADER_BYTES);
  const v = new DataView(buf, HEADER_BYTES);
  let at = 0;
  let t = (position / rate) * 1e6;
  while (at + 2 <= bytes.length) {
    const len = v.getUint16(at, true);
    if (at + 2 + len > bytes.length) break;
    state.decoder.decode(new EncodedAudioChunk({
      type: 'key', timestamp: Math.round(t), data: bytes.subarray(at + 2, at + 2 + len),
    }));
    at += 2 + len;
    t += 20000;
  }
}

function decodePcm(buf, v, codec, channels, frames) {
  const left = new Float32Array(frames);
  const right = new Float32Array(frames);
  const second = channels > 1 ? 1 : 0;
  if (codec === CODEC_F32) {
    const pcm = new Float32Array(buf.slice(HEADER_BYTES, HEADER_BYTES + frames * channels * 4));
    for (let i = 0; i < frames; i++) { left[i] = pcm[i * channels]; right[i] = pcm[i * channels + second]; }
  } else {
    for (let i = 0; i < frames; i++) {
      left[i] = v.getInt16(HEADER_BYTES + 2 * i * channels, true) / 32768;
      right[i] = v.getInt16(HEADER_BYTES + 2 * (i * channels + second), true) / 32768;
    }
  }
  return [left, right];
}

function onAudio(buf) {
  if (!state.node || buf.byteLength < HEADER_BYTES) return;
  const v = new DataView(buf);
  if (v.getUint32(0, false) !== MAGIC_AUR1) return;
  const codec = v.getUint8(5);
  const channels = v.getUint16(6, true);
  const rate = v.getUint32(8, true);
  const seq = Number(v.getBigUint64(12, true));
  const position = Number(v.getBigUint64(20, true));
  const frames = v.getUint32(36, true);
  const level = v.getUint8(40);
  if (channels < 1) return;
  if (codec !== CODEC_OPUS) {
    const bytesPerSample = codec === CODEC_F32 ? 4 : 2;
    if (buf.byteLength < HEADER_BYTES + frames * channels * bytesPerSample) return;
  }
  const gap = state.lastSeq !== null && seq !== state.lastSeq + 1;
  if (gap) state.gaps += seq - state.lastSeq - 1;
  state.lastSeq = seq;
  noteArrival(position, rate);
  $('level').textContent = LEVELS[level] || String(level);
  if (codec === CODEC_OPUS) {
    state.pendingGap = state.pendingGap || gap;
    decodeOpus(buf, rate, position);
    return;
  }
  const [left, right] = decodePcm(buf, v, codec, channels, frames);
  pushChunk(left, right, gap);
}

async function onText(text) {
  let msg;
  try { msg = JSON.parse(text); } catch { return; }
  switch (msg.type) {
    case 'hello':
      await ensureAudio(msg.format.sample_rate);
      if (state.codec === 'opus') openDecoder();
      $('codec').textContent = state.codec === 'opus' ? 'Opus (WebCodecs)' : 'PCM s16';
      state.role = msg.role;
      showParams(msg.params);
      if (msg.role === 'controller') setControlsEnabled(true);
      else setControlsEnabled(false, 'Listening only: open the page with ?token=… to steer the music.');
      say('Playing.');
      followLink(msg.params);
      break;
    case 'params': state.lastParams = msg.params; showParams(msg.params); break;
    case 'status':
      $('level').textContent = msg.level;
      $('clients').textContent = msg.clients;
      $('phrase').textContent = msg.phrase_index ?? '–';
      if (msg.state === 'idle') say('The source is idle: waiting for it to come back…');
      break;
    case 'ping': send({ type: 'pong' }); break;
    case 'error':
      state.lastError = msg;
      say(msg.field ? `${msg.message} (${msg.field})` : msg.message);
      break;
    default: break;
  }
}

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

async function connect() {
  if (!state.codec) state.codec = await chooseCodec();
  if (!state.playing) return;
  const query = new URLSearchParams(location.search);
  const token = query.get('token');
  // `?bridge=host:port` points a page served elsewhere at a bridge (development).
  const host = query.get('bridge') || location.host;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = `${scheme}://${host}/ws/stream?codec=${state.codec}${token ? `&token=${encodeURIComponent(token)}` : ''}`;
  $('conn').textContent = 'connecting';
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  ws.onopen = () => {
    $('conn').textContent = 'connected';
    state.backoffMs = BACKOFF_MIN_MS;
    state.connectedAt = performance.now();
    state.arrivals = [];
  };
  // Messages are handled strictly in order: `hello` sets up the audio graph
  // (asynchronously), and the burst of recent chunks the server sends right after
  // it must wait for that rather than be dropped. A handler that throws does not
  // stop the ones after it.
  let inbox = Promise.resolve();
  ws.onmessage = (e) => {
    inbox = inbox
      .then(() => (typeof e.data === 'string' ? onText(e.data) : onAudio(e.data)))
      .catch((err) => console.error('message handling failed', err));
  };
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    $('conn').textContent = 'disconnected';
    closeDecoder();
    setControlsEnabled(false, 'Controls unlock once connected.');
    state.lastSeq = null;
    if (!state.playing) return;
    if (e.code === 1008) {
      say(`The server is full: ${e.reason || 'too many listeners'}. Retrying…`);
    } else if (!navigator.onLine) {
      say('You are offline. Waiting for the network…');
    } else {
      say('Connection lost. Reconnecting…');
    }
    state.retry = setTimeout(connect, state.backoffMs);
    state.backoffMs = Math.min(BACKOFF_MAX_MS, state.backoffMs * 2);
  };
}

// ---- play / stop, sleep timer, media keys ---------------------------------------
async function play() {
  state.playing = true;
  $('play').textContent = 'Stop';
  $('play').setAttribute('aria-label', 'Stop (space bar)');
  if (state.ctx) {
    state.gain.gain.cancelScheduledValues(state.ctx.currentTime);
    state.gain.gain.value = Number($('volume').value);
    await state.ctx.resume();
  }
  armSleepTimer();
  if ('mediaSession' in navigator) navigator.mediaSession.playbackState = 'playing';
  say('Connecting…');
  connect();
}

function stop(message) {
  state.playing = false;
  $('play').textContent = 'Play';
  $('play').setAttribute('aria-label', 'Play (space bar)');
  clearTimeout(state.retry);
  clearTimeout(state.sleepTimer);
  state.sleepAt = null;
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close(1000);
  closeDecoder();
  $('conn').textContent = 'idle';
  if (state.node) state.node.port.postMessage({ type: 'reset' });
  if (state.ctx) state.ctx.suspend();
  if ('mediaSession' in navigator) navigator.mediaSession.playbackState = 'paused';
  say(message || 'Stopped.');
}

// The sleep timer fades the volume out over the last minute, then stops.
function armSleepTimer() {
  clearTimeout(state.sleepTimer);
  const minutes = Number($('sleep').value);
  state.sleepAt = minutes > 0 ? Date.now() + minutes * 60_000 : null;
  if (!state.sleepAt) return;
  const fadeIn = Math.max(0, state.sleepAt - Date.now() - SLEEP_FADE_S * 1000);
  state.sleepTimer = setTimeout(() => {
    if (state.ctx && state.gain) {
      const now = state.ctx.currentTime;
      state.gain.gain.setValueAtTime(state.gain.gain.value, now);
      state.gain.gain.linearRampToValueAtTime(0, now + SLEEP_FADE_S);
    }
    state.sleepTimer = setTimeout(() => stop('Sleep timer: good night.'), SLEEP_FADE_S * 1000);
  }, fadeIn);
}

$('play').onclick = () => (state.playing ? stop() : play());
document.addEventListener('keydown', (e) => {
  if (e.code === 'Space' && !['INPUT', 'SELECT', 'BUTTON'].includes(e.target.tagName)) {
    e.preventDefault();
    $('play').click();
  }
});
if ('mediaSession' in navigator) {
  navigator.mediaSession.setActionHandler('play', () => { if (!state.playing) play(); });
  navigator.mediaSession.setActionHandler('pause', () => { if (state.playing) stop(); });
  navigator.mediaSession.setActionHandler('stop', () => { if (state.playing) stop(); });
}
window.addEventListener('online', () => { if (state.playing && !state.ws) connect(); });

// ---- controls ---------------------------------------------------------------
$('volume').oninput = () => {
  if (state.gain && !state.sleepAt) state.gain.gain.value = Number($('volume').value);
  remember();
};
$('sleep').onchange = () => { remember(); if (state.playing) armSleepTimer(); };
$('preset').onchange = () => { remember(); send({ type: 'select_preset', preset: $('preset').value }); };
$('copy-code').onclick = () => {
  const code = $('piece-code').textContent;
  navigator.clipboard.writeText(code).then(
    () => say(`Copied ${code}: auralis-render --code ${code} bounces this piece.`),
    () => say(`Copy failed; the code is ${code}.`));
};
$('copy-link').onclick = () => {
  const link = $('piece-link').href;
  navigator.clipboard.writeText(link).then(
    () => say(`Copied a link to this piece: ${link}`),
    () => say(`Copy failed; the link is ${link}.`));
};
$('key').onchange = () => send({ type: 'update_params', key: $('key').value });
$('mode').onchange = () => send({ type: 'update_params', mode: $('mode').value });
$('bpm').oninput = () => { $('bpm-out').textContent = $('bpm').value; };
$('bpm').onchange = () => send({ type: 'update_params', bpm: Number($('bpm').value) });
$('intensity').oninput = () => { $('intensity-out').textContent = Number($('intensity').value).toFixed(2); };
$('intensity').onchange = () => send({ type: 'update_params', intensity: Number($('intensity').value) });

setInterval(() => {
  if (state.playing) {
    send({ type: 'client_stats', underruns: state.stats.underruns, buffered_ms: state.stats.bufferedMs });
  }
}, STATS_EVERY_MS);

// ---- drawing ----------------------------------------------------------------
function outputRms() {
  if (!state.analyser) return 0;
  const data = new Float32Array(state.analyser.fftSize);
  state.analyser.getFloatTimeDomainData(data);
  let sum = 0;
  for (const x of data) sum += x * x;
  return Math.sqrt(sum / data.length);
}

function drawScope() {
  const c = $('scope');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  if (state.analyser && state.playing) {
    const bins = new Uint8Array(state.analyser.frequencyBinCount);
    state.analyser.getByteFrequencyData(bins);
    const bars = 96;
    const w = c.width / bars;
    const grad = g.createLinearGradient(0, c.height, 0, 0);
    grad.addColorStop(0, 'rgba(159,184,255,0.15)');
    grad.addColorStop(1, 'rgba(199,166,255,0.85)');
    g.fillStyle = grad;
    for (let i = 0; i < bars; i++) {
      // Logarithmic frequency axis: low bins get more bars.
      const lo = Math.floor(Math.pow(bins.length, i / bars));
      const hi = Math.max(lo + 1, Math.floor(Math.pow(bins.length, (i + 1) / bars)));
      let peak = 0;
      for (let b = lo; b < hi && b < bins.length; b++) peak = Math.max(peak, bins[b]);
      const h = (peak / 255) * c.height;
      g.fillRect(i * w + 1, c.height - h, w - 2, h);
    }
  }
  const b = $('buffer-graph');
  const bg = b.getContext('2d');
  bg.clearRect(0, 0, b.width, b.height);
  const hist = state.bufferHistory;
  if (hist.length > 1) {
    const max = Math.max(1000, ...hist);
    bg.strokeStyle = 'rgba(159,184,255,0.9)';
    bg.beginPath();
    hist.forEach((ms, i) => {
      const x = (i / 119) * b.width;
      const y = b.height - (ms / max) * (b.height - 2) - 1;
      if (i === 0) bg.moveTo(x, y); else bg.lineTo(x, y);
    });
    bg.stroke();
    const ty = b.height - ((state.targetS * 1000) / max) * (b.height - 2) - 1;
    bg.strokeStyle = 'rgba(199,166,255,0.35)';
    bg.setLineDash([4, 4]);
    bg.beginPath(); bg.moveTo(0, ty); bg.lineTo(b.width, ty); bg.stroke();
    bg.setLineDash([]);
  }
  requestAnimationFrame(drawScope);
}
requestAnimationFrame(drawScope);

// For tests and for the curious: the player's state and output level.
window.auralisPlayer = { state, outputRms };

// "Keep this moment": saves the last minutes of the stream as the bridge renders
// them again (GET /api/recording), with the progress of the download, under the
// name the bridge gives (start time, seed and preset).
async function keepMoment() {
  const button = $('keep');
  const bar = $('keep-progress');
  const note = (text) => { $('keep-note').textContent = text; };
  const minutes = Number($('keep-minutes').value);
  const format = $('keep-format').value;
  button.disabled = true;
  try {
    const avail = await fetch('/api/recording/available').then((r) => r.json());
    if (avail.error) { note(avail.message); return; }
    const seconds = Math.max(1, Math.min(minutes * 60, Math.floor(avail.seconds)));
    if (seconds < minutes * 60) note(`only ${Math.round(seconds)} s so far: saving those`);
    const res = await fetch(`/api/recording?seconds=${seconds}&format=${format}`);
    if (!res.ok) {
      const body = await res.json().catch(() => ({ message: res.statusText }));
      note(body.message || `error ${res.status}`);
      return;
    }
    const total = Number(res.headers.get('content-length') || res.headers.get('x-auralis-expected-bytes') || 0);
    const name = (/filename="([^"]+)"/.exec(res.headers.get('content-disposition') || '') || [])[1]
      || `auralis.${format}`;
    bar.hidden = false;
    bar.value = 0;
    const reader = res.body.getReader();
    const parts = [];
    let got = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      got += value.length;
      if (total > 0) bar.value = Math.min(1, got / total);
      note(`rendering… ${(got / 1e6).toFixed(1)} MB`);
    }
    const url = URL.createObjectURL(new Blob(parts, { type: res.headers.get('content-type') || '' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    bar.value = 1;
    note(`saved ${name}`);
  } catch (e) {
    // A broken-off transfer lands here: nothing is saved.
    note(`the recording failed: ${e.message || e}`);
  } finally {
    button.disabled = false;
    setTimeout(() => { bar.hidden = true; }, 3000);
  }
}
$('keep').addEventListener('click', keepMoment);
