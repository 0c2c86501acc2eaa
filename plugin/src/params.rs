//! The plugin's host parameters. Their `#[id]`s (and the enum variants' ids) are
//! short, frozen and independent of the field names: hosts store automation and
//! projects by them. The defaults are the `focus` preset with seed 1, so a fresh
//! instance plays what `auralis-render` plays with no options.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::sync::RwLock;

use nice_plug::plugin::{ParamValue, PluginState};
use nice_plug::prelude::{
    BoolParam, Enum, EnumParam, FloatParam, FloatRange, IntParam, IntRange, Param, Params,
};

use crate::compose::mix::{MixLevels, MASTER_GAIN_DB_RANGE};
use crate::compose::phrase::{ComposeParams, BPM_RANGE};
use crate::compose::presets::PRESETS;
use crate::compose::theory::{Key, Mode};
use crate::degrade::Level;
use crate::midi_out::MidiChannels;

/// The value of the `fmt` persisted field: marks a state as Auralis's own.
pub const STATE_FORMAT: &str = "auralis-1";

/// Highest seed a host can set (the engine takes any `u64`; hosts prefer a short
/// integer range).
pub const MAX_SEED: i32 = 1_000_000;

/// The mode parameter's choices (frozen ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ModeChoice {
    /// Natural minor.
    #[id = "aeo"]
    Aeolian,
    /// Minor with a raised sixth.
    #[id = "dor"]
    Dorian,
    /// Minor with a lowered second.
    #[id = "phr"]
    Phrygian,
    /// Major with a raised fourth.
    #[id = "lyd"]
    Lydian,
    /// Major with a lowered seventh.
    #[id = "mix"]
    Mixolydian,
    /// Major.
    #[id = "ion"]
    Ionian,
}

impl ModeChoice {
    /// The engine's mode.
    #[must_use]
    pub const fn mode(self) -> Mode {
        match self {
            Self::Aeolian => Mode::Aeolian,
            Self::Dorian => Mode::Dorian,
            Self::Phrygian => Mode::Phrygian,
            Self::Lydian => Mode::Lydian,
            Self::Mixolydian => Mode::Mixolydian,
            Self::Ionian => Mode::Ionian,
        }
    }

    /// The choice for an engine mode.
    #[must_use]
    pub const fn from_mode(mode: Mode) -> Self {
        match mode {
            Mode::Aeolian => Self::Aeolian,
            Mode::Dorian => Self::Dorian,
            Mode::Phrygian => Self::Phrygian,
            Mode::Lydian => Self::Lydian,
            Mode::Mixolydian => Self::Mixolydian,
            Mode::Ionian => Self::Ionian,
        }
    }
}

/// Where the tempo (and the song position) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TempoSource {
    /// The host's tempo, and its song position while its transport plays (a
    /// jump of the playhead re-derives the phrase there); the BPM parameter when
    /// the host gives no tempo.
    #[id = "host"]
    Host,
    /// The BPM parameter; the music runs free of the host's transport.
    #[id = "int"]
    Internal,
}

/// The preset parameter: `Custom` uses the individual parameters; a preset
/// replaces key, mode, BPM, intensity and the layer and effect levels with its own
/// (master gain, seed, tempo source and a held note still apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PresetChoice {
    /// The individual parameters.
    #[id = "custom"]
    Custom,
    /// D dorian, 60 BPM.
    #[id = "focus"]
    Focus,
    /// C aeolian, 60 BPM.
    #[id = "medit"]
    Meditation,
    /// E phrygian, 60 BPM.
    #[id = "sleep"]
    Sleep,
    /// G lydian, 70 BPM.
    #[id = "bright"]
    Bright,
}

impl PresetChoice {
    /// The preset's name in [`PRESETS`], `None` for `Custom`.
    #[must_use]
    pub const fn preset_name(self) -> Option<&'static str> {
        match self {
            Self::Custom => None,
            Self::Focus => Some("focus"),
            Self::Meditation => Some("meditation"),
            Self::Sleep => Some("sleep"),
            Self::Bright => Some("bright"),
        }
    }
}

