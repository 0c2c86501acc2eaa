//! The configuration loader: a TOML file's text and command-line flags. The input
//! is split at its first NUL byte: the text before it is the file, each line after
//! it one argument. Nothing panics, and a configuration that loads holds every
//! setting within its documented range.
//!
//! The property is `auralis_tests::fuzz::config`, which the stable replay test
//! (`tests/tests/fuzz_seeds.rs`) also runs over the seeds and their mutations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auralis_tests::fuzz::config(data));
