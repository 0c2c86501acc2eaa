//! The bridge under test: builds and starts `auralis-bridge` on a free loopback
//! port, reads its `/metrics` (which carry its CPU time and resident memory), counts
//! its file descriptors in `/proc`, and stops it with SIGTERM.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// Which build of the bridge to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `target/debug` (fault injection compiled in).
    Debug,
    /// `target/release`.
    Release,
}

/// Builds the bridge binary and returns its path.
///
/// # Errors
/// When cargo fails.
pub fn build(profile: Profile) -> Result<PathBuf> {
    let mut cmd = crate::cargo();
    cmd.args(["build", "-p", "auralis-bridge", "--bin", "auralis-bridge"]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    crate::run(cmd)?;
    Ok(binary(profile))
}

/// Where cargo puts the bridge binary of `profile`.
#[must_use]
pub fn binary(profile: Profile) -> PathBuf {
    crate::target_dir()
        .join(match profile {
            Profile::Debug => "debug",
            Profile::Release => "release",
        })
        .join("auralis-bridge")
}

/// A running bridge process.
#[derive(Debug)]
pub struct Bridge {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its console output.
    pub log: PathBuf,
}

impl Bridge {
    /// Starts `binary` on a free loopback port with `args` (and `env`), its console
    /// output going to `log`; returns once it announced its address.
    ///
    /// # Errors
    /// When it cannot start or does not announce an address within 30 s.
    pub fn start(binary: &Path, args: &[String], env: &[(&str, &str)], log: &Path) -> Result<Self> {
        if !binary.exists() {
            bail!("{} does not exist: build it first", binary.display());
        }
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let stderr = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new(binary);
        cmd.args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // The first line names the address; the rest is drained so the bridge
            // never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Nobody listens after the first line.
                let _ = tx.send(line);
            }
        });
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "{} did not announce its address within 30 s; its output:\n{tail}",
                binary.display()
            );
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no address in the bridge's first line {line:?}"))?;
        Ok(Self {
            child,
            addr,
            log: log.to_owned(),
        })
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to 10 s for a clean exit.
    ///
    /// # Errors
    /// When it does not exit cleanly in time (it is then killed).
    pub fn stop(mut self) -> Result<()> {
        let pid = self.pid().to_string();
        // If it is already gone, `try_wait` below says how it ended.
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                bail!(
                    "the bridge exited with {status}; see {}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the bridge did not stop within 10 s of SIGTERM")
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Only reached when a run failed half-way: do not leave it running.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET path` over HTTP/1.1; returns the status code and the body.
///
/// # Errors
/// When the request fails or the answer is not HTTP.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .with_context(|| format!("cannot read the answer to GET {path}"))?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("GET {path}: not an HTTP answer"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, b)| b.to_owned());
    Ok((status, body))
}

/// A Prometheus text exposition: each sample (name with its labels) and its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// Parses the text format (comments skipped, unparsable lines ignored).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (name, value) = l.rsplit_once(' ')?;
                    Some((name.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// Fetches `/metrics` from `addr`.
    ///
    /// # Errors
    /// When the request fails.
    pub fn fetch(addr: SocketAddr) -> Result<Self> {
        let (code, body) = http_get(addr, "/metrics")?;
        if code != 200 {
            bail!("GET /metrics answered {code}");
        }
        Ok(Self::parse(&body))
    }

    /// The sample `name` (with labels, exactly as exposed).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }

    /// The sample `name`, or 0 when absent.
    #[must_use]
    pub fn value(&self, name: &str) -> f64 {
        self.get(name).unwrap_or(0.0)
    }

    /// The `q` quantile (0–1) of histogram `name` over what happened between
    /// `before` and `self`, interpolated linearly within a bucket (as Prometheus's
    /// `histogram_quantile`); `None` without observations.
    #[must_use]
    pub fn quantile_since(&self, before: &Self, name: &str, q: f64) -> Option<f64> {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut buckets: Vec<(f64, f64)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, v - before.value(k)))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(bound, count) in &buckets {
            if count >= rank {
                if bound.is_infinite() {
                    // Beyond the last finite bound: that bound is all that is known.
                    return Some(lower.0);
                }
                let within = count - lower.1;
                let frac = if within > 0.0 {
                    (rank - lower.1) / within
                } else {
                    1.0
                };
                return Some(lower.0 + (bound - lower.0) * frac);
            }
            lower = (bound, count);
        }
        None
    }
}

/// Open file descriptors of process `pid`.
#[must_use]
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The soft limit on open files of this process (inherited by the bridge it
/// starts), from `/proc/self/limits`.
#[must_use]
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Fails with a clear message when `sockets` connections would exceed the limit on
/// open files.
///
/// # Errors
/// When the limit is too low.
pub fn check_file_limit(sockets: usize) -> Result<()> {
    let need = sockets as u64 + 256;
    match open_file_limit() {
        Some(limit) if limit < need => bail!(
            "{sockets} connections need about {need} open files but the limit is {limit}: \
             raise it with `ulimit -n {need}`"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTOGRAM: &str = "# TYPE h histogram\n\
        h_bucket{le=\"0.001\"} 10\n\
        h_bucket{le=\"0.01\"} 90\n\
        h_bucket{le=\"0.1\"} 100\n\
        h_bucket{le=\"+Inf\"} 100\n\
        h_count 100\n\
        up 1\n";

    #[test]
    fn metrics_parse_and_quantiles_interpolate() {
        let m = Metrics::parse(HISTOGRAM);
        assert_eq!(m.get("up"), Some(1.0));
        assert_eq!(m.get("h_bucket{le=\"0.01\"}"), Some(90.0));
        let none = Metrics::default();
        let p50 = m.quantile_since(&none, "h", 0.5).expect("observations");
        // Rank 50 lies in (0.001, 0.01] which holds ranks 10..90.
        assert!((p50 - (0.001 + 0.009 * 0.5)).abs() < 1e-12, "{p50}");
        let p99 = m.quantile_since(&none, "h", 0.99).expect("observations");
        assert!((p99 - (0.01 + 0.09 * 0.9)).abs() < 1e-12, "{p99}");
        // Nothing new since `m` itself.
        assert_eq!(m.quantile_since(&m, "h", 0.99), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_can_be_sampled() {
        let me = std::process::id();
        assert!(open_fds(me).is_some_and(|n| n >= 3));
        assert!(open_file_limit().is_some_and(|n| n > 0));
    }
}
