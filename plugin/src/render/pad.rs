//! The pad: a bank of chord voices, each two detuned polyBLEP saws through its own
//! resonant low-pass state-variable filter (Simper's trapezoidal SVF), shaped by a
//! slow ADSR, swept by a slow per-voice LFO and panned across the stereo field.
//!
//! The voices are laid out structure-of-arrays and rendered four at a time in SIMD
//! lanes (`wide::f32x4`); a group of four whose voices are all silent is skipped.
//! Chord changes keep common tones sounding (legato), release the others, and start
//! new notes on idle voices or, when none is idle, on the quietest one (stealing).
//!
//! **Cheap mode** (the degradation machine's `critical`): one saw per voice instead
//! of two, through a one-pole low-pass (Zavalishin's TPT form) instead of the SVF,
//! about half the work. The switch is a [`CHEAP_RAMP_MS`] crossfade between the
//! two paths (both run only while it lasts), so it never clicks.

use wide::f32x4;

use super::ramp::{Ramp, CONTROL_FRAMES};
use crate::compose::phrase::Chord;
use crate::compose::theory::midi_to_hz;
use crate::dsp::envelope::{Adsr, AdsrParams};
use crate::rng::Rng;

/// Voices in the bank (a multiple of 4).
pub const PAD_VOICES: usize = 16;
const GROUPS: usize = PAD_VOICES / 4;

/// Detune of each saw from the note, in cents (one up, one down).
const DETUNE_CENTS: f32 = 7.0;
/// Per-voice output gain before panning; five voices sum to about -10 dBFS RMS.
const VOICE_GAIN: f32 = 0.16;
/// Filter resonance.
const FILTER_Q: f32 = 0.8;
/// How long the switch to or from cheap mode takes, in milliseconds.
pub const CHEAP_RAMP_MS: f32 = 100.0;
/// Gain of cheap mode's single saw: the mean of two uncorrelated saws has
/// `1/sqrt(2)` of one saw's RMS, so the level does not change.
const CHEAP_SAW_GAIN: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// The envelope every pad voice uses: slow swells and long tails.
const PAD_ENVELOPE: AdsrParams = AdsrParams {
    attack_s: 2.2,
    decay_s: 2.5,
    sustain: 0.7,
    release_s: 3.5,
};

/// One voice's control-rate state (the audio-rate state lives in the SIMD lanes).
#[derive(Debug, Clone)]
struct VoiceControl {
    note: u8,
    held: bool,
    env: Adsr,
    lfo_phase: f32,
    lfo_inc: f32,
    cutoff_base_hz: f32,
    gain_l: f32,
    gain_r: f32,
}

/// The pad voice bank.
#[derive(Debug, Clone)]
pub struct PadBank {
    sample_rate: f32,
    rng: Rng,
    seed: u64,
    voices: [VoiceControl; PAD_VOICES],
    // Audio-rate lane state, four voices per vector.
    phase_a: [f32x4; GROUPS],
    phase_b: [f32x4; GROUPS],
    inc_a: [[f32; 4]; GROUPS],
    inc_b: [[f32; 4]; GROUPS],
    inv_inc_a: [[f32; 4]; GROUPS],
    inv_inc_b: [[f32; 4]; GROUPS],
    ic1: [f32x4; GROUPS],
    ic2: [f32x4; GROUPS],
    a1: [[f32; 4]; GROUPS],
    a2: [[f32; 4]; GROUPS],
    a3: [[f32; 4]; GROUPS],
    level: [f32x4; GROUPS],
    level_step: [[f32; 4]; GROUPS],
    gain_l: [[f32; 4]; GROUPS],
    gain_r: [[f32; 4]; GROUPS],
    group_active: [bool; GROUPS],
    /// Cheap mode's one-pole coefficient `g / (1 + g)` and state.
    lp_coef: [[f32; 4]; GROUPS],
    lp_state: [f32x4; GROUPS],
    /// Crossfade from the full path (0) to the cheap path (1), per sample.
    cheap_mix: Ramp,
    /// The crossfade's control-rate value, which `cheap_mix` ramps to.
    cheap_level: f32,
    /// Where `cheap_mix` is heading: 0 or 1.
    cheap_target: f32,
    /// `cheap_mix` change per control tick.
    cheap_step: f32,
}

