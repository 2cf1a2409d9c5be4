use super::*;

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64, reasoning: u64) -> Usage {
    Usage {
        input,
        output,
        cache_read,
        cache_write,
        reasoning,
    }
}

fn cents(dollars: f64) -> i64 {
    (dollars * 100.0).round() as i64
}

// === the data file ===

#[test]
fn shipped_file_parses_without_problems() {
    let t = parse(DATA);
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert!(t.entries.len() >= 60, "{} rows", t.entries.len());
    // The table the gateway uses is the same parse.
    assert_eq!(shipped().entries.len(), t.entries.len());
}

#[test]
fn every_row_has_positive_prices() {
    for e in &parse(DATA).entries {
        let p = e.price;
        let name = e.name;
        assert!(p.input > 0.0, "{name}: input");
        assert!(p.cached_input > 0.0, "{name}: cache read");
        assert!(
            p.cached_input <= p.input,
            "{name}: a cache read dearer than input"
        );
        assert!(
            p.cache_write >= p.input,
            "{name}: a cache write cheaper than input"
        );
        if name.contains("embedding") {
            // Embedding models produce no output tokens.
            assert_eq!((p.output, p.reasoning), (0.0, 0.0), "{name}");
        } else {
            assert!(p.output > 0.0 && p.reasoning > 0.0, "{name}: output");
        }
    }
}

#[test]
fn every_provider_with_rows_names_one_https_source() {
    let sources: Vec<&str> = DATA.lines().filter(|l| l.starts_with("source ")).collect();
    for want in ["openai", "anthropic", "xai", "google", "mistral", "groq"] {
        let lines: Vec<&&str> = sources
            .iter()
            .filter(|l| l.split_ascii_whitespace().nth(1) == Some(want))
            .collect();
        assert_eq!(lines.len(), 1, "{want}: {lines:?}");
        assert!(lines[0].contains(" https://"), "{}", lines[0]);
    }
    // Rows, sources and dates are all checked by `parse`; a row naming no source fails it.
    assert!(
        !parse("source a https://a\nm 1 1 - - - b -\n")
            .problems
            .is_empty()
    );
}

#[test]
fn malformed_lines_are_problems_and_the_rest_still_parses() {
    let text = "\
        source  v  https://example.com/pricing\n\
        # a comment\n\
        good      1     2    0.5  -   -    v  2026-12-02\n\
        short     1     2    v\n\
        word      one   2    -    -   -    v  -\n\
        negative  -1    2    -    -   -    v  -\n\
        blank-in  -     2    -    -   -    v  -\n\
        nan       NaN   2    -    -   -    v  -\n\
        datey     1     2    -    -   -    v  02/12/2026\n\
        orphan    1     2    -    -   -    w  -\n\
        GOOD      3     4    -    -   -    v  -\n\
        source  v  https://example.com/again\n\
        source  x  http://example.com\n\
        source  unused  https://example.com/u\n\
    ";
    let t = parse(text);
    let lines: Vec<&str> = t
        .problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "line 4",
            "line 5",
            "line 6",
            "line 7",
            "line 8",
            "line 9",
            "line 12",
            "line 13",
            "line 10",
            "line 11",
            "source unused has no rows"
        ],
        "{:#?}",
        t.problems
    );
    // The one good row is kept, with `-` taking its defaults.
    assert_eq!(t.entries.len(), 1);
    assert_eq!(
        find(&t.entries, "good-2026"),
        Some(Price {
            input: 1.0,
            output: 2.0,
            cached_input: 0.5,
            cache_write: 1.0,
            reasoning: 2.0,
        })
    );
}

#[test]
fn an_empty_or_broken_table_prices_nothing() {
    assert!(find(&parse("").entries, "gpt-4o").is_none());
    assert!(find(&parse("gpt-4o 1 2 3\n").entries, "gpt-4o").is_none());
}

// === lookup ===

