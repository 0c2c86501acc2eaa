//! Nonsense from the host's transport: a tempo of zero, negative, infinite or NaN
//! while the transport plays. The plugin (created in process from its own CLAP
//! entry) ignores a tempo it cannot use, and the song position with it, and plays
//! exactly what it plays with no transport at all: finite, audible music. (CLAP
//! carries song positions in fixed point, so a NaN position cannot reach the
//! plugin; `host_sync`'s unit tests give the follower one directly.) Any sample
//! rate from 1 kHz to 768 kHz plays; others are refused.

use auralis_tests::clap_host::{linked_entry, max_diff, peak, Plugin, Transport};

const RATE: f64 = 16_000.0;
const FRAMES: usize = 32_000;

fn render(transport: Option<Transport>) -> [Vec<f32>; 2] {
    let mut plugin = Plugin::with_entry(linked_entry());
    plugin.activate(RATE, 512, true);
    let out = plugin.render(FRAMES, 512, &[], transport);
    assert!(
        out[0].iter().chain(&out[1]).all(|x| x.is_finite()),
        "{transport:?}: non-finite output"
    );
    assert!(peak(&out[0]) > 0.01, "{transport:?}: silent");
    out
}

#[test]
fn a_nonsense_host_tempo_is_ignored() {
    let free = render(None);
    let nonsense = [
        (0.0, 0.0),
        (-120.0, 0.0),
        (f64::NAN, 0.0),
        (f64::INFINITY, 0.0),
        (f64::NEG_INFINITY, 4.0),
    ];
    for (bpm, beat) in nonsense {
        let transport = Transport {
            playing: true,
            beat,
            bpm,
        };
        let out = render(Some(transport));
        for (a, b) in out.iter().zip(&free) {
            assert_eq!(max_diff(a, b), 0.0, "{transport:?} changed the music");
        }
    }
}

/// Every rate clap-validator tries, and the ends of the range, in real time:
/// finite, at most 0 dBFS, audible within 2 s. Outside the range activation
/// is refused (and the plugin still activates at a good rate afterwards).
#[test]
fn any_rate_from_1_khz_to_768_khz_plays_and_others_are_refused() {
    let mut plugin = Plugin::with_entry(linked_entry());
    let rates = [
        1_000.0,
        1_234.567_8,
        8_000.0,
        12_345.678,
        22_050.0,
        44_100.0,
        45_678.901,
        48_000.0,
        88_200.0,
        96_000.0,
        123_456.78,
        192_000.0,
        384_000.0,
        768_000.0,
    ];
    for rate in rates {
        plugin.activate(rate, 1024, false);
        let frames = (2.0 * rate) as usize;
        let out = plugin.render(frames, 1024, &[], None);
        for channel in &out {
            assert!(
                channel.iter().all(|x| x.is_finite()),
                "{rate} Hz: non-finite"
            );
            let p = peak(channel);
            assert!(p > 1e-3 && p <= 1.0, "{rate} Hz: peak {p}");
        }
    }
    for rate in [999.0, 500.0, 800_000.0, 1e9] {
        assert!(
            !plugin.try_activate(rate, 1024, false),
            "{rate} Hz was accepted"
        );
    }
    plugin.activate(44_100.0, 1024, false);
    assert!(peak(&plugin.render(88_200, 1024, &[], None)[0]) > 1e-3);
}
