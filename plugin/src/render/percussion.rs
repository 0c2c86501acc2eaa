//! Percussion: soft kicks (a sine whose pitch falls from about 120 Hz to 42 Hz under
//! a short exponential decay) and noise swells (stereo band-passed noise whose
//! level and centre frequency rise over the swell, then fall away).

use super::ramp::{Ramp, CONTROL_FRAMES};
use crate::dsp::noise::FilteredNoise;
use crate::dsp::osc::{Oscillator, Waveform};
use crate::dsp::svf::SvfCoefs;

/// Kick voices (two, so a tail can overlap the next hit).
pub const KICK_VOICES: usize = 2;
/// Swell voices.
pub const SWELL_VOICES: usize = 2;

const KICK_GAIN: f32 = 0.55;
const KICK_END_HZ: f32 = 42.0;
const KICK_SWEEP_HZ: f32 = 78.0;
const KICK_SWEEP_S: f32 = 0.035;
const KICK_ATTACK_S: f32 = 0.003;
const KICK_DECAY_S: f32 = 0.22;

const SWELL_GAIN: f32 = 0.16;
const SWELL_LOW_HZ: f32 = 250.0;
const SWELL_HIGH_HZ: f32 = 3_200.0;
const SWELL_Q: f32 = 1.1;
const SWELL_RELEASE_S: f32 = 0.6;

/// Below this a decaying voice is silent and stops.
const SILENT: f32 = 1e-4;

#[derive(Debug, Clone)]
struct Kick {
    osc: Oscillator,
    hz: Ramp,
    amp: Ramp,
    velocity: f32,
    age_s: f32,
    active: bool,
}

#[derive(Debug, Clone)]
struct Swell {
    noise_l: FilteredNoise,
    noise_r: FilteredNoise,
    amp: Ramp,
    velocity: f32,
    rise_s: f32,
    age_s: f32,
    active: bool,
}

/// The percussion voices.
#[derive(Debug, Clone)]
pub struct Percussion {
    sample_rate: f32,
    kicks: [Kick; KICK_VOICES],
    swells: [Swell; SWELL_VOICES],
}

impl Percussion {
    /// Silent percussion at `sample_rate`; `seed` fixes the noise.
    #[must_use]
    pub fn new(sample_rate: f32, seed: u64) -> Self {
        let kick = Kick {
            osc: Oscillator::new(Waveform::Sine, sample_rate),
            hz: Ramp::new(KICK_END_HZ),
            amp: Ramp::new(0.0),
            velocity: 0.0,
            age_s: 0.0,
            active: false,
        };
        let swell = |i: u64| Swell {
            noise_l: FilteredNoise::new(seed.wrapping_add(2 * i)),
            noise_r: FilteredNoise::new(seed.wrapping_add(2 * i + 1)),
            amp: Ramp::new(0.0),
            velocity: 0.0,
            rise_s: 1.0,
            age_s: 0.0,
            active: false,
        };
        Self {
            sample_rate,
            kicks: [kick.clone(), kick],
            swells: [swell(0), swell(1)],
        }
    }

    /// Silences every voice and rewinds the noise.
    pub fn reset(&mut self) {
        for k in &mut self.kicks {
            k.active = false;
            k.amp.jump(0.0);
            k.osc.reset();
        }
        for s in &mut self.swells {
            s.active = false;
            s.amp.jump(0.0);
            s.noise_l.reset();
            s.noise_r.reset();
        }
    }

    /// Number of voices sounding.
    #[must_use]
    pub fn active_voices(&self) -> usize {
        self.kicks.iter().filter(|k| k.active).count()
            + self.swells.iter().filter(|s| s.active).count()
    }

    /// A kick at `velocity` (0..=1).
    pub fn kick(&mut self, velocity: f32, frames_to_tick: usize) {
        let i = pick(self.kicks.iter().map(|k| (k.active, k.amp.value())));
        let k = &mut self.kicks[i];
        k.osc.reset();
        k.velocity = velocity.clamp(0.0, 1.0);
        k.age_s = 0.0;
        k.active = true;
        k.amp.jump(0.0);
        self.control_kick(i, frames_to_tick.max(1));
    }

    /// A swell rising over `rise_s` seconds at `velocity` (0..=1).
    pub fn swell(&mut self, rise_s: f32, velocity: f32, frames_to_tick: usize) {
        let i = pick(self.swells.iter().map(|s| (s.active, s.amp.value())));
        let s = &mut self.swells[i];
        s.velocity = velocity.clamp(0.0, 1.0);
        s.rise_s = rise_s.max(0.05);
        s.age_s = 0.0;
        if !s.active {
            s.amp.jump(0.0);
        }
        s.active = true;
        self.control_swell(i, frames_to_tick.max(1));
    }

