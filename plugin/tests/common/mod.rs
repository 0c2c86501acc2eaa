//! Helpers shared by the plugin's integration tests.

use std::path::{Path, PathBuf};

/// A path named `name` in this test binary's own scratch folder (made if
/// missing, named after the binary) under Cargo's temporary directory for
/// integration tests.
///
/// # Panics
/// When the folder cannot be made.
#[must_use]
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(env!("CARGO_CRATE_NAME"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// The largest sample-to-sample step of `x` (0 for fewer than two samples): a
/// click or a jump shows up as a step the music does not make by itself.
#[must_use]
pub fn max_step(x: &[f32]) -> f32 {
    x.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}
