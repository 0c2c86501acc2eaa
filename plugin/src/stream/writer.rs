//! The plugin's side of a stream: [`StreamFile::create`] makes the file (off the
//! audio thread: it allocates, maps, pre-faults every page and makes syscalls);
//! [`ShmWriter::write`] copies one block into the ring from `process()` with
//! atomic stores only: no allocation, no lock, no syscall, no page fault.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::MmapOptions;

use super::control::{self, RecordError};
use super::layout::{
    self, capacity_for, encode_compose, stream_path, validate_name, word, NameError, CONTROL_SLOTS,
    FLAG_CLOSED, FLAG_REMOTE_CONTROL, MAGIC, RING_OFFSET, SHM_DIR, VERSION,
};
use super::mapping::{Backing, Mapping};
use crate::compose::phrase::ComposeParams;
use crate::compose::ParamUpdate;
use crate::degrade::Level;
use crate::pacing::RunMode;

/// Channels the plugin streams (its stereo output).
pub const CHANNELS: u16 = 2;
/// Bytes per memory page touched when pre-faulting.
const PAGE_BYTES: usize = 4096;

/// Why a stream file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The stream name is not valid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The sample rate cannot be streamed.
    #[error("sample rate {0} Hz cannot be streamed")]
    SampleRate(f32),
    /// A file operation failed.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// A stream file the plugin made, shared by its stream thread and (through
/// [`ShmWriter`]) its audio thread. Dropping the last reference closes it.
#[derive(Debug)]
pub struct StreamFile {
    map: Mapping,
    name: String,
    path: PathBuf,
    inode: u64,
    closed: AtomicBool,
}

impl StreamFile {
    /// Makes `/dev/shm/auralis-<name>` for audio at `sample_rate`, replacing any
    /// file of that name (a new file: readers notice the new writer). The file is
    /// complete before it appears under its name.
    ///
    /// # Errors
    /// [`CreateError`] for a bad name or rate, or when a file operation fails.
    pub fn create(name: &str, sample_rate: f32) -> Result<Arc<Self>, CreateError> {
        validate_name(name)?;
        let rate = sample_rate.round();
        let range = layout::SAMPLE_RATE_RANGE;
        if !(range.0 as f32..=range.1 as f32).contains(&rate) {
            return Err(CreateError::SampleRate(sample_rate));
        }
        let rate = rate as u32;
        let capacity = capacity_for(rate);
        let path = stream_path(name);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let pid = std::process::id();
        // A dot name: never listed as a stream while it is being filled in.
        let temp = Path::new(SHM_DIR).join(format!(".auralis-{name}.{pid}.{nanos}"));
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| CreateError::Io { path, source }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io_err(&temp))?;
        let ring_len = capacity as usize * usize::from(CHANNELS);
        let result = (|| {
            file.set_len((RING_OFFSET + ring_len * 4) as u64)?;
            // SAFETY: the file is ours alone until it is renamed into place, and
            // afterwards every access to it goes through atomics.
            let mut mmap = unsafe { MmapOptions::new().populate().map_mut(&file)? };
            // Touch every page so that the audio thread never faults one in.
            for page in mmap.chunks_mut(PAGE_BYTES) {
                page[0] = 0;
            }
            if let Err(e) = mmap.lock() {
                tracing::debug!(error = %e, "could not lock the stream in memory");
            }
            let inode = file.metadata()?.ino();
            Ok((mmap, inode))
        })();
        let (mmap, inode) = match result {
            Ok(v) => v,
            Err(source) => {
                // Best effort: the temporary file is useless now.
                let _ = std::fs::remove_file(&temp);
                return Err(CreateError::Io { path: temp, source });
            }
        };
        let map =
            Mapping::new(Backing::Writable(mmap), ring_len).ok_or_else(|| CreateError::Io {
                path: temp.clone(),
                source: io::Error::other("mapping shorter than the file"),
            })?;
        let h = map.header();
        for (i, v) in [
            (word::MAGIC, MAGIC),
            (word::VERSION, VERSION),
            (word::SAMPLE_RATE, u64::from(rate)),
            (word::CHANNELS, u64::from(CHANNELS)),
            (word::CAPACITY, u64::from(capacity)),
            (word::CONTROL_SLOTS, CONTROL_SLOTS),
            (word::RING_OFFSET, RING_OFFSET as u64),
            (word::WRITER_PID, u64::from(pid)),
            (word::SESSION, nanos ^ u64::from(pid).rotate_left(32)),
        ] {
            h[i].store(v, Ordering::Relaxed);
        }
        std::sync::atomic::fence(Ordering::Release);
        std::fs::rename(&temp, &path).map_err(|source| {
            let _ = std::fs::remove_file(&temp);
            CreateError::Io {
                path: path.clone(),
                source,
            }
        })?;
        tracing::info!(stream = name, path = %path.display(), sample_rate = rate, "stream created");
        Ok(Arc::new(Self {
            map,
            name: name.to_owned(),
            path,
            inode,
            closed: AtomicBool::new(false),
        }))
    }

    /// The stream's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The audio thread's writer.
    #[must_use]
    pub fn writer(self: &Arc<Self>) -> ShmWriter {
        let h = self.map.header();
        ShmWriter {
            capacity: h[word::CAPACITY].load(Ordering::Relaxed) as usize,
            file: Arc::clone(self),
            pos: 0,
            index: 0,
            heartbeat: 0,
        }
    }

    fn set_flag(&self, flag: u64, on: bool) {
        let flags = &self.map.header()[word::FLAGS];
        if on {
            flags.fetch_or(flag, Ordering::Release);
        } else {
            flags.fetch_and(!flag, Ordering::Release);
        }
    }

    /// Publishes whether the plugin accepts remote control.
    pub fn set_remote_control(&self, on: bool) {
        self.set_flag(FLAG_REMOTE_CONTROL, on);
    }

    /// Takes the waiting control records, handing each (valid or not) to `take`;
    /// `take` returns whether the record was used, and refusals are counted in the
    /// header for the bridge to see.
    pub fn take_control(&self, mut take: impl FnMut(Result<ParamUpdate, RecordError>) -> bool) {
        let mut refused = 0;
        control::drain(&self.map, |r| {
            if !take(r) {
                refused += 1;
            }
        });
        if refused > 0 {
            self.map.header()[word::CONTROL_REFUSED].fetch_add(refused, Ordering::Release);
        }
    }

    /// Marks the stream closed and removes its file, unless another writer has
    /// replaced it meanwhile. Readers see the stream idle from then on; the
    /// audio thread may still write a block or two into the closed file.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.set_flag(FLAG_CLOSED, true);
        let ours = std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the stream file");
            }
        }
        tracing::info!(stream = %self.name, "stream closed");
    }
}

