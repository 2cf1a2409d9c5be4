//! The actions of `shardgate keys`, `teams` and `spend`: one [`ACTIONS`] row per action holds
//! everything about it (its usage, operands, flags, the admin API route it calls and how its
//! answer is shown), so adding an action is adding a row. Parsing, request building and usage
//! text all read this table; nothing here does I/O.

use std::fmt::Write as _;

use super::client::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noun {
    Keys,
    Teams,
    Spend,
}

impl Noun {
    pub fn parse(word: &str) -> Option<Noun> {
        match word {
            "keys" => Some(Noun::Keys),
            "teams" => Some(Noun::Teams),
            "spend" => Some(Noun::Spend),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Noun::Keys => "keys",
            Noun::Teams => "teams",
            Noun::Spend => "spend",
        }
    }

    /// The singular, for messages such as `blocked key key_ab12`.
    pub fn one(self) -> &'static str {
        match self {
            Noun::Keys => "key",
            Noun::Teams => "team",
            Noun::Spend => "spend",
        }
    }
}

/// The positional arguments after the action's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operands {
    None,
    One,
    Many,
}

/// How a flag's value is checked and put into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A comma list, sent as a JSON array of strings.
    List,
    /// A JSON object.
    Object,
    /// A key's cache setting: `follow` (null), `off` (false), `on` (true) or a JSON object.
    Cache,
    /// A non-negative integer.
    Count,
    /// A non-negative amount of money.
    Amount,
    /// `<digits><unit>` with unit s, m, h, d, w or mo (LiteLLM's duration strings).
    Duration,
    /// A UTC date, `YYYY-MM-DD`.
    Date,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// No value: the flag sets its field to this.
    Switch(&'static str),
}

#[derive(Debug)]
pub struct Flag {
    pub name: &'static str,
    /// The placeholder shown in usage.
    pub value: &'static str,
    /// The request field (JSON body or query parameter) the value goes to.
    pub field: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

/// How a successful answer is printed without `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A new key's secret (shown once) and its row.
    Secret,
    /// A rotated key's new secret (shown once), what became of the old one, and its row.
    Rotated,
    KeyTable,
    KeyInfo,
    /// One line: `<verb> <noun> <ID>`.
    Ack(&'static str),
    /// The `deleted_teams` and `deleted_keys` of the answer.
    Deleted,
    /// `created team <ID>` and the team's row.
    TeamCreated,
    TeamTable,
    TeamInfo,
    /// The rows of `/spend/logs`.
    SpendLogs,
    /// The groups of `/global/spend/report`.
    SpendReport,
}

#[derive(Debug)]
pub struct Action {
    pub noun: Noun,
    pub name: &'static str,
    pub summary: &'static str,
    pub operands: Operands,
    pub flags: &'static [&'static [Flag]],
    /// An update with no flag would send nothing: a usage error.
    pub needs_flag: bool,
    /// Flags that must be given.
    pub required: &'static [&'static str],
    pub method: Method,
    pub path: &'static str,
    /// The field the operand goes to: the ID (`One`) or the array of IDs (`Many`).
    pub operand_field: &'static str,
    /// Query parameters every call sends.
    pub fixed_query: &'static [(&'static str, &'static str)],
    pub output: Output,
}

impl Action {
    pub fn flag(&self, name: &str) -> Option<&'static Flag> {
        self.flags
            .iter()
            .flat_map(|set| set.iter())
            .find(|f| f.name == name)
    }

    pub fn operand_synopsis(&self) -> &'static str {
        match self.operands {
            Operands::None => "",
            Operands::One => " ID",
            Operands::Many => " ID...",
        }
    }
}

pub fn find(noun: Noun, name: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.noun == noun && a.name == name)
}

const fn flag(
    name: &'static str,
    value: &'static str,
    field: &'static str,
    kind: Kind,
    help: &'static str,
) -> Flag {
    Flag {
        name,
        value,
        field,
        kind,
        help,
    }
}

// The tables below are laid out by hand, one row per flag or action, so they read as tables.

