//! `shardgate::fuzzing::translate_stream`; the invariants live there, so the corpus test checks the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardgate::fuzzing::translate_stream(data));
