//! A provided-buffer ring: buffers the kernel picks from for multishot receives.
//!
//! # Safety
//!
//! The ring of entries and the buffers live in one page-aligned allocation owned by
//! [`BufRing`]. Once registered, the kernel may write into any buffer whose entry is in the
//! ring until it hands that buffer back in a completion (buffer id in the CQE flags). So:
//! - a buffer is only read after its completion and only until [`BufRing::recycle`] puts it
//!   back;
//! - the allocation must outlive every receive that may still pick a buffer: the owner
//!   unregisters the ring (or closes the io_uring) and drains its receives before dropping
//!   this, see `Receiver`'s `Drop`.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

const PAGE: usize = 4096;

pub struct BufRing {
    base: *mut u8,
    layout: Layout,
    entries: u16,
    buf_size: usize,
    /// Local copy of the tail the kernel reads.
    tail: u16,
}

impl BufRing {
    /// Allocates `entries` (a power of two) buffers of `buf_size` bytes and registers them with
    /// `ring` as buffer group `group`.
    pub fn register(ring: &IoUring, group: u16, entries: u16, buf_size: usize) -> io::Result<Self> {
        assert!(
            entries.is_power_of_two(),
            "buffer ring size must be a power of two"
        );
        let ring_bytes =
            (usize::from(entries) * std::mem::size_of::<BufRingEntry>()).next_multiple_of(PAGE);
        let total = ring_bytes + usize::from(entries) * buf_size;
        let layout = Layout::from_size_align(total, PAGE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (entries >= 1, ring_bytes >= one page).
        let base = unsafe { alloc_zeroed(layout) };
        if base.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "allocating the receive buffers",
            ));
        }
        let mut this = Self {
            base,
            layout,
            entries,
            buf_size,
            tail: 0,
        };
        for bid in 0..entries {
            this.push(bid);
        }
        this.publish();
        // SAFETY: `base` is page aligned, holds `entries` ring entries followed by the buffers
        // the entries point at, and stays allocated until `self` is dropped, which the owner
        // does only after the ring is unregistered and its receives are drained.
        let registered = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(base as u64, entries, group, 0)
        };
        if let Err(e) = registered {
            // Dropping `this` frees the memory; the kernel never saw it.
            drop(this);
            return Err(e);
        }
        Ok(this)
    }

    fn ring_bytes(&self) -> usize {
        (usize::from(self.entries) * std::mem::size_of::<BufRingEntry>()).next_multiple_of(PAGE)
    }

    fn buffer_ptr(&self, bid: u16) -> *mut u8 {
        // SAFETY: bid < entries, so the offset stays inside the allocation.
        unsafe {
            self.base
                .add(self.ring_bytes() + usize::from(bid) * self.buf_size)
        }
    }

    /// Writes buffer `bid` at the local tail (not yet visible to the kernel).
    fn push(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.entries - 1));
        // SAFETY: index < entries; the entry slots are at the start of the allocation and the
        // kernel only reads slots between its head and the published tail, which this one is
        // not (it is the slot of a buffer the kernel has handed back, or an initial one).
        let entry = unsafe { &mut *(self.base as *mut BufRingEntry).add(index) };
        entry.set_addr(self.buffer_ptr(bid) as u64);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every pushed buffer visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field, inside the
        // allocation, naturally aligned for u16; the kernel reads it with acquire semantics.
        let tail =
            unsafe { &*(BufRingEntry::tail(self.base as *const BufRingEntry) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// The bytes the kernel wrote into buffer `bid` (`len` of them, from a completion).
    ///
    /// # Safety
    /// `bid` and `len` must come from a completion of a receive on this group whose buffer has
    /// not been recycled since.
    pub unsafe fn filled(&self, bid: u16, len: usize) -> &[u8] {
        debug_assert!(bid < self.entries && len <= self.buf_size);
        // SAFETY: per the contract, the kernel wrote `len` bytes there and will not touch the
        // buffer again until it is recycled.
        unsafe { std::slice::from_raw_parts(self.buffer_ptr(bid), len.min(self.buf_size)) }
    }

    /// Gives buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with this layout; the owner guarantees the kernel no
        // longer uses it (see the module's Safety section).
        unsafe { dealloc(self.base, self.layout) };
    }
}
