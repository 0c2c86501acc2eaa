//! The load monitor: what the degradation machine is fed, about ten times a
//! second, off the audio thread.
//!
//! The engine's own deadline risks are mapped onto one 0–100 % scale and the
//! *danger* is the worst of them; it may take the level anywhere:
//!
//! | input | 0 % | 100 % |
//! |---|---|---|
//! | audio thread: `max(mean, 0.8 · max)` of time in `process()` ÷ block duration | idle | every block took its whole deadline |
//! | pre-renderer margin (texture ready ahead of the playhead) | ≥ [`MARGIN_COMFORTABLE_S`] (or half a phrase, if less) | nothing ready |
//! | pre-renderer failure rate (failures ÷ attempts, recent window) | none | every attempt failed |
//!
//! The *CPU* is the busier of the machine (all cores, `sysinfo`) and this process
//! (percent of all cores); held at its ceiling it raises the level to `high_load`
//! and no further (see [`super`]): other programs are no danger to the engine until
//! they make its own deadlines slip, which the audio thread's load shows.
//!
//! A single slow block counts for less than a sustained mean (the 0.8 factor), so
//! one scheduler hiccup alone cannot push the level past `critical`.
//!
//! The audio thread's part is [`AudioLoadMeter::record`]: a clock read by the
//! caller and three relaxed atomic operations, no lock, no allocation.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{step, Cause, DegradeConfig, DegradeState, Level, Load, Transition};
use sysinfo::{CpuRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Seconds of texture ready ahead of the playhead that count as no load at all.
pub const MARGIN_COMFORTABLE_S: f32 = 2.0;
/// Weight of the worst block against the mean in the audio-thread load.
const WORST_BLOCK_WEIGHT: f32 = 0.8;
/// Fixed-point scale of the block ratios kept in atomics (parts per million).
const PPM: f64 = 1_000_000.0;

/// The audio thread's load, published through atomics.
#[derive(Debug, Default)]
pub struct AudioLoadMeter {
    /// Sum of block ratios since the last take, in ppm.
    sum_ppm: AtomicU64,
    /// Blocks since the last take.
    blocks: AtomicU64,
    /// Largest block ratio since the last take, in ppm.
    max_ppm: AtomicU32,
}

/// Mean and worst audio-thread load over a window, as fractions of real time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AudioLoad {
    /// Mean of time in `process()` ÷ block duration.
    pub mean: f32,
    /// The largest single block's ratio.
    pub max: f32,
    /// Blocks measured.
    pub blocks: u64,
}

impl AudioLoadMeter {
    /// Records one block that took `busy` to render `block` worth of audio. Called
    /// from the audio thread: atomics only.
    #[inline]
    pub fn record(&self, busy: Duration, block: Duration) {
        let ratio = busy.as_secs_f64() / block.as_secs_f64().max(1e-9);
        let ppm = (ratio * PPM).min(f64::from(u32::MAX)) as u32;
        self.sum_ppm.fetch_add(u64::from(ppm), Ordering::Relaxed);
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.max_ppm.fetch_max(ppm, Ordering::Relaxed);
    }

    /// The load since the last call, and starts a new window.
    pub fn take(&self) -> AudioLoad {
        let blocks = self.blocks.swap(0, Ordering::Relaxed);
        let sum = self.sum_ppm.swap(0, Ordering::Relaxed);
        let max = self.max_ppm.swap(0, Ordering::Relaxed);
        AudioLoad {
            mean: if blocks == 0 {
                0.0
            } else {
                (sum as f64 / blocks as f64 / PPM) as f32
            },
            max: (f64::from(max) / PPM) as f32,
            blocks,
        }
    }
}

/// The texture pre-renderer's part of the load, as plain numbers (all zero and
/// `None` without a pre-renderer).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TextureLoad {
    /// Seconds of pre-rendered texture ready ahead of the playhead (`None`: none
    /// expected).
    pub margin_s: Option<f32>,
    /// Recent pre-render failures ÷ attempts, 0–1.
    pub failure_rate: f32,
    /// Length of the playing phrase in seconds (0: unknown).
    pub phrase_s: f32,
}

