//! The pre-renderer thread: takes phrases (clones sent by the composer thread
//! through an SPSC request ring), renders their textures with the whole recovery
//! chain ([`Prerenderer`]) into buffers from the pool, and hands them to the
//! real-time renderer ([`TextureFeed`]).
//!
//! Everything `wgpu` lives on this thread; the audio thread only touches the
//! lock-free rings.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use rtrb::{Consumer, Producer, RingBuffer};

use super::pool::{texture_channel, PoolConfig, PoolSide, TextureFeed, TextureKey};
use super::recovery::{PrerenderConfig, Prerenderer};
use super::stats::PrerenderStats;
use super::texture::{texture_frames, Quality};
use crate::compose::phrase::Phrase;

/// Requests the composer may queue ahead of the pre-renderer.
pub const REQUEST_CAPACITY: usize = 8;
/// How long the idle thread sleeps between looks (it is also woken on a request).
const IDLE_PARK: Duration = Duration::from_millis(5);

/// Everything the pre-renderer thread needs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How textures are rendered.
    pub prerender: PrerenderConfig,
    /// The texture pool.
    pub pool: PoolConfig,
}

/// The composer's end: where it sends phrases to pre-render.
#[derive(Debug)]
pub struct TextureRequester {
    requests: Producer<(Phrase, Quality)>,
    quality: Arc<SharedQuality>,
    worker: Thread,
}

impl TextureRequester {
    /// Queues `phrase` for rendering at the quality set now (so what a phrase
    /// sounds like never depends on when the pre-renderer gets to it) and wakes
    /// the pre-renderer. Never blocks.
    ///
    /// # Errors
    /// Gives the phrase back (boxed: it is larger than a result should carry,
    /// and a full queue is rare) when [`REQUEST_CAPACITY`] requests are already
    /// queued.
    pub fn request(&mut self, phrase: Phrase) -> Result<(), Box<Phrase>> {
        match self.requests.push((phrase, self.quality.get())) {
            Ok(()) => {
                self.worker.unpark();
                Ok(())
            }
            Err(rtrb::PushError::Full((phrase, _))) => Err(Box::new(phrase)),
        }
    }

    /// Sets the quality of the phrases requested from now on (the degradation
    /// machine's "fewer partials"); the same setting as
    /// [`PrerenderWorker::set_quality`].
    pub fn set_quality(&self, quality: Quality) {
        self.quality.set(quality);
    }

    /// Requests queued and not yet taken by the pre-renderer.
    #[must_use]
    pub fn queued(&self) -> usize {
        REQUEST_CAPACITY - self.requests.slots()
    }
}

/// The quality the next phrases are rendered at, shared lock-free.
#[derive(Debug)]
pub(crate) struct SharedQuality {
    partials: AtomicU32,
    grains_bits: AtomicU32,
}

impl SharedQuality {
    fn new(q: Quality) -> Self {
        Self {
            partials: AtomicU32::new(q.partials),
            grains_bits: AtomicU32::new(q.grains_per_second.to_bits()),
        }
    }

    pub(crate) fn get(&self) -> Quality {
        Quality {
            partials: self.partials.load(Ordering::Relaxed),
            grains_per_second: f32::from_bits(self.grains_bits.load(Ordering::Relaxed)),
        }
    }

    fn set(&self, q: Quality) {
        self.partials.store(q.partials, Ordering::Relaxed);
        self.grains_bits
            .store(q.grains_per_second.to_bits(), Ordering::Relaxed);
    }
}

/// The running pre-renderer thread. Dropping it stops and joins the thread.
#[derive(Debug)]
pub struct PrerenderWorker {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    stats: Arc<PrerenderStats>,
    quality: Arc<SharedQuality>,
}

impl PrerenderWorker {
    /// Starts the thread (`auralis-prerender`), which acquires the GPU (unless the
    /// CPU is chosen) and waits for phrases. Returns the worker, the composer's
    /// [`TextureRequester`] and the renderer's [`TextureFeed`].
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn spawn(config: WorkerConfig) -> io::Result<(Self, TextureRequester, TextureFeed)> {
        let (requests, incoming) = RingBuffer::new(REQUEST_CAPACITY);
        let (side, feed) = texture_channel(config.pool);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(PrerenderStats::default());
        let quality = Arc::new(SharedQuality::new(config.prerender.quality));
        let thread = {
            let (stop, stats) = (Arc::clone(&stop), Arc::clone(&stats));
            std::thread::Builder::new()
                .name("auralis-prerender".into())
                .spawn(move || run(config.prerender, side, incoming, &stop, stats))?
        };
        let requester = TextureRequester {
            requests,
            quality: Arc::clone(&quality),
            worker: thread.thread().clone(),
        };
        Ok((
            Self {
                thread: Some(thread),
                stop,
                stats,
                quality,
            },
            requester,
            feed,
        ))
    }

