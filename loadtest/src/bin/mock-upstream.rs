//! `mock-upstream`: runs the mock LLM upstream until SIGTERM or SIGINT.
//!
//! Prints `listening on ADDR` on stdout once it accepts connections.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use loadtest::mock::{AwsKeys, DIRECTIVE_HELP, MockConfig, MockServer};

const USAGE: &str = "\
usage: mock-upstream [--listen 127.0.0.1:9001] [--threads N] [--cpus 1,2]
                     [--aws-access-key-id ID --aws-secret-access-key SECRET [--aws-session-token T]]

Endpoints: POST /v1/chat/completions, /v1/completions, /v1/responses, /v1/embeddings, /v1/messages;
/v2/chat, /v2/embed (Cohere); /v1beta/models/{m}:generateContent|streamGenerateContent|embedContent|
batchEmbedContents (Gemini, x-goog-api-key); /v1/projects/{p}/locations/{r}/publishers/google/models/
{m}:generateContent|streamGenerateContent|predict and .../publishers/anthropic/models/{m}:rawPredict|
streamRawPredict (Vertex AI, bearer token); /model/{id}/converse|converse-stream|invoke (Bedrock,
SigV4: verified with the --aws-* keys, else only required to be there); GET /v1/models;
GET /mock/stats; POST /mock/reset.
Directives (path prefix /mock/a=1,b=2/v1/..., header x-mock-NAME, query ?NAME=, body \"mock\":{..};
later sources win; a bare name means true):
";

fn parse_args() -> Result<MockConfig, String> {
    let mut cfg = MockConfig {
        listen: "127.0.0.1:9001".parse().expect("valid address"),
        ..MockConfig::default()
    };
    let (mut key_id, mut secret, mut token) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => {
                cfg.listen = value
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
            }
            "--threads" => {
                cfg.threads = value
                    .parse()
                    .map_err(|e| format!("--threads {value}: {e}"))?;
            }
            "--cpus" => {
                let cpus = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("--cpus {value}: {e}"))?;
                cfg.cpus = Some(cpus);
            }
            "--aws-access-key-id" => key_id = Some(value),
            "--aws-secret-access-key" => secret = Some(value),
            "--aws-session-token" => token = Some(value),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    cfg.aws = match (key_id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Some(AwsKeys {
            access_key_id,
            secret_access_key,
            session_token: token,
        }),
        (None, None) if token.is_none() => None,
        _ => {
            return Err(
                "--aws-access-key-id and --aws-secret-access-key go together (with an optional --aws-session-token)"
                    .into(),
            );
        }
    };
    Ok(cfg)
}

/// Blocks SIGINT and SIGTERM in this thread (and the threads it starts later), so they can be
/// taken with `sigwait`.
fn block_signals() -> libc::sigset_t {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("mock-upstream: {msg}");
            }
            eprint!("{USAGE}{DIRECTIVE_HELP}");
            return ExitCode::from(2);
        }
    };
    let set = block_signals();
    let server = match MockServer::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mock-upstream: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The same check FusionDriver makes (it honours MONOIO_FORCE_LEGACY_DRIVER).
    let driver = if monoio::utils::detect_uring() {
        "io_uring"
    } else {
        "epoll"
    };
    eprintln!("mock-upstream: {driver} driver");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", server.addr());
    let _ = out.flush();
    drop(out);
    let mut sig: libc::c_int = 0;
    unsafe { libc::sigwait(&set, &mut sig) };
    drop(server);
    ExitCode::SUCCESS
}
