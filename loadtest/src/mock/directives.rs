//! Per-request behaviour directives and their sources: a `/mock/a=1,b=2/` path prefix,
//! `x-mock-NAME` headers, query parameters and a JSON `"mock"` object, applied in that order so
//! later sources win. Unknown names are a 400 error except in the query (other parameters are
//! legitimate there). Booleans accept `1/true/yes/on` (or a bare name) and `0/false/no/off`.
//! [`HELP`] describes every directive; `tools`, `thinking` and `stop_reason` shape what the
//! assistant says (see `reply.rs`), `cached_tokens` and `reasoning_tokens` what its usage
//! reports, the others how and when it is sent. The hostile ones (from
//! `sse_no_blank` on) exist for the gateway's hardening tests: each breaks one bound a gateway
//! must keep, and every size they take is capped at [`MAX_BYTES`] so the mock stays bounded.

/// How the mock should answer one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Directives {
    pub latency_ms: u64,
    pub status: Option<u16>,
    pub retry_after: Option<String>,
    pub chunks: u64,
    pub interval_ms: u64,
    pub drop_after: Option<u64>,
    pub malformed: bool,
    pub close: bool,
    pub hang: bool,
    pub dims: Option<u64>,
    /// Tool calls to answer with instead of text (0..=[`MAX_TOOLS`]).
    pub tools: u8,
    /// Reasoning before the answer; `None` leaves it to the request body.
    pub thinking: Option<bool>,
    /// A forced end of the answer; `None` lets the content decide.
    pub stop_reason: Option<StopReason>,
    /// Prompt tokens reported as read from the prompt cache, on top of the body's estimate.
    pub cached_tokens: u64,
    /// Reasoning tokens to report instead of the answer's own count (`None`: the answer's).
    pub reasoning_tokens: Option<u64>,

    // Hostile shapes (`stream.rs`, `wire.rs`); `None`, 0 and false are the ordinary answer.
    /// Bytes of `data:` lines with no blank line, sent instead of the stream's events.
    pub sse_no_blank: Option<u64>,
    /// Size of an extra event sent second.
    pub giant_event: Option<u64>,
    /// Bare CR line endings in the stream.
    pub cr_only: bool,
    /// Size the non-stream JSON body is padded to.
    pub huge_body: Option<u64>,
    /// A non-stream body sent chunked.
    pub huge_body_chunked: bool,
    /// Size of each tool call's arguments, sent as many small fragments.
    pub tool_args: Option<u64>,
    /// Bytes of chunk extension on every chunk-size line (0: none).
    pub chunk_ext: u64,
    /// A space before the CRLF of the first chunk-size line.
    pub chunk_size_garbage: bool,
    /// Pause between the bytes of the response head (0: one write).
    pub head_trickle_ms: u64,
    /// Bytes of extra headers in the response head (0: none).
    pub big_head: u64,
    /// Events sent before the stream stalls.
    pub stall_after: Option<u64>,
    /// Usage counts of `u64::MAX`.
    pub usage_huge: bool,
    /// Streams: events sent before the protocol's in-stream error ends the stream.
    pub error_after: Option<u64>,
    /// The status that in-stream error stands for (default 500).
    pub error_status: u16,
}

/// Why the answer ended, named as Anthropic does (`responses.rs` maps it to OpenAI's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    /// Never parsed from a directive: it follows from `tools` > 0.
    ToolUse,
    /// The provider refused or filtered the answer (OpenAI `content_filter`).
    Refusal,
}

impl StopReason {
    /// The `stop_reason` directive's values.
    fn parse(value: &str) -> Result<StopReason, String> {
        match value.trim() {
            "end_turn" => Ok(StopReason::EndTurn),
            "max_tokens" => Ok(StopReason::MaxTokens),
            "stop_sequence" => Ok(StopReason::StopSequence),
            "refusal" => Ok(StopReason::Refusal),
            other => Err(format!(
                "mock directive stop_reason: {other:?} is not max_tokens, stop_sequence, end_turn or refusal"
            )),
        }
    }

