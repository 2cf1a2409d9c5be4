//! Criterion benchmarks of the semantic cache's lookup: `Index::nearest` over one scope of
//! 1,000 and of 10,000 entries of 1,536 dimensions (the size of common embedding models), the
//! query matching none of them (a miss scans every entry, the worst case) and matching one
//! (a hit scans the same and then records the use).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shardgate::cache::semantic::Index;

const DIMS: usize = 1536;

/// A deterministic pseudo-random vector (xorshift), components in -1..1.
fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..DIMS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn nearest(c: &mut Criterion) {
    let mut g = c.benchmark_group("semantic_nearest");
    for n in [1_000usize, 10_000] {
        let mut index = Index::new(n);
        for i in 0..n {
            assert!(index.insert(7, &vector(i as u64), i as u128, i64::MAX));
        }
        let miss = vector(u64::MAX);
        let hit = vector(n as u64 / 2);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("miss_{n}x{DIMS}"), |b| {
            b.iter(|| black_box(index.nearest(7, black_box(&miss), 0.95, 0)))
        });
        g.bench_function(format!("hit_{n}x{DIMS}"), |b| {
            b.iter(|| black_box(index.nearest(7, black_box(&hit), 0.95, 0)))
        });
        assert_eq!(
            index.nearest(7, &hit, 0.95, 0).map(|h| h.0),
            Some(n as u128 / 2)
        );
        assert_eq!(index.nearest(7, &miss, 0.95, 0), None);
    }
    g.finish();
}

criterion_group!(benches, nearest);
criterion_main!(benches);
