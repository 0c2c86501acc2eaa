//! The degradation state machine: four quality levels driven by the engine's own
//! danger, with the seed's thresholds, immediate escalation and held, hysteretic
//! recovery; machine and process CPU alone thin the music at most.
//!
//! | level | danger | quality ([`Level::profile`]) |
//! |---|---|---|
//! | normal | < 60 % | full |
//! | high_load | 60–80 %, or CPU ≥ the ceiling for the hold time | fewer melody notes, fewer partials |
//! | critical | 80–95 % | chords only, cheapest pad |
//! | overload | > 95 % | replay the last good phrase as a loop |
//!
//! Two numbers feed it ([`Load`]): the *danger*, the worst of the engine's own
//! deadline risks (its audio thread's load, the texture margin, the texture
//! failure rate), and the *CPU*, the busier of the machine and this process. The
//! danger may take the level anywhere. The CPU only counts once it has stayed at
//! or above [`DegradeConfig::cpu_ceiling_pct`] for [`DegradeConfig::hold_s`], and
//! then raises the level to `high_load` at most: a busy neighbour (a build, a
//! freewheeling DAW) never loops a phrase, drops the melody or silences anything.
//!
//! [`step`] is a pure function `(state, load, now, config) -> (state, change)`, so it
//! is tested with recorded traces. The level rises at once (to whatever level the
//! danger is in, possibly several at a time) and falls one level at a time, only
//! after the danger has stayed at least [`DegradeConfig::hysteresis`] points below
//! the current level's lower bound for [`DegradeConfig::hold_s`] seconds (and, to
//! leave `high_load`, the CPU as far below its ceiling). A pinned level is
//! reported as is and never changed.

use crate::compose::phrase::{ComposeParams, Phrase};

mod level;
pub mod monitor;

pub use level::{Level, LevelProfile, TextureDetail, HIGH_LOAD_INTENSITY_CAP};

/// Default [`DegradeConfig::cpu_ceiling_pct`].
pub const DEFAULT_CPU_CEILING_PCT: f32 = 80.0;

/// Tuning of the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegradeConfig {
    /// Seconds the load must stay low before the level falls one step, and that
    /// the CPU must stay at its ceiling before it counts (default 10).
    pub hold_s: f64,
    /// Points below a level's lower bound (or the CPU ceiling) that count as low
    /// (default 10).
    pub hysteresis: f32,
    /// Machine or process CPU, percent, at or above which (held for
    /// [`DegradeConfig::hold_s`]) the level rises to `high_load` and no further
    /// (default [`DEFAULT_CPU_CEILING_PCT`]).
    pub cpu_ceiling_pct: f32,
    /// A level chosen by the user: reported, never changed by load.
    pub pin: Option<Level>,
}

impl Default for DegradeConfig {
    fn default() -> Self {
        Self {
            hold_s: 10.0,
            hysteresis: 10.0,
            cpu_ceiling_pct: DEFAULT_CPU_CEILING_PCT,
            pin: None,
        }
    }
}

/// One sample of what the machine is fed, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    /// The engine's own danger, 0–100 % (more when the audio thread overruns;
    /// non-finite counts as overload).
    pub danger_pct: f32,
    /// The busier of machine and process CPU, 0–100 % (non-finite counts as at
    /// the ceiling).
    pub cpu_pct: f32,
}

/// The machine's state.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DegradeState {
    /// The level in force.
    pub level: Level,
    /// Since when (seconds) the load has stayed low enough to step down.
    pub low_since: Option<f64>,
    /// Since when (seconds) the CPU has stayed at or above its ceiling.
    pub cpu_high_since: Option<f64>,
}

/// What made a level change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The engine's own danger.
    Danger,
    /// A step down: danger (and CPU) low for the hold time.
    Calm,
    /// Machine or process CPU, held at the ceiling (rises to `high_load` only).
    Cpu,
    /// The user's pin.
    Pin,
}

