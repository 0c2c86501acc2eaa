//! A binary audio frame: the header decoder never panics, and a frame it accepts
//! re-encodes to the same bytes (the two reserved bytes aside, which it ignores)
//! with a payload of exactly the announced size (PCM) or of whole 20 ms packets
//! that add up to the announced frames (Opus).
#![no_main]

use auralis_bridge::codec::opus::{split_payload, PACKET_FRAMES};
use auralis_bridge::protocol::{decode_payload, FrameHeader, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((header, payload)) = FrameHeader::parse(data) else {
        return;
    };
    match header.payload_len() {
        Some(len) => assert_eq!(payload.len() as u64, len),
        None => {
            let packets = split_payload(payload).expect("an accepted Opus payload splits");
            assert_eq!(packets.len() as u64 * PACKET_FRAMES as u64, u64::from(header.frames));
            return;
        }
    }
    let mut again = Vec::with_capacity(HEADER_LEN);
    header.write_to(&mut again);
    assert_eq!(again.len(), HEADER_LEN);
    assert_eq!(again[..42], data[..42], "header fields round-trip");
    let samples = decode_payload(header.codec, payload);
    assert_eq!(
        samples.len() as u64,
        u64::from(header.frames) * u64::from(header.channels)
    );
});
