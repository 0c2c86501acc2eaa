//! One recording's render: a replayer started from the script's base, run
//! silently up to the stretch, then through it into a WAV (24-bit) or
//! Ogg/Opus encoder whose bytes go to the HTTP response as they are made. It
//! runs on its own thread, niced below the streaming threads, one thread per
//! recording; the number of recordings at once is limited by [`Renders`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use auralis::engine::replay::{ReplayConfig, ReplayError, Replayer};
use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::sync::mpsc;

use super::log::{Base, Script};
use crate::codec::ogg::{OggHeaders, OggOpusStream};
use crate::codec::opus::{OpusStream, PACKET_FRAMES};
use crate::codec::CodecError;

/// Bytes sent to the response at a time.
const SEND_BYTES: usize = 256 * 1024;
/// Largest 24-bit sample.
const I24_MAX: f32 = 8_388_607.0;

/// The file a recording is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RIFF WAVE, 24-bit PCM, the source's rate and channels.
    Wav,
    /// Ogg/Opus at the stream's bitrate, 48 kHz.
    Opus,
}

impl Format {
    /// The `format=` name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Opus => "opus",
        }
    }

    /// The file extension.
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Opus => "opus",
        }
    }

    /// The content type.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Opus => "audio/ogg",
        }
    }

    /// Bytes of a WAV of `frames` stereo frames (`None` for Opus: not known
    /// ahead).
    #[must_use]
    pub const fn exact_len(self, frames: u64) -> Option<u64> {
        match self {
            Self::Wav => Some(44 + frames * 2 * 3),
            Self::Opus => None,
        }
    }
}

/// The limit on recordings rendered at once.
#[derive(Debug)]
pub struct Renders {
    active: AtomicUsize,
    limit: usize,
}

/// A slot of [`Renders`], given back when dropped.
#[derive(Debug)]
pub struct RenderSlot(Arc<Renders>);

impl Drop for RenderSlot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Renders {
    /// At most `limit` at once.
    #[must_use]
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            active: AtomicUsize::new(0),
            limit: limit.max(1),
        })
    }

    /// A slot, or `None` when `limit` renders run already.
    #[must_use]
    pub fn try_acquire(self: &Arc<Self>) -> Option<RenderSlot> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| RenderSlot(Arc::clone(self)))
    }

    /// Renders running now.
    #[must_use]
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// The limit.
    #[must_use]
    pub const fn limit(&self) -> usize {
        self.limit
    }
}

