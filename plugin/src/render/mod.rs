//! The real-time block renderer.

pub mod mix;
