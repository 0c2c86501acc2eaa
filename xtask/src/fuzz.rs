//! `cargo xtask fuzz`: builds the cargo-fuzz targets in `fuzz/` (nightly,
//! AddressSanitizer) and runs each for a bounded time from its committed seeds
//! (`fuzz/seeds/<target>`) and its growing corpus (`fuzz/corpus/<target>`, not
//! committed). Each run has a per-input time limit (a hang is a failure) and a
//! memory limit; any crash, hang or leak fails the command and leaves the input in
//! `fuzz/artifacts/<target>/`. Prints one `fuzz <target> ...` line per target with
//! libFuzzer's execution count.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::flags::Flags;

const USAGE: &str = "usage: cargo xtask fuzz [--seconds S] [--target T]...

  --seconds S   time per target (1-86400, default 20)
  --target T    run only this target (repeatable); default: all of them

Needs the nightly toolchain and cargo-fuzz, and installs them when missing
(`rustup toolchain install nightly --profile minimal`,
`cargo install --locked cargo-fuzz`).";

/// A fuzz target and how libFuzzer runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    /// The bin name in `fuzz/Cargo.toml`.
    name: &'static str,
    /// The longest input libFuzzer may make.
    max_len: usize,
    /// Whether inputs that end with more allocations than they started with are
    /// checked for leaks. Off for the plugin, whose instance lives across inputs
    /// (the RSS limit still bounds its memory): the check would take most of the
    /// time.
    detect_leaks: bool,
}

const TARGETS: [Target; 5] = [
    Target {
        name: "control",
        max_len: 4096,
        detect_leaks: true,
    },
    Target {
        name: "frame_header",
        max_len: 4096,
        detect_leaks: true,
    },
    Target {
        name: "config",
        max_len: 4096,
        detect_leaks: true,
    },
    Target {
        name: "plugin_state",
        max_len: 4096,
        detect_leaks: false,
    },
    // A whole stream file with the smallest ring is 12 KiB.
    Target {
        name: "shm_header",
        max_len: 16_384,
        detect_leaks: true,
    },
];

/// Longest a single input may run before libFuzzer calls it a hang, in seconds.
const INPUT_TIMEOUT_S: u32 = 10;
/// Resident memory limit of a fuzzing process, in MiB (also its largest single
/// allocation).
const RSS_LIMIT_MB: u32 = 1024;

