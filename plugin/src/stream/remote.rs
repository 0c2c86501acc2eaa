//! Remote values of the musical parameters, set by control records from the
//! bridge (on the plugin's stream thread) and laid over the host's parameters by
//! the audio thread, lock-free.
//!
//! A remote value holds until the host changes that same parameter (automation, a
//! user turning the knob): the newest change wins, whoever made it. Turning the
//! Remote control parameter off drops every remote value, so the host's
//! parameters apply again.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::compose::phrase::ComposeParams;
use crate::compose::theory::{Key, Mode};
use crate::compose::ParamUpdate;

/// "No remote value" in a slot.
const NONE: u32 = u32::MAX;

/// The remote values, one atomic slot per parameter.
#[derive(Debug)]
pub struct RemoteControl {
    key: AtomicU32,
    mode: AtomicU32,
    bpm: AtomicU32,
    intensity: AtomicU32,
}

impl Default for RemoteControl {
    fn default() -> Self {
        Self {
            key: AtomicU32::new(NONE),
            mode: AtomicU32::new(NONE),
            bpm: AtomicU32::new(NONE),
            intensity: AtomicU32::new(NONE),
        }
    }
}

fn set(slot: &AtomicU32, value: Option<u32>) {
    if let Some(v) = value {
        slot.store(v, Ordering::Release);
    }
}

fn get(slot: &AtomicU32) -> Option<u32> {
    let v = slot.load(Ordering::Acquire);
    (v != NONE).then_some(v)
}

impl RemoteControl {
    /// Takes the fields a (validated) change sets.
    pub fn apply(&self, update: &ParamUpdate) {
        set(&self.key, update.key.map(|k| u32::from(k.pitch_class())));
        set(&self.mode, update.mode.map(|m| u32::from(m.index())));
        set(&self.bpm, update.bpm.map(f32::to_bits));
        set(&self.intensity, update.intensity.map(f32::to_bits));
    }

    /// Drops every remote value.
    pub fn clear(&self) {
        for slot in [&self.key, &self.mode, &self.bpm, &self.intensity] {
            slot.store(NONE, Ordering::Release);
        }
    }

    /// `host` with the remote values laid over it. `seen` holds the host's values
    /// of the previous call: a parameter the host changed since then drops its
    /// remote value. Atomics only (the audio thread calls this).
    pub fn overlay(&self, host: &ComposeParams, seen: &mut Option<ComposeParams>) -> ComposeParams {
        if let Some(prev) = seen.replace(*host) {
            let changed = [
                (&self.key, prev.key != host.key),
                (&self.mode, prev.mode != host.mode),
                (&self.bpm, prev.bpm.to_bits() != host.bpm.to_bits()),
                (
                    &self.intensity,
                    prev.intensity.to_bits() != host.intensity.to_bits(),
                ),
            ];
            for (slot, changed) in changed {
                if changed {
                    slot.store(NONE, Ordering::Release);
                }
            }
        }
        ComposeParams {
            key: get(&self.key).map_or(host.key, |k| Key::new(k as u8)),
            mode: get(&self.mode)
                .and_then(|m| Mode::from_index(u64::from(m)))
                .unwrap_or(host.mode),
            bpm: get(&self.bpm).map_or(host.bpm, f32::from_bits),
            intensity: get(&self.intensity).map_or(host.intensity, f32::from_bits),
            ..*host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_values_hold_until_the_host_changes_that_parameter() {
        let remote = RemoteControl::default();
        let host = ComposeParams::default();
        let mut seen = None;
        assert_eq!(remote.overlay(&host, &mut seen), host);
        remote.apply(&ParamUpdate {
            bpm: Some(90.0),
            key: Some(Key::new(9)),
            ..ParamUpdate::default()
        });
        let got = remote.overlay(&host, &mut seen);
        assert_eq!((got.bpm, got.key, got.mode), (90.0, Key::new(9), host.mode));
        // The host moves its tempo: the remote tempo goes, the remote key stays.
        let host2 = ComposeParams { bpm: 70.0, ..host };
        let got = remote.overlay(&host2, &mut seen);
        assert_eq!((got.bpm, got.key), (70.0, Key::new(9)));
        remote.clear();
        assert_eq!(remote.overlay(&host2, &mut seen), host2);
    }
}
