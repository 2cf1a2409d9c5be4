//! A shard's generation: one validated config (shared by every shard) with the state this
//! shard built from it: the router (breakers, latency estimates, in-flight counts) and the
//! upstream client (pools by origin). A request takes the current generation once, at its
//! start, and keeps it to its end, so a reload can never hand it a mix of two configs.
//!
//! Install is two-phase: on `Prepare` every shard builds its next generation from the one it
//! serves, carrying over state by stable name; on `Commit` each swaps it in. Control commits
//! only once every shard has prepared.

use std::cell::RefCell;
use std::sync::Arc;

use crate::config::Snapshot;
use crate::routing::Router;
use crate::upstream;

/// TLS client configs by origin index of one config (built by control, off the shards).
pub type Tls = Arc<[Option<Arc<rustls::ClientConfig>>]>;

pub struct Generation {
    /// Counts installs from 1 (the config the process started with).
    pub id: u64,
    pub config: Arc<Snapshot>,
    pub router: RefCell<Router>,
    pub upstream: upstream::Client,
}

impl Generation {
    pub fn first(config: Arc<Snapshot>, tls: &Tls) -> Generation {
        Generation {
            id: 1,
            router: RefCell::new(Router::new(&config)),
            upstream: upstream::Client::new(&config, tls),
            config,
        }
    }

    /// The generation after `self` for `config`: routing state carried over by alias and
    /// target name, idle connections by origin.
    pub fn next(&self, id: u64, config: Arc<Snapshot>, tls: &Tls) -> Generation {
        let router = self
            .router
            .borrow()
            .carried(&self.config.models, &config.models);
        Generation {
            id,
            router: RefCell::new(router),
            upstream: self.upstream.carried(&self.config, &config, tls),
            config,
        }
    }
}
