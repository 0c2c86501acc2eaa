//! A minimal CLAP host (clack-host) for the plugin tests: it loads the bundled
//! `Auralis.clap` (debug, `assert_process_allocs`), activates it, and processes on
//! a separate audio thread with note, parameter and transport events, the way a
//! DAW does. Each test process builds the bundles with `cargo xtask bundle` (a
//! no-op when they are fresh; serialised across processes by a lock file) and
//! loads a private copy, so that a later rebuild never changes a loaded library.

use std::ffi::CStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::{
    NoteOffEvent, NoteOnEvent, ParamValueEvent, TransportEvent, TransportFlags,
};
use clack_host::events::{EventFlags, EventHeader};
use clack_host::prelude::{
    AudioPortBuffer, AudioPortBufferType, AudioPorts, ClapId, EventBuffer, HostHandlers, HostInfo,
    InputAudioBuffers, InputEvents, OutputEvents, Pckn, PluginAudioConfiguration, PluginEntry,
    PluginInstance, SharedHandler, StartedPluginAudioProcessor,
};
use clack_host::utils::{BeatTime, SecondsTime};

/// The plugin's frozen CLAP id.
pub const CLAP_ID: &CStr = c"com.auralis.instrument";

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Builds the debug bundles once per process (`cargo xtask bundle auralis
/// --features assert_process_allocs --lib`); returns `target/bundled`.
fn bundled() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = target_dir();
        let _lock = bundle_lock(&target);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .args([
                "run",
                "--quiet",
                "--package",
                "xtask",
                "--",
                "bundle",
                "auralis",
                "--features",
                "assert_process_allocs",
                // The library alone: the binaries other tests run stay as built.
                "--lib",
            ])
            .status()
            .expect("run cargo xtask bundle");
        assert!(status.success(), "cargo xtask bundle failed: {status}");
        target.join("bundled")
    })
}

/// An exclusive lock on the bundles, across test processes.
fn bundle_lock(target: &Path) -> File {
    std::fs::create_dir_all(target).expect("target dir");
    let lock = File::create(target.join(".auralis-bundle.lock")).expect("lock file");
    lock.lock().expect("lock the bundles");
    lock
}

/// A private copy of the file `relative` in `target/bundled` (built first), for
/// this process alone to load: a later rebuild never changes a loaded library.
/// Load it, then delete it (the loaded mapping stays valid).
pub fn private_copy(relative: &str) -> PathBuf {
    let from = bundled().join(relative);
    let _lock = bundle_lock(&target_dir());
    let name = Path::new(relative)
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let to = std::env::temp_dir().join(format!(
        "auralis-test-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::copy(&from, &to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    to
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Loads the CLAP entry of the test bundle (once per process).
pub fn entry() -> &'static PluginEntry {
    static ENTRY: OnceLock<PluginEntry> = OnceLock::new();
    ENTRY.get_or_init(|| load_entry(&private_copy("Auralis.clap")))
}

/// The plugin's CLAP entry linked into this process (once per process): no bundle
/// to build or load, for tests and fuzz targets that need only the plugin's own
/// code path (state loading, parameters), not its bundled form.
pub fn linked_entry() -> &'static PluginEntry {
    static ENTRY: OnceLock<PluginEntry> = OnceLock::new();
    ENTRY.get_or_init(|| {
        // SAFETY: the descriptor is the plugin's own `clap_entry`, linked into this
        // binary and valid for the whole process.
        unsafe { PluginEntry::load_from_raw(&auralis::clap_entry, c"auralis-linked") }
            .expect("the plugin's CLAP entry initialises")
    })
}

/// Loads the CLAP entry of the library at `path`, then deletes that file (pass a
/// private copy).
pub fn load_entry(path: &Path) -> PluginEntry {
    // SAFETY: loading a library runs its initialisers; this is our own plugin,
    // built for this run, and its CLAP entry is what the caller exercises.
    let entry = unsafe { PluginEntry::load(path) }
        .unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
    std::fs::remove_file(path).expect("remove the private copy");
    entry
}

/// Host callbacks: requests are recorded and served between blocks.
#[derive(Default)]
pub struct Shared {
    restart: AtomicBool,
    callback: AtomicBool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {
        self.restart.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback.store(true, Ordering::SeqCst);
    }
}

/// The host type.
pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// The transport a block is played with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transport {
    /// Whether it plays.
    pub playing: bool,
    /// Song position in beats at the block start.
    pub beat: f64,
    /// Tempo in BPM.
    pub bpm: f64,
}

