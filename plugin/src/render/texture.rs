//! The texture layer of the real-time renderer: each phrase's pre-rendered texture
//! ([`crate::prerender`]) played in place of the fallback pad.
//!
//! - **Replace, fall back**: while a good texture of the playing phrase is in hand
//!   it is heard and the pad is not; when there is none (cold start, a seek, a
//!   late or silent texture, the texture switched off) the pad plays. Between the
//!   two the layer crossfades with equal power (`sin`/`cos` of a linear position)
//!   over [`TEXTURE_FADE_MS`], starting at the next control tick.
//! - **Phrase boundaries**: a texture carries a tail past its phrase's end (its
//!   last chord's release, [`crate::prerender::texture_frames`]); the tail of
//!   phrase `k` overlaps the start of phrase `k + 1`, whose chords swell in from
//!   silence, exactly as chords overlap inside a phrase, so nothing is cut.
//! - **Seek**: what plays fades out (it keeps playing while it fades), the pad
//!   carries, and the new phrase's texture fades in when it arrives.
//! - **Overload loop**: replaying a phrase replays its texture: the texture's tail
//!   overlaps its own start, from the same buffer.
//!
//! Textures come from a [`TextureFeed`] and go back to it: the layer holds at most
//! [`SLOTS`] and never allocates or frees. In offline mode it waits for each
//! phrase's texture ([`TextureFeed::take_blocking`]); in real time it never waits.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::journal::{JournalEvent, JournalWriter};
use super::ramp::{Ramp, CONTROL_FRAMES};
use super::RenderMode;
use crate::compose::phrase::{ComposeParams, Phrase};
use crate::prerender::{Texture, TextureFeed, TextureKey, TextureKind};

/// How long the texture takes to replace the pad, or the pad the texture, in ms.
pub const TEXTURE_FADE_MS: f32 = 300.0;
/// Gain that makes a texture as loud as the pad it replaces (measured over every
/// preset: see `texture_is_as_loud_as_the_pad` in the tests).
pub const TEXTURE_TRIM: f32 = 0.83;
/// Textures the layer may hold: the playing phrase's, the previous phrase's tail
/// and one spare for a tail that outlives a much shorter next phrase.
const SLOTS: usize = 3;
/// The longest an offline render waits for one texture.
const OFFLINE_WAIT: Duration = Duration::from_secs(600);

/// What the layer tells the engine, lock-free (written by the audio thread).
#[derive(Debug)]
pub struct TextureTelemetry {
    /// Seconds of texture ready ahead of the playhead (`f32` bits; NaN: none).
    margin_bits: AtomicU32,
    /// Length of the playing phrase in seconds (`f32` bits).
    phrase_bits: AtomicU32,
    /// Whether a texture is heard now.
    audible: AtomicBool,
}

impl Default for TextureTelemetry {
    fn default() -> Self {
        Self {
            margin_bits: AtomicU32::new(f32::NAN.to_bits()),
            phrase_bits: AtomicU32::new(0),
            audible: AtomicBool::new(false),
        }
    }
}

impl TextureTelemetry {
    /// Seconds of texture ready ahead of the playhead: the rest of the playing
    /// phrase's texture, plus the next phrase's when it has arrived. `None` when
    /// nothing is expected: the texture is off, or none has come since the start
    /// or the last seek (the pad carries then by design).
    #[must_use]
    pub fn margin_s(&self) -> Option<f32> {
        let m = f32::from_bits(self.margin_bits.load(Ordering::Relaxed));
        m.is_finite().then_some(m)
    }

    /// Length of the playing phrase in seconds (0 before the first): the next
    /// texture is asked for when a phrase starts, so a margin of a good part of a
    /// phrase is normal.
    #[must_use]
    pub fn phrase_s(&self) -> f32 {
        f32::from_bits(self.phrase_bits.load(Ordering::Relaxed))
    }

    /// Whether a texture is heard now.
    #[must_use]
    pub fn audible(&self) -> bool {
        self.audible.load(Ordering::Relaxed)
    }

