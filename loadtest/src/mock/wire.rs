//! How a response's bytes go on the wire: its head (padded by `big_head`, paced by
//! `head_trickle_ms`) and its body's framing, Content-Length or chunked with the size lines
//! `chunk_ext` and `chunk_size_garbage` ask for. Whatever a directive makes large (padding
//! headers, extensions, filler) goes out in writes of about [`PIECE`] bytes, so 256 MiB of it
//! costs a 64 KiB buffer. With every option off a head and its first chunk are one write, and
//! so is every later chunk.

use std::io;
use std::time::Duration;

use super::conn::Conn;
use super::directives::Directives;
use super::responses::{self as r, Head};

/// The largest write of padding, and the largest chunk of a non-stream body.
pub(crate) const PIECE: usize = 64 * 1024;

/// Bytes of one `big_head` header line, CRLF included: long lines, so that a gateway's bound on
/// the head's size trips before any bound on its number of headers.
const HEAD_LINE: u64 = 1024;

/// The wire-level directives of one response, and whether its first size line is out yet.
#[derive(Default)]
pub(crate) struct Wire {
    big_head: u64,
    trickle: Duration,
    chunk_ext: u64,
    garbage: bool,
    /// A non-stream body goes chunked.
    chunked: bool,
    sized: bool,
}

impl Wire {
    pub fn new(d: &Directives) -> Wire {
        Wire {
            big_head: d.big_head,
            trickle: Duration::from_millis(d.head_trickle_ms),
            chunk_ext: d.chunk_ext,
            garbage: d.chunk_size_garbage,
            chunked: d.huge_body_chunked || d.chunk_ext > 0 || d.chunk_size_garbage,
            sized: false,
        }
    }

    /// An ordinary response (control endpoints, requests whose directives did not parse).
    pub fn plain() -> Wire {
        Wire::default()
    }
}

/// Lengths of lines adding up to `total`: `line` each, the last one taking the remainder (so it
/// is `line..2 * line` long, or `total` when that is less than a line).
pub(crate) fn line_lengths(total: u64, line: u64) -> impl Iterator<Item = u64> {
    let n = if total == 0 { 0 } else { (total / line).max(1) };
    (0..n).map(move |i| {
        if i + 1 < n {
            line
        } else {
            total - line * (n - 1)
        }
    })
}

/// Appends the head `h` to `conn.out`, with `big_head`'s `x-pad-<i>: aaa` lines (exactly
/// `big_head` bytes from 16 up) before its blank line. A trickled head is written here, byte by
/// byte; otherwise the caller's next write takes it along with the first body bytes.
pub(crate) async fn head(conn: &mut Conn, w: &Wire, h: &Head<'_>) -> io::Result<()> {
    r::head(&mut conn.out, h);
    if w.big_head > 0 {
        conn.out.truncate(conn.out.len() - 2);
        for (i, len) in line_lengths(w.big_head, HEAD_LINE).enumerate() {
            let start = conn.out.len();
            conn.out.extend_from_slice(b"x-pad-");
            r::num(&mut conn.out, i as u64);
            conn.out.extend_from_slice(b": ");
            let fill = (len as usize).saturating_sub(conn.out.len() - start + 2);
            conn.out.resize(conn.out.len() + fill.max(1), b'a');
            conn.out.extend_from_slice(b"\r\n");
            if conn.out.len() >= PIECE {
                write_head(conn, w).await?;
            }
        }
        conn.out.extend_from_slice(b"\r\n");
    }
    if w.trickle.is_zero() {
        Ok(())
    } else {
        conn.trickle_out(w.trickle).await
    }
}

async fn write_head(conn: &mut Conn, w: &Wire) -> io::Result<()> {
    if w.trickle.is_zero() {
        conn.flush_out().await
    } else {
        conn.trickle_out(w.trickle).await
    }
}