    pub fn anthropic(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::ToolUse => "tool_use",
            StopReason::Refusal => "refusal",
        }
    }

    /// Cohere v2's `finish_reason`.
    pub fn cohere(self) -> &'static str {
        match self {
            StopReason::EndTurn => "COMPLETE",
            StopReason::MaxTokens => "MAX_TOKENS",
            StopReason::StopSequence => "STOP_SEQUENCE",
            StopReason::ToolUse => "TOOL_CALL",
            StopReason::Refusal => "ERROR_TOXIC",
        }
    }

    /// Gemini's `finishReason` (a tool call ends with `STOP` there).
    pub fn gemini(self) -> &'static str {
        match self {
            StopReason::MaxTokens => "MAX_TOKENS",
            StopReason::Refusal => "SAFETY",
            _ => "STOP",
        }
    }

    pub fn openai(self) -> &'static str {
        match self {
            StopReason::EndTurn | StopReason::StopSequence => "stop",
            StopReason::MaxTokens => "length",
            StopReason::ToolUse => "tool_calls",
            StopReason::Refusal => "content_filter",
        }
    }
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            latency_ms: 0,
            status: None,
            retry_after: None,
            chunks: 8,
            interval_ms: 0,
            drop_after: None,
            malformed: false,
            close: false,
            hang: false,
            dims: None,
            tools: 0,
            thinking: None,
            stop_reason: None,
            cached_tokens: 0,
            reasoning_tokens: None,
            sse_no_blank: None,
            giant_event: None,
            cr_only: false,
            huge_body: None,
            huge_body_chunked: false,
            tool_args: None,
            chunk_ext: 0,
            chunk_size_garbage: false,
            head_trickle_ms: 0,
            big_head: 0,
            stall_after: None,
            usage_huge: false,
            error_after: None,
            error_status: 500,
        }
    }
}

/// Upper bound on `chunks` and `dims`, so a typo cannot make the mock build gigabytes.
const MAX_COUNT: u64 = 1_000_000;

/// Upper bound on every size in bytes (`sse_no_blank`, `giant_event`, `huge_body`, `tool_args`,
/// `chunk_ext`, `big_head`): larger values are clamped to it.
pub(crate) const MAX_BYTES: u64 = 256 << 20;

/// Upper bound on `tools`.
pub(crate) const MAX_TOOLS: u8 = 8;

/// The directive names the mock understands.
pub const NAMES: &[&str] = &[
    "latency_ms",
    "delay_ms",
    "status",
    "retry_after",
    "chunks",
    "interval_ms",
    "drop_after",
    "malformed",
    "close",
    "hang",
    "dims",
    "tools",
    "thinking",
    "stop_reason",
    "cached_tokens",
    "reasoning_tokens",
    "sse_no_blank",
    "giant_event",
    "cr_only",
    "huge_body",
    "huge_body_chunked",
    "tool_args",
    "chunk_ext",
    "chunk_size_garbage",
    "head_trickle_ms",
    "big_head",
    "stall_after",
    "usage_huge",
    "error_after",
    "error_status",
];

