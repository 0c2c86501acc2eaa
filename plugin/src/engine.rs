//! The headless engine.
