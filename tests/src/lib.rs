//! Helpers shared by the end-to-end tests in `tests/`: a minimal CLAP host that
//! loads the built plugin bundle, measurements of rendered audio, and the plugin's
//! state framing, and the properties the fuzz targets check.

pub mod clap_host;
pub mod fuzz;
pub mod signal;
pub mod state;