/// Everything the machine's [`Load`] is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadInputs {
    /// Whole-machine CPU use, 0–100 %.
    pub machine_cpu_pct: f32,
    /// This process's CPU use, 0–100 % of all cores.
    pub process_cpu_pct: f32,
    /// The audio thread's load.
    pub audio: AudioLoad,
    /// Seconds of pre-rendered texture ready ahead of the playhead, if a
    /// pre-renderer runs.
    pub prerender_margin_s: Option<f32>,
    /// Recent pre-render failures ÷ attempts, 0–1.
    pub failure_rate: f32,
    /// Length of the playing phrase in seconds (0: unknown). The next texture is
    /// asked for as a phrase starts, so with short phrases a margin of half a
    /// phrase is already comfortable.
    pub phrase_s: f32,
}

impl LoadInputs {
    /// The audio thread's load on the 0–100 % scale.
    #[must_use]
    pub fn audio_pct(&self) -> f32 {
        100.0 * self.audio.mean.max(WORST_BLOCK_WEIGHT * self.audio.max)
    }

    /// The pre-renderer margin on the 0–100 % scale (0 without a pre-renderer):
    /// 0 at [`MARGIN_COMFORTABLE_S`] or half a phrase, whichever is less.
    #[must_use]
    pub fn margin_pct(&self) -> f32 {
        let comfortable = if self.phrase_s > 0.0 {
            MARGIN_COMFORTABLE_S.min(0.5 * self.phrase_s)
        } else {
            MARGIN_COMFORTABLE_S
        };
        self.prerender_margin_s.map_or(0.0, |m| {
            100.0 * (1.0 - m.max(0.0) / comfortable).clamp(0.0, 1.0)
        })
    }

    /// The engine's own danger: the worst of its audio thread, texture margin
    /// and texture failure rate, 0–100 % (more when the audio thread overruns
    /// its deadline). Non-finite inputs count as fully loaded.
    #[must_use]
    pub fn danger_pct(&self) -> f32 {
        worst(self.danger_inputs().map(|(_, v)| v))
    }

    /// The busier of machine and process CPU, 0–100 % (non-finite: 100).
    #[must_use]
    pub fn cpu_pct(&self) -> f32 {
        worst(self.cpu_inputs().map(|(_, v)| v))
    }

    /// What the degradation machine is fed.
    #[must_use]
    pub fn load(&self) -> Load {
        Load {
            danger_pct: self.danger_pct(),
            cpu_pct: self.cpu_pct(),
        }
    }

