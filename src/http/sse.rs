//! Server-sent events, as bytes: splitting a stream into whole events at any input split,
//! without copying when an event lies within one read, and reading an event's `data` field.
//!
//! Lines end in CRLF, LF or a bare CR, as the SSE spec allows; an event ends at an empty line.
//! An event still unfinished after `max_event` bytes is an error, so an upstream that never
//! sends a blank line cannot grow the held bytes without bound.

/// Splits a byte stream into complete SSE events (each ends with a blank line).
#[derive(Debug)]
pub struct Splitter {
    partial: Vec<u8>,
    max_event: usize,
}

/// Default bound of one event (and the splitter's held bytes).
pub const MAX_EVENT: usize = 1 << 20;

impl Default for Splitter {
    fn default() -> Self {
        Splitter::new(MAX_EVENT)
    }
}

/// An event grew past the splitter's bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge(pub usize);

/// The line terminator at `buf[at]` (a CR or LF): its length, or `None` when a CR ends the
/// buffer (it may be the start of a CRLF).
fn terminator(buf: &[u8], at: usize) -> Option<usize> {
    match (buf[at], buf.get(at + 1)) {
        (b'\r', Some(b'\n')) => Some(2),
        (b'\r', None) => None,
        _ => Some(1),
    }
}

/// End of the first event in `buf` (index just past its blank line), scanning from `from`.
fn boundary(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', &buf[at..]) {
        let end = at + i;
        let next = end + terminator(buf, end)?;
        match buf.get(next) {
            Some(b'\n' | b'\r') => return Some(next + terminator(buf, next)?),
            Some(_) => at = next,
            None => return None,
        }
    }
    None
}

/// The lines of an event, without their terminators.
pub fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match memchr::memchr2(b'\n', b'\r', rest) {
            Some(i) => {
                let line = &rest[..i];
                let len = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + len..];
                Some(line)
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}

impl Splitter {
    pub fn new(max_event: usize) -> Self {
        Splitter {
            partial: Vec::new(),
            max_event,
        }
    }

    /// Bytes of an event that has not been completed yet.
    pub fn pending(&self) -> &[u8] {
        &self.partial
    }

    /// At the end of the stream: an event held only because its last CR might have begun a
    /// CRLF is complete after all; `each` gets it. Anything else stays pending.
    pub fn finish(&mut self, each: impl FnOnce(&[u8])) {
        let p = &self.partial;
        let n = p.len();
        let ends_blank = n >= 2 && p[n - 1] == b'\r' && matches!(p[n - 2], b'\r' | b'\n');
        if ends_blank {
            each(p);
            self.partial.clear();
        }
    }

    /// Feeds `input`, calling `each` with every event it completes, in order. Fails once the
    /// event being held would pass the bound; nothing more should be fed after that.
    pub fn feed(&mut self, input: &[u8], mut each: impl FnMut(&[u8])) -> Result<(), EventTooLarge> {
        let mut rest = input;
        if !self.partial.is_empty() {
            // Finish the held event first; rescan a little of the old bytes for a split blank
            // line (at most CRLF CR of it can be held).
            let from = self.partial.len().saturating_sub(3);
            let held = self.partial.len();
            let take = input.len().min(self.max_event.saturating_sub(held) + 4);
            self.partial.extend_from_slice(&input[..take]);
            let Some(end) = boundary(&self.partial, from) else {
                if take < input.len() || self.partial.len() > self.max_event {
                    return Err(EventTooLarge(self.max_event));
                }
                return Ok(());
            };
            each(&self.partial[..end]);
            let consumed_from_input = end - held;
            self.partial.clear();
            rest = &input[consumed_from_input..];
        }
        let mut start = 0;
        while let Some(end) = boundary(rest, start) {
            each(&rest[start..end]);
            start = end;
        }
        if rest.len() - start > self.max_event {
            return Err(EventTooLarge(self.max_event));
        }
        self.partial.extend_from_slice(&rest[start..]);
        Ok(())
    }
}

/// The value of the first `data:` line of an event (one leading space removed).
pub fn data(event: &[u8]) -> Option<&[u8]> {
    lines(event)
        .find_map(|line| line.strip_prefix(b"data:"))
        .map(|v| v.strip_prefix(b" ").unwrap_or(v))
}

/// Appends an event's data — every `data:` line, joined with `\n` as the SSE spec says — to
/// `out`; false when the event has no data (a comment or a bare `event:`).
pub fn data_into(event: &[u8], out: &mut Vec<u8>) -> bool {
    let mut any = false;
    for line in lines(event) {
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

    const STREAM: &[u8] = b"data: {\"a\":1}\n\nevent: x\r\ndata: two\r\n\r\n: comment\n\n\
          event: cr\rdata: three\r\rdata: mixed\r\n\ndata: [DONE]\n\n";

    fn events_of(parts: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for p in parts {
            s.feed(p, |e| out.push(e.to_vec())).unwrap();
        }
        (out, s.pending().to_vec())
    }

    #[test]
    fn splits_whole_stream() {
        let (events, rest) = events_of(&[STREAM]);
        assert_eq!(events.len(), 6);
        assert_eq!(events[3], b"event: cr\rdata: three\r\r");
        assert_eq!(data(&events[3]), Some(&b"three"[..]));
        assert_eq!(data(&events[4]), Some(&b"mixed"[..]));
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

    #[test]
    fn an_event_that_never_ends_is_bounded() {
        let mut s = Splitter::new(1000);
        let line = [b'x'; 99];
        let mut fed = 0;
        let err = loop {
            let mut chunk = b"data: ".to_vec();
            chunk.extend_from_slice(&line);
            chunk.push(b'\n');
            fed += chunk.len();
            if let Err(e) = s.feed(&chunk, |_| panic!("no event ends")) {
                break e;
            }
            assert!(fed < 2000, "never refused");
        };
        assert_eq!(err, EventTooLarge(1000));
        // A stream's last event may end in CR CR with nothing after it: held until the end.
        let mut s = Splitter::default();
        let mut events = Vec::new();
        s.feed(b"data: a\r\rdata: [DONE]\r\r", |e| events.push(e.to_vec()))
            .unwrap();
        assert_eq!(events.len(), 1);
        s.finish(|e| events.push(e.to_vec()));
        assert_eq!(events[1], b"data: [DONE]\r\r");
        assert!(s.pending().is_empty());
        assert!(s.pending().len() <= 1004);
        let mut one = Splitter::new(1000);
        assert!(one.feed(&[b'a'; 5000], |_| {}).is_err());
        assert!(Splitter::new(1000).feed(&[b'a'; 999], |_| {}).is_ok());
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
