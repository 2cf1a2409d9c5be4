//! Token prices: a shipped table of well-known models' public list prices, lookup by exact name
//! or name prefix, and the arithmetic that turns usage into dollars.
//!
//! Prices are USD per million tokens. The table is a convenience, not a source of truth: list
//! prices change, tiers (long-context surcharges, batch discounts, regional markups) are not
//! modelled, and any target can override it with `price:` in config. Lookups happen once, when
//! config is loaded (`Target::price`), never per request.

use crate::providers::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Uncached prompt tokens.
    pub input: f64,
    pub output: f64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input: f64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic charges a premium).
    pub cache_write: f64,
}

impl Price {
    /// A price whose cached input costs `cached_input` and cache writes cost as much as input.
    pub const fn new(input: f64, output: f64, cached_input: f64) -> Price {
        Price {
            input,
            output,
            cached_input,
            cache_write: input,
        }
    }

    /// A price without any prompt-cache discount.
    pub const fn flat(input: f64, output: f64) -> Price {
        Price::new(input, output, input)
    }

    /// Anthropic's scheme: cache reads at a tenth of input, 5-minute cache writes at 1.25×.
    const fn anthropic(input: f64, output: f64) -> Price {
        Price {
            input,
            output,
            cached_input: input / 10.0,
            cache_write: input * 1.25,
        }
    }
}

/// Dollars for `usage` at `price`. `usage.input` counts every prompt token, cached ones
/// included, so the cached shares are taken out of it and charged at their own rates.
pub fn cost(price: &Price, usage: &Usage) -> f64 {
    let cached = usage.cache_read.min(usage.input);
    let written = usage.cache_write.min(usage.input - cached);
    let plain = usage.input - cached - written;
    (plain as f64 * price.input
        + cached as f64 * price.cached_input
        + written as f64 * price.cache_write
        + usage.output as f64 * price.output)
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
    let name = bare_name(model);
    let mut best: Option<(usize, Price)> = None;
    for &(entry, price) in TABLE {
        if name.eq_ignore_ascii_case(entry) {
            return Some(price);
        }
        let n = entry.len();
        let prefixed = name.len() > n
            && name.as_bytes()[..n].eq_ignore_ascii_case(entry.as_bytes())
            && matches!(name.as_bytes()[n], b'-' | b'@' | b':');
        if prefixed && best.is_none_or(|(len, _)| n > len) {
            best = Some((n, price));
        }
    }
    best.map(|(_, p)| p)
}

/// `openrouter/openai/gpt-4o` → `gpt-4o`; `us.anthropic.claude-3-5-sonnet-…` → `claude-3-5-…`.
fn bare_name(model: &str) -> &str {
    let name = model.rsplit('/').next().unwrap_or(model);
    // A dot before the first dash separates Bedrock's region/vendor prefix; dots after it are
    // part of version numbers (`gpt-4.1`, `gemini-2.5-pro`).
    let head = name.find('-').map_or(name, |d| &name[..d]);
    match head.rfind('.') {
        Some(dot) => &name[dot + 1..],
        None => name,
    }
}