    fn danger_inputs(&self) -> [(&'static str, f32); 3] {
        [
            ("audio_thread", self.audio_pct()),
            ("prerender_margin", self.margin_pct()),
            ("prerender_failures", 100.0 * self.failure_rate),
        ]
    }

    fn cpu_inputs(&self) -> [(&'static str, f32); 2] {
        [
            ("machine_cpu", self.machine_cpu_pct),
            ("process_cpu", self.process_cpu_pct),
        ]
    }

    /// The name of the input behind a change of `cause` (for log lines): the
    /// worst CPU reading for [`Cause::Cpu`], the worst engine input otherwise
    /// (`pin` for a pin, `calm` for a step down).
    #[must_use]
    pub fn cause_name(&self, cause: Cause) -> &'static str {
        match cause {
            Cause::Pin => "pin",
            Cause::Calm => "calm",
            Cause::Cpu => loudest(&self.cpu_inputs()),
            Cause::Danger => loudest(&self.danger_inputs()),
        }
    }
}

/// The name of the worst of some named inputs.
fn loudest(named: &[(&'static str, f32)]) -> &'static str {
    named
        .iter()
        .max_by(|a, b| sanitize(a.1).total_cmp(&sanitize(b.1)))
        .map_or("none", |(name, _)| name)
}

/// An input on the 0–100 % scale, with a non-finite one as fully loaded.
fn sanitize(v: f32) -> f32 {
    if v.is_finite() {
        v.max(0.0)
    } else {
        100.0
    }
}

/// The worst of some inputs.
fn worst(values: impl IntoIterator<Item = f32>) -> f32 {
    values.into_iter().map(sanitize).fold(0.0, f32::max)
}

/// Reads machine and process CPU use through `sysinfo`.
#[derive(Debug)]
pub struct CpuSampler {
    system: System,
    pid: Option<Pid>,
    cores: f32,
}

impl Default for CpuSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuSampler {
    /// A sampler; the first reading after this covers the time since creation.
    #[must_use]
    pub fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_list(CpuRefreshKind::nothing().with_cpu_usage());
        let pid = sysinfo::get_current_pid().ok();
        let cores = system.cpus().len().max(1) as f32;
        let mut sampler = Self { system, pid, cores };
        // Registers the process; its CPU use is known from the second sample on.
        sampler.refresh_process();
        sampler
    }

    fn refresh_process(&mut self) {
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_cpu(),
            );
        }
    }

    /// Machine and process CPU use (0–100 % each) since the previous call. Call it
    /// at most a few times a second: shorter intervals read as noise. The first
    /// call after [`CpuSampler::new`] may read the process as idle.
    pub fn sample(&mut self) -> (f32, f32) {
        self.system.refresh_cpu_usage();
        self.refresh_process();
        let machine = self.system.global_cpu_usage();
        let process = self
            .pid
            .and_then(|pid| self.system.process(pid))
            .map_or(0.0, |p| p.cpu_usage() / self.cores);
        (machine, process)
    }
}

/// Settings of the load [`Monitor`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorConfig {
    /// How often the audio thread's load is read and the machine stepped (default
    /// 100 ms: an overrunning audio thread is noticed within two periods).
    pub interval: Duration,
    /// How often machine and process CPU are sampled (default 1 s; `sysinfo`
    /// needs a few hundred milliseconds between readings to mean anything).
    pub cpu_interval: Duration,
    /// Hold time and hysteresis of the state machine.
    pub machine: DegradeConfig,
    /// Whether machine and process CPU count (default true). Tests that drive the
    /// load themselves switch it off so other work on the machine cannot interfere.
    pub sample_cpu: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(100),
            cpu_interval: Duration::from_secs(1),
            machine: DegradeConfig::default(),
            sample_cpu: true,
        }
    }
}

impl MonitorConfig {
    /// Name of the environment variable read by [`MonitorConfig::from_env`].
    pub const CPU_CEILING_ENV: &'static str = "AURALIS_CPU_CEILING_PCT";

    /// The defaults with the CPU ceiling from `AURALIS_CPU_CEILING_PCT` (percent,
    /// 10–100), as the plugin's engine uses them; an unset variable keeps
    /// [`super::DEFAULT_CPU_CEILING_PCT`], a malformed one too, with a warning.
    #[must_use]
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Ok(text) = std::env::var(Self::CPU_CEILING_ENV) {
            match text.trim().parse::<f32>() {
                Ok(pct) if (10.0..=100.0).contains(&pct) => config.machine.cpu_ceiling_pct = pct,
                _ => tracing::warn!(
                    value = text,
                    default = config.machine.cpu_ceiling_pct,
                    "AURALIS_CPU_CEILING_PCT must be a percentage from 10 to 100; using the default"
                ),
            }
        }
        config
    }
}

/// `pin` value meaning "not pinned".
const NO_PIN: u8 = u8::MAX;

/// What the audio thread, the engine and the monitor share, lock-free.
#[derive(Debug)]
pub struct DegradeShared {
    /// The audio thread's load meter.
    pub meter: AudioLoadMeter,
    /// The level the machine is at (not counting a pin).
    level: AtomicU8,
    /// The pinned level, or [`NO_PIN`].
    pin: AtomicU8,
    /// The last sample's inputs and danger, as `f32` bits: danger,
    /// machine, process, audio mean, audio max, texture margin (NaN: none),
    /// texture failure rate.
    report: [AtomicU32; 7],
    /// Level changes so far.
    changes: AtomicU64,
    /// Load added to every measured block, in ppm of the block duration (a test
    /// and demonstration hook: see [`DegradeShared::simulate_audio_load`]).
    simulated_ppm: AtomicU32,
    /// Share of every block's deadline the audio thread is made to really take,
    /// in ppm (an injected fault: see [`DegradeShared::inject_slow_process`]).
    slow_ppm: AtomicU32,
}