    fn publish(&self, margin_s: Option<f32>, phrase_s: f32, audible: bool) {
        self.margin_bits
            .store(margin_s.unwrap_or(f32::NAN).to_bits(), Ordering::Relaxed);
        self.phrase_bits
            .store(phrase_s.to_bits(), Ordering::Relaxed);
        self.audible.store(audible, Ordering::Relaxed);
    }
}

/// A texture playing: which slot, and the absolute frame of its first sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Play {
    slot: usize,
    start: i64,
}

/// The phrase whose texture is wanted now.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Want {
    index: u64,
    params: ComposeParams,
    /// Absolute frame where the phrase starts.
    start: i64,
    /// The phrase's length in frames.
    frames: u64,
    /// Its texture came (rendered, or silent after every retry).
    delivered: bool,
}

/// A texture layer's state at a frame, its textures kept as their keys (see
/// [`crate::render::RendererCheckpoint`]).
#[derive(Debug, Clone)]
pub struct LayerCheckpoint {
    slots: [Option<TextureKey>; SLOTS],
    current: Option<Play>,
    tail: Option<Play>,
    want: Option<Want>,
    enabled: bool,
    draining: bool,
    fresh: bool,
    primed: bool,
    looping: bool,
    mix: f32,
    texture_gain: Ramp,
    pad_gain: Ramp,
    now: i64,
}

impl LayerCheckpoint {
    /// The keys of the textures held, slot by slot.
    #[must_use]
    pub fn keys(&self) -> Vec<TextureKey> {
        self.slots.iter().flatten().copied().collect()
    }
}

/// The texture layer. Built off the audio thread; nothing here allocates.
#[derive(Debug)]
pub struct TextureLayer {
    feed: TextureFeed,
    mode: RenderMode,
    sample_rate: f32,
    slots: [Option<Texture>; SLOTS],
    /// The playing phrase's texture.
    current: Option<Play>,
    /// The previous phrase's texture, ringing out past its end.
    tail: Option<Play>,
    want: Option<Want>,
    /// The level lets the texture be heard.
    enabled: bool,
    /// A seek: fade out what plays before taking new textures.
    draining: bool,
    /// Nothing has sounded since the start or a reset: a texture in hand may
    /// start at full level (offline renders have the texture from frame 0).
    fresh: bool,
    /// A texture has been taken since the start, the last seek or the last time
    /// the texture was off: from then on a missing texture is late.
    primed: bool,
    /// The playing phrase loops (overload).
    looping: bool,
    /// Crossfade position, 0 (pad) to 1 (texture), at control rate.
    mix: f32,
    /// `mix` change per control tick.
    mix_step: f32,
    texture_gain: Ramp,
    pad_gain: Ramp,
    telemetry: Arc<TextureTelemetry>,
    /// Where each texture taken is recorded, when a recording wants it.
    journal: Option<JournalWriter>,
    /// The renderer's frame when the layer was last told ([`TextureLayer::at`],
    /// control ticks), for the journal.
    now: i64,
}

impl TextureLayer {
    /// A layer taking textures from `feed`, publishing into `telemetry`.
    #[must_use]
    pub fn new(
        feed: TextureFeed,
        mode: RenderMode,
        sample_rate: f32,
        telemetry: Arc<TextureTelemetry>,
    ) -> Self {
        Self {
            feed,
            mode,
            sample_rate,
            slots: std::array::from_fn(|_| None),
            current: None,
            tail: None,
            want: None,
            enabled: true,
            draining: false,
            fresh: true,
            primed: false,
            looping: false,
            mix: 0.0,
            mix_step: CONTROL_FRAMES as f32 / (TEXTURE_FADE_MS * 1e-3 * sample_rate),
            texture_gain: Ramp::new(0.0),
            pad_gain: Ramp::new(1.0),
            telemetry,
            journal: None,
            now: 0,
        }
    }

