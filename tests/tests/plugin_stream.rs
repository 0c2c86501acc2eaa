//! The plugin's shared-memory stream through a real CLAP host: with the Stream
//! switch on, the bundle (built with `assert_process_allocs`, which aborts on any
//! allocation in `process()`) creates `/dev/shm/auralis-<channel>` and writes
//! exactly what it outputs; switching off or deactivating closes and removes it.

use std::time::{Duration, Instant};

use auralis::degrade::Level;
use auralis::stream::layout::stream_path;
use auralis::stream::reader::ShmReader;
use auralis_tests::clap_host::{Ev, Plugin};

const BLOCK: usize = 512;
/// A channel no other test uses (nor the next one).
const CHANNEL: i32 = 11;
const T: Duration = Duration::from_secs(20);

/// The names in /dev/shm, for failure messages.
fn shm_files() -> Vec<String> {
    std::fs::read_dir("/dev/shm").map_or_else(
        |e| vec![e.to_string()],
        |dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        },
    )
}

/// Processes blocks (as a host does, between which its main thread runs) until
/// `cond` holds.
fn process_until(plugin: &mut Plugin, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; /dev/shm holds {:?}",
            shm_files()
        );
        plugin.render(BLOCK, BLOCK, &[], None);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_stream_carries_exactly_the_plugins_output_without_allocating() {
    let name = CHANNEL.to_string();
    let path = stream_path(&name);
    // A file left by an earlier, killed run is replaced; none must be open now.
    let _ = std::fs::remove_file(&path);
    let mut plugin = Plugin::new();
    let stream = plugin.param("Stream").id;
    // A stepped parameter's CLAP value counts steps from its minimum (channel 1).
    let channel = plugin.param("Stream channel").id;
    plugin.activate(48_000.0, BLOCK as u32, false);
    assert!(!path.exists(), "streaming is off by default");
    plugin.render(
        BLOCK,
        BLOCK,
        &[
            Ev::Param(channel, f64::from(CHANNEL - 1), 0),
            Ev::Param(stream, 1.0, 0),
        ],
        None,
    );
    let mut reader = None;
    process_until(&mut plugin, "the stream file", || {
        reader = ShmReader::open(&name).ok().filter(|r| r.write_pos() > 0);
        reader.is_some()
    });
    let reader = reader.expect("opened");
    let h = *reader.header();
    assert_eq!((h.sample_rate, h.channels), (48_000, 2));
    assert_eq!(h.writer_pid, std::process::id());
    assert!(!reader.closed() && !reader.remote_control());

    // Two seconds of output, and the same frames read back from the ring.
    let from = reader.write_pos();
    let beat = reader.heartbeat();
    let frames = 48_000;
    let out = plugin.render(frames, BLOCK, &[], None);
    assert_eq!(reader.write_pos(), from + frames as u64);
    assert_eq!(reader.heartbeat(), beat + frames.div_ceil(BLOCK) as u64);
    let mut ring = vec![0.0f32; frames * 2];
    reader.read(from, &mut ring).expect("not lapped");
    let expected: Vec<f32> = out[0]
        .iter()
        .zip(&out[1])
        .flat_map(|(l, r)| [*l, *r])
        .collect();
    assert!(
        expected.iter().any(|x| x.abs() > 0.01),
        "the plugin is silent"
    );
    assert!(
        ring.iter()
            .zip(&expected)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "the stream differs from the output"
    );
    assert!(reader.level() <= Level::Overload);
    assert_eq!(reader.compose().map(|c| c.bpm), Some(60.0));

    // Remote control is published; switching the stream off closes and removes it.
    let remote = plugin.param("Remote control").id;
    plugin.render(BLOCK, BLOCK, &[Ev::Param(remote, 1.0, 0)], None);
    process_until(&mut plugin, "remote control", || reader.remote_control());
    plugin.render(BLOCK, BLOCK, &[Ev::Param(stream, 0.0, 0)], None);
    process_until(&mut plugin, "the stream to close", || reader.closed());
    assert!(!path.exists(), "the file is removed");
    let written = reader.write_pos();
    plugin.render(BLOCK * 4, BLOCK, &[], None);
    assert_eq!(reader.write_pos(), written, "nothing is written once off");

    // On again, then another channel while running: the old stream closes, the
    // new one opens; deactivation closes that one.
    plugin.render(BLOCK, BLOCK, &[Ev::Param(stream, 1.0, 0)], None);
    let mut again = None;
    process_until(&mut plugin, "the stream again", || {
        again = ShmReader::open(&name).ok().filter(|r| r.write_pos() > 0);
        again.is_some()
    });
    let again = again.expect("opened");
    assert_ne!(again.header().session, h.session, "a new file");
    let other = (CHANNEL + 1).to_string();
    plugin.render(
        BLOCK,
        BLOCK,
        &[Ev::Param(channel, f64::from(CHANNEL), 0)],
        None,
    );
    let mut moved = None;
    process_until(&mut plugin, "the other channel", || {
        moved = ShmReader::open(&other).ok().filter(|r| r.write_pos() > 0);
        moved.is_some() && again.closed()
    });
    let moved = moved.expect("opened");
    assert!(!path.exists(), "the old channel's file is removed");
    plugin.deactivate();
    assert!(moved.closed(), "deactivation closes the stream");
    assert!(
        !stream_path(&other).exists(),
        "deactivation removes the file"
    );
}
