//! The follower: a replayer on a background thread (niced like the texture
//! pre-renderer) that replays the log as it grows and keeps a checkpoint of
//! its state every interval of audio (`--recording-checkpoint-s`), so a render of any
//! stretch starts at most that far before it rather than at the engine's start.
//! Its replay is the exactness of every recording kept honest: an event it
//! cannot follow marks the log broken from there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use auralis::engine::replay::Replayer;

use super::log::EventLog;

/// How often the follower looks for a new interval to replay.
const POLL: Duration = Duration::from_millis(500);

/// The follower thread; stops when dropped.
#[derive(Debug)]
pub struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    /// Starts following `log`, a checkpoint every `interval` of audio.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn(log: Arc<EventLog>, interval: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("auralis-recording-follower".into())
                .spawn(move || follow(&log, interval, &stop))?
        };
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the recording follower panicked");
            }
        }
    }
}

fn follow(log: &EventLog, interval: Duration, stop: &AtomicBool) {
    auralis::prerender::worker::yield_to_time_critical_threads();
    let every = (interval.as_secs_f64() * f64::from(log.config().sample_rate)).round() as u64;
    let every = every.max(1);
    let mut replayer = Replayer::new(log.config());
    while !stop.load(Ordering::Acquire) {
        let next = replayer.position() + every;
        if next > log.end() {
            std::thread::sleep(POLL);
            continue;
        }
        let events = log.events_between(replayer.position(), next);
        let mut it = events.iter().peekable();
        if let Err(e) = replayer.render_to(&mut it, next, |_, _, _| !stop.load(Ordering::Relaxed)) {
            log.mark_broken(replayer.position(), &e.to_string());
            return;
        }
        if replayer.position() < next {
            return;
        }
        match replayer.checkpoint() {
            Some(c) => log.add_checkpoint(c),
            None => {
                log.mark_broken(next, "a replayed texture had no key");
                return;
            }
        }
    }
}