/// A change of level and the load that caused it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// The level before.
    pub from: Level,
    /// The level after.
    pub to: Level,
    /// The load (percent) of the input that caused it: the CPU for a rise the
    /// CPU made, else the danger.
    pub load: f32,
    /// What caused it.
    pub cause: Cause,
}

impl Load {
    /// Whether the CPU is at or above the ceiling (a non-finite reading is).
    fn cpu_hot(self, config: &DegradeConfig) -> bool {
        !self.cpu_pct.is_finite() || self.cpu_pct >= config.cpu_ceiling_pct
    }

    /// Whether the load is low enough, with hysteresis, to leave `level`: the
    /// danger well under its lower bound and, to leave `high_load`, the CPU well
    /// under its ceiling.
    fn calm_for(self, level: Level, config: &DegradeConfig) -> bool {
        let danger_low = self.danger_pct.is_finite()
            && self.danger_pct <= level.lower_bound() - config.hysteresis;
        let cpu_low = level > Level::HighLoad
            || (self.cpu_pct.is_finite()
                && self.cpu_pct <= config.cpu_ceiling_pct - config.hysteresis);
        danger_low && cpu_low
    }
}

/// One sample of the machine: the new state and the change, if the level changed.
/// `now_s` is a monotonic time in seconds.
#[must_use]
pub fn step(
    state: DegradeState,
    load: Load,
    now_s: f64,
    config: &DegradeConfig,
) -> (DegradeState, Option<Transition>) {
    let cpu_high_since = load
        .cpu_hot(config)
        .then(|| state.cpu_high_since.unwrap_or(now_s));
    let settled = |level: Level| DegradeState {
        level,
        low_since: None,
        cpu_high_since,
    };
    let change = |to: Level, cause: Cause| {
        (to != state.level).then_some(Transition {
            from: state.level,
            to,
            load: if cause == Cause::Cpu {
                load.cpu_pct
            } else {
                load.danger_pct
            },
            cause,
        })
    };
    if let Some(pin) = config.pin {
        return (settled(pin), change(pin, Cause::Pin));
    }
    let danger_level = Level::for_load(load.danger_pct);
    let cpu_held = cpu_high_since.is_some_and(|since| now_s - since >= config.hold_s);
    let cpu_level = if cpu_held {
        Level::HighLoad
    } else {
        Level::Normal
    };
    let here = danger_level.max(cpu_level);
    if here > state.level {
        let cause = if danger_level >= cpu_level {
            Cause::Danger
        } else {
            Cause::Cpu
        };
        return (settled(here), change(here, cause));
    }
    let Some(lower) = state.level.below() else {
        return (settled(Level::Normal), None);
    };
    if !load.calm_for(state.level, config) {
        return (settled(state.level), None);
    }
    let since = state.low_since.unwrap_or(now_s);
    if now_s - since >= config.hold_s {
        // One level down; the next step down needs its own full hold, which
        // starts now if the load is already low enough for it.
        let next = DegradeState {
            level: lower,
            low_since: (lower.below().is_some() && load.calm_for(lower, config)).then_some(now_s),
            cpu_high_since,
        };
        (next, change(lower, Cause::Calm))
    } else {
        let held = DegradeState {
            low_since: Some(since),
            ..settled(state.level)
        };
        (held, None)
    }
}

/// The parameters a phrase is composed with at `level`: the intensity capped at
/// the level's [`LevelProfile::intensity_cap`] (fewer melody notes, sparser
/// percussion).
#[must_use]
pub fn shape_params(level: Level, params: ComposeParams) -> ComposeParams {
    match level.profile().intensity_cap {
        Some(cap) => ComposeParams {
            intensity: params.intensity.min(cap),
            ..params
        },
        None => params,
    }
}

