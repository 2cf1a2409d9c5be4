//! `shardgate::fuzzing::translate_response`; the invariants live there, so the corpus test checks the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardgate::fuzzing::translate_response(data));
