//! The ledger spool: ledger batches the database could not take, kept in one append-only file
//! until it can. A record is a batch as the ledger packs it (`ledger::pack`), with its origin
//! (the name it is stored under, at most once) and its row count, behind a length:
//!
//! `u32 LE length | u8 origin length | origin | u32 LE rows | packed rows`
//!
//! Each append is synced before it counts; a torn record at the end (a crash mid-write) is cut
//! off at open. The file is bounded: a batch that would pass the bound is refused, and the
//! caller keeps it (and, full, its shards' queues drop rows and count them). The file is
//! emptied only after every record in it has been stored.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::store::{Fault, StoreError};

pub struct Spool {
    path: PathBuf,
    file: File,
    bytes: u64,
    rows: u64,
    max: u64,
    _lock: File,
}

/// One spooled batch.
pub struct Batch {
    pub origin: String,
    pub rows: u32,
    pub packed: Vec<u8>,
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::new(Fault::Io, format!("ledger spool {}: {e}", path.display()))
}

impl Spool {
    /// Opens (or creates) `dir/ledger.spool`; `lock` is the directory's lock, held as long.
    pub fn open(dir: &Path, max: u64, lock: File) -> Result<Spool, StoreError> {
        let path = dir.join("ledger.spool");
        use std::os::unix::fs::OpenOptionsExt;
        // Only this user: rows name keys, teams and end users.
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let mut spool = Spool {
            path,
            file,
            bytes: 0,
            rows: 0,
            max,
            _lock: lock,
        };
        // Counted a few batches at a time: a full spool is not held in memory at once.
        let (mut good, mut rows) = (0, 0);
        loop {
            let (batches, end) = spool.read_from(good, 64)?;
            rows += batches.iter().map(|b| u64::from(b.rows)).sum::<u64>();
            if batches.is_empty() {
                break;
            }
            good = end;
        }
        let len = spool.file.metadata().map_err(|e| io(&spool.path, e))?.len();
        if good < len {
            ::log::warn!(
                "ledger spool {}: a torn record at its end ({} bytes) is dropped",
                spool.path.display(),
                len - good
            );
            spool.file.set_len(good).map_err(|e| io(&spool.path, e))?;
        }
        spool.bytes = good;
        spool.rows = rows;
        Ok(spool)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows waiting.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends one batch and syncs it; refused when it would pass the bound.
    pub fn push(&mut self, origin: &str, rows: u32, packed: &[u8]) -> Result<(), StoreError> {
        let body = 1 + origin.len() + 4 + packed.len();
        if self.bytes + 4 + body as u64 > self.max {
            return Err(StoreError::new(
                Fault::Unavailable,
                format!(
                    "PostgreSQL is unreachable and the ledger spool {} is full ({} bytes)",
                    self.path.display(),
                    self.max
                ),
            ));
        }
        let mut rec = Vec::with_capacity(4 + body);
        rec.extend_from_slice(&(body as u32).to_le_bytes());
        rec.push(origin.len() as u8);
        rec.extend_from_slice(origin.as_bytes());
        rec.extend_from_slice(&rows.to_le_bytes());
        rec.extend_from_slice(packed);
        let path = &self.path;
        self.file.write_all(&rec).map_err(|e| io(path, e))?;
        self.file.sync_data().map_err(|e| io(path, e))?;
        self.bytes += rec.len() as u64;
        self.rows += u64::from(rows);
        Ok(())
    }

    /// Up to `max` whole batches from byte `at` on, and where they end (a torn record ends
    /// the file).
    pub fn read_from(&self, at: u64, max: usize) -> Result<(Vec<Batch>, u64), StoreError> {
        use std::io::{BufReader, Seek, SeekFrom};
        let failed = |e| io(&self.path, e);
        let mut f = BufReader::new(File::open(&self.path).map_err(failed)?);
        f.seek(SeekFrom::Start(at)).map_err(failed)?;
        let (mut batches, mut at) = (Vec::new(), at);
        while batches.len() < max {
            let mut len = [0u8; 4];
            if f.read_exact(&mut len).is_err() {
                break;
            }
            let len = u32::from_le_bytes(len) as usize;
            let mut rec = vec![0u8; len];
            if f.read_exact(&mut rec).is_err() {
                break;
            }
            let Some(batch) = parse(&rec) else { break };
            batches.push(batch);
            at += 4 + len as u64;
        }
        Ok((batches, at))
    }

    /// Every whole batch in the file, and where the whole ones end.
    pub fn read(&self) -> Result<(Vec<Batch>, u64), StoreError> {
        self.read_from(0, usize::MAX)
    }

    /// Bytes of whole records in the file.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Empties the file once its batches are stored.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(|e| io(&self.path, e))?;
        self.file.sync_data().map_err(|e| io(&self.path, e))?;
        self.bytes = 0;
        self.rows = 0;
        Ok(())
    }
}

fn parse(rec: &[u8]) -> Option<Batch> {
    let n = *rec.first()? as usize;
    let origin = std::str::from_utf8(rec.get(1..1 + n)?).ok()?.to_owned();
    let rows = u32::from_le_bytes(rec.get(1 + n..5 + n)?.try_into().ok()?);
    Some(Batch {
        origin,
        rows,
        packed: rec[5 + n..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, max: u64) -> Spool {
        let lock = File::create(dir.join("lock")).unwrap();
        Spool::open(dir, max, lock).unwrap()
    }

    #[test]
    fn batches_survive_a_reopen_a_torn_tail_is_cut_and_the_bound_holds() {
        let dir = crate::store::tests::temp_dir("spool");
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = open(&dir, 64);
        s.push("a:1", 2, b"0123456789").unwrap();
        s.push("a:2", 1, b"xy").unwrap();
        assert_eq!(s.rows(), 3);
        let err = s.push("a:3", 9, &[0; 40]).unwrap_err();
        assert_eq!(err.fault, Fault::Unavailable);
        drop(s);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("ledger.spool"))
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        let mut s = open(&dir, 64);
        assert_eq!(s.rows(), 3);
        let (batches, _) = s.read().unwrap();
        let got: Vec<_> = batches
            .iter()
            .map(|b| (b.origin.as_str(), b.rows, b.packed.as_slice()))
            .collect();
        assert_eq!(
            got,
            [("a:1", 2, &b"0123456789"[..]), ("a:2", 1, &b"xy"[..])]
        );
        s.clear().unwrap();
        assert_eq!((s.rows(), s.read().unwrap().0.len()), (0, 0));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
