//! Buffers that can be lent to the kernel for the duration of an operation.
//!
//! # Safety
//!
//! The pointers these traits return must stay valid, and point to the same memory, while the
//! buffer value is moved around (into an in-flight operation and back): they must point into
//! the heap or into static memory, never into the value itself.

use bytes::{Bytes, BytesMut};

/// A buffer whose initialised bytes can be written out.
///
/// # Safety
///
/// `stable_ptr()` must point to `bytes_init()` initialised bytes that stay valid and unmoved
/// for as long as the buffer is alive and not mutated, even if the buffer value is moved.
pub unsafe trait IoBuf: Unpin + 'static {
    /// Pointer to the first initialised byte.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes.
    fn bytes_init(&self) -> usize;
    /// The initialised bytes as a slice.
    fn as_init_slice(&self) -> &[u8] {
        // SAFETY: the trait contract guarantees `bytes_init()` initialised bytes at `stable_ptr()`.
        unsafe { std::slice::from_raw_parts(self.stable_ptr(), self.bytes_init()) }
    }
}

/// A buffer whose spare capacity can be filled by a read.
///
/// # Safety
///
/// `stable_mut_ptr()` must point to `bytes_total()` bytes of writable memory that stay valid
/// and unmoved while the buffer is alive, even if the buffer value is moved; the first
/// `bytes_init()` of them are initialised.
pub unsafe trait IoBufMut: Unpin + 'static {
    /// Pointer to the start of the buffer.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Number of initialised bytes (a read appends after them).
    fn bytes_init(&self) -> usize;
    /// Total capacity.
    fn bytes_total(&self) -> usize;
    /// Mark the first `init` bytes as initialised.
    ///
    /// # Safety
    ///
    /// The first `init` bytes must really have been initialised (by a read).
    unsafe fn set_init(&mut self, init: usize);

    /// The uninitialised tail a read fills, as `(pointer, length)`.
    fn spare_parts(&mut self) -> (*mut u8, usize) {
        let init = self.bytes_init();
        let total = self.bytes_total();
        // SAFETY: `init <= total`, so the offset stays inside the allocation.
        (unsafe { self.stable_mut_ptr().add(init) }, total - init)
    }
}

// SAFETY: a Vec's heap allocation does not move when the Vec value moves.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: a Vec's heap allocation does not move when the Vec value moves; `capacity` bytes are
// allocated and the first `len` are initialised.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, init: usize) {
        if init > self.len() {
            // SAFETY: the caller guarantees the bytes up to `init` are initialised, and a read
            // never writes past `capacity`.
            unsafe { self.set_len(init) };
        }
    }
}

// SAFETY: `Bytes` points into a shared heap (or static) allocation that is immutable and does
// not move with the handle.
unsafe impl IoBuf for Bytes {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: a `BytesMut` owns its heap region uniquely; moving the handle does not move it.
unsafe impl IoBuf for BytesMut {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: a `BytesMut` owns `capacity` bytes of heap uniquely; the first `len` are initialised.
unsafe impl IoBufMut for BytesMut {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, init: usize) {
        if init > self.len() {
            // SAFETY: the caller guarantees the bytes up to `init` are initialised.
            unsafe { self.set_len(init) };
        }
    }
}

// SAFETY: a boxed slice's heap allocation does not move when the box moves.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: static memory never moves and is never freed.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_spare_parts_cover_the_uninitialised_tail() {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(b"abc");
        let (ptr, len) = v.spare_parts();
        assert_eq!(len, v.capacity() - 3);
        assert_eq!(ptr as usize, v.as_ptr() as usize + 3);
    }

    #[test]
    fn set_init_never_shrinks() {
        let mut b = BytesMut::with_capacity(8);
        b.extend_from_slice(b"hello");
        // SAFETY: 2 <= len, nothing new is claimed to be initialised.
        unsafe { b.set_init(2) };
        assert_eq!(&b[..], b"hello");
    }
}
