//! Reload: read and validate the config file off the shards, then install it on every shard
//! in two phases. A config with problems is refused whole, with every problem and its path
//! (the messages of `shardgate check`), and the current generation keeps serving.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Control, Start};
use crate::config::{self, Labels, Problems, Shards, Snapshot};
use crate::runtime::ShardMsg;

/// How long control waits for every shard to prepare before it aborts the install.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(5);

/// What an install did.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub generation: u64,
    pub aliases: usize,
    pub providers: usize,
    pub keys: usize,
    pub took: Duration,
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "generation {} installed in {} ms ({} aliases, {} providers, {} keys)",
            self.generation,
            self.took.as_millis(),
            self.aliases,
            self.providers,
            self.keys
        )
    }
}

impl Reloaded {
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"status":"reloaded","generation":{},"aliases":{},"providers":{},"keys":{},"took_ms":{:.3}}}"#,
            self.generation,
            self.aliases,
            self.providers,
            self.keys,
            self.took.as_secs_f64() * 1e3
        )
    }
}

/// The config as the process was started with it (file or embedded default, then overrides).
pub fn load(start: &Start) -> Result<Snapshot, Problems> {
    let mut snapshot = config::load(start.config.as_deref())?;
    if let Some(n) = start.shards {
        snapshot.server.shards = Shards::Count(n);
    }
    Ok(snapshot)
}

/// Settings a running process cannot change: each changed one is a problem.
fn restart_only(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let (o, n) = (&old.server, &new.server);
    let mut problems = Vec::new();
    let mut check = |path: &str, same: bool| {
        if !same {
            problems.push(format!(
                "{path}: cannot change while running (restart to apply it)"
            ));
        }
    };
    check("server.listen", o.listen == n.listen);
    check("server.admin_listen", o.admin_listen == n.admin_listen);
    check("server.shards", o.shards == n.shards);
    check("server.pin", o.pin == n.pin);
    check("server.cpus", o.cpus == n.cpus);
    check(
        "server.io_uring_entries",
        o.io_uring_entries == n.io_uring_entries,
    );
    check(
        "server.sqpoll_idle_ms",
        o.sqpoll_idle_ms == n.sqpoll_idle_ms,
    );
    check("server.access_log", o.access_log == n.access_log);
    check("store", old.store == new.store);
    check("cluster", old.cluster == new.cluster);
    problems
}

impl Control {
    /// Re-reads the config and installs it on every shard, or refuses it whole.
    pub(super) fn reload(&mut self) -> Result<Reloaded, Problems> {
        let t0 = Instant::now();
        let mut next = load(&self.start)?;
        let problems = restart_only(&self.current, &next);
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        next.labels = Labels::assign(&next, Some(&self.current.labels.names));
        next.alias_limits = super::alias_limits(&next, &mut self.slots);
        let tls: crate::runtime::generation::Tls = crate::upstream::tls::configs(&next)
            .map_err(|e| Problems(vec![e]))?
            .into();
        let next = Arc::new(next);
        let id = self.generation + 1;
        let (ack, acks) = flume::bounded(self.shards.len());
        let sent = self.broadcast(|| ShardMsg::Prepare {
            id,
            config: next.clone(),
            tls: tls.clone(),
            ack: ack.clone(),
        });
        let deadline = Instant::now() + PREPARE_TIMEOUT;
        let mut prepared = 0;
        while prepared < self.shards.len() {
            match acks.recv_deadline(deadline) {
                Ok(_) => prepared += 1,
                Err(_) => break,
            }
        }
        if sent < self.shards.len() || prepared < self.shards.len() {
            self.broadcast(|| ShardMsg::Abort(id));
            return Err(Problems(vec![format!(
                "reload: {prepared} of {} shards prepared generation {id} within {} s; nothing changed",
                self.shards.len(),
                PREPARE_TIMEOUT.as_secs()
            )]));
        }
        self.broadcast(|| ShardMsg::Commit(id));
        self.generation = id;
        self.current = next.clone();
        self.slots.budget_offset_min = next.server.budget_offset_min;
        self.users
            .set(next.end_user_limits.clone(), next.server.budget_offset_min);
        *self.handle.current.lock().expect("config lock") = next;
        self.publish_keys("reload");
        Ok(Reloaded {
            generation: id,
            aliases: self.current.models.len(),
            providers: self.current.providers.len(),
            keys: self.keys.len(),
            took: t0.elapsed(),
        })
    }
}
