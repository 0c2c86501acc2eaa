//! The shared-memory stream header, as the bridge reads it from a file a plugin
//! wrote (or anything else found at `/dev/shm/auralis-*`): the parser never
//! panics, and a header it accepts is within its documented ranges and fits in
//! the file. The input is the file itself (`parse_header`), and, after its first
//! eight bytes, a prefix with the file length those bytes claim
//! (`parse_header_prefix`, which the reader uses on a mapped file).
#![no_main]

use auralis::stream::layout::{
    parse_header, parse_header_prefix, Header, CAPACITY_RANGE, MAX_CHANNELS, SAMPLE_RATE_RANGE,
};
use libfuzzer_sys::fuzz_target;

fn check(header: &Header, file_len: u64) {
    assert!((SAMPLE_RATE_RANGE.0..=SAMPLE_RATE_RANGE.1).contains(&u64::from(header.sample_rate)));
    assert!((1..=MAX_CHANNELS).contains(&u64::from(header.channels)));
    assert!((CAPACITY_RANGE.0..=CAPACITY_RANGE.1).contains(&u64::from(header.capacity_frames)));
    assert!(header.file_len() <= file_len, "the ring fits in the file");
    if let Some(compose) = header.compose {
        assert!(compose.validate().is_ok(), "published parameters are valid");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = parse_header(data) {
        check(&header, data.len() as u64);
    }
    if let Some((len, prefix)) = data.split_first_chunk::<8>() {
        let file_len = u64::from_le_bytes(*len);
        if let Ok(header) = parse_header_prefix(prefix, file_len) {
            check(&header, file_len);
        }
    }
});
