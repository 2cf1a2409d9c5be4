//! Translation between two wires: the upstream's adapter and the ingress's carry a request, a
//! response and a stream across through the canonical form. Same-wire pairs never come here;
//! they forward the client's and the upstream's own bytes.

use simd_json::BorrowedValue;

use super::adapter::{Adapter, Framing, Ingress, StreamDecode, StreamEncode};
use super::bedrock::eventstream;
use super::canonical::{ChatRequest, Event, MAX_TOOL_ARGUMENT_BYTES, MAX_TOOL_CALLS, Stamp};
use super::{Protocol, Usage};
use crate::error::{GatewayError, Kind};
use crate::http::sse;

/// A chat wire protocol, as an ingress speaks it or an upstream expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
    /// Google's Gemini API (`generateContent`).
    Gemini,
    /// OpenAI's Responses API.
    Responses,
}

impl Wire {
    /// The protocol of this wire.
    pub fn protocol(self) -> Protocol {
        match self {
            Wire::OpenAi => Protocol::OpenAi,
            Wire::Anthropic => Protocol::Anthropic,
            Wire::Gemini => Protocol::Gemini,
            Wire::Responses => Protocol::Responses,
        }
    }

    /// The protocol of this wire, as an upstream.
    pub fn adapter(self) -> &'static dyn Adapter {
        self.protocol().adapter()
    }

    /// The protocol of this wire, as clients speak it.
    pub fn ingress(self) -> &'static dyn Ingress {
        match self {
            Wire::OpenAi => &super::openai::OpenAi,
            Wire::Anthropic => &super::anthropic::Anthropic,
            Wire::Gemini => &super::gemini::Gemini,
            Wire::Responses => &super::responses::Responses,
        }
    }
}

/// What a translated request carries besides its bytes.
#[derive(Debug, Default)]
pub struct Translated {
    pub stream: bool,
    pub include_usage: bool,
    /// Request fields the upstream protocol cannot express, dropped (named for the client).
    pub dropped: Vec<String>,
}

fn parse<'a>(body: &'a mut [u8], what: Kind) -> Result<BorrowedValue<'a>, GatewayError> {
    simd_json::to_borrowed_value(body)
        .map_err(|e| GatewayError::new(what, format!("body is not valid JSON: {e}")))
}

/// Decodes an ingress request body (`body` is parsed in place) into the canonical form.
pub fn decode_request<'a>(
    from: Wire,
    v: &'a BorrowedValue<'a>,
) -> Result<ChatRequest<'a>, GatewayError> {
    from.ingress().decode_request(v)
}

/// Writes the upstream JSON body for a canonical request.
pub fn encode_request(
    to: &dyn Adapter,
    r: &ChatRequest<'_>,
    stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
    dropped: &mut Vec<String>,
) {
    to.encode_request(r, stamp, out, dropped)
}

/// Translates a whole request body from one wire to another.
pub fn request(
    from: Wire,
    to: &dyn Adapter,
    body: &mut [u8],
    stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
) -> Result<Translated, GatewayError> {
    request_as(from, to, body, stamp, out, None)
}

/// [`request`], streamed or not as `stream` says when the client's wire says so outside the
/// body (Gemini's method is in the path).
pub fn request_as(
    from: Wire,
    to: &dyn Adapter,
    body: &mut [u8],
    stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
    stream: Option<bool>,
) -> Result<Translated, GatewayError> {
    let v = parse(body, Kind::BadRequest)?;
    let mut r = decode_request(from, &v)?;
    if let Some(s) = stream {
        r.stream = s;
    }
    let mut t = Translated {
        stream: r.stream,
        include_usage: r.include_usage,
        dropped: r.ignored.iter().map(|s| s.to_string()).collect(),
    };
    encode_request(to, &r, stamp, out, &mut t.dropped);
    Ok(t)
}

/// Classifies an upstream's non-2xx answer (its own error body) into a gateway error.
pub fn classify(upstream: &dyn Adapter, status: u16, body: &[u8]) -> GatewayError {
    upstream.classify(status, body)
}

/// Translates a whole 2xx upstream response body into the ingress's shape; returns its usage.
pub fn response(
    upstream: &dyn Adapter,
    ingress: Wire,
    body: &mut [u8],
    stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
) -> Result<Usage, GatewayError> {
    let v = parse(body, Kind::UpstreamProtocol)?;
    let r = upstream.decode_response(&v)?;
    ingress.ingress().encode_response(&r, stamp, out);
    Ok(r.usage)
}

/// Translates an OpenAI embeddings request for `to`'s `model`; returns whether the client
/// wants base64 vectors back.
pub fn embed_request(
    to: &dyn Adapter,
    body: &mut [u8],
    model: &str,
    out: &mut Vec<u8>,
) -> Result<bool, GatewayError> {
    let v = parse(body, Kind::BadRequest)?;
    let r = super::openai::embed::decode_request(&v)?;
    to.encode_embeddings(&r, model, out)?;
    Ok(r.base64)
}

/// Translates a whole 2xx embeddings answer into OpenAI's list; returns its usage.
pub fn embed_response(
    upstream: &dyn Adapter,
    body: &mut [u8],
    model: &str,
    base64: bool,
    out: &mut Vec<u8>,
) -> Result<Usage, GatewayError> {
    let v = parse(body, Kind::UpstreamProtocol)?;
    let r = upstream.decode_embeddings(&v)?;
    super::openai::embed::encode_response(&r, model, base64, out);
    Ok(Usage {
        input: r.input_tokens,
        ..Usage::default()
    })
}

