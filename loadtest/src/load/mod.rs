//! An open- and closed-loop HTTP/1.1 load generator on monoio (the `loadgen` binary).
//!
//! Open loop (`Load::Open`): request `i` is scheduled at `t0 + i/R` and its latency is measured
//! from that scheduled time, so a slow server cannot slow the generator down and hide its own
//! queueing (no coordinated omission). Requests go round-robin over keep-alive connections; a
//! request whose connection is still busy waits for it, and the wait counts. Issuing stops at
//! the end of the run; outstanding responses get `grace` (5 s) and are then counted as timeouts.
//!
//! Closed loop (`Load::Closed`): each connection sends its next request as soon as the previous
//! response is complete. Its connections' first requests may be spread over a `ramp`
//! (connection `c` of `C` starts at `t0 + ramp * c / C`), so that long requests such as streams
//! do not all start, and then tick, in step.
//!
//! With `stream`, responses are read as SSE: time to first body byte and the gaps between events
//! are recorded too. Requests started (or scheduled) during the warm-up are not measured.
//!
//! With `idle`, that many more keep-alive connections are opened (one small request each) before
//! the load starts and held idle through it on their own thread; after the load each is asked
//! once more on the same socket, and the report says how many still answered (`idle.rs`).

mod args;
mod conn;
pub mod http;
mod idle;
mod report;
pub mod schedule;
pub mod sse;
pub mod sys;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use args::{Cli, USAGE, parse_args, parse_url};
pub use idle::IdleOutcome;
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
    /// Closed loop: the connections' first requests are spread over this long.
    pub ramp: Duration,
    /// Keep-alive connections held idle beside the load (0: none).
    pub idle: usize,
    /// What an idle connection asks for (GET, with `headers`), when opened and when checked.
    pub idle_path: String,
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
            ramp: Duration::ZERO,
            idle: 0,
            idle_path: "/v1/models".to_string(),
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

    /// The request an idle connection sends.
    pub fn idle_request_bytes(&self) -> Vec<u8> {
        http::build_request("GET", &self.host, &self.idle_path, &self.headers, &[])
    }

    /// Connections of the load itself (idle ones not counted).
    fn load_connections(&self) -> usize {
        match self.load {
            Load::Open { .. } => self.connections,
            Load::Closed { concurrency } => concurrency,
        }
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
        if !self.ramp.is_zero() && matches!(self.load, Load::Open { .. }) {
            return Err("a ramp is for a closed loop (an open loop is paced by its rate)".into());
        }
        if self.idle > 0 && !self.idle_path.starts_with('/') {
            return Err(format!("idle path {:?} must start with /", self.idle_path));
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
    let total_conns = cfg.load_connections();
    check_fd_limit(total_conns + cfg.idle)?;
    let first_cpu = cfg.cpus.as_ref().and_then(|c| c.first().copied());
    let held = match cfg.idle {
        0 => None,
        count => Some(idle::Holder::open(idle::Spec {
            addr: cfg.addr,
            count,
            request: Arc::new(cfg.idle_request_bytes()),
            grace: cfg.grace,
            cpu: first_cpu,
        })?),
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
    let idle = held.map(idle::Holder::check).transpose()?;
    Ok(Report::build(&cfg, total, idle))
}

/// Files the process needs beside its sockets (stdio, runtimes, timers, listeners of a test).
const FD_HEADROOM: usize = 64;

/// Raises the open-file limit so `sockets` connections fit, or says why they cannot.
fn check_fd_limit(sockets: usize) -> std::io::Result<()> {
    let need = (sockets + FD_HEADROOM) as u64;
    let limit = sys::raise_fd_limit(need)?;
    if limit < need {
        return Err(std::io::Error::other(format!(
            "{sockets} connections need about {need} open files but the limit is {limit} \
             (raise the hard limit, e.g. `ulimit -Hn {need}` as root)"
        )));
    }
    Ok(())
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
        let mut c = Config::new(url, Load::Open { rate: 1.0 }, d).unwrap();
        c.ramp = d;
        assert!(c.validate().is_err());
        let mut c = Config::new(url, Load::Closed { concurrency: 1 }, d).unwrap();
        c.ramp = d;
        assert!(c.validate().is_ok());
        c.idle = 1;
        c.idle_path = "v1/models".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn idle_connections_send_a_small_get_with_the_headers() {
        let d = Duration::from_secs(1);
        let mut c = Config::new(
            "http://127.0.0.1:9/v1/chat",
            Load::Closed { concurrency: 1 },
            d,
        )
        .unwrap();
        c.method = "POST".into();
        c.body = b"{}".to_vec();
        c.headers = vec![("authorization".into(), "Bearer k".into())];
        let req = String::from_utf8(c.idle_request_bytes()).unwrap();
        assert_eq!(
            req,
            "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:9\r\nauthorization: Bearer k\r\n\r\n"
        );
    }

    #[test]
    fn an_impossible_number_of_sockets_is_refused_up_front() {
        let e = check_fd_limit(usize::MAX / 2).unwrap_err();
        assert!(e.to_string().contains("open files"), "{e}");
        assert!(check_fd_limit(10).is_ok());
    }
}
