//! `cargo xtask soak`: the bridge for minutes under steady listeners, a controller
//! sending random valid and invalid control messages, a listener trying to control
//! without the token, clients that come and go (closing cleanly or resetting the
//! connection), periodic faults (a client that stops reading, a burst of connections
//! reset at once, junk on raw sockets, invalid frames, oversized messages) and the
//! pre-renderer faults of `AURALIS_FAULTS`, with the texture on the GPU. It samples
//! the server's memory, file descriptors and degradation level every second and
//! fails when a listener that stayed connected lost a chunk, memory grows,
//! descriptors leak, a control message went unanswered, a stalled client was not
//! dropped, an oversized message was not closed with 1009, an armed fault never
//! fired, or the bridge ends unhealthy or uncleanly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use auralis::compose::phrase::BPM_RANGE;
use auralis::compose::presets::PRESETS;
use auralis::rng::Rng;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::bridge::{self, Bridge, Metrics, Profile};
use crate::flags::Flags;
use crate::listeners::{self, ClientReport, Leave, Target};

const USAGE: &str =
    "usage: cargo xtask soak --minutes M --clients N [--release | --bin PATH] [--seed N]

  --minutes M   length of the run (0.5-1440)
  --clients N   concurrent listeners (5-5000): a fifth come and go, the rest stay
  --release     soak the release build (AURALIS_FAULTS is then ignored by the bridge)
  --bin PATH    soak this bridge binary instead of building the debug one
  --seed N      seed of the random behaviour (default: from the clock)";

/// Messages the controller sends that must be refused, each with an `error` reply.
const INVALID_CONTROL: [&str; 8] = [
    r#"{"type":"update_params","bpm":1000}"#,
    r#"{"type":"update_params","intensity":"loud"}"#,
    r#"{"type":"update_params","bpm":70,"volume":1}"#,
    r#"{"type":"update_params","mode":"blues"}"#,
    r#"{"type":"select_preset","preset":"jazz"}"#,
    r#"{"type":"dance"}"#,
    r#"{"type":"update_params","key":"#,
    r#"[1,2,3]"#,
];
const KEYS: [&str; 6] = ["C", "D", "Eb", "F#", "A", "Bb"];
const MODES: [&str; 6] = [
    "aeolian",
    "dorian",
    "phrygian",
    "lydian",
    "mixolydian",
    "ionian",
];
/// How long a stalled client stops reading.
const STALL: Duration = Duration::from_secs(12);
/// Connections opened and reset at once by a burst fault.
const BURST: usize = 20;
/// Allowed growth of the mean resident memory from the first to the last third of
/// the run after warm-up: this fraction, and at least [`RSS_SLACK_BYTES`].
const RSS_GROWTH: f64 = 0.10;
const RSS_SLACK_BYTES: f64 = 8.0 * 1024.0 * 1024.0;
/// File descriptors the bridge may hold at the end beyond those it had before any
/// client came.
const FD_SLACK: usize = 2;

struct Args {
    duration: Duration,
    clients: usize,
    profile: Profile,
    bin: Option<PathBuf>,
    seed: u64,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut minutes = None;
    let mut clients = None;
    let mut profile = Profile::Debug;
    let mut bin = None;
    let mut seed = None;
    let mut flags = Flags::new(args, USAGE);
    while let Some(flag) = flags.next_flag()? {
        match flag {
            "--minutes" => minutes = Some(flags.number(flag, 0.5, 1440.0)?),
            "--clients" => clients = Some(flags.number(flag, 5.0, 5000.0)? as usize),
            "--release" => profile = Profile::Release,
            "--bin" => bin = Some(PathBuf::from(flags.value(flag)?)),
            "--seed" => {
                let v = flags.value(flag)?;
                seed = Some(v.parse().with_context(|| {
                    format!("--seed: expected a non-negative integer, got {v:?}")
                })?);
            }
            other => return Err(flags.unknown(other)),
        }
    }
    if bin.is_some() && profile == Profile::Release {
        bail!("--release and --bin exclude each other");
    }
    let minutes = flags.required(minutes, "--minutes")?;
    Ok(Args {
        duration: Duration::from_secs_f64(minutes * 60.0),
        clients: flags.required(clients, "--clients")?,
        profile,
        bin,
        seed: seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        }),
    })
}

/// One sample of the server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss: f64,
    fds: usize,
    level: f64,
    /// Whether the texture renders on the GPU (`auralis_bridge_texture_backend_gpu`).
    gpu: bool,
}

