//! The degradation state machine: four quality levels driven by load, with the
//! seed's thresholds, immediate escalation and held, hysteretic recovery.
//!
//! | level | load | quality ([`Level::profile`]) |
//! |---|---|---|
//! | normal | < 60 % | full |
//! | high_load | 60–80 % | fewer melody notes, fewer partials |
//! | critical | 80–95 % | chords only, cheapest pad |
//! | overload | > 95 % | replay the last good phrase as a loop |
//!
//! [`step`] is a pure function `(state, load, now, config) -> (state, change)`, so it
//! is tested with recorded traces. The level rises at once (to whatever level the
//! load is in, possibly several at a time) and falls one level at a time, only after
//! the load has stayed at least [`DegradeConfig::hysteresis`] points below the
//! current level's lower bound for [`DegradeConfig::hold_s`] seconds. A pinned level
//! is reported as is and never changed.

use crate::compose::phrase::{ComposeParams, Phrase};

mod level;
pub mod monitor;

pub use level::{Level, LevelProfile, TextureDetail, HIGH_LOAD_INTENSITY_CAP};

/// Tuning of the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegradeConfig {
    /// Seconds the load must stay low before the level falls one step (default 10).
    pub hold_s: f64,
    /// Points below a level's lower bound that count as low (default 10).
    pub hysteresis: f32,
    /// A level chosen by the user: reported, never changed by load.
    pub pin: Option<Level>,
}

impl Default for DegradeConfig {
    fn default() -> Self {
        Self {
            hold_s: 10.0,
            hysteresis: 10.0,
            pin: None,
        }
    }
}

/// The machine's state.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DegradeState {
    /// The level in force.
    pub level: Level,
    /// Since when (seconds) the load has stayed low enough to step down.
    pub low_since: Option<f64>,
}

/// A change of level and the load that caused it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// The level before.
    pub from: Level,
    /// The level after.
    pub to: Level,
    /// The effective load (percent) that caused it.
    pub load: f32,
}

impl DegradeState {
    /// At `level`, with no hold running.
    const fn settled(level: Level) -> Self {
        Self {
            level,
            low_since: None,
        }
    }
}

/// One sample of the machine: the new state and the change, if the level changed.
/// `load` is the effective load in percent, `now_s` a monotonic time in seconds.
#[must_use]
pub fn step(
    state: DegradeState,
    load: f32,
    now_s: f64,
    config: &DegradeConfig,
) -> (DegradeState, Option<Transition>) {
    let change = |to: Level| {
        (to != state.level).then_some(Transition {
            from: state.level,
            to,
            load,
        })
    };
    if let Some(pin) = config.pin {
        return (DegradeState::settled(pin), change(pin));
    }
    let here = Level::for_load(load);
    if here > state.level {
        return (DegradeState::settled(here), change(here));
    }
    let Some(lower) = state.level.below() else {
        return (DegradeState::default(), None);
    };
    let low = load.is_finite() && load <= state.level.lower_bound() - config.hysteresis;
    if !low {
        return (DegradeState::settled(state.level), None);
    }
    let since = state.low_since.unwrap_or(now_s);
    if now_s - since >= config.hold_s {
        // One level down; the next step down needs its own full hold, which
        // starts now if the load is already low enough for it.
        let still_low = load <= lower.lower_bound() - config.hysteresis;
        let next = DegradeState {
            level: lower,
            low_since: still_low.then_some(now_s),
        };
        (next, change(lower))
    } else {
        let held = DegradeState {
            level: state.level,
            low_since: Some(since),
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
                state = step(state, load, t, config).0;
                state.level
            })
            .collect()
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
            90.0,
            0.0,
            &DegradeConfig::default(),
        );
        assert_eq!(s.level, Level::Critical);
        assert_eq!(
            t,
            Some(Transition {
                from: Level::Normal,
                to: Level::Critical,
                load: 90.0
            })
        );
        assert_eq!(step(s, 90.0, 1.0, &DegradeConfig::default()).1, None);
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

    proptest! {
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
                state = step(state, load, now, &config).0;
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
