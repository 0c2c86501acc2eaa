//! Property tests of the plugin's state loader, driven the way a host drives it:
//! through the plugin's own CLAP state extension (nice-plug's wrapper, then
//! `filter_state`) on instances created in process from `auralis::clap_entry`
//! (the `plugin_state` fuzz target does the same with libFuzzer). Any bytes load
//! without a panic and leave every parameter finite and in range; a refused state
//! (corrupt, truncated) changes nothing; out-of-range or mistyped values stay in
//! range; a foreign state loads as the defaults; an Auralis state round-trips,
//! value for value and byte for byte.

use auralis::params::AuralisParams;
use auralis_tests::clap_host::{linked_entry, Plugin};
use auralis_tests::state::framed;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Every parameter's plain value, in the plugin's order.
fn values(plugin: &mut Plugin) -> Vec<f64> {
    plugin.params().iter().map(|p| plugin.value(p.id)).collect()
}

fn assert_in_range(plugin: &mut Plugin) -> Result<(), TestCaseError> {
    for p in plugin.params() {
        let v = plugin.value(p.id);
        prop_assert!(
            v.is_finite() && v >= p.min && v <= p.max,
            "{} is {v}, outside {}..={}",
            p.name,
            p.min,
            p.max
        );
    }
    Ok(())
}

fn defaults(plugin: &mut Plugin) -> Vec<f64> {
    plugin.params().iter().map(|p| p.default).collect()
}

const MODES: [&str; 6] = ["aeo", "dor", "phr", "lyd", "mix", "ion"];
const TEMPO_SOURCES: [&str; 2] = ["host", "int"];
const PRESETS: [&str; 5] = ["custom", "focus", "medit", "sleep", "bright"];
const PINS: [&str; 5] = ["auto", "normal", "high", "crit", "over"];

