//! `cargo xtask loadtest`: a crowd of listeners on one bridge, with per-listener
//! figures and the server's CPU and memory; and the bridge figures of
//! `cargo xtask bench` (the most listeners served without a gap, the CPU each costs,
//! and the send latency).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use tokio::time::Instant;

use crate::bridge::{self, Bridge, Metrics, Profile};
use crate::flags::Flags;
use crate::listeners::{self, ClientReport, Summary, Target};

/// The latency histogram the bridge exposes in `/metrics`.
const LATENCY_HISTOGRAM: &str = "auralis_bridge_send_latency_seconds";
/// Time between the last listener connecting and the start of the measurement.
const WARMUP: Duration = Duration::from_secs(2);
/// Unhealthy listeners listed one by one in a report.
const MAX_LISTED: usize = 10;
/// Listener counts the benchmark tries, in order, until one fails (the figure is
/// the last when all pass).
const BENCH_STEPS: [usize; 10] = [100, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 5000];
/// The benchmark bisects between a passing and a failing count down to this step.
const BENCH_RESOLUTION: usize = 25;

const USAGE: &str = "usage: cargo xtask loadtest --clients N --seconds S [--codec C] [--url ws://HOST:PORT/ws/stream] [--bin PATH] [--max-gap-ms MS]

  --clients N   concurrent listeners (1-20000)
  --seconds S   measured time after they all connected (1-86400)
  --codec C     what the listeners ask for: s16 (default), f32 or opus
  --url URL     an already running bridge's stream; default: build and start the
                release bridge on a free loopback port
  --bin PATH    start this bridge binary instead of building the release one
  --max-gap-ms MS
                the wait between two chunks that fails a listener (50-60000,
                default 250)";

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Every listener's report.
    pub reports: Vec<ClientReport>,
    /// Their summary.
    pub summary: Summary,
    /// Server CPU over the measurement, in cores (1.0: one core fully busy).
    pub cpu_cores: Option<f64>,
    /// Server resident memory at the end, in bytes.
    pub rss_bytes: Option<f64>,
    /// 99th percentile of the time from a chunk leaving the source to its write to
    /// a socket, over the measurement, in seconds.
    pub latency_p99_s: Option<f64>,
    /// Bytes the server wrote per listener per second over the measurement.
    pub bytes_per_listener_s: Option<f64>,
    /// The stream's Opus encoding time ÷ audio time (one encoding, whoever listens).
    pub opus_encode_rtf: Option<f64>,
}

impl LoadResult {
    fn print(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "{}", self.summary)?;
        let unhealthy = self.summary.clients - self.summary.healthy;
        for (i, r) in self
            .reports
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.healthy(self.summary.gap_limit))
            .take(MAX_LISTED)
        {
            writeln!(
                out,
                "  listener {i}: {} chunks, {:.2}/s, max gap {} ms, {} missing, {} bad frames, close {:?}, failure {:?}",
                r.chunks,
                r.rate(),
                r.max_gap.as_millis(),
                r.missing,
                r.bad_frames,
                r.close,
                r.failure
            )?;
        }
        if unhealthy > MAX_LISTED {
            writeln!(out, "  ... and {} more", unhealthy - MAX_LISTED)?;
        }
        let fmt = |v: Option<f64>, scale: f64, unit: &str| {
            v.map_or_else(
                || "unknown".to_owned(),
                |v| format!("{:.1} {unit}", v * scale),
            )
        };
        writeln!(
            out,
            "server: CPU {} of one core, resident memory {}, send latency p99 {}, \
             {} per listener, Opus encoding {} of real time",
            fmt(self.cpu_cores, 100.0, "%"),
            fmt(self.rss_bytes, 1.0 / (1024.0 * 1024.0), "MiB"),
            fmt(self.latency_p99_s, 1e3, "ms"),
            fmt(self.bytes_per_listener_s, 1.0, "B/s"),
            fmt(self.opus_encode_rtf, 100.0, "%"),
        )
    }
}