/// One recording to render.
#[derive(Debug)]
pub struct Job {
    /// Where to start and what happened.
    pub script: Script,
    /// The engine's settings.
    pub config: ReplayConfig,
    /// First frame of the stretch.
    pub from: u64,
    /// Frame after its last.
    pub to: u64,
    /// The file format.
    pub format: Format,
    /// Opus bitrate.
    pub opus_kbps: u32,
    /// OpusTags of an Opus file.
    pub tags: Vec<(&'static str, String)>,
}

/// A chunk of the file, or why it stopped.
pub type Piece = Result<Bytes, std::io::Error>;

/// Starts rendering `job` on its own thread (holding `slot` until it ends);
/// its bytes arrive on the returned channel, an error as the last item.
///
/// # Errors
/// The thread could not be spawned.
pub fn spawn(job: Job, slot: RenderSlot) -> std::io::Result<mpsc::Receiver<Piece>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::Builder::new()
        .name("auralis-recording".into())
        .spawn(move || {
            let _slot = slot;
            auralis::prerender::worker::yield_to_time_critical_threads();
            let (from, to, format) = (job.from, job.to, job.format.name());
            let started = std::time::Instant::now();
            match render(&job, &tx) {
                Ok(true) => tracing::info!(
                    from,
                    to,
                    format,
                    wall_ms = started.elapsed().as_millis() as u64,
                    "recording rendered"
                ),
                Ok(false) => tracing::info!(from, to, "recording abandoned by its client"),
                Err(e) => {
                    tracing::error!(from, to, error = %e, "recording failed");
                    // The client sees the transfer break off: nothing half-written
                    // looks whole (a WAV's length is announced, Opus is chunked).
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        })?;
    Ok(rx)
}

/// Why a render stopped.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The replay could not go on.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The Opus encoder refused the format.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// The file's encoder.
enum Encoder {
    Wav,
    Opus(Box<(OpusStream, OggOpusStream)>),
}

impl Encoder {
    fn new(job: &Job) -> Result<(Self, BytesMut), Failure> {
        let rate = job.config.sample_rate as u32;
        let mut out = BytesMut::with_capacity(SEND_BYTES + 4096);
        match job.format {
            Format::Wav => {
                wav_header(&mut out, rate, job.to - job.from);
                Ok((Self::Wav, out))
            }
            Format::Opus => {
                let headers = OggHeaders::new(2);
                let opus = OpusStream::new(rate, 2, job.opus_kbps)?;
                out.put(headers.preamble(&job.tags));
                Ok((
                    Self::Opus(Box::new((opus, OggOpusStream::new(headers)))),
                    out,
                ))
            }
        }
    }

    fn encode(&mut self, left: &[f32], right: &[f32], out: &mut BytesMut, scratch: &mut Vec<f32>) {
        match self {
            Self::Wav => {
                for (l, r) in left.iter().zip(right) {
                    out.put_slice(&i24(*l));
                    out.put_slice(&i24(*r));
                }
            }
            Self::Opus(enc) => {
                scratch.clear();
                for (l, r) in left.iter().zip(right) {
                    scratch.push(*l);
                    scratch.push(*r);
                }
                let (opus, ogg) = &mut **enc;
                let chunk = opus.encode(scratch);
                out.put(ogg.page(&chunk));
            }
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        if let Self::Opus(enc) = self {
            // Completes the last packet (at most 20 ms of silence after the end).
            let (opus, ogg) = &mut **enc;
            let chunk = opus.encode(&vec![0.0; PACKET_FRAMES * 2]);
            out.put(ogg.page(&chunk));
        }
    }
}

/// A sample as 24-bit little-endian PCM (clamped to full scale).
#[must_use]
pub fn i24(x: f32) -> [u8; 3] {
    let v = (x.clamp(-1.0, 1.0) * I24_MAX).round() as i32;
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// The 44-byte header of a stereo 24-bit WAV of `frames` frames at `rate`.
fn wav_header(out: &mut BytesMut, rate: u32, frames: u64) {
    let data = u32::try_from(frames * 6).unwrap_or(u32::MAX - 36);
    out.put_slice(b"RIFF");
    out.put_u32_le(36 + data);
    out.put_slice(b"WAVEfmt ");
    out.put_u32_le(16);
    out.put_u16_le(1); // PCM
    out.put_u16_le(2);
    out.put_u32_le(rate);
    out.put_u32_le(rate * 6);
    out.put_u16_le(6);
    out.put_u16_le(24);
    out.put_slice(b"data");
    out.put_u32_le(data);
}

/// Renders `job` into `tx`; `false` when the client went away.
fn render(job: &Job, tx: &mpsc::Sender<Piece>) -> Result<bool, Failure> {
    let mut replayer = match &job.script.base {
        Base::Start => Replayer::new(&job.config),
        Base::Checkpoint(c) => Replayer::restore(&job.config, c)?,
    };
    let (mut encoder, mut out) = Encoder::new(job)?;
    let mut events = job.script.events.iter().peekable();
    while events
        .next_if(|e| e.frame() < replayer.position())
        .is_some()
    {}
    replayer.render_to(&mut events, job.from, |_, _, _| !tx.is_closed())?;
    let mut scratch = Vec::new();
    let mut open = true;
    replayer.render_to(&mut events, job.to, |_, left, right| {
        encoder.encode(left, right, &mut out, &mut scratch);
        if out.len() >= SEND_BYTES {
            open = tx.blocking_send(Ok(out.split().freeze())).is_ok();
        }
        open
    })?;
    if !open || replayer.position() < job.to {
        return Ok(false);
    }
    encoder.finish(&mut out);
    if !out.is_empty() && tx.blocking_send(Ok(out.freeze())).is_err() {
        return Ok(false);
    }
    Ok(true)
}
