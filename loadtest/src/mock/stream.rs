//! Sends one SSE answer: the head on its own, then the plan's events one chunk (and one write)
//! each, paced by `interval_ms` and cut short by `drop_after` or `stall_after`; or one of the
//! hostile shapes, `sse_no_blank` (lines that never end an event), `giant_event` (a huge second
//! event) and `cr_only` (bare CR line endings), which Bedrock's binary event stream ignores.
//! `error_after` ends a stream early with the protocol's own in-stream error. A failed write,
//! or the client gone during a pause or a stall, counts as a client abort; a drop, or a stall
//! running out, is the mock's own doing and does not.

use std::io;
use std::time::Duration;

use super::conn::Conn;
use super::directives::Directives;
use super::handler::Next;
use super::reply::Plan;
use super::responses::{Api, Head, Sse};
use super::stats::Shared;
use super::wire::{self, PIECE, Wire};

/// How long `stall_after` holds the connection before it closes it.
const STALL: Duration = Duration::from_secs(60);

/// Bytes of one `sse_no_blank` line, its line ending included.
const NO_BLANK_LINE: u64 = 100;

/// How a stream ended.
enum End {
    Sent,
    /// The mock stopped on purpose (`drop_after`, a stall's end): close.
    Cut,
    Aborted,
}

impl From<io::Result<()>> for End {
    fn from(r: io::Result<()>) -> End {
        if r.is_ok() { End::Sent } else { End::Aborted }
    }
}

pub(crate) async fn send(
    conn: &mut Conn,
    shared: &Shared,
    sse: &Sse<'_>,
    plan: &Plan,
    d: &Directives,
    close: bool,
) -> Next {
    let mut w = Wire::new(d);
    conn.out.clear();
    let h = Head {
        status: 200,
        content_type: sse.api.stream_type(),
        content_length: None,
        close,
        retry_after: d.retry_after.as_deref(),
        extra: None,
    };
    // Bedrock's stream is binary frames: the SSE-only shapes do not apply to it.
    let sse_shapes = sse.api != Api::Bedrock;
    let end = match wire::head(conn, &w, &h).await {
        Err(_) => End::Aborted,
        Ok(()) if conn.flush_out().await.is_err() => End::Aborted,
        Ok(()) => match d.sse_no_blank.filter(|_| sse_shapes) {
            Some(n) => no_blank(conn, &mut w, n, d.cr_only).await.into(),
            None => events(conn, &mut w, sse, plan, d, sse_shapes).await,
        },
    };
    match end {
        End::Sent if !close => Next::KeepAlive,
        End::Aborted => {
            shared.stream_aborted();
            Next::Close
        }
        _ => Next::Close,
    }
}

/// The plan's events, with `giant_event`'s extra event second (it counts as an event for
/// `drop_after`, `stall_after` and `error_after`); `error_after` replaces the rest with the
/// protocol's in-stream error.
async fn events(
    conn: &mut Conn,
    w: &mut Wire,
    sse: &Sse<'_>,
    plan: &Plan,
    d: &Directives,
    sse_shapes: bool,
) -> End {
    let giant = d.giant_event.filter(|_| sse_shapes);
    let cr = d.cr_only && sse_shapes;
    let mut total = plan.len() + giant.is_some() as u64;
    if let Some(n) = d.error_after {
        total = total.min(n + 1);
    }
    let mut steps = plan.steps();
    let interval = Duration::from_millis(d.interval_ms);
    for k in 0..total {
        if d.drop_after == Some(k) {
            return End::Cut;
        }
        if d.stall_after == Some(k) {
            return stall(conn).await;
        }
        if k > 0 && d.interval_ms > 0 && !conn.sleep_watching(interval).await {
            return End::Aborted;
        }
        let last = k + 1 == total;
        let sent = match giant {
            Some(n) if k == 1 && d.error_after != Some(k) => {
                giant_event(conn, w, sse, n, cr, last).await
            }
            _ => {
                conn.scratch.clear();
                if d.error_after == Some(k) {
                    super::errors::in_stream(sse, &mut conn.scratch, d.error_status);
                } else {
                    let step = steps.next().expect("a plan yields `len` steps");
                    sse.event(&mut conn.scratch, step);
                }
                if cr {
                    cr_only(&mut conn.scratch);
                }
                wire::chunk(conn, w, last).await
            }
        };
        if sent.is_err() {
            return End::Aborted;
        }
    }
    End::Sent
}

/// `stall_after`: sends nothing and keeps the connection until the client gives up or
/// [`STALL`] has passed; the body stays unfinished either way.
async fn stall(conn: &mut Conn) -> End {
    if conn.sleep_watching(STALL).await {
        End::Cut
    } else {
        End::Aborted
    }
}

/// `giant_event`: one chunk holding one event of exactly `n` bytes (the smallest such event
/// when `n` is less), its filler written in pieces.
async fn giant_event(
    conn: &mut Conn,
    w: &mut Wire,
    sse: &Sse<'_>,
    n: u64,
    cr: bool,
    last: bool,
) -> io::Result<()> {
    conn.scratch.clear();
    let at = sse.giant(&mut conn.scratch);
    if cr {
        cr_only(&mut conn.scratch);
    }
    let fixed = conn.scratch.len();
    let filler = n.saturating_sub(fixed as u64);
    wire::size_line(conn, w, fixed + filler as usize).await?;
    conn.out.extend_from_slice(&conn.scratch[..at]);
    wire::fill(conn, filler).await?;
    conn.out.extend_from_slice(&conn.scratch[at..]);
    conn.out.extend_from_slice(b"\r\n");
    if last {
        wire::end(conn, w).await?;
    }
    conn.flush_out().await
}

/// `sse_no_blank`: `n` bytes of `data: aaa` lines ([`NO_BLANK_LINE`] bytes each, the last one
/// taking the remainder; at least one 7-byte `data: ` line when `n` is 1..7) and never a blank
/// line, in chunks of whole lines up to [`PIECE`] bytes; then the body's proper end.
async fn no_blank(conn: &mut Conn, w: &mut Wire, n: u64, cr: bool) -> io::Result<()> {
    const DATA: &[u8] = b"data: ";
    let eol = if cr { b'\r' } else { b'\n' };
    conn.scratch.clear();
    for len in wire::line_lengths(n, NO_BLANK_LINE) {
        if !conn.scratch.is_empty() && conn.scratch.len() + len as usize > PIECE {
            wire::chunk(conn, w, false).await?;
            conn.scratch.clear();
        }
        conn.scratch.extend_from_slice(DATA);
        let filler = (len as usize).saturating_sub(DATA.len() + 1);
        conn.scratch.resize(conn.scratch.len() + filler, b'a');
        conn.scratch.push(eol);
    }
    wire::chunk(conn, w, true).await
}

/// `cr_only`: every line ending becomes a bare CR. An event holds LF only as line endings (the
/// JSON in it escapes its own), so replacing every LF is exact.
fn cr_only(event: &mut [u8]) {
    for b in event.iter_mut().filter(|b| **b == b'\n') {
        *b = b'\r';
    }
}
