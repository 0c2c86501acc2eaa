//! The texture description: a flat, GPU-friendly list of everything one phrase's
//! texture layer sounds, shared by the CPU path ([`super::cpu`]) and the GPU path
//! ([`super::gpu`]) so both render the same math.
//!
//! Two layers:
//! - **additive pads**: every chord note is a [`Voice`] of up to
//!   [`Quality::partials`] [`Partial`]s: a harmonic series with a soft spectral tilt
//!   and slight (piano-like) inharmonicity `f_k = k f0 sqrt(1 + B k^2)`, each with
//!   its own stereo pan and a slow sine detune whose phase is integrated in closed
//!   form: `phase(m) = f m / sr + A (cos φ0 − cos(2π r m / sr + φ0))`, with
//!   `A = f depth / (2π r)` cycles;
//! - **granular swells**: [`Grain`]s, short Hann-windowed sines at chord pitches.
//!
//! Precision: every oscillator phase is a u32 fixed-point value computed from the
//! integer sample index (`inc.wrapping_mul(m) + phase0`, 2^32 = one cycle), never
//! from `f32` time × frequency, so long phrases stay exact on both paths. Sines use
//! one polynomial ([`sin_cycles`], coefficients [`SIN_COEFS`], handed to the
//! shaders through their uniform), so the paths do not depend on a driver's `sin`.
//!
//! Every random choice comes from `Rng::derive(seed, phrase.index, stream)`: a
//! texture is a pure function of (seed, phrase, sample rate, quality).

use bytemuck::{Pod, Zeroable};

use crate::compose::phrase::Phrase;
use crate::compose::theory::midi_to_hz;
use crate::degrade::{Level, TextureDetail};
use crate::rng::Rng;

/// Random stream of the pad voices (see [`Rng::derive`]).
pub const STREAM_TEXTURE_PAD: u64 = 0x7E57_0001;
/// Random stream of the grains.
pub const STREAM_TEXTURE_GRAINS: u64 = 0x7E57_0002;

/// Taylor coefficients of `sin(2π r)` in odd powers of `r` (cycles), for
/// `|r| <= 1/4`: `r (c1 + r^2 (c3 + r^2 (c5 + …)))`. Error below 6e-8.
pub const SIN_COEFS: [f32; 6] = [
    std::f32::consts::TAU,
    -41.3417,
    81.605_25,
    -76.705_86,
    42.058_693,
    -15.094_643,
];

/// Scale from the top 24 bits of a u32 phase to cycles (`2^-24`).
pub const PHASE_SCALE: f32 = 1.0 / 16_777_216.0;

/// Most partials a voice may have.
pub const MAX_PARTIALS: u32 = 64;
/// Partials above this fraction of the sample rate are left out (no aliasing).
const MAX_PARTIAL_FRACTION_OF_SR: f64 = 0.45;

/// `sin(2π x)` for `x` in cycles (any moderate value), by range reduction to a
/// quarter cycle and [`SIN_COEFS`]. The WGSL kernels implement the same steps.
#[inline]
#[must_use]
pub fn sin_cycles(x: f32) -> f32 {
    let mut r = x - (x + 0.5).floor();
    if r > 0.25 {
        r = 0.5 - r;
    } else if r < -0.25 {
        r = -0.5 - r;
    }
    let r2 = r * r;
    let c = &SIN_COEFS;
    r * (c[0] + r2 * (c[1] + r2 * (c[2] + r2 * (c[3] + r2 * (c[4] + r2 * c[5])))))
}

/// A u32 fixed-point phase as cycles in `[0, 1)`, from its top 24 bits (exact in
/// `f32` on every device).
#[inline]
#[must_use]
pub fn phase_to_cycles(phase: u32) -> f32 {
    (phase >> 8) as f32 * PHASE_SCALE
}

