//! Measurements: per-thread recorders (hdrhistograms in µs and counters), merged into a
//! [`Report`] that prints as a table or as one JSON object.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailKind {
    Status,
    Io,
    Timeout,
}

/// One thread's measurements.
pub(crate) struct Recorder {
    latency: Histogram<u64>,
    ttfb: Histogram<u64>,
    gap: Histogram<u64>,
    /// Open loop: how late requests were sent after their scheduled time.
    lag: Histogram<u64>,
    ok: u64,
    status_errors: u64,
    io_errors: u64,
    timeouts: u64,
    /// Responses received at all, warm-up included (to divide a server's CPU time by).
    responses: u64,
    first_error: Option<String>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 h at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            latency: histogram(),
            ttfb: histogram(),
            gap: histogram(),
            lag: histogram(),
            ok: 0,
            status_errors: 0,
            io_errors: 0,
            timeouts: 0,
            responses: 0,
            first_error: None,
        }
    }

    /// A 2xx response that started (or was scheduled) at `start`; `gaps` are the intervals
    /// between its SSE events.
    pub fn ok(
        &mut self,
        measured: bool,
        start: Instant,
        first_byte: Option<Instant>,
        done: Instant,
        gaps: &[Duration],
    ) {
        self.responses += 1;
        if !measured {
            return;
        }
        self.ok += 1;
        self.latency
            .saturating_record(micros(done.saturating_duration_since(start)));
        if let Some(fb) = first_byte {
            self.ttfb
                .saturating_record(micros(fb.saturating_duration_since(start)));
        }
        for &g in gaps {
            self.gap.saturating_record(micros(g));
        }
    }

    /// A failed request; `responded` if a (non-2xx) response did arrive.
    pub fn fail(
        &mut self,
        measured: bool,
        kind: FailKind,
        responded: bool,
        what: &dyn Fn() -> String,
    ) {
        if responded {
            self.responses += 1;
        }
        if !measured {
            return;
        }
        match kind {
            FailKind::Status => self.status_errors += 1,
            FailKind::Io => self.io_errors += 1,
            FailKind::Timeout => self.timeouts += 1,
        }
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    /// An open-loop request went out `lag` after its scheduled time.
    pub fn sent(&mut self, measured: bool, lag: Duration) {
        if measured {
            self.lag.saturating_record(micros(lag));
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.ttfb.add(&other.ttfb);
        let _ = self.gap.add(&other.gap);
        let _ = self.lag.add(&other.lag);
        self.ok += other.ok;
        self.status_errors += other.status_errors;
        self.io_errors += other.io_errors;
        self.timeouts += other.timeouts;
        self.responses += other.responses;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Percentiles of one histogram, in µs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Summary {
    fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary {
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
                mean: 0.0,
            };
        }
        Summary {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    /// `"open"` or `"closed"`.
    pub mode: &'static str,
    /// Requests per second asked for (open loop only).
    pub rate_target: Option<f64>,
    pub connections: usize,
    /// The measured period (warm-up excluded).
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Successful (2xx) requests in the measured period.
    pub requests: u64,
    /// Failed requests in the measured period: `status_errors + io_errors + timeouts`.
    pub errors: u64,
    pub status_errors: u64,
    pub io_errors: u64,
    pub timeouts: u64,
    /// Responses received over the whole run, warm-up included.
    pub responses_total: u64,
    /// `requests / duration_s`.
    pub rps: f64,
    pub latency_us: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttfb_us: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_gap_us: Option<Summary>,
    /// Open loop: send time minus scheduled time (queueing behind a busy connection and the
    /// generator's own lateness).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag_us: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Idle keep-alive connections asked for (`--idle`); the four `idle_*` fields below are
    /// present only with them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_connections: Option<usize>,
    /// Idle connections that answered their first request and were held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_opened: Option<usize>,
    /// Idle connections that still answered on the same socket after the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_open: Option<usize>,
    /// `idle_connections - idle_open`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_failed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_first_error: Option<String>,
}

impl Report {
    pub(crate) fn build(
        cfg: &super::Config,
        rec: Recorder,
        idle: Option<super::IdleOutcome>,
    ) -> Report {
        let duration_s = cfg.duration.as_secs_f64();
        let (mode, rate_target, connections) = match cfg.load {
            super::Load::Open { rate } => ("open", Some(rate), cfg.connections),
            super::Load::Closed { concurrency } => ("closed", None, concurrency),
        };
        let errors = rec.status_errors + rec.io_errors + rec.timeouts;
        Report {
            label: cfg.label.clone(),
            mode,
            rate_target,
            connections,
            duration_s,
            warmup_s: cfg.warmup.as_secs_f64(),
            requests: rec.ok,
            errors,
            status_errors: rec.status_errors,
            io_errors: rec.io_errors,
            timeouts: rec.timeouts,
            responses_total: rec.responses,
            rps: ((rec.ok as f64 / duration_s) * 10.0).round() / 10.0,
            latency_us: Summary::of(&rec.latency),
            ttfb_us: cfg.stream.then(|| Summary::of(&rec.ttfb)),
            event_gap_us: cfg.stream.then(|| Summary::of(&rec.gap)),
            send_lag_us: rate_target.map(|_| Summary::of(&rec.lag)),
            first_error: rec.first_error,
            idle_connections: idle.as_ref().map(|i| i.requested),
            idle_opened: idle.as_ref().map(|i| i.opened),
            idle_open: idle.as_ref().map(|i| i.open),
            idle_failed: idle.as_ref().map(|i| i.failed),
            idle_first_error: idle.and_then(|i| i.first_error),
        }
    }

    /// One line of JSON.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("report serializes")
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let load = match self.rate_target {
            Some(r) => format!(
                "open loop at {r} req/s over {} connections",
                self.connections
            ),
            None => format!("closed loop, {} connections", self.connections),
        };
        let mut s = format!(
            "{}: {load}, {} s (+{} s warm-up)\n\
             requests {} ({:.1}/s), errors {} (status {}, io {}, timeout {})\n",
            self.label,
            self.duration_s,
            self.warmup_s,
            self.requests,
            self.rps,
            self.errors,
            self.status_errors,
            self.io_errors,
            self.timeouts,
        );
        if let Some(e) = &self.first_error {
            s += &format!("first error: {e}\n");
        }
        if let (Some(n), Some(opened), Some(open), Some(failed)) = (
            self.idle_connections,
            self.idle_opened,
            self.idle_open,
            self.idle_failed,
        ) {
            s += &format!(
                "idle connections {n}: opened {opened}, still open after the run {open}, \
                 failed {failed}\n"
            );
            if let Some(e) = &self.idle_first_error {
                s += &format!("first idle error: {e}\n");
            }
        }
        s += &format!(
            "{:<12}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
            "µs", "p50", "p90", "p99", "p99.9", "max", "mean"
        );
        let mut row = |name: &str, x: &Summary| {
            s += &format!(
                "{name:<12}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10.1}\n",
                x.p50, x.p90, x.p99, x.p999, x.max, x.mean
            );
        };
        row("latency", &self.latency_us);
        if let Some(t) = &self.ttfb_us {
            row("ttfb", t);
        }
        if let Some(g) = &self.event_gap_us {
            row("event gap", g);
        }
        if let Some(l) = &self.send_lag_us {
            row("send lag", l);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_the_measured_period() {
        let mut r = Recorder::new();
        let t = Instant::now();
        let ms = Duration::from_millis;
        r.ok(false, t, None, t + ms(50), &[]);
        r.ok(true, t, Some(t + ms(1)), t + ms(2), &[ms(3), ms(4)]);
        r.fail(true, FailKind::Status, true, &|| "status 500".into());
        r.fail(false, FailKind::Io, false, &|| "reset".into());
        let mut other = Recorder::new();
        other.fail(true, FailKind::Timeout, false, &|| "timeout".into());
        r.merge(other);
        assert_eq!(
            (r.ok, r.status_errors, r.io_errors, r.timeouts),
            (1, 1, 0, 1)
        );
        assert_eq!(r.responses, 3);
        assert_eq!(r.first_error.as_deref(), Some("status 500"));
        assert_eq!(r.latency.len(), 1);
        assert_eq!(r.latency.max(), 2000);
        assert_eq!(r.gap.len(), 2);
        assert_eq!(r.ttfb.len(), 1);
    }

    #[test]
    fn idle_fields_appear_only_with_idle_connections() {
        let d = Duration::from_secs(1);
        let cfg = crate::load::Config::new(
            "http://127.0.0.1:1/",
            crate::load::Load::Open { rate: 10.0 },
            d,
        )
        .unwrap();
        let plain = Report::build(&cfg, Recorder::new(), None);
        let j: serde_json::Value = serde_json::from_str(&plain.json()).unwrap();
        assert!(j.get("idle_open").is_none() && j.get("idle_connections").is_none());
        assert!(!plain.table().contains("idle"));
        let outcome = crate::load::IdleOutcome {
            requested: 10,
            opened: 9,
            open: 8,
            failed: 2,
            first_error: Some("opening: connect: refused".into()),
        };
        let held = Report::build(&cfg, Recorder::new(), Some(outcome));
        let j: serde_json::Value = serde_json::from_str(&held.json()).unwrap();
        assert_eq!(
            (
                &j["idle_connections"],
                &j["idle_opened"],
                &j["idle_open"],
                &j["idle_failed"]
            ),
            (&10.into(), &9.into(), &8.into(), &2.into())
        );
        assert_eq!(j["idle_first_error"], "opening: connect: refused");
        let t = held.table();
        assert!(t.contains("idle connections 10: opened 9, still open after the run 8, failed 2"));
    }
}