    /// Its state now; `None` when a texture it holds has no key.
    pub(crate) fn checkpoint(&self) -> Option<LayerCheckpoint> {
        let mut slots = [None; SLOTS];
        for (key, slot) in slots.iter_mut().zip(&self.slots) {
            if let Some(t) = slot {
                *key = Some(*t.key()?);
            }
        }
        Some(LayerCheckpoint {
            slots,
            current: self.current,
            tail: self.tail,
            want: self.want,
            enabled: self.enabled,
            draining: self.draining,
            fresh: self.fresh,
            primed: self.primed,
            looping: self.looping,
            mix: self.mix,
            texture_gain: self.texture_gain,
            pad_gain: self.pad_gain,
            now: self.now,
        })
    }

    /// Puts the layer (holding nothing) in the state `cp` holds, each texture
    /// made again by `texture` from its key.
    pub(crate) fn restore<E>(
        &mut self,
        cp: &LayerCheckpoint,
        mut texture: impl FnMut(&TextureKey) -> Result<Texture, E>,
    ) -> Result<(), E> {
        for (slot, key) in self.slots.iter_mut().zip(&cp.slots) {
            if let Some(key) = key {
                *slot = Some(texture(key)?);
            }
        }
        self.current = cp.current;
        self.tail = cp.tail;
        self.want = cp.want;
        self.enabled = cp.enabled;
        self.draining = cp.draining;
        self.fresh = cp.fresh;
        self.primed = cp.primed;
        self.looping = cp.looping;
        self.mix = cp.mix;
        self.texture_gain = cp.texture_gain;
        self.pad_gain = cp.pad_gain;
        self.now = cp.now;
        Ok(())
    }

    /// The renderer is at absolute frame `position` (the journal's clock; the
    /// control ticks set it too).
    pub(crate) fn at(&mut self, position: i64) {
        self.now = position;
    }

    /// Records every texture taken from now on in `journal`.
    pub(crate) fn set_journal(&mut self, journal: JournalWriter) {
        self.journal = Some(journal);
    }

    /// Lets the texture be heard (`true`) or fades it out (`false`; the pad
    /// carries). The texture in hand is kept, so switching back is immediate;
    /// textures are not asked for while it is off, so the margin counts again
    /// only from the next texture taken.
    pub fn set_enabled(&mut self, enabled: bool) {
        if !enabled {
            self.primed = false;
        }
        self.enabled = enabled;
    }

    /// Whether phrase `index`'s texture has arrived (it stays for the phrase).
    /// Never blocks or allocates.
    pub fn is_ready(&mut self, index: u64) -> bool {
        self.feed.is_ready(index)
    }

    /// Waits for each texture (offline) or never (real time) from now on.
    pub fn set_mode(&mut self, mode: RenderMode) {
        self.mode = mode;
    }

    /// Whether the playing phrase loops (overload): its own texture is then
    /// the next one, always ready.
    pub fn set_looping(&mut self, looping: bool) {
        self.looping = looping;
    }

    /// Phrase `phrase` starts at absolute frame `start` and lasts `frames`: the
    /// previous texture becomes the tail and this phrase's is taken (offline:
    /// waited for) — or, when the phrase replays (the overload loop), its own
    /// texture plays again.
    pub fn phrase_started(&mut self, phrase: &Phrase, start: i64, frames: u64) {
        if let Some(old) = self.tail.take() {
            // A tail still ringing at the next boundary (a phrase much shorter than
            // the one before): it has its own slot, unless the playing texture
            // shares it.
            if self.current.map(|c| c.slot) != Some(old.slot) {
                self.release_slot(old.slot);
            }
        }
        self.tail = self.current.take();
        self.want = Some(Want {
            index: phrase.index,
            params: phrase.params,
            start,
            frames,
            delivered: false,
        });
        if !self.draining {
            self.acquire();
        }
    }

    /// A jump of the song position: whatever plays fades out (the pad carries),
    /// and textures that arrived for the old position are given back. Before
    /// anything has sounded there is nothing to fade: the layer stays fresh, so
    /// a jump (or a parameter change) before the first block changes nothing
    /// but the phrase.
    pub fn seek(&mut self) {
        self.want = None;
        self.feed.flush();
        self.draining = !self.fresh;
        self.primed = false;
    }

