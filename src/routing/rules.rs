//! Routing rules: what a request says about itself ([`Facts`]) matched against an alias's rules,
//! in order, the first match choosing which targets are eligible.
//!
//! Evaluation borrows everything and allocates nothing: tags are matched by scanning the raw
//! header bytes, the canary by bucketing the request hash.

use crate::config::{Rule, When};

use super::plan::TargetSet;

/// What the routing rules may look at, borrowed from the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The raw `x-shardgate-tags` header value: a comma-separated list; spaces and tabs around
    /// each tag are ignored. Empty when the header is absent.
    pub tags: &'a [u8],
    /// OpenAI's `user` field or Anthropic's `metadata.user_id`.
    pub user: Option<&'a str>,
    /// The team the caller's key belongs to (today: the key's name).
    pub team: Option<&'a str>,
    /// The prompt's estimated token count.
    pub prompt_tokens: u64,
    /// The client's `max_tokens` (or `max_completion_tokens`), if it gave one.
    pub max_tokens: Option<u64>,
    /// A hash of the request (e.g. of its id) for canary bucketing; any well-spread value.
    pub hash: u64,
}

/// The targets the first matching rule allows (all of `0..n` when none matches), and its index.
pub fn eligible(rules: &[Rule], facts: &Facts<'_>, n: usize) -> (TargetSet, Option<usize>) {
    for (i, rule) in rules.iter().enumerate() {
        if matches(&rule.when, facts) {
            return (rule.targets, Some(i));
        }
    }
    (TargetSet::first(n), None)
}

/// Every condition present in `when` holds (an empty `when` never comes out of config).
pub fn matches(when: &When, facts: &Facts<'_>) -> bool {
    if let Some(tag) = &when.tag
        && !has_tag(facts.tags, tag.as_bytes())
    {
        return false;
    }
    if let Some(user) = &when.user
        && facts.user != Some(user.as_str())
    {
        return false;
    }
    if let Some(team) = &when.team
        && facts.team != Some(team.as_str())
    {
        return false;
    }
    if when
        .min_prompt_tokens
        .is_some_and(|m| facts.prompt_tokens < m)
    {
        return false;
    }
    if when
        .max_prompt_tokens
        .is_some_and(|m| facts.prompt_tokens > m)
    {
        return false;
    }
    if let Some(bp) = when.canary
        && canary_bucket(facts.hash) >= u64::from(bp)
    {
        return false;
    }
    true
}

/// The request's canary bucket in `0..10_000` (basis points). The hash is mixed first so that
/// sequential ids spread evenly; a request lands in the same bucket for every rule, so a later
/// rule with a larger percentage catches the band between the two.
pub fn canary_bucket(hash: u64) -> u64 {
    // The splitmix64 finaliser.
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z % 10_000
}

/// Whether the comma-separated `list` contains `tag` exactly (after trimming spaces and tabs).
pub fn has_tag(list: &[u8], tag: &[u8]) -> bool {
    list.split(|&b| b == b',').any(|t| trim(t) == tag)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(when: When, targets: &[usize]) -> Rule {
        let mut set = TargetSet::EMPTY;
        for &t in targets {
            set.insert(t);
        }
        Rule { when, targets: set }
    }

    #[test]
    fn tags_are_a_trimmed_comma_list() {
        assert!(has_tag(b"batch", b"batch"));
        assert!(has_tag(b" a ,\tbatch\t, c", b"batch"));
        assert!(!has_tag(b"batches, b", b"batch"));
        assert!(!has_tag(b"", b"batch"));
        assert!(!has_tag(b"bat,ch", b"batch"));
    }

    #[test]
    fn each_condition() {
        let f = Facts {
            tags: b"x, batch",
            user: Some("alice"),
            team: Some("team-a"),
            prompt_tokens: 150_000,
            max_tokens: None,
            hash: 42,
        };
        let tag = When {
            tag: Some("batch".into()),
            ..When::default()
        };
        assert!(matches(&tag, &f));
        assert!(!matches(&tag, &Facts::default()));
        let user = When {
            user: Some("alice".into()),
            ..When::default()
        };
        assert!(matches(&user, &f));
        assert!(!matches(
            &user,
            &Facts {
                user: Some("bob"),
                ..f
            }
        ));
        let team = When {
            team: Some("team-a".into()),
            ..When::default()
        };
        assert!(matches(&team, &f));
        assert!(!matches(&team, &Facts { team: None, ..f }));
        let long = When {
            min_prompt_tokens: Some(100_000),
            ..When::default()
        };
        assert!(matches(&long, &f));
        assert!(!matches(
            &long,
            &Facts {
                prompt_tokens: 99_999,
                ..f
            }
        ));
        let short = When {
            max_prompt_tokens: Some(1000),
            ..When::default()
        };
        assert!(!matches(&short, &f));
        assert!(matches(
            &short,
            &Facts {
                prompt_tokens: 1000,
                ..f
            }
        ));
        // All conditions of one `when` must hold.
        let both = When {
            tag: Some("batch".into()),
            user: Some("bob".into()),
            ..When::default()
        };
        assert!(!matches(&both, &f));
    }

    #[test]
    fn first_match_wins() {
        let rules = [
            rule(
                When {
                    tag: Some("batch".into()),
                    ..When::default()
                },
                &[2],
            ),
            rule(
                When {
                    user: Some("alice".into()),
                    ..When::default()
                },
                &[1],
            ),
        ];
        let f = Facts {
            tags: b"batch",
            user: Some("alice"),
            ..Facts::default()
        };
        assert_eq!(
            eligible(&rules, &f, 3),
            (TargetSet::from_bits(0b100), Some(0))
        );
        let f = Facts {
            user: Some("alice"),
            ..Facts::default()
        };
        assert_eq!(
            eligible(&rules, &f, 3),
            (TargetSet::from_bits(0b010), Some(1))
        );
        assert_eq!(
            eligible(&rules, &Facts::default(), 3),
            (TargetSet::first(3), None)
        );
    }

    #[test]
    fn canary_matches_about_its_percentage() {
        for (percent, bp) in [
            (10u64, 1000u16),
            (1, 100),
            (50, 5000),
            (0, 0),
            (100, 10_000),
        ] {
            let when = When {
                canary: Some(bp),
                ..When::default()
            };
            let hits = (0..100_000u64)
                .filter(|&h| {
                    matches(
                        &when,
                        &Facts {
                            hash: h,
                            ..Facts::default()
                        },
                    )
                })
                .count() as u64;
            let want = percent * 1000;
            assert!(hits.abs_diff(want) <= 600, "{percent}%: {hits} of 100000");
        }
    }
}
