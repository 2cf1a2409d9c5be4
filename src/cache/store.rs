//! One shard's stored answers: a map from key to entry, kept in least-recently-used order
//! within a byte budget. Only its shard touches it, so it takes no lock. An entry is checked
//! in full on every hit (alias and tenant compared, not only the hash) and dropped once its
//! time is up.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::providers::translate::Wire;

/// One stored answer and whose it is.
#[derive(Debug)]
pub struct Entry {
    pub key: u128,
    pub alias: Box<str>,
    /// Whose requests may be served it (`k:<key id>`, `t:<team>`, or empty when shared).
    pub tenant: Box<str>,
    /// The key whose request stored it (purges by key go by this).
    pub key_id: Box<str>,
    pub stored_ms: i64,
    pub expires_ms: i64,
    /// The answer exactly as its client received it, in the client's protocol.
    pub wire: Wire,
    /// Whether `bytes` is an SSE stream rather than one JSON body.
    pub streamed: bool,
    pub bytes: Box<[u8]>,
}

impl Entry {
    /// What the entry counts against the budget: its bytes and its bookkeeping.
    fn size(&self) -> usize {
        self.bytes.len() + self.alias.len() + self.tenant.len() + self.key_id.len() + OVERHEAD
    }
}

/// The map slot, list links and `Rc` of an entry, roughly.
const OVERHEAD: usize = 160;

/// Keys are hashes already: the map uses their low bits as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

struct Node {
    entry: Rc<Entry>,
    /// Towards the most recently used.
    newer: usize,
    /// Towards the least recently used.
    older: usize,
}

const NIL: usize = usize::MAX;

/// What a purge removes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Purge {
    pub alias: Option<String>,
    pub key_id: Option<String>,
}

impl Purge {
    fn matches(&self, e: &Entry) -> bool {
        self.alias.as_deref().is_none_or(|a| *e.alias == *a)
            && self.key_id.as_deref().is_none_or(|k| *e.key_id == *k)
    }
}

/// Why a lookup found nothing to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    Absent,
    Expired,
    /// Stored longer ago than the request's `max-age` allows (kept for others).
    TooOld,
}

#[derive(Default)]
pub struct Store {
    map: HashMap<u128, usize, BuildHasherDefault<Identity>>,
    nodes: Vec<Option<Node>>,
    free: Vec<usize>,
    newest: usize,
    oldest: usize,
    bytes: usize,
    pub evictions: u64,
}

