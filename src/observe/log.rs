//! The access log: one JSON line per request. A shard formats the line and pushes it onto its
//! own bounded lock-free queue; one background thread drains every queue to stdout, stderr or
//! a file. A full queue (a slow sink) never blocks a shard: the line is dropped and counted.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use crate::config::AccessLog;
use crate::json;

const QUEUE_LINES: usize = 16 * 1024;

/// A shard's end of the log.
pub struct Sink {
    queue: Option<Arc<ArrayQueue<Vec<u8>>>>,
}

impl Sink {
    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues a line; `false` if it had to be dropped.
    pub fn push(&self, line: Vec<u8>) -> bool {
        match &self.queue {
            Some(q) => q.push(line).is_ok(),
            None => true,
        }
    }
}

/// One access-log record; `write` renders it as a JSON line.
pub struct Record<'a> {
    pub request_id: &'a [u8],
    pub key: &'a str,
    pub method_path: &'a [u8],
    pub model: &'a str,
    pub provider: &'a str,
    pub upstream_model: &'a str,
    pub status: u16,
    pub stream: bool,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    /// Prompt tokens read from and written to the provider's cache.
    pub tokens_cached: Option<(u64, u64)>,
    /// The answer's cost in USD (`None`: not served, or the target has no price).
    pub cost_usd: Option<f64>,
    /// Usage was estimated (a stream cut short before its usage).
    pub estimated: bool,
    pub team: Option<&'a str>,
    pub total_us: u64,
    pub upstream_us: Option<u64>,
    pub error: Option<&'a str>,
    /// Each upstream attempt: target name, error code (`None`: it served), duration.
    pub attempts: &'a [(&'a str, Option<&'a str>, u64)],
    /// Fallback aliases skipped because the key may not use them (written only when any were).
    pub not_allowed: &'a [&'a str],
    /// What the response cache did (`hit`, `miss`, `bypass`), when the alias caches.
    pub cache: Option<&'a str>,
    /// Guardrail verdicts, `policy:phase:verdict` comma-separated (never the text matched).
    pub guardrails: Option<&'a str>,
}

impl Record<'_> {
    pub fn write(&self, out: &mut Vec<u8>) {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        out.extend_from_slice(b"{\"ts_ms\":");
        json::push_u64(out, ts.as_millis() as u64);
        out.extend_from_slice(b",\"request_id\":");
        json::push_str(out, &String::from_utf8_lossy(self.request_id));
        out.extend_from_slice(b",\"key\":");
        json::push_str(out, self.key);
        out.extend_from_slice(b",\"path\":");
        json::push_str(out, &String::from_utf8_lossy(self.method_path));
        out.extend_from_slice(b",\"model\":");
        json::push_str(out, self.model);
        out.extend_from_slice(b",\"provider\":");
        json::push_str(out, self.provider);
        out.extend_from_slice(b",\"upstream_model\":");
        json::push_str(out, self.upstream_model);
        out.extend_from_slice(b",\"status\":");
        json::push_u64(out, self.status as u64);
        out.extend_from_slice(if self.stream {
            b",\"stream\":true"
        } else {
            b",\"stream\":false"
        });
        if let Some(c) = self.cache {
            out.extend_from_slice(b",\"cache\":");
            json::push_str(out, c);
        }
        if let Some(g) = self.guardrails {
            out.extend_from_slice(b",\"guardrails\":");
            json::push_str(out, g);
        }
        for (name, v) in [
            ("tokens_in", self.tokens_in),
            ("tokens_out", self.tokens_out),
        ] {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            match v {
                Some(n) => json::push_u64(out, n),
                None => out.extend_from_slice(b"null"),
            }
        }
        if let Some((read, write)) = self.tokens_cached {
            out.extend_from_slice(b",\"tokens_cache_read\":");
            json::push_u64(out, read);
            out.extend_from_slice(b",\"tokens_cache_write\":");
            json::push_u64(out, write);
        }
        out.extend_from_slice(b",\"cost_usd\":");
        match self.cost_usd {
            Some(c) => json::push_fixed8(out, c),
            None => out.extend_from_slice(b"null"),
        }
        if self.estimated {
            out.extend_from_slice(b",\"estimated\":true");
        }
        if let Some(t) = self.team {
            out.extend_from_slice(b",\"team\":");
            json::push_str(out, t);
        }
        out.extend_from_slice(b",\"total_us\":");
        json::push_u64(out, self.total_us);
        out.extend_from_slice(b",\"upstream_us\":");
        match self.upstream_us {
            Some(u) => json::push_u64(out, u),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"overhead_us\":");
        json::push_u64(
            out,
            self.total_us.saturating_sub(self.upstream_us.unwrap_or(0)),
        );
        out.extend_from_slice(b",\"error\":");
        match self.error {
            Some(e) => json::push_str(out, e),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"attempts\":[");
        for (i, (target, error, us)) in self.attempts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"target\":");
            json::push_str(out, target);
            out.extend_from_slice(b",\"error\":");
            match error {
                Some(e) => json::push_str(out, e),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"us\":");
            json::push_u64(out, *us);
            out.push(b'}');
        }
        out.push(b']');
        if !self.not_allowed.is_empty() {
            out.extend_from_slice(b",\"skipped_not_allowed\":[");
            for (i, alias) in self.not_allowed.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::push_str(out, alias);
            }
            out.push(b']');
        }
        out.extend_from_slice(b"}\n");
    }
}

