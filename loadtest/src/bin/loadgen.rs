//! `loadgen`: an open-loop (`--rate`) or closed-loop (`--concurrency`) HTTP/1.1 load generator.
//!
//! Prints a table on stdout, or with `--json` one JSON object on stdout and the table on stderr.
//! Exits with status 1 if the run could not be made (bad target, no runtime), 0 otherwise, even
//! when requests failed: the errors are in the report.

use std::io::Write;
use std::process::ExitCode;

use loadtest::load::{USAGE, parse_args, run};

fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("loadgen: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let driver = if monoio::utils::detect_uring() {
        "io_uring"
    } else {
        "epoll"
    };
    eprintln!("loadgen: {} ({driver} driver)", cli.config.label);
    let report = match run(&cli.config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if cli.json {
        eprint!("{}", report.table());
        let _ = writeln!(out, "{}", report.json());
    } else {
        let _ = write!(out, "{}", report.table());
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
