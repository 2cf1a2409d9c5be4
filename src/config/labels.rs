//! Stable label ids for metrics and per-target state across config generations.
//!
//! Positions in a generation (alias 3, target 1) change when a reload adds or removes an
//! alias; label ids do not. The registry only grows: an alias, target or provider keeps its id
//! for the life of the process, so counters recorded under one generation and rendered under
//! the next stay together, and a request that outlives a reload records under the same ids.

use std::collections::HashMap;
use std::sync::Arc;

use super::Snapshot;

/// Names behind every id ever assigned, in id order.
#[derive(Debug, Clone, Default)]
pub struct LabelNames {
    pub aliases: Vec<String>,
    /// `(alias id, target name)`.
    pub targets: Vec<(u32, String)>,
    pub providers: Vec<String>,
}

/// One generation's positions mapped to their ids, and the registry they come from.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    pub names: Arc<LabelNames>,
    /// By model index.
    pub alias: Vec<u32>,
    /// By model index, then target index.
    pub target: Vec<Vec<u32>>,
    /// By provider index.
    pub provider: Vec<u32>,
}

impl Labels {
    /// Ids for `snap`'s aliases, targets and providers: the ones `prev` gave the same names,
    /// new ids after them for the rest.
    pub fn assign(snap: &Snapshot, prev: Option<&LabelNames>) -> Labels {
        let mut names = prev.cloned().unwrap_or_default();
        let index = |v: &[String]| -> HashMap<String, u32> {
            v.iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect()
        };
        let mut aliases = index(&names.aliases);
        let mut providers = index(&names.providers);
        let mut targets: HashMap<(u32, String), u32> = names
            .targets
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32))
            .collect();
        let intern = |map: &mut HashMap<String, u32>, list: &mut Vec<String>, name: &str| {
            *map.entry(name.to_owned()).or_insert_with(|| {
                list.push(name.to_owned());
                list.len() as u32 - 1
            })
        };
        let provider = snap
            .providers
            .iter()
            .map(|p| intern(&mut providers, &mut names.providers, &p.name))
            .collect();
        let mut alias = Vec::with_capacity(snap.models.len());
        let mut target = Vec::with_capacity(snap.models.len());
        for m in &snap.models {
            let a = intern(&mut aliases, &mut names.aliases, &m.alias);
            alias.push(a);
            target.push(
                m.targets
                    .iter()
                    .map(|t| {
                        *targets.entry((a, t.name.clone())).or_insert_with(|| {
                            names.targets.push((a, t.name.clone()));
                            names.targets.len() as u32 - 1
                        })
                    })
                    .collect(),
            );
        }
        Labels {
            names: Arc::new(names),
            alias,
            target,
            provider,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(models: &str) -> Snapshot {
        let cfg = format!(
            "server: {{ admin_listen: off }}\nproviders: {{ p: {{ protocol: mock }}, q: {{ protocol: mock }} }}\nmodels:\n{models}"
        );
        crate::config::load_str(&cfg, &|_| None).unwrap()
    }

    #[test]
    fn ids_survive_reorder_and_removal_and_new_names_go_after() {
        let a = snap(
            "  x: { targets: [ { provider: p, model: m } ] }\n  y: { targets: [ { provider: p, model: m }, { provider: q, model: n } ] }\n",
        );
        let la = Labels::assign(&a, None);
        let b = snap(
            "  z: { targets: [ { provider: q, model: n } ] }\n  y: { targets: [ { provider: q, model: n } ] }\n",
        );
        let lb = Labels::assign(&b, Some(&la.names));
        let (y_a, y_b) = (la.alias[1], lb.alias[1]);
        assert_eq!(y_a, y_b, "y keeps its id");
        assert_eq!(lb.target[1][0], la.target[1][1], "y's q/n keeps its id");
        assert_eq!(lb.alias[0], 2, "z is new, after x and y");
        assert_eq!(lb.names.aliases, ["x", "y", "z"]);
        assert_eq!(lb.provider, la.provider);
    }
}
