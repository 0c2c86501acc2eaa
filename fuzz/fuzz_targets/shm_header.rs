//! The shared-memory stream header, as the bridge reads it from a file a plugin
//! wrote (or anything else found at `/dev/shm/auralis-*`): the parser never
//! panics, and a header it accepts is within its documented ranges and fits in
//! the file. The input is the file itself (`parse_header`), and, after its first
//! eight bytes, a prefix with the file length those bytes claim
//! (`parse_header_prefix`, which the reader uses on a mapped file).
//!
//! The property is `auralis_tests::fuzz::shm_header`, which the stable replay test
//! (`tests/tests/fuzz_seeds.rs`) also runs over the seeds and their mutations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auralis_tests::fuzz::shm_header(data));
