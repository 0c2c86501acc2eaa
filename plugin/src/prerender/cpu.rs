//! The CPU texture renderer: the same math as the WGSL kernels, made fast.
//!
//! Pad partials are advanced eight at a time (`wide::f32x8` lanes) by a complex
//! rotation recurrence inside blocks of about 3 ms (at most [`BLOCK_FRAMES`]): at every block start the
//! exact phase ([`partial_phase`]) seeds `(sin, cos)`, and the per-frame rotation is
//! the exact fixed-point increment plus the drift's mean slope over the block (the
//! drift is a chord of a slow sine, so the error over a block stays far below
//! −60 dBFS). Partials outside their voice's span are never touched. Grains are
//! evaluated exactly, frame by frame, as the kernel does.
//!
//! [`render_reference`] evaluates every frame with the exact formula (what the GPU
//! kernels do); tests use it to bound the recurrence's error.

use wide::f32x8;

use super::texture::{
    partial_phase, phase_to_cycles, sin_cycles, voice_envelope, Grain, Partial, TextureDesc, Voice,
};
use super::RenderError;

/// Most frames per recurrence block (the accumulators' length).
pub const BLOCK_FRAMES: usize = 128;
/// Longest recurrence block in seconds: the drift's curvature error grows with the
/// square of the block's duration, so low sample rates use shorter blocks.
const BLOCK_SECONDS: f32 = 0.003;

/// Frames per recurrence block at `sample_rate`: about [`BLOCK_SECONDS`], 16 to
/// [`BLOCK_FRAMES`].
fn block_frames(sample_rate: f32) -> u32 {
    ((sample_rate * BLOCK_SECONDS) as u32).clamp(16, BLOCK_FRAMES as u32)
}
/// Partials per SIMD group.
const LANES: usize = 8;

/// Scratch for the CPU path, allocated once in [`CpuRenderer::new`]; rendering
/// never allocates.
#[derive(Debug, Clone)]
pub struct CpuRenderer {
    acc_l: Vec<f32x8>,
    acc_r: Vec<f32x8>,
}

impl Default for CpuRenderer {
    fn default() -> Self {
        Self::new()
    }
}

/// The drift term of `p` at `m`, in cycles, not wrapped.
#[inline]
fn drift_raw(p: &Partial, m: u32) -> f32 {
    let theta = phase_to_cycles(p.drift_inc.wrapping_mul(m).wrapping_add(p.drift_phase0));
    p.drift_cycles * (p.drift_c0 - sin_cycles(theta + 0.25))
}

/// Checks that `left` and `right` hold `desc.frames` frames.
pub(crate) fn check_buffers(
    desc: &TextureDesc,
    left: &[f32],
    right: &[f32],
) -> Result<usize, RenderError> {
    let frames = desc.frames as usize;
    let capacity = left.len().min(right.len());
    if capacity < frames {
        return Err(RenderError::BufferTooSmall {
            phrase_index: desc.phrase_index,
            frames,
            capacity,
        });
    }
    Ok(frames)
}

impl CpuRenderer {
    /// A renderer with its block scratch allocated.
    #[must_use]
    pub fn new() -> Self {
        Self {
            acc_l: vec![f32x8::ZERO; BLOCK_FRAMES],
            acc_r: vec![f32x8::ZERO; BLOCK_FRAMES],
        }
    }

    /// Renders `desc` into the first `desc.frames` frames of `left` and `right`
    /// (overwritten; the rest is left alone). Never allocates.
    ///
    /// # Errors
    /// [`RenderError::BufferTooSmall`] when a buffer is shorter than the phrase.
    pub fn render(
        &mut self,
        desc: &TextureDesc,
        left: &mut [f32],
        right: &mut [f32],
    ) -> Result<(), RenderError> {
        let frames = check_buffers(desc, left, right)?;
        let (left, right) = (&mut left[..frames], &mut right[..frames]);
        left.fill(0.0);
        right.fill(0.0);
        for voice in &desc.voices {
            let first = voice.first_partial as usize;
            let Some(partials) = desc
                .partials
                .get(first..first + voice.partial_count as usize)
            else {
                continue;
            };
            self.render_voice(voice, partials, block_frames(desc.sample_rate), left, right);
        }
        for grain in &desc.grains {
            render_grain(grain, left, right);
        }
        Ok(())
    }