    /// Rewinds for a restart of the playing phrase at frame 0: its texture, if
    /// in hand, restarts with it at full level; the tail goes back.
    pub fn reset(&mut self) {
        if let Some(tail) = self.tail.take() {
            self.release_play(tail);
        }
        self.draining = false;
        self.fresh = true;
        if let Some(want) = self.want.as_mut() {
            want.start = 0;
        }
        if let Some(current) = self.current.as_mut() {
            current.start = 0;
        }
        let on = self.enabled && self.current.is_some();
        self.mix = if on { 1.0 } else { 0.0 };
        let (t, p) = crossfade_gains(self.mix);
        self.texture_gain.jump(t);
        self.pad_gain.jump(p);
    }

    /// Takes the wanted phrase's texture if it is here (offline: waits for it).
    fn acquire(&mut self) {
        if self.want.as_ref().is_none_or(|w| w.delivered) || self.replay_tail() {
            return;
        }
        let Some(slot) = self.slots.iter().position(Option::is_none) else {
            return;
        };
        let Some((texture, start)) = self.take_wanted() else {
            return;
        };
        // Taken while the texture is off, it may be the last one asked for.
        self.primed |= self.enabled;
        if matches!(texture.kind(), TextureKind::Silence) {
            // Every retry failed: the pad carries this phrase.
            self.feed.give_back(texture);
            return;
        }
        self.slots[slot] = Some(texture);
        self.current = Some(Play { slot, start });
        if self.fresh && self.enabled {
            // Nothing has sounded yet: start with the texture.
            self.mix = 1.0;
            self.texture_gain.jump(1.0);
            self.pad_gain.jump(0.0);
        }
    }

    /// The overload loop: plays the texture still in hand again when it is the
    /// wanted phrase's own; returns whether it did.
    fn replay_tail(&mut self) -> bool {
        let (Some(tail), Some(want)) = (self.tail, self.want.as_mut()) else {
            return false;
        };
        let same = self.slots[tail.slot]
            .as_ref()
            .is_some_and(|t| t.phrase_index() == want.index && t.params() == &want.params);
        if same {
            want.delivered = true;
            self.primed |= self.enabled;
            self.current = Some(Play {
                slot: tail.slot,
                start: want.start,
            });
        }
        same
    }

    /// Takes the wanted phrase's texture (offline: waits for it), marking it
    /// delivered, with the frame its phrase starts at; textures of an older
    /// composition of the phrase go back.
    fn take_wanted(&mut self) -> Option<(Texture, i64)> {
        let want = self.want.as_mut()?;
        loop {
            let texture = match self.mode {
                RenderMode::RealTime => self.feed.take(want.index),
                RenderMode::Offline => self.feed.take_blocking(want.index, OFFLINE_WAIT),
            };
            let Some(texture) = texture else {
                if self.mode == RenderMode::Offline {
                    // The pre-renderer has gone: nothing more will come.
                    want.delivered = true;
                }
                return None;
            };
            if texture.params() == &want.params {
                want.delivered = true;
                if let Some(journal) = self.journal.as_mut() {
                    let frame = u64::try_from(self.now).unwrap_or(0);
                    journal.record(match texture.key() {
                        Some(&key) => JournalEvent::Texture { frame, key },
                        None => JournalEvent::UnkeyedTexture { frame },
                    });
                }
                return Some((texture, want.start));
            }
            // Rendered before the phrase was composed again: its newer texture
            // is on the way.
            self.feed.give_back(texture);
        }
    }

    fn release_slot(&mut self, slot: usize) {
        if let Some(t) = self.slots[slot].take() {
            self.feed.give_back(t);
        }
    }

    fn release_play(&mut self, play: Play) {
        let shared = [self.current, self.tail]
            .into_iter()
            .flatten()
            .any(|p| p.slot == play.slot);
        if !shared {
            self.release_slot(play.slot);
        }
    }

