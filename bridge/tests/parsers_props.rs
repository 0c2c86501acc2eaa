//! Property tests of the bridge's parsers (the same ones the fuzz targets in
//! `fuzz/` drive): valid control messages round-trip through the parser in both
//! dialects, one bad field rejects the whole message and names that field, a
//! rejected message sent to a running bridge changes nothing, and the
//! configuration loader keeps every setting it accepts and names every one it
//! refuses. (`src/protocol.rs` holds the "never panics on any bytes" properties
//! of the protocol parsers.)

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use auralis::compose::theory::{Key, Mode};
use auralis_bridge::config::{Cli, Config, ConfigError, FileConfig};
use auralis_bridge::protocol::{
    parse_client_bytes, parse_client_text, ClientMessage, Dialect, ErrorCode, ParamUpdate,
};
use clap::Parser as _;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// A valid partial update: each field present or not, at least one present.
fn update_strategy() -> impl Strategy<Value = ParamUpdate> {
    (
        prop::option::of(0u8..12),
        prop::option::of(prop::sample::select(Mode::ALL.to_vec())),
        prop::option::of(20.0f32..=300.0),
        prop::option::of(0.0f32..=1.0),
    )
        .prop_filter("at least one field", |(k, m, b, i)| {
            k.is_some() || m.is_some() || b.is_some() || i.is_some()
        })
        .prop_map(|(key, mode, bpm, intensity)| ParamUpdate {
            key: key.map(Key::new),
            mode,
            bpm,
            intensity,
        })
}

/// The fields of `u` as a JSON object, spelling the key either way.
fn fields(u: &ParamUpdate, key_as_number: bool) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(k) = u.key {
        let v = if key_as_number {
            Value::from(k.pitch_class().to_string())
        } else {
            Value::from(k.name())
        };
        m.insert("key".into(), v);
    }
    if let Some(mode) = u.mode {
        m.insert("mode".into(), Value::from(mode.name()));
    }
    if let Some(b) = u.bpm {
        m.insert("bpm".into(), Value::from(f64::from(b)));
    }
    if let Some(i) = u.intensity {
        m.insert("intensity".into(), Value::from(f64::from(i)));
    }
    m
}

fn with_type(kind: &str, mut m: Map<String, Value>) -> String {
    m.insert("type".into(), Value::from(kind));
    Value::Object(m).to_string()
}

/// A field value that is wrong for `field`, and the error it must give.
fn poison() -> impl Strategy<Value = (&'static str, Value, ErrorCode)> {
    prop_oneof![
        (300.001f64..1e9).prop_map(|b| ("bpm", json!(b), ErrorCode::OutOfRange)),
        (-1e9f64..19.999).prop_map(|b| ("bpm", json!(b), ErrorCode::OutOfRange)),
        (1.0001f64..1e6).prop_map(|i| ("intensity", json!(i), ErrorCode::OutOfRange)),
        (-1e6f64..-0.0001).prop_map(|i| ("intensity", json!(i), ErrorCode::OutOfRange)),
        "[H-Zh-z][a-z]{0,6}".prop_map(|k| ("key", json!(k), ErrorCode::OutOfRange)),
        (128u32..1000).prop_map(|k| ("key", json!(k.to_string()), ErrorCode::OutOfRange)),
        (128i64..1_000_000).prop_map(|k| ("key", json!(k), ErrorCode::OutOfRange)),
        (-1_000_000i64..0).prop_map(|k| ("key", json!(k), ErrorCode::OutOfRange)),
        Just(("key", json!(true), ErrorCode::WrongType)),
        "[a-z]{8,12}".prop_map(|m| ("mode", json!(m), ErrorCode::OutOfRange)),
        Just(("bpm", json!("fast"), ErrorCode::WrongType)),
        Just(("intensity", json!([0.5]), ErrorCode::WrongType)),
        Just(("mode", Value::Null, ErrorCode::WrongType)),
        Just(("volume", json!(1), ErrorCode::UnknownField)),
        Just(("tempo", json!(70), ErrorCode::UnknownField)),
    ]
}