/// What the controller and the would-be controller did.
#[derive(Debug, Default)]
struct ControlCounts {
    valid: u64,
    invalid: u64,
    forbidden_attempts: u64,
}

/// What the clients that come and go did.
#[derive(Debug, Default)]
struct ChurnCounts {
    sessions: u64,
    closed: u64,
    reset: u64,
    connect_failures: Vec<String>,
    /// Sessions the server ended (it should not: these clients are well-behaved).
    ended_by_server: Vec<String>,
    missing: u64,
}

/// Faults injected from the client side.
#[derive(Debug, Default)]
struct FaultCounts {
    stalls: u64,
    stalls_dropped: u64,
    bursts: u64,
    junk: u64,
    invalid_frames: u64,
    invalid_frames_answered: u64,
    oversized: u64,
    /// Oversized messages answered with close 1009.
    oversized_closed: u64,
}

/// A small, time-seeded random stream for one actor.
fn rng(seed: u64, actor: u64) -> Rng {
    Rng::derive(seed, actor, 0x50A4)
}

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u32) as usize]
}

/// The slowest tempo the soak asks for: the engine's starting one. The texture
/// buffers are sized for the phrases at start; a slower tempo makes longer phrases
/// and grows them once, to the longest phrase asked for. That growth is bounded,
/// but within a short soak it would read as a memory trend, so the soak keeps to
/// tempos whose phrases fit (slower ones are covered by the control tests).
const SOAK_SLOWEST_BPM: f32 = 60.0;

/// A random valid control message.
fn valid_control(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!(
            r#"{{"type":"update_params","bpm":{:.1},"intensity":{:.2}}}"#,
            rng.range_f32(BPM_RANGE.0.max(SOAK_SLOWEST_BPM), BPM_RANGE.1.min(120.0)),
            rng.next_f32()
        ),
        1 => format!(
            r#"{{"type":"update_params","key":"{}","mode":"{}"}}"#,
            pick(rng, &KEYS),
            pick(rng, &MODES)
        ),
        _ => {
            let names: Vec<&str> = PRESETS
                .iter()
                .filter(|p| p.compose.bpm >= SOAK_SLOWEST_BPM)
                .map(|p| p.name)
                .collect();
            format!(
                r#"{{"type":"select_preset","preset":"{}"}}"#,
                pick(rng, &names)
            )
        }
    }
}

/// A random invalid control message (oversized ones close the connection, so the
/// fault injector sends those on a connection of their own).
fn invalid_control(rng: &mut Rng) -> String {
    pick(rng, &INVALID_CONTROL).to_owned()
}

/// Sleeps a random time in `[lo, hi)` seconds, or until `end`.
async fn pause(rng: &mut Rng, lo: f32, hi: f32, end: Instant) {
    let d = Duration::from_secs_f32(rng.range_f32(lo, hi));
    tokio::time::sleep_until((Instant::now() + d).min(end)).await;
}

/// A listener that stays to `end`, sending what `outbox` gives it.
fn steady(
    target: &Target,
    query: String,
    measure_from: Instant,
    end: Instant,
    outbox: Option<mpsc::UnboundedReceiver<Message>>,
) -> JoinHandle<Result<ClientReport>> {
    let target = target.clone();
    tokio::spawn(async move {
        let l = listeners::connect(&target, &query).await?;
        let stop = async move {
            tokio::time::sleep_until(end).await;
            Leave::Close
        };
        Ok(l.run(measure_from, stop, outbox).await)
    })
}

/// Feeds the controller random valid and invalid messages, and the listener
/// without a token valid ones (which it may not send), until shortly before `end`.
async fn drive_control(
    seed: u64,
    controller: mpsc::UnboundedSender<Message>,
    intruder: mpsc::UnboundedSender<Message>,
    end: Instant,
) -> ControlCounts {
    let mut r = rng(seed, 1);
    let mut counts = ControlCounts::default();
    // Stop early enough for the last replies to arrive.
    let last = end - Duration::from_secs(3);
    while Instant::now() < last {
        pause(&mut r, 0.8, 2.0, last).await;
        if Instant::now() >= last {
            break;
        }
        let message = if r.chance(0.5) {
            counts.valid += 1;
            valid_control(&mut r)
        } else {
            counts.invalid += 1;
            invalid_control(&mut r)
        };
        if controller.send(Message::text(message)).is_err() {
            break;
        }
        if r.chance(0.2) && intruder.send(Message::text(valid_control(&mut r))).is_ok() {
            counts.forbidden_attempts += 1;
        }
    }
    counts
}

