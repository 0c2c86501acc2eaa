//! Replaying a real-time engine's output from its journal
//! ([`crate::render::journal`]): a [`Replayer`] is a renderer like the engine's,
//! fed not by a composer and a pre-renderer racing the clock but by the journal,
//! each phrase composed again from its key and each texture rendered again from
//! its key, both handed over at the very frame the engine took them, and the
//! level and mix levels set at the frames they were. The renderer is a pure
//! function of those inputs, so the replay equals what was played, sample for
//! sample, however fast it runs.
//!
//! A replay starts where the engine started (frame 0, the engine's
//! [`ReplayConfig`]) or from a [`Checkpoint`] a replayer took of itself.

use crate::compose::mix::MixLevels;
use crate::compose::Composer;
use crate::prerender::{KeyedTextures, PoolConfig, PrerenderConfig, RenderError};
use crate::render::feed::{phrase_channel, PhraseSender};
use crate::render::journal::JournalEvent;
use crate::render::texture::{TextureLayer, TextureTelemetry};
use crate::render::{RenderMode, Renderer, RendererCheckpoint};

/// Frames a replay renders at once between journal events.
pub const REPLAY_BLOCK: usize = 4096;

/// What a replay of an engine starts from: the engine's settings at its start.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Sample rate in hertz.
    pub sample_rate: f32,
    /// The seed.
    pub seed: u64,
    /// The mix levels the engine was built with.
    pub levels: MixLevels,
    /// How its textures were rendered (`None`: the texture layer was off).
    pub texture: Option<PrerenderConfig>,
    /// The phrase length the engine's texture pool was sized for.
    pub pool: PoolConfig,
}

/// Why a replay cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The journal records a texture that says nothing of how it was made.
    #[error("the texture taken at frame {0} cannot be made again")]
    UnkeyedTexture(u64),
    /// The journal records a texture but the replay has no texture layer.
    #[error("the journal has textures but the replay has no texture layer")]
    NoTextureLayer,
    /// A texture could not be rendered again.
    #[error("could not render the texture again: {0}")]
    Texture(#[from] RenderError),
    /// A phrase could not be handed over.
    #[error("the replay's phrase ring is full")]
    PhraseRing,
    /// An event is older than the replay's position.
    #[error("event at frame {event} is before the replay's position {position}")]
    OutOfOrder {
        /// The event's frame.
        event: u64,
        /// Where the replay is.
        position: u64,
    },
}

/// The state of a replayer at a frame with no event pending: the renderer's
/// state (its textures as keys, rendered again on restore).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    renderer: RendererCheckpoint,
}

impl Checkpoint {
    /// The frame it was taken at.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.renderer.position()
    }

    /// Bytes it holds (its textures are keys, made again on restore).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.renderer.heap_bytes()
    }
}

/// A renderer driven by a journal.
#[derive(Debug)]
pub struct Replayer {
    renderer: Renderer,
    phrases: PhraseSender,
    textures: Option<KeyedTextures>,
    seed: u64,
}

impl Replayer {
    /// A replayer at frame 0, as the engine `config` describes started.
    #[must_use]
    pub fn new(config: &ReplayConfig) -> Self {
        let (phrases, feed) = phrase_channel();
        let mut renderer = Renderer::new(
            config.sample_rate,
            config.seed,
            config.levels,
            RenderMode::RealTime,
            feed,
        );
        let textures = config.texture.as_ref().map(|c| {
            let (keyed, texture_feed) = KeyedTextures::new(c, config.pool);
            renderer.set_texture_layer(TextureLayer::new(
                texture_feed,
                RenderMode::RealTime,
                config.sample_rate,
                std::sync::Arc::new(TextureTelemetry::default()),
            ));
            keyed
        });
        Self {
            renderer,
            phrases,
            textures,
            seed: config.seed,
        }
    }

    /// A replayer in the state `checkpoint` holds, for an engine `config`
    /// describes: the textures it held are rendered again.
    ///
    /// # Errors
    /// [`ReplayError::Texture`] when a texture cannot be rendered again.
    pub fn restore(config: &ReplayConfig, checkpoint: &Checkpoint) -> Result<Self, ReplayError> {
        let mut this = Self::new(config);
        let textures = &mut this.textures;
        this.renderer
            .restore(&checkpoint.renderer, |key| match textures.as_mut() {
                Some(t) => Ok(t.make(key)?),
                None => Err(ReplayError::NoTextureLayer),
            })?;
        Ok(this)
    }