proptest! {
    #[test]
    fn valid_updates_round_trip_in_both_dialects(u in update_strategy(), as_number in any::<bool>()) {
        let text = with_type("update_params", fields(&u, as_number));
        for dialect in [Dialect::Native, Dialect::Compat] {
            let parsed = parse_client_bytes(text.as_bytes(), dialect);
            prop_assert_eq!(parsed, Ok(ClientMessage::UpdateParams(u)), "{}", text);
        }
        // The original server's shapes: flat, nested, or one parameter + value.
        let flat = with_type("control", fields(&u, as_number));
        prop_assert_eq!(parse_client_text(&flat, Dialect::Compat), Ok(ClientMessage::UpdateParams(u)));
        let nested = json!({"type": "control", "params": fields(&u, as_number)}).to_string();
        prop_assert_eq!(parse_client_text(&nested, Dialect::Compat), Ok(ClientMessage::UpdateParams(u)));
        for (name, value) in fields(&u, as_number) {
            let one = json!({"type": "parameter_change", "parameter": name, "value": value}).to_string();
            let Ok(ClientMessage::UpdateParams(single)) = parse_client_text(&one, Dialect::Compat) else {
                return Err(TestCaseError::fail(format!("{one} refused")));
            };
            prop_assert_eq!(single.is_empty(), false);
        }
    }

    /// A key as a MIDI note number, in any octave, is its pitch class, as a
    /// JSON number (what the original client sends) or as text.
    #[test]
    fn a_midi_key_number_is_its_pitch_class(note in 0u64..=127, as_text in any::<bool>()) {
        let key = if as_text { json!(note.to_string()) } else { json!(note) };
        let expected = ClientMessage::UpdateParams(ParamUpdate {
            key: Some(Key::new((note % 12) as u8)),
            mode: None,
            bpm: None,
            intensity: None,
        });
        let native = json!({"type": "update_params", "key": key}).to_string();
        prop_assert_eq!(parse_client_text(&native, Dialect::Native), Ok(expected.clone()));
        let control = json!({"type": "control", "key": key}).to_string();
        prop_assert_eq!(parse_client_text(&control, Dialect::Compat), Ok(expected));
    }

    #[test]
    fn one_bad_field_rejects_the_whole_message_and_is_named(
        u in update_strategy(),
        (field, bad, code) in poison(),
    ) {
        let mut m = fields(&u, false);
        m.insert(field.into(), bad);
        let text = with_type("update_params", m);
        for dialect in [Dialect::Native, Dialect::Compat] {
            let e = parse_client_text(&text, dialect).expect_err(&text);
            prop_assert_eq!(e.code, code, "{}", text);
            prop_assert_eq!(e.field.as_deref(), Some(field), "{}", text);
            prop_assert!(e.message.contains(field), "{}: {}", text, e.message);
        }
    }
}

/// One bridge shared by the cases below (started once, on its own runtime).
fn bridge() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let config = Config {
                    control_rate_per_s: 10_000.0,
                    ..common::config()
                };
                let running = common::start(config).await;
                tx.send(running.local_addr()).expect("report the address");
                // Serve until the test process ends.
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the bridge starts")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_rejected_control_message_changes_nothing(
        u in update_strategy(),
        (field, bad, _) in poison(),
    ) {
        let addr = bridge();
        let (_, before) = common::get_json(addr, "/api/status");
        let mut m = fields(&u, false);
        m.insert(field.into(), bad);
        let text = with_type("update_params", m);
        let (code, body) = common::http(addr, "POST", "/api/control", &[], &text);
        prop_assert_eq!(code, 400, "{} -> {}", text, body);
        let err: Value = serde_json::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&err["field"], field);
        let (_, after) = common::get_json(addr, "/api/status");
        prop_assert_eq!(&after["params"], &before["params"], "{}", text);
    }
}

/// A setting's name, a valid value for it (as TOML and as a flag), and one out of
/// range.
#[derive(Debug, Clone)]
struct Setting {
    name: &'static str,
    valid: String,
    invalid: String,
}