    /// The pre-renderer's counters (attempts, failures, failure rate, backend, …).
    #[must_use]
    pub fn stats(&self) -> Arc<PrerenderStats> {
        Arc::clone(&self.stats)
    }

    /// Sets the quality of the phrases requested from now on (the degradation
    /// machine's "fewer partials").
    pub fn set_quality(&self, quality: Quality) {
        self.quality.set(quality);
    }

    /// The quality phrases are requested at now.
    #[must_use]
    pub fn quality(&self) -> Quality {
        self.quality.get()
    }

    /// The shared quality setting, for status readers on other threads.
    pub(crate) fn quality_cell(&self) -> Arc<SharedQuality> {
        Arc::clone(&self.quality)
    }

    /// Stops the thread after the phrase in progress and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                tracing::error!("the pre-renderer thread panicked");
            }
        }
    }
}

impl Drop for PrerenderWorker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread's body.
/// How much lower than the threads that started it the pre-renderer runs
/// (a nice value: Linux sets it per thread).
#[cfg(target_os = "linux")]
const BACKGROUND_NICE: libc::c_int = 10;

/// Texture rendering is bulk work with a phrase of slack: it must never take a core
/// from the audio thread, the composer or a bridge's streaming thread on a busy
/// machine. On Linux this thread (and the threads a software GPU driver starts from
/// it, which inherit its nice value) runs [`BACKGROUND_NICE`] steps lower. Failing to
/// lower it only costs that protection, so it is logged, not fatal.
#[cfg(target_os = "linux")]
pub fn yield_to_time_critical_threads() {
    // SAFETY: `gettid` has no preconditions; `setpriority` on this thread's own id
    // changes nothing but this thread's scheduling priority.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::id_t::try_from(tid).unwrap_or_default(),
            libc::getpriority(libc::PRIO_PROCESS, 0) + BACKGROUND_NICE,
        )
    };
    if rc != 0 {
        tracing::warn!(
            error = %io::Error::last_os_error(),
            "could not lower the pre-renderer's priority"
        );
    }
}

/// Elsewhere the pre-renderer keeps the priority it was started with.
#[cfg(not(target_os = "linux"))]
pub fn yield_to_time_critical_threads() {}

fn run(
    config: PrerenderConfig,
    mut side: PoolSide,
    mut requests: Consumer<(Phrase, Quality)>,
    stop: &AtomicBool,
    stats: Arc<PrerenderStats>,
) {
    yield_to_time_critical_threads();
    let sample_rate = config.sample_rate;
    let mut pre = Prerenderer::with_stats(config, stats);
    while !stop.load(Ordering::Acquire) {
        side.reclaim();
        let Ok((phrase, quality)) = requests.pop() else {
            if requests.is_abandoned() || side.renderer_gone() {
                break;
            }
            std::thread::park_timeout(IDLE_PARK);
            continue;
        };
        let _span = tracing::debug_span!("prerender", phrase = phrase.index).entered();
        let Some(mut texture) = wait_for_free(&mut side, stop) else {
            break;
        };
        let frames = texture_frames(&phrase, sample_rate);
        if texture.capacity() < frames {
            tracing::debug!(
                frames,
                capacity = texture.capacity(),
                "growing a texture buffer"
            );
            texture.ensure_capacity(frames);
        }
        pre.set_quality(quality);
        let kind = {
            let (left, right) = texture.buffers_mut();
            pre.render_phrase(&phrase, left, right)
        };
        let key = TextureKey {
            phrase: phrase.key(),
            quality,
            simplifications: pre.last_simplifications(),
            kind,
        };
        texture.set_content(&phrase, frames, kind, Some(key));
        side.send(texture);
    }
    tracing::debug!("pre-renderer thread stopped");
}