impl PadBank {
    /// A silent bank at `sample_rate`; `seed` fixes the voices' phases and LFOs.
    #[must_use]
    pub fn new(sample_rate: f32, seed: u64) -> Self {
        let control_rate = sample_rate / CONTROL_FRAMES as f32;
        let voice = VoiceControl {
            note: 0,
            held: false,
            env: {
                let mut env = Adsr::new(control_rate);
                env.set_params(PAD_ENVELOPE);
                env
            },
            lfo_phase: 0.0,
            lfo_inc: 0.0,
            cutoff_base_hz: 1000.0,
            gain_l: 0.0,
            gain_r: 0.0,
        };
        let zero = [f32x4::ZERO; GROUPS];
        let lanes = [[0.0; 4]; GROUPS];
        let mut bank = Self {
            sample_rate,
            rng: Rng::new(seed),
            seed,
            voices: std::array::from_fn(|_| voice.clone()),
            phase_a: zero,
            phase_b: zero,
            inc_a: lanes,
            inc_b: lanes,
            inv_inc_a: lanes,
            inv_inc_b: lanes,
            ic1: zero,
            ic2: zero,
            a1: lanes,
            a2: lanes,
            a3: lanes,
            level: zero,
            level_step: lanes,
            gain_l: lanes,
            gain_r: lanes,
            group_active: [false; GROUPS],
            lp_coef: lanes,
            lp_state: zero,
            cheap_mix: Ramp::new(0.0),
            cheap_level: 0.0,
            cheap_target: 0.0,
            cheap_step: CONTROL_FRAMES as f32 / (CHEAP_RAMP_MS * 1e-3 * sample_rate),
        };
        bank.reset();
        bank
    }

    /// Silences every voice and reseeds, so the same events reproduce the same sound.
    pub fn reset(&mut self) {
        self.rng = Rng::new(self.seed);
        for v in &mut self.voices {
            v.env.reset();
            v.held = false;
        }
        let zero = [f32x4::ZERO; GROUPS];
        self.phase_a = zero;
        self.phase_b = zero;
        self.ic1 = zero;
        self.ic2 = zero;
        self.level = zero;
        self.level_step = [[0.0; 4]; GROUPS];
        self.group_active = [false; GROUPS];
        self.lp_state = zero;
        self.cheap_level = self.cheap_target;
        self.cheap_mix.jump(self.cheap_target);
        for lane in 0..PAD_VOICES {
            self.set_note_lanes(lane, 60);
            self.set_filter_lane(lane, 1000.0);
        }
    }

    /// Switches to the cheap voice (one saw, one-pole filter) or back, over
    /// [`CHEAP_RAMP_MS`] from the next control tick. Never allocates.
    pub fn set_cheap(&mut self, cheap: bool) {
        self.cheap_target = if cheap { 1.0 } else { 0.0 };
    }

    /// Whether the bank is in (or heading to) cheap mode.
    #[must_use]
    pub fn is_cheap(&self) -> bool {
        self.cheap_target > 0.0
    }