#[rustfmt::skip]
const KEY_FIELDS: &[Flag] = &[
    flag("--alias", "NAME", "key_alias", Kind::Text, "a readable name"),
    flag("--team", "ID", "team_id", Kind::Text, "the team the key belongs to"),
    flag("--user", "ID", "user_id", Kind::Text, "the user the key belongs to"),
    flag("--models", "A,B", "models", Kind::List, "models the key may call (none: all)"),
    flag("--duration", "D", "duration", Kind::Duration, "lifetime, e.g. 30d (none: no expiry)"),
    flag("--metadata", "JSON", "metadata", Kind::Object, "a JSON object kept with the key"),
    flag("--tags", "A,B", "tags", Kind::List, "tags for spend reports"),
    flag("--guardrails", "A,B", "guardrails", Kind::List,
         "guardrail policies its requests run, before its team's"),
    flag("--cache", "MODE", "cache", Kind::Cache,
         "follow (the alias decides), off, on, or a JSON object"),
    flag("--rpm", "N", "rpm_limit", Kind::Count, "requests per minute"),
    flag("--tpm", "N", "tpm_limit", Kind::Count, "tokens per minute"),
    flag("--max-parallel", "N", "max_parallel_requests", Kind::Count, "requests in flight at once"),
    flag("--max-budget", "USD", "max_budget", Kind::Amount, "spend limit"),
    flag("--budget-duration", "D", "budget_duration", Kind::Duration, "how often spend resets"),
];

#[rustfmt::skip]
const TEAM_ID: &[Flag] = &[
    flag("--id", "ID", "team_id", Kind::Text, "the team's ID (none: the API picks one)"),
];

#[rustfmt::skip]
const TEAM_FIELDS: &[Flag] = &[
    flag("--alias", "NAME", "team_alias", Kind::Text, "a readable name"),
    flag("--models", "A,B", "models", Kind::List, "models the team's keys may call (none: all)"),
    flag("--metadata", "JSON", "metadata", Kind::Object, "a JSON object kept with the team"),
    flag("--guardrails", "A,B", "guardrails", Kind::List,
         "guardrail policies its keys' requests run after their own"),
    flag("--rpm", "N", "rpm_limit", Kind::Count, "requests per minute"),
    flag("--tpm", "N", "tpm_limit", Kind::Count, "tokens per minute"),
    flag("--max-parallel", "N", "max_parallel_requests", Kind::Count, "requests in flight at once"),
    flag("--max-budget", "USD", "max_budget", Kind::Amount, "spend limit"),
];

#[rustfmt::skip]
const LIST_TEAM: &[Flag] = &[
    flag("--team", "ID", "team_id", Kind::Text, "only this team's keys"),
];

#[rustfmt::skip]
const GRACE: &[Flag] = &[
    flag("--grace", "D", "grace_period", Kind::Duration,
         "how long the old secret keeps working (none: it stops at once)"),
];

#[rustfmt::skip]
const SPEND_FORMAT: &[Flag] = &[
    flag("--csv", "", "format", Kind::Switch("csv"), "print the API's CSV as is"),
];

#[rustfmt::skip]
const SPEND_FILTERS: &[Flag] = &[
    flag("--key", "ID", "api_key", Kind::Text, "only this key's requests"),
    flag("--team", "ID", "team_id", Kind::Text, "only this team's requests"),
    flag("--user", "U", "user", Kind::Text, "only this end user's requests"),
    flag("--request", "ID", "request_id", Kind::Text, "only this request"),
    flag("--start", "YYYY-MM-DD", "start_date", Kind::Date, "from this UTC day"),
    flag("--end", "YYYY-MM-DD", "end_date", Kind::Date, "to this UTC day, inclusive"),
    flag("--limit", "N", "limit", Kind::Count, "the newest N requests (default 100, at most 10000)"),
];

/// What `spend report --by` takes.
pub const SPEND_GROUPS: &[&str] = &["key", "team", "model", "provider", "day", "user"];

#[rustfmt::skip]
const SPEND_REPORT: &[Flag] = &[
    flag("--start", "YYYY-MM-DD", "start_date", Kind::Date, "from this UTC day"),
    flag("--end", "YYYY-MM-DD", "end_date", Kind::Date, "to this UTC day, inclusive"),
    flag("--by", "GROUP", "group_by", Kind::Choice(SPEND_GROUPS),
         "key, team, model, provider, day or user (default team)"),
];

