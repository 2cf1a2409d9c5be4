//! Load-testing tools for shardgate: a fast mock LLM upstream (library and `mock-upstream`
//! binary) that speaks the OpenAI and Anthropic HTTP APIs.

pub mod mock;