/// A client that comes and goes until `end`: listens a few seconds, leaves by
/// closing or by resetting the connection, comes back.
async fn churn(seed: u64, actor: u64, target: Target, end: Instant) -> ChurnCounts {
    let mut r = rng(seed, actor);
    let mut counts = ChurnCounts::default();
    pause(&mut r, 0.0, 2.0, end).await;
    while Instant::now() + Duration::from_secs(1) < end {
        let l = match listeners::connect(&target, "").await {
            Ok(l) => l,
            Err(e) => {
                counts.connect_failures.push(format!("{e:#}"));
                pause(&mut r, 0.5, 1.0, end).await;
                continue;
            }
        };
        let leave = if r.chance(0.5) {
            Leave::Close
        } else {
            Leave::Abort
        };
        let stay = Duration::from_secs_f32(r.range_f32(0.5, 8.0));
        let until = (Instant::now() + stay).min(end);
        let report = l
            .run(
                Instant::now(),
                async move {
                    tokio::time::sleep_until(until).await;
                    leave
                },
                None,
            )
            .await;
        counts.sessions += 1;
        counts.missing += report.missing;
        if report.close.is_some() || report.failure.is_some() {
            counts.ended_by_server.push(format!(
                "close {:?}, failure {:?}",
                report.close, report.failure
            ));
        } else if leave == Leave::Close {
            counts.closed += 1;
        } else {
            counts.reset += 1;
        }
        pause(&mut r, 0.1, 1.5, end).await;
    }
    counts
}

/// Injects one client-side fault after another until `end`.
async fn faults(target: Target, start: Instant, end: Instant) -> FaultCounts {
    let mut counts = FaultCounts::default();
    let period = ((end - start) / 8).clamp(Duration::from_secs(8), Duration::from_secs(30));
    let mut next = start + period;
    let mut round = 0u32;
    while next + STALL < end {
        tokio::time::sleep_until(next).await;
        match round % 3 {
            0 => {
                counts.stalls += 1;
                if stall(&target).await {
                    counts.stalls_dropped += 1;
                }
            }
            1 => {
                counts.bursts += 1;
                burst(&target).await;
            }
            _ => {
                counts.junk += 1;
                junk(&target).await;
                counts.invalid_frames += 1;
                if invalid_frame(&target).await {
                    counts.invalid_frames_answered += 1;
                }
                counts.oversized += 1;
                if oversized(&target).await {
                    counts.oversized_closed += 1;
                }
            }
        }
        round += 1;
        next += period;
    }
    counts
}

/// A client that stops reading for [`STALL`] with a tiny receive buffer; returns
/// whether the server dropped it meanwhile.
async fn stall(target: &Target) -> bool {
    let Ok(l) = listeners::connect_with_receive_buffer(target, "", Some(4096)).await else {
        return false;
    };
    tokio::time::sleep(STALL).await;
    // Whatever was queued before the server gave up drains quickly; then the
    // connection must end.
    let report = l
        .run(
            Instant::now(),
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Leave::Abort
            },
            None,
        )
        .await;
    report.close.is_some() || report.failure.is_some()
}

/// [`BURST`] connections at once, all reset after a second.
async fn burst(target: &Target) {
    let connects = (0..BURST).map(|_| listeners::connect(target, ""));
    let crowd: Vec<_> = futures_util::future::join_all(connects)
        .await
        .into_iter()
        .flatten()
        .collect();
    let runs = crowd.into_iter().map(|l| {
        l.run(
            Instant::now(),
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Leave::Abort
            },
            None,
        )
    });
    futures_util::future::join_all(runs).await;
}

/// Raw sockets that send junk instead of HTTP, or a handshake cut short.
async fn junk(target: &Target) {
    let payloads: [&[u8]; 3] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
        b"GET /ws/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET /ws/stream HTTP/1.1\r\nHost: x\r\nUpgrade: webs",
    ];
    for p in payloads {
        if let Ok(mut tcp) = tokio::net::TcpStream::connect(target.addr).await {
            // The server may answer, close or reset: all are fine.
            let _ = tcp.write_all(p).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = tcp.set_zero_linger();
        }
    }
}

