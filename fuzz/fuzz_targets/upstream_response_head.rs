//! `shardgate::fuzzing::upstream_response_head`; the invariants live there, so the corpus test checks the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardgate::fuzzing::upstream_response_head(data));