    /// The control tick at absolute frame `position`: takes a late texture, lets
    /// go of finished ones and moves the crossfade.
    pub fn control_tick(&mut self, position: i64) {
        self.now = position;
        self.fresh = false;
        if self.draining && self.mix == 0.0 {
            // Faded out after a seek: give everything back, start afresh.
            for play in [self.current.take(), self.tail.take()]
                .into_iter()
                .flatten()
            {
                self.release_play(play);
            }
            self.draining = false;
        }
        if !self.draining {
            self.acquire();
        }
        if let Some(tail) = self.tail {
            let ended = self.slots[tail.slot]
                .as_ref()
                .is_none_or(|t| position >= tail.start + t.frames() as i64);
            if ended || self.mix == 0.0 {
                self.tail = None;
                self.release_play(tail);
            }
        }
        let target = self.enabled && !self.draining && self.current.is_some();
        let next = if target {
            (self.mix + self.mix_step).min(1.0)
        } else {
            (self.mix - self.mix_step).max(0.0)
        };
        let (t, p) = crossfade_gains(next);
        if next != self.mix {
            self.mix = next;
            self.texture_gain.set_target(t, CONTROL_FRAMES);
            self.pad_gain.set_target(p, CONTROL_FRAMES);
        } else if self.texture_gain.step() != 0.0 || self.pad_gain.step() != 0.0 {
            // The last ramp has arrived (up to rounding): settle exactly, so a
            // silent side can be skipped.
            self.texture_gain.jump(t);
            self.pad_gain.jump(p);
        }
    }

    /// Whether the pad is silent for the whole next span (it need not be rendered).
    #[must_use]
    pub fn pad_muted(&self) -> bool {
        self.pad_gain.value() == 0.0 && self.pad_gain.step() == 0.0
    }

    /// Writes the texture (scaled by its crossfade gain) into `left`/`right` and
    /// the pad's crossfade gain into `pad_gain`, for the span of `left.len()`
    /// frames (no control tick inside) starting at absolute frame `position`.
    pub fn render(
        &mut self,
        position: i64,
        left: &mut [f32],
        right: &mut [f32],
        pad_gain: &mut [f32],
    ) {
        let n = left.len().min(right.len()).min(pad_gain.len());
        let silent = self.texture_gain.value() == 0.0 && self.texture_gain.step() == 0.0;
        if self.pad_gain.step() == 0.0 {
            pad_gain[..n].fill(self.pad_gain.value());
        } else {
            for g in &mut pad_gain[..n] {
                *g = self.pad_gain.tick();
            }
        }
        left[..n].fill(0.0);
        right[..n].fill(0.0);
        if silent {
            return;
        }
        for play in [self.current, self.tail].into_iter().flatten() {
            let Some(texture) = self.slots[play.slot].as_ref() else {
                continue;
            };
            add_span(
                texture,
                position - play.start,
                &mut left[..n],
                &mut right[..n],
            );
        }
        let constant = self.texture_gain.step() == 0.0;
        for (l, r) in left[..n].iter_mut().zip(&mut right[..n]) {
            let g = TEXTURE_TRIM
                * if constant {
                    self.texture_gain.value()
                } else {
                    self.texture_gain.tick()
                };
            *l *= g;
            *r *= g;
        }
    }

    /// Publishes the margin and whether a texture is heard, for the monitor and
    /// the status (once per block: a look at the feed and two atomic stores).
    pub fn publish(&mut self, position: i64) {
        let audible = self.mix > 0.0 && (self.current.is_some() || self.tail.is_some());
        let margin = match self.want {
            Some(want) if self.enabled && self.primed && !self.draining => {
                let end = want.start + want.frames as i64;
                let mut frames = if want.delivered {
                    (end - position).max(0)
                } else {
                    0
                };
                let next_ready = if self.looping {
                    self.current.is_some()
                } else {
                    self.feed.is_ready(want.index + 1)
                };
                if want.delivered && next_ready {
                    frames += want.frames as i64;
                }
                Some(frames as f32 / self.sample_rate)
            }
            _ => None,
        };
        let phrase_s = self
            .want
            .map_or(0.0, |w| w.frames as f32 / self.sample_rate);
        self.telemetry.publish(margin, phrase_s, audible);
    }
}