/// Highest stream channel: the Stream channel parameter picks one of
/// `1..=MAX_STREAM_CHANNEL`, and channel `n` streams as `shm:n`.
pub const MAX_STREAM_CHANNEL: i32 = 16;

/// The quality pin: automatic (the degradation state machine decides) or one
/// level held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum QualityPin {
    /// The degradation state machine decides.
    #[id = "auto"]
    Auto,
    /// Full quality.
    #[id = "normal"]
    Normal,
    /// Fewer melody notes and partials.
    #[id = "high"]
    #[name = "High load"]
    HighLoad,
    /// Chords only.
    #[id = "crit"]
    Critical,
    /// Loop the last good phrase.
    #[id = "over"]
    Overload,
}

impl QualityPin {
    /// The pinned level, `None` for automatic.
    #[must_use]
    pub const fn level(self) -> Option<Level> {
        match self {
            Self::Auto => None,
            Self::Normal => Some(Level::Normal),
            Self::HighLoad => Some(Level::HighLoad),
            Self::Critical => Some(Level::Critical),
            Self::Overload => Some(Level::Overload),
        }
    }
}

/// Every host parameter.
#[derive(Params)]
pub struct AuralisParams {
    /// Marks saved state as Auralis's (always [`STATE_FORMAT`]).
    #[persist = "fmt"]
    pub format: RwLock<String>,
    /// Tonic pitch class, 0 (C) to 11 (B).
    #[id = "key"]
    pub key: IntParam,
    /// Mode.
    #[id = "mode"]
    pub mode: EnumParam<ModeChoice>,
    /// Tempo in BPM, 20 to 300 (when the host gives none, or the source is internal).
    #[id = "bpm"]
    pub bpm: FloatParam,
    /// Where the tempo and song position come from.
    #[id = "tsrc"]
    pub tempo_source: EnumParam<TempoSource>,
    /// Activity, 0 (sparse) to 1 (busy).
    #[id = "int"]
    pub intensity: FloatParam,
    /// A preset, or the individual parameters.
    #[id = "pre"]
    pub preset: EnumParam<PresetChoice>,
    /// The piece, 0 to [`MAX_SEED`]; a change restarts the plugin.
    #[id = "seed"]
    pub seed: IntParam,
    /// Pad layer level, 0 to 1.
    #[id = "pad"]
    pub pad_level: FloatParam,
    /// Melody layer level, 0 to 1.
    #[id = "mel"]
    pub melody_level: FloatParam,
    /// Percussion layer level, 0 to 1.
    #[id = "perc"]
    pub percussion_level: FloatParam,
    /// Reverb send, 0 to 1.
    #[id = "rev"]
    pub reverb_mix: FloatParam,
    /// Delay send, 0 to 1.
    #[id = "dly"]
    pub delay_mix: FloatParam,
    /// Master gain in dB, −60 to +6.
    #[id = "gain"]
    pub master_gain_db: FloatParam,
    /// The degradation level pin.
    #[id = "qpin"]
    pub quality_pin: EnumParam<QualityPin>,
    /// Streams the output to the bridge through shared memory.
    #[id = "strm"]
    pub stream: BoolParam,
    /// The stream channel, 1 to [`MAX_STREAM_CHANNEL`]: channel `n` is the
    /// stream named `n`, `/dev/shm/auralis-n`, which `auralis-bridge --source
    /// shm:n` plays. A number, so any host can set it without a GUI.
    #[id = "schn"]
    pub stream_channel: IntParam,
    /// Lets the bridge's listeners change key, mode, tempo and intensity.
    #[id = "rmt"]
    pub remote_control: BoolParam,
    /// Sends the chords, melody and percussion played as MIDI notes (off by
    /// default; the audio is the same either way).
    #[id = "midi"]
    pub midi_out: BoolParam,
    /// The chords' MIDI channel, 1 to 16.
    #[id = "mchc"]
    pub chord_channel: IntParam,
    /// The melody's MIDI channel, 1 to 16.
    #[id = "mchm"]
    pub melody_channel: IntParam,
    /// The percussion's MIDI channel, 1 to 16.
    #[id = "mchp"]
    pub percussion_channel: IntParam,
}