/// One entry per directive (continuation lines indented further), for `mock-upstream --help`.
pub const HELP: &str = concat!(
    "  latency_ms=N     wait N ms before the response head\n",
    "  delay_ms=N       the same as latency_ms\n",
    "  status=N         answer with this status (200 or 400..=599) and an error body\n",
    "  retry_after=S    send `retry-after: S`\n",
    "  chunks=N         text pieces (default 8): SSE content events, `tokN ` words, output tokens\n",
    "  interval_ms=N    wait N ms between SSE events\n",
    "  drop_after=N     close the connection after N SSE events (0, or any non-stream: no response)\n",
    "  malformed        a body or one SSE event that is not valid JSON\n",
    "  close            `connection: close` after the response\n",
    "  hang             never answer; hold the connection until the client closes it\n",
    "  dims=N           embedding dimensions (default: the body's `dimensions`, else 8)\n",
    "                   (a model named *words*, e.g. text-embedding-words: each vector is the\n",
    "                   L2-normalised bag of its input's lower-cased words, FNV-1a-hashed to dims)\n",
    "  tools=N          answer with N tool calls (0..=8) instead of text, named after the request's\n",
    "                   `tools` in order (cycling), or get_weather; arguments {\"city\":\"Paris\",\"call\":i};\n",
    "                   streams send each call's arguments in `chunks` fragments (at least 2)\n",
    "  thinking         reasoning first: an Anthropic thinking block with a signature, or OpenAI\n",
    "                   reasoning_content (default: on when the body enables Anthropic `thinking` or\n",
    "                   sets OpenAI `reasoning_effort`; thinking=0 turns it off)\n",
    "  stop_reason=R    max_tokens | stop_sequence | end_turn | refusal: force the finish (OpenAI length / stop / content_filter);\n",
    "                   stop_sequence answers carry \"stop_sequence\":\"###\" on Anthropic\n",
    "  cached_tokens=N  usage reports N prompt tokens read from the cache, on top of the body's\n",
    "                   estimate (OpenAI: prompt_tokens_details.cached_tokens, counted in\n",
    "                   prompt_tokens; Anthropic: cache_read_input_tokens, not in input_tokens)\n",
    "  reasoning_tokens=N  usage reports N reasoning tokens instead of the answer's own count, and\n",
    "                   the completion count moves with it (OpenAI:\n",
    "                   completion_tokens_details.reasoning_tokens; Anthropic: output_tokens only)\n",
    "  sse_no_blank=N   streams: instead of the events, N bytes of 100-byte `data: aaa` lines and\n",
    "                   never a blank line, then a proper end of the chunked body\n",
    "  giant_event=N    streams: an extra second event of exactly N bytes, one data line padded by\n",
    "                   a \"pad\" string (OpenAI: a chunk with no choices; Anthropic: a ping)\n",
    "  cr_only          streams: every SSE line ends with a bare CR (events end with CR CR)\n",
    "  huge_body=N      non-streams: the answer's text is padded with `a` until the body is N bytes\n",
    "  huge_body_chunked  non-streams: the body sent chunked (64 KiB chunks), not with content-length\n",
    "  tool_args=N      a tool-call answer (tools=1 unless set) whose arguments are each N bytes\n",
    "                   ({\"city\":\"Paris\",\"call\":i,\"pad\":\"aaa\"}, at most 32 MiB), streamed in\n",
    "                   16-byte fragments (one output token each)\n",
    "  chunk_ext=N      chunked bodies (a non-stream one too): every chunk-size line, the last 0\n",
    "                   included, carries an N-byte extension `;x=aaa` (at least 4 bytes)\n",
    "  chunk_size_garbage  chunked bodies (a non-stream one too): the first chunk-size line ends\n",
    "                   with a space before its CRLF (`5 \\r\\n`)\n",
    "  head_trickle_ms=N  write the response head one byte every N ms\n",
    "  big_head=N       N bytes of extra `x-pad-i: aaa` headers (1 KiB lines) in the response head\n",
    "  stall_after=N    streams: after N events, send nothing and keep the connection open for up\n",
    "                   to 60 s, then close it (the body unfinished)\n",
    "  usage_huge       every reported token count is u64::MAX (18446744073709551615); totals saturate\n",
    "  error_after=N    streams: after N events, the protocol's in-stream error ends the stream\n",
    "                   (Bedrock: an exception frame; Responses: an `error` event; Anthropic: an\n",
    "                   `error` event; OpenAI and Gemini: a data line with an error body)\n",
    "  error_status=S   the status that error stands for (400..=599, default 500; Bedrock 429 is a\n",
    "                   throttlingException, 503 serviceUnavailableException, 400\n",
    "                   validationException, 500 internalServerException, others\n",
    "                   modelStreamErrorException)\n",
);

fn num(name: &str, value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("mock directive {name}: {value:?} is not a non-negative integer"))
}

/// A size in bytes, clamped to [`MAX_BYTES`].
fn bytes(name: &str, value: &str) -> Result<u64, String> {
    Ok(num(name, value)?.min(MAX_BYTES))
}

fn flag(name: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("mock directive {name}: {value:?} is not a boolean")),
    }
}

