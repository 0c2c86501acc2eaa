//! Streaming the plugin's output to the bridge through shared memory
//! (DESIGN.md §6): one file per stream, `/dev/shm/auralis-<stream>`, holding a
//! header, a small control ring (bridge → plugin) and an audio ring (plugin →
//! bridge). Linux only (a tmpfs at `/dev/shm`).
//!
//! - [`layout`]: the wire layout and the panic-free [`layout::parse_header`];
//! - [`writer`]: the plugin makes the file and writes each block into it;
//! - [`reader`]: the bridge maps it, follows the write position, lists streams;
//! - [`control`]: fixed-size, validated control records and their ring;
//! - [`remote`]: remote parameter values laid over the host's;
//! - [`service`]: the plugin's stream thread and the audio thread's output.
//!
//! One writer per stream: a second plugin instance on the same stream replaces
//! the first one's file (the bridge follows the newest). One controlling bridge
//! per stream: the control ring has a single producer.

pub mod control;
pub mod layout;
mod mapping;
pub mod reader;
pub mod remote;
pub mod service;
pub mod writer;

const _: () = assert!(
    cfg!(target_endian = "little"),
    "the stream layout is little-endian"
);