/// A MIDI channel parameter, 1 to 16, defaulting to `channel` (0-based).
fn channel_param(name: &str, channel: u8) -> IntParam {
    IntParam::new(
        name,
        i32::from(channel) + 1,
        IntRange::Linear { min: 1, max: 16 },
    )
}

fn unit_param(name: &str, default: f32) -> FloatParam {
    FloatParam::new(name, default, FloatRange::Linear { min: 0.0, max: 1.0 })
        .with_step_size(0.001)
        .with_value_to_string(Arc::new(|v| format!("{:.0} %", v * 100.0)))
        .with_string_to_value(Arc::new(|s| {
            let s = s.trim().trim_end_matches('%').trim();
            s.parse::<f32>().ok().map(|v| v / 100.0)
        }))
}

impl Default for AuralisParams {
    fn default() -> Self {
        let focus = &PRESETS[0];
        let (c, l) = (focus.compose, focus.levels);
        let midi = MidiChannels::default();
        Self {
            format: RwLock::new(STATE_FORMAT.to_owned()),
            key: IntParam::new(
                "Key",
                i32::from(c.key.pitch_class()),
                IntRange::Linear { min: 0, max: 11 },
            )
            .with_value_to_string(Arc::new(|v| {
                Key::new(u8::try_from(v.rem_euclid(12)).unwrap_or(0))
                    .name()
                    .to_owned()
            }))
            .with_string_to_value(Arc::new(|s| {
                s.trim()
                    .parse::<Key>()
                    .ok()
                    .map(|k| i32::from(k.pitch_class()))
            })),
            mode: EnumParam::new("Mode", ModeChoice::from_mode(c.mode)),
            bpm: FloatParam::new(
                "BPM",
                c.bpm,
                FloatRange::Linear {
                    min: BPM_RANGE.0,
                    max: BPM_RANGE.1,
                },
            )
            .with_step_size(0.1)
            .with_unit(" BPM"),
            tempo_source: EnumParam::new("Tempo source", TempoSource::Host),
            intensity: unit_param("Intensity", c.intensity),
            preset: EnumParam::new("Preset", PresetChoice::Custom),
            seed: IntParam::new(
                "Seed",
                1,
                IntRange::Linear {
                    min: 0,
                    max: MAX_SEED,
                },
            ),
            pad_level: unit_param("Pad level", l.pad),
            melody_level: unit_param("Melody level", l.melody),
            percussion_level: unit_param("Percussion level", l.percussion),
            reverb_mix: unit_param("Reverb mix", l.reverb),
            delay_mix: unit_param("Delay mix", l.delay),
            master_gain_db: FloatParam::new(
                "Master gain",
                l.master_gain_db,
                FloatRange::Linear {
                    min: MASTER_GAIN_DB_RANGE.0,
                    max: MASTER_GAIN_DB_RANGE.1,
                },
            )
            .with_step_size(0.1)
            .with_unit(" dB"),
            quality_pin: EnumParam::new("Quality", QualityPin::Auto),
            stream: BoolParam::new("Stream", false),
            stream_channel: IntParam::new(
                "Stream channel",
                1,
                IntRange::Linear {
                    min: 1,
                    max: MAX_STREAM_CHANNEL,
                },
            ),
            remote_control: BoolParam::new("Remote control", false),
            midi_out: BoolParam::new("MIDI out", false),
            chord_channel: channel_param("Chord MIDI channel", midi.chord),
            melody_channel: channel_param("Melody MIDI channel", midi.melody),
            percussion_channel: channel_param("Percussion MIDI channel", midi.percussion),
        }
    }
}

/// What the parameters ask of the engine, before a held note and the host's tempo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Musical parameters (the preset's when one is chosen).
    pub compose: ComposeParams,
    /// Mix levels (the preset's when one is chosen, with the master gain).
    pub levels: MixLevels,
    /// The piece.
    pub seed: u64,
    /// Where the tempo and song position come from.
    pub tempo_source: TempoSource,
    /// The degradation level pin.
    pub level_pin: Option<Level>,
}

