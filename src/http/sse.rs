//! Server-sent events, as bytes: splitting a stream into whole events at any input split,
//! without copying when an event lies within one read, and reading an event's `data` field.

/// Splits a byte stream into complete SSE events (each ends with a blank line).
#[derive(Debug, Default)]
pub struct Splitter {
    partial: Vec<u8>,
}

/// End of the first event in `buf` (index just past its blank line), scanning from `from`.
fn boundary(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b'\n', &buf[at..]) {
        let nl = at + i;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => at = nl + 1,
        }
    }
    None
}

impl Splitter {
    /// Bytes of an event that has not been completed yet.
    pub fn pending(&self) -> &[u8] {
        &self.partial
    }

    /// Feeds `input`, calling `each` with every event it completes, in order.
    pub fn feed(&mut self, input: &[u8], mut each: impl FnMut(&[u8])) {
        let mut rest = input;
        if !self.partial.is_empty() {
            // Finish the held event first; rescan a little of the old bytes for a split "\n\n".
            let from = self.partial.len().saturating_sub(2);
            self.partial.extend_from_slice(input);
            let Some(end) = boundary(&self.partial, from) else {
                return;
            };
            each(&self.partial[..end]);
            let consumed_from_input = end - (self.partial.len() - input.len());
            self.partial.clear();
            rest = &input[consumed_from_input..];
        }
        let mut start = 0;
        while let Some(end) = boundary(rest, start) {
            each(&rest[start..end]);
            start = end;
        }
        self.partial.extend_from_slice(&rest[start..]);
    }
}

/// The value of the first `data:` line of an event (one leading space removed).
pub fn data(event: &[u8]) -> Option<&[u8]> {
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = line.strip_prefix(b"data:") {
            return Some(v.strip_prefix(b" ").unwrap_or(v));
        }
    }
    None
}

/// Appends an event's data — every `data:` line, joined with `\n` as the SSE spec says — to
/// `out`; false when the event has no data (a comment or a bare `event:`).
pub fn data_into(event: &[u8], out: &mut Vec<u8>) -> bool {
    let mut any = false;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = line.strip_prefix(b"data:") {
            if any {
                out.push(b'\n');
            }
            any = true;
            out.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &[u8] =
        b"data: {\"a\":1}\n\nevent: x\r\ndata: two\r\n\r\n: comment\n\ndata: [DONE]\n\n";

    fn events_of(parts: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for p in parts {
            s.feed(p, |e| out.push(e.to_vec()));
        }
        (out, s.pending().to_vec())
    }

    #[test]
    fn splits_whole_stream() {
        let (events, rest) = events_of(&[STREAM]);
        assert_eq!(events.len(), 4);
        assert_eq!(events[1], b"event: x\r\ndata: two\r\n\r\n");
        assert!(rest.is_empty());
        assert_eq!(data(&events[0]), Some(&b"{\"a\":1}"[..]));
        assert_eq!(data(&events[1]), Some(&b"two"[..]));
        assert_eq!(data(&events[2]), None);
        let mut joined = Vec::new();
        assert!(data_into(b"event: e\ndata: a\ndata:b\n\n", &mut joined));
        assert_eq!(joined, b"a\nb");
        assert!(!data_into(&events[2], &mut joined));
    }

    #[test]
    fn holds_an_unfinished_event() {
        let (events, rest) = events_of(&[b"data: 1\n\ndata: 2\n"]);
        assert_eq!(events, vec![b"data: 1\n\n".to_vec()]);
        assert_eq!(rest, b"data: 2\n");
    }

    proptest! {
        #[test]
        fn any_split_gives_same_events(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..10)) {
            let mut cuts = cuts;
            cuts.sort();
            let mut parts = Vec::new();
            let mut start = 0;
            for c in cuts.into_iter().chain([STREAM.len()]) {
                parts.push(&STREAM[start..c]);
                start = c;
            }
            let (events, rest) = events_of(&parts);
            let (whole, _) = events_of(&[STREAM]);
            prop_assert_eq!(events, whole);
            prop_assert!(rest.is_empty());
        }
    }
}
