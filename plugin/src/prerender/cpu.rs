//! The CPU texture renderer: the same math as the WGSL kernels, made fast.
//!
//! **Pads.** Time runs in blocks of about 5 ms ([`BLOCK_FRAMES`] at most) on one
//! grid shared by every voice: frame `n` belongs to block `n / B`. Inside a block
//! every partial is a second-order sine recurrence in Reinsch's form
//! (`d -= κ s; s += d`, `κ = 4 sin²(ω/2)`; Reinsch 1967, as in Goertzel-type
//! oscillators), seeded at the block start from the exact phase
//! ([`partial_phase`]), with `ω` the exact fixed-point increment plus the drift's
//! mean slope over the block (the drift is a slow sine, so its curvature inside a
//! block stays far below −60 dBFS). Reinsch's form costs one multiply and two adds
//! per partial and frame, and keeps low partials exact: `κ` is tiny there but
//! carries full relative precision, where the plain `2 cos ω` form loses it.
//! Eight partials share a `wide::f32x8`; up to four groups of a voice run side by
//! side so their recurrences overlap in the pipeline; the voice's envelope weights
//! the groups' sums, and every voice adds into per-frame lane accumulators that are
//! reduced once per block. The seeds of a group are computed eight lanes at once.
//!
//! **Grains** are evaluated exactly, frame by frame, as the kernel does.
//!
//! **Threads.** A block depends on nothing but its own frames, so with several
//! threads ([`CpuRenderer::with_threads`]) the phrase is cut at block boundaries
//! into spans rendered side by side into disjoint parts of the output: every
//! frame is computed by the same operations in the same order whatever the number
//! of threads, so the bytes never depend on it.
//!
//! [`render_reference`] evaluates every frame with the exact formula (what the GPU
//! kernels do); tests use it to bound the recurrence's error.

use wide::f32x8;

use super::texture::{
    partial_phase, phase_to_cycles, sin_cycles, voice_envelope, Grain, Partial, TextureDesc,
    SIN_COEFS,
};
use super::RenderError;

/// Most frames per recurrence block (the accumulators' length).
pub const BLOCK_FRAMES: usize = 256;
/// Longest recurrence block in seconds: the drift's curvature error grows with the
/// square of the block's duration, so low sample rates use shorter blocks.
const BLOCK_SECONDS: f32 = 0.005;
/// Partials per SIMD group.
const LANES: usize = 8;
/// Groups of a voice whose recurrences run side by side.
const GROUPS: usize = 4;

/// Frames per recurrence block at `sample_rate`: about [`BLOCK_SECONDS`], 16 to
/// [`BLOCK_FRAMES`].
fn block_frames(sample_rate: f32) -> u32 {
    ((sample_rate * BLOCK_SECONDS) as u32).clamp(16, BLOCK_FRAMES as u32)
}

/// `floor` in eight lanes for moderate values (`|x| < 2^23`), exact, by
/// truncation: `f32x8::floor` calls the C library per lane without SSE4.1.
#[inline]
fn floor_x8(x: f32x8) -> f32x8 {
    let t = x.fast_trunc_int().round_float();
    t - (t.simd_gt(x) & f32x8::ONE)
}