const fn action(
    (noun, name, operands): (Noun, &'static str, Operands),
    (method, path, operand_field): (Method, &'static str, &'static str),
    flags: &'static [&'static [Flag]],
    output: Output,
    summary: &'static str,
) -> Action {
    Action {
        noun,
        name,
        summary,
        operands,
        flags,
        needs_flag: false,
        required: &[],
        method,
        path,
        operand_field,
        fixed_query: &[],
        output,
    }
}

use Method::{Get, Post};
use Noun::{Keys, Spend, Teams};
use Operands::{Many, None as NoOperand, One};

#[rustfmt::skip]
pub static ACTIONS: &[Action] = &[
    action((Keys, "create", NoOperand), (Post, "/key/generate", ""), &[KEY_FIELDS], Output::Secret,
           "create a key; its secret is printed once"),
    Action {
        fixed_query: &[("size", "1000")],
        ..action((Keys, "list", NoOperand), (Get, "/key/list", ""), &[LIST_TEAM], Output::KeyTable,
                 "list keys")
    },
    action((Keys, "info", One), (Get, "/key/info", "key"), &[], Output::KeyInfo,
           "show one key"),
    action((Keys, "block", One), (Post, "/key/block", "key"), &[], Output::Ack("blocked"),
           "refuse a key's requests until it is unblocked"),
    action((Keys, "unblock", One), (Post, "/key/unblock", "key"), &[], Output::Ack("unblocked"),
           "accept a blocked key's requests again"),
    action((Keys, "rotate", One), (Post, "/key/regenerate", "key"), &[GRACE], Output::Rotated,
           "give a key a new secret, printed once"),
    Action {
        needs_flag: true,
        ..action((Keys, "update", One), (Post, "/key/update", "key"), &[KEY_FIELDS],
                 Output::Ack("updated"), "change a key's settings")
    },
    action((Keys, "delete", Many), (Post, "/key/delete", "keys"), &[], Output::Deleted,
           "delete keys"),
    action((Teams, "create", NoOperand), (Post, "/team/new", ""), &[TEAM_ID, TEAM_FIELDS],
           Output::TeamCreated, "create a team"),
    action((Teams, "list", NoOperand), (Get, "/team/list", ""), &[], Output::TeamTable,
           "list teams"),
    action((Teams, "info", One), (Get, "/team/info", "team_id"), &[], Output::TeamInfo,
           "show one team and its keys"),
    Action {
        needs_flag: true,
        ..action((Teams, "update", One), (Post, "/team/update", "team_id"), &[TEAM_FIELDS],
                 Output::Ack("updated"), "change a team's settings")
    },
    action((Teams, "delete", Many), (Post, "/team/delete", "team_ids"), &[], Output::Deleted,
           "delete teams and their keys"),
    action((Spend, "logs", NoOperand), (Get, "/spend/logs", ""), &[SPEND_FILTERS, SPEND_FORMAT],
           Output::SpendLogs, "list requests and their spend, newest first"),
    Action {
        required: &["--start", "--end"],
        ..action((Spend, "report", NoOperand), (Get, "/global/spend/report", ""),
                 &[SPEND_REPORT, SPEND_FORMAT], Output::SpendReport,
                 "sum requests, tokens and spend by a group over UTC days")
    },
];

