//! Token prices: the shipped table of public list prices (`prices.txt`, a dated data file with a
//! source per provider), lookup by exact name or name prefix, and the arithmetic that turns
//! usage into dollars.
//!
//! Prices are USD per million tokens. The table is a convenience, not a source of truth: list
//! prices change, tiers (long-context surcharges, batch discounts, regional markups) are not
//! modelled, and any target can override it with `price:` in config. Lookups happen when config
//! is loaded (`Target::price`), never per request; the data file is parsed once, at the first
//! lookup. A malformed line is skipped there, never fatal: the unit tests parse the whole file
//! and fail on any problem, so a bad edit cannot ship.

use std::sync::OnceLock;

use crate::providers::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Output tokens that are not reasoning.
    pub output: f64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input: f64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic charges a premium).
    pub cache_write: f64,
    /// Output tokens spent reasoning ([`Usage::reasoning`]); every vendor in the table charges
    /// them as output, but the rate is kept apart so one that does not can be described.
    pub reasoning: f64,
}

impl Price {
    /// A price whose cached input costs `cached_input`, cache writes cost as much as input and
    /// reasoning as much as output.
    pub const fn new(input: f64, output: f64, cached_input: f64) -> Price {
        Price {
            input,
            output,
            cached_input,
            cache_write: input,
            reasoning: output,
        }
    }

    /// A price without any prompt-cache discount.
    pub const fn flat(input: f64, output: f64) -> Price {
        Price::new(input, output, input)
    }
}

/// Dollars for `usage` at `price`. `usage.input` counts every prompt token, cached ones
/// included, so the cached shares are taken out of it and charged at their own rates; likewise
/// `usage.reasoning` is taken out of `usage.output`. Inconsistent counts (more cached than
/// input) are clamped, never negative.
pub fn cost(price: &Price, usage: &Usage) -> f64 {
    let cached = usage.cache_read.min(usage.input);
    let written = usage.cache_write.min(usage.input - cached);
    let plain = usage.input - cached - written;
    let reasoning = usage.reasoning.min(usage.output);
    let answer = usage.output - reasoning;
    (plain as f64 * price.input
        + cached as f64 * price.cached_input
        + written as f64 * price.cache_write
        + answer as f64 * price.output
        + reasoning as f64 * price.reasoning)
        / 1e6
}

/// Dollars for a request of `prompt_tokens` that produces `output_tokens`, without caching; the
/// `cost` strategy's estimate and a budget reservation's worst case.
pub fn estimate(price: &Price, prompt_tokens: u64, output_tokens: u64) -> f64 {
    (prompt_tokens as f64 * price.input + output_tokens as f64 * price.output) / 1e6
}

/// The shipped price of an upstream model name, if the table knows it.
///
/// Matching: a leading `vendor/` path (OpenRouter, Groq's `meta-llama/…`) and a Bedrock-style
/// `region.vendor.` prefix are dropped; then an exact (ASCII case-insensitive) match wins, else
/// the longest table name that the model name starts with followed by `-`, `@` or `:` (so
/// `gpt-4o-mini-2024-07-18` is `gpt-4o-mini`, not `gpt-4o`, and `claude-3-5-sonnet@20240620`
/// is `claude-3-5-sonnet`).
pub fn lookup(model: &str) -> Option<Price> {
    find(&shipped().entries, model)
}

fn find(entries: &[Entry], model: &str) -> Option<Price> {
    let name = bare_name(model);
    let mut best: Option<(usize, Price)> = None;
    for e in entries {
        if name.eq_ignore_ascii_case(e.name) {
            return Some(e.price);
        }
        let n = e.name.len();
        let prefixed = name.len() > n
            && name.as_bytes()[..n].eq_ignore_ascii_case(e.name.as_bytes())
            && matches!(name.as_bytes()[n], b'-' | b'@' | b':');
        if prefixed && best.is_none_or(|(len, _)| n > len) {
            best = Some((n, e.price));
        }
    }
    best.map(|(_, p)| p)
}

