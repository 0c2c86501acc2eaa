//! MIDI out through the built `Auralis.clap` (debug, `assert_process_allocs`:
//! an allocation in `process()` aborts): the note events are the phrase's
//! chords, melody and percussion at their sample positions on their channels,
//! the audio does not change, and every note-on gets its note-off across a
//! seek, a stop, a preset change, switching MIDI out off and a deactivation.

use std::collections::BTreeMap;

use auralis::compose::phrase::{ComposeParams, PercKind};
use auralis::compose::presets::PRESETS;
use auralis::compose::Composer;
use auralis::render::notes::percussion_key;
use auralis_tests::clap_host::{max_diff, peak, Ev, OutNote, Plugin, Transport};

const RATE: f64 = 48_000.0;
const BLOCK: usize = 480;

const HOST_60: Transport = Transport {
    playing: true,
    beat: 0.0,
    bpm: 60.0,
};

/// A note-on: (frame, channel, key).
type On = (u64, u16, u16);

/// The note-ons the phrases `0..phrases` of the default piece (seed 1, the
/// focus preset at `bpm`) make, starting before frame `end`, on channels 1, 2
/// and 10 (0, 1 and 9).
fn expected_ons(bpm: f32, phrases: u64, end: u64) -> Vec<On> {
    let params = ComposeParams {
        bpm,
        ..PRESETS[0].compose
    };
    let composer = Composer::new(1, params);
    let spb = RATE * 60.0 / f64::from(bpm);
    let mut ons = Vec::new();
    let mut start = 0u64;
    for k in 0..phrases {
        let phrase = composer.seek(k);
        let at = |beat: f64| start + (beat * spb).round() as u64;
        for c in &phrase.chords {
            ons.extend(
                c.chord
                    .notes()
                    .iter()
                    .map(|&n| (at(c.start_beat), 0, u16::from(n))),
            );
        }
        ons.extend(
            phrase
                .melody
                .iter()
                .map(|n| (at(n.start_beat), 1, u16::from(n.note))),
        );
        ons.extend(
            phrase
                .percussion
                .iter()
                .map(|p| (at(p.start_beat), 9, u16::from(percussion_key(p.kind)))),
        );
        start += (phrase.beats() * spb).round() as u64;
    }
    ons.retain(|&(frame, _, _)| frame < end);
    ons.sort_unstable();
    ons
}

fn ons(notes: &[OutNote]) -> Vec<On> {
    let mut ons: Vec<On> = notes
        .iter()
        .filter(|n| n.velocity.is_some())
        .map(|n| (n.frame, n.channel, n.key))
        .collect();
    ons.sort_unstable();
    ons
}

/// Checks that no key is started twice without a note-off between or stopped
/// while silent; returns what sounds at the end, with the frame it started.
fn check_pairs(notes: &[OutNote]) -> BTreeMap<(u16, u16), u64> {
    let mut sounding = BTreeMap::new();
    let mut last = 0;
    for n in notes {
        assert!(n.frame >= last, "events out of order at {n:?}");
        last = n.frame;
        let key = (n.channel, n.key);
        if n.velocity.is_some() {
            let before = sounding.insert(key, n.frame);
            assert_eq!(before, None, "{n:?} while the key sounds");
        } else {
            assert!(sounding.remove(&key).is_some(), "{n:?} ends a silent key");
        }
    }
    sounding
}

/// Every note sounding before the block starting at `frame` (at least one)
/// ends at that frame, before anything else happens to its key.
fn assert_all_end_at(notes: &[OutNote], frame: u64, what: &str) {
    let before: Vec<OutNote> = notes
        .iter()
        .copied()
        .filter(|n| n.block_start < frame)
        .collect();
    let sounding = check_pairs(&before);
    assert!(!sounding.is_empty(), "{what}: nothing sounded before it");
    for &(channel, key) in sounding.keys() {
        let first = notes
            .iter()
            .find(|n| n.block_start >= frame && (n.channel, n.key) == (channel, key))
            .unwrap_or_else(|| panic!("{what}: {channel}/{key} never ends"));
        assert!(
            first.velocity.is_none() && first.frame == frame,
            "{what}: {channel}/{key} goes on with {first:?}"
        );
    }
}

fn midi_on(plugin: &mut Plugin) -> Ev {
    Ev::Param(plugin.param("MIDI out").id, 1.0, 0)
}

/// Offline at 48 kHz with a host at 60 BPM from beat 0, MIDI out switched on
/// in the first block: 70 s, two phrases and a bit.
#[test]
fn the_notes_are_the_phrases_chords_melody_and_percussion_at_their_frames() {
    let frames = 70 * RATE as usize;
    let mut plugin = Plugin::new();
    plugin.activate(RATE, BLOCK as u32, true);
    let on = midi_on(&mut plugin);
    let audio = plugin.render(frames, BLOCK, &[on], Some(HOST_60));
    let notes = plugin.take_out_notes();
    let got = ons(&notes);
    let expected = expected_ons(60.0, 3, frames as u64);
    assert!(
        expected.iter().any(|o| o.1 == 1),
        "the piece has no melody to check"
    );
    assert_eq!(got, expected, "the note-ons differ from the phrases'");
    check_pairs(&notes);

    // The audio is what it is with MIDI out off.
    let mut plain = Plugin::new();
    plain.activate(RATE, BLOCK as u32, true);
    let without = plain.render(frames, BLOCK, &[], Some(HOST_60));
    assert!(
        plain.take_out_notes().is_empty(),
        "MIDI out is off by default"
    );
    assert_eq!(max_diff(&audio[0], &without[0]), 0.0);
    assert_eq!(max_diff(&audio[1], &without[1]), 0.0);
    assert!(peak(&audio[0]) > 0.01);
}