fn setting_strategy() -> impl Strategy<Value = Setting> {
    let s = |name: &'static str, valid: String, invalid: String| Setting {
        name,
        valid,
        invalid,
    };
    prop_oneof![
        (
            8_000u32..=192_000,
            prop_oneof![0u32..8_000, 192_001u32..1_000_000]
        )
            .prop_map(move |(v, b)| s("sample_rate", v.to_string(), b.to_string())),
        (20u32..=200, prop_oneof![0u32..20, 201u32..100_000]).prop_map(move |(v, b)| s(
            "chunk_ms",
            v.to_string(),
            b.to_string()
        )),
        (1usize..=100_000, 100_001usize..10_000_000).prop_map(move |(v, b)| s(
            "max_clients",
            v.to_string(),
            b.to_string()
        )),
        (1u32..=100, 101u32..100_000).prop_map(move |(v, b)| s(
            "missed_pongs",
            v.to_string(),
            b.to_string()
        )),
        (10u64..=600_000, 0u64..10).prop_map(move |(v, b)| s(
            "send_timeout_ms",
            v.to_string(),
            b.to_string()
        )),
        (2usize..=4096, 4097usize..1_000_000).prop_map(move |(v, b)| s(
            "client_queue",
            v.to_string(),
            b.to_string()
        )),
        (8u32..=65_536, 0u32..8).prop_map(move |(v, b)| s(
            "send_buffer_kb",
            v.to_string(),
            b.to_string()
        )),
        (0.1f64..=3600.0, 3600.5f64..1e12).prop_map(move |(v, b)| s(
            "heartbeat_s",
            format!("{v:?}"),
            format!("{b:?}")
        )),
        (0.1f64..=3600.0, -1e6f64..0.09).prop_map(move |(v, b)| s(
            "max_lag_s",
            format!("{v:?}"),
            format!("{b:?}")
        )),
        (0.0f64..=30.0, 30.5f64..1e12).prop_map(move |(v, b)| s(
            "burst_s",
            format!("{v:?}"),
            format!("{b:?}")
        )),
        (0.1f64..=3600.0, 3600.5f64..1e12).prop_map(move |(v, b)| s(
            "status_interval_s",
            format!("{v:?}"),
            format!("{b:?}")
        )),
        (0.01f64..=10_000.0, 10_000.5f64..1e12).prop_map(move |(v, b)| s(
            "control_rate",
            format!("{v:?}"),
            format!("{b:?}")
        )),
        (10.0f32..=100.0, 100.5f32..1e9).prop_map(move |(v, b)| s(
            "cpu_ceiling_pct",
            format!("{v:?}"),
            format!("{b:?}")
        )),
    ]
}

/// The loaded value of `name`, as text comparable with what was written.
fn loaded(c: &Config, name: &str) -> String {
    match name {
        "sample_rate" => c.sample_rate.to_string(),
        "chunk_ms" => c.chunk_ms.to_string(),
        "max_clients" => c.max_clients.to_string(),
        "missed_pongs" => c.missed_pongs.to_string(),
        "send_timeout_ms" => c.send_timeout.as_millis().to_string(),
        "client_queue" => c.client_queue.to_string(),
        "send_buffer_kb" => c.send_buffer_kb.to_string(),
        "heartbeat_s" => format!("{:?}", c.heartbeat.as_secs_f64()),
        "max_lag_s" => format!("{:?}", c.max_lag.as_secs_f64()),
        "status_interval_s" => format!("{:?}", c.status_interval.as_secs_f64()),
        "burst_s" => format!("{:?}", c.burst.as_secs_f64()),
        "control_rate" => format!("{:?}", c.control_rate_per_s),
        "cpu_ceiling_pct" => format!("{:?}", c.cpu_ceiling_pct),
        other => panic!("no setting {other}"),
    }
}

fn cli(args: &[String]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("auralis-bridge".to_owned()).chain(args.iter().cloned()))
}