    /// The next frame it renders.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.renderer.position()
    }

    /// Its state now (call between events: nothing handed over and not yet
    /// taken). Every texture a replayer holds has a key, so this is always
    /// `Some` for a replayer.
    #[must_use]
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        Some(Checkpoint {
            renderer: self.renderer.checkpoint()?,
        })
    }

    /// Applies `event`, which must take effect at the current position (see
    /// [`Replayer::render_to`]).
    ///
    /// # Errors
    /// [`ReplayError`] for an event a replay cannot follow.
    pub fn apply(&mut self, event: &JournalEvent) -> Result<(), ReplayError> {
        let position = self.position();
        if event.frame() < position {
            return Err(ReplayError::OutOfOrder {
                event: event.frame(),
                position,
            });
        }
        while let Ok(done) = self.phrases.returned.pop() {
            drop(done);
        }
        match *event {
            JournalEvent::Phrase { key, .. } => {
                let phrase = Composer::compose_key(self.seed, &key);
                self.phrases
                    .outgoing
                    .push(phrase)
                    .map_err(|_| ReplayError::PhraseRing)?;
            }
            JournalEvent::Texture { key, .. } => self
                .textures
                .as_mut()
                .ok_or(ReplayError::NoTextureLayer)?
                .deliver(&key)?,
            JournalEvent::UnkeyedTexture { frame } => {
                return Err(ReplayError::UnkeyedTexture(frame))
            }
            JournalEvent::Level { level, .. } => self.renderer.set_quality(level),
            JournalEvent::Mix { levels, .. } => self.renderer.set_levels(levels),
            JournalEvent::Seek { target, .. } => {
                self.renderer.jump(target);
            }
        }
        Ok(())
    }

    /// Renders `left.len()` frames (no event may fall inside them).
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.renderer.process(left, right);
    }

    /// Replays `events` (in frame order, none before the current position) up
    /// to frame `to`, handing each rendered block to `sink` with its first
    /// frame; `sink` returns `false` to stop. Events at `to` or later are left.
    ///
    /// # Errors
    /// [`ReplayError`] for an event a replay cannot follow.
    pub fn render_to<'a>(
        &mut self,
        events: &mut std::iter::Peekable<impl Iterator<Item = &'a JournalEvent>>,
        to: u64,
        mut sink: impl FnMut(u64, &[f32], &[f32]) -> bool,
    ) -> Result<(), ReplayError> {
        let mut left = vec![0.0f32; REPLAY_BLOCK];
        let mut right = vec![0.0f32; REPLAY_BLOCK];
        while self.position() < to {
            while let Some(e) = events.next_if(|e| e.frame() <= self.position()) {
                self.apply(e)?;
            }
            let next = events.peek().map_or(to, |e| e.frame().min(to));
            let n = usize::try_from(next - self.position())
                .unwrap_or(REPLAY_BLOCK)
                .min(REPLAY_BLOCK);
            let start = self.position();
            self.render(&mut left[..n], &mut right[..n]);
            if !sink(start, &left[..n], &right[..n]) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::compose::phrase::ComposeParams;
    use crate::degrade::monitor::MonitorConfig;
    use crate::degrade::Level;
    use crate::engine::{Engine, EngineConfig, TextureSetting};
    use crate::prerender::gpu::RendererChoice;
    use crate::render::journal::JournalReader;

    const SR: f32 = 8_000.0;

    /// An engine in real time with short phrases and CPU textures, journal on.
    fn engine() -> (Engine, JournalReader) {
        let mut engine = Engine::build(
            EngineConfig {
                sample_rate: SR,
                seed: 4,
                compose: ComposeParams {
                    bars: 1,
                    bpm: 150.0,
                    ..ComposeParams::default()
                },
                ..EngineConfig::default()
            },
            MonitorConfig {
                sample_cpu: false,
                ..MonitorConfig::default()
            },
            TextureSetting::With(PrerenderConfig {
                renderer: RendererChoice::Cpu,
                ..PrerenderConfig::new(0, SR)
            }),
        )
        .expect("engine");
        let journal = engine.enable_journal(4096);
        (engine, journal)
    }

    /// Runs the engine at about eight times real time (so textures and phrases
    /// come late now and then), changing the level and the mix on the way;
    /// returns its output, left then right, and what it recorded.
    fn run(
        engine: &mut Engine,
        journal: &mut JournalReader,
        blocks: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<JournalEvent>) {
        let (mut l, mut r) = (vec![0.0; 400], vec![0.0; 400]);
        let (mut left, mut right, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for b in 0..blocks {
            engine.set_level_pin(match b % 300 {
                100..=149 => Some(Level::HighLoad),
                150..=199 => Some(Level::Overload),
                _ => None,
            });
            if b % 170 == 60 {
                let mut levels = *engine.levels();
                levels.reverb = if levels.reverb > 0.3 { 0.2 } else { 0.6 };
                engine.set_levels(levels).expect("levels");
            }
            engine.process(&mut l, &mut r);
            left.extend_from_slice(&l);
            right.extend_from_slice(&r);
            journal.drain_into(&mut events);
            std::thread::sleep(Duration::from_micros(6_000));
        }
        (left, right, events)
    }

    #[test]
    fn a_replay_and_a_replay_from_a_checkpoint_equal_the_engine() {
        let (mut engine, mut journal) = engine();
        let (left, right, events) = run(&mut engine, &mut journal, 900);
        assert_eq!(journal.lost(), 0);
        assert!(events
            .iter()
            .any(|e| matches!(e, JournalEvent::Texture { .. })));
        assert!(events
            .iter()
            .any(|e| matches!(e, JournalEvent::Level { .. })));
        let config = engine.replay_config().clone();
        let end = left.len() as u64;
        let mid = end / 2;

        let mut replayer = Replayer::new(&config);
        let mut checkpoints = Vec::new();
        let mut it = events.iter().peekable();
        let (mut got_l, mut got_r) = (Vec::new(), Vec::new());
        for to in [mid, end] {
            replayer
                .render_to(&mut it, to, |_, l, r| {
                    got_l.extend_from_slice(l);
                    got_r.extend_from_slice(r);
                    true
                })
                .expect("replay");
            if to == mid {
                checkpoints.push(replayer.checkpoint().expect("keys for every texture"));
            }
        }
        let checkpoint = &checkpoints[0];
        assert!(got_l == left && got_r == right, "the replay differs");

        let mut restored = Replayer::restore(&config, checkpoint).expect("restore");
        assert_eq!(restored.position(), mid);
        let mut it = events.iter().filter(|e| e.frame() >= mid).peekable();
        let (mut tail_l, mut tail_r) = (Vec::new(), Vec::new());
        restored
            .render_to(&mut it, end, |_, l, r| {
                tail_l.extend_from_slice(l);
                tail_r.extend_from_slice(r);
                true
            })
            .expect("replay");
        let m = mid as usize;
        assert!(
            tail_l == left[m..] && tail_r == right[m..],
            "the replay from the checkpoint differs"
        );
    }
}
