//! A policy's deny list: words and phrases matched case-insensitively on word boundaries, and
//! regexes as written.
//!
//! Compiled once per policy: all words into one Aho–Corasick automaton (ASCII case folding;
//! boundaries are ASCII letters, digits and `_`, so non-ASCII words match as written), all
//! regexes into one `RegexSet` for the quick test plus one `Regex` each, run only for the
//! patterns the set says match — clean text costs one pass per kind. A regex match is assumed
//! to be at most [`REGEX_SPAN`] bytes for stream hold-back; longer ones are still found in
//! whole texts but a stream may see them in pieces. Regexes see each scanned text on its own,
//! so `^`, `$` and `\b` at its edges follow the text a stream window gives them.

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexSet};

use super::class::{word_at, word_before};
use super::{Entity, Finding};

/// The longest match a deny regex is assumed to have, for stream hold-back.
pub const REGEX_SPAN: usize = 256;

#[derive(Debug)]
pub struct Deny {
    words: Option<AhoCorasick>,
    longest_word: usize,
    set: Option<RegexSet>,
    regexes: Vec<Regex>,
}

impl Deny {
    /// Blank words are skipped; a regex that does not compile is an error naming it.
    pub fn new(words: &[String], regexes: &[String]) -> Result<Deny, String> {
        let words: Vec<&str> = words
            .iter()
            .map(|w| w.trim())
            .filter(|w| !w.is_empty())
            .collect();
        let longest_word = words.iter().map(|w| w.len()).max().unwrap_or(0);
        let automaton = if words.is_empty() {
            None
        } else {
            // Standard semantics, so overlapping candidates can all be tested for boundaries.
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&words)
                .map_err(|e| format!("deny words: {e}"))?;
            Some(ac)
        };
        let compiled = regexes
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("deny pattern {p:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let set = if regexes.is_empty() {
            None
        } else {
            Some(RegexSet::new(regexes).map_err(|e| format!("deny patterns: {e}"))?)
        };
        Ok(Deny {
            words: automaton,
            longest_word,
            set,
            regexes: compiled,
        })
    }

    pub(super) fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let from = out.len();
        let t = text.as_bytes();
        if let Some(words) = &self.words {
            for m in words.find_overlapping_iter(text) {
                if !word_before(t, m.start()) && !word_at(t, m.end()) {
                    out.push(Finding::new(Entity::Denied, m.start()..m.end()));
                }
            }
        }
        if let Some(set) = &self.set {
            for k in set.matches(text).iter() {
                for m in self.regexes[k].find_iter(text) {
                    if !m.is_empty() {
                        out.push(Finding::new(Entity::Denied, m.range()));
                    }
                }
            }
        }
        super::settle(out, from);
    }

    pub(super) fn max_span(&self) -> usize {
        let regex = if self.regexes.is_empty() {
            0
        } else {
            REGEX_SPAN
        };
        (self.longest_word + 2).max(regex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(words: &[&str], regexes: &[&str]) -> Deny {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Deny::new(&own(words), &own(regexes)).unwrap()
    }

    fn found<'t>(d: &Deny, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        d.scan(text, &mut out);
        out.iter().map(|f| &text[f.range.clone()]).collect()
    }

    #[test]
    fn words_match_whole_and_caseless() {
        let d = deny(&["secret project", "cat", " ", "Zeus"], &[]);
        assert_eq!(
            found(
                &d,
                "The SECRET  project? no: Secret Project, a Cat, concat, cats, zeus_x, ZEUS."
            ),
            ["Secret Project", "Cat", "ZEUS"]
        );
    }

    #[test]
    fn an_overlapping_word_does_not_hide_a_whole_one() {
        let d = deny(&["concat", "cat"], &[]);
        assert_eq!(found(&d, "concatenate cat"), ["cat"]);
        let d = deny(&["ab", "abc"], &[]);
        assert_eq!(found(&d, "abc ab"), ["abc", "ab"]);
    }

    #[test]
    fn non_ascii_words_match_as_written() {
        let d = deny(&["café", "机密"], &[]);
        assert_eq!(found(&d, "un café, 这是机密文件"), ["café", "机密"]);
    }

    #[test]
    fn regexes_run_only_when_the_set_matches() {
        let d = deny(&["alpha"], &[r"\bproj-\d{4}\b", r"(?i)codename\s+\w+"]);
        assert_eq!(
            found(&d, "alpha proj-1234 and CODENAME  Bluebird, not proj-12345"),
            ["alpha", "proj-1234", "CODENAME  Bluebird"]
        );
        assert!(found(&d, "nothing here").is_empty());
        assert_eq!(d.max_span(), REGEX_SPAN);
    }

    #[test]
    fn a_bad_regex_is_named() {
        let err = Deny::new(&[], &["ok".into(), "(unclosed".into()]).unwrap_err();
        assert!(err.contains("(unclosed"), "{err}");
    }

    #[test]
    fn empty_lists_match_nothing() {
        let d = deny(&[], &[]);
        assert!(found(&d, "anything").is_empty());
        assert_eq!(d.max_span(), 2);
    }
}
