//! The default source: the engine of the `auralis` crate, rendering inside the
//! bridge.

use std::sync::Arc;
use std::time::Duration;

use auralis::compose::code::PieceCode;
use auralis::compose::presets::Preset;
use auralis::degrade::monitor::MonitorConfig;
use auralis::degrade::DegradeConfig;
use auralis::engine::{Engine, EngineConfig, EngineError, RendererProbe};
use auralis::render::RenderMode;

use super::{FillReport, ParamsSnapshot, Source, SourceCommand, SourceError, SourceInfo};
use crate::recording::{EventLog, Recorder};

/// Something done to the engine before every chunk (tests and demos inject
/// faults with it).
pub type BeforeFill = Box<dyn FnMut(&mut Engine) + Send>;

/// The engine of the `auralis` crate, rendering inside the bridge.
pub struct EmbeddedSource {
    engine: Engine,
    left: Vec<f32>,
    right: Vec<f32>,
    preset: Option<&'static str>,
    /// The piece's seed and the preset whose levels play (the piece code's).
    seed: u64,
    base: &'static Preset,
    /// Records what the engine plays, for `/api/recording`.
    recorder: Recorder,
    before_fill: Option<BeforeFill>,
}

impl std::fmt::Debug for EmbeddedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSource")
            .field("engine", &self.engine)
            .field("preset", &self.preset)
            .field("recorder", &self.recorder)
            .finish_non_exhaustive()
    }
}

impl EmbeddedSource {
    /// An engine at `sample_rate` playing `preset`, with scratch space for chunks of
    /// up to `max_frames`; with `cpu_ceiling_pct` machine and process CPU use
    /// at that ceiling thin its music (to `high_load` at most), without it they
    /// do not count. What it plays can be recorded for `recording_window`.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot be built.
    pub fn new(
        sample_rate: u32,
        piece: PieceCode,
        max_frames: usize,
        cpu_ceiling_pct: Option<f32>,
        recording_window: Duration,
    ) -> Result<Self, EngineError> {
        let defaults = MonitorConfig::default();
        let engine = Engine::with_monitor(
            EngineConfig {
                sample_rate: sample_rate as f32,
                seed: piece.seed,
                compose: piece.compose,
                levels: piece.levels(),
                mode: RenderMode::RealTime,
            },
            MonitorConfig {
                sample_cpu: cpu_ceiling_pct.is_some(),
                machine: DegradeConfig {
                    cpu_ceiling_pct: cpu_ceiling_pct.unwrap_or(defaults.machine.cpu_ceiling_pct),
                    ..defaults.machine
                },
                ..defaults
            },
        )?;
        Ok(Self::with_engine(
            engine,
            piece,
            max_frames,
            recording_window,
        ))
    }

    /// A source around `engine` (built in real time, nothing rendered yet),
    /// which plays `piece`, with scratch space for chunks of up to
    /// `max_frames`, recording for `recording_window`.
    #[must_use]
    pub fn with_engine(
        mut engine: Engine,
        piece: PieceCode,
        max_frames: usize,
        recording_window: Duration,
    ) -> Self {
        let recorder = Recorder::attach(&mut engine, recording_window);
        Self {
            engine,
            left: vec![0.0; max_frames],
            right: vec![0.0; max_frames],
            preset: (piece.compose == piece.preset.compose).then_some(piece.preset.name),
            seed: piece.seed,
            base: piece.preset,
            recorder,
            before_fill: None,
        }
    }

    /// Calls `hook` on the engine before every chunk (fault injection for
    /// tests and demos: [`Engine::set_level_pin`],
    /// [`Engine::simulate_audio_load`]).
    #[must_use]
    pub fn before_fill(mut self, hook: impl FnMut(&mut Engine) + Send + 'static) -> Self {
        self.before_fill = Some(Box::new(hook));
        self
    }
}

impl EmbeddedSource {
    /// Plays `code`'s parameters with its preset's levels (the seed is the one
    /// playing), from the next phrase.
    fn play(&mut self, code: PieceCode) -> Result<(), SourceError> {
        // Validate both before changing either, so a failure changes nothing.
        code.compose.validate()?;
        code.levels().validate()?;
        self.engine.set_compose_params(code.compose)?;
        self.engine.set_levels(code.levels())?;
        self.preset = (code.compose == code.preset.compose).then_some(code.preset.name);
        self.base = code.preset;
        Ok(())
    }

    /// The code of the piece playing; `None` once bars or beats per bar differ
    /// from the preset's, which a code cannot say.
    fn code(&self) -> Option<PieceCode> {
        let compose = *self.engine.compose_params();
        let base = &self.base.compose;
        (compose.bars == base.bars && compose.beats_per_bar == base.beats_per_bar)
            .then(|| PieceCode::new(self.seed, self.base, compose))
    }
}

impl Source for EmbeddedSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: "embedded".into(),
            kind: "embedded",
            sample_rate: self.engine.sample_rate() as u32,
            channels: 2,
        }
    }

    fn fill(&mut self, interleaved: &mut [f32]) -> FillReport {
        let frames = (interleaved.len() / 2).min(self.left.len());
        if let Some(hook) = self.before_fill.as_mut() {
            hook(&mut self.engine);
        }
        let (left, right) = (&mut self.left[..frames], &mut self.right[..frames]);
        self.engine.process(left, right);
        self.recorder.drain(self.engine.position());
        for ((out, l), r) in interleaved
            .chunks_exact_mut(2)
            .zip(left.iter())
            .zip(right.iter())
        {
            out[0] = *l;
            out[1] = *r;
        }
        let status = self.engine.status();
        FillReport {
            idle: false,
            fallback: false,
            level: status.level,
            phrase_index: status.phrase_index,
            run_mode: status.run_mode,
        }
    }

    fn apply(&mut self, command: SourceCommand) -> Result<ParamsSnapshot, SourceError> {
        match command {
            SourceCommand::Update(update) => {
                let next = update.apply_to(*self.engine.compose_params());
                self.engine.set_compose_params(next)?;
                self.preset = None;
            }
            SourceCommand::Preset(preset) => self.play(PieceCode {
                seed: self.seed,
                preset,
                compose: preset.compose,
            })?,
            SourceCommand::Piece(code) => {
                if code.seed != self.seed {
                    return Err(SourceError::OtherSeed {
                        playing: self.seed,
                        asked: code.seed,
                        code: code.to_string(),
                    });
                }
                self.play(code)?;
            }
        }
        Ok(self.params())
    }

    fn params(&self) -> ParamsSnapshot {
        ParamsSnapshot {
            compose: *self.engine.compose_params(),
            levels: *self.engine.levels(),
            preset: self.preset,
            code: self.code(),
        }
    }

    fn renderer(&self) -> Option<RendererProbe> {
        self.engine.renderer_probe()
    }

    fn recording(&self) -> Option<Arc<EventLog>> {
        Some(self.recorder.log())
    }
}
