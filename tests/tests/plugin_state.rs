//! Corrupt or foreign state given to the built `Auralis.clap`: the instance keeps
//! working with the default parameters, and the plugin says so in its log (the
//! log goes to the file named by `NICE_LOG`, set before the plugin is loaded; this
//! file holds one test so that nothing loads it earlier in this process).

use auralis::rng::Rng;
use auralis_tests::clap_host::{max_diff, peak, Ev, Plugin, Transport};
use auralis_tests::state::framed;

const HOST: Transport = Transport {
    playing: true,
    beat: 0.0,
    bpm: 60.0,
};

fn assert_defaults(plugin: &mut Plugin, what: &str) {
    for p in plugin.params() {
        let v = plugin.value(p.id);
        assert!(
            (v - p.default).abs() < 1e-6,
            "{what}: {} is {v}, not its default {}",
            p.name,
            p.default
        );
    }
}

fn render(plugin: &mut Plugin) -> [Vec<f32>; 2] {
    plugin.activate(16_000.0, 512, true);
    let out = plugin.render(64_000, 512, &[], Some(HOST));
    assert!(out[0].iter().chain(&out[1]).all(|x| x.is_finite()));
    assert!(peak(&out[0]) > 0.01, "silent");
    out
}

#[test]
fn corrupt_and_foreign_state_load_as_defaults_with_a_log_line() {
    let log = std::env::temp_dir().join(format!("auralis-state-{}.log", std::process::id()));
    // SAFETY (of the process environment): set before any other thread of this
    // test binary exists and before the plugin reads it.
    std::env::set_var("NICE_LOG", &log);

    let mut reference = Plugin::new();
    let defaults = render(&mut reference);

    let mut rng = Rng::new(99);
    let random: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    let garbage_json = framed(&String::from_utf8_lossy(&random[..1000]));
    let foreign = framed(
        r#"{"version":"3.1.4","params":{"cutoff":{"f32":1200.0},"gain":{"f32":-30.0}},"fields":{}}"#,
    );
    let cases: [(&str, &[u8], bool); 4] = [
        ("random bytes", &random, false),
        ("a framed non-JSON state", &garbage_json, false),
        ("another plugin's state", &foreign, true),
        ("nothing", &[], false),
    ];
    for (what, bytes, accepted) in cases {
        // A fresh instance: the state is refused or becomes defaults, and it plays
        // exactly what an instance that never saw it plays.
        let mut fresh = Plugin::new();
        assert_eq!(fresh.load(bytes), accepted, "{what}");
        assert_defaults(&mut fresh, what);
        let out = render(&mut fresh);
        assert_eq!(max_diff(&out[0], &defaults[0]), 0.0, "{what}");
    }

    // An instance with changed parameters given another plugin's state: defaults.
    let mut used = Plugin::new();
    used.activate(16_000.0, 512, true);
    let gain = used.param("Master gain").id;
    let preset = used.param("Preset").id;
    used.render(
        512,
        512,
        &[Ev::Param(gain, 0.5, 0), Ev::Param(preset, 2.0, 0)],
        Some(HOST),
    );
    assert!(used.load(&foreign));
    assert_defaults(&mut used, "foreign state over changed parameters");
    render(&mut used);

    drop((reference, used));
    let text = std::fs::read_to_string(&log).expect("the plugin's log file");
    std::fs::remove_file(&log).expect("remove the log file");
    assert!(
        text.contains("not Auralis's"),
        "no line about the foreign state in:\n{text}"
    );
    assert!(
        text.contains("Failed to load state"),
        "no line about the corrupt state in:\n{text}"
    );
}
