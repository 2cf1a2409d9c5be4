//! What the gateway reports: per-shard metrics merged on scrape, and the access log written by a
//! background thread from lock-free per-shard queues.

pub mod log;
pub mod metrics;
pub mod time;
