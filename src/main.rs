//! The `shardgate` command: `serve`, `check`, and the `keys` and `teams` admin CLI.

use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage:
  shardgate serve [--config FILE] [--shards N]   run the gateway (embedded default config without --config)
  shardgate check --config FILE                  validate a config; print every problem; exit 1 on error
  shardgate keys ACTION [ARGS]                   manage virtual keys over the admin API (keys --help)
  shardgate teams ACTION [ARGS]                  manage teams over the admin API (teams --help)
  shardgate spend ACTION [ARGS]                  spend logs and reports over the admin API (spend --help)";

fn main() -> ExitCode {
    shardgate::logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config: Option<PathBuf> = None;
    let mut shards: Option<usize> = None;
    // `keys` and `teams` parse their own arguments (`shardgate::cli`).
    let own_args = matches!(
        args.first().map(String::as_str),
        Some("keys" | "teams" | "spend")
    );
    let mut it = args.iter().skip(1);
    while !own_args && let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => config = it.next().map(PathBuf::from),
            "--shards" => match it.next().and_then(|s| s.parse().ok()).filter(|n| *n >= 1) {
                Some(n) => shards = Some(n),
                None => return usage("--shards takes a positive integer"),
            },
            "-h" | "--help" => return usage(""),
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    match args.first().map(String::as_str) {
        Some("serve") => serve(config, shards),
        Some("check") => match config {
            Some(path) => check(&path),
            None => usage("check needs --config FILE"),
        },
        Some("keys" | "teams" | "spend") => shardgate::cli::run(&args),
        Some("-h" | "--help") => usage(""),
        _ => usage("expected a command"),
    }
}

fn usage(problem: &str) -> ExitCode {
    if problem.is_empty() {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    eprintln!("shardgate: {problem}\n{USAGE}");
    ExitCode::from(2)
}

fn check(path: &std::path::Path) -> ExitCode {
    match shardgate::config::load(Some(path)) {
        Ok(snapshot) => match shardgate::upstream::tls::configs(&snapshot) {
            Ok(_) => {
                println!(
                    "{}: ok ({} providers, {} models, {} keys)",
                    path.display(),
                    snapshot.providers.len(),
                    snapshot.models.len(),
                    snapshot.keys.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Err(problems) => {
            eprint!("{problems}");
            ExitCode::from(1)
        }
    }
}

fn serve(config: Option<PathBuf>, shards: Option<usize>) -> ExitCode {
    let start = shardgate::control::Start { config, shards };
    match shardgate::control::serve(start) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}