    /// Number of voices currently sounding.
    #[must_use]
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.env.is_active()).count()
    }

    /// Moves to `chord`: common tones sustain, other held notes release, new notes
    /// start. `velocity` (0..=1) scales the new notes. `frames_to_tick` is how far
    /// the next control tick is, so a new voice's envelope starts right away.
    pub fn set_chord(&mut self, chord: &Chord, velocity: f32, frames_to_tick: usize) {
        let notes = chord.notes();
        for v in &mut self.voices {
            if v.held && !notes.contains(&v.note) {
                v.held = false;
                v.env.note_off();
            }
        }
        for (i, &note) in notes.iter().enumerate() {
            if self.voices.iter().any(|v| v.held && v.note == note) {
                continue;
            }
            let lane = self.pick_lane(note);
            self.start(lane, note, velocity, i, notes.len(), frames_to_tick);
        }
    }

    /// Releases every held note.
    pub fn release_all(&mut self) {
        for v in &mut self.voices {
            if v.held {
                v.held = false;
                v.env.note_off();
            }
        }
    }

    /// A lane for `note`: the one already ringing that note out, else an idle
    /// one, else the quietest released one, else the quietest of all.
    fn pick_lane(&self, note: u8) -> usize {
        let by_level = |a: &(usize, &VoiceControl), b: &(usize, &VoiceControl)| {
            a.1.env.level().total_cmp(&b.1.env.level())
        };
        let voices = self.voices.iter().enumerate();
        voices
            .clone()
            .find(|(_, v)| v.env.is_active() && !v.held && v.note == note)
            .or_else(|| voices.clone().find(|(_, v)| !v.env.is_active()))
            .or_else(|| voices.clone().filter(|(_, v)| !v.held).min_by(by_level))
            .or_else(|| voices.clone().min_by(by_level))
            .map_or(0, |(i, _)| i)
    }

    fn start(
        &mut self,
        lane: usize,
        note: u8,
        velocity: f32,
        rank: usize,
        count: usize,
        frames_to_tick: usize,
    ) {
        let was_active = self.voices[lane].env.is_active();
        let same_note = self.voices[lane].note == note;
        if !(was_active && same_note) {
            self.set_note_lanes(lane, note);
            if !was_active {
                let (g, l) = (lane / 4, lane % 4);
                let mut pa = self.phase_a[g].to_array();
                let mut pb = self.phase_b[g].to_array();
                pa[l] = self.rng.next_f32();
                pb[l] = self.rng.next_f32();
                self.phase_a[g] = f32x4::from(pa);
                self.phase_b[g] = f32x4::from(pb);
            }
        }
        // Spread the chord across the field: bass near the centre, upper notes
        // alternating left and right, a little random offset per voice.
        let spread = if count > 1 {
            rank as f32 / (count - 1) as f32
        } else {
            0.5
        };
        let side = if rank.is_multiple_of(2) { -1.0 } else { 1.0 };
        let pan = (side * spread * 0.7 + self.rng.range_f32(-0.1, 0.1)).clamp(-1.0, 1.0);
        let angle = (pan + 1.0) * std::f32::consts::FRAC_PI_4;
        // Lower notes a little louder so the bass carries; quiet very high notes.
        let tilt = (1.0 - (f32::from(note) - 48.0) / 60.0).clamp(0.5, 1.3);
        let gain = VOICE_GAIN * velocity * tilt;
        let v = &mut self.voices[lane];
        v.note = note;
        v.held = true;
        v.gain_l = gain * angle.cos();
        v.gain_r = gain * angle.sin();
        v.lfo_inc = self.rng.range_f32(0.06, 0.16) * CONTROL_FRAMES as f32 / self.sample_rate;
        v.lfo_phase = self.rng.next_f32();
        v.cutoff_base_hz = (midi_to_hz(f32::from(note)) * 2.5 + 450.0).min(2600.0);
        v.env.note_on();
        self.group_active[lane / 4] = true;
        self.control_lane(lane, frames_to_tick.max(1));
    }

    fn set_note_lanes(&mut self, lane: usize, note: u8) {
        let hz = midi_to_hz(f32::from(note));
        let ratio = (DETUNE_CENTS / 1200.0).exp2();
        let nyquist_guard = 0.45 * self.sample_rate;
        let inc_a = (hz * ratio).min(nyquist_guard) / self.sample_rate;
        let inc_b = (hz / ratio).min(nyquist_guard) / self.sample_rate;
        let (g, l) = (lane / 4, lane % 4);
        self.inc_a[g][l] = inc_a;
        self.inc_b[g][l] = inc_b;
        self.inv_inc_a[g][l] = 1.0 / inc_a;
        self.inv_inc_b[g][l] = 1.0 / inc_b;
    }

    fn set_filter_lane(&mut self, lane: usize, cutoff_hz: f32) {
        // Simper's SVF: g = tan(pi fc / fs), k = 1/Q.
        let fc = cutoff_hz.clamp(20.0, 0.45 * self.sample_rate);
        let g = (std::f32::consts::PI * fc / self.sample_rate).tan();
        let k = 1.0 / FILTER_Q;
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        let (gi, l) = (lane / 4, lane % 4);
        self.a1[gi][l] = a1;
        self.a2[gi][l] = a2;
        self.a3[gi][l] = a3;
        self.lp_coef[gi][l] = g / (1.0 + g);
    }

    /// One control step for `lane`: envelope, LFO, filter, ramps over `frames`.
    fn control_lane(&mut self, lane: usize, frames: usize) {
        let (g, l) = (lane / 4, lane % 4);
        let current = self.level[g].to_array()[l];
        let v = &mut self.voices[lane];
        let target = v.env.process();
        let step = (target - current) / frames as f32;
        v.lfo_phase = (v.lfo_phase + v.lfo_inc).fract();
        let lfo = parabolic_sine(v.lfo_phase);
        let cutoff = v.cutoff_base_hz * (1.0 + 0.3 * lfo) * (0.55 + 0.45 * target);
        let (gain_l, gain_r) = (v.gain_l, v.gain_r);
        self.set_filter_lane(lane, cutoff);
        self.level_step[g][l] = step;
        self.gain_l[g][l] = gain_l;
        self.gain_r[g][l] = gain_r;
    }

    /// The control tick: advances every sounding voice's envelope and filter, and
    /// the crossfade to or from cheap mode.
    pub fn control_tick(&mut self) {
        let at = self.cheap_level;
        if at != self.cheap_target {
            if at == 0.0 {
                // Entering the cheap path: its filter starts from rest.
                self.lp_state = [f32x4::ZERO; GROUPS];
            } else if at == 1.0 {
                // Back to the full path: its filters start from rest.
                self.ic1 = [f32x4::ZERO; GROUPS];
                self.ic2 = [f32x4::ZERO; GROUPS];
            }
            self.cheap_level = if self.cheap_target > at {
                (at + self.cheap_step).min(1.0)
            } else {
                (at - self.cheap_step).max(0.0)
            };
            self.cheap_mix.set_target(self.cheap_level, CONTROL_FRAMES);
        } else if self.cheap_mix.step() != 0.0 {
            // The last ramp has arrived (up to rounding): settle exactly.
            self.cheap_mix.jump(at);
        }
        for g in 0..GROUPS {
            let mut any = false;
            for lane in g * 4..g * 4 + 4 {
                if self.voices[lane].env.is_active() || self.level[g].to_array()[lane % 4] > 0.0 {
                    self.control_lane(lane, CONTROL_FRAMES);
                    any = true;
                } else {
                    set_lane(&mut self.level[g], lane % 4, 0.0);
                    self.level_step[g][lane % 4] = 0.0;
                }
            }
            if !any && self.group_active[g] {
                // Clear filter state so a silent group holds no denormals.
                self.ic1[g] = f32x4::ZERO;
                self.ic2[g] = f32x4::ZERO;
            }
            self.group_active[g] = any;
        }
    }

    /// Adds the bank's output to `left`/`right` (at most [`CONTROL_FRAMES`] long).
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len()).min(CONTROL_FRAMES);
        let mut acc_l = [f32x4::ZERO; CONTROL_FRAMES];
        let mut acc_r = [f32x4::ZERO; CONTROL_FRAMES];
        // Per-sample weights of the two paths while a switch is under way.
        let fading = self.cheap_mix.step() != 0.0;
        let (mut full_w, mut cheap_w) = ([1.0; CONTROL_FRAMES], [1.0; CONTROL_FRAMES]);
        if fading {
            for (f, c) in full_w[..n].iter_mut().zip(&mut cheap_w[..n]) {
                let m = self.cheap_mix.tick();
                (*f, *c) = (1.0 - m, m);
            }
        }
        let mix = self.cheap_mix.value();
        let (run_full, run_cheap) = (fading || mix < 1.0, fading || mix > 0.0);
        let mut any = false;
        for g in 0..GROUPS {
            if !self.group_active[g] {
                continue;
            }
            any = true;
            if run_cheap {
                let w = fading.then_some(&cheap_w[..n]);
                self.render_group_cheap(g, &mut acc_l[..n], &mut acc_r[..n], w, !run_full);
            }
            if run_full {
                let w = fading.then_some(&full_w[..n]);
                self.render_group(g, &mut acc_l[..n], &mut acc_r[..n], w);
            }
        }
        if any {
            for i in 0..n {
                left[i] += acc_l[i].reduce_add();
                right[i] += acc_r[i].reduce_add();
            }
        }
    }

    /// The full voice of group `g` (two saws, SVF), scaled per sample by `weight`
    /// when given.
    #[inline]
    fn render_group(
        &mut self,
        g: usize,
        acc_l: &mut [f32x4],
        acc_r: &mut [f32x4],
        weight: Option<&[f32]>,
    ) {
        let one = f32x4::ONE;
        let two = f32x4::splat(2.0);
        let half = f32x4::HALF;
        let v = f32x4::from;
        let (ia, ib) = (v(self.inc_a[g]), v(self.inc_b[g]));
        let (ria, rib) = (v(self.inv_inc_a[g]), v(self.inv_inc_b[g]));
        let (a1, a2, a3) = (v(self.a1[g]), v(self.a2[g]), v(self.a3[g]));
        let (gl, gr, step) = (v(self.gain_l[g]), v(self.gain_r[g]), v(self.level_step[g]));
        let (mut pa, mut pb) = (self.phase_a[g], self.phase_b[g]);
        let (mut ic1, mut ic2, mut level) = (self.ic1[g], self.ic2[g], self.level[g]);
        for (i, (l, r)) in acc_l.iter_mut().zip(acc_r.iter_mut()).enumerate() {
            pa += ia;
            pa -= pa.simd_ge(one).bitselect(one, f32x4::ZERO);
            pb += ib;
            pb -= pb.simd_ge(one).bitselect(one, f32x4::ZERO);
            let x = (blep_saw(pa, ia, ria) + blep_saw(pb, ib, rib)) * half;
            let v3 = x - ic2;
            let v1 = a1 * ic1 + a2 * v3;
            let v2 = ic2 + a2 * ic1 + a3 * v3;
            ic1 = two * v1 - ic1;
            ic2 = two * v2 - ic2;
            let mut y = v2 * level;
            if let Some(w) = weight {
                y *= f32x4::splat(w[i]);
            }
            level += step;
            *l += y * gl;
            *r += y * gr;
        }
        self.phase_a[g] = pa;
        self.phase_b[g] = pb;
        self.ic1[g] = ic1;
        self.ic2[g] = ic2;
        self.level[g] = level;
    }

    /// The cheap voice of group `g` (one saw, one-pole low-pass), scaled per
    /// sample by `weight` when given. While both paths run (a switch) this one
    /// goes first and leaves the oscillator phase and the envelope level for the
    /// full path to advance (`commit` false).
    #[inline]
    fn render_group_cheap(
        &mut self,
        g: usize,
        acc_l: &mut [f32x4],
        acc_r: &mut [f32x4],
        weight: Option<&[f32]>,
        commit: bool,
    ) {
        let one = f32x4::ONE;
        let v = f32x4::from;
        let (ia, ria) = (v(self.inc_a[g]), v(self.inv_inc_a[g]));
        let coef = v(self.lp_coef[g]);
        let (gl, gr, step) = (v(self.gain_l[g]), v(self.gain_r[g]), v(self.level_step[g]));
        let saw_gain = f32x4::splat(CHEAP_SAW_GAIN);
        let (mut pa, mut level) = (self.phase_a[g], self.level[g]);
        let mut s = self.lp_state[g];
        for (i, (l, r)) in acc_l.iter_mut().zip(acc_r.iter_mut()).enumerate() {
            pa += ia;
            pa -= pa.simd_ge(one).bitselect(one, f32x4::ZERO);
            let x = blep_saw(pa, ia, ria) * saw_gain;
            let vv = (x - s) * coef;
            let lp = vv + s;
            s = lp + vv;
            let mut y = lp * level;
            if let Some(w) = weight {
                y *= f32x4::splat(w[i]);
            }
            level += step;
            *l += y * gl;
            *r += y * gr;
        }
        self.lp_state[g] = s;
        if commit {
            self.phase_a[g] = pa;
            self.level[g] = level;
        }
    }
}

