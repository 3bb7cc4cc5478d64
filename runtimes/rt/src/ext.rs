//! Helpers built on the owned-buffer traits: write everything, vectored.

use std::io;

use bytes::{Buf, Bytes};

use crate::AsyncWriteRent;

/// Extension methods for every [`AsyncWriteRent`].
pub trait AsyncWriteRentExt: AsyncWriteRent {
    /// Write all of `buf`, retrying after short writes.
    fn write_all(&mut self, buf: Bytes) -> impl std::future::Future<Output = io::Result<()>> {
        async move {
            let mut bufs = vec![buf];
            self.writev_all(&mut bufs).await.map(drop)
        }
    }

    /// Write every byte of `bufs` in order, one vectored call at a time, retrying after short
    /// writes. On return `bufs` is empty if everything was written (its allocation is kept for
    /// reuse); on error it holds what was not written. Returns the total bytes written.
    fn writev_all(
        &mut self,
        bufs: &mut Vec<Bytes>,
    ) -> impl std::future::Future<Output = io::Result<usize>> {
        async move {
            let mut total = 0usize;
            bufs.retain(|b| !b.is_empty());
            while !bufs.is_empty() {
                let batch = std::mem::take(bufs);
                let (res, mut batch) = self.writev(batch).await;
                match res {
                    Ok(0) => {
                        *bufs = batch;
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    Ok(n) => {
                        total += n;
                        advance_bufs(&mut batch, n);
                        *bufs = batch;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => *bufs = batch,
                    Err(e) => {
                        *bufs = batch;
                        return Err(e);
                    }
                }
            }
            Ok(total)
        }
    }
}

impl<T: AsyncWriteRent + ?Sized> AsyncWriteRentExt for T {}

/// Drop the first `n` bytes from a list of buffers (after a short vectored write).
pub fn advance_bufs(bufs: &mut Vec<Bytes>, mut n: usize) {
    let mut consumed = 0;
    for b in bufs.iter_mut() {
        if n == 0 {
            break;
        }
        if n >= b.len() {
            n -= b.len();
            consumed += 1;
        } else {
            b.advance(n);
            n = 0;
        }
    }
    bufs.drain(..consumed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_bufs_splits_inside_a_buffer() {
        let mut v = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        advance_bufs(&mut v, 5);
        assert_eq!(v, vec![Bytes::from_static(b"fg")]);
    }

    #[test]
    fn advance_bufs_drops_whole_buffers() {
        let mut v = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")];
        advance_bufs(&mut v, 3);
        assert_eq!(v, vec![Bytes::from_static(b"de")]);
        advance_bufs(&mut v, 2);
        assert!(v.is_empty());
    }
}
