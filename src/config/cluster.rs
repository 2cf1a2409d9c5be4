//! `cluster:`: several replicas sharing their limit and budget pools in Redis. Checked here;
//! the control thread's side is `crate::control::cluster`, the shards' `crate::limits::Replica`.
//!
//! ```yaml
//! cluster:
//!   redis: { url: { env: REDIS_URL }, prefix: "shardgate:" }   # or url: redis://127.0.0.1:6379
//!   replicas: 3
//!   fallback_share: 0.34          # Redis down: each replica's share of a limit (default 1/replicas)
//!   on_pool_unavailable: reject   # Redis down: budgets refuse (reject) or fall back too (allow)
//! ```

use yaml_rust2::Yaml;

use super::Secret;
use super::parse::{Walker, get, join};

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// `redis://HOST:PORT[/DB]`.
    pub redis_url: Secret,
    /// Put before every key the gateway writes (replicas of one fleet share it).
    pub prefix: String,
    /// How many replicas share the pools (the fallback share and the reservation sizes).
    pub replicas: u32,
    /// This replica's name in the pools; unset: `<hostname>-<pid>`.
    pub replica_id: Option<String>,
    /// With Redis out of reach, each replica admits this share of a limit per window.
    pub fallback_share: f64,
    /// With Redis out of reach, budgets fall back to the share too (`allow`) or refuse.
    pub budgets_allow: bool,
}

const FIELDS: &[&str] = &[
    "redis",
    "replicas",
    "replica_id",
    "fallback_share",
    "on_pool_unavailable",
];

impl Walker<'_> {
    pub(super) fn cluster(&mut self, y: &Yaml) -> Option<Cluster> {
        let h = self.mapping(y, "cluster", FIELDS)?;
        let redis_url = match get(h, "redis") {
            Some(r) => self.redis(r),
            None => {
                self.problem("cluster.redis", "missing (where the shared pools live)");
                None
            }
        };
        let replicas = match get(h, "replicas") {
            Some(y) => self.uint(y, "cluster.replicas", 1),
            None => {
                self.problem(
                    "cluster.replicas",
                    "missing (how many replicas share the pools)",
                );
                None
            }
        };
        let replica_id = get(h, "replica_id").and_then(|y| self.name(y, "cluster.replica_id"));
        let fallback_share = match get(h, "fallback_share") {
            None => None,
            Some(y) => {
                let v = match y {
                    Yaml::Real(r) => r.parse::<f64>().ok(),
                    Yaml::Integer(i) => Some(*i as f64),
                    _ => None,
                };
                match v {
                    Some(v) if v > 0.0 && v <= 1.0 => Some(v),
                    _ => {
                        self.problem("cluster.fallback_share", "expected a number in (0, 1]");
                        None
                    }
                }
            }
        };
        let budgets_allow = match get(h, "on_pool_unavailable") {
            None => false,
            Some(Yaml::String(v)) if v == "reject" => false,
            Some(Yaml::String(v)) if v == "allow" => true,
            Some(_) => {
                self.problem("cluster.on_pool_unavailable", "expected reject or allow");
                false
            }
        };
        let ((url, prefix), replicas) = (redis_url?, replicas?);
        let replicas = u32::try_from(replicas.min(1_000)).unwrap_or(1_000);
        Some(Cluster {
            redis_url: url,
            prefix,
            replicas,
            replica_id,
            fallback_share: fallback_share.unwrap_or(1.0 / f64::from(replicas)),
            budgets_allow,
        })
    }

    /// `redis: { url: redis://… | { env: NAME } | { file: PATH }, prefix: "…" }`.
    fn redis(&mut self, y: &Yaml) -> Option<(Secret, String)> {
        let path = "cluster.redis";
        let h = self.mapping(y, path, &["url", "prefix"])?;
        let up = join(path, "url");
        let url = match get(h, "url") {
            Some(Yaml::String(s)) => Some(Secret::new(s.clone(), up.clone())),
            Some(y) => self.secret(y, &up),
            None => {
                self.problem(&up, "missing (redis://HOST:PORT, or { env: NAME })");
                None
            }
        };
        let url = url.filter(|u| {
            let ok = u.expose().starts_with("redis://") && u.expose().len() > "redis://".len();
            if !ok {
                self.problem(
                    &up,
                    format_args!(
                        "the value from {} is not a redis:// URL (rediss:// is not supported)",
                        u.origin()
                    ),
                );
            }
            ok
        });
        let prefix = match get(h, "prefix") {
            Some(y) => self.string(y, &join(path, "prefix"))?,
            None => "shardgate:".to_owned(),
        };
        Some((url?, prefix))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    const BASE: &str = "providers:\n  p: { protocol: openai, base_url: http://127.0.0.1:1/v1 }\nmodels:\n  m: { targets: [{ provider: p, model: x }] }\n";

    fn env(name: &str) -> Option<String> {
        (name == "REDIS_URL").then(|| "redis://127.0.0.1:6399/2".to_owned())
    }

    fn problems(cluster: &str) -> String {
        match load_str(&format!("{BASE}cluster: {cluster}\n"), &env) {
            Ok(_) => String::new(),
            Err(p) => p.to_string(),
        }
    }

    #[test]
    fn the_documented_shape_loads_with_its_defaults() {
        let text =
            format!("{BASE}cluster: {{ redis: {{ url: {{ env: REDIS_URL }} }}, replicas: 3 }}\n");
        let c = load_str(&text, &env).unwrap().cluster.unwrap();
        assert_eq!(c.redis_url.expose(), "redis://127.0.0.1:6399/2");
        assert_eq!((c.replicas, c.prefix.as_str()), (3, "shardgate:"));
        assert!((c.fallback_share - 1.0 / 3.0).abs() < 1e-9);
        assert!(!c.budgets_allow, "budgets refuse by default");
        let text = format!(
            "{BASE}cluster: {{ redis: {{ url: redis://127.0.0.1:7000, prefix: \"a:\" }}, replicas: 2, fallback_share: 0.75, on_pool_unavailable: allow, replica_id: r1 }}\n"
        );
        let c = load_str(&text, &env).unwrap().cluster.unwrap();
        assert_eq!(c.redis_url.expose(), "redis://127.0.0.1:7000");
        assert_eq!(
            (c.prefix.as_str(), c.replica_id.as_deref()),
            ("a:", Some("r1"))
        );
        assert!(c.budgets_allow && c.fallback_share == 0.75);
        assert!(
            load_str(BASE, &env).unwrap().cluster.is_none(),
            "single node by default"
        );
    }

    #[test]
    fn each_mistake_is_named_with_its_path() {
        let p = problems("{ replicas: 0 }");
        assert!(p.contains("cluster.redis: missing"), "{p}");
        assert!(p.contains("cluster.replicas: must be at least 1"), "{p}");
        let p = problems("{ redis: { url: { env: NOPE } }, replicas: 2 }");
        assert!(
            p.contains("cluster.redis.url: environment variable NOPE is not set"),
            "{p}"
        );
        let p = problems(
            "{ redis: { url: http://x }, replicas: 2, fallback_share: 2, on_pool_unavailable: maybe, port: 1 }",
        );
        assert!(
            p.contains("cluster.redis.url: the value from cluster.redis.url is not a redis:// URL"),
            "{p}"
        );
        assert!(
            p.contains("cluster.fallback_share: expected a number in (0, 1]"),
            "{p}"
        );
        assert!(
            p.contains("cluster.on_pool_unavailable: expected reject or allow"),
            "{p}"
        );
        assert!(p.contains("cluster.port: unknown field"), "{p}");
    }
}
