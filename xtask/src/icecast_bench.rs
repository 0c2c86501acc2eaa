//! `cargo xtask icecast-bench`: the bridge as the source of a real `icecast2`
//! and of a relay `icecast2` behind it (both on free loopback ports with
//! generated configs), and the same number of Ogg listeners for the same time
//! on each of the three: the bridge's own `/stream.opus`, the Icecast mount and
//! the relay. Printed side by side: listeners healthy, chunks missing, bytes per
//! second per listener, and the bridge's CPU and memory meanwhile.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use tokio::time::Instant;

use crate::bridge::{self, Bridge, Metrics, Profile};
use crate::flags::Flags;
use crate::icecast_server::{Icecast, PASSWORD};
use crate::listeners::{self, ClientReport, Summary};

const USAGE: &str = "usage: cargo xtask icecast-bench [--listeners N] [--seconds S] [--bin PATH]

  --listeners N  listeners on each of the three (default 200)
  --seconds S    measured seconds per crowd, after a 2 s warm-up (default 30)
  --bin PATH     the bridge binary (default: build it in release)";

/// Listeners connect this long before the measured window.
const WARMUP: Duration = Duration::from_secs(2);

/// What one crowd measured.
struct Row {
    what: &'static str,
    summary: Summary,
    bytes_per_listener_s: f64,
    cpu_cores: f64,
    rss_mib: f64,
}

/// # Errors
/// When the servers cannot start or the listeners cannot connect.
pub fn icecast_bench(args: &[String]) -> Result<()> {
    let mut flags = Flags::new(args, USAGE);
    let (mut listeners, mut seconds, mut bin) = (200, 30.0, None);
    while let Some(flag) = flags.next_flag()? {
        match flag {
            "--listeners" => listeners = flags.number(flag, 1.0, 10_000.0)? as usize,
            "--seconds" => seconds = flags.number(flag, 1.0, 3600.0)?,
            "--bin" => bin = Some(PathBuf::from(flags.value(flag)?)),
            other => return Err(flags.unknown(other)),
        }
    }
    let binary = match bin {
        Some(path) => path,
        None => bridge::build(Profile::Release)?,
    };
    bridge::check_file_limit(3 * listeners)?;
    let dir = crate::target_dir().join("icecast-bench");
    let primary = Icecast::start(fresh(&dir.join("primary"))?, "", listeners + 16);
    let relay = Icecast::start(
        fresh(&dir.join("relay"))?,
        &primary.relay_xml("/live.opus", "/relay.opus"),
        listeners + 16,
    );
    let bridge = Bridge::start(
        &binary,
        &[
            "--max-clients".into(),
            (listeners + 16).to_string(),
            "--icecast".into(),
            primary.url(PASSWORD, "/live.opus"),
        ],
        &[],
        &dir.join("bridge.log"),
    )?;
    serves(relay.addr(), "/relay.opus", Duration::from_secs(30))?;
    let duration = Duration::from_secs_f64(seconds);
    let mut rows = Vec::new();
    for (what, addr, path) in [
        ("bridge /stream.opus", bridge.addr, "/stream.opus"),
        ("icecast mount", primary.addr(), "/live.opus"),
        ("icecast relay", relay.addr(), "/relay.opus"),
    ] {
        eprintln!("xtask: {listeners} listeners on the {what} for {seconds} s");
        rows.push(crowd(what, bridge.addr, addr, path, listeners, duration)?);
    }
    bridge.stop()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<20} {:>9} {:>8} {:>8} {:>14} {:>11} {:>11}",
        "listening to",
        "listeners",
        "healthy",
        "missing",
        "B/s/listener",
        "bridge CPU",
        "bridge RSS"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<20} {:>9} {:>8} {:>8} {:>14.0} {:>10.1}% {:>7.1} MiB",
            r.what,
            r.summary.clients,
            r.summary.healthy,
            r.summary.missing,
            r.bytes_per_listener_s,
            r.cpu_cores * 100.0,
            r.rss_mib
        )?;
    }
    Ok(())
}

/// An empty directory that `icecast2` can write to after it drops root.
fn fresh(dir: &std::path::Path) -> Result<PathBuf> {
    // A leftover of an earlier run.
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .with_context(|| format!("cannot open {} to icecast2", dir.display()))?;
    Ok(dir.to_owned())
}

/// Waits until `GET path` on `addr` answers `200`.
fn serves(addr: SocketAddr, path: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    let answers = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut head = [0_u8; 12];
        s.read_exact(&mut head)?;
        Ok(head.ends_with(b" 200"))
    };
    while !answers().unwrap_or(false) {
        if Instant::now() > deadline {
            bail!("http://{addr}{path} did not serve within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// `listeners` Ogg listeners of `path` on `addr` for `duration`, with the
/// bridge's CPU and memory meanwhile.
fn crowd(
    what: &'static str,
    bridge: SocketAddr,
    addr: SocketAddr,
    path: &str,
    listeners: usize,
    duration: Duration,
) -> Result<Row> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let fetch = || async move {
        tokio::task::spawn_blocking(move || Metrics::fetch(bridge))
            .await
            .context("the metrics request failed")?
    };
    let (reports, before, after, wall) = runtime.block_on(async {
        let crowd =
            listeners::connect_many(listeners, || listeners::connect_ogg_at(addr, path)).await?;
        let measure_from = Instant::now() + WARMUP;
        let running = tokio::spawn(listeners::run_all(
            crowd,
            measure_from,
            measure_from + duration,
        ));
        tokio::time::sleep_until(measure_from).await;
        let before = fetch().await?;
        let started = Instant::now();
        let reports: Vec<ClientReport> = running.await.context("the listeners failed")??;
        let wall = started.elapsed();
        anyhow::Ok((reports, before, fetch().await?, wall))
    })?;
    let cpu = after.value("process_cpu_seconds_total") - before.value("process_cpu_seconds_total");
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    Ok(Row {
        what,
        summary: Summary::of(&reports, listeners::MAX_HEALTHY_GAP),
        bytes_per_listener_s: bytes as f64 / listeners as f64 / wall.as_secs_f64(),
        cpu_cores: cpu / wall.as_secs_f64(),
        rss_mib: after.value("process_resident_memory_bytes") / (1024.0 * 1024.0),
    })
}
