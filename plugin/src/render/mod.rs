//! The real-time block renderer: plays phrases through the pad, melody and
//! percussion voices, sends them through delay and reverb, and masters the sum,
//! following the form's slow drifts ([`drift`]) on the way.
//!
//! `process()` renders any number of frames without allocating, freeing, locking or
//! blocking (offline mode alone may wait for the composer). Work is split into spans
//! of at most [`CONTROL_FRAMES`] frames that end at control ticks (aligned to the
//! absolute position) and at event sample offsets, so the output is the same however
//! a host slices its blocks.

pub mod drift;
pub mod feed;
pub mod journal;
pub mod melody;
pub mod mix;
pub mod notes;
pub mod pad;
pub mod percussion;
pub mod ramp;
pub mod texture;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use self::drift::{DriftStage, REVERB_DECAY_S};
use self::feed::PhraseFeed;
use self::journal::{journal, JournalEvent, JournalReader, JournalWriter};
use self::melody::MelodyVoices;
use self::mix::MixLevels;
use self::notes::{percussion_key, percussion_slot, NoteLog, NoteOut, Part, MELODY_SLOT};
use self::pad::PadBank;
use self::percussion::Percussion;
use self::ramp::{Ramp, CONTROL_FRAMES};
use self::texture::{LayerCheckpoint, TextureLayer};
use crate::compose::form::{Drift, LayerGains};
use crate::compose::phrase::{PercEvent, PercKind, Phrase};
use crate::degrade::Level;
use crate::dsp::dc_blocker::{DcBlocker, DEFAULT_CUTOFF_HZ as DC_CUTOFF_HZ};
use crate::dsp::delay::{DelayParams, StereoDelay};
use crate::dsp::glide::Glide;
use crate::dsp::limiter::{Limiter, LimiterParams};
use crate::dsp::reverb::{Reverb, ReverbParams};
use crate::dsp::{db_to_gain, flush_tiny};
use crate::prerender::{Texture, TextureKey};

/// Lowest supported sample rate, in hertz.
pub const MIN_SAMPLE_RATE: f32 = 8_000.0;
/// Highest supported sample rate, in hertz.
pub const MAX_SAMPLE_RATE: f32 = 768_000.0;
/// How long a level change takes, in milliseconds.
const LEVEL_SMOOTHING_MS: f32 = 40.0;
/// Master-bus gain that puts the presets at about -18 LUFS (integrated over
/// their sections, whose pad levels average about 3.5 dB under unity).
const MASTER_TRIM: f32 = 2.3;
/// Reverb return level at a send of 1.
const REVERB_RETURN: f32 = 0.9;
/// The velocity the pad plays chords with (and chord notes are logged with).
const CHORD_VELOCITY: f32 = 1.0;
/// The shortest logged percussion note, in beats: a kick's length, and a
/// swell's when its rise is shorter.
const PERCUSSION_NOTE_BEATS: f64 = 0.25;

/// One span of one channel of a bus.
type Bus = [f32; CONTROL_FRAMES];

/// A span's layers after their gains, left and right: the dry bus and the delay
/// and reverb sends.
struct Sends {
    dry: [Bus; 2],
    delay: [Bus; 2],
    reverb: [Bus; 2],
}

/// Whether the renderer may wait for the composer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenderMode {
    /// Never wait: if a phrase is late the current chord sustains until it comes.
    #[default]
    RealTime,
    /// Wait for every phrase so the result is complete and reproducible.
    Offline,
}

/// The phrase being played and where its next events are.
#[derive(Debug, Clone)]
struct Playback {
    phrase: Phrase,
    /// Absolute frame at which the phrase began (before frame 0 when a seek
    /// starts the piece in the middle of a phrase).
    start: i64,
    samples_per_beat: f64,
    /// Length in frames.
    frames: u64,
    next_chord: usize,
    next_note: usize,
    next_perc: usize,
}

impl Playback {
    fn new(phrase: Phrase, start: i64, sample_rate: f32) -> Self {
        let samples_per_beat = f64::from(sample_rate) * 60.0 / f64::from(phrase.params.bpm);
        let frames = (phrase.beats() * samples_per_beat).round() as u64;
        Self {
            phrase,
            start,
            samples_per_beat,
            frames: frames.max(1),
            next_chord: 0,
            next_note: 0,
            next_perc: 0,
        }
    }

    fn at(&self, beat: f64) -> i64 {
        self.start + (beat * self.samples_per_beat).round() as i64
    }

    fn end(&self) -> i64 {
        self.start + self.frames as i64
    }

    /// The phrase's layer gains at absolute frame `position` (its form's fade).
    fn form_gains(&self, position: i64) -> LayerGains {
        self.phrase.form.gains_at(self.beat(position))
    }

    /// The phrase's drifts at absolute frame `position`.
    fn form_drift(&self, position: i64) -> Drift {
        self.phrase.form.drift_at(self.beat(position))
    }

    /// Beats into the phrase at absolute frame `position`.
    fn beat(&self, position: i64) -> f64 {
        (position - self.start) as f64 / self.samples_per_beat
    }

    /// Skips the events before `position` (a phrase started in its middle): the
    /// chord sounding at `position` is kept so it is played at once.
    fn skip_to(&mut self, position: i64) {
        let p = &self.phrase;
        let chords_before = p
            .chords
            .iter()
            .take_while(|e| self.at(e.start_beat) <= position)
            .count();
        self.next_chord = chords_before.saturating_sub(1);
        self.next_note = p
            .melody
            .iter()
            .take_while(|e| self.at(e.start_beat) < position)
            .count();
        self.next_perc = p
            .percussion
            .iter()
            .take_while(|e| self.at(e.start_beat) < position)
            .count();
    }

    /// The earliest pending event (or the phrase end).
    fn next_event(&self) -> i64 {
        let p = &self.phrase;
        let chord = p.chords.get(self.next_chord).map(|e| self.at(e.start_beat));
        let note = p.melody.get(self.next_note).map(|e| self.at(e.start_beat));
        let perc = p
            .percussion
            .get(self.next_perc)
            .map(|e| self.at(e.start_beat));
        [chord, note, perc]
            .into_iter()
            .flatten()
            .fold(self.end(), i64::min)
    }
}

/// A jump of the song position waiting for its phrase: phrase `index` plays as if
/// it had started `offset_beats` before the frame `anchor`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seek {
    index: u64,
    offset_beats: f64,
    anchor: u64,
    /// Phrase length and tempo expected for the phrase, for the beat position
    /// until it arrives.
    phrase_beats: f64,
    samples_per_beat: f64,
}