/// The writer thread and the shards' sinks.
pub struct Writer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Starts the writer (unless the log is off) and returns one sink per shard.
pub fn start(target: &AccessLog, shards: usize) -> std::io::Result<(Writer, Vec<Sink>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut out: Box<dyn Write + Send> = match target {
        AccessLog::Off => {
            let sinks = (0..shards).map(|_| Sink { queue: None }).collect();
            return Ok((Writer { stop, handle: None }, sinks));
        }
        AccessLog::Stdout => Box::new(std::io::stdout()),
        AccessLog::Stderr => Box::new(std::io::stderr()),
        AccessLog::File(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
    };
    let queues: Vec<_> = (0..shards)
        .map(|_| Arc::new(ArrayQueue::new(QUEUE_LINES)))
        .collect();
    let sinks = queues
        .iter()
        .map(|q| Sink {
            queue: Some(q.clone()),
        })
        .collect();
    let stop2 = stop.clone();
    let handle = std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                let stopping = stop2.load(Ordering::Acquire);
                for q in &queues {
                    while let Some(line) = q.pop() {
                        buf.extend_from_slice(&line);
                        if buf.len() >= 60 * 1024 {
                            let _ = out.write_all(&buf);
                            buf.clear();
                        }
                    }
                }
                if !buf.is_empty() {
                    let _ = out.write_all(&buf);
                    let _ = out.flush();
                    buf.clear();
                } else if stopping {
                    return;
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })?;
    Ok((
        Writer {
            stop,
            handle: Some(handle),
        },
        sinks,
    ))
}

impl Writer {
    /// Drains what is queued, then stops.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_instead_of_blocking() {
        let sink = Sink {
            queue: Some(Arc::new(ArrayQueue::new(2))),
        };
        assert!(sink.push(b"1\n".to_vec()));
        assert!(sink.push(b"2\n".to_vec()));
        assert!(
            !sink.push(b"3\n".to_vec()),
            "a third line must be dropped, not wait"
        );
    }

    #[test]
    fn records_are_json_lines() {
        let mut out = Vec::new();
        Record {
            request_id: b"r\"1",
            key: "k",
            method_path: b"/v1/x",
            model: "m",
            provider: "p",
            upstream_model: "u",
            status: 502,
            stream: true,
            tokens_in: Some(3),
            tokens_out: None,
            tokens_cached: Some((1, 0)),
            cost_usd: Some(0.000_125),
            estimated: true,
            team: Some("t"),
            total_us: 90,
            upstream_us: Some(40),
            error: Some("upstream_timeout"),
            attempts: &[("up/m", Some("upstream_timeout"), 1200)],
            not_allowed: &[],
            cache: None,
            guardrails: Some("no-pii:request:redacted"),
        }
        .write(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut out).unwrap();
        use simd_json::prelude::*;
        assert_eq!(v["request_id"].as_str(), Some("r\"1"));
        assert_eq!(v["overhead_us"].as_u64(), Some(50));
        assert!(v["tokens_out"].is_null());
        assert_eq!(v["cost_usd"].as_f64(), Some(0.000_125));
        assert_eq!(v["tokens_cache_read"].as_u64(), Some(1));
        assert_eq!(v["team"].as_str(), Some("t"));
    }
}
