//! HTTP/1.1 on monoio, written for a proxy: bounded heads and bodies, `Expect: 100-continue`,
//! responses built into reusable buffers, and a chunked writer that sends every SSE event the
//! moment it is ready.
//!
//! The codec is our own, on `httparse` (the parser monoio-http itself uses): monoio-http's server
//! decoder has no header or body limits and no 100-continue, its encoder batches writes up to
//! ~8 KiB (which would hold SSE events back), and its client has no pool. Owning the few hundred
//! lines here keeps every one of those properties visible and tested.

pub mod chunked;
pub mod conn;
pub mod io;
pub mod request;
pub mod response;
pub mod sse;
