//! The plugin's streaming machinery around its audio thread.
//!
//! ```text
//!  params ──► stream thread ── Attach(writer) / Detach ──► StreamOutput (audio thread)
//!             (creates, closes     ◄── old writers back ───┘   writes each block
//!              files; takes control records ─► RemoteControl ─► overlay in process())
//! ```
//!
//! The stream thread ([`StreamService`]) polls the wish (Stream switch, stream
//! name, Remote control) every [`POLL`]: a change of switch or name makes the new
//! file (allocating, mapping, pre-faulting) and hands its writer to the audio
//! thread through a wait-free ring; the writer it replaces comes back on a second
//! ring and is dropped there. So the audio thread swaps writers by moving them:
//! it never allocates, frees, maps or unmaps. A change takes effect at the first
//! block after the new file exists (a few milliseconds); switching off marks the
//! file closed and removes it at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};

use super::remote::RemoteControl;
use super::writer::{ShmWriter, StreamFile};
use crate::compose::phrase::ComposeParams;
use crate::degrade::Level;
use crate::pacing::RunMode;

/// How often the stream thread looks at the parameters and the control ring.
pub const POLL: Duration = Duration::from_millis(10);
/// How long it waits before trying again to create a stream that failed.
const RETRY: Duration = Duration::from_secs(1);
/// Capacity of the ring bringing writers back from the audio thread.
const RETURNS: usize = 4;

/// What the parameters ask of streaming.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamWish {
    /// The stream to write (`None`: streaming off).
    pub stream: Option<String>,
    /// Whether remote control is accepted.
    pub remote_control: bool,
}

/// A message to the audio thread.
#[derive(Debug)]
enum Handoff {
    /// Write this stream from now on.
    Attach(ShmWriter),
    /// Stop writing.
    Detach,
}

/// The audio thread's side: the current writer, if any.
#[derive(Debug)]
pub struct StreamOutput {
    inbox: Consumer<Handoff>,
    returns: Producer<ShmWriter>,
    writer: Option<ShmWriter>,
    /// A writer that could not be returned yet (never happens while the stream
    /// thread keeps one message in flight at a time; kept rather than freed here).
    parked: Option<ShmWriter>,
}

impl StreamOutput {
    /// Takes a pending attach/detach, then writes the block to the current
    /// stream, if any. Wait-free; no allocation, no syscall.
    pub fn write(
        &mut self,
        left: &[f32],
        right: &[f32],
        level: Level,
        run_mode: RunMode,
        compose: &ComposeParams,
    ) {
        if let Some(old) = self.parked.take() {
            self.give_back(old);
        }
        if self.parked.is_none() {
            if let Ok(message) = self.inbox.pop() {
                let old = match message {
                    Handoff::Attach(writer) => self.writer.replace(writer),
                    Handoff::Detach => self.writer.take(),
                };
                if let Some(old) = old {
                    self.give_back(old);
                }
            }
        }
        if let Some(writer) = self.writer.as_mut() {
            writer.write(left, right, level, run_mode, compose);
        }
    }

    fn give_back(&mut self, writer: ShmWriter) {
        if let Err(rtrb::PushError::Full(writer)) = self.returns.push(writer) {
            self.parked = Some(writer);
        }
    }

    /// Whether a stream is being written.
    #[must_use]
    pub const fn is_streaming(&self) -> bool {
        self.writer.is_some()
    }
}

/// The stream thread. Dropping it stops the thread and closes its stream.
#[derive(Debug)]
pub struct StreamService {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StreamService {
    /// Starts the stream thread for audio at `sample_rate`; `wish` reads the
    /// parameters, `remote` receives the remote values.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn spawn(
        sample_rate: f32,
        wish: impl FnMut() -> StreamWish + Send + 'static,
        remote: Arc<RemoteControl>,
    ) -> std::io::Result<(StreamOutput, Self)> {
        let (outbox, inbox) = RingBuffer::new(1);
        let (returns, returned) = RingBuffer::new(RETURNS);
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker {
            sample_rate,
            wish: Box::new(wish),
            remote,
            outbox,
            returned,
            current: None,
            failed: None,
        };
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("auralis-stream".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        worker.step();
                        std::thread::sleep(POLL);
                    }
                })?
        };
        Ok((
            StreamOutput {
                inbox,
                returns,
                writer: None,
                parked: None,
            },
            Self {
                stop,
                thread: Some(thread),
            },
        ))
    }
}

