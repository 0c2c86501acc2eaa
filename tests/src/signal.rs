//! Measurements of rendered audio shared by the end-to-end tests.

/// The largest sample-to-sample step of `x` (0 for fewer than two samples): a
/// click or a jump shows up as a step the music does not make by itself.
#[must_use]
pub fn max_step(x: &[f32]) -> f32 {
    x.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}