impl AuralisParams {
    /// The engine settings the current values describe, each clamped to its range.
    #[must_use]
    pub fn settings(&self) -> Settings {
        let preset = self
            .preset
            .value()
            .preset_name()
            .and_then(|name| PRESETS.iter().find(|p| p.name == name));
        let master_gain_db = self
            .master_gain_db
            .value()
            .clamp(MASTER_GAIN_DB_RANGE.0, MASTER_GAIN_DB_RANGE.1);
        let (compose, levels) = if let Some(p) = preset {
            (
                p.compose,
                MixLevels {
                    master_gain_db,
                    ..p.levels
                },
            )
        } else {
            let unit = |p: &FloatParam| p.value().clamp(0.0, 1.0);
            (
                ComposeParams {
                    key: Key::new(u8::try_from(self.key.value().rem_euclid(12)).unwrap_or(0)),
                    mode: self.mode.value().mode(),
                    bpm: self.bpm.value().clamp(BPM_RANGE.0, BPM_RANGE.1),
                    intensity: unit(&self.intensity),
                    ..PRESETS[0].compose
                },
                MixLevels {
                    pad: unit(&self.pad_level),
                    melody: unit(&self.melody_level),
                    percussion: unit(&self.percussion_level),
                    reverb: unit(&self.reverb_mix),
                    delay: unit(&self.delay_mix),
                    master_gain_db,
                },
            )
        };
        Settings {
            compose,
            levels,
            seed: u64::try_from(self.seed.value().clamp(0, MAX_SEED)).unwrap_or(1),
            tempo_source: self.tempo_source.value(),
            level_pin: self.quality_pin.value().level(),
        }
    }

    /// The stream the parameters ask for: `None` while the Stream switch is
    /// off, else the channel's name (`"1"` to `"16"`).
    #[must_use]
    pub fn stream_name(&self) -> Option<String> {
        self.stream.value().then(|| {
            self.stream_channel
                .value()
                .clamp(1, MAX_STREAM_CHANNEL)
                .to_string()
        })
    }

    /// The MIDI channels of the parts while MIDI out is on; `None` while it is
    /// off.
    #[must_use]
    pub fn midi_channels(&self) -> Option<MidiChannels> {
        let channel = |p: &IntParam| u8::try_from(p.value().clamp(1, 16) - 1).unwrap_or(0);
        self.midi_out.value().then(|| MidiChannels {
            chord: channel(&self.chord_channel),
            melody: channel(&self.melody_channel),
            percussion: channel(&self.percussion_channel),
        })
    }

    /// Every parameter at its default, as a saved state holds them.
    #[must_use]
    pub fn default_values() -> BTreeMap<String, ParamValue> {
        let d = Self::default();
        let f = |p: &FloatParam| ParamValue::F32(p.default_plain_value());
        let i = |p: &IntParam| ParamValue::I32(p.default_plain_value());
        let e = |index: usize| ParamValue::I32(i32::try_from(index).unwrap_or(0));
        let b = |p: &BoolParam| ParamValue::Bool(p.default_plain_value());
        [
            ("key", i(&d.key)),
            ("mode", e(d.mode.default_plain_value().to_index())),
            ("bpm", f(&d.bpm)),
            ("tsrc", e(d.tempo_source.default_plain_value().to_index())),
            ("int", f(&d.intensity)),
            ("pre", e(d.preset.default_plain_value().to_index())),
            ("seed", i(&d.seed)),
            ("pad", f(&d.pad_level)),
            ("mel", f(&d.melody_level)),
            ("perc", f(&d.percussion_level)),
            ("rev", f(&d.reverb_mix)),
            ("dly", f(&d.delay_mix)),
            ("gain", f(&d.master_gain_db)),
            ("qpin", e(d.quality_pin.default_plain_value().to_index())),
            ("strm", b(&d.stream)),
            ("schn", i(&d.stream_channel)),
            ("rmt", b(&d.remote_control)),
            ("midi", b(&d.midi_out)),
            ("mchc", i(&d.chord_channel)),
            ("mchm", i(&d.melody_channel)),
            ("mchp", i(&d.percussion_channel)),
        ]
        .into_iter()
        .map(|(id, v)| (id.to_owned(), v))
        .collect()
    }