/// A frequency as a u32 fixed-point phase increment per sample.
#[must_use]
pub fn hz_to_inc(hz: f64, sample_rate: f64) -> u32 {
    let cycles = (hz / sample_rate).rem_euclid(1.0);
    // `cycles` is in [0, 1), so the product fits (a rounding up to 2^32 wraps to 0).
    ((cycles * 4_294_967_296.0).round() as u64 & 0xFFFF_FFFF) as u32
}

/// How much texture to render: the degradation machine and the recovery chain ask
/// for less.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Partials per chord note, 1..=[`MAX_PARTIALS`].
    pub partials: u32,
    /// Grains per second of phrase (0 = none).
    pub grains_per_second: f32,
}

impl Quality {
    /// Full quality: 32 partials per note, 12 grains per second.
    pub const FULL: Self = Self {
        partials: 32,
        grains_per_second: 12.0,
    };

    /// The texture quality of a degradation level, from its
    /// [`TextureDetail`]: full, half the partials and grains when reduced, a
    /// cheap pad (8 partials, no grains) when minimal.
    #[must_use]
    pub fn for_level(level: Level) -> Self {
        match level.profile().texture_detail {
            TextureDetail::Full => Self::FULL,
            TextureDetail::Reduced => Self::FULL.simplified(),
            TextureDetail::Minimal => Self {
                partials: 8,
                grains_per_second: 0.0,
            },
        }
    }

    /// Half the partials (at least 4) and half the grains.
    #[must_use]
    pub fn simplified(self) -> Self {
        Self {
            partials: (self.partials / 2).max(4),
            grains_per_second: self.grains_per_second * 0.5,
        }
    }
}

impl Default for Quality {
    fn default() -> Self {
        Self::FULL
    }
}

/// One chord note of the pad: an envelope over its span and a run of partials.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Voice {
    /// First frame (inclusive) from the phrase start.
    pub start: u32,
    /// Last frame (exclusive); the envelope reaches 0 here.
    pub end: u32,
    /// Index of the first partial in [`TextureDesc::partials`].
    pub first_partial: u32,
    /// Number of partials.
    pub partial_count: u32,
    /// `1 / attack_frames`: the attack ramp's slope per frame.
    pub inv_attack: f32,
    /// `1 / release_frames`: the release ramp's slope per frame.
    pub inv_release: f32,
    /// Padding to 32 bytes (WGSL struct alignment).
    pub pad: [u32; 2],
}

/// One sine partial of a voice. Its phase at frame `m` from the voice start is
/// `inc * m + phase0` (u32, wrapping) plus the drift term
/// `drift_cycles * (drift_c0 − cos(drift_inc * m + drift_phase0))`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Partial {
    /// Phase increment per frame (2^32 = one cycle).
    pub inc: u32,
    /// Phase at the voice start.
    pub phase0: u32,
    /// Drift LFO phase increment per frame.
    pub drift_inc: u32,
    /// Drift LFO phase at the voice start.
    pub drift_phase0: u32,
    /// Drift depth: the integrated detune's amplitude, in cycles.
    pub drift_cycles: f32,
    /// `cos` of the drift LFO's start phase (so the drift term starts at 0).
    pub drift_c0: f32,
    /// Left gain (amplitude × pan × voice gain).
    pub gain_l: f32,
    /// Right gain.
    pub gain_r: f32,
}

/// One grain: a Hann-windowed sine `sin²(π i / frames) · sin(2π phase(i))`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Grain {
    /// First frame.
    pub start: u32,
    /// Length in frames (at least 2).
    pub frames: u32,
    /// Phase increment per frame.
    pub inc: u32,
    /// Start phase.
    pub phase0: u32,
    /// `0.5 / frames`: the window's phase step, in cycles per frame.
    pub half_inv_frames: f32,
    /// Left gain.
    pub gain_l: f32,
    /// Right gain.
    pub gain_r: f32,
    /// Padding to 32 bytes.
    pub pad: u32,
}