impl Drop for StreamService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the stream thread panicked");
            }
        }
    }
}

/// The stream thread's state.
struct Worker {
    sample_rate: f32,
    wish: Box<dyn FnMut() -> StreamWish + Send>,
    remote: Arc<RemoteControl>,
    outbox: Producer<Handoff>,
    returned: Consumer<ShmWriter>,
    current: Option<Arc<StreamFile>>,
    /// The stream that could not be created, and when.
    failed: Option<(String, Instant)>,
}

impl Worker {
    fn step(&mut self) {
        // Writers the audio thread let go of: unmapped here.
        while let Ok(writer) = self.returned.pop() {
            drop(writer);
        }
        let wish = (self.wish)();
        let current = self.current.as_ref().map(|f| f.name());
        // One message in flight at a time, so the return ring never fills.
        if wish.stream.as_deref() != current
            && self.outbox.slots() == self.outbox.buffer().capacity()
        {
            self.switch(wish.stream.as_deref());
        }
        if !wish.remote_control {
            self.remote.clear();
        }
        if let Some(file) = &self.current {
            file.set_remote_control(wish.remote_control);
            let remote = &self.remote;
            file.take_control(|record| match record {
                Ok(r) if wish.remote_control => {
                    remote.apply(&r);
                    true
                }
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "refused a control record");
                    false
                }
            });
        }
    }

    fn switch(&mut self, to: Option<&str>) {
        if let Some(old) = self.current.take() {
            old.close();
        }
        let Some(name) = to else {
            // Cannot fail: the ring was checked to be empty.
            let _ = self.outbox.push(Handoff::Detach);
            return;
        };
        if let Some((failed, at)) = &self.failed {
            if failed == name && at.elapsed() < RETRY {
                return;
            }
        }
        match StreamFile::create(name, self.sample_rate) {
            Ok(file) => {
                self.failed = None;
                // Cannot fail: the ring was checked to be empty.
                let _ = self.outbox.push(Handoff::Attach(file.writer()));
                self.current = Some(file);
            }
            Err(e) => {
                if self.failed.as_ref().is_none_or(|(n, _)| n != name) {
                    tracing::error!(error = %e, "cannot create the stream");
                }
                self.failed = Some((name.to_owned(), Instant::now()));
                // Stop writing the old stream, if any.
                let _ = self.outbox.push(Handoff::Detach);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::reader::ShmReader;
    use std::sync::Mutex;

    #[test]
    fn switching_on_off_and_renaming_follows_the_wish() {
        let name = format!("unit-{}", std::process::id());
        let wish = Arc::new(Mutex::new(StreamWish::default()));
        let w = Arc::clone(&wish);
        let (mut out, service) = StreamService::spawn(
            8_000.0,
            move || w.lock().unwrap().clone(),
            Arc::new(RemoteControl::default()),
        )
        .unwrap();
        let block = [0.25f32; 64];
        let compose = ComposeParams::default();
        let wait_until = |out: &mut StreamOutput, cond: &dyn Fn(&StreamOutput) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !cond(out) {
                assert!(Instant::now() < deadline, "timed out");
                out.write(&block, &block, Level::Normal, RunMode::RealTime, &compose);
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        *wish.lock().unwrap() = StreamWish {
            stream: Some(name.clone()),
            remote_control: true,
        };
        wait_until(&mut out, &|o| o.is_streaming());
        out.write(
            &block,
            &block,
            Level::HighLoad,
            RunMode::Freewheel,
            &compose,
        );
        let reader = ShmReader::open(&name).unwrap();
        assert!(reader.write_pos() >= 64);
        assert_eq!(reader.level(), Level::HighLoad);
        assert_eq!(reader.run_mode(), RunMode::Freewheel);
        let mut frames = [0.0f32; 128];
        reader.read(reader.write_pos() - 64, &mut frames).unwrap();
        assert!(frames.iter().all(|x| *x == 0.25));
        wait_until(&mut out, &|_| reader.remote_control());
        *wish.lock().unwrap() = StreamWish::default();
        wait_until(&mut out, &|o| !o.is_streaming());
        assert!(reader.closed() && reader.replaced());
        drop(service);
    }
}
