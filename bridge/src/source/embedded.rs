//! The default source: the engine of the `auralis` crate, rendering inside the
//! bridge.

use auralis::compose::code::PieceCode;
use auralis::compose::presets::Preset;
use auralis::degrade::monitor::MonitorConfig;
use auralis::degrade::DegradeConfig;
use auralis::engine::{Engine, EngineConfig, EngineError, RendererProbe};
use auralis::render::RenderMode;

use super::{FillReport, ParamsSnapshot, Source, SourceCommand, SourceError, SourceInfo};

/// The engine of the `auralis` crate, rendering inside the bridge.
#[derive(Debug)]
pub struct EmbeddedSource {
    engine: Engine,
    left: Vec<f32>,
    right: Vec<f32>,
    preset: Option<&'static str>,
    /// The piece's seed and the preset whose levels play (the piece code's).
    seed: u64,
    base: &'static Preset,
}

impl EmbeddedSource {
    /// An engine at `sample_rate` playing `preset`, with scratch space for chunks of
    /// up to `max_frames`; with `cpu_ceiling_pct` machine and process CPU use
    /// at that ceiling thin its music (to `high_load` at most), without it they
    /// do not count.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot be built.
    pub fn new(
        sample_rate: u32,
        piece: PieceCode,
        max_frames: usize,
        cpu_ceiling_pct: Option<f32>,
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
        Ok(Self {
            engine,
            left: vec![0.0; max_frames],
            right: vec![0.0; max_frames],
            preset: (piece.compose == piece.preset.compose).then_some(piece.preset.name),
            seed: piece.seed,
            base: piece.preset,
        })
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
        let (left, right) = (&mut self.left[..frames], &mut self.right[..frames]);
        self.engine.process(left, right);
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
        }
    }

    fn apply(&mut self, command: SourceCommand) -> Result<ParamsSnapshot, SourceError> {
        match command {
            SourceCommand::Update(update) => {
                let next = update.apply_to(*self.engine.compose_params());
                self.engine.set_compose_params(next)?;
                self.preset = None;
            }
            SourceCommand::Preset(preset) => {
                // Validate both before changing either, so a failure changes nothing.
                preset.compose.validate()?;
                preset.levels.validate()?;
                self.engine.set_compose_params(preset.compose)?;
                self.engine.set_levels(preset.levels)?;
                self.preset = Some(preset.name);
                self.base = preset;
            }
        }
        Ok(self.params())
    }

    fn params(&self) -> ParamsSnapshot {
        ParamsSnapshot {
            compose: *self.engine.compose_params(),
            levels: *self.engine.levels(),
            preset: self.preset,
            code: Some(PieceCode::new(
                self.seed,
                self.base,
                *self.engine.compose_params(),
            )),
        }
    }

    fn renderer(&self) -> Option<RendererProbe> {
        self.engine.renderer_probe()
    }
}
