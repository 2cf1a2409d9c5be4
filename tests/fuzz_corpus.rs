//! The fuzz corpus as a regression test on stable: every file under `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` goes through its `shardgate::fuzzing` target, so what the
//! fuzzers learned (and every crash they found, once fixed) is checked by `cargo test`.
//!
//! A target whose corpus is missing or empty fails: a renamed directory must not make this
//! pass by checking nothing. Every file is run even after one fails, and all failures are named.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use shardgate::fuzzing;

/// The files of `dir`, sorted; `.gitkeep` and other dot-files are not inputs.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = inputs(&fuzz.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is missing or empty: the target would be checked against nothing"
    );
    let regressions = inputs(&fuzz.join("regressions").join(target));
    let mut failed = Vec::new();
    for file in corpus.iter().chain(&regressions) {
        let data = match std::fs::read(file) {
            Ok(d) => d,
            // A fuzzer running beside the tests replaces corpus files as it reduces them.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", file.display()),
        };
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed (panic messages above):\n  {}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n  ")
    );
}

/// One test per fuzz target, each replaying that target's corpus and regressions.
macro_rules! replayed {
    ($($target:ident),* $(,)?) => {
        $(#[test]
        fn $target() {
            replay(stringify!($target), fuzzing::$target);
        })*
    };
}

replayed!(
    http_request_head,
    chunked_request,
    upstream_response_head,
    sse_splitter,
    request_decode,
    translate_request,
    translate_response,
    translate_stream,
);
