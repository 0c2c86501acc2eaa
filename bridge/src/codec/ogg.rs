//! The Ogg/Opus stream of `GET /stream.opus` (RFC 7845), written with the `ogg`
//! crate: one page per chunk, made once per stream and shared by every listener.
//!
//! A listener that joins mid-stream gets its own two header pages (OpusHead with
//! the encoder's pre-skip, OpusTags naming the piece) and then the shared pages
//! from the live edge. Their granule positions count from the stream's start, so
//! a player reads the first page's position as the stream's start time, as for
//! any live Ogg stream it tunes into.

use std::borrow::Cow;

use bytes::Bytes;
use ogg::{PacketWriteEndInfo, PacketWriter};

use super::opus::{OpusChunk, OPUS_RATE_HZ, PRE_SKIP};

/// Vendor string of OpusTags.
const VENDOR: &str = concat!("auralis-bridge ", env!("CARGO_PKG_VERSION"), " (opus-rs)");

/// What a listener's header pages say: the logical stream's serial and its
/// channels. A small `Copy` value, so the HTTP side can make a new listener's
/// pages while the pump owns the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OggHeaders {
    /// The logical bitstream's serial number.
    pub serial: u32,
    /// 1 or 2.
    pub channels: u8,
}

impl OggHeaders {
    /// Headers for a stream of `channels`; the serial differs per process, so a
    /// player can tell a restarted bridge's stream from the old one.
    #[must_use]
    pub fn new(channels: u8) -> Self {
        Self {
            serial: std::process::id().rotate_left(16) ^ 0x4155_5231,
            channels,
        }
    }

    /// The two header pages a new listener starts with: OpusHead and OpusTags
    /// carrying `tags` (for example `TITLE`, `ARTIST`, `COMMENT`).
    #[must_use]
    pub fn preamble(&self, tags: &[(&str, String)]) -> Bytes {
        let mut writer = PacketWriter::new(Vec::with_capacity(256));
        let end = PacketWriteEndInfo::EndPage;
        write(&mut writer, self.serial, opus_head(self.channels), end, 0);
        write(&mut writer, self.serial, opus_tags(tags), end, 0);
        Bytes::from(writer.into_inner())
    }
}

/// The shared Ogg pages of one stream.
pub struct OggOpusStream {
    headers: OggHeaders,
    writer: PacketWriter<'static, Vec<u8>>,
}

impl std::fmt::Debug for OggOpusStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusStream")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

fn write(
    writer: &mut PacketWriter<'static, Vec<u8>>,
    serial: u32,
    packet: Vec<u8>,
    end: PacketWriteEndInfo,
    granule: u64,
) {
    // Writing into a Vec cannot fail.
    if let Err(e) = writer.write_packet(Cow::Owned(packet), serial, end, granule) {
        tracing::error!(error = %e, "an Ogg page could not be written");
    }
}

/// OpusHead (RFC 7845 §5.1): version 1, mapping family 0.
fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1);
    head.push(channels);
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&OPUS_RATE_HZ.to_le_bytes());
    head.extend_from_slice(&0_i16.to_le_bytes());
    head.push(0);
    head
}

/// OpusTags (RFC 7845 §5.2) with `tags` as `NAME=value` comments.
fn opus_tags(tags: &[(&str, String)]) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, text: &[u8]) {
        // Tags are a few dozen bytes: the length always fits a u32.
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text);
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"OpusTags");
    put(&mut out, VENDOR.as_bytes());
    out.extend_from_slice(&(tags.len() as u32).to_le_bytes());
    for (name, value) in tags {
        put(&mut out, format!("{name}={value}").as_bytes());
    }
    out
}

impl OggOpusStream {
    /// The pages of the stream `headers` describe.
    #[must_use]
    pub fn new(headers: OggHeaders) -> Self {
        let mut writer = PacketWriter::new(Vec::new());
        // The shared stream's own header pages take page numbers 0 and 1, so the
        // first audio page is 2, as in a file; listeners get theirs from
        // `OggHeaders::preamble`.
        let end = PacketWriteEndInfo::EndPage;
        write(
            &mut writer,
            headers.serial,
            opus_head(headers.channels),
            end,
            0,
        );
        write(&mut writer, headers.serial, opus_tags(&[]), end, 0);
        writer.inner_mut().clear();
        Self { headers, writer }
    }

    /// The page that carries `chunk`'s packets (empty when it has none).
    pub fn page(&mut self, chunk: &OpusChunk) -> Bytes {
        let last = chunk.packets.len().saturating_sub(1);
        for (i, packet) in chunk.packets.iter().enumerate() {
            let end = if i == last {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            let serial = self.headers.serial;
            write(
                &mut self.writer,
                serial,
                packet.to_vec(),
                end,
                chunk.granule_end,
            );
        }
        Bytes::from(std::mem::take(self.writer.inner_mut()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use ogg::PacketReader;

    use super::*;
    use crate::codec::opus::{OpusStream, DEFAULT_KBPS};

    fn listener_bytes(join_at: usize, chunks: usize) -> Vec<u8> {
        let mut enc = OpusStream::new(48_000, 2, DEFAULT_KBPS).expect("encoder");
        let headers = OggHeaders {
            serial: 0xA0A1,
            channels: 2,
        };
        let mut ogg = OggOpusStream::new(headers);
        let mut out = headers
            .preamble(&[("TITLE", "Auralis: focus".into())])
            .to_vec();
        for k in 0..chunks {
            let page = ogg.page(&enc.encode(&vec![0.1; 9600]));
            if k >= join_at {
                out.extend_from_slice(&page);
            }
        }
        out
    }

    #[test]
    fn a_late_listener_reads_headers_then_live_pages() {
        let bytes = listener_bytes(7, 10);
        let mut reader = PacketReader::new(Cursor::new(bytes));
        let head = reader.read_packet_expected().expect("OpusHead");
        assert_eq!(&head.data[..8], b"OpusHead");
        assert_eq!(u16::from_le_bytes([head.data[10], head.data[11]]), PRE_SKIP);
        assert!(head.first_in_stream());
        let tags = reader.read_packet_expected().expect("OpusTags");
        assert_eq!(&tags.data[..8], b"OpusTags");
        assert!(String::from_utf8_lossy(&tags.data).contains("TITLE=Auralis: focus"));
        let mut audio = 0;
        let mut last_granule = 0;
        while let Some(p) = reader.read_packet().expect("well-formed pages") {
            audio += 1;
            last_granule = p.absgp_page();
        }
        assert_eq!(audio, 15, "three chunks of five packets");
        assert_eq!(last_granule, 10 * 4800);
    }

    #[test]
    fn a_chunk_without_packets_makes_no_page() {
        let mut ogg = OggOpusStream::new(OggHeaders::new(2));
        let empty = OpusChunk {
            payload: Bytes::new(),
            packets: Vec::new(),
            granule_end: 0,
            failed: false,
        };
        assert!(ogg.page(&empty).is_empty());
    }
}
