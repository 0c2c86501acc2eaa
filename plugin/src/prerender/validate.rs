//! Validation of rendered textures and the bookkeeping of the recovery chain
//! (seed §2.1): the output checks, the phrase simplification used by retries, and
//! the failure rate over a sliding window of attempts (failures ÷ attempts; the
//! seed's own formula divided consecutive failures by total failures).

use std::collections::VecDeque;

use crate::compose::phrase::Phrase;

/// Largest accepted sample magnitude in a texture.
pub const MAX_PEAK: f32 = 2.0;

/// Why a rendered texture was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    /// The channels do not hold the expected number of frames.
    #[error("texture shape is 2 x {left}/{right} frames, expected 2 x {expected}")]
    Shape {
        /// Frames in the left channel.
        left: usize,
        /// Frames in the right channel.
        right: usize,
        /// Frames expected.
        expected: usize,
    },
    /// A sample is NaN or infinite.
    #[error("non-finite sample at frame {frame}")]
    NonFinite {
        /// The first bad frame.
        frame: usize,
    },
    /// A sample is louder than [`MAX_PEAK`].
    #[error("peak {peak} at frame {frame} exceeds {MAX_PEAK}")]
    Peak {
        /// Its magnitude.
        peak: f32,
        /// Where.
        frame: usize,
    },
}

/// Checks a rendered texture: shape (2 × `expected` frames), every sample finite,
/// peak at most [`MAX_PEAK`].
///
/// # Errors
/// The first check that fails.
pub fn validate(left: &[f32], right: &[f32], expected: usize) -> Result<(), ValidationError> {
    if left.len() != expected || right.len() != expected {
        return Err(ValidationError::Shape {
            left: left.len(),
            right: right.len(),
            expected,
        });
    }
    for (frame, (l, r)) in left.iter().zip(right).enumerate() {
        if !(l.is_finite() && r.is_finite()) {
            return Err(ValidationError::NonFinite { frame });
        }
        let peak = l.abs().max(r.abs());
        if peak > MAX_PEAK {
            return Err(ValidationError::Peak { peak, frame });
        }
    }
    Ok(())
}

/// The simpler phrase a retry renders (seed §2.1): the first half of the melody and
/// no percussion. The texture itself is simplified through
/// [`super::texture::Quality::simplified`].
#[must_use]
pub fn simplify(phrase: &Phrase) -> Phrase {
    let mut simpler = phrase.clone();
    simpler.melody.truncate(phrase.melody.len() / 2);
    simpler.percussion.clear();
    simpler
}

/// Largest absolute difference between `a` and `b` in dB relative to full scale
/// (1.0); `-inf` when equal, `+inf` when the lengths differ.
#[must_use]
pub fn error_db(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .fold(0.0_f64, f64::max);
    20.0 * worst.log10()
}

/// Default length of the failure-rate window, in attempts.
pub const FAILURE_WINDOW: usize = 50;

/// Outcomes of the most recent render attempts: the failure rate is failures ÷
/// attempts over the last `capacity` attempts.
#[derive(Debug, Clone)]
pub struct FailureWindow {
    outcomes: VecDeque<bool>,
    capacity: usize,
    failures: usize,
}

impl FailureWindow {
    /// A window over the last `capacity` attempts (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            outcomes: VecDeque::with_capacity(capacity),
            capacity,
            failures: 0,
        }
    }

    /// Records one attempt.
    pub fn record(&mut self, failed: bool) {
        if self.outcomes.len() == self.capacity {
            if let Some(true) = self.outcomes.pop_front() {
                self.failures -= 1;
            }
        }
        self.outcomes.push_back(failed);
        self.failures += usize::from(failed);
    }

    /// Failures ÷ attempts in the window (0 before any attempt).
    #[must_use]
    pub fn rate(&self) -> f32 {
        if self.outcomes.is_empty() {
            0.0
        } else {
            self.failures as f32 / self.outcomes.len() as f32
        }
    }
}

impl Default for FailureWindow {
    fn default() -> Self {
        Self::new(FAILURE_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{ComposeParams, Composer};

    #[test]
    fn validation_checks_shape_finiteness_and_peak() {
        let good = vec![0.5_f32; 10];
        assert_eq!(validate(&good, &good, 10), Ok(()));
        assert!(matches!(
            validate(&good, &good[..9], 10),
            Err(ValidationError::Shape { .. })
        ));
        assert!(matches!(
            validate(&good, &good, 11),
            Err(ValidationError::Shape { .. })
        ));
        let mut bad = good.clone();
        bad[3] = f32::NAN;
        assert_eq!(
            validate(&good, &bad, 10),
            Err(ValidationError::NonFinite { frame: 3 })
        );
        bad[3] = f32::INFINITY;
        assert!(validate(&bad, &good, 10).is_err());
        bad[3] = -2.5;
        assert!(matches!(
            validate(&bad, &good, 10),
            Err(ValidationError::Peak { frame: 3, .. })
        ));
        bad[3] = 2.0;
        assert_eq!(validate(&bad, &good, 10), Ok(()));
    }

    #[test]
    fn failure_rate_is_failures_over_attempts_in_window() {
        let mut w = FailureWindow::new(4);
        assert_eq!(w.rate(), 0.0);
        w.record(true);
        assert_eq!(w.rate(), 1.0);
        w.record(false);
        w.record(false);
        w.record(false);
        assert_eq!(w.rate(), 0.25);
        // The failure slides out of the window.
        w.record(false);
        assert_eq!(w.rate(), 0.0);
        for _ in 0..4 {
            w.record(true);
        }
        assert_eq!(w.rate(), 1.0);
    }

    #[test]
    fn simplify_halves_melody_and_drops_percussion() {
        let params = ComposeParams {
            intensity: 1.0,
            ..ComposeParams::default()
        };
        let p = Composer::new(1, params).seek(4);
        let s = simplify(&p);
        assert_eq!(s.melody.len(), p.melody.len() / 2);
        assert_eq!(&s.melody[..], &p.melody[..s.melody.len()]);
        assert!(s.percussion.is_empty());
        assert_eq!(s.chords, p.chords);
    }

    #[test]
    fn error_db_measures_worst_difference() {
        assert_eq!(error_db(&[0.0, 0.5], &[0.0, 0.5]), f64::NEG_INFINITY);
        assert!((error_db(&[0.0, 0.5], &[0.0, 0.4]) - (-20.0)).abs() < 1e-6);
        assert_eq!(error_db(&[0.0], &[]), f64::INFINITY);
    }
}
