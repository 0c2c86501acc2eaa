//! The plugin's saved state as a host holds it.

/// A saved state as nice-plug frames it: its length, little-endian, then JSON.
#[must_use]
pub fn framed(json: &str) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes
}
