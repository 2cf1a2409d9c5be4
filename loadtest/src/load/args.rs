//! Command line of `loadgen` and the parsing of `http://` URLs.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::{Config, Load};

pub const USAGE: &str = "\
usage: loadgen --url http://127.0.0.1:8080/v1/chat/completions
               (--rate R | --concurrency C) --duration SECS
               [--body-file F | --body STR] [--header 'k: v']... [--method M]
               [--connections C] [--warmup SECS] [--grace SECS] [--stream]
               [--label NAME] [--json] [--threads N] [--cpus 0,1] [--ramp SECS]
               [--idle N [--idle-path /v1/models]]

  --rate R          open loop: R requests/s, latency measured from each request's scheduled time
  --concurrency C   closed loop: C connections sending back to back
  --connections C   keep-alive connections of an open-loop run (default 64)
  --duration SECS   measured period (default 10), after --warmup SECS (default 1)
  --grace SECS      wait for outstanding responses after the end (default 5), then time out
  --stream          read SSE responses: also time to first byte and gaps between events
  --json            print one JSON object on stdout (the table goes to stderr)
  --threads N       load threads, each with its own runtime (default 1)
  --cpus LIST       pin load thread i to CPU LIST[i % len]
  --ramp SECS       closed loop: spread the connections' first requests over SECS
  --idle N          also hold N idle keep-alive connections through the run: each sends one
                    GET of --idle-path (with the --header lines) before the load and one more
                    on the same socket after it; the report counts those still open
The open-file limit is raised to the hard limit so that many connections fit.
A body makes the method POST (default GET) with Content-Type: application/json unless a
header sets one.";

/// A parsed command line.
#[derive(Debug, Clone)]
pub struct Cli {
    pub config: Config,
    pub json: bool,
}

/// Splits `http://host[:port][/path]` into a socket address (resolved now, before any
/// runtime starts), the `Host` header and the path with its query.
pub fn parse_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: bad host"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url}: bad port {p:?}"))?,
        ),
        _ => (authority, 80),
    };
    let host_ip = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (host_ip, port)
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address for {host}"))?;
    Ok((addr, authority.to_string(), path))
}

fn secs(flag: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{flag} {v}: not a number of seconds"))
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("{flag} {v}: not a valid number"))
}