/// A polyBLEP saw, four lanes at a time: `t` the phase in `[0, 1)`, `dt` the
/// phase increment and `inv_dt` its reciprocal (Välimäki & Huovilainen 2007).
#[inline]
fn blep_saw(t: f32x4, dt: f32x4, inv_dt: f32x4) -> f32x4 {
    let one = f32x4::ONE;
    let naive = t + t - one;
    // Just after the wrap: x = t/dt in [0, 1): 2x - x² - 1.
    let x1 = t * inv_dt;
    let after = x1 + x1 - x1 * x1 - one;
    // Just before the wrap: x = (t-1)/dt in (-1, 0]: x² + 2x + 1.
    let x2 = (t - one) * inv_dt;
    let before = x2 * x2 + x2 + x2 + one;
    let blep = t
        .simd_lt(dt)
        .bitselect(after, t.simd_ge(one - dt).bitselect(before, f32x4::ZERO));
    naive - blep
}

/// A sine-shaped wave from a phase in `[0, 1)`: two parabolas, within 5.6 % of
/// `sin(2πφ)`; smooth enough for a slow LFO and free of transcendentals.
#[inline]
fn parabolic_sine(phase: f32) -> f32 {
    let x = phase * 2.0 - 1.0; // -1..1, sine of (x+1)π
    -4.0 * x * (1.0 - x.abs())
}

