//! The melody: four soft voices (a sine with a quiet octave partial under a gentle
//! envelope) that play the composer's line, gliding from note to note.
//!
//! One voice carries the line. While its previous note is still clearly sounding
//! it glides to the next pitch ([`LEGATO_GLIDE_MS`]) and re-attacks from its current
//! level; otherwise the next note takes an idle voice (or steals the quietest), so
//! release tails overlap. The four voices render together in SIMD lanes.

use wide::f32x4;

use super::ramp::CONTROL_FRAMES;
use crate::compose::theory::midi_to_hz;
use crate::dsp::envelope::{Adsr, AdsrParams};
use crate::dsp::glide::Glide;
use crate::dsp::osc::sin_unit_x4;

/// Melody voices (one line plus overlapping release tails); one SIMD vector.
pub const MELODY_VOICES: usize = 4;
/// Glide between legato notes, in milliseconds (within the 5–50 ms design range).
pub const LEGATO_GLIDE_MS: f32 = 35.0;
/// A releasing line voice louder than this glides to the next note instead of
/// leaving it to a fresh voice.
const LEGATO_LEVEL: f32 = 0.15;
/// Output gain of a full-velocity voice.
const VOICE_GAIN: f32 = 0.22;
/// Level of the octave partial relative to the fundamental.
const OCTAVE_PARTIAL: f32 = 0.22;
/// Where each voice sits in the stereo field (-1 left … 1 right).
const PANS: [f32; MELODY_VOICES] = [-0.25, 0.2, -0.1, 0.3];

const MELODY_ENVELOPE: AdsrParams = AdsrParams {
    attack_s: 0.06,
    decay_s: 1.2,
    sustain: 0.55,
    release_s: 1.8,
};

/// A voice's control-rate state; its audio-rate state lives in the lanes.
#[derive(Debug, Clone)]
struct Voice {
    env: Adsr,
    /// Pitch in MIDI note units.
    pitch: Glide,
    held: bool,
    /// Velocity gain of the current note.
    gain: f32,
    /// Order of the voice's last note-on, for stealing.
    started: u64,
}

/// The melody voice set.
#[derive(Debug, Clone)]
pub struct MelodyVoices {
    sample_rate: f32,
    voices: [Voice; MELODY_VOICES],
    line: Option<usize>,
    notes_started: u64,
    /// Fundamental phase of each lane, in turns `[0, 1)`.
    phase: f32x4,
    /// Phase increment per sample, and its per-sample change during a glide.
    inc: [f32; MELODY_VOICES],
    inc_step: [f32; MELODY_VOICES],
    /// Envelope level and its per-sample change until the next tick.
    level: [f32; MELODY_VOICES],
    level_step: [f32; MELODY_VOICES],
    /// Constant-power pan gains of the lanes.
    pan_l: f32x4,
    pan_r: f32x4,
}

impl MelodyVoices {
    /// A silent voice set at `sample_rate`.
    #[must_use]
    pub fn new(sample_rate: f32) -> Self {
        let control_rate = sample_rate / CONTROL_FRAMES as f32;
        let mut env = Adsr::new(control_rate);
        env.set_params(MELODY_ENVELOPE);
        let voice = Voice {
            env,
            pitch: Glide::new(control_rate, LEGATO_GLIDE_MS, 60.0),
            held: false,
            gain: 0.0,
            started: 0,
        };
        // Constant-power panning: angle 0 is hard left, π/2 hard right.
        let angles = PANS.map(|p| (p + 1.0) * std::f32::consts::FRAC_PI_4);
        Self {
            sample_rate,
            voices: std::array::from_fn(|_| voice.clone()),
            line: None,
            notes_started: 0,
            phase: f32x4::ZERO,
            inc: [0.0; MELODY_VOICES],
            inc_step: [0.0; MELODY_VOICES],
            level: [0.0; MELODY_VOICES],
            level_step: [0.0; MELODY_VOICES],
            pan_l: f32x4::from(angles.map(f32::cos)),
            pan_r: f32x4::from(angles.map(f32::sin)),
        }
    }

    /// Silences every voice.
    pub fn reset(&mut self) {
        for v in &mut self.voices {
            v.env.reset();
            v.held = false;
        }
        self.line = None;
        self.notes_started = 0;
        self.phase = f32x4::ZERO;
        self.inc = [0.0; MELODY_VOICES];
        self.inc_step = [0.0; MELODY_VOICES];
        self.level = [0.0; MELODY_VOICES];
        self.level_step = [0.0; MELODY_VOICES];
    }