/// A binary frame that is not UTF-8 text; returns whether the server answered with
/// an `invalid_utf8` error and kept the connection.
async fn invalid_frame(target: &Target) -> bool {
    let Ok(l) = listeners::connect(target, "").await else {
        return false;
    };
    let (tx, rx) = mpsc::unbounded_channel();
    // The sender stays open until the run ends, so the outbox is not dropped early.
    if tx
        .send(Message::binary(vec![b'{', 0xFF, 0xFE, b'}']))
        .is_err()
    {
        return false;
    }
    let report = l
        .run(
            Instant::now(),
            async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Leave::Close
            },
            Some(rx),
        )
        .await;
    drop(tx);
    report.close.is_none() && report.errors.iter().any(|c| c == "invalid_utf8")
}

/// A control message over the 64 KiB limit; returns whether the server closed the
/// connection with 1009.
async fn oversized(target: &Target) -> bool {
    let Ok(l) = listeners::connect(target, "").await else {
        return false;
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let message = format!(
        r#"{{"type":"update_params","bpm":60,"pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    if tx.send(Message::text(message)).is_err() {
        return false;
    }
    let report = l
        .run(
            Instant::now(),
            async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Leave::Abort
            },
            Some(rx),
        )
        .await;
    drop(tx);
    report.close.is_some_and(|(code, _)| code == 1009)
}

/// Samples the server every second until `end`.
async fn monitor(
    addr: std::net::SocketAddr,
    pid: u32,
    start: Instant,
    end: Instant,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < end {
        tick.tick().await;
        let Ok(Ok(m)) = tokio::task::spawn_blocking(move || Metrics::fetch(addr)).await else {
            continue;
        };
        samples.push(Sample {
            at: start.elapsed(),
            rss: m.value("process_resident_memory_bytes"),
            fds: bridge::open_fds(pid).unwrap_or(0),
            level: m.value("auralis_bridge_degradation_level"),
            gpu: m.value("auralis_bridge_texture_backend_gpu") > 0.5,
        });
    }
    samples
}

/// Mean resident memory of the first and last thirds of the samples after
/// `warmup`; `None` with too few samples.
fn rss_thirds(samples: &[Sample], warmup: Duration) -> Option<(f64, f64)> {
    // Taking the GPU again after an injected fault's cool-down creates a new
    // device, whose memory (tens of MiB on lavapipe) settles over the renders
    // that follow: the trend starts 10 s after the last such take, and covers
    // at least the last 18 samples.
    let last_take = samples
        .windows(2)
        .filter(|w| w[1].gpu && !w[0].gpu)
        .map(|w| w[1].at + Duration::from_secs(10))
        .max()
        .unwrap_or_default();
    let from = warmup.max(last_take).min(
        samples
            .len()
            .checked_sub(18)
            .map_or(Duration::ZERO, |i| samples[i].at),
    );
    let after: Vec<f64> = samples
        .iter()
        .filter(|s| s.at >= from)
        .map(|s| s.rss)
        .collect();
    let third = after.len() / 3;
    if third < 2 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Some((mean(&after[..third]), mean(&after[after.len() - third..])))
}

/// Whether the memory grew beyond the allowance from `first` to `last`.
fn rss_grew(first: f64, last: f64) -> bool {
    last - first > (first * RSS_GROWTH).max(RSS_SLACK_BYTES)
}

/// Degradation-level changes: (seconds into the run, from, to).
fn level_changes(samples: &[Sample]) -> Vec<(f64, f64, f64)> {
    samples
        .windows(2)
        .filter(|w| (w[0].level - w[1].level).abs() > 0.5)
        .map(|w| (w[1].at.as_secs_f64(), w[0].level, w[1].level))
        .collect()
}

/// Everything the soak's actors report.
struct Outcome {
    steady: Vec<ClientReport>,
    controller: ClientReport,
    intruder: ClientReport,
    control: ControlCounts,
    churn: ChurnCounts,
    faults: FaultCounts,
    samples: Vec<Sample>,
}