/// Runs `clients` listeners on `target` for `seconds` after a warm-up, reading the
/// server's `/metrics` before and after the measurement.
///
/// # Errors
/// When listeners cannot connect or `/metrics` cannot be read.
pub fn measure(
    target: &Target,
    codec: Codec,
    clients: usize,
    measure: Duration,
    gap_limit: Duration,
) -> Result<LoadResult> {
    bridge::check_file_limit(clients)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let addr = target.http_addr();
    let fetch = || async move {
        tokio::task::spawn_blocking(move || Metrics::fetch(addr))
            .await
            .context("the metrics request failed")?
    };
    let (reports, before, after, wall) = runtime.block_on(async {
        let crowd = listeners::connect_many(target, clients, codec.query()).await?;
        let measure_from = Instant::now() + WARMUP;
        let end = measure_from + measure;
        let running = tokio::spawn(listeners::run_all(crowd, measure_from, end));
        tokio::time::sleep_until(measure_from).await;
        let before = fetch().await?;
        let started = Instant::now();
        let reports = running.await.context("the listeners failed")??;
        let wall = started.elapsed();
        anyhow::Ok((reports, before, fetch().await?, wall))
    })?;
    let per_second = |name: &str| match (before.get(name), after.get(name)) {
        (Some(a), Some(b)) => Some((b - a) / wall.as_secs_f64()),
        _ => None,
    };
    let cpu_cores = per_second("process_cpu_seconds_total");
    let bytes_per_listener_s =
        per_second("auralis_bridge_bytes_out_total").map(|b| b / clients as f64);
    Ok(LoadResult {
        summary: Summary::of(&reports, gap_limit),
        reports,
        cpu_cores,
        rss_bytes: after.get("process_resident_memory_bytes"),
        latency_p99_s: after.quantile_since(&before, LATENCY_HISTOGRAM, 0.99),
        bytes_per_listener_s,
        opus_encode_rtf: after.get("auralis_bridge_opus_encode_rtf"),
    })
}

/// Starts `binary` able to take `clients` listeners; console output under
/// `target/<name>/`.
///
/// # Errors
/// When it cannot start.
pub fn start_bridge(binary: &std::path::Path, clients: usize, name: &str) -> Result<Bridge> {
    let log = crate::target_dir().join(name).join("bridge.log");
    Bridge::start(
        binary,
        &["--max-clients".into(), (clients + 16).to_string()],
        &[],
        &log,
    )
}

/// What the listeners ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    S16,
    F32,
    Opus,
}

impl Codec {
    fn parse(name: &str) -> Result<Self> {
        match name {
            "s16" => Ok(Self::S16),
            "f32" => Ok(Self::F32),
            "opus" => Ok(Self::Opus),
            other => bail!("--codec: expected s16, f32 or opus, got {other:?}"),
        }
    }

    /// The stream URL's query.
    const fn query(self) -> &'static str {
        match self {
            Self::S16 => "",
            Self::F32 => "?codec=f32",
            Self::Opus => "?codec=opus",
        }
    }

    /// The prefix of this codec's benchmark figures.
    const fn figure_prefix(self) -> &'static str {
        match self {
            Self::S16 => "bridge",
            Self::F32 => "bridge_f32",
            Self::Opus => "bridge_opus",
        }
    }
}

struct Args {
    clients: usize,
    seconds: f64,
    codec: Codec,
    gap_limit: Duration,
    url: Option<String>,
    bin: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut clients = None;
    let mut seconds = None;
    let mut gap_limit = listeners::MAX_HEALTHY_GAP;
    let mut url = None;
    let mut bin = None;
    let mut codec = Codec::S16;
    let mut flags = Flags::new(args, USAGE);
    while let Some(flag) = flags.next_flag()? {
        match flag {
            "--clients" => clients = Some(flags.number(flag, 1.0, 20_000.0)? as usize),
            "--seconds" => seconds = Some(flags.number(flag, 1.0, 86_400.0)?),
            "--max-gap-ms" => {
                gap_limit = Duration::from_secs_f64(flags.number(flag, 50.0, 60_000.0)? / 1e3);
            }
            "--codec" => codec = Codec::parse(flags.value(flag)?)?,
            "--url" => url = Some(flags.value(flag)?.to_owned()),
            "--bin" => bin = Some(PathBuf::from(flags.value(flag)?)),
            other => return Err(flags.unknown(other)),
        }
    }
    if url.is_some() && bin.is_some() {
        bail!("--url and --bin exclude each other: --url uses a running bridge");
    }
    Ok(Args {
        clients: flags.required(clients, "--clients")?,
        seconds: flags.required(seconds, "--seconds")?,
        codec,
        gap_limit,
        url,
        bin,
    })
}