impl Directives {
    /// Sets one directive. `Ok(false)` means the name is not a directive.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, String> {
        match name {
            "latency_ms" | "delay_ms" => self.latency_ms = num(name, value)?,
            "status" => {
                let s = num(name, value)?;
                if s != 200 && !(400..=599).contains(&s) {
                    return Err(format!(
                        "mock directive status: {s} is not 200 or 400..=599"
                    ));
                }
                self.status = Some(s as u16);
            }
            "retry_after" => self.retry_after = Some(value.trim().to_string()),
            "chunks" => self.chunks = num(name, value)?.min(MAX_COUNT),
            "interval_ms" => self.interval_ms = num(name, value)?,
            "drop_after" => self.drop_after = Some(num(name, value)?),
            "malformed" => self.malformed = flag(name, value)?,
            "close" => self.close = flag(name, value)?,
            "hang" => self.hang = flag(name, value)?,
            "dims" => self.dims = Some(num(name, value)?.clamp(1, MAX_COUNT)),
            "tools" => {
                let n = num(name, value)?;
                if n > MAX_TOOLS as u64 {
                    return Err(format!(
                        "mock directive tools: {n} is more than {MAX_TOOLS}"
                    ));
                }
                self.tools = n as u8;
            }
            "thinking" => self.thinking = Some(flag(name, value)?),
            "stop_reason" => self.stop_reason = Some(StopReason::parse(value)?),
            "cached_tokens" => self.cached_tokens = num(name, value)?,
            "reasoning_tokens" => self.reasoning_tokens = Some(num(name, value)?),
            "sse_no_blank" => self.sse_no_blank = Some(bytes(name, value)?),
            "giant_event" => self.giant_event = Some(bytes(name, value)?),
            "cr_only" => self.cr_only = flag(name, value)?,
            "huge_body" => self.huge_body = Some(bytes(name, value)?),
            "huge_body_chunked" => self.huge_body_chunked = flag(name, value)?,
            "tool_args" => self.tool_args = Some(bytes(name, value)?),
            "chunk_ext" => self.chunk_ext = bytes(name, value)?,
            "chunk_size_garbage" => self.chunk_size_garbage = flag(name, value)?,
            "head_trickle_ms" => self.head_trickle_ms = num(name, value)?,
            "big_head" => self.big_head = bytes(name, value)?,
            "stall_after" => self.stall_after = Some(num(name, value)?),
            "usage_huge" => self.usage_huge = flag(name, value)?,
            "error_after" => self.error_after = Some(num(name, value)?),
            "error_status" => {
                let s = num(name, value)?;
                if !(400..=599).contains(&s) {
                    return Err(format!("mock directive error_status: {s} is not 400..=599"));
                }
                self.error_status = s as u16;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets a directive from a source where only directives are expected (path prefix,
    /// `x-mock-*` header, body `mock` object): an unknown name is an error.
    pub fn set_strict(&mut self, name: &str, value: &str) -> Result<(), String> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        if self.set(&name, value)? {
            Ok(())
        } else {
            Err(format!(
                "unknown mock directive {name:?} (known: {})",
                NAMES.join(", ")
            ))
        }
    }

    /// Applies a path-prefix segment such as `latency_ms=50,chunks=3` (a bare name means true).
    pub fn apply_path_segment(&mut self, segment: &str) -> Result<(), String> {
        for item in segment.split(',').filter(|s| !s.is_empty()) {
            let item = percent_decode(item);
            let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
            self.set_strict(k, v)?;
        }
        Ok(())
    }

    /// Applies a query string: parameters that are not directives are ignored.
    pub fn apply_query(&mut self, query: &str) -> Result<(), String> {
        for item in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            let k = percent_decode(k);
            self.set(&k, &percent_decode(v))?;
        }
        Ok(())
    }
}

/// Decodes `%XX` escapes and `+` (space); invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a request target into (directive segment, route path, query).
/// `/mock/a=1/v1/x?q` gives `(Some("a=1"), "/v1/x", "q")`.
pub(crate) fn split_target(target: &str) -> (Option<&str>, &str, &str) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Some(rest) = path.strip_prefix("/mock/")
        && let Some(slash) = rest.find('/')
    {
        return (Some(&rest[..slash]), &rest[slash..], query);
    }
    // The guardrail webhook takes its directives after its path too (a URL a config names).
    if let Some(rest) = path.strip_prefix("/guardrail/")
        && !rest.is_empty()
        && !rest.contains('/')
    {
        return (Some(rest), "/guardrail", query);
    }
    (None, path, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        assert_eq!(
            split_target("/mock/latency_ms=5,hang/v1/chat/completions?x=1"),
            (Some("latency_ms=5,hang"), "/v1/chat/completions", "x=1")
        );
        assert_eq!(split_target("/mock/stats"), (None, "/mock/stats", ""));
        assert_eq!(split_target("/v1/models"), (None, "/v1/models", ""));
        assert_eq!(
            split_target("/guardrail/latency_ms=5?x"),
            (Some("latency_ms=5"), "/guardrail", "x")
        );
        assert_eq!(split_target("/guardrail"), (None, "/guardrail", ""));
    }