/// Everything one phrase's texture sounds, flattened for both render paths.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextureDesc {
    /// Which phrase.
    pub phrase_index: u64,
    /// Output length in frames: the phrase ([`TextureDesc::phrase_frames`]) and
    /// the tail its last chord releases into ([`texture_frames`]).
    pub frames: u32,
    /// The phrase's own length in frames (exactly the renderer's phrase length).
    pub phrase_frames: u32,
    /// Sample rate in hertz.
    pub sample_rate: f32,
    /// Pad voices, in chord order.
    pub voices: Vec<Voice>,
    /// Their partials.
    pub partials: Vec<Partial>,
    /// Grains, sorted by start frame.
    pub grains: Vec<Grain>,
    /// Longest grain, in frames (lets a renderer find the grains overlapping a frame).
    pub max_grain_frames: u32,
}

/// Frames of `phrase` at `sample_rate`, rounded exactly as the real-time renderer
/// rounds them: `(beats * sr * 60 / bpm).round()` in `f64`.
#[must_use]
pub fn phrase_frames(phrase: &Phrase, sample_rate: f32) -> usize {
    let samples_per_beat = f64::from(sample_rate) * 60.0 / f64::from(phrase.params.bpm);
    (phrase.beats() * samples_per_beat).round() as usize
}

/// Frames of the texture of `phrase`: the phrase, then the tail its last chord
/// releases into ([`RELEASE_S`], at most one phrase long), which the renderer
/// overlaps with the next phrase's start just as chords overlap inside a phrase.
#[must_use]
pub fn texture_frames(phrase: &Phrase, sample_rate: f32) -> usize {
    let frames = phrase_frames(phrase, sample_rate);
    let tail = secs_to_frames(RELEASE_S, f64::from(sample_rate), 1) as usize;
    frames + tail.min(frames)
}

/// Attack of a pad voice, in seconds (at most half its chord).
const ATTACK_S: f64 = 1.5;
/// Release tail of a pad voice after its chord ends, in seconds.
pub const RELEASE_S: f64 = 2.0;
/// Pad level: a chord of `n` notes sums to about `PAD_GAIN / sqrt(n)` per note.
const PAD_GAIN: f32 = 0.3;
/// Shortest and longest grain, in seconds.
const GRAIN_S: (f32, f32) = (0.03, 0.3);
/// Grain amplitude range.
const GRAIN_GAIN: (f32, f32) = (0.03, 0.09);

/// Left/right gains of an equal-power pan, `pan` in `[-1, 1]`.
fn pan_gains(pan: f32) -> (f32, f32) {
    let angle = (f64::from(pan.clamp(-1.0, 1.0)) + 1.0) * std::f64::consts::FRAC_PI_4;
    (angle.cos() as f32, angle.sin() as f32)
}

/// Rounds seconds to frames (at least `min`).
fn secs_to_frames(secs: f64, sample_rate: f64, min: u32) -> u32 {
    ((secs * sample_rate).round() as u32).max(min)
}

impl TextureDesc {
    /// The texture of `phrase` (from the piece `seed`) at `sample_rate` and
    /// `quality`. Pure: equal arguments give equal descriptions.
    #[must_use]
    pub fn build(seed: u64, phrase: &Phrase, sample_rate: f32, quality: Quality) -> Self {
        let sr = f64::from(sample_rate);
        let frames = u32::try_from(texture_frames(phrase, sample_rate)).unwrap_or(u32::MAX);
        let phrase_frames = u32::try_from(phrase_frames(phrase, sample_rate)).unwrap_or(u32::MAX);
        let spb = sr * 60.0 / f64::from(phrase.params.bpm);
        let mut desc = Self {
            phrase_index: phrase.index,
            frames,
            phrase_frames,
            sample_rate,
            ..Self::default()
        };
        desc.build_pad(seed, phrase, sr, spb, quality);
        desc.build_grains(seed, phrase, sr, spb, quality);
        desc
    }