/// The channel parameters move each part (a kick, if the piece has one, on
/// the percussion channel).
#[test]
fn the_channel_parameters_move_the_parts() {
    let mut plugin = Plugin::new();
    plugin.activate(RATE, BLOCK as u32, true);
    let mut events = vec![midi_on(&mut plugin)];
    // CLAP carries a stepped parameter as its steps above the minimum: 4 is
    // channel 5.
    for (name, channel) in [
        ("Chord MIDI channel", 5.0),
        ("Melody MIDI channel", 6.0),
        ("Percussion MIDI channel", 16.0),
    ] {
        events.push(Ev::Param(plugin.param(name).id, channel - 1.0, 0));
    }
    let frames = 40 * RATE as usize;
    plugin.render(frames, BLOCK, &events, Some(HOST_60));
    let moved = ons(&plugin.take_out_notes());
    let remap = |c: u16| match c {
        0 => 4,
        1 => 5,
        _ => 15,
    };
    let expected: Vec<On> = {
        let mut e: Vec<On> = expected_ons(60.0, 2, frames as u64)
            .into_iter()
            .map(|(f, c, k)| (f, remap(c), k))
            .collect();
        e.sort_unstable();
        e
    };
    assert_eq!(moved, expected);
    let kick = u16::from(percussion_key(PercKind::Kick));
    assert!(moved
        .iter()
        .all(|&(_, c, k)| c != 15 || k == kick || k == 49));
}

/// A seek, a stop, a preset change and MIDI out switched off each end every
/// sounding note at the block where they happen; a deactivation ends them at
/// the first block after the next activation. A seek starts the chord there at
/// once, so each of these is preceded by one and has notes to end.
#[test]
fn every_note_on_gets_its_note_off_across_a_seek_a_stop_a_preset_change_and_a_deactivation() {
    let mut plugin = Plugin::new();
    plugin.activate(RATE, BLOCK as u32, true);
    let on = midi_on(&mut plugin);
    let preset = plugin.param("Preset").id;
    let midi = plugin.param("MIDI out").id;
    let block_at = |s: f64| (s * RATE) as u64 / BLOCK as u64 * BLOCK as u64;
    let (seek_at, stop_at, play_at, preset_at, off_at, back_on_at, end) = (
        block_at(10.5),
        block_at(21.0),
        block_at(23.0),
        block_at(31.2),
        block_at(41.7),
        block_at(44.0),
        block_at(52.0),
    );
    // Where the host's song position jumps to (playing again is one of them).
    let jumps = [
        (seek_at, 32.0 * 3.0 + 5.0),
        (play_at, 32.0 * 9.0 + 17.0),
        (block_at(38.0), 32.0 * 2.0 + 1.0),
        (block_at(48.0), 32.0 * 6.0 + 9.0),
    ];
    let mut beat = 0.0;
    let blocks: Vec<(usize, Vec<Ev>, Option<Transport>)> = (0..end / BLOCK as u64)
        .map(|b| {
            let frame = b * BLOCK as u64;
            let mut events = Vec::new();
            if frame == 0 {
                events.push(on);
            }
            if let Some(&(_, to)) = jumps.iter().find(|j| j.0 == frame) {
                beat = to;
            }
            if frame == preset_at {
                events.push(Ev::Param(preset, 3.0, 0));
            }
            if frame == off_at {
                events.push(Ev::Param(midi, 0.0, 0));
            }
            if frame == back_on_at {
                events.push(Ev::Param(midi, 1.0, 0));
            }
            let playing = !(stop_at..play_at).contains(&frame);
            let t = Transport {
                playing,
                beat,
                ..HOST_60
            };
            if playing {
                beat += BLOCK as f64 / RATE;
            }
            (BLOCK, events, Some(t))
        })
        .collect();
    plugin.run(blocks.into_iter(), |_, _| {});
    let notes = plugin.take_out_notes();
    let left = check_pairs(&notes);
    assert_all_end_at(&notes, seek_at, "the seek");
    assert_all_end_at(&notes, stop_at, "the stop");
    assert_all_end_at(&notes, preset_at, "the preset change");
    assert_all_end_at(&notes, off_at, "MIDI out off");
    assert!(
        notes
            .iter()
            .all(|n| !(off_at + 1..back_on_at).contains(&n.frame)),
        "notes while MIDI out is off"
    );
    assert!(!left.is_empty(), "nothing sounds at the end");
    // Notes started while the transport stood are ended by the jump on playing
    // again, if any started.
    let stood: Vec<OutNote> = notes
        .iter()
        .copied()
        .filter(|n| n.block_start < play_at)
        .collect();
    for &(channel, key) in check_pairs(&stood).keys() {
        let next = notes
            .iter()
            .find(|n| n.block_start >= play_at && (n.channel, n.key) == (channel, key));
        assert!(
            next.is_some_and(|n| n.velocity.is_none() && n.frame == play_at),
            "{channel}/{key} goes on after the jump: {next:?}"
        );
    }

    // Deactivated with notes sounding: the next activation's first block ends them.
    plugin.deactivate();
    plugin.activate(RATE, BLOCK as u32, true);
    plugin.render(BLOCK, BLOCK, &[], Some(HOST_60));
    let after = plugin.take_out_notes();
    let ended: Vec<(u16, u16)> = after
        .iter()
        .filter(|n| n.velocity.is_none() && n.frame == 0)
        .map(|n| (n.channel, n.key))
        .collect();
    for key in left.keys() {
        assert!(ended.contains(key), "{key:?} hangs across the deactivation");
    }
    assert_eq!(ended.len(), left.len(), "{ended:?} vs {left:?}");
}