async fn run_actors(
    args: &Args,
    target: &Target,
    token: &str,
    pid: u32,
    warmup: Duration,
) -> Result<Outcome> {
    let start = Instant::now();
    let end = start + args.duration;
    let measure_from = start + Duration::from_secs(2);
    let churners = (args.clients / 5).max(1);
    let steady_n = args.clients - churners - 2;
    let monitor = tokio::spawn(monitor(target.addr, pid, start, end));
    let (to_controller, controller_rx) = mpsc::unbounded_channel();
    let (to_intruder, intruder_rx) = mpsc::unbounded_channel();
    let controller = steady(
        target,
        format!("?token={token}"),
        measure_from,
        end,
        Some(controller_rx),
    );
    let intruder = steady(target, String::new(), measure_from, end, Some(intruder_rx));
    let steady: Vec<_> = (0..steady_n)
        .map(|_| steady(target, String::new(), measure_from, end, None))
        .collect();
    let churn_tasks: Vec<_> = (0..churners)
        .map(|i| tokio::spawn(churn(args.seed, 100 + i as u64, target.clone(), end)))
        .collect();
    let fault_task = tokio::spawn(faults(target.clone(), start + warmup / 2, end));
    let control = drive_control(args.seed, to_controller, to_intruder, end).await;
    let mut reports = Vec::with_capacity(steady.len());
    for t in steady {
        reports.push(t.await.context("a listener task failed")??);
    }
    let mut churn = ChurnCounts::default();
    for t in churn_tasks {
        let c = t.await.context("a churning client failed")?;
        churn.sessions += c.sessions;
        churn.closed += c.closed;
        churn.reset += c.reset;
        churn.missing += c.missing;
        churn.connect_failures.extend(c.connect_failures);
        churn.ended_by_server.extend(c.ended_by_server);
    }
    Ok(Outcome {
        steady: reports,
        controller: controller.await.context("the controller failed")??,
        intruder: intruder
            .await
            .context("the listener without a token failed")??,
        control,
        churn,
        faults: fault_task.await.context("the fault injector failed")?,
        samples: monitor.await.context("the monitor failed")?,
    })
}

/// The series counting injected faults, by fault.
const FAULTS_INJECTED: &str = "auralis_bridge_texture_faults_injected_total";

/// How often each fault armed in `plan` fired since the bridge started (some fire
/// at start-up, before the first sample), as `end` counts, in the plan's order.
fn faults_fired(plan: &str, end: &Metrics) -> Vec<(String, f64)> {
    plan.split(',')
        .filter_map(|entry| entry.split([':', '@']).next())
        .map(|name| {
            let series = format!("{FAULTS_INJECTED}{{fault=\"{name}\"}}");
            (name.to_owned(), end.value(&series))
        })
        .collect()
}

/// The armed faults that never fired.
fn never_fired(fired: &[(String, f64)]) -> Vec<&str> {
    fired
        .iter()
        .filter(|(_, n)| *n < 1.0)
        .map(|(name, _)| name.as_str())
        .collect()
}

/// The pre-renderer faults armed in the bridge (see `plugin/src/prerender/faults.rs`):
/// frequent render errors, then once each, at the first chance after its time, a
/// device loss, an out-of-memory GPU (at the set-up that follows the loss's
/// cool-down, or while rendering) and a NaN texture. A texture is rendered about
/// once a phrase (20-30 s), so the one-shot faults are spaced for a two-minute run
/// to give each its chance; probabilities would leave a short soak's few renders
/// to luck.
fn fault_plan(duration: Duration) -> String {
    let at = |fraction: u64| (duration.as_secs() / fraction).max(1);
    format!(
        "render_error:0.3,device_lost@{}s,gpu_oom@{}s,render_nan@{}s",
        at(8),
        at(4),
        at(2)
    )
}

