//! Auralis: endless, evolving ambient music composed and rendered in real time.
//!
//! The engine (composer, DSP, renderer) is independent of any plugin framework; the
//! [`engine::Engine`] is what hosts, the offline renderer and the bridge drive.
//! With the default `plugin` feature this crate is also a CLAP and VST3
//! instrument (nice-plug): this file holds its `Plugin` impls and export macros,
//! [`params`] its host parameters.

pub mod compose;
pub mod degrade;
pub mod dsp;
pub mod engine;
pub mod host_rate;
pub mod host_sync;
pub mod midi_out;
pub mod offline;
pub mod pacing;
#[cfg(feature = "plugin")]
pub mod params;
pub mod prerender;
pub mod render;
pub mod rng;
pub mod stream;

/// The CLAP entry point, for a host that links this crate instead of loading the
/// bundle: the state-loading fuzz target and property tests drive the plugin's own
/// CLAP state extension through it, in process.
#[cfg(feature = "plugin")]
pub use self::plugin::clap_entry;
#[cfg(feature = "plugin")]
pub use self::plugin::Auralis;

/// The nice-plug wrapper.
#[cfg(feature = "plugin")]
mod plugin {
    use std::num::NonZeroU32;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use nice_plug::midi::{Channel, Key as MidiKey, VoiceID};
    use nice_plug::prelude::{
        ActivateContext, AudioIOLayout, AuxiliaryBuffers, Buffer, BufferConfig, ClapFeature,
        ClapPlugin, MidiConfig, NoteEvent, Params, Plugin, PluginState, ProcessContext,
        ProcessMode, ProcessStatus, Vst3Plugin, Vst3SubCategory,
    };

    use crate::compose::phrase::{ComposeParams, BPM_RANGE};
    use crate::compose::theory::Key;
    use crate::engine::{Engine, EngineConfig};
    use crate::host_rate::HostRate;
    use crate::host_sync::{HeldNotes, HostPosition, TransportFollower};
    use crate::midi_out::{HostNote, MidiChannels, MidiOut};
    use crate::pacing::{parse_freewheel_setting, Pace, PacingDetector, RunMode, FREEWHEEL_ENV};
    use crate::params::{AuralisParams, PresetChoice, TempoSource};
    use crate::render::RenderMode;
    use crate::stream::remote::RemoteControl;
    use crate::stream::service::{StreamOutput, StreamService, StreamWish};

    /// How long `activate()` waits for the first phrase's texture in real time
    /// once the host has played the plugin, so the first blocks (which never
    /// wait, [`RunMode::Starting`]) play it as a bounce would.
    const FIRST_TEXTURE_WAIT: Duration = Duration::from_secs(10);
    /// How long `activate()` waits for the first phrase in real time, so the
    /// first block (which never waits) has music.
    const FIRST_PHRASE_WAIT: Duration = Duration::from_secs(2);

    /// The Auralis instrument: an [`Engine`] built in `activate()` and driven by
    /// the host's buffers, parameters, notes and transport. It renders as
    /// `auralis-render` does (waiting for every phrase and texture, never
    /// degrading) when the host says it renders offline, and when it calls
    /// `process()` faster than real time ([`PacingDetector`]); see
    /// [`RunMode`].
    #[derive(Default)]
    pub struct Auralis {
        params: Arc<AuralisParams>,
        engine: Option<Engine>,
        /// The seed the engine was built with.
        engine_seed: u64,
        /// A restart was asked for (a new seed needs a new engine).
        restart_requested: bool,
        held: HeldNotes,
        follower: TransportFollower,
        /// The audio thread's side of the shared-memory stream.
        stream: Option<StreamOutput>,
        /// The stream thread (creates and closes stream files, takes control).
        stream_service: Option<StreamService>,
        /// Key, mode, tempo and intensity set remotely through the bridge.
        remote: Arc<RemoteControl>,
        /// The host's musical parameters at the previous block (a host change
        /// drops the remote value of that parameter).
        host_compose: Option<ComposeParams>,
        /// The host renders offline (its process mode at activation: a change
        /// makes nice-plug restart the plugin, so it is read again).
        host_offline: bool,
        /// Judges whether a real-time host freewheels.
        pacing: PacingDetector,
        /// Freewheel detection is on ([`FREEWHEEL_ENV`], read at activation).
        detect_freewheel: bool,
        /// The host's transport has played the plugin: a new engine (a DAW
        /// restarting the plugin for an export) then primes its first texture,
        /// where and how fast the host last played when following it.
        host_played: bool,
        /// The host's tempo and playhead (in beats) when it last played the
        /// plugin following its transport.
        host_bpm: Option<f32>,
        host_beat: Option<f64>,
        /// The host's sample rate and how the engine meets it (from `activate()`).
        host_rate: Option<HostRate>,
        /// What MIDI out has sent the host.
        midi: MidiOut,
        /// MIDI out ends every note it sent at the next block: the plugin was
        /// reset or deactivated (events can only be sent from `process()`).
        end_notes: bool,
        /// The host's transport played at the previous block.
        was_playing: bool,
        /// The preset at the previous block.
        preset: Option<PresetChoice>,
    }

