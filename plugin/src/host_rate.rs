//! The engine at any sample rate a host offers, 1 kHz to 768 kHz. From
//! [`MIN_SAMPLE_RATE`] up the engine runs at the host's rate; below it, at the
//! smallest integer multiple of the host's rate that it supports (a host at
//! 1 234.5678 Hz gets an engine at 7 × 1 234.5678 Hz), and each channel is
//! taken down to the host's rate by a [`Decimator`]. The music is the same; only
//! what lies above 0.4 × the host's rate is filtered away.
//!
//! The engine renders in chunks of at most [`CHUNK_FRAMES`] of its frames, so
//! the scratch buffers (allocated in [`HostRate::new`]) fit any host block and
//! the notes of a chunk always fit the renderer's note log.

use crate::dsp::decimator::Decimator;
use crate::engine::Engine;
use crate::render::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

/// The lowest host sample rate, in hertz.
pub const MIN_HOST_SAMPLE_RATE: f32 = 1_000.0;

/// The most engine frames rendered between two looks at its notes.
pub const CHUNK_FRAMES: usize = 2_048;

/// A host sample rate outside [`MIN_HOST_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("the host's sample rate must be between {MIN_HOST_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, got {0} Hz")]
pub struct HostRateError(pub f32);

/// A host's sample rate and how the engine meets it.
#[derive(Debug)]
pub struct HostRate {
    host_rate: f32,
    factor: usize,
    /// Engine-rate scratch (empty when the factor is 1).
    scratch: [Vec<f32>; 2],
    down: [Decimator; 2],
}

impl HostRate {
    /// The plan for a host at `host_rate`, with its scratch buffers.
    ///
    /// # Errors
    /// [`HostRateError`] for a rate outside 1 kHz..=768 kHz (or not finite).
    pub fn new(host_rate: f32) -> Result<Self, HostRateError> {
        if !(MIN_HOST_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&host_rate) {
            return Err(HostRateError(host_rate));
        }
        let factor = if host_rate < MIN_SAMPLE_RATE {
            (MIN_SAMPLE_RATE / host_rate).ceil() as usize
        } else {
            1
        };
        let engine_rate = host_rate * factor as f32;
        let scratch_len = if factor == 1 { 0 } else { CHUNK_FRAMES };
        Ok(Self {
            host_rate,
            factor,
            scratch: [vec![0.0; scratch_len], vec![0.0; scratch_len]],
            down: [
                Decimator::new(engine_rate, factor),
                Decimator::new(engine_rate, factor),
            ],
        })
    }

    /// The host's rate.
    #[must_use]
    pub const fn host_rate(&self) -> f32 {
        self.host_rate
    }

    /// The engine's rate: the host's times [`HostRate::factor`].
    #[must_use]
    pub fn engine_rate(&self) -> f32 {
        self.host_rate * self.factor as f32
    }

    /// Engine frames per host frame.
    #[must_use]
    pub const fn factor(&self) -> usize {
        self.factor
    }

    /// Renders `left`/`right` (host frames, overwritten) with `engine`, chunk by
    /// chunk; after each chunk, `after` gets the engine, the chunk's samples at
    /// the engine's rate and the host frame the chunk starts at. Never
    /// allocates.
    pub fn process(
        &mut self,
        engine: &mut Engine,
        left: &mut [f32],
        right: &mut [f32],
        mut after: impl FnMut(&mut Engine, &[f32], &[f32], usize),
    ) {
        let frames = left.len().min(right.len());
        let chunk = CHUNK_FRAMES / self.factor;
        let mut start = 0;
        while start < frames {
            let n = chunk.min(frames - start);
            let (l, r) = (&mut left[start..start + n], &mut right[start..start + n]);
            if self.factor == 1 {
                engine.process(l, r);
                after(engine, l, r, start);
            } else {
                let m = n * self.factor;
                let [sl, sr] = &mut self.scratch;
                let (sl, sr) = (&mut sl[..m], &mut sr[..m]);
                engine.process(sl, sr);
                self.down[0].process_block(sl, l);
                self.down[1].process_block(sr, r);
                after(engine, sl, sr, start);
            }
            start += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::render::RenderMode;

    #[test]
    fn every_rate_from_1_khz_to_768_khz_has_an_engine_rate() {
        for host in [
            1_000.0,
            1_234.567_8,
            4_000.0,
            7_999.0,
            8_000.0,
            12_345.678,
            768_000.0,
        ] {
            let plan = HostRate::new(host).unwrap();
            let engine = plan.engine_rate();
            assert!(
                (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&engine),
                "{host} Hz: engine at {engine} Hz"
            );
            assert!(
                engine < 2.0 * MIN_SAMPLE_RATE.max(host),
                "{host} Hz: {engine} Hz"
            );
            assert_eq!(plan.factor() == 1, host >= MIN_SAMPLE_RATE, "{host} Hz");
        }
        assert_eq!(HostRate::new(1_234.567_8).unwrap().factor(), 7);
        for bad in [999.0, 0.0, -48_000.0, 800_000.0, f32::NAN, f32::INFINITY] {
            let err = HostRate::new(bad).unwrap_err();
            assert!(
                err.to_string().contains("between 1000 and 768000 Hz"),
                "{err}"
            );
        }
    }

    /// At a low host rate the output is the engine's, filtered and decimated:
    /// block sizes do not matter, and the notes of every chunk are handed over.
    #[test]
    fn a_low_rate_renders_the_same_however_the_host_slices_it() {
        let render = |block: usize| {
            let mut plan = HostRate::new(1_500.0).unwrap();
            let mut engine = Engine::new(EngineConfig {
                sample_rate: plan.engine_rate(),
                mode: RenderMode::Offline,
                ..EngineConfig::default()
            })
            .unwrap();
            let frames = 30_000;
            let (mut l, mut r) = (vec![0.0f32; frames], vec![0.0f32; frames]);
            let mut engine_frames = 0;
            for (bl, br) in l.chunks_mut(block).zip(r.chunks_mut(block)) {
                plan.process(&mut engine, bl, br, |_, el, _, _| engine_frames += el.len());
            }
            assert_eq!(engine_frames, frames * plan.factor());
            (l, r)
        };
        let (a, _) = render(4_096);
        let (b, _) = render(37);
        assert_eq!(a, b);
        let peak = a.iter().fold(0.0f32, |p, x| p.max(x.abs()));
        assert!(peak > 0.01 && peak <= 1.0, "peak {peak}");
    }
}