/// One event in a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ev {
    /// MIDI note on (key, frame in block).
    NoteOn(u16, u32),
    /// MIDI note off (key, frame in block).
    NoteOff(u16, u32),
    /// A parameter's plain value (id, value, frame in block).
    Param(ClapId, f64, u32),
}

/// A note event the plugin sent (MIDI out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutNote {
    /// Frames since the activation: the block's first frame plus the event's time.
    pub frame: u64,
    /// The frame the block started at.
    pub block_start: u64,
    /// MIDI channel, 0..=15.
    pub channel: u16,
    /// MIDI key.
    pub key: u16,
    /// A note-on's velocity; `None` for a note-off.
    pub velocity: Option<f64>,
}

/// How many output events a block may carry without the test host's buffer
/// growing (which would allocate inside the plugin's checked `process()`).
const OUT_EVENT_CAPACITY: usize = 1024;

/// A parameter as the plugin describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDesc {
    /// CLAP id.
    pub id: ClapId,
    /// Display name.
    pub name: String,
    /// Range and default (plain values).
    pub min: f64,
    /// Highest value.
    pub max: f64,
    /// Default value.
    pub default: f64,
}

/// The audio thread's side: processor, buffers and event storage.
struct Audio {
    processor: StartedPluginAudioProcessor<TestHost>,
    left: Vec<f32>,
    right: Vec<f32>,
    outputs: AudioPorts,
    events: EventBuffer,
    out_events: EventBuffer,
    out_notes: Vec<OutNote>,
    steady: u64,
}

impl Audio {
    /// Processes one block; returns how long the plugin's `process()` took.
    fn block(&mut self, frames: usize, events: &[Ev], transport: Option<Transport>) -> Duration {
        self.events.clear();
        let mut sorted: Vec<Ev> = events.to_vec();
        sorted.sort_by_key(|e| match *e {
            Ev::NoteOn(_, t) | Ev::NoteOff(_, t) | Ev::Param(_, _, t) => t,
        });
        for e in sorted {
            match e {
                Ev::NoteOn(key, t) => {
                    self.events
                        .push(&NoteOnEvent::new(t, Pckn::new(0u16, 0u16, key, 0u32), 0.8));
                }
                Ev::NoteOff(key, t) => {
                    self.events
                        .push(&NoteOffEvent::new(t, Pckn::new(0u16, 0u16, key, 0u32), 0.0));
                }
                Ev::Param(id, value, t) => {
                    self.events
                        .push(&ParamValueEvent::new(t, id, Pckn::match_all(), value));
                }
            }
        }
        self.out_events.clear();
        let transport = transport.map(transport_event);
        let inputs = InputAudioBuffers::empty();
        let mut outputs = self.outputs.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(
                [&mut self.left[..frames], &mut self.right[..frames]].into_iter(),
            ),
        }]);
        let started = Instant::now();
        self.processor
            .process(
                &inputs,
                &mut outputs,
                &InputEvents::from_buffer(&self.events),
                &mut OutputEvents::from_buffer(&mut self.out_events),
                Some(self.steady),
                transport.as_ref(),
            )
            .expect("process");
        let took = started.elapsed();
        self.collect_out_notes();
        self.steady += frames as u64;
        took
    }

    /// Keeps the note events the plugin sent in the block just processed.
    fn collect_out_notes(&mut self) {
        assert!(
            self.out_events.len() as usize <= OUT_EVENT_CAPACITY,
            "the plugin sent {} events in one block",
            self.out_events.len()
        );
        for event in &self.out_events {
            let note = if let Some(on) = event.as_event::<NoteOnEvent>() {
                (on.channel(), on.key(), Some(on.velocity()))
            } else if let Some(off) = event.as_event::<NoteOffEvent>() {
                (off.channel(), off.key(), None)
            } else {
                continue;
            };
            let (Some(channel), Some(key)) = (note.0.into_specific(), note.1.into_specific())
            else {
                panic!("a note event without a channel or key: {note:?}");
            };
            self.out_notes.push(OutNote {
                frame: self.steady + u64::from(event.header().time()),
                block_start: self.steady,
                channel,
                key,
                velocity: note.2,
            });
        }
    }
}

