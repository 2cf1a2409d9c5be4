//! Load-testing tools for shardgate: a fast mock LLM upstream (library and `mock-upstream`
//! binary) that speaks the OpenAI and Anthropic HTTP APIs, and an open/closed-loop HTTP/1.1
//! load generator (library and `loadgen` binary).

pub mod load;
pub mod mock;
