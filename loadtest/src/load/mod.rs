//! An open- and closed-loop HTTP/1.1 load generator on monoio (the `loadgen` binary).
//!
//! Open loop (`Load::Open`): request `i` is scheduled at `t0 + i/R` and its latency is measured
//! from that scheduled time, so a slow server cannot slow the generator down and hide its own
//! queueing (no coordinated omission). Requests go round-robin over keep-alive connections; a
//! request whose connection is still busy waits for it, and the wait counts. Issuing stops at
//! the end of the run; outstanding responses get `grace` (5 s) and are then counted as timeouts.
//!
//! Closed loop (`Load::Closed`): each connection sends its next request as soon as the previous
//! response is complete.
//!
//! With `stream`, responses are read as SSE: time to first body byte and the gaps between events
//! are recorded too. Requests started (or scheduled) during the warm-up are not measured.

mod args;
mod conn;
pub mod http;
mod report;
pub mod schedule;
pub mod sse;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use args::{Cli, USAGE, parse_args, parse_url};
pub use report::{Report, Summary};

use schedule::Schedule;

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Requests per second, whatever the responses do.
    Open { rate: f64 },
    /// This many connections, each sending back to back.
    Closed { concurrency: usize },
}

/// One run.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    pub path: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub load: Load,
    /// Connections of an open-loop run (a closed loop uses its concurrency).
    pub connections: usize,
    /// The measured period, after the warm-up.
    pub duration: Duration,
    pub warmup: Duration,
    /// How long outstanding responses are waited for after the end.
    pub grace: Duration,
    pub stream: bool,
    pub label: String,
    pub threads: usize,
    /// CPUs to pin the load threads to (thread `i` on `cpus[i % len]`).
    pub cpus: Option<Vec<usize>>,
}

impl Config {
    /// A GET of `url` with defaults: 64 connections, 1 s warm-up, 5 s grace, one thread.
    pub fn new(url: &str, load: Load, duration: Duration) -> Result<Config, String> {
        let (addr, host, path) = parse_url(url)?;
        Ok(Config {
            addr,
            label: host.clone(),
            host,
            path,
            method: "GET".to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            load,
            connections: 64,
            duration,
            warmup: Duration::from_secs(1),
            grace: Duration::from_secs(5),
            stream: false,
            threads: 1,
            cpus: None,
        })
    }

    /// The request bytes every connection sends.
    pub fn request_bytes(&self) -> Vec<u8> {
        http::build_request(
            &self.method,
            &self.host,
            &self.path,
            &self.headers,
            &self.body,
        )
    }

    fn validate(&self) -> Result<(), String> {
        match self.load {
            Load::Open { rate } if !(rate > 0.0 && rate.is_finite()) => {
                return Err(format!("rate must be positive, not {rate}"));
            }
            Load::Closed { concurrency: 0 } => return Err("concurrency must be >= 1".into()),
            _ => {}
        }
        if self.connections == 0 {
            return Err("connections must be >= 1".into());
        }
        if self.duration.is_zero() {
            return Err("duration must be positive".into());
        }
        Ok(())
    }
}

/// Splits `n` as evenly as possible over `parts`.
fn share(n: usize, parts: usize, k: usize) -> usize {
    n / parts + usize::from(k < n % parts)
}

/// Runs the load and returns its report. Takes about warm-up + duration (+ up to `grace` if
/// responses are outstanding).
pub fn run(cfg: &Config) -> std::io::Result<Report> {
    cfg.validate().map_err(std::io::Error::other)?;
    let cfg = Arc::new(cfg.clone());
    let total_conns = match cfg.load {
        Load::Open { .. } => cfg.connections,
        Load::Closed { concurrency } => concurrency,
    };
    let threads = cfg.threads.clamp(1, total_conns);
    let request = Arc::new(cfg.request_bytes());
    // Leave time for the threads to start and connect before the first request is due.
    let t0 = Instant::now() + Duration::from_millis(100);
    let run_len = cfg.warmup + cfg.duration;
    let mut handles = Vec::with_capacity(threads);
    for k in 0..threads {
        let cpu = cfg
            .cpus
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| c[k % c.len()]);
        let open = match cfg.load {
            Load::Open { rate } => {
                let sched = Schedule::for_thread(rate, k, threads);
                Some((sched, sched.count_before(run_len)))
            }
            Load::Closed { .. } => None,
        };
        let plan = worker::Plan {
            cfg: cfg.clone(),
            request: request.clone(),
            conns: share(total_conns, threads, k),
            open,
            t0,
        };
        let h = std::thread::Builder::new()
            .name(format!("loadgen-{k}"))
            .spawn(move || load_thread(plan, cpu))?;
        handles.push(h);
    }
    let mut total = report::Recorder::new();
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(rec)) => total.merge(rec),
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some(std::io::Error::other("load thread panicked")),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Report::build(&cfg, total))
}

fn pin(cpu: Option<usize>) {
    if let Some(id) = cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// One load thread: its own runtime, pinned if asked.
fn load_thread(plan: worker::Plan, cpu: Option<usize>) -> std::io::Result<report::Recorder> {
    pin(cpu);
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    Ok(rt.block_on(worker::run(plan)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_shared_out_evenly() {
        let parts: Vec<usize> = (0..3).map(|k| share(64, 3, k)).collect();
        assert_eq!(parts, vec![22, 21, 21]);
        assert_eq!((0..4).map(|k| share(2, 4, k)).sum::<usize>(), 2);
    }

    #[test]
    fn bad_configs_are_refused() {
        let d = Duration::from_secs(1);
        let url = "http://127.0.0.1:1/";
        let c = Config::new(url, Load::Open { rate: 0.0 }, d).unwrap();
        assert!(c.validate().is_err());
        let c = Config::new(url, Load::Closed { concurrency: 0 }, d).unwrap();
        assert!(c.validate().is_err());
        let c = Config::new(url, Load::Closed { concurrency: 1 }, Duration::ZERO).unwrap();
        assert!(c.validate().is_err());
    }
}