impl Default for DegradeShared {
    fn default() -> Self {
        Self {
            meter: AudioLoadMeter::default(),
            level: AtomicU8::new(Level::Normal as u8),
            pin: AtomicU8::new(NO_PIN),
            report: Default::default(),
            changes: AtomicU64::new(0),
            simulated_ppm: AtomicU32::new(0),
            slow_ppm: AtomicU32::new(0),
        }
    }
}

/// The monitor's last reading, for status pages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadReport {
    /// The engine's own danger, percent (what may raise the level past
    /// `high_load`).
    pub danger_pct: f32,
    /// Machine CPU, percent.
    pub machine_cpu_pct: f32,
    /// This process's CPU, percent of all cores.
    pub process_cpu_pct: f32,
    /// Mean audio-thread load, fraction of real time.
    pub audio_mean: f32,
    /// Worst audio block, fraction of its deadline.
    pub audio_max: f32,
    /// Seconds of texture ready ahead of the playhead (`None`: none expected).
    pub prerender_margin_s: Option<f32>,
    /// Recent texture render failures ÷ attempts, 0–1.
    pub failure_rate: f32,
    /// Level changes since the start.
    pub changes: u64,
}

impl DegradeShared {
    /// The level in force: the pin if one is set, else the machine's.
    #[must_use]
    pub fn level(&self) -> Level {
        self.pin().unwrap_or_else(|| {
            Level::from_u8(self.level.load(Ordering::Acquire)).unwrap_or_default()
        })
    }

    /// The pinned level, if any.
    #[must_use]
    pub fn pin(&self) -> Option<Level> {
        Level::from_u8(self.pin.load(Ordering::Acquire))
    }

    /// Puts the machine's level back to normal (entering a bounce: what the
    /// real-time load made it says nothing about the music after the bounce).
    /// An atomic store; the monitor starts afresh when it next runs
    /// ([`Monitor::restart`]).
    pub fn reset_level(&self) {
        self.level.store(Level::Normal as u8, Ordering::Release);
    }

    /// Pins a level (`None`: automatic).
    pub fn set_pin(&self, pin: Option<Level>) {
        self.pin
            .store(pin.map_or(NO_PIN, |l| l as u8), Ordering::Release);
    }

    /// Records one audio block (from the audio thread: atomics only), adding the
    /// simulated load if any.
    #[inline]
    pub fn record_block(&self, busy: Duration, block: Duration) {
        let extra = self.simulated_ppm.load(Ordering::Relaxed);
        let busy = busy + block.mul_f64(f64::from(extra) / PPM);
        self.meter.record(busy, block);
    }

