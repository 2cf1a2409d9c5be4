//! The ledger's raw rows packed into one blob per appended batch: strings length-prefixed,
//! integers as LEB128 varints, floats as their eight bytes. One SQLite row per batch instead
//! of one per request is what lets the ledger keep up at full rate for little CPU; listings
//! unpack the batches of the days they ask for.

use super::LedgerRow;
use crate::store::{Fault, StoreError};

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `0` for none, else `len + 1` and the bytes.
fn text<S: AsRef<str>>(out: &mut Vec<u8>, s: &Option<S>) {
    match s.as_ref().map(AsRef::as_ref) {
        None => out.push(0),
        Some(s) => {
            varint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Appends `rows` to `out`.
pub fn pack<S: AsRef<str>>(rows: &[LedgerRow<S>], out: &mut Vec<u8>) {
    for r in rows {
        let id = r.request_id.as_ref();
        varint(out, id.len() as u64);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&r.ts_ms.to_le_bytes());
        for s in [
            &r.key_id,
            &r.team_id,
            &r.end_user,
            &r.alias,
            &r.target,
            &r.provider,
            &r.upstream_model,
        ] {
            text(out, s);
        }
        for n in [
            r.input,
            r.output,
            r.cache_read,
            r.cache_write,
            r.reasoning,
            u64::from(r.status),
        ] {
            varint(out, n);
        }
        match r.cost_usd.filter(|c| c.is_finite()) {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        let latency = Some(r.latency_ms).filter(|l| l.is_finite()).unwrap_or(0.0);
        out.extend_from_slice(&latency.to_le_bytes());
        out.push(u8::from(r.estimated));
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn bad() -> StoreError {
        StoreError::new(Fault::Corrupt, "a ledger batch does not unpack")
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(Self::bad)?;
        let b = &self.data[self.at..end];
        self.at = end;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.bytes(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(Self::bad())
    }

    fn string(&mut self, len: usize) -> Result<String, StoreError> {
        String::from_utf8(self.bytes(len)?.to_vec()).map_err(|_| Self::bad())
    }

    fn text(&mut self) -> Result<Option<String>, StoreError> {
        match self.varint()? {
            0 => Ok(None),
            n => self.string(n as usize - 1).map(Some),
        }
    }

    fn f64(&mut self) -> Result<f64, StoreError> {
        Ok(f64::from_le_bytes(
            self.bytes(8)?.try_into().map_err(|_| Self::bad())?,
        ))
    }
}

/// The rows of one batch, in the order they were appended.
pub fn unpack(data: &[u8]) -> Result<Vec<LedgerRow>, StoreError> {
    let mut r = Reader { data, at: 0 };
    let mut rows = Vec::new();
    while r.at < data.len() {
        let id_len = r.varint()? as usize;
        let request_id = r.string(id_len)?;
        let ts_ms = i64::from_le_bytes(r.bytes(8)?.try_into().map_err(|_| Reader::bad())?);
        let (key_id, team_id, end_user) = (r.text()?, r.text()?, r.text()?);
        let (alias, target, provider, upstream_model) =
            (r.text()?, r.text()?, r.text()?, r.text()?);
        let (input, output, cache_read) = (r.varint()?, r.varint()?, r.varint()?);
        let (cache_write, reasoning) = (r.varint()?, r.varint()?);
        let status = u16::try_from(r.varint()?).unwrap_or(u16::MAX);
        let cost_usd = match r.bytes(1)?[0] {
            0 => None,
            _ => Some(r.f64()?),
        };
        let latency_ms = r.f64()?;
        let estimated = r.bytes(1)?[0] != 0;
        rows.push(LedgerRow {
            request_id,
            ts_ms,
            key_id,
            team_id,
            end_user,
            alias,
            target,
            provider,
            upstream_model,
            input,
            output,
            cache_read,
            cache_write,
            reasoning,
            cost_usd,
            status,
            latency_ms,
            estimated,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_as_they_went_in() {
        let rows = vec![
            LedgerRow {
                request_id: "req_1".into(),
                ts_ms: 1_764_687_845_123,
                key_id: Some("key_a".into()),
                alias: Some("gpt-4o-mini".into()),
                input: 300,
                output: 1 << 40,
                cost_usd: Some(0.000_125),
                status: 200,
                latency_ms: 12.5,
                estimated: true,
                ..LedgerRow::default()
            },
            LedgerRow {
                request_id: "r\u{e9}q".into(),
                end_user: Some(String::new()),
                status: 499,
                ..LedgerRow::default()
            },
        ];
        let mut data = Vec::new();
        pack(&rows, &mut data);
        assert_eq!(unpack(&data).unwrap(), rows);
        // A batch cut short is refused or reads as its whole rows, never as a misread row.
        for cut in 1..data.len() {
            if let Ok(got) = unpack(&data[..cut]) {
                assert_eq!(got[..], rows[..got.len()], "cut at {cut}");
            }
        }
    }
}