    #[test]
    fn sources() {
        let mut d = Directives::default();
        d.apply_path_segment("latency_ms=5,hang,chunks=3").unwrap();
        d.apply_query("api-version=1&chunks=4&retry_after=a%20b")
            .unwrap();
        assert_eq!(d.latency_ms, 5);
        assert!(d.hang);
        assert_eq!(d.chunks, 4);
        assert_eq!(d.retry_after.as_deref(), Some("a b"));
        assert!(d.set_strict("nope", "1").is_err());
        assert!(d.set_strict("Interval-Ms", "7").is_ok());
        assert_eq!(d.interval_ms, 7);
        assert!(d.set_strict("status", "abc").is_err());
    }

    #[test]
    fn answer_shape() {
        let mut d = Directives::default();
        d.apply_path_segment("tools=3,thinking,stop_reason=max_tokens")
            .unwrap();
        assert_eq!(d.tools, 3);
        assert_eq!(d.thinking, Some(true));
        assert_eq!(d.stop_reason, Some(StopReason::MaxTokens));
        d.apply_query("thinking=0&stop_reason=stop_sequence")
            .unwrap();
        assert_eq!(d.thinking, Some(false));
        assert_eq!(d.stop_reason, Some(StopReason::StopSequence));
        assert!(d.set_strict("tools", "9").is_err());
        assert!(d.set_strict("stop_reason", "tool_use").is_err());
        assert!(d.set_strict("stop_reason", "length").is_err());
    }

    #[test]
    fn usage_directives() {
        let mut d = Directives::default();
        assert_eq!((d.cached_tokens, d.reasoning_tokens), (0, None));
        d.apply_path_segment("cached_tokens=1500,reasoning-tokens=0")
            .unwrap();
        assert_eq!((d.cached_tokens, d.reasoning_tokens), (1500, Some(0)));
        d.apply_query("reasoning_tokens=120").unwrap();
        assert_eq!(d.reasoning_tokens, Some(120));
        assert!(d.set_strict("cached_tokens", "-3").is_err());
        assert!(d.set_strict("reasoning_tokens", "").is_err());
    }

    #[test]
    fn hostile_directives_parse_and_clamp() {
        let mut d = Directives::default();
        d.apply_path_segment(
            "sse_no_blank=10,giant_event=999999999999,cr_only,huge_body=5,huge_body_chunked,\
             tool_args=7,chunk_ext=3,chunk_size_garbage,head_trickle_ms=2,big_head=100,\
             stall_after=0,usage_huge",
        )
        .unwrap();
        assert_eq!(
            (d.sse_no_blank, d.giant_event, d.huge_body, d.tool_args),
            (Some(10), Some(MAX_BYTES), Some(5), Some(7))
        );
        assert_eq!((d.chunk_ext, d.head_trickle_ms, d.big_head), (3, 2, 100));
        assert_eq!(d.stall_after, Some(0));
        assert!(d.cr_only && d.huge_body_chunked && d.chunk_size_garbage && d.usage_huge);
        assert!(d.set_strict("big_head", "-1").is_err());
        assert!(d.set_strict("cr_only", "maybe").is_err());
        assert!(d.set_strict("chunk-ext", "1e9").is_err());
        d.apply_query("chunk_ext=999999999999").unwrap();
        assert_eq!(d.chunk_ext, MAX_BYTES);
        let plain = Directives::default();
        assert_eq!(
            (plain.chunk_ext, plain.big_head, plain.stall_after),
            (0, 0, None)
        );
    }

    #[test]
    fn help_covers_every_name() {
        for name in NAMES {
            assert!(
                HELP.lines().any(|l| l.trim_start().starts_with(name)),
                "{name} missing from HELP"
            );
        }
        assert_eq!(
            HELP.lines()
                .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
                .count(),
            NAMES.len()
        );
    }
}
