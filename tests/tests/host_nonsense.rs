//! Nonsense from the host's transport: a tempo of zero, negative, infinite or NaN
//! while the transport plays. The plugin (created in process from its own CLAP
//! entry) ignores a tempo it cannot use, and the song position with it, and plays
//! exactly what it plays with no transport at all: finite, audible music. (CLAP
//! carries song positions in fixed point, so a NaN position cannot reach the
//! plugin; `host_sync`'s unit tests give the follower one directly.)

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
