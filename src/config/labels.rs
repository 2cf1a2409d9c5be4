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
    /// What served a request, for the spend ledger: `(target id, provider id, upstream
    /// model)` (a reload may point a target name at another provider or model).
    pub served: Vec<(u32, u32, String)>,
    /// Guardrail policy names.
    pub guardrails: Vec<String>,
}

impl LabelNames {
    /// The alias name of id `a`.
    pub fn alias(&self, a: u32) -> Option<&str> {
        self.aliases.get(a as usize).map(String::as_str)
    }

    /// Target name, provider name and upstream model of served id `s`.
    pub fn served(&self, s: u32) -> Option<(&str, &str, &str)> {
        let (t, p, model) = self.served.get(s as usize)?;
        Some((
            self.targets.get(*t as usize)?.1.as_str(),
            self.providers.get(*p as usize)?.as_str(),
            model.as_str(),
        ))
    }
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
    /// Served ids ([`LabelNames::served`]) by model index, then target index.
    pub served: Vec<Vec<u32>>,
    /// By guardrail policy index.
    pub guardrail: Vec<u32>,
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
        let provider: Vec<u32> = snap
            .providers
            .iter()
            .map(|p| intern(&mut providers, &mut names.providers, &p.name))
            .collect();
        let mut served_ids: HashMap<(u32, u32, String), u32> = names
            .served
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32))
            .collect();
        let mut alias = Vec::with_capacity(snap.models.len());
        let mut target = Vec::with_capacity(snap.models.len());
        let mut served = Vec::with_capacity(snap.models.len());
        for m in &snap.models {
            let a = intern(&mut aliases, &mut names.aliases, &m.alias);
            alias.push(a);
            let ids: Vec<u32> = m
                .targets
                .iter()
                .map(|t| {
                    *targets.entry((a, t.name.clone())).or_insert_with(|| {
                        names.targets.push((a, t.name.clone()));
                        names.targets.len() as u32 - 1
                    })
                })
                .collect();
            served.push(
                m.targets
                    .iter()
                    .zip(&ids)
                    .map(|(t, &id)| {
                        let key = (id, provider[t.provider], t.model.clone());
                        *served_ids.entry(key.clone()).or_insert_with(|| {
                            names.served.push(key);
                            names.served.len() as u32 - 1
                        })
                    })
                    .collect(),
            );
            target.push(ids);
        }
        let mut policies = index(&names.guardrails);
        let guardrail = snap
            .guardrails
            .policies
            .iter()
            .map(|p| intern(&mut policies, &mut names.guardrails, &p.name))
            .collect();
        Labels {
            names: Arc::new(names),
            alias,
            target,
            provider,
            served,
            guardrail,
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
        assert_eq!(
            lb.served[1][0], la.served[1][1],
            "y's q/n is served by the same id"
        );
        assert_eq!(lb.names.served(lb.served[1][0]), Some(("q/n", "q", "n")));
        assert_eq!(lb.names.alias(lb.alias[0]), Some("z"));
    }
}