#[inline]
fn set_lane(v: &mut f32x4, lane: usize, value: f32) {
    let mut a = v.to_array();
    a[lane] = value;
    *v = f32x4::from(a);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chord(notes: &[u8]) -> Chord {
        Chord::new(0, notes)
    }

    fn run(bank: &mut PadBank, frames: usize) -> (Vec<f32>, Vec<f32>) {
        let mut l = vec![0.0; frames];
        let mut r = vec![0.0; frames];
        for (cl, cr) in l
            .chunks_mut(CONTROL_FRAMES)
            .zip(r.chunks_mut(CONTROL_FRAMES))
        {
            bank.control_tick();
            bank.render(cl, cr);
        }
        (l, r)
    }

    #[test]
    fn chord_sounds_and_releases_to_silence() {
        let mut bank = PadBank::new(48_000.0, 1);
        bank.set_chord(&chord(&[45, 57, 60, 64]), 1.0, CONTROL_FRAMES);
        assert_eq!(bank.active_voices(), 4);
        let (l, r) = run(&mut bank, 48_000 * 3);
        let peak = l.iter().chain(&r).fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.05 && peak < 1.0, "peak {peak}");
        bank.release_all();
        let (l, _) = run(&mut bank, 48_000 * 8);
        assert!(l[l.len() - 100..].iter().all(|x| x.abs() < 1e-4));
        assert_eq!(bank.active_voices(), 0);
    }

    #[test]
    fn common_tones_keep_their_voice() {
        let mut bank = PadBank::new(48_000.0, 1);
        bank.set_chord(&chord(&[45, 57, 60, 64]), 1.0, CONTROL_FRAMES);
        run(&mut bank, 4_800);
        let lane_of = |b: &PadBank, n: u8| b.voices.iter().position(|v| v.held && v.note == n);
        let before = lane_of(&bank, 57);
        bank.set_chord(&chord(&[41, 57, 60, 65]), 1.0, CONTROL_FRAMES);
        assert_eq!(lane_of(&bank, 57), before);
        assert_eq!(bank.voices.iter().filter(|v| v.held).count(), 4);
        // The two dropped notes still ring out.
        assert_eq!(bank.active_voices(), 6);
    }

    #[test]
    fn steals_when_full_and_never_exceeds_bank() {
        let mut bank = PadBank::new(48_000.0, 1);
        for root in 0..10u8 {
            bank.set_chord(
                &chord(&[40 + root, 50 + root, 60 + root]),
                1.0,
                CONTROL_FRAMES,
            );
            run(&mut bank, 480);
        }
        assert!(bank.active_voices() <= PAD_VOICES);
        assert_eq!(bank.voices.iter().filter(|v| v.held).count(), 3);
        let (l, _) = run(&mut bank, 4_800);
        assert!(l.iter().all(|x| x.is_finite()));
    }

    /// Power of `x` at `hz` (Goertzel, Hann-windowed against leakage).
    fn power_at(x: &[f32], hz: f32, sample_rate: f32) -> f64 {
        let w = std::f64::consts::TAU * f64::from(hz) / f64::from(sample_rate);
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        let n = x.len() as f64;
        for (i, &v) in x.iter().enumerate() {
            let hann = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
            let s0 = f64::from(v) * hann + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - c * s1 * s2
    }

    #[test]
    fn saw_pitch_is_right() {
        // One voice, A3 = 220 Hz: the fundamental towers over the semitones around it.
        let mut bank = PadBank::new(48_000.0, 3);
        bank.set_chord(&chord(&[57]), 1.0, CONTROL_FRAMES);
        let (l, _) = run(&mut bank, 48_000 * 4);
        let tail = &l[48_000 * 3..];
        let at = power_at(tail, 220.0, 48_000.0);
        for off in [207.65, 233.08, 110.0] {
            let p = power_at(tail, off, 48_000.0);
            assert!(at > 50.0 * p, "{off} Hz: {p} vs {at}");
        }
    }

    #[test]
    fn cheap_mode_ramps_in_and_out_at_the_same_level() {
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let jump = |x: &[f32]| {
            x.windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(0.0f32, f32::max)
        };
        let mut bank = PadBank::new(48_000.0, 4);
        bank.set_chord(&chord(&[45, 57, 60, 64]), 1.0, CONTROL_FRAMES);
        let (full, _) = run(&mut bank, 48_000 * 4);
        let steady = &full[48_000 * 3..];
        bank.set_cheap(true);
        assert!(bank.is_cheap());
        let (switch, _) = run(&mut bank, 48_000);
        let (cheap, _) = run(&mut bank, 48_000);
        assert_eq!(bank.cheap_mix.value(), 1.0, "only the cheap voice runs");
        bank.set_cheap(false);
        let (back, _) = run(&mut bank, 48_000);
        let all: Vec<f32> = [steady, &switch[..], &cheap[..], &back[..]].concat();
        assert!(all.iter().all(|x| x.is_finite()));
        // No step beyond what the steady sound makes itself.
        assert!(
            jump(&all) <= jump(steady) * 1.5,
            "{} vs {}",
            jump(&all),
            jump(steady)
        );
        let db = 20.0 * (rms(&cheap) / rms(steady)).log10();
        assert!(db.abs() < 3.0, "cheap voice {db:.1} dB from the full one");
        assert_eq!(bank.cheap_mix.value(), 0.0, "back on the full voice");
    }

    #[test]
    fn reset_reproduces() {
        let mut bank = PadBank::new(44_100.0, 9);
        let play = |b: &mut PadBank| {
            b.set_chord(&chord(&[48, 55, 64]), 0.8, CONTROL_FRAMES);
            run(b, 20_000)
        };
        let first = play(&mut bank);
        bank.reset();
        assert_eq!(play(&mut bank), first);
    }

    #[test]
    fn works_at_extreme_rates() {
        for sr in [8_000.0, 768_000.0] {
            let mut bank = PadBank::new(sr, 2);
            bank.set_chord(&chord(&[36, 60, 96, 108]), 1.0, CONTROL_FRAMES);
            let (l, r) = run(&mut bank, sr as usize);
            assert!(l.iter().chain(&r).all(|x| x.is_finite() && x.abs() < 1.0));
            assert!(l.iter().any(|x| x.abs() > 1e-3));
        }
    }
}
