//! Reading into a growing `Vec` with monoio's ownership-passing reads: the buffer moves into
//! the read and back out. The one place that pattern is written.

use std::io;
use std::pin::pin;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, CancelableAsyncReadRent, Canceller};

const GROW: usize = 16 * 1024;
const MIN_SPARE: usize = 2048;

fn spare(buf: &mut Vec<u8>) -> monoio::buf::SliceMut<Vec<u8>> {
    if buf.capacity() - buf.len() < MIN_SPARE {
        buf.reserve(GROW);
    }
    let owned = std::mem::take(buf);
    let (len, cap) = (owned.len(), owned.capacity());
    owned.slice_mut(len..cap)
}

/// Appends what `r` reads next to `buf`; `Ok(0)` is EOF. Dropping this future mid-read loses
/// `buf` (io_uring still owns it): use it only where the connection is abandoned if dropped.
pub async fn read_more<R: AsyncReadRent>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    let (res, slice) = r.read(spare(buf)).await;
    *buf = slice.into_inner();
    res
}

/// Like [`read_more`], giving up after `limit` with `TimedOut`. On timeout the read is cancelled
/// and awaited, so `buf` always comes back intact (with any bytes that raced the cancel).
/// `canceller` is the connection's own, reused read after read: a new one per read costs two
/// allocations (its shared state, and the set it files the read in).
pub async fn read_more_within<R: CancelableAsyncReadRent>(
    r: &mut R,
    buf: &mut Vec<u8>,
    limit: Duration,
    canceller: &mut Canceller,
) -> io::Result<usize> {
    let mut read = pin!(r.cancelable_read(spare(buf), canceller.handle()));
    let (res, slice) = match monoio::time::timeout(limit, read.as_mut()).await {
        Ok(out) => out,
        Err(_) => {
            // Cancelling spends the canceller; it hands back a fresh one (with the same set).
            *canceller = std::mem::take(canceller).cancel();
            let (res, slice) = read.await;
            match res {
                Ok(n) => (Ok(n), slice),
                Err(_) => (
                    Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out")),
                    slice,
                ),
            }
        }
    };
    *buf = slice.into_inner();
    res
}