    /// Sends one MIDI out note to the host. A host whose event queue is full
    /// loses it: nothing on this thread may wait or log.
    fn send_note(context: &mut impl ProcessContext<Auralis>, note: HostNote) {
        let (timing, channel, key) = (
            note.timing,
            Channel::Number(note.channel),
            MidiKey::Number(note.key),
        );
        let voice_id = VoiceID::Wildcard;
        let event = match note.velocity {
            Some(velocity) => NoteEvent::NoteOn {
                timing,
                voice_id,
                channel,
                key,
                velocity,
            },
            None => NoteEvent::NoteOff {
                timing,
                voice_id,
                channel,
                key,
                velocity: 0.0,
            },
        };
        let _lost_when_the_queue_is_full = context.try_send_event(event);
    }

    impl Auralis {
        /// The run mode for a block starting `now`: offline if the host said so,
        /// else from the host's pace (a bounce until it is known).
        fn run_mode(&mut self, now: Instant, frames: usize, sample_rate: f32) -> RunMode {
            if self.host_offline {
                return RunMode::Offline;
            }
            if !self.detect_freewheel {
                return RunMode::RealTime;
            }
            match self.pacing.observe(now, frames, sample_rate) {
                None => RunMode::Starting,
                Some(Pace::Freewheel) => RunMode::Freewheel,
                Some(Pace::RealTime) => RunMode::RealTime,
            }
        }

        /// Applies one note event: a held note sets the key.
        fn handle_event(&mut self, event: &NoteEvent<()>) {
            match *event {
                NoteEvent::NoteOn { key, velocity, .. } if velocity > 0.0 => {
                    if let Some(note) = key.number() {
                        self.held.note_on(note);
                    }
                }
                NoteEvent::NoteOn { key, .. }
                | NoteEvent::NoteOff { key, .. }
                | NoteEvent::Choke { key, .. } => match key.number() {
                    Some(note) => self.held.note_off(note),
                    // A wildcard key: every note.
                    None => self.held.clear(),
                },
                _ => {}
            }
        }

        /// Hands the current parameters (with remote values laid over the host's),
        /// held note and host tempo to the engine, and re-aligns it with the host's
        /// song position when needed.
        fn follow_host(
            &mut self,
            context: &mut impl ProcessContext<Self>,
            frames: usize,
            sample_rate: f32,
        ) {
            let settings = self.params.settings();
            if settings.seed != self.engine_seed && !self.restart_requested {
                // Reseeding rebuilds the engine, which allocates: off this thread.
                context.request_restart();
                self.restart_requested = true;
            }
            let Some(engine) = self.engine.as_mut() else {
                return;
            };
            let transport = context.transport();
            let host_bpm = transport.tempo.filter(|t| t.is_finite() && *t > 0.0);
            let following = settings.tempo_source == TempoSource::Host;
            let mut compose = self
                .remote
                .overlay(&settings.compose, &mut self.host_compose);
            if let Some(pitch_class) = self.held.key() {
                compose.key = Key::new(pitch_class);
            }
            if let (true, Some(bpm)) = (following, host_bpm) {
                compose.bpm = (bpm as f32).clamp(BPM_RANGE.0, BPM_RANGE.1);
            }
            if transport.playing {
                self.host_played = true;
                if following {
                    self.host_bpm = host_bpm.map(|_| compose.bpm);
                    self.host_beat = transport.pos_beats().filter(|b| b.is_finite());
                }
            }
            // Both are clamped to their ranges above, so these cannot fail; if
            // they did, the engine would keep what it has (and nothing may be
            // logged from this thread).
            if compose != *engine.compose_params() {
                let _kept_on_error = engine.set_compose_params(compose);
            }
            if settings.levels != *engine.levels() {
                let _kept_on_error = engine.set_levels(settings.levels);
            }
            engine.set_level_pin(settings.level_pin);
            let host = match (
                following,
                transport.playing,
                transport.pos_beats(),
                host_bpm,
            ) {
                (true, true, Some(beat), Some(bpm)) => Some(HostPosition { beat, bpm }),
                _ => None,
            };
            if let Some(beat) =
                self.follower
                    .update(host, engine.beat_position(), frames, sample_rate)
            {
                engine.seek_beats(beat);
            }
        }

