//! Counters of the pre-renderer, shared through atomics so the engine's status,
//! the bridge and the degradation monitor can read them from any thread.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

use super::faults::FaultKind;

/// Which path rendered a texture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// The CPU path.
    #[default]
    Cpu,
    /// The GPU path.
    Gpu,
}

impl Backend {
    fn to_u8(self) -> u8 {
        match self {
            Self::Cpu => 0,
            Self::Gpu => 1,
        }
    }

    fn from_u8(v: u8) -> Self {
        if v == 1 {
            Self::Gpu
        } else {
            Self::Cpu
        }
    }
}

/// Live counters (all monotonic except the rate and the backend).
#[derive(Debug, Default)]
pub struct PrerenderStats {
    attempts: AtomicU64,
    failures: AtomicU64,
    rendered: AtomicU64,
    silenced: AtomicU64,
    gpu_failures: AtomicU64,
    gpu_acquisitions: AtomicU64,
    faults_injected: [AtomicU64; FaultKind::ALL.len()],
    failure_rate_bits: AtomicU32,
    backend: AtomicU8,
    last_phrase: AtomicU64,
    adapter: Mutex<String>,
}

/// A copy of [`PrerenderStats`] at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatsSnapshot {
    /// Render attempts (first tries and retries).
    pub attempts: u64,
    /// Attempts that failed (an error or a rejected texture).
    pub failures: u64,
    /// Phrases delivered with a rendered texture.
    pub rendered: u64,
    /// Phrases given silence after every retry failed.
    pub silenced: u64,
    /// GPU failures that made the pre-renderer fall back on the CPU.
    pub gpu_failures: u64,
    /// Times a GPU device was (re)acquired successfully.
    pub gpu_acquisitions: u64,
    /// Injected faults (`AURALIS_FAULTS`) that fired, by [`FaultKind::index`].
    pub faults_injected: [u64; FaultKind::ALL.len()],
    /// Failures ÷ attempts over the recent window (0..=1).
    pub failure_rate: f32,
    /// The path that renders now.
    pub backend: Backend,
    /// The GPU adapter in use or last used ("" if none).
    pub adapter: String,
    /// Index of the last phrase delivered (rendered or silent).
    pub last_phrase: u64,
}

impl PrerenderStats {
    /// A snapshot of every counter.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            attempts: self.attempts.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            rendered: self.rendered.load(Ordering::Relaxed),
            silenced: self.silenced.load(Ordering::Relaxed),
            gpu_failures: self.gpu_failures.load(Ordering::Relaxed),
            gpu_acquisitions: self.gpu_acquisitions.load(Ordering::Relaxed),
            faults_injected: std::array::from_fn(|i| {
                self.faults_injected[i].load(Ordering::Relaxed)
            }),
            failure_rate: self.failure_rate(),
            backend: self.backend(),
            adapter: self
                .adapter
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            last_phrase: self.last_phrase.load(Ordering::Relaxed),
        }
    }

    /// Failures ÷ attempts over the recent window (lock-free).
    #[must_use]
    pub fn failure_rate(&self) -> f32 {
        f32::from_bits(self.failure_rate_bits.load(Ordering::Relaxed))
    }

    /// The path that renders now (lock-free).
    #[must_use]
    pub fn backend(&self) -> Backend {
        Backend::from_u8(self.backend.load(Ordering::Relaxed))
    }

    pub(crate) fn attempt(&self, failed: bool, window_rate: f32) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.failure_rate_bits
            .store(window_rate.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn delivered(&self, phrase_index: u64, silent: bool) {
        let counter = if silent {
            &self.silenced
        } else {
            &self.rendered
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.last_phrase.store(phrase_index, Ordering::Relaxed);
    }

    pub(crate) fn fault_injected(&self, kind: FaultKind) {
        self.faults_injected[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn gpu_failed(&self) {
        self.gpu_failures.fetch_add(1, Ordering::Relaxed);
        self.set_backend(Backend::Cpu);
    }

    pub(crate) fn gpu_acquired(&self, adapter: &str) {
        self.gpu_acquisitions.fetch_add(1, Ordering::Relaxed);
        adapter.clone_into(&mut self.adapter.lock().unwrap_or_else(PoisonError::into_inner));
        self.set_backend(Backend::Gpu);
    }

    pub(crate) fn set_backend(&self, backend: Backend) {
        self.backend.store(backend.to_u8(), Ordering::Relaxed);
    }
}
