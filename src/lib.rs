//! shardgate: a shard-per-core LLM gateway on monoio and io_uring.
//!
//! See `ARCHITECTURE.md` for the shape: shards that share nothing on the request path, a
//! control side that owns config, signals and background writers, and one pipeline function per
//! ingress protocol (`pipeline`).

pub mod admin;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod control;
pub mod credentials;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod http;
pub mod json;
pub mod limits;
pub mod logger;
pub mod observe;
pub mod pipeline;
pub mod providers;
pub mod routing;
pub mod runtime;
pub mod store;
pub mod sys;
pub mod upstream;