impl Store {
    pub fn new() -> Store {
        Store {
            newest: NIL,
            oldest: NIL,
            ..Store::default()
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry for `key` if it is `alias`'s, `tenant`'s, in time, and (with `max_age_ms`)
    /// young enough; it becomes the most recently used.
    pub fn get(
        &mut self,
        key: u128,
        alias: &str,
        tenant: super::Tenant<'_>,
        now_ms: i64,
        max_age_ms: Option<i64>,
    ) -> Result<Rc<Entry>, Miss> {
        let &i = self.map.get(&key).ok_or(Miss::Absent)?;
        let e = self.node(i).entry.clone();
        if *e.alias != *alias || !tenant.is(&e.tenant) {
            return Err(Miss::Absent);
        }
        if now_ms >= e.expires_ms {
            self.remove_at(i);
            return Err(Miss::Expired);
        }
        if max_age_ms.is_some_and(|m| now_ms - e.stored_ms > m) {
            return Err(Miss::TooOld);
        }
        self.unlink(i);
        self.push_newest(i);
        Ok(e)
    }

    /// Stores `entry` (replacing one under its key), then evicts the least recently used
    /// until the store fits `budget`. An entry larger than the budget is not stored.
    /// Whether an entry is stored under `key` (live or not).
    pub fn contains(&self, key: u128) -> bool {
        self.map.contains_key(&key)
    }

    pub fn put(&mut self, entry: Entry, budget: usize) -> bool {
        let size = entry.size();
        if size > budget {
            return false;
        }
        if let Some(&i) = self.map.get(&entry.key) {
            self.remove_at(i);
        }
        let key = entry.key;
        let node = Node {
            entry: Rc::new(entry),
            newer: NIL,
            older: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.map.insert(key, i);
        self.push_newest(i);
        self.bytes += size;
        self.fit(budget);
        true
    }

    /// Evicts the least recently used until the store holds at most `budget` bytes.
    pub fn fit(&mut self, budget: usize) {
        while self.bytes > budget && self.oldest != NIL {
            self.remove_at(self.oldest);
            self.evictions += 1;
        }
    }

    /// Removes an entry that turned out not to be servable.
    pub fn remove(&mut self, key: u128) {
        if let Some(&i) = self.map.get(&key) {
            self.remove_at(i);
        }
    }

    /// Removes every entry `p` matches; returns how many.
    pub fn purge(&mut self, p: &Purge) -> u64 {
        let doomed: Vec<usize> = self
            .map
            .values()
            .copied()
            .filter(|&i| p.matches(&self.node(i).entry))
            .collect();
        for &i in &doomed {
            self.remove_at(i);
        }
        doomed.len() as u64
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("a mapped slot holds a node")
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("a linked slot holds a node")
    }

    fn remove_at(&mut self, i: usize) {
        self.unlink(i);
        let node = self.nodes[i].take().expect("removing a live slot");
        self.map.remove(&node.entry.key);
        self.bytes -= node.entry.size();
        self.free.push(i);
    }

    fn unlink(&mut self, i: usize) {
        let (newer, older) = {
            let n = self.node(i);
            (n.newer, n.older)
        };
        match newer {
            NIL => self.newest = older,
            n => self.node_mut(n).older = older,
        }
        match older {
            NIL => self.oldest = newer,
            o => self.node_mut(o).newer = newer,
        }
    }

    fn push_newest(&mut self, i: usize) {
        let old_newest = self.newest;
        {
            let n = self.node_mut(i);
            n.newer = NIL;
            n.older = old_newest;
        }
        match old_newest {
            NIL => self.oldest = i,
            n => self.node_mut(n).newer = i,
        }
        self.newest = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> super::super::Tenant<'_> {
        match s.split_once(':') {
            Some((k, n)) => super::super::Tenant {
                kind: if k == "k" { "k:" } else { "t:" },
                name: n,
            },
            None => super::super::Tenant { kind: "", name: s },
        }
    }

    fn entry(key: u128, alias: &str, tenant: &str, len: usize) -> Entry {
        Entry {
            key,
            alias: alias.into(),
            tenant: tenant.into(),
            key_id: tenant.into(),
            stored_ms: 1_000,
            expires_ms: 2_000,
            wire: Wire::OpenAi,
            streamed: false,
            bytes: vec![b'x'; len].into(),
        }
    }

    #[test]
    fn a_hit_needs_the_same_alias_and_tenant_and_time_left() {
        let mut s = Store::new();
        s.put(entry(1, "gpt", "k:a", 10), 1 << 20);
        assert!(s.get(1, "gpt", t("k:a"), 1_500, None).is_ok());
        assert_eq!(
            s.get(1, "gpt", t("k:b"), 1_500, None).unwrap_err(),
            Miss::Absent
        );
        assert_eq!(
            s.get(1, "gpt2", t("k:a"), 1_500, None).unwrap_err(),
            Miss::Absent
        );
        assert_eq!(
            s.get(2, "gpt", t("k:a"), 1_500, None).unwrap_err(),
            Miss::Absent
        );
        assert_eq!(
            s.get(1, "gpt", t("k:a"), 1_500, Some(100)).unwrap_err(),
            Miss::TooOld
        );
        assert!(s.get(1, "gpt", t("k:a"), 1_500, Some(600)).is_ok());
        assert_eq!(
            s.get(1, "gpt", t("k:a"), 2_000, None).unwrap_err(),
            Miss::Expired
        );
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let mut s = Store::new();
        let one = entry(0, "m", "", 100).size();
        let budget = 3 * one;
        for k in 0..3 {
            assert!(s.put(entry(k, "m", "", 100), budget));
        }
        // Touch 0: 1 is now the oldest.
        s.get(0, "m", t(""), 1_500, None).unwrap();
        s.put(entry(3, "m", "", 100), budget);
        assert_eq!(s.len(), 3);
        assert_eq!(s.evictions, 1);
        assert!(s.get(1, "m", t(""), 1_500, None).is_err());
        for k in [0, 2, 3] {
            assert!(s.get(k, "m", t(""), 1_500, None).is_ok(), "{k}");
        }
        assert!(s.bytes() <= budget);
        // Replacing an entry does not count it twice; too large is refused.
        s.put(entry(3, "m", "", 100), budget);
        assert_eq!(s.bytes(), 3 * one);
        assert!(!s.put(entry(9, "m", "", 4 * one), budget));
        // A smaller budget evicts down to it.
        s.fit(one);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn purges_by_alias_key_or_everything() {
        let mut s = Store::new();
        s.put(entry(1, "a", "k:1", 1), 1 << 20);
        s.put(entry(2, "a", "k:2", 1), 1 << 20);
        s.put(entry(3, "b", "k:1", 1), 1 << 20);
        let by_key = Purge {
            key_id: Some("k:1".into()),
            ..Purge::default()
        };
        assert_eq!(s.purge(&by_key), 2);
        let by_alias = Purge {
            alias: Some("a".into()),
            ..Purge::default()
        };
        assert_eq!(s.purge(&by_alias), 1);
        s.put(entry(4, "c", "", 1), 1 << 20);
        assert_eq!(s.purge(&Purge::default()), 1);
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
    }
}