fn transport_event(t: Transport) -> TransportEvent {
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_SECONDS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if t.playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    let bar = (t.beat / 4.0).floor();
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(t.beat),
        song_pos_seconds: SecondsTime::from_float(t.beat * 60.0 / t.bpm),
        tempo: t.bpm,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_float(0.0),
        loop_end_beats: BeatTime::from_float(0.0),
        loop_start_seconds: SecondsTime::from_float(0.0),
        loop_end_seconds: SecondsTime::from_float(0.0),
        bar_start: BeatTime::from_float(bar * 4.0),
        bar_number: bar as i32,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    }
}

/// One plugin instance and, once activated, its audio processor.
pub struct Plugin {
    instance: PluginInstance<TestHost>,
    audio: Option<Audio>,
    config: Option<(f64, u32, bool)>,
    /// Frames processed since the last activation.
    pub frames: u64,
}

impl Plugin {
    /// A fresh instance of the test bundle.
    pub fn new() -> Self {
        Self::with_entry(entry())
    }

    /// A fresh instance from `entry`.
    pub fn with_entry(entry: &'static PluginEntry) -> Self {
        let info = HostInfo::new(
            "Auralis test host",
            "Auralis",
            "https://example.invalid",
            "1",
        )
        .expect("host info");
        let instance =
            PluginInstance::<TestHost>::new(|_| Shared::default(), |_| (), entry, CLAP_ID, &info)
                .expect("create the plugin instance");
        Self {
            instance,
            audio: None,
            config: None,
            frames: 0,
        }
    }

    /// Activates at `sample_rate` for blocks up to `max_frames`, offline (the
    /// host's render mode) or real time, and starts processing.
    pub fn activate(&mut self, sample_rate: f64, max_frames: u32, offline: bool) {
        assert!(
            self.try_activate(sample_rate, max_frames, offline),
            "activation at {sample_rate} Hz was refused"
        );
    }

    /// [`Plugin::activate`]; `false` (and inactive) when the plugin refuses.
    pub fn try_activate(&mut self, sample_rate: f64, max_frames: u32, offline: bool) -> bool {
        self.deactivate();
        let mode = if offline {
            RenderMode::Offline
        } else {
            RenderMode::Realtime
        };
        let handle = self.instance.plugin_handle();
        let render: PluginRender = handle.get_extension().expect("render extension");
        render.set(&handle, mode).expect("set render mode");
        let Ok(stopped) = self.instance.activate(
            |_, _| (),
            PluginAudioConfiguration {
                sample_rate,
                min_frames_count: 1,
                max_frames_count: max_frames,
            },
        ) else {
            return false;
        };
        let n = max_frames as usize;
        let processor = std::thread::scope(|s| {
            s.spawn(move || stopped.start_processing().expect("start processing"))
                .join()
                .expect("audio thread")
        });
        self.audio = Some(Audio {
            processor,
            left: vec![0.0; n],
            right: vec![0.0; n],
            outputs: AudioPorts::with_capacity(2, 1),
            events: EventBuffer::with_capacity(64),
            out_events: EventBuffer::with_capacity(OUT_EVENT_CAPACITY),
            out_notes: Vec::new(),
            steady: 0,
        });
        self.config = Some((sample_rate, max_frames, offline));
        self.frames = 0;
        self.serve_requests();
        true
    }

    /// Stops processing and deactivates (no-op when inactive).
    pub fn deactivate(&mut self) {
        if let Some(audio) = self.audio.take() {
            let stopped = std::thread::scope(|s| {
                s.spawn(move || audio.processor.stop_processing())
                    .join()
                    .expect("audio thread")
            });
            self.instance.deactivate(stopped);
        }
    }

    /// Serves the plugin's requests the way a host's main loop does: the main
    /// thread callback, and a restart (deactivate, activate again).
    pub fn serve_requests(&mut self) {
        let shared = self.instance.access_shared_handler(|h| {
            (
                h.callback.swap(false, Ordering::SeqCst),
                h.restart.swap(false, Ordering::SeqCst),
            )
        });
        if shared.0 {
            self.instance.call_on_main_thread_callback();
        }
        if shared.1 {
            if let Some((sr, max, offline)) = self.config {
                self.activate(sr, max, offline);
            }
        }
    }