/// `cargo xtask loadtest`.
///
/// # Errors
/// On bad arguments, when the bridge cannot start, or when a listener missed
/// chunks.
pub fn loadtest(args: &[String]) -> Result<()> {
    let args = parse_args(args)?;
    let duration = Duration::from_secs_f64(args.seconds);
    let (result, bridge) = if let Some(url) = &args.url {
        let target = Target::parse(url)?;
        (
            measure(&target, args.codec, args.clients, duration, args.gap_limit)?,
            None,
        )
    } else {
        let binary = match args.bin {
            Some(path) => path,
            None => bridge::build(Profile::Release)?,
        };
        let bridge = start_bridge(&binary, args.clients, "loadtest")?;
        eprintln!(
            "xtask: {} listeners on the bridge at {} for {} s",
            args.clients, bridge.addr, args.seconds
        );
        let target = Target::local(bridge.addr);
        let result = measure(&target, args.codec, args.clients, duration, args.gap_limit);
        (result?, Some(bridge))
    };
    result.print(&mut std::io::stderr().lock())?;
    if let Some(bridge) = bridge {
        bridge.stop()?;
    }
    if !result.summary.all_healthy() {
        bail!(
            "{} of {} listeners missed chunks, waited {} ms or more, or were disconnected",
            result.summary.clients - result.summary.healthy,
            result.summary.clients,
            args.gap_limit.as_millis()
        );
    }
    Ok(())
}

/// One benchmark trial: a fresh release bridge and `clients` listeners. A failed
/// trial is run once more before it counts, so that one burst of load from
/// elsewhere on the machine does not decide the figure.
fn trial(
    binary: &std::path::Path,
    codec: Codec,
    clients: usize,
    duration: Duration,
) -> Result<LoadResult> {
    let mut result = None;
    for attempt in 1..=2 {
        let bridge = start_bridge(binary, clients, "bench-bridge")?;
        let r = measure(
            &Target::local(bridge.addr),
            codec,
            clients,
            duration,
            listeners::MAX_HEALTHY_GAP,
        )?;
        bridge.stop()?;
        eprintln!("xtask: bridge bench, {codec:?}, {clients} listeners, attempt {attempt}:");
        r.print(&mut std::io::stderr().lock())?;
        let healthy = r.summary.all_healthy();
        result = Some(r);
        if healthy {
            break;
        }
    }
    result.context("no trial ran")
}

/// The bridge benchmark, for s16 and for Opus listeners: the most listeners that
/// all get every chunk on time for `duration` (trying [`BENCH_STEPS`], then
/// bisecting), and at that load the server CPU per listener, the send latency's
/// 99th percentile and the bytes sent per listener per second; for Opus also the
/// encoding's cost and the server's memory at [`MEMORY_LISTENERS`] listeners.
///
/// # Errors
/// When the bridge cannot be built or started.
pub fn bench(duration: Duration) -> Result<()> {
    let binary = bridge::build(Profile::Release)?;
    for codec in [Codec::S16, Codec::Opus] {
        bench_codec(&binary, codec, duration)?;
    }
    let at = trial(&binary, Codec::Opus, MEMORY_LISTENERS, duration)?;
    let mut out = std::io::stdout().lock();
    if let Some(rss) = at.rss_bytes {
        writeln!(
            out,
            "bridge_opus_rss_{MEMORY_LISTENERS}_listeners {:.1} MiB",
            rss / (1024.0 * 1024.0)
        )?;
    }
    Ok(())
}

