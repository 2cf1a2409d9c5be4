//! `shardgate keys ...`, `shardgate teams ...` and `shardgate spend ...`: a command line over
//! the gateway's admin API (LiteLLM's key, team and spend shapes). One invocation is one HTTP
//! request:
//! parse the arguments (`args`, from the `command` table), build the request (`request`),
//! send it (`client`), print the answer (`output`).
//!
//! Exit status: 0 on success, 1 when the API answered an error or could not be reached (the
//! reason on stderr), 2 on a usage error (with the usage of the level it concerns). It reads
//! the environment only in [`run`]; everything below takes it as [`Env`], so tests run whole
//! invocations against a mock API without touching the process environment.

mod args;
pub(crate) mod client;
mod command;
mod output;
mod request;
mod spend;
mod table;
mod timestamp;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::process::ExitCode;

use serde_json::Value;

use args::{Topic, Usage};
use client::Endpoint;

pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:9090";

/// What an invocation takes from the environment.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// `SHARDGATE_ADMIN_URL`
    pub admin_url: Option<String>,
    /// `SHARDGATE_MASTER_KEY`
    pub master_key: Option<String>,
}

impl Env {
    fn from_process() -> Env {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Env {
            admin_url: var("SHARDGATE_ADMIN_URL"),
            master_key: var("SHARDGATE_MASTER_KEY"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// The API answered an error, or could not be reached.
    Failed,
    Usage,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(match s {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Usage => 2,
        })
    }
}

/// Runs `shardgate keys|teams|spend ...`; `args` starts with the noun.
pub fn run(args: &[String]) -> ExitCode {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    execute(
        args,
        &Env::from_process(),
        timestamp::now(),
        &mut out,
        &mut err,
    )
    .into()
}

/// One invocation, printing to `out` and `err`; `now` is Unix seconds (for expired keys).
pub fn execute(
    args: &[String],
    env: &Env,
    now: i64,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Status {
    let inv = match args::parse(args) {
        Ok(inv) => inv,
        Err(usage) => return show_usage(usage, out, err),
    };
    let topic = Topic::Action(inv.action);
    let url = inv
        .common
        .admin_url
        .as_ref()
        .or(env.admin_url.as_ref())
        .map_or(DEFAULT_ADMIN_URL, String::as_str);
    let endpoint = match Endpoint::parse(url) {
        Ok(e) => e,
        Err(why) => return show_usage(Usage::Problem(topic, why), out, err),
    };
    let bearer = inv.common.master_key.as_ref().or(env.master_key.as_ref());
    if bearer.is_some_and(|k| k.is_empty() || k.chars().any(char::is_control)) {
        let why = "the master key is empty or holds a control character".to_string();
        return show_usage(Usage::Problem(topic, why), out, err);
    }
    let request = request::build(&inv);
    let response = match client::send(&endpoint, &request, bearer.map(String::as_str)) {
        Ok(r) => r,
        Err(failure) => {
            let _ = writeln!(err, "shardgate: {failure}");
            return Status::Failed;
        }
    };
    if !(200..300).contains(&response.status) {
        let _ = writeln!(
            err,
            "shardgate: {}",
            output::error_line(response.status, &response.body)
        );
        return Status::Failed;
    }
    if inv.csv() {
        return print(out, err, &response.body);
    }
    let body: Value = if response.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&response.body) {
            Ok(v) => v,
            Err(e) => {
                let _ = writeln!(
                    err,
                    "shardgate: {}: the answer is not JSON ({e})",
                    response.status
                );
                return Status::Failed;
            }
        }
    };
    let text = if inv.common.json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        )
    } else {
        output::render(&inv, &body, now)
    };
    print(out, err, text.as_bytes())
}

fn print(out: &mut dyn Write, err: &mut dyn Write, text: &[u8]) -> Status {
    match out.write_all(text).and_then(|()| out.flush()) {
        Ok(()) => Status::Ok,
        // The request was made; a closed stdout (`| head`) is not worth a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Status::Ok,
        Err(e) => {
            let _ = writeln!(err, "shardgate: writing the answer: {e}");
            Status::Failed
        }
    }
}

fn show_usage(usage: Usage, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    match usage {
        Usage::Help(topic) => {
            let _ = writeln!(out, "{}", topic.usage());
            Status::Ok
        }
        Usage::Problem(topic, why) => {
            let _ = writeln!(err, "shardgate: {why}\n\n{}", topic.usage());
            Status::Usage
        }
    }
}
