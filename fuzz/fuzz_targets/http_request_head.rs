//! `shardgate::fuzzing::http_request_head`; the invariants live there, so the corpus test checks the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardgate::fuzzing::http_request_head(data));
