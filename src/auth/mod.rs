//! Virtual keys: who is calling, and which model aliases they may use.
//!
//! Keys are stored only as SHA-256 hashes. A presented key is hashed, the candidate is found by
//! hash, and the match is confirmed with a constant-time comparison of the two digests, so
//! neither the lookup nor the comparison leaks how much of a key was right.

use std::collections::HashMap;

use crate::error::{GatewayError, Kind};

/// The caller a request runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// `keys` is empty: the gateway runs open (and said so loudly at start).
    Anonymous,
    Key(usize),
}

#[derive(Debug)]
pub struct KeyEntry {
    pub name: String,
    /// Model indices this key may use; `None` = all.
    allowed: Option<Vec<usize>>,
}

impl KeyEntry {
    pub fn new(name: String, allowed: Option<Vec<usize>>) -> Self {
        KeyEntry { name, allowed }
    }

    pub fn may_use(&self, model: usize) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(&model))
    }
}

type Digest = [u8; 32];

#[derive(Debug, Default)]
pub struct KeyTable {
    entries: Vec<KeyEntry>,
    by_hash: HashMap<Digest, usize>,
}

fn digest(key: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn constant_time_eq(a: &Digest, b: &Digest) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl KeyTable {
    pub fn insert(&mut self, entry: KeyEntry, key: &str) -> Result<(), String> {
        if self.entries.iter().any(|e| e.name == entry.name) {
            return Err(format!("duplicate key name {:?}", entry.name));
        }
        let d = digest(key.as_bytes());
        if self.by_hash.contains_key(&d) {
            return Err(format!(
                "key {:?} has the same secret as another key",
                entry.name
            ));
        }
        self.by_hash.insert(d, self.entries.len());
        self.entries.push(entry);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, i: usize) -> &KeyEntry {
        &self.entries[i]
    }

    /// Resolves a presented key (from `Authorization: Bearer` or `x-api-key`).
    pub fn authenticate(&self, presented: Option<&[u8]>) -> Result<Principal, GatewayError> {
        if self.entries.is_empty() {
            return Ok(Principal::Anonymous);
        }
        let Some(key) = presented.filter(|k| !k.is_empty()) else {
            return Err(GatewayError::new(
                Kind::Unauthorized,
                "missing API key: send Authorization: Bearer <key> or x-api-key",
            ));
        };
        let d = digest(key);
        match self.by_hash.get_key_value(&d) {
            Some((stored, &i)) if constant_time_eq(stored, &d) => Ok(Principal::Key(i)),
            _ => Err(GatewayError::new(Kind::Unauthorized, "invalid API key")),
        }
    }

    pub fn may_use(&self, who: Principal, model: usize) -> bool {
        match who {
            Principal::Anonymous => true,
            Principal::Key(i) => self.entries[i].may_use(model),
        }
    }

    pub fn name(&self, who: Principal) -> &str {
        match who {
            Principal::Anonymous => "anonymous",
            Principal::Key(i) => &self.entries[i].name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> KeyTable {
        let mut t = KeyTable::default();
        t.insert(KeyEntry::new("a".into(), None), "sk-a").unwrap();
        t.insert(KeyEntry::new("b".into(), Some(vec![1])), "sk-b")
            .unwrap();
        t
    }

    #[test]
    fn resolves_known_keys_and_rejects_others() {
        let t = table();
        assert_eq!(t.authenticate(Some(b"sk-a")), Ok(Principal::Key(0)));
        assert_eq!(t.authenticate(Some(b"sk-b")), Ok(Principal::Key(1)));
        assert_eq!(
            t.authenticate(Some(b"sk-c")).unwrap_err().kind,
            Kind::Unauthorized
        );
        assert_eq!(t.authenticate(None).unwrap_err().kind, Kind::Unauthorized);
        assert_eq!(
            t.authenticate(Some(b"")).unwrap_err().kind,
            Kind::Unauthorized
        );
    }

    #[test]
    fn model_allow_list() {
        let t = table();
        assert!(t.may_use(Principal::Key(0), 7));
        assert!(t.may_use(Principal::Key(1), 1));
        assert!(!t.may_use(Principal::Key(1), 0));
    }

    #[test]
    fn empty_table_is_open_and_duplicates_are_refused() {
        let mut t = KeyTable::default();
        assert_eq!(t.authenticate(None), Ok(Principal::Anonymous));
        t.insert(KeyEntry::new("a".into(), None), "x").unwrap();
        assert!(t.insert(KeyEntry::new("a".into(), None), "y").is_err());
        assert!(t.insert(KeyEntry::new("b".into(), None), "x").is_err());
    }
}