/// The server's memory is reported at this many Opus listeners.
const MEMORY_LISTENERS: usize = 1000;

fn bench_codec(binary: &std::path::Path, codec: Codec, duration: Duration) -> Result<()> {
    let mut best: Option<(usize, LoadResult)> = None;
    let mut failed_at = None;
    for n in BENCH_STEPS {
        let result = trial(binary, codec, n, duration)?;
        if result.summary.all_healthy() {
            best = Some((n, result));
        } else {
            failed_at = Some(n);
            break;
        }
    }
    if let Some(mut hi) = failed_at {
        let mut lo = best.as_ref().map_or(0, |(n, _)| *n);
        while hi - lo > BENCH_RESOLUTION {
            let mid = (lo + hi) / 2;
            let result = trial(binary, codec, mid, duration)?;
            if result.summary.all_healthy() {
                lo = mid;
                best = Some((mid, result));
            } else {
                hi = mid;
            }
        }
    }
    let prefix = codec.figure_prefix();
    let mut out = std::io::stdout().lock();
    let Some((n, result)) = best else {
        // A figure like any other (the trials above say why), not a failed run: the
        // per-listener figures need a passing load, so they are left out.
        eprintln!(
            "xtask: the bridge did not serve even {BENCH_RESOLUTION} {codec:?} listeners \
             without a gap"
        );
        writeln!(
            out,
            "{prefix}_listeners_ok 0 listeners_{}s",
            duration.as_secs()
        )?;
        return Ok(());
    };
    writeln!(
        out,
        "{prefix}_listeners_ok {n} listeners_{}s",
        duration.as_secs()
    )?;
    if let Some(cpu) = result.cpu_cores {
        writeln!(
            out,
            "{prefix}_cpu_per_listener {:.4} percent_core",
            cpu * 100.0 / n as f64
        )?;
    }
    if let Some(p99) = result.latency_p99_s {
        writeln!(out, "{prefix}_latency_p99_ms {:.2} ms", p99 * 1e3)?;
    }
    if let Some(bytes) = result.bytes_per_listener_s {
        writeln!(out, "{prefix}_bytes_per_listener_s {bytes:.0} bytes_per_s")?;
    }
    if codec == Codec::Opus {
        if let Some(rtf) = result.opus_encode_rtf {
            writeln!(out, "bridge_opus_encode_rtf {rtf:.4} x_real_time")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args> {
        parse_args(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn bad_arguments_are_named() {
        let err = |list: &[&str]| args(list).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(&["--seconds", "5"]).contains("--clients is required"));
        assert!(err(&["--clients", "5"]).contains("--seconds is required"));
        assert!(err(&["--clients", "0", "--seconds", "5"]).contains("--clients: expected"));
        assert!(err(&["--clients", "x", "--seconds", "5"]).contains("--clients"));
        assert!(err(&["--clients", "5", "--seconds", "NaN"]).contains("--seconds"));
        assert!(err(&["--clients", "5", "--seconds"]).contains("--seconds needs a value"));
        assert!(err(&["--clients", "5", "--seconds", "1", "--fast"]).contains("\"--fast\""));
        assert!(err(&[
            "--clients",
            "5",
            "--seconds",
            "1",
            "--url",
            "ws://a:1/",
            "--bin",
            "b"
        ])
        .contains("exclude"));
        assert!(
            err(&["--clients", "5", "--seconds", "1", "--max-gap-ms", "10"])
                .contains("--max-gap-ms: expected a number from 50")
        );
        assert!(err(&["--clients", "5", "--seconds", "1", "--codec", "mp3"]).contains("--codec"));
        let ok = args(&["--clients", "20", "--seconds", "5"]).expect("valid");
        assert_eq!(ok.gap_limit, listeners::MAX_HEALTHY_GAP);
        assert_eq!(ok.codec, Codec::S16);
        let opus = args(&["--clients", "2", "--seconds", "1", "--codec", "opus"]).expect("valid");
        assert_eq!(opus.codec.query(), "?codec=opus");
        assert_eq!((ok.clients, ok.seconds), (20, 5.0));
    }
}