    fn render_voice(
        &mut self,
        voice: &Voice,
        partials: &[Partial],
        block: u32,
        left: &mut [f32],
        right: &mut [f32],
    ) {
        let end = voice.end.min(left.len() as u32);
        let mut block_start = voice.start;
        while block_start < end {
            let len = (end - block_start).min(block);
            let n = len as usize;
            let m0 = block_start - voice.start;
            let (acc_l, acc_r) = (&mut self.acc_l[..n], &mut self.acc_r[..n]);
            acc_l.fill(f32x8::ZERO);
            acc_r.fill(f32x8::ZERO);
            for group in partials.chunks(LANES) {
                let mut s = [0.0_f32; LANES];
                let mut c = [0.0_f32; LANES];
                let mut rs = [0.0_f32; LANES];
                let mut rc = [1.0_f32; LANES];
                let mut gl = [0.0_f32; LANES];
                let mut gr = [0.0_f32; LANES];
                for (j, p) in group.iter().enumerate() {
                    let phase = partial_phase(p, m0);
                    s[j] = sin_cycles(phase);
                    c[j] = sin_cycles(phase + 0.25);
                    let slope = (drift_raw(p, m0 + len) - drift_raw(p, m0)) / len as f32;
                    let step = (f64::from(p.inc) / 4_294_967_296.0) as f32 + slope;
                    rs[j] = sin_cycles(step);
                    rc[j] = sin_cycles(step + 0.25);
                    gl[j] = p.gain_l;
                    gr[j] = p.gain_r;
                }
                let (mut s, mut c) = (f32x8::new(s), f32x8::new(c));
                let (rs, rc) = (f32x8::new(rs), f32x8::new(rc));
                let (gl, gr) = (f32x8::new(gl), f32x8::new(gr));
                for (al, ar) in acc_l.iter_mut().zip(acc_r.iter_mut()) {
                    *al = s.mul_add(gl, *al);
                    *ar = s.mul_add(gr, *ar);
                    let next_s = s * rc + c * rs;
                    c = c * rc - s * rs;
                    s = next_s;
                }
            }
            let out_l = &mut left[block_start as usize..(block_start + len) as usize];
            let out_r = &mut right[block_start as usize..(block_start + len) as usize];
            for (i, ((l, r), (al, ar))) in out_l
                .iter_mut()
                .zip(out_r.iter_mut())
                .zip(acc_l.iter().zip(acc_r.iter()))
                .enumerate()
            {
                let e = voice_envelope(voice, block_start + i as u32);
                *l += e * al.reduce_add();
                *r += e * ar.reduce_add();
            }
            block_start += len;
        }
    }
}

/// Adds one grain, evaluated exactly per frame.
fn render_grain(grain: &Grain, left: &mut [f32], right: &mut [f32]) {
    let start = grain.start as usize;
    let end = (start + grain.frames as usize).min(left.len());
    if start >= end {
        return;
    }
    for (i, (l, r)) in left[start..end]
        .iter_mut()
        .zip(right[start..end].iter_mut())
        .enumerate()
    {
        let v = grain_sample(grain, i as u32);
        *l += v * grain.gain_l;
        *r += v * grain.gain_r;
    }
}

/// Grain `g`'s windowed sine at frame `i` from its start (before the pan gains).
#[inline]
fn grain_sample(g: &Grain, i: u32) -> f32 {
    let w = sin_cycles(i as f32 * g.half_inv_frames);
    let phase = phase_to_cycles(g.inc.wrapping_mul(i).wrapping_add(g.phase0));
    w * w * sin_cycles(phase)
}

