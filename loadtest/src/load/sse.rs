//! Finds where server-sent events end in a body that arrives in arbitrary pieces: an event ends
//! at a blank line (`\n\n` or `\r\n\r\n`), and an event or even its final newline may be split
//! across chunks. Only boundaries are tracked; nothing is buffered.

/// Incremental SSE boundary scanner.
#[derive(Debug, Default, Clone)]
pub struct SseScanner {
    /// The current line has a byte other than `\r`.
    line_has_content: bool,
    /// The current event has a non-blank line.
    event_has_content: bool,
}

impl SseScanner {
    /// Forgets any partial event (a new response starts).
    pub fn reset(&mut self) {
        *self = SseScanner::default();
    }

    /// Scans the next body bytes and returns how many events ended in them.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let mut events = 0;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            if !self.line_has_content {
                self.line_has_content = data[start..nl].iter().any(|&b| b != b'\r');
            }
            if self.line_has_content {
                self.event_has_content = true;
            } else if self.event_has_content {
                events += 1;
                self.event_has_content = false;
            }
            self.line_has_content = false;
            start = nl + 1;
        }
        if !self.line_has_content {
            self.line_has_content = data[start..].iter().any(|&b| b != b'\r');
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] =
        b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\nevent: x\ndata: y\n\ndata: [DONE]\n\n";

    fn count_split(wire: &[u8], step: usize) -> Vec<usize> {
        let mut s = SseScanner::default();
        wire.chunks(step).map(|c| s.feed(c)).collect()
    }

    #[test]
    fn whole_events() {
        let mut s = SseScanner::default();
        assert_eq!(s.feed(STREAM), 4);
        assert_eq!(s.feed(b""), 0);
    }

    #[test]
    fn events_split_across_chunks_at_every_size() {
        for step in 1..STREAM.len() {
            let counts = count_split(STREAM, step);
            assert_eq!(counts.iter().sum::<usize>(), 4, "step {step}");
        }
    }

    #[test]
    fn event_ends_in_the_chunk_holding_the_blank_line() {
        let mut s = SseScanner::default();
        assert_eq!(s.feed(b"data: a"), 0);
        assert_eq!(s.feed(b"bc\n"), 0);
        assert_eq!(s.feed(b"\n"), 1);
        assert_eq!(s.feed(b"data: d\n"), 0);
        assert_eq!(s.feed(b"\ndata: e\n\nda"), 2);
        assert_eq!(s.feed(b"ta: f\n"), 0);
        assert_eq!(s.feed(b"\n"), 1);
    }

    #[test]
    fn crlf_and_extra_blank_lines() {
        let wire = b"\r\n\r\ndata: a\r\n\r\n\r\ndata: b\r\nid: 2\r\n\r\n";
        for step in 1..wire.len() {
            assert_eq!(
                count_split(wire, step).iter().sum::<usize>(),
                2,
                "step {step}"
            );
        }
    }

    #[test]
    fn reset_drops_a_partial_event() {
        let mut s = SseScanner::default();
        s.feed(b"data: partial\n");
        s.reset();
        assert_eq!(s.feed(b"\n"), 0);
    }
}