    fn build_pad(&mut self, seed: u64, phrase: &Phrase, sr: f64, spb: f64, quality: Quality) {
        let mut rng = Rng::derive(seed, phrase.index, STREAM_TEXTURE_PAD);
        let partials = quality.partials.clamp(1, MAX_PARTIALS);
        for event in &phrase.chords {
            let notes = event.chord.notes();
            let note_gain = PAD_GAIN / (notes.len().max(1) as f32).sqrt();
            // Chords sound inside the phrase; the last one's release runs on into
            // the tail.
            let phrase_end = self.phrase_frames;
            let start = ((event.start_beat * spb).round() as u32).min(phrase_end);
            let off = (((event.start_beat + event.beats) * spb).round() as u32).min(phrase_end);
            let release = secs_to_frames(RELEASE_S, sr, 1);
            let end = off.saturating_add(release).min(self.frames);
            if end <= start + 2 {
                continue;
            }
            let attack = secs_to_frames(ATTACK_S, sr, 1).min(((off - start) / 2).max(1));
            let release = release.min(end - start);
            let envelope = Voice {
                start,
                end,
                first_partial: 0,
                partial_count: 0,
                inv_attack: 1.0 / attack as f32,
                inv_release: 1.0 / release as f32,
                pad: [0; 2],
            };
            for &note in notes {
                // One generator per voice: fewer partials draw a prefix of the same
                // values, so a simplified texture keeps the character of the full one.
                let vr = Rng::new(rng.next_u64());
                self.build_voice(vr, note, partials, sr, note_gain, envelope);
            }
        }
    }

    /// One chord note's partials (up to `partials`, none above the aliasing
    /// limit), normalised to `note_gain`, and its voice with `envelope`'s span.
    fn build_voice(
        &mut self,
        mut vr: Rng,
        note: u8,
        partials: u32,
        sr: f64,
        note_gain: f32,
        envelope: Voice,
    ) {
        let first = self.partials.len() as u32;
        let f0 = f64::from(midi_to_hz(f32::from(note)));
        let inharmonicity = f64::from(vr.range_f32(2e-5, 1e-4));
        let tilt = vr.range_f32(1.0, 1.5);
        let voice_pan = vr.range_f32(-0.5, 0.5);
        let mut amps = Vec::with_capacity(partials as usize);
        let mut total = 0.0_f32;
        for k in 1..=partials {
            let kf = f64::from(k);
            let detune = 1.0 + f64::from(vr.next_bipolar()) * 3e-4;
            let hz = kf * f0 * (1.0 + inharmonicity * kf * kf).sqrt() * detune;
            let amp = (k as f32).powf(-tilt) * vr.range_f32(0.6, 1.0);
            let spread = (0.15 + 0.05 * k as f32).min(0.8);
            let pan = voice_pan + spread * vr.next_bipolar();
            let depth = f64::from(vr.range_f32(0.5, 4.0)) * 5.78e-4; // cents → ratio
            let rate_hz = f64::from(vr.range_f32(0.05, 0.3));
            let phase0 = vr.next_u64() as u32;
            let drift_phase0 = vr.next_u64() as u32;
            if hz > MAX_PARTIAL_FRACTION_OF_SR * sr {
                continue;
            }
            total += amp;
            let (gl, gr) = pan_gains(pan);
            amps.push(amp);
            self.partials.push(Partial {
                inc: hz_to_inc(hz, sr),
                phase0,
                drift_inc: hz_to_inc(rate_hz, sr),
                drift_phase0,
                drift_cycles: (hz * depth / (std::f64::consts::TAU * rate_hz)) as f32,
                drift_c0: sin_cycles(phase_to_cycles(drift_phase0) + 0.25),
                gain_l: gl,
                gain_r: gr,
            });
        }
        let count = self.partials.len() as u32 - first;
        if count == 0 {
            return;
        }
        let norm = note_gain / total.max(1e-6);
        for (p, amp) in self.partials[first as usize..].iter_mut().zip(amps) {
            p.gain_l *= amp * norm;
            p.gain_r *= amp * norm;
        }
        self.voices.push(Voice {
            first_partial: first,
            partial_count: count,
            ..envelope
        });
    }