impl Drop for StreamFile {
    fn drop(&mut self) {
        self.close();
    }
}

/// Writes blocks into a stream's ring from the audio thread.
#[derive(Debug)]
pub struct ShmWriter {
    file: Arc<StreamFile>,
    capacity: usize,
    /// Frames written.
    pos: u64,
    /// The ring frame `pos` goes to.
    index: usize,
    heartbeat: u64,
}

impl ShmWriter {
    /// Copies a block (`left` and `right` of equal length; the shorter one rules)
    /// into the ring, publishes the new write position with release ordering,
    /// bumps the heartbeat and publishes `level`, `run_mode` and `compose`.
    /// Atomic stores only.
    pub fn write(
        &mut self,
        left: &[f32],
        right: &[f32],
        level: Level,
        run_mode: RunMode,
        compose: &ComposeParams,
    ) {
        let map = &self.file.map;
        let ring = map.ring();
        for (l, r) in left.iter().zip(right) {
            let i = self.index * usize::from(CHANNELS);
            if let (Some(a), Some(b)) = (ring.get(i), ring.get(i + 1)) {
                a.store(l.to_bits(), Ordering::Relaxed);
                b.store(r.to_bits(), Ordering::Relaxed);
            }
            self.index += 1;
            if self.index == self.capacity {
                self.index = 0;
            }
            self.pos += 1;
        }
        let h = map.header();
        let [a, b] = encode_compose(compose);
        h[word::COMPOSE_A].store(a, Ordering::Relaxed);
        h[word::COMPOSE_B].store(b, Ordering::Relaxed);
        h[word::LEVEL].store(level as u64, Ordering::Relaxed);
        h[word::RUN_MODE].store(run_mode as u64, Ordering::Relaxed);
        h[word::WRITE_POS].store(self.pos, Ordering::Release);
        self.heartbeat += 1;
        h[word::HEARTBEAT].store(self.heartbeat, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// Minor page faults of the calling thread so far (`/proc/thread-self/stat`,
    /// field 10), read into a buffer the caller owns.
    fn minor_faults(file: &mut std::fs::File, buf: &mut [u8]) -> u64 {
        use std::io::Seek as _;
        file.rewind().unwrap();
        let n = file.read(buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        // Fields after the command name, which is in parentheses.
        let rest = &text[text.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(7).unwrap().parse().unwrap()
    }

    #[test]
    fn writing_never_faults_a_page_in() {
        let name = format!("unit-faults-{}", std::process::id());
        let file = StreamFile::create(&name, 8_000.0).unwrap();
        let mut writer = file.writer();
        let block = [0.5f32; 256];
        let compose = ComposeParams::default();
        let laps = 3 * capacity_for(8_000) as usize / block.len();
        std::thread::spawn(move || {
            let mut stat = std::fs::File::open("/proc/thread-self/stat").unwrap();
            let mut buf = vec![0u8; 4096];
            minor_faults(&mut stat, &mut buf);
            let before = minor_faults(&mut stat, &mut buf);
            for _ in 0..laps {
                writer.write(&block, &block, Level::Normal, RunMode::RealTime, &compose);
            }
            let after = minor_faults(&mut stat, &mut buf);
            assert_eq!(after, before, "page faults while writing three laps");
        })
        .join()
        .unwrap();
        file.close();
        assert!(!stream_path(&name).exists());
    }
}