/// Public list prices (USD per million tokens: input, output, cached input) as published by each
/// vendor for their standard tier. Longer names first only for readability; lookup takes the
/// longest matching prefix whatever the order.
const TABLE: &[(&str, Price)] = &[
    // OpenAI
    ("gpt-5", Price::new(1.25, 10.0, 0.125)),
    ("gpt-5-mini", Price::new(0.25, 2.0, 0.025)),
    ("gpt-5-nano", Price::new(0.05, 0.40, 0.005)),
    ("gpt-4.1", Price::new(2.0, 8.0, 0.50)),
    ("gpt-4.1-mini", Price::new(0.40, 1.60, 0.10)),
    ("gpt-4.1-nano", Price::new(0.10, 0.40, 0.025)),
    ("gpt-4o", Price::new(2.50, 10.0, 1.25)),
    ("gpt-4o-mini", Price::new(0.15, 0.60, 0.075)),
    ("o1", Price::new(15.0, 60.0, 7.50)),
    ("o3", Price::new(2.0, 8.0, 0.50)),
    ("o3-pro", Price::flat(20.0, 80.0)),
    ("o3-mini", Price::new(1.10, 4.40, 0.55)),
    ("o4-mini", Price::new(1.10, 4.40, 0.275)),
    ("text-embedding-3-small", Price::flat(0.02, 0.0)),
    ("text-embedding-3-large", Price::flat(0.13, 0.0)),
    // Anthropic
    ("claude-opus-4-5", Price::anthropic(5.0, 25.0)),
    ("claude-opus-4-1", Price::anthropic(15.0, 75.0)),
    ("claude-opus-4", Price::anthropic(15.0, 75.0)),
    ("claude-sonnet-4-5", Price::anthropic(3.0, 15.0)),
    ("claude-sonnet-4", Price::anthropic(3.0, 15.0)),
    ("claude-haiku-4-5", Price::anthropic(1.0, 5.0)),
    ("claude-3-7-sonnet", Price::anthropic(3.0, 15.0)),
    ("claude-3-5-sonnet", Price::anthropic(3.0, 15.0)),
    ("claude-3-5-haiku", Price::anthropic(0.80, 4.0)),
    ("claude-3-opus", Price::anthropic(15.0, 75.0)),
    ("claude-3-haiku", Price::anthropic(0.25, 1.25)),
    // Google Gemini (prompts up to 200k tokens where the price is tiered)
    ("gemini-2.5-pro", Price::new(1.25, 10.0, 0.125)),
    ("gemini-2.5-flash", Price::new(0.30, 2.50, 0.03)),
    ("gemini-2.5-flash-lite", Price::new(0.10, 0.40, 0.01)),
    ("gemini-2.0-flash", Price::new(0.10, 0.40, 0.025)),
    ("gemini-2.0-flash-lite", Price::flat(0.075, 0.30)),
    // Mistral
    ("mistral-large", Price::flat(2.0, 6.0)),
    ("mistral-medium", Price::flat(0.40, 2.0)),
    ("mistral-small", Price::flat(0.10, 0.30)),
    ("codestral", Price::flat(0.30, 0.90)),
    ("open-mistral-nemo", Price::flat(0.15, 0.15)),
    ("ministral-8b", Price::flat(0.10, 0.10)),
    ("ministral-3b", Price::flat(0.04, 0.04)),
    // Llama on Groq
    ("llama-3.3-70b-versatile", Price::flat(0.59, 0.79)),
    ("llama-3.1-8b-instant", Price::flat(0.05, 0.08)),
    ("llama-4-scout-17b-16e-instruct", Price::flat(0.11, 0.34)),
    (
        "llama-4-maverick-17b-128e-instruct",
        Price::flat(0.20, 0.60),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_lookups() {
        assert_eq!(lookup("gpt-4o-mini").unwrap().input, 0.15);
        assert_eq!(lookup("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
        assert_eq!(lookup("gpt-4o-2024-08-06").unwrap().input, 2.50);
        assert_eq!(lookup("GPT-4O").unwrap().output, 10.0);
        assert_eq!(lookup("gpt-4.1-nano-2025-04-14").unwrap().output, 0.40);
        assert_eq!(lookup("o3-mini").unwrap().input, 1.10);
        assert_eq!(lookup("o3-2025-04-16").unwrap().input, 2.0);
        assert_eq!(lookup("claude-sonnet-4-5-20250929").unwrap().output, 15.0);
        assert_eq!(lookup("claude-opus-4-0").unwrap().input, 15.0);
        assert_eq!(lookup("claude-opus-4-5").unwrap().input, 5.0);
        assert_eq!(lookup("claude-3-5-sonnet@20240620").unwrap().input, 3.0);
        assert_eq!(lookup("claude-haiku-4-5").unwrap().cached_input, 0.1);
        assert_eq!(lookup("gemini-2.5-flash-lite").unwrap().input, 0.10);
        assert_eq!(
            lookup("gemini-2.5-flash-preview-05-20").unwrap().input,
            0.30
        );
        assert_eq!(lookup("mistral-large-latest").unwrap().input, 2.0);
    }

    #[test]
    fn vendor_prefixes_are_dropped() {
        assert_eq!(lookup("openai/gpt-4o").unwrap().input, 2.50);
        assert_eq!(
            lookup("meta-llama/llama-4-scout-17b-16e-instruct")
                .unwrap()
                .input,
            0.11
        );
        let bedrock = lookup("us.anthropic.claude-3-5-sonnet-20241022-v2:0").unwrap();
        assert_eq!(bedrock.input, 3.0);
        assert_eq!(
            lookup("anthropic.claude-3-haiku-20240307-v1:0")
                .unwrap()
                .input,
            0.25
        );
    }

    #[test]
    fn unknown_and_near_misses() {
        assert_eq!(lookup("my-gpt-4o-deployment"), None);
        assert_eq!(lookup("gpt-4ox"), None); // a prefix must end at a separator
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("llama3"), None);
    }

    #[test]
    fn cost_splits_cached_tokens() {
        let p = Price {
            input: 3.0,
            output: 15.0,
            cached_input: 0.3,
            cache_write: 3.75,
        };
        let u = Usage {
            input: 1_000_000,
            output: 100_000,
            cache_read: 500_000,
            cache_write: 100_000,
        };
        // 400k plain × 3 + 500k × 0.3 + 100k × 3.75 + 100k × 15, per million.
        let want = 1.2 + 0.15 + 0.375 + 1.5;
        assert!((cost(&p, &u) - want).abs() < 1e-9, "{}", cost(&p, &u));
        // Inconsistent usage (more cached than input) never goes negative.
        let odd = Usage {
            input: 10,
            output: 0,
            cache_read: 50,
            cache_write: 50,
        };
        assert!((cost(&p, &odd) - 10.0 * 0.3 / 1e6).abs() < 1e-12);
        assert!((estimate(&p, 1000, 1000) - 0.018).abs() < 1e-12);
    }
}
