//! A mapped stream file seen as the atomics it is made of: the header words, the
//! control page's words and the ring's samples. Every access to the shared memory
//! goes through these atomics, since another process writes it concurrently.

use std::sync::atomic::{AtomicU32, AtomicU64};

use memmap2::{Mmap, MmapMut};

use super::layout::{CONTROL_BYTES, HEADER_BYTES, RING_OFFSET};

/// Keeps a mapping alive.
#[derive(Debug)]
pub(crate) enum Backing {
    /// The writer's read-write mapping of the whole file.
    Writable(MmapMut),
    /// The reader's read-only mapping of the whole file, and its read-write
    /// mapping of the control page alone.
    ReadOnly {
        /// The whole file.
        file: Mmap,
        /// The control page.
        control: MmapMut,
    },
}

/// A stream file's memory, valid while the mapping lives.
#[derive(Debug)]
pub(crate) struct Mapping {
    backing: Backing,
    /// Interleaved samples in the ring (capacity × channels).
    ring_len: usize,
}

/// Reinterprets `len` bytes at `ptr` as atomics of type `T`.
///
/// # Safety
/// `ptr` must be aligned for `T`, valid for `len` bytes for as long as `owner`
/// lives, and only ever accessed atomically.
unsafe fn atomics<T, O: ?Sized>(_owner: &O, ptr: *const u8, len: usize) -> &[T] {
    // SAFETY: guaranteed by the caller; atomics have interior mutability, so a
    // shared slice of them may be written through by this and other processes.
    unsafe { std::slice::from_raw_parts(ptr.cast::<T>(), len / size_of::<T>()) }
}

impl Mapping {
    /// Wraps a mapping whose length is at least `RING_OFFSET + ring_len * 4`
    /// (checked, else `None`).
    pub(crate) fn new(backing: Backing, ring_len: usize) -> Option<Self> {
        let len = match &backing {
            Backing::Writable(m) => m.len(),
            Backing::ReadOnly { file, control } => {
                if control.len() < CONTROL_BYTES {
                    return None;
                }
                file.len()
            }
        };
        let need = ring_len.checked_mul(4)?.checked_add(RING_OFFSET)?;
        (len >= need).then_some(Self { backing, ring_len })
    }

    fn base(&self) -> *const u8 {
        match &self.backing {
            Backing::Writable(m) => m.as_ptr(),
            Backing::ReadOnly { file, .. } => file.as_ptr(),
        }
    }

    /// The header page's words.
    pub(crate) fn header(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned and at least RING_OFFSET long (checked
        // in `new`); it lives as long as `self`; every user accesses it atomically.
        unsafe { atomics(self, self.base(), HEADER_BYTES) }
    }

    /// The control page's words (writable by the reader through its own mapping).
    pub(crate) fn control(&self) -> &[AtomicU64] {
        let ptr = match &self.backing {
            // SAFETY: CONTROL_OFFSET + CONTROL_BYTES <= RING_OFFSET <= the length.
            Backing::Writable(m) => unsafe { m.as_ptr().add(super::layout::CONTROL_OFFSET) },
            Backing::ReadOnly { control, .. } => control.as_ptr(),
        };
        // SAFETY: page-aligned, CONTROL_BYTES long (checked in `new`), alive as long
        // as `self`, accessed atomically.
        unsafe { atomics(self, ptr, CONTROL_BYTES) }
    }

    /// The ring's samples (f32 bits).
    pub(crate) fn ring(&self) -> &[AtomicU32] {
        // SAFETY: RING_OFFSET is page-aligned and the ring lies within the mapping
        // (checked in `new`); alive as long as `self`, accessed atomically.
        unsafe { atomics(self, self.base().add(RING_OFFSET), self.ring_len * 4) }
    }
}
