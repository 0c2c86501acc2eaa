//! The properties the fuzz targets check, one function per target, so that the
//! cargo-fuzz targets in `fuzz/` (libFuzzer, nightly) and the stable replay test
//! (`tests/tests/fuzz_seeds.rs`, part of every `cargo test`) run the same checks.
//! Each function panics when an input breaks its property.

use auralis::compose::phrase::ComposeParams;
use auralis::stream::layout::{
    parse_header, parse_header_prefix, Header, CAPACITY_RANGE, MAX_CHANNELS,
    SAMPLE_RATE_RANGE as SHM_SAMPLE_RATE_RANGE,
};
use auralis_bridge::codec::opus::{split_payload, PACKET_FRAMES};
use auralis_bridge::config::{Cli, Config, FileConfig, CHUNK_MS_RANGE, SAMPLE_RATE_RANGE};
use auralis_bridge::protocol::{
    decode_payload, parse_client_bytes, ClientMessage, Dialect, FrameHeader, HEADER_LEN,
};
use clap::Parser as _;

use crate::clap_host::{linked_entry, Plugin};

/// A client's control message, as bytes off a WebSocket or an HTTP body, in both
/// dialects: the parser never panics, and whatever it accepts is a complete, valid
/// change (validation is all-or-nothing, so a parameter update that passed it must
/// give parameters the engine accepts).
pub fn control(data: &[u8]) {
    for dialect in [Dialect::Native, Dialect::Compat] {
        match parse_client_bytes(data, dialect) {
            Ok(ClientMessage::UpdateParams(update)) => {
                assert!(!update.is_empty(), "an accepted update changes something");
                let applied = update.apply_to(ComposeParams::default());
                if let Err(e) = applied.validate() {
                    panic!("accepted update {update:?} gives invalid parameters: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => assert!(!e.message.is_empty(), "an error explains itself"),
        }
    }
}

/// An audio frame's header and payload: parsing never panics, an accepted header
/// round-trips and its payload holds exactly the frames it announces.
pub fn frame_header(data: &[u8]) {
    let Ok((header, payload)) = FrameHeader::parse(data) else {
        return;
    };
    match header.payload_len() {
        Some(len) => assert_eq!(payload.len() as u64, len),
        None => {
            let packets = split_payload(payload).expect("an accepted Opus payload splits");
            assert_eq!(
                packets.len() as u64 * PACKET_FRAMES as u64,
                u64::from(header.frames)
            );
            return;
        }
    }
    let mut again = Vec::with_capacity(HEADER_LEN);
    header.write_to(&mut again);
    assert_eq!(again.len(), HEADER_LEN);
    assert_eq!(again[..42], data[..42], "header fields round-trip");
    let samples = decode_payload(header.codec, payload);
    assert_eq!(
        samples.len() as u64,
        u64::from(header.frames) * u64::from(header.channels)
    );
}

/// The bridge's configuration: a TOML file's text, then a NUL, then one flag per
/// line. Parsing never panics, and an accepted configuration is within every range.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (file_text, args) = text.split_once('\0').unwrap_or((&text, ""));
    let file = FileConfig::from_toml(file_text).unwrap_or_default();
    let argv = std::iter::once("auralis-bridge").chain(args.lines().filter(|a| !a.is_empty()));
    let Ok(mut cli) = Cli::try_parse_from(argv) else {
        return;
    };
    // The loader's file step reads from disk; the file's text was given above.
    cli.config = None;
    let Ok(config) = Config::merge(&cli, &file) else {
        return;
    };
    assert!((SAMPLE_RATE_RANGE.0..=SAMPLE_RATE_RANGE.1).contains(&config.sample_rate));
    assert!((CHUNK_MS_RANGE.0..=CHUNK_MS_RANGE.1).contains(&config.chunk_ms));
    assert!(config.frames_per_chunk() > 0);
    assert!(config.max_clients >= 1);
    assert!(config.client_queue >= 2);
    assert!(config.missed_pongs >= 1);
    assert!(config.control_rate_per_s.is_finite() && config.control_rate_per_s > 0.0);
    assert!(!config.heartbeat.is_zero() && !config.max_lag.is_zero());
    assert!(!config.status_interval.is_zero() && !config.send_timeout.is_zero());
}

/// A shared-memory stream's header, whole or as the 8-byte file length followed by
/// the header's prefix: whatever parses is within every range and fits its file.
pub fn shm_header(data: &[u8]) {
    fn check(header: &Header, file_len: u64) {
        assert!((SHM_SAMPLE_RATE_RANGE.0..=SHM_SAMPLE_RATE_RANGE.1)
            .contains(&u64::from(header.sample_rate)));
        assert!((1..=MAX_CHANNELS).contains(&u64::from(header.channels)));
        assert!((CAPACITY_RANGE.0..=CAPACITY_RANGE.1).contains(&u64::from(header.capacity_frames)));
        assert!(header.file_len() <= file_len, "the ring fits in the file");
        if let Some(compose) = header.compose {
            assert!(compose.validate().is_ok(), "published parameters are valid");
        }
    }
    if let Ok(header) = parse_header(data) {
        check(&header, data.len() as u64);
    }
    if let Some((len, prefix)) = data.split_first_chunk::<8>() {
        let file_len = u64::from_le_bytes(*len);
        if let Ok(header) = parse_header_prefix(prefix, file_len) {
            check(&header, file_len);
        }
    }
}

/// The plugin's saved state, loaded the way a host loads it: through the plugin's
/// own CLAP state extension (nice-plug's wrapper, then `filter_state`), on an
/// instance created in process from `auralis::clap_entry`. One instance serves
/// every input, as a host's would across loads.
pub struct PluginState {
    plugin: Plugin,
}

impl PluginState {
    /// A fresh instance from the linked CLAP entry.
    pub fn new() -> Self {
        Self {
            plugin: Plugin::with_entry(linked_entry()),
        }
    }

    /// Loads `data`: nothing panics, every parameter stays finite and within its
    /// range, and a refused state changes nothing.
    pub fn check(&mut self, data: &[u8]) {
        let plugin = &mut self.plugin;
        let params = plugin.params();
        let before: Vec<f64> = params.iter().map(|p| plugin.value(p.id)).collect();
        let loaded = plugin.load(data);
        for (p, old) in params.iter().zip(before) {
            let v = plugin.value(p.id);
            assert!(
                v.is_finite() && v >= p.min && v <= p.max,
                "{} is {v} after loading, outside {}..={}",
                p.name,
                p.min,
                p.max
            );
            if !loaded {
                assert_eq!(
                    v.to_bits(),
                    old.to_bits(),
                    "a refused state changed {}",
                    p.name
                );
            }
        }
    }
}

impl Default for PluginState {
    fn default() -> Self {
        Self::new()
    }
}