    fn build_grains(&mut self, seed: u64, phrase: &Phrase, sr: f64, spb: f64, quality: Quality) {
        let mut rng = Rng::derive(seed, phrase.index, STREAM_TEXTURE_GRAINS);
        let frames = self.phrase_frames;
        let seconds = f64::from(frames) / sr;
        let count = (seconds * f64::from(quality.grains_per_second.max(0.0))).round() as usize;
        let (min_len, max_len) = (
            secs_to_frames(f64::from(GRAIN_S.0), sr, 2),
            secs_to_frames(f64::from(GRAIN_S.1), sr, 2),
        );
        if frames <= max_len || phrase.chords.is_empty() {
            return;
        }
        self.grains.reserve(count);
        for _ in 0..count {
            let len = (min_len + rng.below(max_len - min_len + 1)).max(2);
            let start = rng.below(frames - len);
            let beat = f64::from(start) / spb;
            let Some(chord) = phrase.chord_at(beat) else {
                continue;
            };
            let notes = chord.notes();
            if notes.is_empty() {
                continue;
            }
            let note = notes[rng.below(notes.len() as u32) as usize];
            let octave = [0.0_f32, 12.0, 12.0, 24.0][rng.below(4) as usize];
            let cents = rng.next_bipolar() * 0.05;
            let hz = f64::from(midi_to_hz(f32::from(note) + octave + cents));
            let gain = rng.range_f32(GRAIN_GAIN.0, GRAIN_GAIN.1);
            let (gl, gr) = pan_gains(rng.next_bipolar() * 0.9);
            let phase0 = rng.next_u64() as u32;
            if hz > MAX_PARTIAL_FRACTION_OF_SR * sr {
                continue;
            }
            self.grains.push(Grain {
                start,
                frames: len,
                inc: hz_to_inc(hz, sr),
                phase0,
                half_inv_frames: 0.5 / len as f32,
                gain_l: gain * gl,
                gain_r: gain * gr,
                pad: 0,
            });
            self.max_grain_frames = self.max_grain_frames.max(len);
        }
        self.grains.sort_by_key(|g| g.start);
    }
}

/// The pad envelope of `voice` at frame `n` (inside `[start, end)`): linear attack
/// and release ramps, multiplied and smoothed (`e² (3 − 2e)`).
#[inline]
#[must_use]
pub fn voice_envelope(voice: &Voice, n: u32) -> f32 {
    let a = ((n - voice.start + 1) as f32 * voice.inv_attack).min(1.0);
    let r = ((voice.end - n) as f32 * voice.inv_release).min(1.0);
    let e = a * r;
    e * e * (3.0 - 2.0 * e)
}

/// The drift term of `partial` at frame `m` from its voice start, in cycles,
/// wrapped to `[0, 1)`.
#[inline]
#[must_use]
pub fn drift_cycles(partial: &Partial, m: u32) -> f32 {
    let theta = phase_to_cycles(
        partial
            .drift_inc
            .wrapping_mul(m)
            .wrapping_add(partial.drift_phase0),
    );
    let d = partial.drift_cycles * (partial.drift_c0 - sin_cycles(theta + 0.25));
    d - d.floor()
}