struct Args {
    seconds: u32,
    targets: Vec<Target>,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut seconds = 20;
    let mut targets = Vec::new();
    let mut flags = Flags::new(args, USAGE);
    while let Some(flag) = flags.next_flag()? {
        match flag {
            "--seconds" => seconds = flags.number(flag, 1.0, 86_400.0)? as u32,
            "--target" => {
                let name = flags.value(flag)?;
                let target = TARGETS.iter().find(|t| t.name == name).with_context(|| {
                    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                    format!(
                        "unknown fuzz target {name:?}: expected one of {}",
                        names.join(", ")
                    )
                })?;
                targets.push(*target);
            }
            other => return Err(flags.unknown(other)),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    Ok(Args { seconds, targets })
}

/// `cargo +nightly fuzz ...` in the workspace root, through the rustup proxy (the
/// variables cargo set for this process would pin the stable toolchain).
fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .args(["+nightly", "fuzz"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    cmd
}

/// Installs what fuzzing needs when it is missing: the nightly toolchain (through
/// rustup) and cargo-fuzz (from crates.io), so a fresh CI machine fuzzes too.
fn ensure_tools(root: &Path) -> Result<()> {
    let works = |mut cmd: Command| cmd.output().is_ok_and(|o| o.status.success());
    let mut version = cargo_fuzz(root);
    version.arg("--version");
    if works(version) {
        return Ok(());
    }
    let mut nightly = Command::new("rustup");
    nightly.args(["run", "nightly", "rustc", "--version"]);
    if !works(nightly) {
        let mut install = Command::new("rustup");
        install.args(["toolchain", "install", "nightly", "--profile", "minimal"]);
        crate::run(install).context(
            "the nightly toolchain is needed for cargo-fuzz: rustup toolchain install \
             nightly --profile minimal",
        )?;
    }
    let mut install = Command::new("cargo");
    install
        .args(["install", "--locked", "cargo-fuzz"])
        .env_remove("RUSTUP_TOOLCHAIN");
    crate::run(install).context("cargo-fuzz is needed: cargo install --locked cargo-fuzz")
}

/// `cargo xtask fuzz`.
///
/// # Errors
/// On bad arguments, a missing toolchain or cargo-fuzz, a failed build, or any
/// crash, hang, leak or memory overrun found by a target.
pub fn fuzz(args: &[String]) -> Result<()> {
    let args = parse_args(args)?;
    let root = crate::root();
    ensure_tools(&root)?;
    let mut build = cargo_fuzz(&root);
    build.arg("build");
    crate::run(build)?;
    let mut figures = Vec::new();
    for &Target {
        name: target,
        max_len,
        detect_leaks,
    } in &args.targets
    {
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        let mut cmd = cargo_fuzz(&root);
        cmd.args(["run", target])
            .arg(&corpus)
            .arg(root.join("fuzz/seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={}", args.seconds))
            .arg(format!("-timeout={INPUT_TIMEOUT_S}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-max_len={max_len}"))
            .arg(format!("-detect_leaks={}", u8::from(detect_leaks)))
            .arg("-print_final_stats=1");
        eprintln!("xtask: fuzzing {target} for {} s", args.seconds);
        let out = cmd
            .output()
            .with_context(|| format!("cannot start {cmd:?}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "fuzz target {target} failed ({}); the input is in fuzz/artifacts/{target}/ \
                 (reproduce: cargo +nightly fuzz run {target} <file>):\n{}",
                out.status,
                tail.join("\n")
            );
        }
        let runs = stat(&log, "number_of_executed_units")
            .with_context(|| format!("no execution count in the output of {target}:\n{log}"))?;
        let corpus_size = std::fs::read_dir(&corpus).map_or(0, Iterator::count);
        figures.push(format!(
            "fuzz {target} runs {runs} seconds {} crashes 0 corpus {corpus_size}",
            args.seconds
        ));
    }
    let mut stdout = std::io::stdout().lock();
    for line in figures {
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}

/// The value of libFuzzer's final `stat::<name>:` line.
fn stat(log: &str, name: &str) -> Option<u64> {
    let key = format!("stat::{name}:");
    log.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args> {
        parse_args(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments_are_checked() {
        let all = args(&[]).expect("defaults");
        assert_eq!(all.seconds, 20);
        assert_eq!(all.targets.len(), TARGETS.len());
        let one = args(&["--seconds", "60", "--target", "control"]).expect("valid");
        assert_eq!(one.seconds, 60);
        assert_eq!(one.targets, [TARGETS[0]]);
        assert!(args(&["--target", "nope"]).is_err());
        assert!(args(&["--seconds", "0"]).is_err());
        assert!(args(&["--seconds"]).is_err());
        assert!(args(&["--jobs", "2"]).is_err());
    }

    #[test]
    fn every_target_is_in_the_fuzz_crate_with_seeds() {
        let root = crate::root();
        let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).expect("manifest");
        for Target { name: target, .. } in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "{target} is not a bin of fuzz/Cargo.toml"
            );
            let seeds =
                std::fs::read_dir(root.join("fuzz/seeds").join(target)).map_or(0, Iterator::count);
            assert!(seeds > 0, "{target} has no seeds");
        }
    }

    #[test]
    fn final_stats_are_read() {
        let log =
            "#1024\tDONE cov: 1\nstat::number_of_executed_units: 123456\nstat::peak_rss_mb: 80\n";
        assert_eq!(stat(log, "number_of_executed_units"), Some(123_456));
        assert_eq!(stat(log, "slowest_unit_time_sec"), None);
    }
}
