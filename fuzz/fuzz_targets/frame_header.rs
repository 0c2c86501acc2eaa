//! A binary audio frame: the header decoder never panics, and a frame it accepts
//! re-encodes to the same bytes (the two reserved bytes aside, which it ignores)
//! with a payload of exactly the announced size (PCM) or of whole 20 ms packets
//! that add up to the announced frames (Opus).
//!
//! The property is `auralis_tests::fuzz::frame_header`, which the stable replay test
//! (`tests/tests/fuzz_seeds.rs`) also runs over the seeds and their mutations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auralis_tests::fuzz::frame_header(data));