/// Equal-power gains of the texture and the pad at crossfade position `mix`
/// (exactly 0 and 1 at the ends).
fn crossfade_gains(mix: f32) -> (f32, f32) {
    if mix >= 1.0 {
        (1.0, 0.0)
    } else if mix <= 0.0 {
        (0.0, 1.0)
    } else {
        let angle = mix * std::f32::consts::FRAC_PI_2;
        (angle.sin(), angle.cos())
    }
}

/// Adds the frames of `texture` from `offset` on (frames outside it are silence)
/// to `left`/`right`.
fn add_span(texture: &Texture, offset: i64, left: &mut [f32], right: &mut [f32]) {
    let n = left.len() as i64;
    let len = texture.frames() as i64;
    let from = offset.clamp(0, len);
    let to = (offset + n).clamp(0, len);
    if from >= to {
        return;
    }
    let skip = (from - offset) as usize;
    let (from, to) = (from as usize, to as usize);
    let count = to - from;
    for ((o, s), (p, q)) in left[skip..skip + count]
        .iter_mut()
        .zip(&texture.left()[from..to])
        .zip(
            right[skip..skip + count]
                .iter_mut()
                .zip(&texture.right()[from..to]),
        )
    {
        *o += *s;
        *p += *q;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::presets::PRESETS;
    use crate::compose::Composer;
    use crate::prerender::cpu::CpuRenderer;
    use crate::prerender::{texture_frames, Quality, TextureDesc};
    use crate::render::pad::PadBank;

    const SR: f32 = 16_000.0;

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// The pad and the texture of phrases of every preset, as levels in dB.
    fn levels_db() -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for preset in &PRESETS {
            let composer = Composer::new(3, preset.compose);
            let mut pad = PadBank::new(SR, 1);
            let mut prev = None;
            for index in 0..3 {
                let phrase = composer.compose(index, prev);
                prev = Some(phrase.last_degree());
                let frames = crate::prerender::phrase_frames(&phrase, SR);
                let spb = f64::from(SR) * 60.0 / f64::from(phrase.params.bpm);
                let (mut pl, mut pr) = (vec![0.0; frames], vec![0.0; frames]);
                let mut next = 0;
                for start in (0..frames).step_by(CONTROL_FRAMES) {
                    while let Some(e) = phrase.chords.get(next) {
                        if (e.start_beat * spb).round() as usize > start {
                            break;
                        }
                        pad.set_chord(&e.chord, 1.0, CONTROL_FRAMES);
                        next += 1;
                    }
                    pad.control_tick();
                    let end = (start + CONTROL_FRAMES).min(frames);
                    pad.render(&mut pl[start..end], &mut pr[start..end]);
                }
                let desc = TextureDesc::build(3, &phrase, SR, Quality::FULL);
                let n = texture_frames(&phrase, SR);
                let (mut tl, mut tr) = (vec![0.0; n], vec![0.0; n]);
                CpuRenderer::new()
                    .render(&desc, &mut tl, &mut tr)
                    .expect("fits");
                let db =
                    |l: &[f32], r: &[f32]| 10.0 * ((rms(l).powi(2) + rms(r).powi(2)) / 2.0).log10();
                // Skip the first phrase's attack, where the pad is still swelling.
                if index > 0 {
                    out.push((
                        db(&pl, &pr),
                        db(&tl[..frames], &tr[..frames]) + 20.0 * f64::from(TEXTURE_TRIM).log10(),
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn texture_is_as_loud_as_the_pad() {
        let levels = levels_db();
        for (pad, texture) in &levels {
            assert!(
                (texture - pad).abs() < 1.5,
                "a phrase's texture at {texture:.2} dB, its pad at {pad:.2} dB"
            );
        }
        let mean = levels.iter().map(|(p, t)| t - p).sum::<f64>() / levels.len() as f64;
        assert!(mean.abs() < 0.5, "texture is {mean:.2} dB from the pad");
    }
}
