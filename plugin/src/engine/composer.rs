//! The composer thread: keeps the phrase the renderer wants next composed with the
//! newest parameters and degradation level, asks the pre-renderer for its
//! texture, and (in real time) polls the load monitor.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::params_cell::ParamsCell;
use super::status::RendererProbe;
use crate::compose::phrase::Phrase;
use crate::compose::Composer;
use crate::degrade::monitor::{DegradeShared, Monitor, TextureLoad};
use crate::degrade::{shape_params, thin_phrase, Level};
use crate::pacing::RunMode;
use crate::prerender::{Quality, TextureRequester};
use crate::render::feed::PhraseSender;
use crate::render::RenderMode;

/// State shared by the engine and its composer thread.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    /// Index of the phrase the renderer needs next (published by the renderer).
    pub(super) wanted: Arc<AtomicU64>,
    /// Bumped by every jump of the song position: the composer forgets what it
    /// sent and derives the wanted phrase's history afresh.
    pub(super) seek_gen: AtomicU64,
    pub(super) params: ParamsCell,
    /// Load meter, degradation level and pin.
    pub(super) degrade: Arc<DegradeShared>,
    /// The [`RunMode`] in force, set by the audio thread.
    pub(super) run_mode: AtomicU8,
}

impl Shared {
    /// The run mode in force.
    pub(super) fn run_mode(&self) -> RunMode {
        RunMode::from_u8(self.run_mode.load(Ordering::Acquire))
    }

    /// The degradation level that applies: the machine's (or the pin) in real
    /// time; otherwise ([`RunMode::degrades`]) only a pin.
    pub(super) fn level(&self) -> Level {
        if self.run_mode().degrades() {
            self.degrade.level()
        } else {
            self.degrade.pin().unwrap_or_default()
        }
    }
}

/// The composer thread's end of the texture layer.
#[derive(Debug)]
pub(super) struct TextureClient {
    /// Where phrases go to have their texture rendered.
    pub(super) requester: TextureRequester,
    /// The texture's state, for the load monitor.
    pub(super) probe: RendererProbe,
}

/// The composer thread's state.
pub(super) struct ComposerThread {
    composer: Composer,
    /// The degradation level phrases are composed for.
    level: Level,
    /// Samples the load and steps the degradation machine (in real time).
    monitor: Monitor,
    shared: Arc<Shared>,
    sender: PhraseSender,
    params_version: u64,
    /// The last jump seen ([`Shared::seek_gen`]).
    seek_gen: u64,
    /// The newest phrase sent: its index and the degree of its last chord.
    sent: Option<(u64, u8)>,
    /// The degree that ends the phrase before `sent` (what `sent` continued from).
    sent_prev: Option<u8>,
    /// The pre-renderer (texture on).
    textures: Option<TextureClient>,
    /// A texture request the full request ring refused, to send again.
    unrequested: Option<Box<Phrase>>,
    /// The run mode seen at the last step.
    run_mode: RunMode,
}

impl ComposerThread {
    pub(super) fn new(
        seed: u64,
        shared: Arc<Shared>,
        sender: PhraseSender,
        monitor: Monitor,
        textures: Option<TextureClient>,
    ) -> Self {
        let (params_version, params) = shared.params.read();
        let seek_gen = shared.seek_gen.load(Ordering::Acquire);
        let level = shared.level();
        let run_mode = shared.run_mode();
        if let Some(t) = textures.as_ref() {
            t.requester.set_quality(Quality::for_level(level));
        }
        Self {
            composer: Composer::new(seed, shape_params(level, params)),
            level,
            monitor,
            shared,
            sender,
            params_version,
            seek_gen,
            sent: None,
            sent_prev: None,
            textures,
            unrequested: None,
            run_mode,
        }
    }

    /// Asks for the texture of `phrase` (kept to ask again if the ring is full).
    fn request_texture(&mut self, phrase: Phrase) {
        if let Some(textures) = self.textures.as_mut() {
            self.unrequested = textures.requester.request(phrase).err();
        }
    }

