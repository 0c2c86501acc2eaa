//! The Ogg/Opus pages a mount is fed, one [`Feed`] per distinct bitrate: at the
//! stream's `--opus-kbps` they are the pages the pump already made for
//! `/stream.opus`; at another `?kbps=` a thread of its own encodes the chunks'
//! samples again, once for every mount at that bitrate, so the real-time pump
//! never waits on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::codec::ogg::{OggHeaders, OggOpusStream};
use crate::codec::opus::OpusStream;
use crate::codec::CodecError;
use crate::hub::Chunk;
use crate::AppState;

/// Pages buffered per feed for its slowest mount: ten seconds of 100 ms chunks.
const FEED_PAGES: usize = 100;

/// A broadcast of one bitrate's Ogg pages, and the header pages they follow.
#[derive(Debug)]
pub struct Feed {
    /// The bitrate of its pages.
    pub kbps: u32,
    /// Its logical stream: its own serial unless it is the stream's.
    pub headers: OggHeaders,
    pages: broadcast::Sender<Bytes>,
}

impl Feed {
    /// A receiver of the pages from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.pages.subscribe()
    }
}

/// One feed per distinct bitrate of `kbps`, started; the stream's own bitrate
/// forwards the pump's pages, any other gets its encoder thread.
///
/// # Errors
/// [`CodecError`] when the Opus encoder refuses a bitrate or the source's format.
pub fn start(
    state: &AppState,
    kbps: impl IntoIterator<Item = u32>,
) -> Result<BTreeMap<u32, Arc<Feed>>, CodecError> {
    let mut feeds = BTreeMap::new();
    for kbps in kbps {
        if feeds.contains_key(&kbps) {
            continue;
        }
        let (pages, _) = broadcast::channel(FEED_PAGES);
        let audio = state.hub.subscribe_audio();
        let headers = if kbps == state.config.opus_kbps {
            tokio::spawn(forward(audio, pages.clone()));
            state.pump.ogg_headers()
        } else {
            let info = state.pump.info();
            let stream = state.pump.ogg_headers();
            let headers = OggHeaders {
                serial: stream.serial ^ kbps,
                ..stream
            };
            let opus = OpusStream::new(info.sample_rate, info.channels, kbps)?;
            let ogg = OggOpusStream::new(headers);
            let out = pages.clone();
            std::thread::Builder::new()
                .name(format!("icecast-opus-{kbps}"))
                .spawn(move || encode(audio, opus, ogg, &out))
                .map_err(|_| CodecError::Opus("could not start the encoder thread"))?;
            headers
        };
        feeds.insert(
            kbps,
            Arc::new(Feed {
                kbps,
                headers,
                pages,
            }),
        );
    }
    Ok(feeds)
}

/// The pump's own pages, passed on.
async fn forward(mut audio: broadcast::Receiver<Arc<Chunk>>, pages: broadcast::Sender<Bytes>) {
    loop {
        match audio.recv().await {
            Ok(chunk) => {
                if let Some(page) = chunk.ogg_page() {
                    // No mount connected: nobody to hear it.
                    let _ = pages.send(page.clone());
                }
            }
            Err(RecvError::Lagged(n)) => tracing::warn!(chunks = n, "Icecast feed lagged"),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Encodes every chunk again at the feed's bitrate, until the stream ends.
fn encode(
    mut audio: broadcast::Receiver<Arc<Chunk>>,
    mut opus: OpusStream,
    mut ogg: OggOpusStream,
    pages: &broadcast::Sender<Bytes>,
) {
    loop {
        match audio.blocking_recv() {
            Ok(chunk) => {
                let page = ogg.page(&opus.encode(&chunk.samples));
                if !page.is_empty() {
                    let _ = pages.send(page);
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(chunks = n, kbps = opus.kbps(), "Icecast encoder lagged");
            }
            Err(RecvError::Closed) => return,
        }
    }
}