    /// Processes blocks on an audio thread: `blocks` gives each block's length,
    /// events and transport; `sink` sees each block's output. Between calls the
    /// host serves the plugin's requests.
    pub fn run(
        &mut self,
        blocks: impl Iterator<Item = (usize, Vec<Ev>, Option<Transport>)> + Send,
        mut sink: impl FnMut(&[f32], &[f32]) + Send,
    ) {
        self.run_timed(blocks, |l, r, _| sink(l, r));
    }

    /// [`Plugin::run`], with the time each `process()` call took.
    pub fn run_timed(
        &mut self,
        blocks: impl Iterator<Item = (usize, Vec<Ev>, Option<Transport>)> + Send,
        mut sink: impl FnMut(&[f32], &[f32], Duration) + Send,
    ) {
        let audio = self.audio.as_mut().expect("activated");
        let frames = std::thread::scope(|s| {
            s.spawn(move || {
                let mut frames = 0u64;
                for (n, events, transport) in blocks {
                    assert!(n <= audio.left.len(), "block of {n} frames is too long");
                    let took = audio.block(n, &events, transport);
                    sink(&audio.left[..n], &audio.right[..n], took);
                    frames += n as u64;
                }
                frames
            })
            .join()
            .expect("audio thread")
        });
        self.frames += frames;
        self.serve_requests();
    }

    /// Renders `frames` frames in blocks of `block`, with a fixed transport and
    /// `events` in the first block; returns both channels.
    pub fn render(
        &mut self,
        frames: usize,
        block: usize,
        events: &[Ev],
        transport: Option<Transport>,
    ) -> [Vec<f32>; 2] {
        let sample_rate = self.config.expect("activated").0;
        let mut out = [Vec::with_capacity(frames), Vec::with_capacity(frames)];
        let start = self.frames;
        let first = events.to_vec();
        let blocks = (0..frames.div_ceil(block)).map(move |b| {
            let n = block.min(frames - b * block);
            let t = transport.map(|t| Transport {
                beat: if t.playing {
                    t.beat + (start + (b * block) as u64) as f64 * t.bpm / 60.0 / sample_rate
                } else {
                    t.beat
                },
                ..t
            });
            (n, if b == 0 { first.clone() } else { Vec::new() }, t)
        });
        self.run(blocks, |l, r| {
            out[0].extend_from_slice(l);
            out[1].extend_from_slice(r);
        });
        out
    }

    /// The note events the plugin sent since the activation (or the last
    /// call), in order; frames count from the activation.
    pub fn take_out_notes(&mut self) -> Vec<OutNote> {
        self.audio
            .as_mut()
            .map(|a| std::mem::take(&mut a.out_notes))
            .unwrap_or_default()
    }

    /// Every parameter.
    pub fn params(&mut self) -> Vec<ParamDesc> {
        let handle = self.instance.plugin_handle();
        let params: PluginParams = handle.get_extension().expect("params extension");
        let mut buffer = ParamInfoBuffer::new();
        (0..params.count(&handle))
            .map(|i| {
                let info = params
                    .get_info(&handle, i, &mut buffer)
                    .expect("param info");
                ParamDesc {
                    id: info.id,
                    name: String::from_utf8_lossy(info.name).into_owned(),
                    min: info.min_value,
                    max: info.max_value,
                    default: info.default_value,
                }
            })
            .collect()
    }

    /// The parameter called `name`.
    pub fn param(&mut self, name: &str) -> ParamDesc {
        self.params()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no parameter {name:?}"))
    }

    /// A parameter's current plain value.
    pub fn value(&mut self, id: ClapId) -> f64 {
        let handle = self.instance.plugin_handle();
        let params: PluginParams = handle.get_extension().expect("params extension");
        params.get_value(&handle, id).expect("param value")
    }

    /// Saves the state.
    pub fn save(&mut self) -> Vec<u8> {
        let handle = self.instance.plugin_handle();
        let state: PluginState = handle.get_extension().expect("state extension");
        let mut bytes = Vec::new();
        state.save(&handle, &mut bytes).expect("save state");
        bytes
    }

    /// Loads a state; `false` when the plugin refuses it.
    pub fn load(&mut self, bytes: &[u8]) -> bool {
        let handle = self.instance.plugin_handle();
        let state: PluginState = handle.get_extension().expect("state extension");
        let ok = state.load(&handle, &mut &bytes[..]).is_ok();
        self.serve_requests();
        ok
    }
}

impl Default for Plugin {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.deactivate();
    }
}

/// Largest absolute sample.
pub fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |p, v| p.max(v.abs()))
}

/// Largest absolute difference.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}
