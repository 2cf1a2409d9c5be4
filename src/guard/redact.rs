//! Redaction: each finding's text replaced by a typed numbered placeholder, `<EMAIL_1>`.
//!
//! Numbers are per entity and per [`Placeholders`] (one request or response): the same matched
//! string always gets the same number, so a repeated address reads `<EMAIL_1>` everywhere and
//! the model can still tell two people apart. Findings from several checks may overlap; they
//! are merged first ([`merge`]) so no byte of either is left in the output.

use super::{Entity, Finding};

/// The strings already named, per entity, for one request or response.
#[derive(Debug, Default, Clone)]
pub struct Placeholders {
    /// Indexed by `entity as usize`; a string's number is its index plus one.
    seen: [Vec<Box<str>>; Entity::ALL.len()],
}

impl Placeholders {
    /// The number of `matched` among `entity`'s strings, numbering it if it is new.
    pub fn number(&mut self, entity: Entity, matched: &str) -> usize {
        let seen = &mut self.seen[entity as usize];
        // Linear: a request carries a handful of findings, not thousands.
        if let Some(k) = seen.iter().position(|s| &**s == matched) {
            return k + 1;
        }
        seen.push(matched.into());
        seen.len()
    }

    /// The original string behind `<ENTITY_n>`, for restoring it in an answer.
    pub fn original(&self, entity: Entity, n: usize) -> Option<&str> {
        self.seen[entity as usize]
            .get(n.checked_sub(1)?)
            .map(|s| &**s)
    }

    pub fn is_empty(&self) -> bool {
        self.seen.iter().all(Vec::is_empty)
    }
}

/// Sorts `findings` and merges overlapping ones into one covering both: the earliest start
/// wins, then the longest, and the winner's entity names the merged range.
pub fn merge(findings: &mut Vec<Finding>) {
    findings.sort_unstable_by_key(|f| (f.range.start, std::cmp::Reverse(f.range.end)));
    let mut kept = 0;
    for i in 0..findings.len() {
        if kept > 0 && findings[i].range.start < findings[kept - 1].range.end {
            let end = findings[i].range.end;
            let last = &mut findings[kept - 1].range;
            last.end = last.end.max(end);
        } else {
            findings.swap(kept, i);
            kept += 1;
        }
    }
    findings.truncate(kept);
}

/// Appends `text` to `out` with every finding replaced by its placeholder. `findings` is left
/// merged ([`merge`]); a range that is not on char boundaries of `text` is dropped (it came
/// from another text) rather than cutting a char.
pub fn redact(text: &str, findings: &mut Vec<Finding>, names: &mut Placeholders, out: &mut String) {
    findings.retain(|f| text.get(f.range.clone()).is_some() && !f.range.is_empty());
    merge(findings);
    out.reserve(text.len());
    let mut at = 0;
    for f in findings.iter() {
        out.push_str(&text[at..f.range.start]);
        let n = names.number(f.entity, &text[f.range.clone()]);
        out.push('<');
        out.push_str(f.entity.placeholder());
        out.push('_');
        out.push_str(itoa::Buffer::new().format(n));
        out.push('>');
        at = f.range.end;
    }
    out.push_str(&text[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(entity: Entity, text: &str, needle: &str) -> Finding {
        let s = text.find(needle).unwrap();
        Finding::new(entity, s..s + needle.len())
    }

    fn redacted(text: &str, mut findings: Vec<Finding>, names: &mut Placeholders) -> String {
        let mut out = String::new();
        redact(text, &mut findings, names, &mut out);
        out
    }

    #[test]
    fn the_same_string_keeps_its_number() {
        let text = "a@x.io wrote to b@y.io; cc a@x.io";
        let mut f = vec![
            find(Entity::Email, text, "a@x.io"),
            find(Entity::Email, text, "b@y.io"),
            Finding::new(Entity::Email, 27..33),
        ];
        f.reverse();
        let mut names = Placeholders::default();
        assert_eq!(
            redacted(text, f, &mut names),
            "<EMAIL_1> wrote to <EMAIL_2>; cc <EMAIL_1>"
        );
        assert_eq!(names.original(Entity::Email, 2), Some("b@y.io"));
        assert_eq!(names.original(Entity::Email, 3), None);
        // Numbering carries on across texts of the same request, per entity.
        let more = "b@y.io at 555-123-4567";
        let f = vec![
            find(Entity::Email, more, "b@y.io"),
            find(Entity::Phone, more, "555-123-4567"),
        ];
        assert_eq!(redacted(more, f, &mut names), "<EMAIL_2> at <PHONE_1>");
    }

    #[test]
    fn overlapping_findings_merge() {
        let text = "key AKIAIOSFODNN7EXAMPLE done";
        let f = vec![
            Finding::new(Entity::Denied, 8..16),
            Finding::new(Entity::AwsKey, 4..24),
            Finding::new(Entity::ApiKey, 4..10),
            Finding::new(Entity::Jwt, 20..26),
        ];
        let mut names = Placeholders::default();
        assert_eq!(redacted(text, f, &mut names), "key <AWS_KEY_1>one");
        let mut f = vec![
            Finding::new(Entity::Email, 5..9),
            Finding::new(Entity::Phone, 0..3),
            Finding::new(Entity::Iban, 3..5),
        ];
        merge(&mut f);
        assert_eq!(
            f.iter().map(|f| f.range.clone()).collect::<Vec<_>>(),
            [0..3, 3..5, 5..9]
        );
    }

    #[test]
    fn ranges_off_char_boundaries_are_dropped() {
        let text = "héllo";
        let f = vec![
            Finding::new(Entity::Denied, 0..2),
            Finding::new(Entity::Denied, 3..9),
        ];
        let mut names = Placeholders::default();
        assert_eq!(redacted(text, f, &mut names), "héllo");
        assert!(names.is_empty());
    }
}