        /// Ends every note MIDI out has sent, at the start of the block, when
        /// the transport has stopped, the preset has changed, MIDI out is off,
        /// or the plugin was reset or deactivated since the last block.
        fn end_notes_when_due(
            &mut self,
            context: &mut impl ProcessContext<Self>,
            channels: Option<MidiChannels>,
        ) {
            let playing = context.transport().playing;
            let preset = self.params.preset.value();
            let stopped = self.was_playing && !playing;
            let new_preset = self.preset.is_some_and(|p| p != preset);
            (self.was_playing, self.preset) = (playing, Some(preset));
            if self.end_notes || stopped || new_preset || channels.is_none() {
                self.end_notes = false;
                self.midi.end_all(0, |note| send_note(context, note));
            }
        }

        /// Renders the block at the host's rate, streams it (at the engine's),
        /// and sends the notes played, each at its frame, while MIDI out is on.
        fn render(
            &mut self,
            buffer: &mut Buffer<'_>,
            context: &mut impl ProcessContext<Self>,
            channels: Option<MidiChannels>,
        ) {
            let Self {
                engine,
                host_rate,
                stream,
                midi,
                ..
            } = self;
            match (engine.as_mut(), host_rate.as_mut(), buffer.as_slice()) {
                (Some(engine), Some(rate), [left, right, ..]) => {
                    engine.set_note_log(channels.is_some());
                    let factor = rate.factor() as u64;
                    rate.process(engine, left, right, |engine, l, r, host_start| {
                        if let Some(stream) = stream.as_mut() {
                            stream.write(
                                l,
                                r,
                                engine.level(),
                                engine.run_mode(),
                                engine.compose_params(),
                            );
                        }
                        let Some(channels) = channels else {
                            return;
                        };
                        let chunk_start = engine.position() - l.len() as u64;
                        engine.drain_notes(|note| {
                            let into = note.frame.saturating_sub(chunk_start) / factor;
                            let timing =
                                u32::try_from(host_start as u64 + into).unwrap_or(u32::MAX);
                            midi.send(&note, timing, channels, |n| send_note(context, n));
                        });
                    });
                }
                (_, _, outputs) => {
                    for output in outputs.iter_mut() {
                        output.fill(0.0);
                    }
                }
            }
        }

        /// Starts the stream thread, which creates the stream file while the
        /// Stream switch is on (see [`crate::stream::service`]).
        fn start_streaming(&mut self, sample_rate: f32) {
            self.stop_streaming();
            let params = Arc::clone(&self.params);
            let wish = move || StreamWish {
                stream: params.stream_name(),
                remote_control: params.remote_control.value(),
            };
            match StreamService::spawn(sample_rate, wish, Arc::clone(&self.remote)) {
                Ok((output, service)) => {
                    self.stream = Some(output);
                    self.stream_service = Some(service);
                }
                // The instrument still plays; it just cannot stream.
                Err(e) => tracing::error!(error = %e, "cannot start the stream thread"),
            }
        }

        /// Stops the stream thread (closing and removing the stream file), then
        /// drops the audio thread's side.
        fn stop_streaming(&mut self) {
            self.stream_service = None;
            self.stream = None;
            self.remote.clear();
            self.host_compose = None;
        }
    }

    impl Plugin for Auralis {
        const NAME: &'static str = "Auralis";
        const VENDOR: &'static str = "Auralis";
        const URL: &'static str = "https://example.invalid/auralis";
        const EMAIL: &'static str = "auralis@example.invalid";
        const VERSION: &'static str = env!("CARGO_PKG_VERSION");