    /// Makes every audio block look `ratio` of its deadline busier than it was: a
    /// hook for tests, benchmarks and demonstrations of degradation (0 turns it
    /// off). The measurement path is the real one.
    pub fn simulate_audio_load(&self, ratio: f32) {
        let ppm = (f64::from(ratio.max(0.0)) * PPM).min(f64::from(u32::MAX)) as u32;
        self.simulated_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Makes every audio block really take `ratio` of its deadline (a slow
    /// audio thread, as a heavy neighbour on its core or a slow plugin chain
    /// would make it): an injected fault for tests and demonstrations; 0 turns
    /// it off. Unlike [`DegradeShared::simulate_audio_load`] the time is spent,
    /// so everything downstream sees a late block.
    pub fn inject_slow_process(&self, ratio: f32) {
        let ppm = (f64::from(ratio.clamp(0.0, 10.0)) * PPM) as u32;
        self.slow_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Spins (no syscall but the clock, no allocation) until the block begun at
    /// `started` has taken the injected share of `block`, if a slow-process
    /// fault is injected. Called from the audio thread.
    #[inline]
    pub fn stall(&self, started: Instant, block: Duration) {
        let ppm = self.slow_ppm.load(Ordering::Relaxed);
        if ppm == 0 {
            return;
        }
        let until = started + block.mul_f64(f64::from(ppm) / PPM);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// The monitor's last reading.
    #[must_use]
    pub fn report(&self) -> LoadReport {
        let r = |i: usize| f32::from_bits(self.report[i].load(Ordering::Relaxed));
        LoadReport {
            danger_pct: r(0),
            machine_cpu_pct: r(1),
            process_cpu_pct: r(2),
            audio_mean: r(3),
            audio_max: r(4),
            prerender_margin_s: Some(r(5)).filter(|m| m.is_finite()),
            failure_rate: r(6),
            changes: self.changes.load(Ordering::Relaxed),
        }
    }

    fn publish(&self, inputs: &LoadInputs, danger_pct: f32) {
        let values = [
            danger_pct,
            inputs.machine_cpu_pct,
            inputs.process_cpu_pct,
            inputs.audio.mean,
            inputs.audio.max,
            inputs.prerender_margin_s.unwrap_or(f32::NAN),
            inputs.failure_rate,
        ];
        for (slot, v) in self.report.iter().zip(values) {
            slot.store(v.to_bits(), Ordering::Relaxed);
        }
    }
}

/// Reads the audio thread's load every [`MonitorConfig::interval`] and the CPU
/// every [`MonitorConfig::cpu_interval`], steps the state machine and publishes
/// the level. Runs off the audio thread (the engine's composer
/// thread polls it).
#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    shared: Arc<DegradeShared>,
    sampler: Option<CpuSampler>,
    state: DegradeState,
    epoch: Instant,
    next_sample: Instant,
    next_cpu_sample: Instant,
    /// The last CPU reading: machine and process, percent.
    cpu: (f32, f32),
}

impl Monitor {
    /// A monitor publishing into `shared`.
    #[must_use]
    pub fn new(config: MonitorConfig, shared: Arc<DegradeShared>) -> Self {
        let now = Instant::now();
        let mut sampler = config.sample_cpu.then(CpuSampler::new);
        if let Some(s) = sampler.as_mut() {
            // The first reading only sets the baseline.
            s.sample();
        }
        Self {
            config,
            shared,
            sampler,
            state: DegradeState::default(),
            epoch: now,
            next_sample: now + config.interval,
            next_cpu_sample: now + config.cpu_interval,
            cpu: (0.0, 0.0),
        }
    }

    /// Starts afresh at [`Level::Normal`], as if just built (after a bounce,
    /// whose blocks said nothing about the real-time load): the machine's level
    /// drops to normal, the meter's blocks so far are dropped.
    pub fn restart(&mut self) {
        let now = Instant::now();
        self.state = DegradeState::default();
        self.shared.reset_level();
        let _stale = self.shared.meter.take();
        self.epoch = now;
        self.next_sample = now + self.config.interval;
    }

    /// Samples and steps if a sample is due, counting `texture` (the texture
    /// layer's margin and the pre-renderer's recent failure rate) among the
    /// inputs; returns the change of level, if any.
    pub fn poll(&mut self, texture: TextureLoad) -> Option<Transition> {
        let now = Instant::now();
        if now < self.next_sample {
            return None;
        }
        self.next_sample = now + self.config.interval;
        if now >= self.next_cpu_sample {
            self.next_cpu_sample = now + self.config.cpu_interval;
            if let Some(sampler) = self.sampler.as_mut() {
                self.cpu = sampler.sample();
            }
        }
        let (machine_cpu_pct, process_cpu_pct) = self.cpu;
        let inputs = LoadInputs {
            machine_cpu_pct,
            process_cpu_pct,
            audio: self.shared.meter.take(),
            prerender_margin_s: texture.margin_s,
            failure_rate: texture.failure_rate,
            phrase_s: texture.phrase_s,
        };
        let load = inputs.load();
        self.shared.publish(&inputs, load.danger_pct);
        let machine = DegradeConfig {
            pin: self.shared.pin(),
            ..self.config.machine
        };
        let (state, change) = step(self.state, load, (now - self.epoch).as_secs_f64(), &machine);
        self.state = state;
        self.shared
            .level
            .store(state.level as u8, Ordering::Release);
        if let Some(t) = change {
            self.shared.changes.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                from = %t.from,
                to = %t.to,
                load_pct = t.load,
                cause = inputs.cause_name(t.cause),
                danger_pct = load.danger_pct,
                cpu_pct = load.cpu_pct,
                machine_cpu_pct = inputs.machine_cpu_pct,
                process_cpu_pct = inputs.process_cpu_pct,
                audio_mean = inputs.audio.mean,
                audio_max = inputs.audio.max,
                prerender_margin_s = inputs.prerender_margin_s,
                prerender_failure_rate = inputs.failure_rate,
                "degradation level changed"
            );
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_reports_mean_and_max_then_resets() {
        let meter = AudioLoadMeter::default();
        let block = Duration::from_millis(10);
        meter.record(Duration::from_millis(1), block);
        meter.record(Duration::from_millis(3), block);
        meter.record(Duration::from_millis(2), block);
        let load = meter.take();
        assert_eq!(load.blocks, 3);
        assert!((load.mean - 0.2).abs() < 1e-4, "{load:?}");
        assert!((load.max - 0.3).abs() < 1e-4, "{load:?}");
        assert_eq!(meter.take(), AudioLoad::default());
    }

    #[test]
    fn danger_is_the_engines_worst_input_and_cpu_stays_apart() {
        let mut inputs = LoadInputs {
            machine_cpu_pct: 97.0,
            process_cpu_pct: 10.0,
            ..LoadInputs::default()
        };
        // A busy machine is no danger by itself.
        assert!(inputs.danger_pct().abs() < 1e-3);
        assert!((inputs.cpu_pct() - 97.0).abs() < 1e-3);
        assert_eq!(inputs.cause_name(Cause::Cpu), "machine_cpu");
        inputs.audio = AudioLoad {
            mean: 0.5,
            max: 1.0,
            blocks: 10,
        };
        assert!((inputs.danger_pct() - 80.0).abs() < 1e-3);
        assert_eq!(inputs.cause_name(Cause::Danger), "audio_thread");
        inputs.prerender_margin_s = Some(0.1);
        assert!((inputs.danger_pct() - 95.0).abs() < 1e-3);
        assert_eq!(inputs.cause_name(Cause::Danger), "prerender_margin");
        inputs.failure_rate = 1.0;
        assert!((inputs.danger_pct() - 100.0).abs() < 1e-3);
        inputs.audio.mean = f32::NAN;
        assert!(inputs.danger_pct() >= 100.0);
        inputs.process_cpu_pct = f32::NAN;
        assert!((inputs.load().cpu_pct - 100.0).abs() < 1e-3);
        assert_eq!(inputs.cause_name(Cause::Pin), "pin");
        assert_eq!(inputs.cause_name(Cause::Calm), "calm");
    }

    #[test]
    fn margin_maps_linearly() {
        let at = |m: f32| {
            LoadInputs {
                prerender_margin_s: Some(m),
                ..LoadInputs::default()
            }
            .margin_pct()
        };
        assert!((at(0.0) - 100.0).abs() < 1e-3);
        assert!((at(1.0) - 50.0).abs() < 1e-3);
        assert!(at(5.0).abs() < 1e-3);
        assert!(LoadInputs::default().margin_pct().abs() < 1e-3);
        // One-second phrases: half a second ahead is comfortable.
        let short = |m: f32| {
            LoadInputs {
                prerender_margin_s: Some(m),
                phrase_s: 1.0,
                ..LoadInputs::default()
            }
            .margin_pct()
        };
        assert!(short(0.5).abs() < 1e-3);
        assert!((short(0.25) - 50.0).abs() < 1e-3);
    }

    #[test]
    fn cpu_sampler_reads_plausible_values() {
        let mut sampler = CpuSampler::new();
        let mut burn = |ms| {
            // Burn CPU so the process reading is non-zero.
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_millis(ms) {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            }
            std::hint::black_box(x);
            sampler.sample()
        };
        burn(50);
        let (machine, process) = burn(300);
        assert!((0.0..=100.0).contains(&machine), "{machine}");
        assert!(process > 0.0 && process <= 100.0, "{process}");
    }
}