    fn control_kick(&mut self, i: usize, frames: usize) {
        let k = &mut self.kicks[i];
        let t = k.age_s;
        let attack = (t / KICK_ATTACK_S).min(1.0);
        let amp = KICK_GAIN * k.velocity * attack * (-t / KICK_DECAY_S).exp();
        let hz = KICK_END_HZ + KICK_SWEEP_HZ * (-t / KICK_SWEEP_S).exp();
        k.amp.set_target(amp, frames);
        k.hz.set_target(hz, frames);
        k.age_s += frames as f32 / self.sample_rate;
        if t > KICK_ATTACK_S && amp < SILENT {
            k.active = false;
            k.amp.jump(0.0);
        }
    }

    fn control_swell(&mut self, i: usize, frames: usize) {
        let s = &mut self.swells[i];
        let progress = (s.age_s / s.rise_s).min(1.0);
        let amp = if s.age_s <= s.rise_s {
            progress * progress
        } else {
            (-(s.age_s - s.rise_s) / SWELL_RELEASE_S).exp()
        } * SWELL_GAIN
            * s.velocity;
        let hz = SWELL_LOW_HZ * (SWELL_HIGH_HZ / SWELL_LOW_HZ).powf(progress);
        let coefs = SvfCoefs::bandpass(self.sample_rate, hz, SWELL_Q);
        s.noise_l.set_coefs(coefs);
        s.noise_r.set_coefs(coefs);
        s.amp.set_target(amp, frames);
        s.age_s += frames as f32 / self.sample_rate;
        if s.age_s > s.rise_s && amp < SILENT {
            s.active = false;
            s.amp.jump(0.0);
        }
    }

    /// The control tick: pitch and level envelopes of every sounding voice.
    pub fn control_tick(&mut self) {
        for i in 0..KICK_VOICES {
            if self.kicks[i].active {
                self.control_kick(i, CONTROL_FRAMES);
            }
        }
        for i in 0..SWELL_VOICES {
            if self.swells[i].active {
                self.control_swell(i, CONTROL_FRAMES);
            }
        }
    }

    /// Adds the kicks to `kick` (mono, centred) and the swells to `left`/`right`.
    pub fn render(&mut self, kick: &mut [f32], left: &mut [f32], right: &mut [f32]) {
        for k in self.kicks.iter_mut().filter(|k| k.active) {
            for out in kick.iter_mut() {
                k.osc.set_frequency(k.hz.tick());
                *out += k.osc.process() * k.amp.tick();
            }
        }
        for s in self.swells.iter_mut().filter(|s| s.active) {
            for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                let a = s.amp.tick();
                *l += s.noise_l.process() * a;
                *r += s.noise_r.process() * a;
            }
        }
    }
}

/// The voice to use: the first idle one, else the quietest.
fn pick(voices: impl Iterator<Item = (bool, f32)>) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, (active, level)) in voices.enumerate() {
        if !active {
            return i;
        }
        if level < best.1 {
            best = (i, level);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Percussion, frames: usize) -> (Vec<f32>, Vec<f32>) {
        let mut k = vec![0.0; frames];
        let mut l = vec![0.0; frames];
        let mut r = vec![0.0; frames];
        for ((ck, cl), cr) in k
            .chunks_mut(CONTROL_FRAMES)
            .zip(l.chunks_mut(CONTROL_FRAMES))
            .zip(r.chunks_mut(CONTROL_FRAMES))
        {
            p.control_tick();
            p.render(ck, cl, cr);
        }
        (k, l)
    }

    #[test]
    fn kick_thumps_and_dies() {
        let mut p = Percussion::new(48_000.0, 1);
        p.kick(1.0, CONTROL_FRAMES);
        let (k, _) = run(&mut p, 48_000 * 3);
        let peak = k.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.2 && peak <= KICK_GAIN, "peak {peak}");
        assert!(k[48_000 * 2..].iter().all(|x| x.abs() < 1e-3));
        assert_eq!(p.active_voices(), 0);
    }

    #[test]
    fn swell_rises_then_falls() {
        let mut p = Percussion::new(48_000.0, 1);
        p.swell(2.0, 1.0, CONTROL_FRAMES);
        let (_, l) = run(&mut p, 48_000 * 6);
        let rms = |s: &[f32]| (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt();
        let early = rms(&l[..24_000]);
        let peak = rms(&l[84_000..96_000]);
        let late = rms(&l[48_000 * 5..]);
        assert!(peak > 4.0 * early, "{early} {peak}");
        assert!(late < peak / 10.0, "{peak} {late}");
    }
}
