//! The last key records read from PostgreSQL, kept as one JSON file (`keys.json`) beside the
//! spool, so a replica that starts, or republishes, while the database is away serves the
//! keys and teams it last knew instead of none. Written (to a temporary file, then renamed)
//! only when the records differ from the last ones written. It holds key hashes, never
//! secrets: the same as the database does.

use std::path::{Path, PathBuf};

use crate::store::KeyRecord;

pub struct Snapshot {
    path: PathBuf,
    /// What the file holds.
    records: Option<Vec<KeyRecord>>,
    /// When it was written, unix ms.
    saved_ms: Option<i64>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct File {
    saved_ms: i64,
    keys: Vec<KeyRecord>,
}

impl Snapshot {
    /// Reads `dir/keys.json` if it is there (an unreadable one is reported and ignored).
    pub fn open(dir: &Path) -> Snapshot {
        let path = dir.join("keys.json");
        let read = std::fs::read(&path)
            .ok()
            .map(|b| serde_json::from_slice::<File>(&b));
        let (records, saved_ms) = match read {
            Some(Ok(f)) => (Some(f.keys), Some(f.saved_ms)),
            Some(Err(e)) => {
                ::log::warn!(
                    "store: the key snapshot {} is unreadable: {e}",
                    path.display()
                );
                (None, None)
            }
            None => (None, None),
        };
        Snapshot {
            path,
            records,
            saved_ms,
        }
    }

    pub fn records(&self) -> Option<Vec<KeyRecord>> {
        self.records.clone()
    }

    pub fn keys(&self) -> usize {
        self.records.as_ref().map_or(0, Vec::len)
    }

    /// When the file was written, unix ms.
    pub fn saved_ms(&self) -> Option<i64> {
        self.saved_ms
    }

    /// Keeps `records` as the last known (a failure to write the file is logged: it costs only
    /// a start while the database is away).
    pub fn save(&mut self, records: &[KeyRecord]) {
        if self.records.as_deref() == Some(records) {
            return;
        }
        let now = crate::auth::now_ms();
        let file = File {
            saved_ms: now,
            keys: records.to_vec(),
        };
        let tmp = self.path.with_extension("json.tmp");
        let json = serde_json::to_vec(&file).expect("key records serialize");
        let written = write_private(&tmp, &json).and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            ::log::warn!("store: key snapshot {} not saved: {e}", self.path.display());
        }
        // Kept in memory either way: a republish while the database is away needs it.
        self.records = Some(file.keys);
        self.saved_ms = Some(now);
    }
}

/// Writes `bytes` to a new file only this user can read (it holds key hashes).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_from_the_file() {
        let dir = crate::store::tests::temp_dir("snapshot");
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Snapshot::open(&dir);
        assert_eq!((s.records(), s.keys()), (None, 0));
        let rec = KeyRecord {
            id: "key_1".into(),
            alias: Some("a".into()),
            hash: [7; 32],
            previous: Some(([9; 32], 5)),
            team_id: Some("t".into()),
            models: vec!["gpt".into()],
            team_models: vec![],
            expires_ms: Some(3),
            blocked: true,
            team_blocked: false,
            limits: Default::default(),
            team_limits: None,
            user_id: None,
            guardrails: vec!["pii".into()],
            team_guardrails: vec![],
            cache: crate::store::CacheSetting::Off,
        };
        s.save(std::slice::from_ref(&rec));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Snapshot::open(&dir);
        assert_eq!(again.records(), Some(vec![rec]));
        assert!(again.saved_ms().is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
