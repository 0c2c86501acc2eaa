//! The bridge's side of a stream: [`ShmReader::open`] maps a stream file
//! read-only (and its control page read-write), validates its header and never
//! touches memory the header did not account for; [`ShmReader::read`] copies
//! frames out of the ring and tells a lapped read apart from a good one;
//! [`list`] describes every stream in `/dev/shm`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};

use memmap2::MmapOptions;

use super::control::{self, SendError};
use super::layout::{
    parse_header_prefix, stream_path, validate_name, word, Header, HeaderError, NameError,
    CONTROL_BYTES, CONTROL_OFFSET, FILE_PREFIX, FLAG_CLOSED, FLAG_REMOTE_CONTROL, HEADER_BYTES,
    SHM_DIR,
};
use super::mapping::{Backing, Mapping};
use crate::compose::phrase::ComposeParams;
use crate::compose::ParamUpdate;
use crate::degrade::Level;
use crate::pacing::RunMode;

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The stream name is not valid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// No such stream (no plugin has made it, or it was removed).
    #[error("no stream at {0}")]
    Missing(PathBuf),
    /// A file operation failed.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not a valid stream.
    #[error("{path} is not a valid stream: {source}")]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: HeaderError,
    },
}

/// Why a read returned no audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The frames asked for are not written yet.
    #[error("the writer has not written that far yet")]
    NotYet,
    /// The writer overwrote (part of) the frames asked for.
    #[error("the writer lapped the reader")]
    Lapped,
}

/// A stream mapped for reading.
#[derive(Debug)]
pub struct ShmReader {
    map: Mapping,
    path: PathBuf,
    inode: u64,
    header: Header,
}

fn read_prefix(file: &mut File) -> io::Result<(Vec<u8>, u64)> {
    let len = file.metadata()?.len();
    let mut prefix = vec![0u8; HEADER_BYTES];
    let n = file.read(&mut prefix)?;
    prefix.truncate(n);
    Ok((prefix, len))
}

impl ShmReader {
    /// Opens stream `name` (`/dev/shm/auralis-<name>`).
    ///
    /// # Errors
    /// [`OpenError`] for a bad name, a missing file, or a file that is not a valid
    /// stream.
    pub fn open(name: &str) -> Result<Self, OpenError> {
        validate_name(name)?;
        Self::open_path(&stream_path(name))
    }