/// Thins a composed phrase for `level`: the melody and percussion go where the
/// level's profile does not allow them (from `critical` on only the chords remain).
pub fn thin_phrase(level: Level, phrase: &mut Phrase) {
    let profile = level.profile();
    if !profile.melody {
        phrase.melody.clear();
    }
    if !profile.percussion {
        phrase.percussion.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs a trace of `(time_s, load)` samples and returns the level after each.
    fn trace(samples: &[(f64, f32)], config: &DegradeConfig) -> Vec<Level> {
        let mut state = DegradeState::default();
        samples
            .iter()
            .map(|&(t, load)| {
                state = step(state, danger(load), t, config).0;
                state.level
            })
            .collect()
    }

    /// A danger of `pct` with an idle CPU.
    fn danger(pct: f32) -> Load {
        Load {
            danger_pct: pct,
            cpu_pct: 0.0,
        }
    }

    fn every_second(loads: &[f32]) -> Vec<(f64, f32)> {
        loads
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as f64, l))
            .collect()
    }

    #[test]
    fn thresholds_are_the_seeds() {
        use Level::*;
        let cases = [
            (0.0, Normal),
            (59.9, Normal),
            (60.0, HighLoad),
            (79.9, HighLoad),
            (80.0, Critical),
            (95.0, Critical),
            (95.1, Overload),
            (400.0, Overload),
            (f32::NAN, Overload),
        ];
        for (load, level) in cases {
            assert_eq!(Level::for_load(load), level, "{load}");
        }
    }

    #[test]
    fn steps_up_at_once_even_several_levels() {
        let levels = trace(
            &every_second(&[10.0, 65.0, 99.0]),
            &DegradeConfig::default(),
        );
        assert_eq!(levels, [Level::Normal, Level::HighLoad, Level::Overload]);
    }

    #[test]
    fn comes_down_one_level_per_hold() {
        use Level::*;
        let mut loads = vec![99.0];
        loads.extend([5.0; 35]);
        let levels = trace(&every_second(&loads), &DegradeConfig::default());
        // t=0 overload; low from t=1; each step down needs 10 s of low load.
        assert_eq!(levels[0], Overload);
        assert_eq!(levels[10], Overload);
        assert_eq!(levels[11], Critical);
        assert_eq!(levels[20], Critical);
        assert_eq!(levels[21], HighLoad);
        assert_eq!(levels[31], Normal);
        assert_eq!(levels[35], Normal);
    }

    #[test]
    fn load_just_under_a_bound_does_not_recover() {
        // 75 % is below high_load's ceiling but not 10 points under its floor.
        let mut loads = vec![70.0];
        loads.extend([55.0; 60]);
        let levels = trace(&every_second(&loads), &DegradeConfig::default());
        assert!(levels.iter().all(|&l| l == Level::HighLoad));
    }

    #[test]
    fn oscillating_load_does_not_flap() {
        // Load swinging around 60 % every second: up once, never back down.
        let loads: Vec<f32> = (0..120)
            .map(|i| if i % 2 == 0 { 58.0 } else { 62.0 })
            .collect();
        let levels = trace(&every_second(&loads), &DegradeConfig::default());
        let changes = levels.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(changes, 1, "{levels:?}");
        assert_eq!(*levels.last().unwrap(), Level::HighLoad);
    }

    #[test]
    fn a_spike_restarts_the_hold() {
        let mut loads = vec![85.0];
        loads.extend([10.0; 8]);
        loads.push(75.0); // still critical's hold interrupted (75 > 70)
        loads.extend([10.0; 9]);
        let levels = trace(&every_second(&loads), &DegradeConfig::default());
        assert!(levels.iter().all(|&l| l == Level::Critical), "{levels:?}");
    }

    #[test]
    fn pin_holds_whatever_the_load() {
        let config = DegradeConfig {
            pin: Some(Level::Critical),
            ..DegradeConfig::default()
        };
        let levels = trace(&every_second(&[0.0, 99.0, 50.0, 0.0]), &config);
        assert!(levels.iter().all(|&l| l == Level::Critical));
    }

    #[test]
    fn transitions_name_the_cause() {
        let (s, t) = step(
            DegradeState::default(),
            danger(90.0),
            0.0,
            &DegradeConfig::default(),
        );
        assert_eq!(s.level, Level::Critical);
        assert_eq!(
            t,
            Some(Transition {
                from: Level::Normal,
                to: Level::Critical,
                load: 90.0,
                cause: Cause::Danger,
            })
        );
        assert_eq!(
            step(s, danger(90.0), 1.0, &DegradeConfig::default()).1,
            None
        );
    }

    #[test]
    fn actions_follow_the_level() {
        use crate::compose::Composer;
        let params = ComposeParams {
            intensity: 0.9,
            ..ComposeParams::default()
        };
        assert_eq!(shape_params(Level::Normal, params), params);
        for level in [Level::HighLoad, Level::Critical, Level::Overload] {
            let shaped = shape_params(level, params);
            assert!((shaped.intensity - HIGH_LOAD_INTENSITY_CAP).abs() < f32::EPSILON);
            assert_eq!(shaped.bpm, params.bpm);
        }
        let composer = Composer::new(3, params);
        let full = composer.compose(0, None);
        let mut high = full.clone();
        thin_phrase(Level::HighLoad, &mut high);
        assert_eq!(high, full);
        let mut critical = full.clone();
        thin_phrase(Level::Critical, &mut critical);
        assert!(critical.melody.is_empty() && critical.percussion.is_empty());
        assert_eq!(critical.chords, full.chords);
        let sparse = Composer::new(3, shape_params(Level::HighLoad, params));
        let notes = |c: &Composer| {
            (0..50)
                .map(|k| c.compose(k, None).melody.len())
                .sum::<usize>()
        };
        assert!(notes(&sparse) < notes(&composer));
    }

    /// Runs `(time_s, danger, cpu)` samples; the level and cause after each.
    fn cpu_trace(samples: &[(f64, f32, f32)]) -> Vec<(Level, Option<Cause>)> {
        let config = DegradeConfig::default();
        let mut state = DegradeState::default();
        samples
            .iter()
            .map(|&(t, danger_pct, cpu_pct)| {
                let (next, change) = step(
                    state,
                    Load {
                        danger_pct,
                        cpu_pct,
                    },
                    t,
                    &config,
                );
                state = next;
                (state.level, change.map(|c| c.cause))
            })
            .collect()
    }

    #[test]
    fn a_busy_machine_alone_thins_the_music_after_the_hold_and_no_more() {
        // CPU pinned at 100 % for a minute, the engine itself at ease.
        let samples: Vec<_> = (0..60).map(|i| (f64::from(i), 5.0, 100.0)).collect();
        let levels = cpu_trace(&samples);
        assert!(
            levels[..10].iter().all(|(l, _)| *l == Level::Normal),
            "{levels:?}"
        );
        assert_eq!(levels[10], (Level::HighLoad, Some(Cause::Cpu)));
        assert!(levels[10..].iter().all(|(l, _)| *l == Level::HighLoad));
        // A reading that is not a number is as busy as the ceiling, no more.
        let nan: Vec<_> = (0..30).map(|i| (f64::from(i), 5.0, f32::NAN)).collect();
        assert!(cpu_trace(&nan).iter().all(|(l, _)| *l <= Level::HighLoad));
    }

    #[test]
    fn cpu_must_stay_at_the_ceiling_for_the_whole_hold() {
        // 9 s at the ceiling, one second under it, 9 s again: never long enough.
        let samples: Vec<_> = (0..19)
            .map(|i| (f64::from(i), 0.0, if i == 9 { 70.0 } else { 95.0 }))
            .collect();
        assert!(cpu_trace(&samples).iter().all(|(l, _)| *l == Level::Normal));
    }

    #[test]
    fn cpu_comes_down_with_hysteresis() {
        let mut samples: Vec<_> = (0..11).map(|i| (f64::from(i), 0.0, 100.0)).collect();
        // Just under the ceiling (not 10 points under it): stays thinned.
        samples.extend((11..40).map(|i| (f64::from(i), 0.0, 75.0)));
        // Well under it: back to normal after the hold.
        samples.extend((40..60).map(|i| (f64::from(i), 0.0, 30.0)));
        let levels = cpu_trace(&samples);
        assert!(levels[10..40].iter().all(|(l, _)| *l == Level::HighLoad));
        assert_eq!(levels[49].0, Level::HighLoad);
        assert_eq!(levels[50], (Level::Normal, Some(Cause::Calm)));
    }

    #[test]
    fn real_danger_rises_at_once_even_with_a_busy_machine() {
        let mut samples: Vec<_> = (0..12).map(|i| (f64::from(i), 5.0, 100.0)).collect();
        samples.push((12.0, 90.0, 100.0));
        samples.push((12.1, 99.0, 100.0));
        let levels = cpu_trace(&samples);
        assert_eq!(levels[12], (Level::Critical, Some(Cause::Danger)));
        assert_eq!(levels[13], (Level::Overload, Some(Cause::Danger)));
        // Calm danger, busy CPU: down to high_load, where the CPU keeps it.
        let mut calm = samples.clone();
        calm.extend((13..60).map(|i| (f64::from(i), 5.0, 100.0)));
        let levels = cpu_trace(&calm);
        assert_eq!(levels.last().map(|(l, _)| *l), Some(Level::HighLoad));
    }

    proptest! {
        /// Whatever the CPU does, with a calm engine the level never passes
        /// `high_load`, and reaches it only after a full hold at the ceiling.
        #[test]
        fn cpu_alone_never_passes_high_load(
            cpus in proptest::collection::vec(0.0f32..110.0, 1..200),
            dt in 0.1f64..3.0,
        ) {
            let config = DegradeConfig::default();
            let mut state = DegradeState::default();
            let mut hot_since: Option<f64> = None;
            for (i, &cpu) in cpus.iter().enumerate() {
                let now = i as f64 * dt;
                let before = state.level;
                hot_since = (cpu >= config.cpu_ceiling_pct).then(|| hot_since.unwrap_or(now));
                state = step(state, Load { danger_pct: 10.0, cpu_pct: cpu }, now, &config).0;
                prop_assert!(state.level <= Level::HighLoad);
                if state.level > before {
                    let since = hot_since.expect("a rise needs a hot CPU");
                    prop_assert!(now - since >= config.hold_s);
                }
            }
        }

        /// For any trace: a rise happens in the same sample the load crosses a
        /// bound, and every fall is preceded by a full hold of low load.
        #[test]
        fn never_skips_the_hold_and_always_rises(
            loads in proptest::collection::vec(0.0f32..110.0, 1..200),
            dt in 0.1f64..3.0,
        ) {
            let config = DegradeConfig::default();
            let mut state = DegradeState::default();
            let mut low_run_start: Option<f64> = None;
            for (i, &load) in loads.iter().enumerate() {
                let now = i as f64 * dt;
                let before = state.level;
                let low = load <= before.lower_bound() - config.hysteresis;
                if low { low_run_start.get_or_insert(now); } else { low_run_start = None; }
                state = step(state, danger(load), now, &config).0;
                let at_load = Level::for_load(load);
                if at_load > before {
                    prop_assert_eq!(state.level, at_load);
                }
                prop_assert!(state.level >= at_load.min(before));
                if state.level < before {
                    prop_assert_eq!(Some(state.level), before.below());
                    let start = low_run_start.expect("a fall needs low load");
                    prop_assert!(now - start >= config.hold_s);
                    // The next level's hold starts at the step, if the load allows.
                    low_run_start = (load <= state.level.lower_bound() - config.hysteresis)
                        .then_some(now);
                }
            }
        }
    }
}
