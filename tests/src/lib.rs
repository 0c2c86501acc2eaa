//! Helpers shared by the end-to-end tests in `tests/`: a minimal CLAP host that
//! loads the built plugin bundle, measurements of rendered audio, and the plugin's
//! state framing.

pub mod clap_host;
pub mod signal;
pub mod state;