/// The exact phase of `partial` at frame `m` from its voice start, in cycles
/// (`[0, 2)`; [`sin_cycles`] reduces it).
#[inline]
#[must_use]
pub fn partial_phase(partial: &Partial, m: u32) -> f32 {
    phase_to_cycles(partial.inc.wrapping_mul(m).wrapping_add(partial.phase0))
        + drift_cycles(partial, m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{ComposeParams, Composer};

    fn phrase(index: u64, bars: u32) -> Phrase {
        let params = ComposeParams {
            bars,
            ..ComposeParams::default()
        };
        Composer::new(3, params).seek(index)
    }

    #[test]
    fn sin_cycles_matches_std() {
        let mut worst = 0.0_f64;
        for i in -40_000..40_000 {
            let x = i as f32 / 10_000.0;
            let exact = (std::f64::consts::TAU * f64::from(x)).sin();
            worst = worst.max((f64::from(sin_cycles(x)) - exact).abs());
        }
        assert!(worst < 5e-7, "worst error {worst}");
    }

    #[test]
    fn increments_are_fixed_point() {
        assert_eq!(hz_to_inc(12_000.0, 48_000.0), 1 << 30);
        assert_eq!(hz_to_inc(0.0, 48_000.0), 0);
        assert_eq!(phase_to_cycles(1 << 31), 0.5);
    }

    #[test]
    fn description_is_pure_and_sized() {
        let p = phrase(2, 2);
        let a = TextureDesc::build(9, &p, 8_000.0, Quality::FULL);
        let b = TextureDesc::build(9, &p, 8_000.0, Quality::FULL);
        assert_eq!(a, b);
        assert_eq!(a.phrase_frames as usize, phrase_frames(&p, 8_000.0));
        assert_eq!(a.frames as usize, texture_frames(&p, 8_000.0));
        assert_eq!(a.frames, a.phrase_frames + 16_000, "a 2 s tail");
        let last_end = a.voices.iter().map(|v| v.end).max();
        assert_eq!(
            last_end,
            Some(a.frames),
            "the last chord releases into the tail"
        );
        assert!(!a.voices.is_empty());
        assert!(!a.grains.is_empty());
        let c = TextureDesc::build(10, &p, 8_000.0, Quality::FULL);
        assert_ne!(a, c, "another seed, another texture");
        for v in &a.voices {
            assert!(v.start < v.end && v.end <= a.frames);
        }
        for g in &a.grains {
            assert!(g.start + g.frames <= a.phrase_frames);
        }
        assert!(a.grains.windows(2).all(|w| w[0].start <= w[1].start));
    }

    #[test]
    fn full_quality_has_32_partials_per_note_at_48k() {
        let p = phrase(0, 1);
        let d = TextureDesc::build(1, &p, 48_000.0, Quality::FULL);
        let notes: Vec<u8> = p
            .chords
            .iter()
            .flat_map(|c| c.chord.notes().iter().copied())
            .collect();
        assert_eq!(d.voices.len(), notes.len());
        for (v, note) in d.voices.iter().zip(notes) {
            // Every partial that fits under the anti-aliasing limit is kept.
            let top_hz = 32.0 * midi_to_hz(f32::from(note)) * 1.1;
            if top_hz < 0.45 * 48_000.0 {
                assert_eq!(v.partial_count, 32, "{v:?}");
            } else {
                assert!(v.partial_count >= 16, "{v:?}");
            }
        }
        let s = TextureDesc::build(1, &p, 48_000.0, Quality::FULL.simplified());
        assert!(s.partials.len() * 2 <= d.partials.len() + d.voices.len());
        assert!(s.grains.len() < d.grains.len());
    }

    #[test]
    fn quality_falls_with_the_degradation_level() {
        let q: Vec<Quality> = Level::ALL.iter().map(|l| Quality::for_level(*l)).collect();
        assert_eq!(q[0], Quality::FULL);
        assert!(q.windows(2).all(|w| w[1].partials <= w[0].partials));
        assert_eq!(q[3].grains_per_second, 0.0);
    }

    #[test]
    fn frames_round_like_the_renderer() {
        let mut p = phrase(0, 1);
        p.params.bpm = 77.0;
        let spb = 44_100.0_f64 * 60.0 / 77.0;
        assert_eq!(phrase_frames(&p, 44_100.0), (4.0 * spb).round() as usize);
    }
}