/// `cargo xtask soak`.
///
/// # Errors
/// On bad arguments, when the bridge cannot be built or started, or when a check
/// fails.
pub fn soak(args: &[String]) -> Result<()> {
    let args = parse_args(args)?;
    let binary = match &args.bin {
        Some(p) => p.clone(),
        None => bridge::build(args.profile)?,
    };
    let extra_clients = BURST + 8;
    bridge::check_file_limit(args.clients + extra_clients)?;
    let token = format!("soak-{:016x}", auralis::rng::mix64(args.seed));
    let faults = fault_plan(args.duration);
    let log = crate::target_dir().join("soak").join("bridge.log");
    let bridge = Bridge::start(
        &binary,
        &[
            "--max-clients".into(),
            (args.clients + extra_clients + 16).to_string(),
            "--control-token".into(),
            token.clone(),
            "--heartbeat-s".into(),
            "5".into(),
            "--send-timeout-ms".into(),
            "2000".into(),
            "--max-lag-s".into(),
            "2".into(),
        ],
        // A GPU retry after the cool-down loads the Vulkan driver into the process
        // once (tens of MiB, then stable); a short cool-down makes that happen
        // during the warm-up rather than read as a trend in the memory check.
        // The texture renders on the GPU (lavapipe where there is no hardware
        // GPU: `auto` would keep it on the CPU, leaving the GPU faults inert).
        &[
            ("AURALIS_FAULTS", faults.as_str()),
            ("AURALIS_GPU_COOLDOWN_S", "5"),
            ("AURALIS_RENDERER", "gpu"),
        ],
        &log,
    )?;
    let pid = bridge.pid();
    let target = Target::local(bridge.addr);
    eprintln!(
        "xtask: soak of {} for {:.1} min with {} listeners (seed {}), AURALIS_FAULTS={faults}",
        binary.display(),
        args.duration.as_secs_f64() / 60.0,
        args.clients,
        args.seed
    );
    // Settle, then count the descriptors the bridge holds without clients.
    std::thread::sleep(Duration::from_secs(1));
    let fds_before = bridge::open_fds(pid).context("cannot read the bridge's descriptors")?;
    let start_metrics = Metrics::fetch(bridge.addr)?;
    let warmup = (args.duration / 4).min(Duration::from_secs(60));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(run_actors(&args, &target, &token, pid, warmup))?;
    // Every client has left: the bridge must let go of their sockets.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut end_metrics = Metrics::fetch(bridge.addr)?;
    while end_metrics.value("auralis_bridge_clients") > 0.0 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
        end_metrics = Metrics::fetch(bridge.addr)?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let fds_after = bridge::open_fds(pid).context("cannot read the bridge's descriptors")?;
    let (health_code, health) = bridge::http_get(bridge.addr, "/health")?;
    let stopped = bridge.stop();
    report_and_check(
        &outcome,
        &faults,
        (&start_metrics, &end_metrics),
        (fds_before, fds_after),
        (health_code, &health),
        warmup,
        stopped,
    )
}