    /// Number of voices sounding.
    #[must_use]
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.env.is_active()).count()
    }

    /// Starts `note` at `velocity` (0..=1). While the line's previous note is still
    /// clearly sounding (held, or early in its release) the same voice glides to the
    /// new pitch and re-attacks from its current level, so the line sings; otherwise
    /// a fresh voice attacks. `frames_to_tick` is the distance to the next tick.
    pub fn note_on(&mut self, note: u8, velocity: f32, frames_to_tick: usize) {
        let target = f32::from(note);
        self.notes_started += 1;
        let legato = self
            .line
            .filter(|&i| self.voices[i].held || self.voices[i].env.level() > LEGATO_LEVEL);
        let i = if let Some(i) = legato {
            self.voices[i].pitch.set_target(target);
            i
        } else {
            let i = self.pick_voice();
            if !self.voices[i].env.is_active() {
                let mut phase = self.phase.to_array();
                phase[i] = 0.0;
                self.phase = f32x4::from(phase);
            }
            self.voices[i].pitch.jump(target);
            self.inc[i] = self.inc_for(target);
            self.inc_step[i] = 0.0;
            i
        };
        let v = &mut self.voices[i];
        v.gain = VOICE_GAIN * velocity.clamp(0.0, 1.0);
        v.held = true;
        v.started = self.notes_started;
        v.env.note_on();
        self.line = Some(i);
        self.control_voice(i, frames_to_tick.max(1));
    }

    /// Releases the line's held note.
    pub fn note_off(&mut self) {
        if let Some(i) = self.line {
            let v = &mut self.voices[i];
            if v.held {
                v.held = false;
                v.env.note_off();
            }
        }
    }

    fn inc_for(&self, pitch: f32) -> f32 {
        (midi_to_hz(pitch) / self.sample_rate).min(0.45)
    }

    fn pick_voice(&self) -> usize {
        let voices = self.voices.iter().enumerate();
        voices
            .clone()
            .find(|(_, v)| !v.env.is_active())
            .or_else(|| {
                voices
                    .clone()
                    .filter(|(_, v)| !v.held)
                    .min_by(|a, b| a.1.env.level().total_cmp(&b.1.env.level()))
            })
            .or_else(|| voices.min_by_key(|(_, v)| v.started))
            .map_or(0, |(i, _)| i)
    }

    /// One control step of voice `i`: envelope and glide ramps over `frames`.
    fn control_voice(&mut self, i: usize, frames: usize) {
        let v = &mut self.voices[i];
        let level = v.env.process() * v.gain;
        let gliding = v.pitch.is_gliding();
        let pitch = v.pitch.process();
        let n = frames as f32;
        self.level_step[i] = (level - self.level[i]) / n;
        if gliding {
            self.inc_step[i] = (self.inc_for(pitch) - self.inc[i]) / n;
        } else {
            self.inc[i] = self.inc_for(pitch);
            self.inc_step[i] = 0.0;
        }
    }

    /// The control tick: envelopes and glides of every sounding voice.
    pub fn control_tick(&mut self) {
        for i in 0..MELODY_VOICES {
            if self.voices[i].env.is_active() || self.level[i] > 0.0 {
                self.control_voice(i, CONTROL_FRAMES);
            } else {
                self.level[i] = 0.0;
                self.level_step[i] = 0.0;
            }
        }
    }

    /// Adds the voices' output to `left`/`right`.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        if self
            .level
            .iter()
            .zip(&self.level_step)
            .all(|(l, s)| *l <= 0.0 && *s <= 0.0)
        {
            return;
        }
        let (mut phase, mut inc) = (self.phase, f32x4::from(self.inc));
        let inc_step = f32x4::from(self.inc_step);
        let (mut level, level_step) = (f32x4::from(self.level), f32x4::from(self.level_step));
        let (gain_l, gain_r) = (self.pan_l, self.pan_r);
        let one = f32x4::ONE;
        let octave = f32x4::splat(OCTAVE_PARTIAL);
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let doubled = phase + phase;
            let doubled = doubled - doubled.simd_ge(one).bitselect(one, f32x4::ZERO);
            let y = (sin_unit_x4(phase) + octave * sin_unit_x4(doubled)) * level;
            *l += (y * gain_l).reduce_add();
            *r += (y * gain_r).reduce_add();
            phase += inc;
            phase -= phase.simd_ge(one).bitselect(one, f32x4::ZERO);
            inc += inc_step;
            level += level_step;
        }
        self.phase = phase;
        self.inc = inc.to_array();
        self.level = level.to_array();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: &mut MelodyVoices, frames: usize) -> Vec<f32> {
        let mut l = vec![0.0; frames];
        let mut r = vec![0.0; frames];
        for (cl, cr) in l
            .chunks_mut(CONTROL_FRAMES)
            .zip(r.chunks_mut(CONTROL_FRAMES))
        {
            m.control_tick();
            m.render(cl, cr);
        }
        l
    }

    fn zero_crossings(x: &[f32]) -> usize {
        x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count()
    }

    #[test]
    fn legato_glides_on_one_voice() {
        let mut m = MelodyVoices::new(48_000.0);
        m.note_on(69, 1.0, CONTROL_FRAMES);
        let a = run(&mut m, 48_000);
        m.note_on(81, 1.0, CONTROL_FRAMES);
        assert_eq!(m.active_voices(), 1, "legato reuses the sounding voice");
        let b = run(&mut m, 48_000);
        // The octave partial adds no extra zero crossings to a sine at 2x.
        assert!(
            (435..=445).contains(&zero_crossings(&a[..])),
            "{}",
            zero_crossings(&a)
        );
        let settled = &b[4_800..];
        let expected = 880 * settled.len() / 48_000;
        let got = zero_crossings(settled);
        assert!(got.abs_diff(expected) <= 3, "{got} vs {expected}");
    }

    #[test]
    fn detached_notes_overlap_tails() {
        let mut m = MelodyVoices::new(48_000.0);
        m.note_on(60, 0.8, CONTROL_FRAMES);
        run(&mut m, 10_000);
        m.note_off();
        m.note_on(64, 0.8, CONTROL_FRAMES);
        assert_eq!(m.active_voices(), 1, "a sounding line glides on");
        m.note_off();
        let line = m.line.unwrap();
        while m.voices[line].env.level() >= LEGATO_LEVEL {
            run(&mut m, 480);
        }
        assert!(m.voices[line].env.is_active());
        m.note_on(67, 0.8, CONTROL_FRAMES);
        assert_eq!(m.active_voices(), 2, "a faded line leaves its tail");
        for n in 0..10 {
            m.note_off();
            m.note_on(60 + n, 0.8, CONTROL_FRAMES);
        }
        assert!(m.active_voices() <= MELODY_VOICES);
        m.note_off();
        let tail = run(&mut m, 48_000 * 4);
        assert!(tail[tail.len() - 64..].iter().all(|x| x.abs() < 1e-4));
        assert_eq!(m.active_voices(), 0);
    }
}