/// `sin(2π x)` in eight lanes: [`sin_cycles`]' steps without branches (the same
/// operations, so the same values).
#[inline]
fn sin_cycles_x8(x: f32x8) -> f32x8 {
    let half = f32x8::splat(0.5);
    let r = x - floor_x8(x + half);
    // r > 1/4 → 1/2 − r; r < −1/4 → −1/2 − r; otherwise r.
    let r = r.min(half - r).max(-half - r);
    let r2 = r * r;
    let c = SIN_COEFS.map(f32x8::splat);
    r * (c[0] + r2 * (c[1] + r2 * (c[2] + r2 * (c[3] + r2 * (c[4] + r2 * c[5])))))
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

/// Eight partials' recurrence over one block: value, difference, `κ`, gains.
#[derive(Debug, Clone, Copy)]
struct Group {
    s: f32x8,
    d: f32x8,
    kappa: f32x8,
    gain_l: f32x8,
    gain_r: f32x8,
}

impl Group {
    /// Unused lanes and groups: silent, and they stay silent.
    const SILENT: Self = Self {
        s: f32x8::ZERO,
        d: f32x8::ZERO,
        kappa: f32x8::ZERO,
        gain_l: f32x8::ZERO,
        gain_r: f32x8::ZERO,
    };

    /// The state of up to eight `partials` at frame `m0` from their voice start,
    /// for a block of `len` frames.
    fn seed(partials: &[Partial], m0: u32, len: u32) -> Self {
        let mut phase = [0.0_f32; LANES];
        let mut theta = [[0.0_f32; LANES]; 2];
        let mut depth = [0.0_f32; LANES];
        let mut c0 = [0.0_f32; LANES];
        let mut inc = [0.0_f32; LANES];
        let mut gain_l = [0.0_f32; LANES];
        let mut gain_r = [0.0_f32; LANES];
        for (j, p) in partials.iter().enumerate().take(LANES) {
            phase[j] = phase_to_cycles(p.inc.wrapping_mul(m0).wrapping_add(p.phase0));
            for (t, m) in theta.iter_mut().zip([m0, m0 + len]) {
                t[j] = phase_to_cycles(p.drift_inc.wrapping_mul(m).wrapping_add(p.drift_phase0));
            }
            depth[j] = p.drift_cycles;
            c0[j] = p.drift_c0;
            inc[j] = (f64::from(p.inc) / 4_294_967_296.0) as f32;
            gain_l[j] = p.gain_l;
            gain_r[j] = p.gain_r;
        }
        let quarter = f32x8::splat(0.25);
        let (depth, c0) = (f32x8::new(depth), f32x8::new(c0));
        // The drift (as `drift_raw`) at both ends of the block.
        let d0 = depth * (c0 - sin_cycles_x8(f32x8::new(theta[0]) + quarter));
        let d1 = depth * (c0 - sin_cycles_x8(f32x8::new(theta[1]) + quarter));
        // The exact phase (as `partial_phase`) and the block's mean step, in cycles.
        let phase = f32x8::new(phase) + (d0 - floor_x8(d0));
        let step = f32x8::new(inc) + (d1 - d0) / f32x8::splat(len as f32);
        let half = step * f32x8::splat(0.5);
        let sh = sin_cycles_x8(half);
        Self {
            s: sin_cycles_x8(phase),
            // s(0) − s(−1) = 2 sin(ω/2) cos(φ − ω/2).
            d: f32x8::splat(2.0) * sh * sin_cycles_x8(phase - half + quarter),
            kappa: f32x8::splat(4.0) * sh * sh,
            gain_l: f32x8::new(gain_l),
            gain_r: f32x8::new(gain_r),
        }
    }
}

/// Runs `G` groups (up to [`GROUPS`] × [`LANES`] partials of one voice) through a
/// block, adding their sums weighted by the voice envelope `env` into the lane
/// accumulators.
#[inline]
fn run_groups<const G: usize>(
    partials: &[Partial],
    m0: u32,
    env: &[f32],
    acc_l: &mut [f32x8],
    acc_r: &mut [f32x8],
) {
    let len = env.len() as u32;
    let mut groups: [Group; G] = std::array::from_fn(|k| {
        partials
            .get(k * LANES..)
            .map_or(Group::SILENT, |rest| Group::seed(rest, m0, len))
    });
    for ((al, ar), &e) in acc_l.iter_mut().zip(acc_r.iter_mut()).zip(env) {
        let (mut l, mut r) = (f32x8::ZERO, f32x8::ZERO);
        for g in &mut groups {
            l += g.s * g.gain_l;
            r += g.s * g.gain_r;
            g.d -= g.kappa * g.s;
            g.s += g.d;
        }
        let e = f32x8::splat(e);
        *al += l * e;
        *ar += r * e;
    }
}

/// One thread's scratch: the block's lane accumulators and envelope.
#[derive(Debug, Clone)]
struct Scratch {
    acc_l: Vec<f32x8>,
    acc_r: Vec<f32x8>,
    env: Vec<f32>,
}

impl Scratch {
    fn new() -> Self {
        Self {
            acc_l: vec![f32x8::ZERO; BLOCK_FRAMES],
            acc_r: vec![f32x8::ZERO; BLOCK_FRAMES],
            env: vec![0.0; BLOCK_FRAMES],
        }
    }

    /// Renders frames `from..from + left.len()` of `desc` into `left`/`right`
    /// (overwritten). `from` is on the block grid of `block` frames.
    fn render_span(
        &mut self,
        desc: &TextureDesc,
        block: u32,
        from: u32,
        left: &mut [f32],
        right: &mut [f32],
    ) {
        let to = from + left.len() as u32;
        let mut b0 = from;
        while b0 < to {
            let b1 = ((b0 / block + 1) * block).min(to);
            let (l, r) = (
                &mut left[(b0 - from) as usize..(b1 - from) as usize],
                &mut right[(b0 - from) as usize..(b1 - from) as usize],
            );
            self.pad_block(desc, b0, l, r);
            b0 = b1;
        }
        add_grains(desc, from, left, right);
    }

    /// Every voice's partials over the block starting at frame `b0`, into `left`
    /// and `right` (overwritten).
    fn pad_block(&mut self, desc: &TextureDesc, b0: u32, left: &mut [f32], right: &mut [f32]) {
        let n = left.len();
        let b1 = b0 + n as u32;
        let (acc_l, acc_r) = (&mut self.acc_l[..n], &mut self.acc_r[..n]);
        acc_l.fill(f32x8::ZERO);
        acc_r.fill(f32x8::ZERO);
        for voice in &desc.voices {
            let (start, end) = (voice.start.max(b0), voice.end.min(b1));
            if start >= end {
                continue;
            }
            let first = voice.first_partial as usize;
            let Some(partials) = desc
                .partials
                .get(first..first + voice.partial_count as usize)
            else {
                continue;
            };
            let (off, len) = ((start - b0) as usize, (end - start) as usize);
            let env = &mut self.env[..len];
            for (i, e) in env.iter_mut().enumerate() {
                *e = voice_envelope(voice, start + i as u32);
            }
            let m0 = start - voice.start;
            let (al, ar) = (&mut acc_l[off..off + len], &mut acc_r[off..off + len]);
            for quad in partials.chunks(GROUPS * LANES) {
                match quad.len().div_ceil(LANES) {
                    1 => run_groups::<1>(quad, m0, env, al, ar),
                    2 => run_groups::<2>(quad, m0, env, al, ar),
                    3 => run_groups::<3>(quad, m0, env, al, ar),
                    _ => run_groups::<GROUPS>(quad, m0, env, al, ar),
                }
            }
        }
        for ((l, r), (al, ar)) in left
            .iter_mut()
            .zip(right.iter_mut())
            .zip(acc_l.iter().zip(acc_r.iter()))
        {
            *l = al.reduce_add();
            *r = ar.reduce_add();
        }
    }
}

/// Adds every grain overlapping frames `from..from + left.len()` (grains in their
/// sorted order, each frame exactly as [`render_grain`] computes it).
fn add_grains(desc: &TextureDesc, from: u32, left: &mut [f32], right: &mut [f32]) {
    let to = from + left.len() as u32;
    let earliest = from.saturating_sub(desc.max_grain_frames);
    let first = desc.grains.partition_point(|g| g.start < earliest);
    for g in &desc.grains[first..] {
        if g.start >= to {
            break;
        }
        let (start, end) = (g.start.max(from), g.start.saturating_add(g.frames).min(to));
        for n in start..end {
            let v = grain_sample(g, n - g.start);
            let k = (n - from) as usize;
            left[k] += v * g.gain_l;
            right[k] += v * g.gain_r;
        }
    }
}

/// The CPU path's scratch, one per thread, allocated in
/// [`CpuRenderer::with_threads`]; with one thread rendering never allocates.
#[derive(Debug, Clone)]
pub struct CpuRenderer {
    scratch: Vec<Scratch>,
}

impl Default for CpuRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuRenderer {
    /// A renderer on the calling thread alone, its block scratch allocated.
    #[must_use]
    pub fn new() -> Self {
        Self::with_threads(1)
    }

    /// A renderer that cuts each phrase into `threads` spans (at least 1) and
    /// renders them on as many threads (scoped to each render; the calling thread
    /// renders the first span). The output is the same for every `threads`.
    #[must_use]
    pub fn with_threads(threads: usize) -> Self {
        Self {
            scratch: (0..threads.max(1)).map(|_| Scratch::new()).collect(),
        }
    }

    /// The threads a render uses (the calling one included).
    #[must_use]
    pub fn threads(&self) -> usize {
        self.scratch.len()
    }

    /// Renders `desc` into the first `desc.frames` frames of `left` and `right`
    /// (overwritten; the rest is left alone). With one thread it never allocates.
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
        let block = block_frames(desc.sample_rate);
        let blocks = frames.div_ceil(block as usize);
        let threads = self.scratch.len().min(blocks).max(1);
        // Spans of whole blocks, the last one shorter.
        let span = blocks.div_ceil(threads) * block as usize;
        let (left, right) = (&mut left[..frames], &mut right[..frames]);
        if threads == 1 {
            self.scratch[0].render_span(desc, block, 0, left, right);
            return Ok(());
        }
        std::thread::scope(|scope| {
            let mut spans = left
                .chunks_mut(span)
                .zip(right.chunks_mut(span))
                .zip(self.scratch.iter_mut())
                .enumerate();
            let first = spans.next();
            for (k, ((l, r), scratch)) in spans {
                let from = (k * span) as u32;
                scope.spawn(move || scratch.render_span(desc, block, from, l, r));
            }
            if let Some((_, ((l, r), scratch))) = first {
                scratch.render_span(desc, block, 0, l, r);
            }
        });
        Ok(())
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

    /// Energy in dB of `x` in the octave band around `hz`.
    fn band_db(x: &[f32], sr: f32, hz: f32) -> f64 {
        let c = crate::dsp::svf::SvfCoefs::bandpass(sr, hz, std::f32::consts::SQRT_2);
        let mut f = crate::dsp::svf::Svf::new();
        let e: f64 = x.iter().map(|v| f64::from(f.process(&c, *v)).powi(2)).sum();
        10.0 * (e + 1e-30).log10()
    }

    /// The sound is kept: against the exact per-frame formula (the GPU kernels'
    /// math, which the previous CPU path also approximated to below −100 dBFS),
    /// the peak difference stays below −90 dBFS and every octave band's energy
    /// within 0.01 dB, at full quality and 48 kHz.
    #[test]
    fn sounds_like_the_exact_texture_in_every_band() {
        let sr = 48_000.0;
        let d = desc(6, 2, 120.0, sr);
        let n = d.frames as usize;
        let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
        let (mut el, mut er) = (vec![0.0; n], vec![0.0; n]);
        CpuRenderer::new().render(&d, &mut l, &mut r).expect("fits");
        render_reference(&d, &mut el, &mut er).expect("fits");
        let db = error_db(&l, &el).max(error_db(&r, &er));
        assert!(db < -90.0, "peak difference {db:.1} dBFS");
        let mut worst = 0.0_f64;
        for octave in 0..8 {
            let hz = 125.0 * 2.0_f32.powi(octave);
            for (new, exact) in [(&l, &el), (&r, &er)] {
                let exact_db = band_db(exact, sr, hz);
                assert!(exact_db > -40.0, "{hz} Hz band sounds: {exact_db:.1} dB");
                worst = worst.max((band_db(new, sr, hz) - exact_db).abs());
            }
        }
        eprintln!("peak difference {db:.1} dBFS, band energy within {worst:.5} dB");
        assert!(worst < 0.01, "band energy off by {worst:.4} dB");
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
    fn threads_do_not_change_a_byte() {
        let d = desc(2, 2, 75.0, 44_100.0);
        let n = d.frames as usize;
        let (mut l1, mut r1) = (vec![0.0; n], vec![0.0; n]);
        CpuRenderer::new()
            .render(&d, &mut l1, &mut r1)
            .expect("fits");
        for threads in [2, 3, 7] {
            let (mut l, mut r) = (vec![9.0; n], vec![9.0; n]);
            let mut cpu = CpuRenderer::with_threads(threads);
            assert_eq!(cpu.threads(), threads);
            cpu.render(&d, &mut l, &mut r).expect("fits");
            let same =
                |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same(&l, &l1) && same(&r, &r1), "{threads} threads");
        }
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