fn report_and_check(
    o: &Outcome,
    plan: &str,
    (start, end): (&Metrics, &Metrics),
    (fds_before, fds_after): (usize, usize),
    (health_code, health): (u16, &str),
    warmup: Duration,
    stopped: Result<()>,
) -> Result<()> {
    let mut failures = Vec::new();
    let stayers: Vec<&ClientReport> = o
        .steady
        .iter()
        .chain([&o.controller, &o.intruder])
        .collect();
    let lost: u64 = stayers.iter().map(|r| r.missing).sum::<u64>() + o.churn.missing;
    let chunks: u64 = stayers.iter().map(|r| r.chunks).sum();
    let max_gap = stayers.iter().map(|r| r.max_gap).max().unwrap_or_default();
    let ended: Vec<_> = stayers
        .iter()
        .filter(|r| r.close.is_some() || r.failure.is_some())
        .map(|r| format!("close {:?}, failure {:?}", r.close, r.failure))
        .collect();
    eprintln!(
        "listeners: {} stayed, {chunks} chunks, {lost} lost (clients that came and went included), \
         max inter-chunk gap {} ms",
        stayers.len(),
        max_gap.as_millis()
    );
    if lost > 0 {
        failures.push(format!("{lost} chunks lost by healthy listeners"));
    }
    if !ended.is_empty() {
        failures.push(format!(
            "{} listeners were disconnected: {:?}",
            ended.len(),
            &ended[..ended.len().min(5)]
        ));
    }
    eprintln!(
        "churn: {} sessions ({} closed, {} reset), {} connect failures, {} ended by the server",
        o.churn.sessions,
        o.churn.closed,
        o.churn.reset,
        o.churn.connect_failures.len(),
        o.churn.ended_by_server.len()
    );
    if !o.churn.connect_failures.is_empty() || !o.churn.ended_by_server.is_empty() {
        failures.push(format!(
            "clients that came and went were refused or cut off: {:?} {:?}",
            o.churn.connect_failures.first(),
            o.churn.ended_by_server.first()
        ));
    }
    let c = &o.control;
    let mut codes: BTreeMap<&str, u64> = BTreeMap::new();
    for code in &o.controller.errors {
        *codes.entry(code.as_str()).or_default() += 1;
    }
    let forbidden = o
        .intruder
        .errors
        .iter()
        .filter(|e| *e == "forbidden")
        .count() as u64;
    eprintln!(
        "control: {} valid and {} invalid sent, {} error replies {codes:?}, {} params \
         announcements; {forbidden} of {} attempts without the token refused",
        c.valid,
        c.invalid,
        o.controller.errors.len(),
        o.controller.params,
        c.forbidden_attempts
    );
    if (o.controller.errors.len() as u64) < c.invalid {
        failures.push("an invalid control message got no error reply".into());
    }
    if c.valid > 0 && o.controller.params == 0 {
        failures.push("no valid control message was announced with `params`".into());
    }
    if forbidden < c.forbidden_attempts {
        failures.push("control without the token was not refused every time".into());
    }
    let f = &o.faults;
    eprintln!(
        "client faults: {} stalls ({} dropped by the server), {} bursts of {BURST} resets, \
         {} rounds of junk sockets, {} invalid frames ({} answered), {} oversized messages \
         ({} closed with 1009)",
        f.stalls,
        f.stalls_dropped,
        f.bursts,
        f.junk,
        f.invalid_frames,
        f.invalid_frames_answered,
        f.oversized,
        f.oversized_closed
    );
    if f.oversized_closed < f.oversized {
        failures.push("an oversized message was not closed with 1009".into());
    }
    if f.stalls_dropped < f.stalls {
        failures.push("a client that stopped reading was not dropped".into());
    }
    if f.invalid_frames_answered < f.invalid_frames {
        failures.push("an invalid frame was not answered with an error".into());
    }
    let peak = o.samples.iter().map(|s| s.rss).fold(0.0, f64::max);
    let final_rss = end.value("process_resident_memory_bytes");
    let mib = |b: f64| b / (1024.0 * 1024.0);
    match rss_thirds(&o.samples, warmup) {
        Some((first, last)) => {
            eprintln!(
                "memory: peak {:.1} MiB, final {:.1} MiB; after {} s warm-up, first third {:.1} MiB, last third {:.1} MiB",
                mib(peak),
                mib(final_rss),
                warmup.as_secs(),
                mib(first),
                mib(last)
            );
            if rss_grew(first, last) {
                failures.push(format!(
                    "resident memory grew from {:.1} to {:.1} MiB",
                    mib(first),
                    mib(last)
                ));
            }
        }
        None => failures.push("too few memory samples for a trend".into()),
    }
    let peak_fds = o.samples.iter().map(|s| s.fds).max().unwrap_or(0);
    eprintln!("file descriptors: {fds_before} before, peak {peak_fds}, {fds_after} after");
    if fds_after > fds_before + FD_SLACK {
        failures.push(format!(
            "the bridge holds {fds_after} descriptors after every client left, {fds_before} before"
        ));
    }
    let changes = level_changes(&o.samples);
    eprintln!(
        "degradation level: {} changes {:?}",
        changes.len(),
        changes
            .iter()
            .map(|(t, a, b)| format!("{t:.0}s {a}->{b}"))
            .collect::<Vec<_>>()
    );
    // Counters as what happened during the run, gauges as they ended.
    let recovered: Vec<String> = end
        .0
        .iter()
        .filter(|(k, _)| {
            [
                "disconnects_total",
                "bad_chunks",
                "schedule_resets",
                "control_errors",
                "texture",
                "fallback",
                "recover",
                "fault",
            ]
            .iter()
            .any(|part| k.contains(part))
        })
        .map(|(k, v)| {
            if k.contains("_total") {
                format!("{k} +{}", v - start.value(k))
            } else {
                format!("{k} {v}")
            }
        })
        .collect();
    eprintln!(
        "failures handled (from /metrics):\n  {}",
        recovered.join("\n  ")
    );
    let fired = faults_fired(plan, end);
    eprintln!(
        "pre-renderer faults fired (AURALIS_FAULTS={plan}): {}",
        fired
            .iter()
            .map(|(name, n)| format!("{name} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let idle = never_fired(&fired);
    if !idle.is_empty() {
        failures.push(format!(
            "armed faults that never fired: {} (the GPU path was not exercised?)",
            idle.join(", ")
        ));
    }
    eprintln!("health at the end: {health_code} {health}");
    if health_code != 200 {
        failures.push(format!("/health answered {health_code} at the end"));
    }
    if let Err(e) = stopped {
        failures.push(format!("{e:#}"));
    }
    if failures.is_empty() {
        eprintln!("soak: every check passed");
        Ok(())
    } else {
        bail!("soak failed:\n  {}", failures.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: u64, rss_mib: f64, level: f64) -> Sample {
        Sample {
            at: Duration::from_secs(at),
            rss: rss_mib * 1024.0 * 1024.0,
            fds: 10,
            level,
            gpu: false,
        }
    }

    #[test]
    fn a_new_gpu_device_is_a_step_not_a_trend() {
        // 30 MiB at once when the GPU is taken again at 15 s: not growth.
        let step: Vec<Sample> = (0..60)
            .map(|t| Sample {
                gpu: t >= 15,
                ..sample(t, if t >= 15 { 70.0 } else { 40.0 }, 0.0)
            })
            .collect();
        let (first, last) = rss_thirds(&step, Duration::ZERO).expect("enough");
        assert!(!rss_grew(first, last), "{first} -> {last}");
        // The same step without a GPU take is growth.
        let plain: Vec<Sample> = step.iter().map(|s| Sample { gpu: false, ..*s }).collect();
        let (first, last) = rss_thirds(&plain, Duration::ZERO).expect("enough");
        assert!(rss_grew(first, last));
    }

    #[test]
    fn memory_trend_ignores_warmup_and_flags_growth() {
        let flat: Vec<Sample> = (0..30)
            .map(|t| sample(t, if t < 10 { 20.0 } else { 40.0 }, 0.0))
            .collect();
        let (first, last) = rss_thirds(&flat, Duration::from_secs(10)).expect("enough");
        assert!(!rss_grew(first, last), "warm-up growth is not a trend");
        let growing: Vec<Sample> = (0..30).map(|t| sample(t, 40.0 + t as f64, 0.0)).collect();
        let (first, last) = rss_thirds(&growing, Duration::from_secs(10)).expect("enough");
        assert!(rss_grew(first, last));
        assert_eq!(rss_thirds(&flat[..5], Duration::ZERO), None);
    }

    #[test]
    fn a_fault_that_never_fired_is_named() {
        let plan = fault_plan(Duration::from_secs(120));
        let series = |name: &str| format!("{FAULTS_INJECTED}{{fault=\"{name}\"}}");
        let all_fired = Metrics(
            [
                ("render_error", 40.0),
                ("render_nan", 9.0),
                ("gpu_oom", 2.0),
                ("device_lost", 1.0),
            ]
            .into_iter()
            .map(|(n, v)| (series(n), v))
            .collect(),
        );
        let fired = faults_fired(&plan, &all_fired);
        assert_eq!(
            fired,
            [
                ("render_error".to_owned(), 40.0),
                ("device_lost".to_owned(), 1.0),
                ("gpu_oom".to_owned(), 2.0),
                ("render_nan".to_owned(), 9.0)
            ]
        );
        assert!(never_fired(&fired).is_empty());
        // Disarmed: the GPU faults did not rise (the texture stayed on the CPU).
        let mut disarmed = all_fired.clone();
        disarmed.0.insert(series("gpu_oom"), 0.0);
        disarmed.0.remove(&series("device_lost"));
        let fired = faults_fired(&plan, &disarmed);
        assert_eq!(never_fired(&fired), ["device_lost", "gpu_oom"]);
    }

    #[test]
    fn level_changes_are_listed() {
        let s = [
            sample(0, 1.0, 0.0),
            sample(1, 1.0, 1.0),
            sample(2, 1.0, 1.0),
            sample(3, 1.0, 0.0),
        ];
        assert_eq!(level_changes(&s), vec![(1.0, 0.0, 1.0), (3.0, 1.0, 0.0)]);
    }

    #[test]
    fn control_messages_are_what_they_claim() {
        use auralis_bridge::protocol::{parse_client_text, Dialect};
        let mut r = rng(7, 1);
        for _ in 0..200 {
            let ok = valid_control(&mut r);
            assert!(parse_client_text(&ok, Dialect::Native).is_ok(), "{ok}");
            let bad = invalid_control(&mut r);
            assert!(parse_client_text(&bad, Dialect::Native).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let err = |list: &[&str]| {
            parse_args(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&["--clients", "50"]).contains("--minutes is required"));
        assert!(err(&["--minutes", "2"]).contains("--clients is required"));
        assert!(err(&["--minutes", "0", "--clients", "50"]).contains("--minutes: expected"));
        assert!(err(&["--minutes", "2", "--clients", "2"]).contains("--clients: expected"));
        assert!(err(&["--minutes", "2", "--clients", "9", "--seed", "-1"]).contains("--seed"));
        assert!(err(&[
            "--minutes",
            "2",
            "--clients",
            "9",
            "--release",
            "--bin",
            "x"
        ])
        .contains("exclude"));
    }
}
