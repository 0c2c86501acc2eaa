//! Control records from the bridge to the plugin: the wire encoding of a
//! [`ParamUpdate`] ([`encode`], [`decode`]), fixed-size, checksummed and validated
//! as a whole, carried by a single-producer single-consumer ring in the
//! stream file's control page (the bridge produces, the plugin's stream thread
//! consumes; the audio thread never sees this ring).
//!
//! A record is four words: `kind | fields << 8 | key << 16 | mode << 24`, the
//! tempo's and intensity's `f32` bits, a check word, and a zero word. The producer
//! writes a free slot, then publishes its write position with release ordering; the
//! consumer reads up to that position with acquire ordering and publishes how far
//! it read in the header.

use std::sync::atomic::Ordering;

use super::layout::{word, CONTROL_FIRST_SLOT_WORD, CONTROL_RECORD_WORDS, CONTROL_SLOTS};
use super::mapping::Mapping;
use crate::compose::phrase::BPM_RANGE;
use crate::compose::theory::{Key, Mode};
use crate::compose::ParamUpdate;

const KIND_UPDATE: u64 = 1;
const FIELD_KEY: u64 = 1;
const FIELD_MODE: u64 = 2;
const FIELD_BPM: u64 = 4;
const FIELD_INTENSITY: u64 = 8;
const CHECK_SALT: u64 = 0x5EED_A0A1_C0DE_0001;

/// Why a record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Unknown kind, unknown field bits, a bad check word or a non-zero spare word.
    #[error("malformed control record")]
    Malformed,
    /// No field set.
    #[error("control record changes nothing")]
    Empty,
    /// A field out of range.
    #[error("control record field `{0}` is out of range")]
    OutOfRange(&'static str),
}

/// Why a record could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The plugin has not taken the earlier records yet.
    #[error("the plugin's control ring is full")]
    Full,
}

fn check(a: u64, b: u64) -> u64 {
    a.rotate_left(17) ^ b.rotate_right(9) ^ CHECK_SALT
}

/// A change's record words.
#[must_use]
pub fn encode(update: &ParamUpdate) -> [u64; CONTROL_RECORD_WORDS] {
    let mut fields = 0;
    let mut a = KIND_UPDATE;
    if let Some(k) = update.key {
        fields |= FIELD_KEY;
        a |= u64::from(k.pitch_class()) << 16;
    }
    if let Some(m) = update.mode {
        fields |= FIELD_MODE;
        a |= u64::from(m.index()) << 24;
    }
    let mut b = 0;
    if let Some(bpm) = update.bpm {
        fields |= FIELD_BPM;
        b |= u64::from(bpm.to_bits());
    }
    if let Some(i) = update.intensity {
        fields |= FIELD_INTENSITY;
        b |= u64::from(i.to_bits()) << 32;
    }
    a |= fields << 8;
    [a, b, check(a, b), 0]
}

/// Reads and validates a record's words.
///
/// # Errors
/// [`RecordError`] for anything malformed or out of range.
pub fn decode(w: [u64; CONTROL_RECORD_WORDS]) -> Result<ParamUpdate, RecordError> {
    let [a, b, c, spare] = w;
    let fields = (a >> 8) & 0xFF;
    let all = FIELD_KEY | FIELD_MODE | FIELD_BPM | FIELD_INTENSITY;
    if a & 0xFF != KIND_UPDATE
        || fields & !all != 0
        || a >> 32 != 0
        || c != check(a, b)
        || spare != 0
    {
        return Err(RecordError::Malformed);
    }
    let has = |f| fields & f != 0;
    let key = (a >> 16) & 0xFF;
    let mode = Mode::from_index((a >> 24) & 0xFF);
    let bpm = f32::from_bits((b & 0xFFFF_FFFF) as u32);
    let intensity = f32::from_bits((b >> 32) as u32);
    if has(FIELD_KEY) && key >= 12 {
        return Err(RecordError::OutOfRange("key"));
    }
    if has(FIELD_MODE) && mode.is_none() {
        return Err(RecordError::OutOfRange("mode"));
    }
    if has(FIELD_BPM) && !(BPM_RANGE.0..=BPM_RANGE.1).contains(&bpm) {
        return Err(RecordError::OutOfRange("bpm"));
    }
    if has(FIELD_INTENSITY) && !(0.0..=1.0).contains(&intensity) {
        return Err(RecordError::OutOfRange("intensity"));
    }
    let update = ParamUpdate {
        key: has(FIELD_KEY).then(|| Key::new(key as u8)),
        mode: mode.filter(|_| has(FIELD_MODE)),
        bpm: has(FIELD_BPM).then_some(bpm),
        intensity: has(FIELD_INTENSITY).then_some(intensity),
    };
    if update.is_empty() {
        return Err(RecordError::Empty);
    }
    Ok(update)
}