/// Where a renderer is to jump: phrase `index`, `offset_beats` into it, composed
/// with `phrase_beats` beats per phrase at `bpm`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeekTarget {
    /// The phrase to play.
    pub index: u64,
    /// Beats into it, from 0 to one phrase.
    pub offset_beats: f64,
    /// Length of a phrase in beats (for the beat position until it arrives).
    pub phrase_beats: f64,
    /// Tempo of the phrase in BPM (likewise).
    pub bpm: f32,
}

/// Per-sample smoothed copies of the mix levels.
#[derive(Debug, Clone)]
struct Levels {
    glides: [Glide; Self::COUNT],
    ramps: [Ramp; Self::COUNT],
}

impl Levels {
    const PAD: usize = 0;
    const MELODY: usize = 1;
    const PERCUSSION: usize = 2;
    const REVERB: usize = 3;
    const DELAY: usize = 4;
    const MASTER: usize = 5;
    const COUNT: usize = 6;

    fn targets(levels: &MixLevels) -> [f32; Self::COUNT] {
        [
            levels.pad,
            levels.melody,
            levels.percussion,
            levels.reverb,
            levels.delay,
            db_to_gain(levels.master_gain_db),
        ]
    }

    fn new(control_rate: f32, levels: &MixLevels) -> Self {
        let t = Self::targets(levels);
        Self {
            glides: t.map(|v| Glide::new(control_rate, LEVEL_SMOOTHING_MS, v)),
            ramps: t.map(Ramp::new),
        }
    }

    fn set(&mut self, levels: &MixLevels) {
        for (g, t) in self.glides.iter_mut().zip(Self::targets(levels)) {
            g.set_target(t);
        }
    }

    fn jump(&mut self, levels: &MixLevels) {
        for ((g, r), t) in self
            .glides
            .iter_mut()
            .zip(&mut self.ramps)
            .zip(Self::targets(levels))
        {
            g.jump(t);
            r.jump(t);
        }
    }

    /// Writes the next `n` per-sample values of every level into `out`.
    fn fill(&mut self, out: &mut [[f32; CONTROL_FRAMES]; Self::COUNT], n: usize) {
        for (ramp, values) in self.ramps.iter_mut().zip(out.iter_mut()) {
            if ramp.step() == 0.0 {
                values[..n].fill(ramp.value());
            } else {
                for v in &mut values[..n] {
                    *v = ramp.tick();
                }
            }
        }
    }

    fn control_tick(&mut self) {
        for (g, r) in self.glides.iter_mut().zip(&mut self.ramps) {
            if g.is_gliding() {
                r.set_target(g.process(), CONTROL_FRAMES);
            } else if r.step() != 0.0 {
                // The last ramp has arrived (up to rounding): settle exactly.
                r.jump(g.value());
            }
        }
    }
}

/// A renderer's whole state at a frame, without its feeds: what a replay
/// restores to start there ([`Renderer::checkpoint`]). The textures it held
/// are kept as their keys.
#[derive(Debug, Clone)]
pub struct RendererCheckpoint {
    quality: Level,
    playback: Option<Playback>,
    next_index: u64,
    seek: Option<Seek>,
    position: u64,
    note_off_at: Option<u64>,
    pads: PadBank,
    melody: MelodyVoices,
    percussion: Percussion,
    delay: StereoDelay,
    reverb: Reverb,
    limiter: Limiter,
    dc: DcBlocker,
    levels: Levels,
    mix: MixLevels,
    form: LayerGains,
    drift: DriftStage,
    texture: Option<LayerCheckpoint>,
}

impl RendererCheckpoint {
    /// The frame it was taken at.
    #[must_use]
    pub const fn position(&self) -> u64 {
        self.position
    }

    /// Bytes it holds: itself, the delay and reverb lines and the phrase's
    /// events.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        let phrase = self.playback.as_ref().map_or(0, |p| {
            size_of_val(p.phrase.chords.as_slice())
                + size_of_val(p.phrase.melody.as_slice())
                + size_of_val(p.phrase.percussion.as_slice())
        });
        size_of::<Self>() + self.delay.heap_bytes() + self.reverb.heap_bytes() + phrase
    }

    /// The keys of the textures the layer held.
    #[must_use]
    pub fn texture_keys(&self) -> Vec<TextureKey> {
        self.texture
            .as_ref()
            .map(LayerCheckpoint::keys)
            .unwrap_or_default()
    }
}

/// The block renderer. Built (allocating) off the audio thread; `process` never
/// allocates.
#[derive(Debug)]
pub struct Renderer {
    /// The degradation level the renderer applies (see [`Renderer::set_quality`]).
    quality: Level,
    sample_rate: f32,
    mode: RenderMode,
    feed: PhraseFeed,
    playback: Option<Playback>,
    /// The phrase index to start next.
    next_index: u64,
    /// Where `next_index` is published for the composer thread, if anywhere.
    want_signal: Option<Arc<AtomicU64>>,
    /// A jump waiting for its phrase.
    seek: Option<Seek>,
    /// Absolute frame of the next sample to render.
    position: u64,
    /// When the sounding melody note ends.
    note_off_at: Option<u64>,
    pads: PadBank,
    melody: MelodyVoices,
    percussion: Percussion,
    delay: StereoDelay,
    reverb: Reverb,
    limiter: Limiter,
    dc: DcBlocker,
    levels: Levels,
    mix: MixLevels,
    /// The layer gains of the phrase's form at the last control tick (kept while
    /// no phrase plays).
    form: LayerGains,
    /// The form's drifts: brightness, reverb size and texture width.
    drift: DriftStage,
    /// The pre-rendered texture, when the engine has a pre-renderer.
    texture: Option<TextureLayer>,
    /// The notes played, for MIDI out (see [`Renderer::set_note_log`]).
    notes: NoteLog,
    /// Where what the renderer takes is recorded, when a recording wants it.
    journal: Option<JournalWriter>,
}

