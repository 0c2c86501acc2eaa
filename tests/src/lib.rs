//! Helpers shared by the end-to-end tests in `tests/`: a minimal CLAP host that
//! loads the built plugin bundle.

pub mod clap_host;