    /// Turns a state that is not Auralis's (no format marker, or a parameter this
    /// plugin does not have) into one holding every default, with a warning:
    /// foreign state loads as defaults instead of half-applying.
    pub fn sanitize_state(state: &mut PluginState) {
        let ours = Self::default_values();
        let marked = state
            .fields
            .get("fmt")
            .and_then(|v| serde_json::from_str::<String>(v).ok())
            .is_some_and(|v| v == STATE_FORMAT);
        let foreign_param = state.params.keys().find(|k| !ours.contains_key(*k));
        if !marked || foreign_param.is_some() {
            tracing::warn!(
                marked,
                foreign_param = foreign_param.map(String::as_str),
                version = %state.version,
                "the saved state is not Auralis's; loading the default parameters instead"
            );
            state.params = ours;
            state.fields.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_focus_preset_with_seed_1() {
        let s = AuralisParams::default().settings();
        assert_eq!(s.compose, PRESETS[0].compose);
        assert_eq!(s.levels, PRESETS[0].levels);
        assert_eq!(s.seed, 1);
        assert_eq!(s.tempo_source, TempoSource::Host);
        assert_eq!(s.level_pin, None);
        let params = AuralisParams::default();
        assert_eq!(params.stream_name(), None, "streaming is off by default");
        assert!(!params.remote_control.value());
        assert_eq!(params.midi_channels(), None, "MIDI out is off by default");
        s.compose.validate().unwrap();
        s.levels.validate().unwrap();
    }

    #[test]
    fn ids_are_frozen_and_unique() {
        let params = AuralisParams::default();
        let ids: Vec<String> = params
            .param_map()
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        let expected = [
            "key", "mode", "bpm", "tsrc", "int", "pre", "seed", "pad", "mel", "perc", "rev", "dly",
            "gain", "qpin", "strm", "schn", "rmt", "midi", "mchc", "mchm", "mchp",
        ];
        assert_eq!(ids, expected);
        let defaults = AuralisParams::default_values();
        assert_eq!(defaults.len(), expected.len());
        assert!(expected.iter().all(|id| defaults.contains_key(*id)));
    }

    #[test]
    fn foreign_state_becomes_defaults_and_ours_is_kept() {
        let mut foreign = PluginState {
            version: "9.9".into(),
            params: [("gain".to_owned(), ParamValue::F32(-30.0))].into(),
            fields: BTreeMap::new(),
        };
        AuralisParams::sanitize_state(&mut foreign);
        assert_eq!(foreign.params.len(), 21);
        assert!(matches!(foreign.params["gain"], ParamValue::F32(v) if v == 0.0));

        let mut ours = PluginState {
            version: "0.1.0".into(),
            params: [("gain".to_owned(), ParamValue::F32(-30.0))].into(),
            fields: [("fmt".to_owned(), format!("{STATE_FORMAT:?}"))].into(),
        };
        AuralisParams::sanitize_state(&mut ours);
        assert_eq!(ours.params.len(), 1);
    }

    #[test]
    fn a_preset_overrides_the_individual_parameters() {
        let params = AuralisParams::default();
        assert_eq!(params.preset.default_plain_value(), PresetChoice::Custom);
        for choice in [
            PresetChoice::Focus,
            PresetChoice::Meditation,
            PresetChoice::Sleep,
            PresetChoice::Bright,
        ] {
            let name = choice.preset_name().unwrap();
            assert!(PRESETS.iter().any(|p| p.name == name), "{name}");
        }
        assert_eq!(QualityPin::HighLoad.level(), Some(Level::HighLoad));
        for mode in Mode::ALL {
            assert_eq!(ModeChoice::from_mode(mode).mode(), mode);
        }
    }
}