        const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
            main_input_channels: None,
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        }];
        const MIDI_INPUT: MidiConfig = MidiConfig::Basic;
        const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;

        type Editor = ();
        type SysExMessage = ();
        type BackgroundTask = ();

        fn params(&self) -> Arc<dyn Params> {
            self.params.clone()
        }

        fn filter_state(state: &mut PluginState) {
            AuralisParams::sanitize_state(state);
        }

        fn activate(
            &mut self,
            _audio_io_layout: &AudioIOLayout,
            buffer_config: &BufferConfig,
            _context: &mut impl ActivateContext<Self>,
        ) -> bool {
            let mut settings = self.params.settings();
            if settings.tempo_source == TempoSource::Host {
                settings.compose.bpm = self.host_bpm.unwrap_or(settings.compose.bpm);
            }
            self.host_offline = buffer_config.process_mode == ProcessMode::Offline;
            let setting = std::env::var(FREEWHEEL_ENV).ok();
            self.detect_freewheel =
                parse_freewheel_setting(setting.as_deref()).unwrap_or_else(|bad| {
                    tracing::warn!(value = bad, "{FREEWHEEL_ENV} is auto or off; detecting");
                    true
                });
            let mode = if self.host_offline {
                RenderMode::Offline
            } else {
                RenderMode::RealTime
            };
            // Drop the old engine (and join its thread) before building the new one.
            self.engine = None;
            let host_rate = match HostRate::new(buffer_config.sample_rate) {
                Ok(rate) => rate,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the engine");
                    return false;
                }
            };
            let engine_rate = host_rate.engine_rate();
            match Engine::new(EngineConfig {
                sample_rate: engine_rate,
                seed: settings.seed,
                compose: settings.compose,
                levels: settings.levels,
                mode,
            }) {
                Ok(mut engine) => {
                    if !self.host_offline && self.detect_freewheel {
                        // Until the host's pace is known, nothing degrades and
                        // nothing is waited for.
                        engine.set_run_mode(RunMode::Starting);
                    }
                    if self.host_played && !self.host_offline && self.detect_freewheel {
                        // A restart by a host that has played the plugin (for
                        // an export, say): the first phrase's texture is primed
                        // where it last played, off the audio thread.
                        if let (TempoSource::Host, Some(beat)) =
                            (settings.tempo_source, self.host_beat)
                        {
                            engine.seek_beats(beat);
                        }
                        if !engine.wait_for_first_texture(FIRST_TEXTURE_WAIT) {
                            tracing::warn!(
                                "the first texture is late; the pad carries until it comes"
                            );
                        }
                    }
                    if !self.host_offline && !engine.wait_for_first_phrase(FIRST_PHRASE_WAIT) {
                        tracing::warn!("the first phrase is late; silence until it comes");
                    }
                    tracing::info!(
                        sample_rate = buffer_config.sample_rate,
                        engine_rate,
                        seed = settings.seed,
                        ?mode,
                        "engine ready"
                    );
                    self.engine = Some(engine);
                    self.engine_seed = settings.seed;
                    self.restart_requested = false;
                    self.held.clear();
                    self.follower.reset();
                    self.pacing.reset();
                    self.host_rate = Some(host_rate);
                    self.end_notes = true;
                    self.start_streaming(engine_rate);
                    true
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the engine");
                    false
                }
            }
        }

        fn reset(&mut self) {
            self.held.clear();
            self.follower.reset();
            self.end_notes = true;
        }

        fn process(
            &mut self,
            buffer: &mut Buffer<'_>,
            _aux: &mut AuxiliaryBuffers<'_>,
            context: &mut impl ProcessContext<Self>,
        ) -> ProcessStatus {
            let now = Instant::now();
            while let Some(event) = context.next_event() {
                self.handle_event(&event);
            }
            let frames = buffer.samples();
            let sample_rate = context.transport().sample_rate;
            let run_mode = self.run_mode(now, frames, sample_rate);
            if let Some(engine) = self.engine.as_mut() {
                engine.set_run_mode(run_mode);
            }
            self.follow_host(context, frames, sample_rate);
            let midi_channels = self.params.midi_channels();
            self.end_notes_when_due(context, midi_channels);
            self.render(buffer, context, midi_channels);
            ProcessStatus::KeepAlive
        }

        fn deactivate(&mut self) {
            self.stop_streaming();
            self.engine = None;
            self.host_rate = None;
            self.end_notes = true;
        }
    }

    impl ClapPlugin for Auralis {
        const CLAP_ID: &'static str = "com.auralis.instrument";
        const CLAP_DESCRIPTION: Option<&'static str> =
            Some("Endless, evolving ambient music composed in real time");
        const CLAP_MANUAL_URL: Option<&'static str> = None;
        const CLAP_SUPPORT_URL: Option<&'static str> = None;
        const CLAP_FEATURES: &'static [ClapFeature] = &[
            ClapFeature::Instrument,
            ClapFeature::Synthesizer,
            ClapFeature::Stereo,
        ];
    }

    impl Vst3Plugin for Auralis {
        const VST3_CLASS_ID: [u8; 16] = *b"AuralisAmbientI1";
        const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[
            Vst3SubCategory::Instrument,
            Vst3SubCategory::Synth,
            Vst3SubCategory::Stereo,
        ];
    }

    nice_plug::nice_export_clap!(Auralis);
    nice_plug::nice_export_vst3!(Auralis);
}