    /// Looks for work until the engine stops: every `realtime` in real time,
    /// every `bounce` as a bounce (where the renderer may be waiting).
    pub(super) fn run(mut self, realtime: Duration, bounce: Duration) {
        while !self.shared.stop.load(Ordering::Acquire) {
            self.step();
            std::thread::sleep(match self.run_mode.render_mode() {
                RenderMode::RealTime => realtime,
                RenderMode::Offline => bounce,
            });
        }
    }

    /// Notices a change of run mode: logs it (once, from this thread, never the
    /// audio thread's) and, back in real time, starts the load monitor afresh
    /// (what it measured before the bounce says nothing about now).
    fn follow_run_mode(&mut self) {
        let mode = self.shared.run_mode();
        if mode == self.run_mode {
            return;
        }
        tracing::info!(from = %self.run_mode, to = %mode, "render mode changed");
        if mode.degrades() {
            self.monitor.restart();
        }
        self.run_mode = mode;
    }

    /// One look for work: free returned phrases, pick up new parameters and
    /// jumps, and make sure the phrase the renderer wants next is composed with the
    /// newest parameters.
    pub(super) fn step(&mut self) {
        while let Ok(done) = self.sender.returned.pop() {
            drop(done);
        }
        if let Some(phrase) = self.unrequested.take() {
            self.request_texture(*phrase);
        }
        let seek_gen = self.shared.seek_gen.load(Ordering::Acquire);
        if seek_gen != self.seek_gen {
            // A jump: whatever was sent may be the wrong phrase now.
            self.seek_gen = seek_gen;
            self.sent = None;
            self.sent_prev = None;
        }
        self.follow_run_mode();
        if self.run_mode.degrades() {
            let texture = self
                .textures
                .as_ref()
                .map_or_else(TextureLoad::default, |t| t.probe.texture_load());
            self.monitor.poll(texture);
        }
        let changed = self.pick_up_changes();
        self.send_wanted(changed);
    }

    /// Takes new parameters and a new degradation level (which changes what is
    /// composed just like new parameters); returns whether either changed.
    fn pick_up_changes(&mut self) -> bool {
        let (version, params) = self.shared.params.read();
        let level = self.shared.level();
        if version == self.params_version && level == self.level {
            return false;
        }
        self.params_version = version;
        self.level = level;
        self.composer.set_params(shape_params(level, params));
        if let Some(t) = self.textures.as_ref() {
            t.requester.set_quality(Quality::for_level(level));
        }
        tracing::debug!(?params, %level, "composer picked up new parameters");
        true
    }

    /// Composes and sends the phrase the renderer wants next, unless it was sent
    /// already with the parameters in force (`changed`: they changed since).
    fn send_wanted(&mut self, changed: bool) {
        let want = self.shared.wanted.load(Ordering::Acquire);
        let (index, prev) = match self.sent {
            // Not sent yet: continue from the phrase before it.
            Some((i, last)) if i + 1 == want => (want, Some(last)),
            // Sent but not started, and the parameters changed: compose it again.
            Some((i, _)) if i == want && changed => (want, self.sent_prev),
            Some((i, _)) if i >= want => return,
            // Anything else (the first phrase, a jump): derive the history.
            _ => (want, self.composer.prev_degree_at(want)),
        };
        if self.sender.outgoing.slots() == 0 {
            return;
        }
        let mut phrase = self.composer.compose(index, prev);
        thin_phrase(self.level, &mut phrase);
        let last = phrase.last_degree();
        // Real time, the level decides whether a texture is heard, so whether one
        // is rendered; otherwise every phrase has one (a bounce waits for it).
        let texture =
            self.textures.is_some() && (!self.run_mode.degrades() || self.level.profile().texture);
        let copy = texture.then(|| phrase.clone());
        if self.sender.outgoing.push(phrase).is_ok() {
            self.sent = Some((index, last));
            self.sent_prev = prev;
            if let Some(copy) = copy {
                self.request_texture(copy);
            }
        }
    }
}
