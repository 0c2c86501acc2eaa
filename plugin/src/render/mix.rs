//! The mix levels the renderer plays at. They are set by presets and users, so
//! the type lives with the presets in [`crate::compose::mix`]; this path stays
//! for the renderer's users.

pub use crate::compose::mix::{MixLevels, MASTER_GAIN_DB_RANGE};