/// A free texture, waiting for the renderer to give one back; `None` when asked
/// to stop or when the renderer has gone.
fn wait_for_free(side: &mut PoolSide, stop: &AtomicBool) -> Option<super::pool::Texture> {
    loop {
        if let Some(t) = side.take_free() {
            return Some(t);
        }
        if stop.load(Ordering::Acquire) || side.renderer_gone() {
            return None;
        }
        std::thread::park_timeout(IDLE_PARK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{ComposeParams, Composer};
    use crate::prerender::gpu::RendererChoice;
    use crate::prerender::recovery::TextureKind;
    use crate::prerender::stats::Backend;

    const SR: f32 = 8_000.0;

    fn params() -> ComposeParams {
        ComposeParams {
            bars: 1,
            bpm: 120.0,
            ..ComposeParams::default()
        }
    }

    fn spawn(faults: &str, textures: usize) -> (PrerenderWorker, TextureRequester, TextureFeed) {
        let mut prerender = PrerenderConfig::new(4, SR);
        prerender.renderer = RendererChoice::Cpu;
        prerender.retry_pause = Duration::from_millis(1);
        prerender.faults = faults.parse().expect("valid");
        let mut pool = PoolConfig::for_params(&params(), SR);
        pool.textures = textures;
        PrerenderWorker::spawn(WorkerConfig { prerender, pool }).expect("thread starts")
    }

    #[test]
    fn phrases_go_in_and_textures_come_out_in_order() {
        let (worker, mut requester, mut feed) = spawn("", 3);
        let composer = Composer::new(4, params());
        let wait = Duration::from_secs(30);
        for index in 0..6 {
            requester.request(composer.seek(index)).expect("room");
            let t = feed.take_blocking(index, wait).expect("texture arrives");
            assert_eq!(t.phrase_index(), index);
            assert_eq!(t.frames(), 32_000, "2 s of phrase and 2 s of tail");
            assert_eq!(t.params(), &params());
            assert_eq!(t.kind(), TextureKind::Rendered(Backend::Cpu));
            assert!(t.left().iter().any(|v| *v != 0.0));
            feed.give_back(t);
        }
        let s = worker.stats().snapshot();
        assert_eq!((s.rendered, s.attempts, s.last_phrase), (6, 6, 5));
        worker.stop();
    }

    #[test]
    fn pool_of_two_recycles_buffers_and_grows_for_longer_phrases() {
        let (worker, mut requester, mut feed) = spawn("", 2);
        let slow = ComposeParams {
            bpm: 60.0,
            ..params()
        };
        let wait = Duration::from_secs(30);
        for index in 0..4 {
            let params = if index == 2 { slow } else { params() };
            requester
                .request(Composer::new(4, params).seek(index))
                .expect("room");
            let t = feed.take_blocking(index, wait).expect("texture arrives");
            let want = if index == 2 { 48_000 } else { 32_000 };
            assert_eq!(t.frames(), want);
            feed.give_back(t);
        }
        drop(worker);
    }

    #[test]
    fn faults_in_the_worker_keep_the_stream_continuous() {
        let (worker, mut requester, mut feed) = spawn("render_nan:0.3,render_error:0.5", 3);
        let composer = Composer::new(4, params());
        for index in 0..8 {
            requester.request(composer.seek(index)).expect("room");
            let t = feed
                .take_blocking(index, Duration::from_secs(30))
                .expect("a texture (maybe silent) for every phrase");
            assert_eq!(t.frames(), 32_000, "no gap");
            assert!(t.left().iter().chain(t.right()).all(|v| v.is_finite()));
            feed.give_back(t);
        }
        let s = worker.stats().snapshot();
        assert_eq!(s.rendered + s.silenced, 8);
        assert!(s.failures > 0, "{s:?}");
    }

    #[test]
    fn gpu_faults_in_the_worker_cost_no_phrase() {
        let Some(ctx) = crate::prerender::gpu::test_context() else {
            return;
        };
        drop(ctx);
        let mut prerender = PrerenderConfig::new(4, SR);
        prerender.renderer = RendererChoice::Gpu;
        prerender.gpu_cooldown = Duration::from_millis(20);
        prerender.faults = "device_lost@0s,gpu_oom:0.3".parse().expect("valid");
        let pool = PoolConfig::for_params(&params(), SR);
        let (worker, mut requester, mut feed) =
            PrerenderWorker::spawn(WorkerConfig { prerender, pool }).expect("thread starts");
        let composer = Composer::new(4, params());
        for index in 0..6 {
            requester.request(composer.seek(index)).expect("room");
            let t = feed
                .take_blocking(index, Duration::from_secs(60))
                .expect("texture arrives");
            assert!(
                matches!(t.kind(), TextureKind::Rendered(_)),
                "{:?}",
                t.kind()
            );
            assert!(t.left().iter().all(|v| v.is_finite()));
            feed.give_back(t);
            std::thread::sleep(Duration::from_millis(10));
        }
        let s = worker.stats().snapshot();
        assert!(s.gpu_failures >= 1, "{s:?}");
        assert_eq!((s.failures, s.silenced, s.rendered), (0, 0, 6));
    }

    #[test]
    fn quality_can_be_lowered_while_running() {
        let (worker, mut requester, mut feed) = spawn("", 2);
        worker.set_quality(Quality {
            partials: 4,
            grains_per_second: 0.0,
        });
        let composer = Composer::new(4, params());
        requester.request(composer.seek(0)).expect("room");
        let t = feed
            .take_blocking(0, Duration::from_secs(30))
            .expect("texture");
        let desc = crate::prerender::texture::TextureDesc::build(
            4,
            &composer.seek(0),
            SR,
            Quality {
                partials: 4,
                grains_per_second: 0.0,
            },
        );
        let (mut l, mut r) = (vec![0.0; 32_000], vec![0.0; 32_000]);
        crate::prerender::cpu::CpuRenderer::new()
            .render(&desc, &mut l, &mut r)
            .expect("fits");
        assert_eq!(t.left(), &l[..]);
        feed.give_back(t);
    }
}