/// An upstream SSE event past the splitter's bound, as the client sees it.
pub fn event_too_large(e: sse::EventTooLarge) -> GatewayError {
    GatewayError::new(
        Kind::UpstreamTooLarge,
        format!("the upstream sent a stream event larger than {} bytes", e.0),
    )
}

/// Carries an upstream SSE stream across to the ingress's SSE shape, incrementally: feed it
/// bytes as they arrive (split anywhere), get whole events out.
pub struct StreamTranslator {
    splitter: sse::Splitter,
    /// For an upstream that frames its stream as AWS event-stream frames instead of SSE.
    frames: Option<eventstream::Frames>,
    decoder: Box<dyn StreamDecode>,
    encoder: Box<dyn StreamEncode>,
    data: Vec<u8>,
    usage: Option<Usage>,
    done: bool,
    bounds: Bounds,
}

/// What a translated answer has carried so far, against the canonical form's bounds.
#[derive(Default)]
struct Bounds {
    tool_calls: usize,
    argument_bytes: usize,
}

impl Bounds {
    fn exceeded(&self) -> bool {
        self.tool_calls > MAX_TOOL_CALLS || self.argument_bytes > MAX_TOOL_ARGUMENT_BYTES
    }

    fn error(&self) -> Option<GatewayError> {
        let what = if self.tool_calls > MAX_TOOL_CALLS {
            format!("more than {MAX_TOOL_CALLS} tool calls")
        } else if self.argument_bytes > MAX_TOOL_ARGUMENT_BYTES {
            format!("more than {MAX_TOOL_ARGUMENT_BYTES} bytes of tool-call arguments")
        } else {
            return None;
        };
        Some(GatewayError::new(
            Kind::UpstreamTooLarge,
            format!("the upstream stream carried {what}"),
        ))
    }
}

impl StreamTranslator {
    pub fn new(
        upstream: &dyn Adapter,
        ingress: Wire,
        stamp: &Stamp<'_>,
        include_usage: bool,
    ) -> Self {
        Self::decoding(
            upstream,
            ingress.ingress().stream_encoder(stamp, include_usage),
        )
    }

    /// Reads an upstream's stream into `encoder`, whatever it does with the events (the cache
    /// assembles a stored stream into one answer this way).
    pub fn decoding(upstream: &dyn Adapter, encoder: Box<dyn StreamEncode>) -> Self {
        let frames = (upstream.framing() == Framing::EventStream)
            .then(|| eventstream::Frames::new(sse::MAX_EVENT));
        StreamTranslator {
            splitter: sse::Splitter::default(),
            frames,
            decoder: upstream.stream_decoder(),
            encoder,
            data: Vec::new(),
            usage: None,
            done: false,
            bounds: Bounds::default(),
        }
    }

    /// Bounds one upstream event at `max_event` bytes (else [`sse::MAX_EVENT`]).
    pub fn bounded(mut self, max_event: usize) -> Self {
        self.splitter = sse::Splitter::new(max_event);
        if self.frames.is_some() {
            self.frames = Some(eventstream::Frames::new(max_event));
        }
        self
    }

    /// The latest usage the stream reported.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the upstream's end-of-stream event went through.
    pub fn done(&self) -> bool {
        self.done
    }

    /// At the end of the upstream's stream: translates an event that only its end completed.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), GatewayError> {
        let mut last = None;
        self.splitter.finish(|e| last = Some(e.to_vec()));
        match last {
            Some(mut event) => {
                // Its final CR ends the stream; as CRLF it ends the event in any splitter.
                event.push(b'\n');
                self.feed(&event, out)
            }
            None => Ok(()),
        }
    }

    /// Feeds upstream bytes; appends translated events to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), GatewayError> {
        let StreamTranslator {
            splitter,
            frames,
            decoder,
            encoder,
            data,
            usage,
            done,
            bounds,
        } = self;
        if let Some(frames) = frames {
            frames.push(input);
            while frames.next(data)? {
                translate_event(decoder, encoder, usage, done, bounds, data, out)?;
            }
            return Ok(());
        }
        let mut failure = None;
        let split = splitter.feed(input, |event| {
            if failure.is_some() {
                return;
            }
            data.clear();
            if !sse::data_into(event, data) {
                return;
            }
            if let Err(e) = translate_event(decoder, encoder, usage, done, bounds, data, out) {
                failure = Some(e);
            }
        });
        if let Err(e) = split {
            return Err(event_too_large(e));
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Decodes one upstream event's data and encodes what it says for the client.
fn translate_event(
    decoder: &mut Box<dyn StreamDecode>,
    encoder: &mut Box<dyn StreamEncode>,
    usage: &mut Option<Usage>,
    done: &mut bool,
    bounds: &mut Bounds,
    data: &mut [u8],
    out: &mut Vec<u8>,
) -> Result<(), GatewayError> {
    // The closure borrows the counts: it ends before they are checked.
    {
        let mut emit = |ev: Event<'_>| {
            match &ev {
                Event::Start { usage: u, .. } | Event::Usage(u) => *usage = Some(*u),
                Event::Done => *done = true,
                Event::ToolCall { .. } => bounds.tool_calls += 1,
                Event::ToolArguments { fragment, .. } => {
                    bounds.argument_bytes += fragment.len();
                }
                _ => {}
            }
            if bounds.exceeded() {
                return;
            }
            encoder.encode(&ev, out);
        };
        decoder.decode(data, &mut emit)?;
    }
    bounds.error().map_or(Ok(()), Err)
}