/// Auralis's parameters with in-range values: the state JSON, and the values the
/// plugin must then report by parameter name (over CLAP, nice-plug reports stepped
/// parameters as plain values, enums as their index, and continuous ones
/// normalised to 0–1).
fn auralis_state() -> impl Strategy<Value = (String, Vec<(&'static str, f64)>)> {
    let unit = || 0u32..=1000;
    (
        (
            0i32..=11,
            0usize..6,
            200u32..=3000,
            0usize..2,
            unit(),
            0usize..5,
        ),
        (0i32..=1_000_000, unit(), unit(), unit(), unit(), unit()),
        (-600i32..=60, 0usize..5),
    )
        .prop_map(
            |(
                (key, mode, bpm10, tsrc, int, pre),
                (seed, pad, mel, perc, rev, dly),
                (gain10, pin),
            )| {
                // Values on the parameters' step grids, so they load exactly.
                let bpm = f64::from(bpm10) / 10.0;
                let gain = f64::from(gain10) / 10.0;
                let u = |x: u32| f64::from(x) / 1000.0;
                let f = |x: f64| json!({ "f32": x as f32 });
                let state = json!({
                    "version": "0.1.0",
                    "params": {
                        "key": {"i32": key},
                        "mode": {"string": MODES[mode]},
                        "bpm": f(bpm),
                        "tsrc": {"string": TEMPO_SOURCES[tsrc]},
                        "int": f(u(int)),
                        "pre": {"string": PRESETS[pre]},
                        "seed": {"i32": seed},
                        "pad": f(u(pad)),
                        "mel": f(u(mel)),
                        "perc": f(u(perc)),
                        "rev": f(u(rev)),
                        "dly": f(u(dly)),
                        "gain": f(gain),
                        "qpin": {"string": PINS[pin]},
                    },
                    "fields": {"fmt": "\"auralis-1\""},
                });
                let expected = vec![
                    ("Key", f64::from(key)),
                    ("Mode", mode as f64),
                    ("BPM", (bpm - 20.0) / 280.0),
                    ("Tempo source", tsrc as f64),
                    ("Intensity", u(int)),
                    ("Preset", pre as f64),
                    ("Seed", f64::from(seed)),
                    ("Pad level", u(pad)),
                    ("Melody level", u(mel)),
                    ("Percussion level", u(perc)),
                    ("Reverb mix", u(rev)),
                    ("Delay mix", u(dly)),
                    ("Master gain", (gain + 60.0) / 66.0),
                    ("Quality", pin as f64),
                ];
                (state.to_string(), expected)
            },
        )
}

/// The framed state of a fresh instance whose parameters were loaded from `json`.
fn saved_after_loading(json: &str) -> Result<(Vec<u8>, Vec<f64>), TestCaseError> {
    let mut plugin = Plugin::with_entry(linked_entry());
    prop_assert!(plugin.load(&framed(json)), "refused: {json}");
    Ok((plugin.save(), values(&mut plugin)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_bytes_load_safely_and_a_refused_state_changes_nothing(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        frame_them in any::<bool>(),
    ) {
        let mut plugin = Plugin::with_entry(linked_entry());
        let before = values(&mut plugin);
        let input = if frame_them { framed(&String::from_utf8_lossy(&bytes)) } else { bytes };
        if !plugin.load(&input) {
            prop_assert_eq!(values(&mut plugin), before);
        }
        assert_in_range(&mut plugin)?;
    }

    #[test]
    fn an_auralis_state_loads_exactly_and_round_trips((json, expected) in auralis_state()) {
        let (saved, loaded) = saved_after_loading(&json)?;
        let mut plugin = Plugin::with_entry(linked_entry());
        let names: Vec<String> = plugin.params().into_iter().map(|p| p.name).collect();
        for (name, want) in expected {
            let i = names.iter().position(|n| n == name).ok_or_else(|| TestCaseError::fail(format!("no parameter {name}")))?;
            let got = loaded[i];
            prop_assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{}: {} != {}", name, got, want);
        }
        // Saved, then loaded into a fresh instance: the same values, the same bytes.
        let mut again = Plugin::with_entry(linked_entry());
        prop_assert!(again.load(&saved));
        prop_assert_eq!(values(&mut again), loaded);
        prop_assert_eq!(again.save(), saved);
    }

    #[test]
    fn a_truncated_state_is_refused_and_changes_nothing(
        (json, _) in auralis_state(),
        (other, _) in auralis_state(),
        cut in 0.0f64..1.0,
    ) {
        let mut plugin = Plugin::with_entry(linked_entry());
        prop_assert!(plugin.load(&framed(&other)));
        let before = values(&mut plugin);
        let whole = framed(&json);
        // Any strict prefix: inside the length, or inside the JSON.
        let end = ((whole.len() - 1) as f64 * cut) as usize;
        prop_assert!(!plugin.load(&whole[..end]), "a prefix of {} bytes loaded", end);
        prop_assert_eq!(&values(&mut plugin), &before);
        // A truncated JSON with a length that claims exactly what is there.
        let json_end = (json.len() as f64 * cut) as usize;
        prop_assert!(!plugin.load(&framed(&json[..json_end])));
        prop_assert_eq!(values(&mut plugin), before);
    }

    #[test]
    fn out_of_range_or_mistyped_values_leave_every_parameter_in_range(
        (json, _) in auralis_state(),
        id in prop::sample::select(AuralisParams::default_values().into_keys().collect::<Vec<_>>()),
        value in prop_oneof![
            any::<f32>().prop_filter("JSON numbers are finite", |v| v.is_finite()).prop_map(|v| json!({"f32": v})),
            any::<i32>().prop_map(|v| json!({"i32": v})),
            any::<bool>().prop_map(|v| json!({"bool": v})),
            "[a-z]{0,8}".prop_map(|v| json!({"string": v})),
        ],
    ) {
        let mut state: Value = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        state["params"][id.as_str()] = value;
        let mut plugin = Plugin::with_entry(linked_entry());
        let before = values(&mut plugin);
        if !plugin.load(&framed(&state.to_string())) {
            prop_assert_eq!(values(&mut plugin), before);
        }
        assert_in_range(&mut plugin)?;
    }

    #[test]
    fn a_foreign_state_loads_as_the_defaults(
        (json, _) in auralis_state(),
        id in "[a-z]{1,8}",
        marked in any::<bool>(),
    ) {
        let mut state: Value = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if marked {
            // Auralis's marker but a parameter it does not have.
            prop_assume!(!AuralisParams::default_values().contains_key(&id));
            state["params"][id.as_str()] = json!({"f32": 0.5});
        } else {
            // Our parameter ids without the marker: another plugin's state.
            state["fields"] = json!({});
        }
        let mut plugin = Plugin::with_entry(linked_entry());
        let (changed, _) = saved_after_loading(&json)?;
        prop_assert!(plugin.load(&changed));
        prop_assert!(plugin.load(&framed(&state.to_string())));
        let want = defaults(&mut plugin);
        prop_assert_eq!(values(&mut plugin), want);
    }
}