fn close(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        // Durations keep nanoseconds: compare to that precision.
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

proptest! {
    #[test]
    fn config_text_never_panics(text in "\\PC{0,200}") {
        let _ = FileConfig::from_toml(&text);
    }

    #[test]
    fn config_toml_like_text_never_panics(
        name in prop::sample::select(vec!["port", "host", "sample_rate", "chunk_ms", "heartbeat_s", "preset", "log_dir", "seed", "degrade_on_cpu", "cpu_ceiling_pct", "zzz"]),
        value in prop::sample::select(vec!["1", "-1", "1e400", "nan", "inf", "\"x\"", "true", "[]", "{}", "18446744073709551616", "0.0", "\"\u{0}\""]),
    ) {
        if let Ok(file) = FileConfig::from_toml(&format!("{name} = {value}")) {
            let _ = Config::merge(&Cli::default(), &file);
        }
    }

    #[test]
    fn flags_never_panic(args in prop::collection::vec("\\PC{0,12}", 0..6)) {
        if let Ok(c) = cli(&args) {
            let _ = Config::merge(&c, &FileConfig::default());
        }
    }

    #[test]
    fn each_setting_round_trips_through_the_file_and_the_flag(s in setting_strategy()) {
        let file = FileConfig::from_toml(&format!("{} = {}", s.name, s.valid))
            .map_err(TestCaseError::fail)?;
        let from_file = Config::merge(&Cli::default(), &file).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(close(&loaded(&from_file, s.name), &s.valid), "{} = {}", s.name, s.valid);
        let flag = format!("--{}", s.name.replace('_', "-"));
        let c = cli(&[flag, s.valid.clone()]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let from_flag = Config::merge(&c, &FileConfig::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(close(&loaded(&from_flag, s.name), &s.valid));
    }

    #[test]
    fn an_out_of_range_setting_is_refused_by_name(s in setting_strategy()) {
        let file = FileConfig::from_toml(&format!("{} = {}", s.name, s.invalid))
            .map_err(TestCaseError::fail)?;
        match Config::merge(&Cli::default(), &file) {
            Err(ConfigError::Invalid { setting, reason }) => {
                prop_assert_eq!(setting, s.name);
                prop_assert!(!reason.is_empty());
            }
            other => return Err(TestCaseError::fail(format!("{} = {}: {other:?}", s.name, s.invalid))),
        }
    }
}

#[test]
fn a_mistyped_setting_is_refused_by_name() {
    let numbers = [
        "port",
        "sample_rate",
        "chunk_ms",
        "max_clients",
        "heartbeat_s",
        "missed_pongs",
        "send_timeout_ms",
        "max_lag_s",
        "client_queue",
        "control_rate",
        "send_buffer_kb",
        "status_interval_s",
        "burst_s",
        "seed",
        "degrade_on_cpu",
        "cpu_ceiling_pct",
    ];
    for name in numbers {
        let e = FileConfig::from_toml(&format!("{name} = \"lots\"")).expect_err(name);
        assert!(e.contains(name), "{name}: {e}");
        let flag = format!("--{}", name.replace('_', "-"));
        let e = cli(&[flag.clone(), "lots".into()]).expect_err(name);
        assert!(e.to_string().contains(&flag), "{flag}: {e}");
    }
    for name in ["host", "source", "preset", "control_token", "log_dir"] {
        let e = FileConfig::from_toml(&format!("{name} = 8")).expect_err(name);
        assert!(e.contains(name), "{name}: {e}");
    }
    let e = FileConfig::from_toml("colour = \"blue\"").expect_err("unknown setting");
    assert!(e.contains("colour"), "{e}");
    for token in ["short", "has a space in it", "tab\tinside-it"] {
        let file = FileConfig {
            control_token: Some(token.into()),
            ..FileConfig::default()
        };
        match Config::merge(&Cli::default(), &file) {
            Err(ConfigError::Invalid { setting, .. }) => assert_eq!(setting, "control_token"),
            other => panic!("{token:?}: {other:?}"),
        }
    }
}
