//! Auralis: endless, evolving ambient music composed and rendered in real time.
//!
//! The engine (composer, DSP, renderer) is independent of any plugin framework; the
//! [`engine::Engine`] is what hosts, the offline renderer and the bridge drive.

pub mod compose;
pub mod degrade;
pub mod dsp;
pub mod engine;
pub mod offline;
pub mod render;
pub mod rng;
