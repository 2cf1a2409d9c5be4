//! One whole request through the real pipeline, in process: a client on the same monoio runtime
//! sends a ~1 KB chat request over loopback to a shard, which proxies it to the canned mock
//! upstream (on its own thread) and relays the answer. Compare with `direct`, the same client
//! talking to the mock itself: the difference is the gateway's cost per request.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use loadtest::mock::{MockConfig, MockServer};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use shardgate::auth::KeyTable;
use shardgate::config::{self, AccessLog};
use shardgate::observe::log;
use shardgate::runtime::generation::{Generation, Tls};
use shardgate::runtime::shard::{Shard, accept_loop};
use shardgate::upstream;

fn request(addr: &str, model: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(950)
    );
    format!("POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// Sends `n` requests back to back on one keep-alive connection; returns the elapsed time.
async fn run(addr: std::net::SocketAddr, req: &[u8], n: u64) -> Duration {
    let mut s = TcpStream::connect_addr(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::with_capacity(8192);
    let start = Instant::now();
    for _ in 0..n {
        let (r, _) = s.write_all(req.to_vec()).await;
        r.unwrap();
        // Read until a whole Content-Length response is in.
        buf.clear();
        loop {
            let len = buf.len();
            buf.reserve(4096);
            let cap = buf.capacity();
            let (r, slice) = s
                .read(monoio::buf::IoBufMut::slice_mut(buf, len..cap))
                .await;
            buf = slice.into_inner();
            assert!(r.unwrap() > 0, "connection closed");
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end])
                    .unwrap()
                    .to_ascii_lowercase();
                let cl: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if buf.len() >= end + 4 + cl {
                    break;
                }
            }
        }
    }
    start.elapsed()
}

fn pipeline(c: &mut Criterion) {
    let mock = MockServer::start(MockConfig::default()).unwrap();
    let cfg = format!(
        "server: {{ listen: 127.0.0.1:0, admin_listen: off, shards: 1, access_log: off }}\n\
         providers: {{ up: {{ protocol: openai, base_url: \"{}/v1\" }} }}\n\
         models: {{ gpt-4o-mini: {{ targets: [ {{ provider: up, model: upstream-mini }} ] }} }}\n",
        mock.base_url()
    );
    let snapshot = Arc::new(config::load_str(&cfg, &|_| None).unwrap());
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(1)))
        .build()
        .unwrap();
    let (_writer, mut sinks) = log::start(&AccessLog::Off, 1).unwrap();
    let tls: Tls = upstream::tls::configs(&snapshot).unwrap().into();
    let gateway = rt.block_on(async {
        let generation = Generation::first(snapshot.clone(), &tls);
        let keys = Arc::new(KeyTable::build(Vec::new(), true).0);
        let shard = Rc::new(Shard::new(
            (0, 1),
            generation,
            keys,
            sinks.remove(0),
            1,
            shardgate::runtime::shard::Shared::standalone(),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        monoio::spawn(accept_loop(shard, listener));
        addr
    });
    let via_gateway = request(&gateway.to_string(), "gpt-4o-mini");
    let direct = request(&mock.addr().to_string(), "upstream-mini");
    let mut g = c.benchmark_group("whole_request");
    g.bench_function("direct_to_mock", |b| {
        b.iter_custom(|n| rt.block_on(run(mock.addr(), &direct, n)))
    });
    g.bench_function("through_gateway", |b| {
        b.iter_custom(|n| rt.block_on(run(gateway, &via_gateway, n)))
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
