//! A client's control message, as bytes off a WebSocket or an HTTP body, in both
//! dialects: the parser never panics, and whatever it accepts is a complete, valid
//! change (validation is all-or-nothing, so a parameter update that passed it must
//! give parameters the engine accepts).
//!
//! The property is `auralis_tests::fuzz::control`, which the stable replay test
//! (`tests/tests/fuzz_seeds.rs`) also runs over the seeds and their mutations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auralis_tests::fuzz::control(data));