/// `openrouter/openai/gpt-4o` → `gpt-4o`; `us.anthropic.claude-3-5-sonnet-…` → `claude-3-5-…`.
fn bare_name(model: &str) -> &str {
    let name = model.rsplit('/').next().unwrap_or(model);
    // A dot before the first dash ends Bedrock's region and vendor prefix, which is letters
    // only; other dots are part of version numbers (`gpt-4.1`, `Qwen3.5-397B`).
    let head = name.find('-').map_or(name, |d| &name[..d]);
    match head.rfind('.') {
        Some(dot)
            if head[..dot]
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'.') =>
        {
            &name[dot + 1..]
        }
        _ => name,
    }
}

// === the data file ===

/// The table as shipped; its format is described in the file's header.
const DATA: &str = include_str!("prices.txt");

/// One price row.
#[derive(Debug)]
struct Entry {
    name: &'static str,
    price: Price,
}

/// A parsed data file: the rows that parsed, and a line-numbered note for each that did not.
#[derive(Debug, Default)]
struct Table {
    entries: Vec<Entry>,
    problems: Vec<String>,
}

fn shipped() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| parse(DATA))
}

/// Parses the data file. Every check lives here (column count, numbers, known source, date,
/// duplicate names), so that "no problems" in the test means the file is well formed.
fn parse(text: &'static str) -> Table {
    let mut t = Table::default();
    let mut sources: Vec<(&str, bool)> = Vec::new();
    let mut rows: Vec<(usize, Entry, &str)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let cols: Vec<&'static str> = line.split_ascii_whitespace().collect();
        match cols.as_slice() {
            [] => {}
            [first, ..] if first.starts_with('#') => {}
            ["source", name, url] => {
                if !url.starts_with("https://") {
                    t.problems
                        .push(format!("line {line_no}: source {name}: {url} is not https"));
                } else if sources.iter().any(|(s, _)| s == name) {
                    t.problems
                        .push(format!("line {line_no}: source {name} given twice"));
                } else {
                    sources.push((name, false));
                }
            }
            [name, input, output, read, write, reasoning, source, checked] => {
                match row(name, [input, output, read, write, reasoning], checked) {
                    Ok(e) => rows.push((line_no, e, source)),
                    Err(why) => t.problems.push(format!("line {line_no}: {name}: {why}")),
                }
            }
            _ => t.problems.push(format!(
                "line {line_no}: expected 8 columns or `source NAME URL`, got {}",
                cols.len()
            )),
        }
    }
    for (line_no, e, source) in rows {
        let Some(known) = sources.iter_mut().find(|(s, _)| *s == source) else {
            let why = format!("line {line_no}: {}: unknown source {source}", e.name);
            t.problems.push(why);
            continue;
        };
        known.1 = true;
        if t.entries
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(e.name))
        {
            t.problems
                .push(format!("line {line_no}: {} listed twice", e.name));
            continue;
        }
        t.entries.push(e);
    }
    for (name, _) in sources.iter().filter(|(_, used)| !used) {
        t.problems.push(format!("source {name} has no rows"));
    }
    t
}

/// One row's prices (`-` takes the default) and its date.
fn row(name: &'static str, cols: [&str; 5], checked: &str) -> Result<Entry, String> {
    let num = |s: &str| -> Result<Option<f64>, String> {
        if s == "-" {
            return Ok(None);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(format!("{s:?} is not a price")),
        }
    };
    let [input, output, read, write, reasoning] = cols;
    let (Some(input), Some(output)) = (num(input)?, num(output)?) else {
        return Err("input and output need a price, not `-`".into());
    };
    if checked != "-" && !is_date(checked) {
        return Err(format!("checked {checked:?} is not YYYY-MM-DD or -"));
    }
    Ok(Entry {
        name,
        price: Price {
            input,
            output,
            cached_input: num(read)?.unwrap_or(input),
            cache_write: num(write)?.unwrap_or(input),
            reasoning: num(reasoning)?.unwrap_or(output),
        },
    })
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests;