/// Appends `n` bytes of `a` to `conn.out`, writing it out each time it reaches [`PIECE`] bytes.
pub(crate) async fn fill(conn: &mut Conn, mut n: u64) -> io::Result<()> {
    loop {
        let take = n.min(PIECE.saturating_sub(conn.out.len()) as u64);
        conn.out.resize(conn.out.len() + take as usize, b'a');
        n -= take;
        if n == 0 {
            return Ok(());
        }
        conn.flush_out().await?;
    }
}

fn hex(out: &mut Vec<u8>, n: usize) {
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(n >> (4 * i)) & 15]);
    }
}

/// Appends the size line of a chunk of `len` bytes (0: the last chunk), with `chunk_ext`'s
/// extension `;x=aaa` (`chunk_ext` bytes, at least 4) and, on the body's first size line only,
/// `chunk_size_garbage`'s space before the CRLF.
pub(crate) async fn size_line(conn: &mut Conn, w: &mut Wire, len: usize) -> io::Result<()> {
    hex(&mut conn.out, len);
    if w.chunk_ext > 0 {
        conn.out.extend_from_slice(b";x=");
        fill(conn, w.chunk_ext.max(4) - 3).await?;
    }
    if w.garbage && !w.sized {
        conn.out.push(b' ');
    }
    w.sized = true;
    conn.out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Appends the last chunk and the empty trailer section.
pub(crate) async fn end(conn: &mut Conn, w: &mut Wire) -> io::Result<()> {
    size_line(conn, w, 0).await?;
    conn.out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Writes `conn.out` and then `conn.scratch` as one chunk (none when it is empty), followed by
/// the last chunk when `last`: one write unless an extension is long.
pub(crate) async fn chunk(conn: &mut Conn, w: &mut Wire, last: bool) -> io::Result<()> {
    if !conn.scratch.is_empty() {
        let len = conn.scratch.len();
        size_line(conn, w, len).await?;
        conn.out.extend_from_slice(&conn.scratch);
        conn.out.extend_from_slice(b"\r\n");
    }
    if last {
        end(conn, w).await?;
    }
    conn.flush_out().await
}

/// Writes a whole response with `conn.scratch` as its body: with Content-Length, head and body
/// in one write (a body over [`PIECE`] goes in a second, uncopied); or chunked in chunks of up
/// to [`PIECE`] bytes when a directive asks for chunking. `h.content_length` is set here.
pub(crate) async fn whole(conn: &mut Conn, w: &mut Wire, mut h: Head<'_>) -> io::Result<()> {
    let len = conn.scratch.len();
    h.content_length = (!w.chunked).then_some(len);
    conn.out.clear();
    head(conn, w, &h).await?;
    if !w.chunked {
        if len <= PIECE {
            conn.out.extend_from_slice(&conn.scratch);
            return conn.flush_out().await;
        }
        conn.flush_out().await?;
        return conn.flush_scratch().await;
    }
    let mut at = 0;
    while at < len {
        let to = (at + PIECE).min(len);
        size_line(conn, w, to - at).await?;
        conn.out.extend_from_slice(&conn.scratch[at..to]);
        conn.out.extend_from_slice(b"\r\n");
        at = to;
        if at < len {
            conn.flush_out().await?;
        }
    }
    end(conn, w).await?;
    conn.flush_out().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_add_up() {
        for total in [0, 1, 99, 100, 101, 199, 200, 12_345] {
            let lines: Vec<_> = line_lengths(total, 100).collect();
            assert_eq!(lines.iter().sum::<u64>(), total, "{total}");
            assert!(lines.iter().all(|&l| l < 200), "{total}: {lines:?}");
        }
    }

    #[test]
    fn hex_sizes() {
        for n in [0usize, 1, 15, 16, 255, 4096, 0xabcdef] {
            let mut out = Vec::new();
            hex(&mut out, n);
            assert_eq!(out, format!("{n:x}").into_bytes());
        }
    }
}
