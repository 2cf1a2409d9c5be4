//! Rate limits, concurrency limits and budgets, sharded with leases.
//!
//! A limit instance is a [`Slot`] in a [`Pool`] (in process: the slot's own atomic word). A
//! shard does not ask the pool per request: it holds a lease, a slice of the slot's current
//! window, and charges requests against it with plain arithmetic ([`Leases`]). When a lease
//! runs short the shard takes the next slice, sized to its recent rate and shrinking as the
//! window nears exhaustion. A request is admitted only when every limit that applies admits
//! it; the check is all or nothing, so a refusal leaves no charge anywhere.
//!
//! Bounds (README, "Limits and budgets"): the pool never grants more than a window's
//! capacity, and a shard admits only against what it was granted, so request counts and
//! concurrency never exceed their limit. Tokens and spend are reserved up front (prompt
//! estimate + output bound; worst-case cost) and settled to the real figures, so they exceed a
//! limit only by what in-flight requests used beyond their reservation. What other shards hold
//! unused can refuse a request early, by at most `(shards − 1) × lease`.
//!
//! In cluster mode ([`Replica`]) the ceiling of a slot's window is what this replica holds of
//! it in the shared pool; the replicas' shares never add up to more than the capacity.

mod lease;
mod pool;
mod replica;
mod users;
mod window;

pub use lease::{Actual, Charges, Demand, Leases, MAX_CHARGES, Refusal, State};
pub use pool::{InProcess, Pool, Slot};
pub use replica::Replica;
pub use users::Users;
pub use window::Window;

use std::sync::Arc;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Meter {
    Requests,
    /// Prompt tokens, completion tokens, or both.
    Tokens(Side),
    /// Requests in flight.
    Concurrent,
    /// Cost, in micro-dollars.
    Spend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Input,
    Output,
    Total,
}

/// Whose limit it is (for messages and headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Key,
    Team,
    Alias,
    KeyAlias,
    User,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Team => "team",
            Scope::Alias => "model",
            Scope::KeyAlias => "key's model",
            Scope::User => "end user",
        }
    }
}

/// One limit that applies to a request.
#[derive(Debug, Clone)]
pub struct Limit {
    pub slot: Arc<Slot>,
    pub meter: Meter,
    pub scope: Scope,
    /// Who, for messages: the key alias or id, team id, alias.
    pub who: Box<str>,
}

impl Limit {
    /// "600 requests per minute", "2000000 tokens per day", "20 concurrent requests",
    /// "a budget of $50.00 per 30 days".
    pub fn describe(&self) -> String {
        let cap = self.slot.capacity();
        let per = match self.slot.window {
            Window::Secs(1) => " per second".to_owned(),
            Window::Secs(60) => " per minute".to_owned(),
            Window::Secs(3600) => " per hour".to_owned(),
            Window::Secs(s) => format!(" per {s} s"),
            Window::Days(1, _) => " per day".to_owned(),
            Window::Days(7, _) => " per week".to_owned(),
            Window::Days(d, _) => format!(" per {d} days"),
            Window::Month(_) => " per month".to_owned(),
            Window::Forever => String::new(),
        };
        match self.meter {
            Meter::Requests => format!("{cap} requests{per}"),
            Meter::Tokens(Side::Total) => format!("{cap} tokens{per}"),
            Meter::Tokens(Side::Input) => format!("{cap} input tokens{per}"),
            Meter::Tokens(Side::Output) => format!("{cap} output tokens{per}"),
            Meter::Concurrent => format!("{cap} concurrent requests"),
            Meter::Spend => format!("a budget of ${:.2}{per}", cap as f64 / 1e6),
        }
    }
}

/// Dollars to the micro-dollars spend limits count in (rounded up: a reservation never
/// under-counts).
pub fn micros(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e6).ceil() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
