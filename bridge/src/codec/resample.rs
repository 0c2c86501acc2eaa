//! A streaming sample-rate converter for interleaved audio: rubato's FFT
//! resampler (fixed ratio, the quality of a long sinc filter) behind a small FIFO,
//! so chunks of any size go in and every sample that can be made comes out.
//! Between equal rates it passes the samples through untouched.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use super::CodecError;

/// Frames the resampler takes per call.
const BLOCK_FRAMES: usize = 1024;

/// Converts interleaved audio from one fixed rate to another.
pub struct StreamResampler {
    /// The resampler; `None` between equal rates.
    inner: Option<Fft<f32>>,
    channels: usize,
    /// Input not yet resampled (less than one block).
    pending: Vec<f32>,
    /// One block of output.
    block_out: Vec<f32>,
    /// Output frames still to drop: the resampler's delay, so the output lines up
    /// with the input.
    skip_frames: usize,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("channels", &self.channels)
            .field("pending_frames", &(self.pending.len() / self.channels))
            .finish_non_exhaustive()
    }
}

impl StreamResampler {
    /// A converter from `from_hz` to `to_hz` for `channels` interleaved channels
    /// (a pass-through when the rates are equal).
    ///
    /// # Errors
    /// [`CodecError::Resampler`] when rubato refuses the rates.
    pub fn new(from_hz: u32, to_hz: u32, channels: usize) -> Result<Self, CodecError> {
        if from_hz == to_hz {
            return Ok(Self {
                inner: None,
                channels,
                pending: Vec::new(),
                block_out: Vec::new(),
                skip_frames: 0,
            });
        }
        let inner = Fft::<f32>::new(
            from_hz as usize,
            to_hz as usize,
            BLOCK_FRAMES,
            channels,
            FixedSync::Input,
        )
        .map_err(|e| CodecError::Resampler {
            from_hz,
            to_hz,
            reason: e.to_string(),
        })?;
        let block_out = vec![0.0; inner.output_frames_max() * channels];
        let skip_frames = inner.output_delay();
        Ok(Self {
            inner: Some(inner),
            channels,
            pending: Vec::with_capacity(2 * BLOCK_FRAMES * channels),
            block_out,
            skip_frames,
        })
    }

    /// Resamples `input` (interleaved) and appends every output frame it can make
    /// to `out`. The first output lags by nothing: the filter's delay is dropped.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.inner.is_none() {
            out.extend_from_slice(input);
            return;
        }
        self.pending.extend_from_slice(input);
        let block = BLOCK_FRAMES * self.channels;
        let mut used = 0;
        while self.pending.len() - used >= block {
            let frames_out = self.block(used);
            let skip = self.skip_frames.min(frames_out);
            self.skip_frames -= skip;
            out.extend_from_slice(
                &self.block_out[skip * self.channels..frames_out * self.channels],
            );
            used += block;
        }
        self.pending.drain(..used);
    }

    /// Resamples one block of `pending` from `offset` into `block_out`; returns
    /// the frames written.
    fn block(&mut self, offset: usize) -> usize {
        let block = BLOCK_FRAMES * self.channels;
        let input = &self.pending[offset..offset + block];
        let out_frames = self.block_out.len() / self.channels;
        // Both adapters fit by construction: one block in, at most
        // `output_frames_max` out.
        let (Some(inner), Ok(input), Ok(mut output)) = (
            self.inner.as_mut(),
            InterleavedSlice::new(input, self.channels, BLOCK_FRAMES),
            InterleavedSlice::new_mut(&mut self.block_out, self.channels, out_frames),
        ) else {
            return 0;
        };
        inner
            .process_into_buffer(&input, &mut output, None)
            .map_or(0, |(_, written)| written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let x = (std::f32::consts::TAU * hz * i as f32 / rate as f32).sin() * 0.5;
                [x, -x]
            })
            .collect()
    }

    #[test]
    fn makes_the_right_number_of_frames_and_keeps_the_pitch() {
        let mut r = StreamResampler::new(44_100, 48_000, 2).expect("rates");
        let input = sine(44_100, 1000.0, 44_100 * 2);
        let mut out = Vec::new();
        // Uneven pieces, as a source with odd chunk sizes gives them.
        for piece in input.chunks(2 * 777) {
            r.process(piece, &mut out);
        }
        let frames = out.len() / 2;
        assert!(
            (frames as i64 - 96_000).unsigned_abs() < 3 * BLOCK_FRAMES as u64,
            "{frames} frames out of 2 s"
        );
        // Zero crossings of the left channel over the middle second: 1000 Hz.
        let left: Vec<f32> = out.iter().step_by(2).copied().collect();
        let mid = &left[24_000..72_000];
        let crossings = mid.windows(2).filter(|w| w[0] <= 0.0 && w[1] > 0.0).count();
        assert!(
            (crossings as i64 - 1000).abs() <= 2,
            "{crossings} cycles in 1 s"
        );
        // The right channel stays the left's negation (channels are not mixed).
        let worst = out
            .chunks_exact(2)
            .skip(1000)
            .map(|f| (f[0] + f[1]).abs())
            .fold(0.0_f32, f32::max);
        assert!(worst < 1e-4, "channels mixed: {worst}");
    }

    #[test]
    fn equal_rates_pass_through() {
        let mut r = StreamResampler::new(48_000, 48_000, 2).expect("rates");
        let input = sine(48_000, 1000.0, 1000);
        let mut out = Vec::new();
        r.process(&input, &mut out);
        assert_eq!(out, input);
    }

    #[test]
    fn refuses_a_zero_rate() {
        assert!(matches!(
            StreamResampler::new(0, 48_000, 2),
            Err(CodecError::Resampler { from_hz: 0, .. })
        ));
    }
}