    /// Opens the stream file at `path`.
    ///
    /// # Errors
    /// As [`ShmReader::open`].
    pub fn open_path(path: &Path) -> Result<Self, OpenError> {
        let io_err = |source: io::Error| {
            if source.kind() == io::ErrorKind::NotFound {
                OpenError::Missing(path.to_owned())
            } else {
                OpenError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        let (prefix, len) = read_prefix(&mut file).map_err(io_err)?;
        let header = parse_header_prefix(&prefix, len).map_err(|source| OpenError::Header {
            path: path.to_owned(),
            source,
        })?;
        let inode = file.metadata().map_err(io_err)?.ino();
        let map_len = usize::try_from(header.file_len()).map_err(|_| OpenError::Header {
            path: path.to_owned(),
            source: HeaderError::Truncated {
                len,
                need: header.file_len(),
            },
        })?;
        // SAFETY: the mapping is only ever read through atomics; the header says the
        // file holds `map_len` bytes and its length was checked against that. A
        // writer that shrinks the file afterwards breaks the protocol (files are
        // replaced, never resized).
        let whole = unsafe { MmapOptions::new().len(map_len).map(&file) }.map_err(io_err)?;
        // SAFETY: as above; the control page is the only part this side writes.
        let control = unsafe {
            MmapOptions::new()
                .offset(CONTROL_OFFSET as u64)
                .len(CONTROL_BYTES)
                .map_mut(&file)
        }
        .map_err(io_err)?;
        let ring_len = header.capacity_frames as usize * usize::from(header.channels);
        let map = Mapping::new(
            Backing::ReadOnly {
                file: whole,
                control,
            },
            ring_len,
        )
        .ok_or_else(|| OpenError::Header {
            path: path.to_owned(),
            source: HeaderError::Truncated {
                len,
                need: header.file_len(),
            },
        })?;
        Ok(Self {
            map,
            path: path.to_owned(),
            inode,
            header,
        })
    }

    /// The header as it was when the stream was opened (rate, channels, capacity,
    /// writer and session never change in a file).
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// Frames written so far (acquire: the frames before it are visible).
    #[must_use]
    pub fn write_pos(&self) -> u64 {
        self.map.header()[word::WRITE_POS].load(Ordering::Acquire)
    }

    /// The writer's `process()` counter.
    #[must_use]
    pub fn heartbeat(&self) -> u64 {
        self.map.header()[word::HEARTBEAT].load(Ordering::Acquire)
    }

    /// The writer's degradation level (overload for a value out of range).
    #[must_use]
    pub fn level(&self) -> Level {
        let v = self.map.header()[word::LEVEL].load(Ordering::Relaxed);
        Level::from_u8(u8::try_from(v).unwrap_or(u8::MAX)).unwrap_or(Level::Overload)
    }

    /// How the writer renders: in real time or as a bounce, and why
    /// (real time for a value out of range).
    #[must_use]
    pub fn run_mode(&self) -> RunMode {
        let v = self.map.header()[word::RUN_MODE].load(Ordering::Relaxed);
        RunMode::from_u8(u8::try_from(v).unwrap_or(u8::MAX))
    }

    fn flags(&self) -> u64 {
        self.map.header()[word::FLAGS].load(Ordering::Acquire)
    }

    /// Whether the writer closed the stream.
    #[must_use]
    pub fn closed(&self) -> bool {
        self.flags() & FLAG_CLOSED != 0
    }

    /// Whether the plugin accepts remote control now.
    #[must_use]
    pub fn remote_control(&self) -> bool {
        self.flags() & FLAG_REMOTE_CONTROL != 0
    }

    /// The musical parameters the plugin publishes, when they are valid.
    #[must_use]
    pub fn compose(&self) -> Option<ComposeParams> {
        let h = self.map.header();
        super::layout::decode_compose(
            h[word::COMPOSE_A].load(Ordering::Relaxed),
            h[word::COMPOSE_B].load(Ordering::Relaxed),
        )
        .ok()
        .flatten()
    }

    /// Whether the file was removed or replaced by a new one since it was opened.
    #[must_use]
    pub fn replaced(&self) -> bool {
        std::fs::metadata(&self.path).map_or(true, |m| m.ino() != self.inode)
    }

    /// Copies the frames starting at frame `from` into `out` (interleaved, a whole
    /// number of frames).
    ///
    /// The writer fills a block into the ring before it publishes the new write
    /// position, so frames it is about to overwrite are still inside the last
    /// `capacity` frames: only the newest `capacity − capacity/4` frames are taken
    /// as safe (a quarter of the ring, half a second, is more than any block).
    ///
    /// # Errors
    /// [`ReadError::NotYet`] when they are not all written yet,
    /// [`ReadError::Lapped`] when the writer overwrote, or may be overwriting, any
    /// of them before or during the copy (`out` is then garbage).
    pub fn read(&self, from: u64, out: &mut [f32]) -> Result<(), ReadError> {
        let channels = usize::from(self.header.channels);
        let capacity = u64::from(self.header.capacity_frames);
        let safe = capacity - capacity / 4;
        let frames = (out.len() / channels) as u64;
        let written = self.write_pos();
        if from.saturating_add(frames) > written {
            return Err(ReadError::NotYet);
        }
        if written - from > safe {
            return Err(ReadError::Lapped);
        }
        let ring = self.map.ring();
        let mut index = (from % capacity) as usize;
        for frame in out.chunks_exact_mut(channels) {
            let base = index * channels;
            for (c, x) in frame.iter_mut().enumerate() {
                *x = ring
                    .get(base + c)
                    .map_or(0.0, |s| f32::from_bits(s.load(Ordering::Relaxed)));
            }
            index += 1;
            if index as u64 == capacity {
                index = 0;
            }
        }
        // The copy is good if the writer did not come near the first frame copied
        // while it ran.
        fence(Ordering::Acquire);
        if self.write_pos() - from > safe {
            return Err(ReadError::Lapped);
        }
        Ok(())
    }

    /// Sends a change to the plugin as a control record (the plugin uses it only
    /// while its Remote control parameter is on).
    ///
    /// # Errors
    /// [`SendError::Full`] when the plugin has not taken the earlier ones.
    pub fn send_control(&self, update: &ParamUpdate) -> Result<(), SendError> {
        control::push(&self.map, update)
    }
}

/// What `/dev/shm` holds for one stream.
#[derive(Debug)]
pub struct Listing {
    /// The stream's name.
    pub name: String,
    /// Its header, or why it is not valid.
    pub header: Result<Header, OpenError>,
}

/// Every `auralis-*` file in `/dev/shm`, sorted by name, with its header read
/// from the file (nothing is mapped).
///
/// # Errors
/// When `/dev/shm` cannot be listed.
pub fn list() -> io::Result<Vec<Listing>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_prefix(FILE_PREFIX)) else {
            continue;
        };
        let path = entry.path();
        let header = match validate_name(name) {
            Err(e) => Err(OpenError::Name(e)),
            Ok(()) => File::open(&path)
                .and_then(|mut f| read_prefix(&mut f))
                .map_err(|source| OpenError::Io {
                    path: path.clone(),
                    source,
                })
                .and_then(|(prefix, len)| {
                    parse_header_prefix(&prefix, len).map_err(|source| OpenError::Header {
                        path: path.clone(),
                        source,
                    })
                }),
        };
        out.push(Listing {
            name: name.to_owned(),
            header,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::writer::StreamFile;

    #[test]
    fn reads_tell_good_frames_from_unwritten_and_lapped_ones() {
        let name = format!("unit-read-{}", std::process::id());
        let file = StreamFile::create(&name, 8_000.0).unwrap();
        let mut writer = file.writer();
        let reader = ShmReader::open(&name).unwrap();
        let capacity = u64::from(reader.header().capacity_frames);
        let compose = ComposeParams::default();
        let mut out = [0.0f32; 2 * 100];
        assert_eq!(reader.read(0, &mut out), Err(ReadError::NotYet));
        // Frame n holds n (left) and -n (right).
        let mut n = 0u64;
        while n < 3 * capacity {
            let left: Vec<f32> = (n..n + 64).map(|i| i as f32).collect();
            let right: Vec<f32> = left.iter().map(|x| -x).collect();
            writer.write(&left, &right, Level::Normal, RunMode::RealTime, &compose);
            n += 64;
        }
        assert_eq!(reader.write_pos(), n);
        reader.read(n - 100, &mut out).unwrap();
        assert!(out
            .chunks(2)
            .zip(n - 100..)
            .all(|(f, i)| f[0] == i as f32 && f[1] == -(i as f32)));
        assert_eq!(reader.read(n - 50, &mut out), Err(ReadError::NotYet));
        assert_eq!(reader.read(n - capacity, &mut out), Err(ReadError::Lapped));
        assert_eq!(reader.read(0, &mut out), Err(ReadError::Lapped));
        let listed = list().unwrap();
        let me = listed.iter().find(|l| l.name == name).expect("listed");
        assert_eq!(me.header.as_ref().map(|h| h.write_pos).ok(), Some(n));
        // The last reference closes the stream.
        drop(file);
        assert!(!reader.closed());
        drop(writer);
        assert!(reader.closed() && reader.replaced());
    }
}