const COMMON: &str = "common flags:
  --admin-url URL    the admin listener, http://host:port[/prefix]
                     (else $SHARDGATE_ADMIN_URL, else http://127.0.0.1:9090)
  --master-key KEY   sent as `Authorization: Bearer KEY` (else $SHARDGATE_MASTER_KEY)
  --json             print the API's JSON answer instead of a table";

const COMMON_SYNOPSIS: &str = "[--admin-url URL] [--master-key KEY] [--json]";

/// `shardgate keys|teams|spend` with no noun or a wrong one.
pub const TOP_USAGE: &str = "usage:
  shardgate keys ACTION ...    manage virtual keys (shardgate keys --help)
  shardgate teams ACTION ...   manage teams (shardgate teams --help)
  shardgate spend ACTION ...   spend logs and reports (shardgate spend --help)";

pub fn noun_usage(noun: Noun) -> String {
    let word = noun.word();
    let mut s = format!("usage: shardgate {word} ACTION [ARGS] {COMMON_SYNOPSIS}\n\nactions:\n");
    let actions: Vec<_> = ACTIONS.iter().filter(|a| a.noun == noun).collect();
    let width = actions
        .iter()
        .map(|a| a.name.len() + a.operand_synopsis().len())
        .max()
        .unwrap_or(0);
    for a in actions {
        let head = format!("{}{}", a.name, a.operand_synopsis());
        let _ = writeln!(s, "  {head:<width$}   {}", a.summary);
    }
    let _ = write!(
        s,
        "\n`shardgate {word} ACTION --help` lists an action's flags.\n\n{COMMON}"
    );
    s
}

pub fn action_usage(a: &Action) -> String {
    let mut summary = a.summary.to_string();
    summary[..1].make_ascii_uppercase();
    let mut s = format!(
        "usage: shardgate {} {}{} [FLAGS] {COMMON_SYNOPSIS}\n\n{summary}.\n",
        a.noun.word(),
        a.name,
        a.operand_synopsis(),
    );
    let flags: Vec<_> = a.flags.iter().flat_map(|set| set.iter()).collect();
    if !flags.is_empty() {
        s.push_str("\nflags:\n");
        let head = |f: &Flag| match f.value {
            "" => f.name.to_string(),
            value => format!("{} {value}", f.name),
        };
        let width = flags.iter().map(|f| head(f).len()).max().unwrap_or(0);
        for f in flags {
            let (head, required) = (head(f), a.required.contains(&f.name));
            let required = if required { " (required)" } else { "" };
            let field = match f.kind {
                Kind::Switch(v) => format!("{}={v}", f.field),
                _ => f.field.to_string(),
            };
            let _ = writeln!(s, "  {head:<width$}   {}{required} [{field}]", f.help);
        }
    }
    if a.flags
        .iter()
        .flat_map(|set| set.iter())
        .any(|f| f.kind == Kind::Duration)
    {
        s.push_str("durations: a number and s, m, h, d, w or mo (30s, 15m, 1h, 30d, 2w, 1mo)\n");
    }
    let _ = write!(s, "\n{COMMON}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_found_by_its_noun_and_name_only() {
        for a in ACTIONS {
            assert!(std::ptr::eq(find(a.noun, a.name).unwrap(), a));
        }
        assert!(find(Noun::Teams, "block").is_none());
        assert!(find(Noun::Keys, "new").is_none());
    }

    #[test]
    fn no_action_has_two_flags_of_one_name_and_operands_have_a_field() {
        for a in ACTIONS {
            let names: Vec<_> = a
                .flags
                .iter()
                .flat_map(|s| s.iter())
                .map(|f| f.name)
                .collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(names.len(), unique.len(), "{} {}", a.noun.word(), a.name);
            assert_eq!(a.operands == Operands::None, a.operand_field.is_empty());
        }
    }

    #[test]
    fn usage_lists_every_action_and_flag() {
        let keys = noun_usage(Noun::Keys);
        for name in [
            "create",
            "list",
            "info ID",
            "block ID",
            "unblock ID",
            "rotate ID",
            "update ID",
            "delete ID...",
        ] {
            assert!(keys.contains(&format!("  {name} ")), "{name} in\n{keys}");
        }
        assert!(noun_usage(Noun::Teams).contains("  delete ID...   delete teams and their keys"));
        let create = action_usage(find(Noun::Keys, "create").unwrap());
        assert!(create.starts_with("usage: shardgate keys create [FLAGS]"));
        for f in KEY_FIELDS {
            assert!(
                create.contains(&format!("  {} {} ", f.name, f.value)),
                "{}",
                f.name
            );
        }
        assert!(create.contains("durations:") && create.contains("--admin-url URL"));
        assert!(!action_usage(find(Noun::Keys, "info").unwrap()).contains("\nflags:"));
    }
}