fn slot_word(pos: u64, i: usize) -> usize {
    CONTROL_FIRST_SLOT_WORD + (pos % CONTROL_SLOTS) as usize * CONTROL_RECORD_WORDS + i
}

/// Appends a record (the producer: one bridge).
pub(crate) fn push(map: &Mapping, update: &ParamUpdate) -> Result<(), SendError> {
    let control = map.control();
    let write = control[0].load(Ordering::Relaxed);
    let read = map.header()[word::CONTROL_READ].load(Ordering::Acquire);
    if write.wrapping_sub(read) >= CONTROL_SLOTS {
        return Err(SendError::Full);
    }
    for (i, w) in encode(update).into_iter().enumerate() {
        control[slot_word(write, i)].store(w, Ordering::Relaxed);
    }
    control[0].store(write.wrapping_add(1), Ordering::Release);
    Ok(())
}

/// Takes every waiting record (the consumer: the plugin's stream thread), handing
/// each to `take` as it was read, valid or not. A producer that claims more records than the ring holds is resynchronised.
pub(crate) fn drain(map: &Mapping, mut take: impl FnMut(Result<ParamUpdate, RecordError>)) {
    let header = map.header();
    let control = map.control();
    let write = control[0].load(Ordering::Acquire);
    let mut read = header[word::CONTROL_READ].load(Ordering::Relaxed);
    if write.wrapping_sub(read) > CONTROL_SLOTS {
        // Not a well-behaved producer: skip what cannot be in the ring.
        read = write.wrapping_sub(CONTROL_SLOTS);
    }
    while read != write {
        let words = std::array::from_fn(|i| control[slot_word(read, i)].load(Ordering::Relaxed));
        take(decode(words));
        read = read.wrapping_add(1);
    }
    header[word::CONTROL_READ].store(read, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_round_trip_and_are_validated() {
        let r = ParamUpdate {
            key: Some(Key::new(7)),
            mode: None,
            bpm: Some(90.0),
            intensity: Some(0.25),
        };
        assert_eq!(decode(encode(&r)), Ok(r));
        let mut bad = encode(&r);
        bad[1] ^= 1;
        assert_eq!(decode(bad), Err(RecordError::Malformed));
        let high = ParamUpdate {
            bpm: Some(1000.0),
            ..ParamUpdate::default()
        };
        assert_eq!(decode(encode(&high)), Err(RecordError::OutOfRange("bpm")));
        assert_eq!(
            decode(encode(&ParamUpdate::default())),
            Err(RecordError::Empty)
        );
        let every_mode = ParamUpdate {
            mode: Some(Mode::Ionian),
            ..ParamUpdate::default()
        };
        assert_eq!(decode(encode(&every_mode)), Ok(every_mode));
        // The wire layout: key in bits 16..24, mode in 24..32 of the first word.
        let [a, ..] = encode(&ParamUpdate {
            key: Some(Key::new(7)),
            mode: Some(Mode::Lydian),
            ..ParamUpdate::default()
        });
        assert_eq!(
            a,
            KIND_UPDATE | (FIELD_KEY | FIELD_MODE) << 8 | 7 << 16 | 3 << 24
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics(w in any::<[u64; 4]>()) {
            let _ = decode(w);
        }
    }
}
