//! Every fuzz target's property on stable, in every `cargo test`: each committed
//! seed (`fuzz/seeds/<target>/`) and a fixed set of mutations of them (bit flips,
//! boundary bytes, extreme numbers in text, insertions, cuts, splices between
//! seeds). The mutations are seeded, so a failure reproduces; the input that broke
//! the property is written to cargo's test scratch directory
//! (`target/tmp/fuzz-replay-<target>-<n>`) and named in the
//! panic, ready for `cargo +nightly fuzz run <target> <file>`. Open-ended,
//! coverage-guided fuzzing is `cargo xtask fuzz` (docs/bad-inputs.md).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use auralis::rng::Rng;
use auralis_tests::fuzz;

/// Texts that break parsers more often than random bytes do.
const NASTY: &[&[u8]] = &[
    b"1e308",
    b"-1e308",
    b"NaN",
    b"inf",
    b"-0",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"0.0000000000000000000001",
    b"\"",
    b"\\u0000",
    b"{",
    b"]",
    b"\xff\xfe",
    b"\0",
];

/// The committed seeds of one target, sorted by name.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the seeds in {}: {e}", dir.display()))
        .map(|entry| entry.expect("a seed's directory entry").path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "{} has no seeds", dir.display());
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn index(rng: &mut Rng, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        rng.below(u32::try_from(len).unwrap_or(u32::MAX)) as usize
    }
}

/// One to four mutations of a seed; `others` are the target's seeds, for splices.
fn mutate(rng: &mut Rng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = index(rng, data.len());
        let byte = at.min(data.len().saturating_sub(1));
        match rng.below(7) {
            0 if !data.is_empty() => data[byte] ^= 1 << rng.below(8),
            1 if !data.is_empty() => data[byte] = [0, 0x7f, 0x80, 0xff][index(rng, 4)],
            2 => {
                let nasty = NASTY[index(rng, NASTY.len())];
                data.splice(at..at, nasty.iter().copied());
            }
            3 => {
                // Replace a run of digits (a number in text) with an extreme one.
                let end = data[at..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(data.len(), |n| at + n);
                let nasty = NASTY[index(rng, 8)];
                data.splice(at..end, nasty.iter().copied());
            }
            4 => {
                let cut = index(rng, data.len() - at + 1);
                data.drain(at..at + cut);
            }
            5 => data.truncate(at),
            _ => {
                let other = &others[index(rng, others.len())];
                let from = index(rng, other.len());
                data.splice(at..at, other[from..].iter().copied());
            }
        }
    }
    data
}

/// Runs `check` on every seed of `target` and on `mutations` mutants of them;
/// panics naming the saved input that broke it.
fn replay(target: &str, mutations: usize, mut check: impl FnMut(&[u8])) {
    let seeds = seeds(target);
    let mut rng = Rng::new(0x5eed_f022);
    let inputs = seeds.iter().cloned().chain((0..mutations).map(|n| {
        let seed = &seeds[n % seeds.len()];
        mutate(&mut rng, seed, &seeds)
    }));
    for (n, input) in inputs.enumerate() {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            let file =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-replay-{target}-{n}"));
            let saved = std::fs::write(&file, &input);
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            panic!(
                "{target} input {n} broke the property ({why}); saved as {} ({saved:?})",
                file.display()
            );
        }
    }
}

#[test]
fn control_messages() {
    replay("control", 200_000, fuzz::control);
}

#[test]
fn frame_headers() {
    replay("frame_header", 200_000, fuzz::frame_header);
}

#[test]
fn configurations() {
    replay("config", 20_000, fuzz::config);
}

#[test]
fn shm_headers() {
    replay("shm_header", 200_000, fuzz::shm_header);
}

#[test]
fn plugin_states() {
    let mut plugin = fuzz::PluginState::new();
    replay("plugin_state", 20_000, |data| plugin.check(data));
}

/// The replay finds a broken property: a check that refuses one of the mutants.
#[test]
#[should_panic(expected = "broke the property")]
fn a_broken_property_fails_the_replay() {
    replay("control", 100, |data| assert!(data.len() < 40, "too long"));
}