/// Renders `desc` with the exact per-frame formula for every partial (slow: the
/// model of the GPU kernels, for tests and error bounds). Writes the first
/// `desc.frames` frames of `left` and `right`.
///
/// # Errors
/// [`RenderError::BufferTooSmall`] when a buffer is shorter than the phrase.
pub fn render_reference(
    desc: &TextureDesc,
    left: &mut [f32],
    right: &mut [f32],
) -> Result<(), RenderError> {
    let frames = check_buffers(desc, left, right)?;
    left[..frames].fill(0.0);
    right[..frames].fill(0.0);
    for voice in &desc.voices {
        let first = voice.first_partial as usize;
        let Some(partials) = desc
            .partials
            .get(first..first + voice.partial_count as usize)
        else {
            continue;
        };
        for n in voice.start..voice.end.min(frames as u32) {
            let m = n - voice.start;
            let (mut sl, mut sr) = (0.0_f32, 0.0_f32);
            for p in partials {
                let s = sin_cycles(partial_phase(p, m));
                sl += p.gain_l * s;
                sr += p.gain_r * s;
            }
            let e = voice_envelope(voice, n);
            left[n as usize] += e * sl;
            right[n as usize] += e * sr;
        }
    }
    for grain in &desc.grains {
        render_grain(grain, &mut left[..frames], &mut right[..frames]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{ComposeParams, Composer};
    use crate::prerender::texture::Quality;
    use crate::prerender::validate::error_db;

    fn desc(index: u64, bars: u32, bpm: f32, sr: f32) -> TextureDesc {
        let params = ComposeParams {
            bars,
            bpm,
            ..ComposeParams::default()
        };
        let phrase = Composer::new(5, params).seek(index);
        TextureDesc::build(5, &phrase, sr, Quality::FULL)
    }

    #[test]
    fn recurrence_matches_exact_formula() {
        for (index, sr) in [(0, 16_000.0), (3, 22_050.0), (4, 48_000.0)] {
            let d = desc(index, 2, 120.0, sr);
            let n = d.frames as usize;
            let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
            let (mut el, mut er) = (vec![0.0; n], vec![0.0; n]);
            CpuRenderer::new().render(&d, &mut l, &mut r).expect("fits");
            render_reference(&d, &mut el, &mut er).expect("fits");
            let db = error_db(&l, &el).max(error_db(&r, &er));
            assert!(db < -100.0, "phrase {index}: error {db:.1} dBFS");
            let peak = el.iter().fold(0.0_f32, |a, v| a.max(v.abs()));
            assert!(peak > 0.01, "the texture sounds: {peak}");
        }
    }

    #[test]
    fn render_is_deterministic_and_bounded() {
        let d = desc(1, 2, 90.0, 12_000.0);
        let n = d.frames as usize;
        let mut cpu = CpuRenderer::new();
        let (mut a, mut b) = (vec![0.0; n + 10], vec![0.0; n + 10]);
        cpu.render(&d, &mut a, &mut b).expect("fits");
        let (mut c, mut e) = (vec![1.0; n], vec![1.0; n]);
        cpu.render(&d, &mut c, &mut e).expect("fits");
        assert_eq!(&a[..n], &c[..]);
        assert_eq!(&b[..n], &e[..]);
        assert!(a
            .iter()
            .chain(b.iter())
            .all(|v| v.is_finite() && v.abs() < 1.0));
    }

    #[test]
    fn short_buffer_is_an_error() {
        let d = desc(0, 1, 120.0, 8_000.0);
        let mut l = vec![0.0; d.frames as usize - 1];
        let mut r = vec![0.0; d.frames as usize];
        assert!(matches!(
            CpuRenderer::new().render(&d, &mut l, &mut r),
            Err(RenderError::BufferTooSmall { .. })
        ));
    }
}