#[test]
fn exact_and_dated_lookups() {
    assert_eq!(lookup("gpt-4o-mini").unwrap().input, 0.15);
    assert_eq!(lookup("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
    assert_eq!(lookup("gpt-4o-2024-08-06").unwrap().input, 2.50);
    assert_eq!(lookup("GPT-4O").unwrap().output, 10.0);
    assert_eq!(lookup("gpt-4.1-nano-2025-04-14").unwrap().output, 0.40);
    assert_eq!(lookup("gpt-5.4-mini").unwrap().cached_input, 0.075);
    assert_eq!(lookup("gpt-5.5-2026-04-23").unwrap().output, 30.0);
    assert_eq!(lookup("gpt-5.6-luna").unwrap().cache_write, 0.25);
    assert_eq!(lookup("o3-mini").unwrap().input, 1.10);
    assert_eq!(lookup("o3-2025-04-16").unwrap().input, 2.0);
    assert_eq!(lookup("claude-sonnet-4-5-20250929").unwrap().output, 15.0);
    assert_eq!(lookup("claude-opus-4-0").unwrap().input, 15.0);
    assert_eq!(lookup("claude-opus-4-20250514").unwrap().input, 15.0);
    assert_eq!(lookup("claude-opus-4-5").unwrap().input, 5.0);
    assert_eq!(lookup("claude-opus-5-5").unwrap().input, 4.0);
    assert_eq!(lookup("claude-sonnet-5-5").unwrap().cached_input, 0.10);
    assert_eq!(lookup("claude-3-5-sonnet@20240620").unwrap().input, 3.0);
    assert_eq!(lookup("claude-haiku-4-5").unwrap().cached_input, 0.1);
    assert_eq!(lookup("claude-haiku-4-5").unwrap().cache_write, 1.25);
    assert_eq!(lookup("grok-4.20-0309-reasoning").unwrap().input, 1.25);
    assert_eq!(lookup("gemini-2.5-flash-lite").unwrap().input, 0.10);
    assert_eq!(
        lookup("gemini-2.5-flash-preview-05-20").unwrap().input,
        0.30
    );
    assert_eq!(lookup("mistral-large-latest").unwrap().input, 2.0);
    assert_eq!(lookup("text-embedding-3-small").unwrap().output, 0.0);
}

#[test]
fn vendor_and_bedrock_prefixes_are_dropped() {
    assert_eq!(lookup("openai/gpt-4o").unwrap().input, 2.50);
    assert_eq!(
        lookup("openrouter/anthropic/claude-opus-4-8")
            .unwrap()
            .input,
        5.0
    );
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
    assert_eq!(
        lookup("global.anthropic.claude-sonnet-4-6").unwrap().output,
        15.0
    );
    // A dot in a version number before the first dash is not a Bedrock prefix.
    assert_eq!(bare_name("Qwen/Qwen3.5-397B-A17B"), "Qwen3.5-397B-A17B");
    assert_eq!(bare_name("gpt-4.1-mini"), "gpt-4.1-mini");
    assert_eq!(bare_name("us.amazon.nova-pro-v1:0"), "nova-pro-v1:0");
}

#[test]
fn unknown_and_near_misses() {
    assert_eq!(lookup("my-gpt-4o-deployment"), None);
    assert_eq!(lookup("gpt-4ox"), None); // a prefix must end at a separator
    assert_eq!(lookup("gpt-5.1"), None); // `.` is no separator: not gpt-5
    assert_eq!(lookup("gpt-5.6-sol"), None); // left out of the table
    assert_eq!(lookup(""), None);
    assert_eq!(lookup("llama3"), None);
    assert_eq!(lookup("deepseek-chat"), None);
}

// === arithmetic ===

#[test]
fn cost_charges_every_bucket_at_its_own_rate() {
    let p = Price {
        input: 3.0,
        output: 15.0,
        cached_input: 0.3,
        cache_write: 3.75,
        reasoning: 20.0,
    };
    // A million tokens in each bucket: plain input, cache read, cache write, answer, reasoning.
    let u = usage(3_000_000, 2_000_000, 1_000_000, 1_000_000, 1_000_000);
    assert_eq!(cents(cost(&p, &u)), 300 + 30 + 375 + 1500 + 2000);
    // The shipped Sonnet 4.5 row, whose reasoning is priced as output.
    let sonnet = lookup("claude-sonnet-4-5").unwrap();
    assert_eq!(cents(cost(&sonnet, &u)), 300 + 30 + 375 + 1500 + 1500);
    // OpenAI reports no cache writes; gpt-5.4 reasoning is output too.
    let gpt = lookup("gpt-5.4").unwrap();
    let u = usage(2_000_000, 2_000_000, 1_000_000, 0, 1_000_000);
    assert_eq!(cents(cost(&gpt, &u)), 250 + 25 + 1500 + 1500);
}

#[test]
fn cost_clamps_inconsistent_usage() {
    let p = Price {
        input: 3.0,
        output: 15.0,
        cached_input: 0.3,
        cache_write: 3.75,
        reasoning: 20.0,
    };
    // More cached than input: never negative, the cached share capped at the input.
    let odd = usage(10, 0, 50, 50, 0);
    assert!((cost(&p, &odd) - 10.0 * 0.3 / 1e6).abs() < 1e-12);
    // More reasoning than output: all of the output is reasoning.
    let odd = usage(0, 10, 0, 0, 99);
    assert!((cost(&p, &odd) - 10.0 * 20.0 / 1e6).abs() < 1e-12);
    assert_eq!(cost(&p, &Usage::default()), 0.0);
}

#[test]
fn estimate_and_constructors() {
    let p = Price::new(3.0, 15.0, 0.3);
    assert_eq!((p.cache_write, p.reasoning), (3.0, 15.0));
    assert!((estimate(&p, 1000, 1000) - 0.018).abs() < 1e-12);
    let f = Price::flat(1.0, 2.0);
    assert_eq!(
        (f.cached_input, f.cache_write, f.reasoning),
        (1.0, 1.0, 2.0)
    );
}
