//! Fault injection for tests and demos: `AURALIS_FAULTS` makes the failures the
//! recovery chain handles happen for real inside the pre-renderer.
//!
//! Grammar: a comma-separated list of `name[:probability][@seconds s]`:
//!
//! | name | what happens |
//! |---|---|
//! | `gpu_oom` | the GPU path reports out-of-memory (at device set-up or while rendering) |
//! | `device_lost` | the GPU device is destroyed (`wgpu::Device::destroy`): a genuine device loss |
//! | `shader_error` | the kernels are built from broken WGSL: a genuine validation error |
//! | `render_nan` | a NaN is planted in the texture description, so the render outputs NaN |
//! | `render_error` | the render attempt returns an error |
//!
//! Without a suffix a fault fires every time; `:p` fires with probability `p`
//! (deterministic stream); `@Ns` fires once, at the first chance `N` seconds or more
//! after the pre-renderer started. Examples:
//! `gpu_oom`, `render_nan:0.3,render_error:0.5`, `device_lost@20s`.
//!
//! Faults are read from the environment only in debug builds or with the `faults`
//! cargo feature; otherwise [`FaultPlan::from_env`] ignores the variable (with a
//! warning). Tests build plans directly with [`str::parse`].

use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::rng::Rng;

/// A kind of injectable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// GPU out of memory.
    GpuOom,
    /// GPU device lost.
    DeviceLost,
    /// Shader (validation) error when the kernels are built.
    ShaderError,
    /// NaN in the rendered texture.
    RenderNan,
    /// An error from the render attempt.
    RenderError,
}

impl FaultKind {
    /// Every kind with its spec name.
    pub const ALL: [(Self, &'static str); 5] = [
        (Self::GpuOom, "gpu_oom"),
        (Self::DeviceLost, "device_lost"),
        (Self::ShaderError, "shader_error"),
        (Self::RenderNan, "render_nan"),
        (Self::RenderError, "render_error"),
    ];

    /// Position in [`Self::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The spec name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, n)| n)
    }
}

/// When a fault fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// Every time.
    Always,
    /// With this probability, 0..=1.
    Probability(f32),
    /// Once, at the first chance at least this long after the start.
    After(Duration),
}

/// A malformed `AURALIS_FAULTS` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    /// The name is not a known fault.
    #[error("unknown fault {name:?} in {entry:?} (known: gpu_oom, device_lost, shader_error, render_nan, render_error)")]
    UnknownFault {
        /// The name given.
        name: String,
        /// The whole entry.
        entry: String,
    },
    /// A probability that is not a number in [0, 1].
    #[error("bad probability {value:?} in {entry:?}: expected a number between 0 and 1")]
    BadProbability {
        /// The value given.
        value: String,
        /// The whole entry.
        entry: String,
    },
    /// A time that is not `<non-negative number>s`.
    #[error("bad time {value:?} in {entry:?}: expected seconds such as @20s")]
    BadTime {
        /// The value given.
        value: String,
        /// The whole entry.
        entry: String,
    },
    /// Both `:p` and `@t` on one entry, or an empty entry.
    #[error("malformed fault entry {0:?}: expected name, name:probability or name@seconds")]
    Malformed(String),
}

/// One armed fault.
#[derive(Debug, Clone, PartialEq)]
struct Armed {
    kind: FaultKind,
    trigger: Trigger,
    fired: bool,
}

/// The faults to inject, with the state that decides when each fires.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    armed: Vec<Armed>,
    rng: Rng,
    start: Instant,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::none()
    }
}

impl FaultPlan {
    /// Name of the environment variable read by [`FaultPlan::from_env`].
    pub const ENV: &'static str = "AURALIS_FAULTS";

    /// No faults.
    #[must_use]
    pub fn none() -> Self {
        Self {
            armed: Vec::new(),
            rng: Rng::new(0xFA17),
            start: Instant::now(),
        }
    }

    /// Whether no fault is armed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// The plan in `AURALIS_FAULTS` (unset or empty: none). Only debug builds and
    /// builds with the `faults` feature read it.
    ///
    /// # Errors
    /// [`FaultParseError`] for a malformed value.
    pub fn from_env() -> Result<Self, FaultParseError> {
        let Ok(spec) = std::env::var(Self::ENV) else {
            return Ok(Self::none());
        };
        if cfg!(any(debug_assertions, feature = "faults")) {
            spec.parse()
        } else {
            tracing::warn!(
                spec,
                "AURALIS_FAULTS is ignored: fault injection is compiled only into debug builds \
                 and builds with the `faults` feature"
            );
            Ok(Self::none())
        }
    }