impl Renderer {
    /// A renderer at `sample_rate` (clamped to the supported range) playing phrases
    /// from `feed`. `seed` fixes every random choice of the sound itself.
    #[must_use]
    pub fn new(
        sample_rate: f32,
        seed: u64,
        mix: MixLevels,
        mode: RenderMode,
        feed: PhraseFeed,
    ) -> Self {
        let sample_rate = sample_rate.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE);
        let control_rate = sample_rate / CONTROL_FRAMES as f32;
        let mut delay = StereoDelay::new(sample_rate, 1.0);
        delay.set_params(DelayParams {
            time_ms: 375.0,
            feedback: 0.4,
            taps: 2,
            ping_pong: true,
            damping_hz: 4_000.0,
        });
        let mut reverb = Reverb::new(sample_rate);
        reverb.set_params(ReverbParams {
            decay_s: REVERB_DECAY_S,
            predelay_ms: 35.0,
            damping_hz: 5_500.0,
            mod_depth: 0.5,
        });
        let mut limiter = Limiter::new(sample_rate);
        limiter.set_params(LimiterParams::default());
        Self {
            sample_rate,
            mode,
            feed,
            playback: None,
            quality: Level::Normal,
            next_index: 0,
            want_signal: None,
            seek: None,
            position: 0,
            note_off_at: None,
            pads: PadBank::new(sample_rate, seed ^ 0x9AD),
            melody: MelodyVoices::new(sample_rate),
            percussion: Percussion::new(sample_rate, seed ^ 0x9E5C),
            delay,
            reverb,
            limiter,
            dc: DcBlocker::new(sample_rate, DC_CUTOFF_HZ),
            levels: Levels::new(control_rate, &mix),
            mix,
            form: LayerGains::UNITY,
            drift: DriftStage::new(sample_rate),
            texture: None,
            notes: NoteLog::default(),
            journal: None,
        }
    }

    /// Starts recording what this renderer takes ([`journal`]): rings of
    /// `capacity` records, allocated here (off the audio thread); call after
    /// [`Renderer::set_texture_layer`]. Returns the reading end.
    pub fn enable_journal(&mut self, capacity: usize) -> JournalReader {
        let (mine, layer, reader) = journal(capacity);
        self.journal = Some(mine);
        if let Some(t) = self.texture.as_mut() {
            t.set_journal(layer);
        }
        reader
    }

    /// Its state now, to restore later ([`Renderer::restore`]); `None` when
    /// its texture layer holds a texture without a key. Allocates (the delay
    /// and reverb lines are copied): not for the audio thread.
    #[must_use]
    pub fn checkpoint(&self) -> Option<RendererCheckpoint> {
        let texture = match self.texture.as_ref() {
            Some(layer) => Some(layer.checkpoint()?),
            None => None,
        };
        Some(RendererCheckpoint {
            quality: self.quality,
            playback: self.playback.clone(),
            next_index: self.next_index,
            seek: self.seek,
            position: self.position,
            note_off_at: self.note_off_at,
            pads: self.pads.clone(),
            melody: self.melody.clone(),
            percussion: self.percussion.clone(),
            delay: self.delay.clone(),
            reverb: self.reverb.clone(),
            limiter: self.limiter,
            dc: self.dc,
            levels: self.levels.clone(),
            mix: self.mix,
            form: self.form,
            drift: self.drift.clone(),
            texture,
        })
    }

    /// Puts this renderer (built with the same sample rate and seed, its feeds
    /// empty) in the state `checkpoint` holds; `texture` makes each texture the
    /// layer held again from its key, in the order of
    /// [`RendererCheckpoint::texture_keys`].
    ///
    /// # Errors
    /// The first error of `texture`.
    pub fn restore<E>(
        &mut self,
        checkpoint: &RendererCheckpoint,
        texture: impl FnMut(&TextureKey) -> Result<Texture, E>,
    ) -> Result<(), E> {
        if let (Some(layer), Some(cp)) = (self.texture.as_mut(), checkpoint.texture.as_ref()) {
            layer.restore(cp, texture)?;
        }
        let cp = checkpoint.clone();
        self.quality = cp.quality;
        self.playback = cp.playback;
        self.next_index = cp.next_index;
        self.seek = cp.seek;
        self.position = cp.position;
        self.note_off_at = cp.note_off_at;
        self.pads = cp.pads;
        self.melody = cp.melody;
        self.percussion = cp.percussion;
        self.delay = cp.delay;
        self.reverb = cp.reverb;
        self.limiter = cp.limiter;
        self.dc = cp.dc;
        self.levels = cp.levels;
        self.mix = cp.mix;
        self.form = cp.form;
        self.drift = cp.drift;
        self.set_next_index(self.next_index);
        Ok(())
    }

    /// Records `event` in the journal, if there is one. Never allocates.
    fn record(&mut self, event: JournalEvent) {
        if let Some(j) = self.journal.as_mut() {
            j.record(event);
        }
    }

    /// Records the notes it plays from now on (see [`notes`]), or stops
    /// recording and forgets them. Never allocates.
    pub fn set_note_log(&mut self, enabled: bool) {
        self.notes.set_enabled(enabled);
    }

    /// Hands the notes played since the last call to `f` in order (each with
    /// its absolute frame; see [`Renderer::position`]). Never allocates.
    pub fn drain_notes(&mut self, f: impl FnMut(NoteOut)) {
        self.notes.drain(f);
    }

    /// Plays `layer`'s textures in place of the pad from the next phrase on (the
    /// pad stays the fallback). Call before the first block.
    pub fn set_texture_layer(&mut self, mut layer: TextureLayer) {
        layer.set_enabled(self.quality.profile().texture);
        self.texture = Some(layer);
    }

    /// The sample rate in use.
    #[must_use]
    pub const fn sample_rate(&self) -> f32 {
        self.sample_rate
    }

    /// Absolute frame position (frames rendered since start).
    #[must_use]
    pub const fn position(&self) -> u64 {
        self.position
    }

    /// Publishes the index of the phrase the renderer needs next in `signal`
    /// (read by the thread that composes them), now and whenever it changes.
    pub fn set_want_signal(&mut self, signal: Arc<AtomicU64>) {
        signal.store(self.next_index, Ordering::Release);
        self.want_signal = Some(signal);
    }

    /// The index of the phrase the renderer will start next.
    #[must_use]
    pub const fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The musical position in beats since the start of phrase 0 (phrase `k`
    /// covers beats `[k·P, (k+1)·P)` with `P` beats per phrase), while a phrase
    /// plays or a jump waits for its phrase; `None` otherwise (before the first
    /// phrase, or while a late phrase is awaited in real time).
    #[must_use]
    pub fn beat_position(&self) -> Option<f64> {
        if let Some(pb) = &self.playback {
            let into = (self.position as i64 - pb.start) as f64 / pb.samples_per_beat;
            return Some(pb.phrase.index as f64 * pb.phrase.params.phrase_beats() + into);
        }
        self.seek.map(|s| {
            s.index as f64 * s.phrase_beats
                + s.offset_beats
                + (self.position - s.anchor) as f64 / s.samples_per_beat
        })
    }

    /// Jumps to phrase `target.index`, `target.offset_beats` into it. The phrase
    /// playing stops (its chord keeps sounding on the pad until the new phrase
    /// comes; the melody note is released); the new phrase starts as soon as it is
    /// here (offline: at the next span, waiting for it), aligned so that its beat
    /// `offset_beats` falls on the current frame. Never allocates.
    fn seek(&mut self, target: SeekTarget) {
        self.record(JournalEvent::Seek {
            frame: self.position,
            target,
        });
        if let Some(old) = self.playback.take() {
            self.feed.give_back(old.phrase);
        }
        // Whatever was composed before the jump may be the wrong phrase, or at the
        // old tempo: only what the composer sends from now on is taken.
        while let Some(stale) = self.feed.take(0) {
            self.feed.give_back(stale);
        }
        if let Some(layer) = self.texture.as_mut() {
            layer.seek();
        }
        if self.note_off_at.take().is_some() {
            self.melody.note_off();
        }
        self.notes.end_all(self.position);
        let bpm = if target.bpm.is_finite() && target.bpm > 0.0 {
            target.bpm
        } else {
            60.0
        };
        self.seek = Some(Seek {
            index: target.index,
            offset_beats: target.offset_beats.max(0.0),
            anchor: self.position,
            phrase_beats: target.phrase_beats,
            samples_per_beat: f64::from(self.sample_rate) * 60.0 / f64::from(bpm),
        });
        self.set_next_index(target.index);
    }

    /// Jumps to `target` (as `seek` above does), unless a jump that nothing has
    /// been rendered since waits for the same phrase at the same tempo: that
    /// one moves to `target`'s place in the phrase, and the phrase and texture
    /// on their way for it stay. Returns whether it was a new jump (whose
    /// phrase the composer must send). Never allocates.
    pub fn jump(&mut self, target: SeekTarget) -> bool {
        let samples_per_beat = f64::from(self.sample_rate) * 60.0 / f64::from(target.bpm);
        match self.seek.as_mut() {
            Some(seek)
                if self.playback.is_none()
                    && seek.anchor == self.position
                    && seek.index == target.index
                    && seek.phrase_beats == target.phrase_beats
                    && seek.samples_per_beat == samples_per_beat =>
            {
                seek.offset_beats = target.offset_beats.max(0.0);
                self.record(JournalEvent::Seek {
                    frame: self.position,
                    target,
                });
                false
            }
            _ => {
                self.seek(target);
                true
            }
        }
    }

    /// Whether the next phrase has arrived (or is playing). Never blocks or
    /// allocates.
    pub fn next_phrase_ready(&mut self) -> bool {
        let next = self.next_index;
        self.playback.is_some() || self.feed.is_ready(next)
    }

    /// Whether the next phrase's texture has arrived (always, without the
    /// texture layer). Never blocks or allocates.
    pub fn next_texture_ready(&mut self) -> bool {
        let next = self.next_index;
        self.texture
            .as_mut()
            .is_none_or(|layer| layer.is_ready(next))
    }

    fn set_next_index(&mut self, index: u64) {
        self.next_index = index;
        if let Some(signal) = &self.want_signal {
            signal.store(index, Ordering::Release);
        }
    }

    /// The index of the phrase playing, if one has started.
    #[must_use]
    pub fn phrase_index(&self) -> Option<u64> {
        self.playback.as_ref().map(|p| p.phrase.index)
    }

    /// The current mix levels (targets; the audio follows within 40 ms).
    #[must_use]
    pub const fn levels(&self) -> &MixLevels {
        &self.mix
    }

    /// Sets new mix levels; they are smoothed, never stepped.
    pub fn set_levels(&mut self, mix: MixLevels) {
        if mix != self.mix {
            self.record(JournalEvent::Mix {
                frame: self.position,
                levels: mix,
            });
        }
        self.mix = mix;
        self.levels.set(&self.heard());
    }

    /// Applies a degradation level at the next sample, without a click, as its
    /// [`Level::profile`] says: a layer it drops fades out within 40 ms (its notes
    /// stop being composed from the next phrase), the pad may turn to its cheap
    /// voice, the texture may fade out (the pad carries), and the phrase that is
    /// playing may loop, with its texture, instead of moving on. Never allocates.
    pub fn set_quality(&mut self, level: Level) {
        if level != self.quality {
            self.record(JournalEvent::Level {
                frame: self.position,
                level,
            });
            self.quality = level;
            self.levels.set(&self.heard());
            let profile = level.profile();
            self.pads.set_cheap(profile.cheap_pad);
            if let Some(layer) = self.texture.as_mut() {
                layer.set_enabled(profile.texture);
                layer.set_looping(profile.loop_phrase);
            }
        }
    }

    /// Whether the pad plays its cheap voice (see [`pad`]).
    #[must_use]
    pub fn pad_is_cheap(&self) -> bool {
        self.pads.is_cheap()
    }

    /// The degradation level applied.
    #[must_use]
    pub const fn quality(&self) -> Level {
        self.quality
    }

    /// The mix actually heard: the levels the quality allows, each layer times
    /// the gain the phrase's form gives it now.
    fn heard(&self) -> MixLevels {
        let profile = self.quality.profile();
        let (mix, form) = (self.mix, self.form);
        MixLevels {
            pad: mix.pad * form.pad,
            melody: if profile.melody {
                mix.melody * form.melody
            } else {
                0.0
            },
            percussion: if profile.percussion {
                mix.percussion * form.percussion
            } else {
                0.0
            },
            ..mix
        }
    }

    /// Follows the form of the phrase playing: its layer gains at the current
    /// position become the level targets (smoothed like any level change, so a
    /// jump between phrases never clicks), and its drifts the drift targets.
    fn follow_form(&mut self) {
        if let Some(pb) = &self.playback {
            let position = self.position as i64;
            let gains = pb.form_gains(position);
            self.drift.set_target(&pb.form_drift(position));
            if gains != self.form {
                self.form = gains;
                self.levels.set(&self.heard());
            }
        }
    }

    /// Voices sounding: pad, melody, percussion.
    #[must_use]
    pub fn active_voices(&self) -> (usize, usize, usize) {
        (
            self.pads.active_voices(),
            self.melody.active_voices(),
            self.percussion.active_voices(),
        )
    }

    /// Silences everything and rewinds to frame 0 (the phrase in hand is kept and
    /// replayed from its start).
    pub fn reset(&mut self) {
        self.pads.reset();
        self.melody.reset();
        self.percussion.reset();
        self.delay.reset();
        self.reverb.reset();
        self.limiter.reset();
        self.dc.reset();
        self.position = 0;
        self.note_off_at = None;
        self.notes.end_all(0);
        self.seek = None;
        if let Some(p) = self.playback.take() {
            self.playback = Some(Playback::new(p.phrase, 0, self.sample_rate));
        }
        self.follow_form();
        self.levels.jump(&self.heard());
        let drift = self.playback.as_ref().map(|pb| pb.form_drift(0));
        self.drift.reset(drift.as_ref(), &mut self.reverb);
        if let Some(layer) = self.texture.as_mut() {
            layer.reset();
        }
    }

    /// Waits for phrases (`phrases` offline) and for textures (`textures`
    /// offline), or never (real time), from the next block on. Never
    /// allocates.
    pub fn set_modes(&mut self, phrases: RenderMode, textures: RenderMode) {
        self.mode = phrases;
        if let Some(layer) = self.texture.as_mut() {
            layer.set_mode(textures);
        }
    }

    /// Renders `left.len()` frames (the shorter of the two slices) into the buffers,
    /// overwriting them. Never allocates; in offline mode it may wait for phrases.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len());
        let mut done = 0;
        while done < n {
            let phase = (self.position % CONTROL_FRAMES as u64) as usize;
            if phase == 0 {
                self.control_tick();
            }
            self.dispatch_due();
            let to_tick = CONTROL_FRAMES - phase;
            let to_event = self.next_event().map_or(usize::MAX, |at| {
                usize::try_from(at - self.position as i64).unwrap_or(0)
            });
            let len = (n - done).min(to_tick).min(to_event.max(1));
            self.render_span(&mut left[done..done + len], &mut right[done..done + len]);
            self.position += len as u64;
            done += len;
        }
        if let Some(layer) = self.texture.as_mut() {
            layer.publish(self.position as i64);
        }
    }

    fn control_tick(&mut self) {
        self.pads.control_tick();
        self.melody.control_tick();
        self.percussion.control_tick();
        if self.playback.is_none() {
            self.start_next_phrase();
        }
        self.follow_form();
        self.levels.control_tick();
        self.drift.control_tick(&mut self.reverb);
        if let Some(layer) = self.texture.as_mut() {
            layer.control_tick(self.position as i64);
        }
    }

    fn frames_to_tick(&self) -> usize {
        CONTROL_FRAMES - (self.position % CONTROL_FRAMES as u64) as usize
    }

    fn next_event(&self) -> Option<i64> {
        let phrase = self.playback.as_ref().map(Playback::next_event);
        let note_off = self.note_off_at.map(|at| at as i64);
        let logged_stop = self.notes.next_stop().map(|at| at as i64);
        [phrase, note_off, logged_stop].into_iter().flatten().min()
    }

    /// Starts phrase `next_index`, if it is here (or, offline, once it comes);
    /// any other phrase that arrives (composed before a jump) goes back. The old
    /// phrase goes back to the composer thread too.
    fn start_next_phrase(&mut self) {
        let want = self.next_index;
        let phrase = loop {
            let next = match self.mode {
                RenderMode::RealTime => self.feed.take(want),
                RenderMode::Offline => self.feed.take_blocking(want),
            };
            let Some(phrase) = next else {
                return;
            };
            if phrase.index == want {
                break phrase;
            }
            self.feed.give_back(phrase);
        };
        if let Some(old) = self.playback.take() {
            self.feed.give_back(old.phrase);
        }
        self.record(JournalEvent::Phrase {
            frame: self.position,
            key: phrase.key(),
        });
        let position = self.position as i64;
        let start = match self.seek.take() {
            Some(s) if s.index == want => {
                let spb = f64::from(self.sample_rate) * 60.0 / f64::from(phrase.params.bpm);
                s.anchor as i64 - (s.offset_beats * spb).round() as i64
            }
            _ => position,
        };
        self.set_next_index(want + 1);
        let mut playback = Playback::new(phrase, start, self.sample_rate);
        if start < position {
            playback.skip_to(position);
        }
        if let Some(layer) = self.texture.as_mut() {
            layer.at(position);
            layer.phrase_started(&playback.phrase, start, playback.frames);
        }
        self.playback = Some(playback);
    }

    /// Plays every event due at the current position.
    fn dispatch_due(&mut self) {
        let position = self.position as i64;
        if self.playback.is_none() && self.seek.is_some() {
            // A jump: start its phrase as soon as it is here.
            self.start_next_phrase();
        }
        if self.playback.as_ref().is_some_and(|p| p.end() <= position) {
            self.phrase_ended(position);
        }
        let ftt = self.frames_to_tick();
        let profile = self.quality.profile();
        let frame = self.position;
        self.notes.stop_due(frame);
        if let Some(pb) = self.playback.as_mut() {
            while let Some(e) = pb.phrase.chords.get(pb.next_chord) {
                if pb.at(e.start_beat) > position {
                    break;
                }
                self.pads.set_chord(&e.chord, CHORD_VELOCITY, ftt);
                self.notes.chord(frame, e.chord.notes(), CHORD_VELOCITY);
                pb.next_chord += 1;
            }
            while let Some(e) = pb.phrase.melody.get(pb.next_note) {
                if pb.at(e.start_beat) > position {
                    break;
                }
                // Where the melody is not allowed, notes already sounding ring out
                // (and fade with the melody level); no new ones start.
                if profile.melody {
                    self.melody.note_on(e.note, e.velocity, ftt);
                    let off = pb.at(e.start_beat + e.beats).max(position + 1);
                    let off = u64::try_from(off).unwrap_or(frame + 1);
                    self.note_off_at = Some(off);
                    self.notes.start(
                        MELODY_SLOT,
                        Part::Melody,
                        frame,
                        e.note,
                        e.velocity,
                        Some(off),
                    );
                }
                pb.next_note += 1;
            }
            while let Some(e) = pb.phrase.percussion.get(pb.next_perc) {
                if pb.at(e.start_beat) > position {
                    break;
                }
                if profile.percussion {
                    Self::hit(
                        &mut self.percussion,
                        e,
                        pb.samples_per_beat,
                        self.sample_rate,
                        ftt,
                    );
                    let beats = match e.kind {
                        PercKind::Kick => PERCUSSION_NOTE_BEATS,
                        PercKind::Swell => e.beats.max(PERCUSSION_NOTE_BEATS),
                    };
                    let stop = frame + ((beats * pb.samples_per_beat).round() as u64).max(1);
                    self.notes.start(
                        percussion_slot(e.kind),
                        Part::Percussion,
                        frame,
                        percussion_key(e.kind),
                        e.velocity,
                        Some(stop),
                    );
                }
                pb.next_perc += 1;
            }
        }
        if self.note_off_at.is_some_and(|at| at <= self.position) {
            self.melody.note_off();
            self.note_off_at = None;
        }
    }

    /// The phrase in hand has ended at `position`: loop it where the level says
    /// so, else start the next one, or hold the last chord if it is late.
    fn phrase_ended(&mut self, position: i64) {
        if self.quality.profile().loop_phrase {
            // Overloaded: replay the phrase in hand (the pad voices carry common
            // tones across the seam, so the loop is seamless) instead of moving on.
            if let Some(old) = self.playback.take() {
                let replay = Playback::new(old.phrase, position, self.sample_rate);
                if let Some(layer) = self.texture.as_mut() {
                    layer.at(position);
                    layer.phrase_started(&replay.phrase, position, replay.frames);
                }
                self.playback = Some(replay);
            }
            return;
        }
        self.start_next_phrase();
        // Late in real time: hold the last chord until the next phrase arrives.
        if self.playback.as_ref().is_some_and(|p| p.end() <= position) {
            if let Some(old) = self.playback.take() {
                self.feed.give_back(old.phrase);
            }
        }
    }

    /// Plays one percussion event.
    fn hit(
        percussion: &mut Percussion,
        e: &PercEvent,
        samples_per_beat: f64,
        sample_rate: f32,
        ftt: usize,
    ) {
        match e.kind {
            PercKind::Kick => percussion.kick(e.velocity, ftt),
            PercKind::Swell => {
                let rise_s = e.beats * samples_per_beat / f64::from(sample_rate);
                percussion.swell(rise_s as f32, e.velocity, ftt);
            }
        }
    }

    /// Renders one span (at most [`CONTROL_FRAMES`] frames, no events inside):
    /// the voices into stack buses, then each effect over the whole span so its
    /// state stays in registers.
    fn render_span(&mut self, left: &mut [f32], right: &mut [f32]) {
        const Z: Bus = [0.0; CONTROL_FRAMES];
        let n = left.len();
        let (mut pad_l, mut pad_r, mut mel_l, mut mel_r) = (Z, Z, Z, Z);
        let (mut swell_l, mut swell_r, mut kick) = (Z, Z, Z);
        // The texture replaces the pad (crossfaded): `pad_w` is the pad's share.
        let (mut tex_l, mut tex_r, mut pad_w) = (Z, Z, [1.0; CONTROL_FRAMES]);
        if let Some(layer) = self.texture.as_mut() {
            layer.render(
                self.position as i64,
                &mut tex_l[..n],
                &mut tex_r[..n],
                &mut pad_w[..n],
            );
            self.drift.widen(&mut tex_l[..n], &mut tex_r[..n]);
        }
        if !self.texture.as_ref().is_some_and(TextureLayer::pad_muted) {
            self.pads.render(&mut pad_l[..n], &mut pad_r[..n]);
        }
        self.melody.render(&mut mel_l[..n], &mut mel_r[..n]);
        self.percussion
            .render(&mut kick[..n], &mut swell_l[..n], &mut swell_r[..n]);
        let mut gain = [Z; Levels::COUNT];
        self.levels.fill(&mut gain, n);

        // Layer gains; the dry bus, the delay send and the reverb send.
        let mut sends = Sends {
            dry: [Z; 2],
            delay: [Z; 2],
            reverb: [Z; 2],
        };
        let [dry_l, dry_r] = &mut sends.dry;
        let [dly_l, dly_r] = &mut sends.delay;
        let [rev_l, rev_r] = &mut sends.reverb;
        for i in 0..n {
            let (pg, mg, kg) = (
                gain[Levels::PAD][i],
                gain[Levels::MELODY][i],
                gain[Levels::PERCUSSION][i],
            );
            let (pl, pr) = (
                (pad_l[i] * pad_w[i] + tex_l[i]) * pg,
                (pad_r[i] * pad_w[i] + tex_r[i]) * pg,
            );
            let (ml, mr) = (mel_l[i] * mg, mel_r[i] * mg);
            let (k, sl, sr) = (kick[i] * kg, swell_l[i] * kg, swell_r[i] * kg);
            dry_l[i] = pl + ml + k + sl;
            dry_r[i] = pr + mr + k + sr;
            let ds = gain[Levels::DELAY][i];
            dly_l[i] = ml * ds;
            dly_r[i] = (mr + 0.3 * pr) * ds;
            rev_l[i] = 0.6 * pl + 0.8 * ml + sl + 0.15 * k;
            rev_r[i] = 0.6 * pr + 0.8 * mr + sr + 0.15 * k;
        }
        self.render_effects(&gain, &mut sends, left, right);
    }

    /// The delay and reverb over a span's sends, then the master gain, the
    /// brightness low-pass, the DC blocker and the limiter into `left`/`right`.
    fn render_effects(
        &mut self,
        gain: &[Bus; Levels::COUNT],
        sends: &mut Sends,
        left: &mut [f32],
        right: &mut [f32],
    ) {
        let n = left.len();
        let [dry_l, dry_r] = &mut sends.dry;
        let [dly_l, dly_r] = &mut sends.delay;
        let [rev_l, rev_r] = &mut sends.reverb;
        self.delay.process_block(&mut dly_l[..n], &mut dly_r[..n]);
        for i in 0..n {
            let rs = gain[Levels::REVERB][i];
            dry_l[i] += dly_l[i];
            dry_r[i] += dly_r[i];
            rev_l[i] = (rev_l[i] + 0.5 * dly_l[i]) * rs;
            rev_r[i] = (rev_r[i] + 0.5 * dly_r[i]) * rs;
        }
        self.reverb.process_block(&mut rev_l[..n], &mut rev_r[..n]);
        for i in 0..n {
            let master = gain[Levels::MASTER][i] * MASTER_TRIM;
            left[i] = (dry_l[i] + REVERB_RETURN * rev_l[i]) * master;
            right[i] = (dry_r[i] + REVERB_RETURN * rev_r[i]) * master;
        }
        self.drift.darken(left, right);
        self.dc.process_block(left, right);
        self.limiter.process_block(left, right);
        for x in left.iter_mut().chain(right.iter_mut()) {
            *x = flush_tiny(*x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::feed::{phrase_channel, PhraseSender};
    use super::texture::TextureTelemetry;
    use super::*;
    use crate::compose::form::{BRIGHTNESS_HZ_RANGE, REVERB_SCALE_RANGE, WIDTH_RANGE};
    use crate::compose::{ComposeParams, Composer, LayerGains, PhraseForm};
    use crate::prerender::pool::{texture_channel, PoolConfig};
    use crate::prerender::{texture_frames, Backend, TextureKind};

    const SR: f32 = 16_000.0;

    /// Phrase 0 of the default piece with its melody and percussion taken out,
    /// its form replaced by `form`.
    fn pad_phrase(form: PhraseForm) -> Phrase {
        let mut p = Composer::new(3, ComposeParams::default()).compose(0, None);
        p.melody.clear();
        p.percussion.clear();
        p.form = form;
        p
    }

    /// `seconds` of a renderer playing `phrase`, left channel.
    fn render(phrase: Phrase, seconds: f32) -> Vec<f32> {
        let (mut sender, feed) = phrase_channel();
        sender.outgoing.push(phrase).expect("room");
        let mut r = Renderer::new(SR, 1, MixLevels::DEFAULT, RenderMode::Offline, feed);
        let n = (seconds * SR) as usize;
        let (mut left, mut right) = (vec![0.0; n], vec![0.0; n]);
        for (l, r2) in left.chunks_mut(512).zip(right.chunks_mut(512)) {
            r.process(l, r2);
        }
        left
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// RMS of `x` from `from_s` to `to_s`.
    fn rms_between(x: &[f32], from_s: f32, to_s: f32) -> f64 {
        rms(&x[(from_s * SR) as usize..(to_s * SR) as usize])
    }

    #[test]
    fn a_phrase_plays_at_its_form_gains() {
        let steady = render(pad_phrase(PhraseForm::STEADY), 30.0);
        let half = LayerGains {
            pad: 0.5,
            ..LayerGains::UNITY
        };
        let quieter = render(
            pad_phrase(PhraseForm {
                gains_from: half,
                gains: half,
                ..PhraseForm::STEADY
            }),
            30.0,
        );
        let ratio = rms_between(&quieter, 2.0, 30.0) / rms_between(&steady, 2.0, 30.0);
        assert!(
            (ratio - 0.5).abs() < 0.02,
            "pad at half gain: ratio {ratio}"
        );
    }

    #[test]
    fn a_layer_fades_out_over_the_form_fade_without_a_step() {
        let steady = render(pad_phrase(PhraseForm::STEADY), 31.0);
        let fading = render(
            pad_phrase(PhraseForm {
                gains: LayerGains {
                    pad: 0.0,
                    ..LayerGains::UNITY
                },
                fade_beats: 16.0,
                ..PhraseForm::STEADY
            }),
            31.0,
        );
        // 60 BPM: the fade lasts 16 s. The ratio falls window by window…
        let ratios: Vec<f64> = [(1.0, 2.0), (5.0, 6.0), (9.0, 10.0), (13.0, 14.0)]
            .iter()
            .map(|&(a, b)| rms_between(&fading, a, b) / rms_between(&steady, a, b))
            .collect();
        assert!(ratios[0] > 0.85, "{ratios:?}");
        assert!(ratios.windows(2).all(|w| w[1] < w[0] - 0.1), "{ratios:?}");
        // …and once it and the reverb tail are over, the pad is silent.
        let after = rms_between(&fading, 26.0, 31.0) / rms_between(&steady, 26.0, 31.0);
        assert!(after < 0.01, "after the fade: {after}");
        // A fade, not a cut: no sample-to-sample jump bigger than the steady
        // render's own.
        let step = |x: &[f32]| {
            x.windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(0.0, f32::max)
        };
        assert!(step(&fading) <= step(&steady) * 1.05 + 1e-6);
    }

    /// A form that holds `drift` from start to end.
    fn drifted(drift: Drift) -> PhraseForm {
        PhraseForm {
            drift_from: drift,
            drift,
            ..PhraseForm::STEADY
        }
    }

    /// `seconds` of a renderer playing `phrase` at `mix`, left and right; with a
    /// `texture`, its frames (left, right) are the phrase's texture.
    fn render_stereo(
        phrase: Phrase,
        seconds: f32,
        mix: MixLevels,
        texture: Option<fn(usize) -> (f32, f32)>,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut pool = None;
        let (mut sender, feed) = phrase_channel();
        let mut r = Renderer::new(SR, 1, mix, RenderMode::Offline, feed);
        if let Some(frame) = texture {
            let frames = texture_frames(&phrase, SR);
            let (mut side, textures) = texture_channel(PoolConfig {
                textures: 2,
                max_frames: frames,
            });
            let mut t = side.take_free().expect("a free texture");
            let (l, r2) = t.buffers_mut();
            for (i, (l, r2)) in l.iter_mut().zip(r2.iter_mut()).enumerate() {
                (*l, *r2) = frame(i);
            }
            t.set_content(&phrase, frames, TextureKind::Rendered(Backend::Cpu), None);
            side.send(t);
            let telemetry = Arc::new(TextureTelemetry::default());
            r.set_texture_layer(TextureLayer::new(
                textures,
                RenderMode::Offline,
                SR,
                telemetry,
            ));
            pool = Some(side);
        }
        sender.outgoing.push(phrase).expect("room");
        let n = (seconds * SR) as usize;
        let (mut left, mut right) = (vec![0.0; n], vec![0.0; n]);
        for (l, r2) in left.chunks_mut(512).zip(right.chunks_mut(512)) {
            r.process(l, r2);
        }
        drop(pool);
        (left, right)
    }

    /// The share of `x`'s energy above 3 kHz (a fourth-order high-pass).
    fn high_share(x: &[f32]) -> f64 {
        use crate::dsp::svf::{Svf, SvfCoefs};
        let hp = SvfCoefs::highpass(SR, 3_000.0, std::f32::consts::FRAC_1_SQRT_2);
        let (mut a, mut b) = (Svf::new(), Svf::new());
        let high: f64 = x
            .iter()
            .map(|v| f64::from(b.process(&hp, a.process(&hp, *v))).powi(2))
            .sum();
        high / x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>()
    }

    #[test]
    fn the_brightness_drift_darkens_the_mix() {
        let dark = Drift {
            brightness_hz: BRIGHTNESS_HZ_RANGE.0,
            ..Drift::NEUTRAL
        };
        let bright = Drift {
            brightness_hz: BRIGHTNESS_HZ_RANGE.1,
            ..Drift::NEUTRAL
        };
        // A whole phrase: pad, melody and percussion.
        let take = |form| {
            let mut p = Composer::new(3, ComposeParams::default()).compose(0, None);
            p.form = form;
            let (l, _) = render_stereo(p, 16.0, MixLevels::DEFAULT, None);
            l[(4.0 * SR) as usize..].to_vec()
        };
        let (open, dark, bright) = (
            take(PhraseForm::STEADY),
            take(drifted(dark)),
            take(drifted(bright)),
        );
        let (h_open, h_dark, h_bright) =
            (high_share(&open), high_share(&dark), high_share(&bright));
        assert!(
            h_dark < 0.5 * h_bright && h_bright <= h_open * 1.001,
            "high share: open {h_open:.5}, bright {h_bright:.5}, dark {h_dark:.5}"
        );
        // A gentle darkening: the mix loses little of its level.
        let db = 20.0 * (rms(&dark) / rms(&open)).log10();
        assert!((-1.5..=0.0).contains(&db), "dark mix at {db:.2} dB");
    }

    #[test]
    fn the_width_drift_scales_the_texture_side_signal() {
        // Left and right in no relation: as much side as mid.
        fn texture(i: usize) -> (f32, f32) {
            let t = i as f32 / SR;
            (
                0.05 * (std::f32::consts::TAU * 220.0 * t).sin(),
                0.05 * (std::f32::consts::TAU * 330.0 * t).sin(),
            )
        }
        let dry = MixLevels {
            reverb: 0.0,
            delay: 0.0,
            ..MixLevels::DEFAULT
        };
        let side_over_mid = |width: f32| {
            let form = drifted(Drift {
                width,
                ..Drift::NEUTRAL
            });
            let (l, r) = render_stereo(pad_phrase(form), 12.0, dry, Some(texture));
            let from = (6.0 * SR) as usize;
            let (mut mid, mut side) = (0.0, 0.0);
            for (a, b) in l[from..].iter().zip(&r[from..]) {
                mid += f64::from(a + b).powi(2);
                side += f64::from(a - b).powi(2);
            }
            side / mid
        };
        let (narrow, unity, wide) = (
            side_over_mid(WIDTH_RANGE.0),
            side_over_mid(1.0),
            side_over_mid(WIDTH_RANGE.1),
        );
        // The side scales by the width, its energy by the width squared.
        for (ratio, width) in [(narrow, WIDTH_RANGE.0), (wide, WIDTH_RANGE.1)] {
            let want = unity * f64::from(width).powi(2);
            assert!(
                (ratio / want - 1.0).abs() < 0.05,
                "width {width}: side/mid {ratio:.3}, want {want:.3} (unity {unity:.3})"
            );
        }
        assert!((unity - 1.0).abs() < 0.1, "unity side/mid {unity:.3}");
    }

    /// Renders `frames` more frames of `r` into `out`, handing it the phrases of
    /// `piece` as it asks for them (one waits in the feed at a time).
    fn play(
        r: &mut Renderer,
        sender: &mut PhraseSender,
        piece: &[Phrase],
        sent: &mut Option<u64>,
        frames: usize,
        out: &mut [Vec<f32>; 2],
    ) {
        let (mut l, mut r2) = ([0.0; 500], [0.0; 500]);
        let mut done = 0;
        while done < frames {
            // Phrases the renderer is done with are dropped here, as the
            // composer thread does, so the feed keeps taking new ones.
            while sender.returned.pop().is_ok() {}
            let want = r.next_index();
            if *sent != Some(want) {
                sender
                    .outgoing
                    .push(piece[want as usize].clone())
                    .expect("room");
                *sent = Some(want);
            }
            let n = (frames - done).min(500);
            r.process(&mut l[..n], &mut r2[..n]);
            out[0].extend_from_slice(&l[..n]);
            out[1].extend_from_slice(&r2[..n]);
            done += n;
        }
    }

    /// Forty phrases of a piece of one-bar phrases at 150 BPM (1.6 s each, a
    /// section every 6 to 16 s), composed in order.
    fn short_piece(seed: u64) -> Vec<Phrase> {
        let params = ComposeParams {
            bars: 1,
            bpm: 150.0,
            ..ComposeParams::default()
        };
        let composer = Composer::new(seed, params);
        let mut piece: Vec<Phrase> = Vec::new();
        for k in 0..40 {
            let prev = piece.last().map(Phrase::last_degree);
            piece.push(composer.compose(k, prev));
        }
        piece
    }

    #[test]
    fn the_renderer_moves_its_drifts_gradually() {
        let piece = short_piece(6);
        let (mut sender, feed) = phrase_channel();
        let mut r = Renderer::new(SR, 2, MixLevels::DEFAULT, RenderMode::Offline, feed);
        let mut sent = None;
        let mut out = [Vec::new(), Vec::new()];
        let step = 500;
        let mut seen = vec![r.drift.current()];
        for _ in 0..(50.0 * SR) as usize / step {
            play(&mut r, &mut sender, &piece, &mut sent, step, &mut out);
            seen.push(r.drift.current());
        }
        let octaves = |d: &Drift| d.brightness_hz.log2();
        // The first phrase's drifts are there at once: no sweep at the start.
        let first = piece[0].form.drift;
        assert!(
            (octaves(&seen[1]) - octaves(&first)).abs() < 1e-4
                && (seen[1].reverb_scale - first.reverb_scale).abs() < 1e-6
                && (seen[1].width - first.width).abs() < 1e-6,
            "{:?}, want {first:?}",
            seen[1]
        );
        let (mut most, mut travel) = ([0.0f32; 3], [0.0f32; 3]);
        for w in seen[1..].windows(2) {
            let moves = [
                (octaves(&w[1]) - octaves(&w[0])).abs(),
                (w[1].reverb_scale - w[0].reverb_scale).abs(),
                (w[1].width - w[0].width).abs(),
            ];
            for i in 0..3 {
                most[i] = most[i].max(moves[i]);
                travel[i] += moves[i];
            }
        }
        // Tens of steps per change even with 1.6 s phrases: at most a
        // fiftieth of a range in 31 ms…
        let ranges = [
            (BRIGHTNESS_HZ_RANGE.1 / BRIGHTNESS_HZ_RANGE.0).log2(),
            REVERB_SCALE_RANGE.1 - REVERB_SCALE_RANGE.0,
            WIDTH_RANGE.1 - WIDTH_RANGE.0,
        ];
        for i in 0..3 {
            assert!(
                most[i] < ranges[i] / 50.0,
                "{i}: step {} of {}",
                most[i],
                ranges[i]
            );
            // …while over 50 s every drift travels.
            assert!(travel[i] > ranges[i] / 2.0, "{i}: travelled {}", travel[i]);
        }
    }

    #[test]
    fn a_restored_renderer_continues_a_drift_bit_for_bit() {
        let piece = short_piece(6);
        // The middle of a phrase whose drifts move (a section's first phrases).
        let moving = piece
            .iter()
            .position(|p| {
                p.index > 4 && p.form.drift_from.brightness_hz != p.form.drift.brightness_hz
            })
            .expect("a section change");
        let phrase_frames = (4.0 * 60.0 / 150.0 * SR) as usize;
        let mid = moving * phrase_frames + phrase_frames / 2 + 7;
        let end = mid + 3 * phrase_frames;

        let (mut sender, feed) = phrase_channel();
        let mut r = Renderer::new(SR, 2, MixLevels::DEFAULT, RenderMode::Offline, feed);
        let mut sent = None;
        let mut whole = [Vec::new(), Vec::new()];
        play(&mut r, &mut sender, &piece, &mut sent, mid, &mut whole);
        let checkpoint = r.checkpoint().expect("no texture");
        let drift = r.drift.current();
        let decay_s = r.reverb.params().decay_s;
        assert!(
            drift != Drift::NEUTRAL && (decay_s - REVERB_DECAY_S).abs() > 1e-3,
            "the drifts are at work: {drift:?}, decay {decay_s} s"
        );
        play(
            &mut r,
            &mut sender,
            &piece,
            &mut sent,
            end - mid,
            &mut whole,
        );

        let (mut sender, feed) = phrase_channel();
        let mut restored = Renderer::new(SR, 2, MixLevels::DEFAULT, RenderMode::Offline, feed);
        restored
            .restore(&checkpoint, |_| Err::<Texture, ()>(()))
            .expect("no texture to make");
        let mut sent = None;
        let mut tail = [Vec::new(), Vec::new()];
        play(
            &mut restored,
            &mut sender,
            &piece,
            &mut sent,
            end - mid,
            &mut tail,
        );
        assert!(
            tail[0] == whole[0][mid..] && tail[1] == whole[1][mid..],
            "the restored renderer differs"
        );
    }
}