/// Parses the arguments (without the program name). `Err("")` asks for the usage text.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, String> {
    let mut args = args.into_iter();
    let mut url = None;
    let mut body: Option<Vec<u8>> = None;
    let mut headers = Vec::new();
    let mut method = None;
    let mut load = None;
    let mut connections = None;
    let mut duration = Duration::from_secs(10);
    let mut warmup = None;
    let mut grace = None;
    let (mut stream, mut json) = (false, false);
    let mut label = None;
    let mut threads = 1;
    let mut cpus = None;
    let mut ramp = None;
    let mut idle = 0;
    let mut idle_path = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--stream" => {
                stream = true;
                continue;
            }
            "--json" => {
                json = true;
                continue;
            }
            _ => {}
        }
        let v = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => url = Some(v),
            "--body" => body = Some(v.into_bytes()),
            "--body-file" => {
                body = Some(std::fs::read(&v).map_err(|e| format!("--body-file {v}: {e}"))?);
            }
            "--header" | "-H" => {
                let (k, val) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--header {v:?}: expected 'name: value'"))?;
                headers.push((k.trim().to_string(), val.trim().to_string()));
            }
            "--method" => method = Some(v.to_ascii_uppercase()),
            "--rate" | "--concurrency" if load.is_some() => {
                return Err("give one of --rate and --concurrency".into());
            }
            "--rate" => {
                load = Some(Load::Open {
                    rate: num(&flag, &v)?,
                })
            }
            "--concurrency" => {
                load = Some(Load::Closed {
                    concurrency: num(&flag, &v)?,
                })
            }
            "--connections" => connections = Some(num(&flag, &v)?),
            "--duration" => duration = secs(&flag, &v)?,
            "--warmup" => warmup = Some(secs(&flag, &v)?),
            "--grace" => grace = Some(secs(&flag, &v)?),
            "--label" => label = Some(v),
            "--threads" => threads = num(&flag, &v)?,
            "--cpus" => {
                let list = v
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| num::<usize>(&flag, s.trim()))
                    .collect::<Result<Vec<_>, _>>()?;
                cpus = Some(list);
            }
            "--ramp" => ramp = Some(secs(&flag, &v)?),
            "--idle" => idle = num(&flag, &v)?,
            "--idle-path" => idle_path = Some(v),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let load = load.ok_or("give one of --rate R (open loop) or --concurrency C (closed loop)")?;
    let mut config = Config::new(&url, load, duration)?;
    if let Some(b) = body {
        config.method = "POST".into();
        config.body = b;
    }
    if let Some(m) = method {
        config.method = m;
    }
    config.headers = headers;
    if let Some(c) = connections {
        config.connections = c;
    }
    if let Some(w) = warmup {
        config.warmup = w;
    }
    if let Some(g) = grace {
        config.grace = g;
    }
    config.stream = stream;
    if let Some(l) = label {
        config.label = l;
    }
    config.threads = threads;
    config.cpus = cpus;
    if let Some(r) = ramp {
        config.ramp = r;
    }
    config.idle = idle;
    if let Some(p) = idle_path {
        if idle == 0 {
            return Err("--idle-path needs --idle N".into());
        }
        config.idle_path = p;
    }
    config.validate()?;
    Ok(Cli { config, json })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Cli, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn urls() {
        let (a, h, p) = parse_url("http://127.0.0.1:8080/v1/chat/completions").unwrap();
        assert_eq!(a, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (h.as_str(), p.as_str()),
            ("127.0.0.1:8080", "/v1/chat/completions")
        );
        let (a, h, p) = parse_url("http://127.0.0.1").unwrap();
        assert_eq!((a.port(), h.as_str(), p.as_str()), (80, "127.0.0.1", "/"));
        let (a, _, p) = parse_url("http://[::1]:9000?x=1").unwrap();
        assert_eq!((a, p.as_str()), ("[::1]:9000".parse().unwrap(), "/?x=1"));
        assert!(parse_url("https://127.0.0.1/").is_err());
        assert!(parse_url("http://127.0.0.1:x/").is_err());
    }

    #[test]
    fn open_loop_command_line() {
        let cli = parse(
            "--url http://127.0.0.1:1/v1/x --rate 2000 --duration 3 --connections 8 \
             --warmup=0.5 --body {} --header x-a:1 --stream --label gw --json",
        )
        .unwrap();
        let c = &cli.config;
        assert!(cli.json && c.stream);
        assert_eq!(c.load, Load::Open { rate: 2000.0 });
        assert_eq!((c.connections, c.label.as_str()), (8, "gw"));
        assert_eq!(c.duration, Duration::from_secs(3));
        assert_eq!(c.warmup, Duration::from_millis(500));
        assert_eq!((c.method.as_str(), c.body.as_slice()), ("POST", &b"{}"[..]));
        assert_eq!(c.headers, vec![("x-a".to_string(), "1".to_string())]);
    }

    #[test]
    fn closed_loop_and_errors() {
        let cli = parse("--url http://127.0.0.1:1/ --concurrency 4 --duration 1").unwrap();
        assert_eq!(cli.config.load, Load::Closed { concurrency: 4 });
        assert_eq!(cli.config.method, "GET");
        assert!(parse("--url http://127.0.0.1:1/ --rate 1 --concurrency 1").is_err());
        assert!(parse("--url http://127.0.0.1:1/ --duration 1").is_err());
        assert!(parse("--rate 1").is_err());
        assert!(parse("--url http://127.0.0.1:1/ --rate -5").is_err());
        assert!(parse("--url http://127.0.0.1:1/ --rate 5 --bogus 1").is_err());
        assert_eq!(parse("--help").unwrap_err(), "");
    }

    #[test]
    fn idle_connections_and_ramp() {
        let cli = parse(
            "--url http://127.0.0.1:1/v1/chat/completions --rate 2000 --idle 10000 \
             --header authorization:Bearer-k",
        )
        .unwrap();
        let c = &cli.config;
        assert_eq!((c.idle, c.idle_path.as_str()), (10_000, "/v1/models"));
        assert_eq!(c.ramp, Duration::ZERO);
        let cli = parse(
            "--url http://127.0.0.1:1/ --concurrency 2000 --stream --ramp 1.3 --idle=5 \
             --idle-path /health",
        )
        .unwrap();
        let c = &cli.config;
        assert_eq!(c.ramp, Duration::from_millis(1300));
        assert_eq!((c.idle, c.idle_path.as_str()), (5, "/health"));
        assert!(parse("--url http://127.0.0.1:1/ --rate 5 --ramp 1").is_err());
        assert!(parse("--url http://127.0.0.1:1/ --rate 5 --idle -1").is_err());
        assert!(parse("--url http://127.0.0.1:1/ --rate 5 --idle x").is_err());
        assert!(parse("--url http://127.0.0.1:1/ --rate 5 --idle-path /x").is_err());
        assert!(parse("--url http://127.0.0.1:1/ --rate 5 --idle 2 --idle-path x").is_err());
    }
}