    /// Restarts the clock of `@` triggers.
    pub fn restart_clock(&mut self) {
        self.start = Instant::now();
    }

    /// Whether `kind` fires now (consumes a random draw for probabilistic faults).
    pub fn fire(&mut self, kind: FaultKind) -> bool {
        let elapsed = self.start.elapsed();
        let mut fired = false;
        for armed in self.armed.iter_mut().filter(|a| a.kind == kind) {
            let now = match armed.trigger {
                Trigger::Always => true,
                Trigger::Probability(p) => self.rng.chance(p),
                Trigger::After(t) => !armed.fired && elapsed >= t,
            };
            if now {
                armed.fired = true;
                fired = true;
            }
        }
        if fired {
            tracing::warn!(fault = kind.name(), "injecting fault");
        }
        fired
    }

    /// Whether `kind` is armed at all.
    #[must_use]
    pub fn has(&self, kind: FaultKind) -> bool {
        self.armed.iter().any(|a| a.kind == kind)
    }
}

fn parse_entry(entry: &str) -> Result<Armed, FaultParseError> {
    let malformed = || FaultParseError::Malformed(entry.to_owned());
    let (name, trigger) = match (entry.split_once(':'), entry.split_once('@')) {
        (Some(_), Some(_)) => return Err(malformed()),
        (Some((name, p)), None) => {
            let bad = || FaultParseError::BadProbability {
                value: p.to_owned(),
                entry: entry.to_owned(),
            };
            let p: f32 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=1.0).contains(&p) {
                return Err(bad());
            }
            (name, Trigger::Probability(p))
        }
        (None, Some((name, t))) => {
            let bad = || FaultParseError::BadTime {
                value: t.to_owned(),
                entry: entry.to_owned(),
            };
            let secs: f64 = t
                .trim()
                .strip_suffix('s')
                .ok_or_else(bad)?
                .parse()
                .map_err(|_| bad())?;
            let after = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
            (name, Trigger::After(after))
        }
        (None, None) => (entry, Trigger::Always),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(malformed());
    }
    let kind = FaultKind::ALL
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(k, _)| *k)
        .ok_or_else(|| FaultParseError::UnknownFault {
            name: name.to_owned(),
            entry: entry.to_owned(),
        })?;
    Ok(Armed {
        kind,
        trigger,
        fired: false,
    })
}

impl FromStr for FaultPlan {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut plan = Self::none();
        if s.trim().is_empty() {
            return Ok(plan);
        }
        for entry in s.split(',') {
            plan.armed.push(parse_entry(entry.trim())?);
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_at_their_index() {
        for (i, (kind, _)) in FaultKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }

    #[test]
    fn parses_the_documented_example() {
        let plan: FaultPlan = "gpu_oom,render_nan:0.3,render_error:0.5,device_lost@20s"
            .parse()
            .expect("valid");
        assert!(plan.has(FaultKind::GpuOom));
        assert!(plan.has(FaultKind::RenderNan));
        assert!(plan.has(FaultKind::RenderError));
        assert!(plan.has(FaultKind::DeviceLost));
        assert!(!plan.has(FaultKind::ShaderError));
        assert_eq!(
            plan.armed[3].trigger,
            Trigger::After(Duration::from_secs(20))
        );
        assert!("".parse::<FaultPlan>().expect("empty").is_empty());
    }

    #[test]
    fn rejects_bad_specs_clearly() {
        for (spec, want) in [
            ("gpu_boom", "unknown fault"),
            ("render_nan:1.5", "bad probability"),
            ("render_nan:x", "bad probability"),
            ("device_lost@20", "bad time"),
            ("device_lost@-3s", "bad time"),
            ("render_nan:0.5@2s", "malformed"),
            ("gpu_oom,,render_nan", "malformed"),
        ] {
            let e = spec.parse::<FaultPlan>().expect_err(spec).to_string();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn triggers_fire_as_specified() {
        let mut plan: FaultPlan = "render_error,render_nan:0.5,device_lost@0s,gpu_oom@3600s"
            .parse()
            .expect("valid");
        assert!((0..10).all(|_| plan.fire(FaultKind::RenderError)));
        let hits = (0..1000)
            .filter(|_| plan.fire(FaultKind::RenderNan))
            .count();
        assert!((400..600).contains(&hits), "{hits}");
        assert!(plan.fire(FaultKind::DeviceLost));
        assert!(!plan.fire(FaultKind::DeviceLost), "an @ fault fires once");
        assert!(!plan.fire(FaultKind::GpuOom), "not yet");
        assert!(!plan.fire(FaultKind::ShaderError));
    }
}
