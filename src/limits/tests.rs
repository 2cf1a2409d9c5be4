use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn limit(id: u32, meter: Meter, window: Window, cap: u64) -> Limit {
    Limit {
        slot: Arc::new(Slot::new(id, format!("test:{id}"), window, cap)),
        meter,
        scope: Scope::Key,
        who: "k".into(),
    }
}

const NOW: i64 = 1_764_687_845_000;

#[test]
fn a_refusal_by_one_limit_charges_none() {
    let pool: Arc<dyn Pool> = Arc::new(InProcess);
    let mut shard = Leases::new(pool, 1);
    let rpm = limit(0, Meter::Requests, Window::Secs(60), 100);
    let tpm = limit(1, Meter::Tokens(Side::Total), Window::Secs(60), 1_000);
    let both = [rpm.clone(), tpm.clone()];
    let mut c = Charges::default();
    let big = Demand {
        input: 600,
        output: 500,
        spend: 0,
    };
    let r = shard.admit(both.iter(), &big, NOW, &mut c).unwrap_err();
    assert_eq!(r.limit.slot.id, 1);
    assert!(r.retry_after_s >= 1 && r.retry_after_s <= 60);
    assert_eq!(
        shard.state(&rpm, NOW).remaining,
        100,
        "the request limit kept its count"
    );
    let small = Demand {
        input: 100,
        output: 100,
        spend: 0,
    };
    shard.admit(both.iter(), &small, NOW, &mut c).unwrap();
    assert_eq!(shard.state(&rpm, NOW).remaining, 99);
    assert_eq!(shard.state(&tpm, NOW).remaining, 800);
}

#[test]
fn tokens_settle_to_what_was_used() {
    let pool: Arc<dyn Pool> = Arc::new(InProcess);
    let mut shard = Leases::new(pool, 1);
    let tpm = [limit(
        0,
        Meter::Tokens(Side::Total),
        Window::Secs(60),
        1_000,
    )];
    let mut c = Charges::default();
    shard
        .admit(
            tpm.iter(),
            &Demand {
                input: 100,
                output: 400,
                spend: 0,
            },
            NOW,
            &mut c,
        )
        .unwrap();
    assert_eq!(shard.state(&tpm[0], NOW).remaining, 500);
    shard.settle(
        &c,
        &Actual {
            input: 100,
            output: 50,
            spend: 0,
        },
    );
    assert_eq!(shard.state(&tpm[0], NOW).remaining, 850);
    // More than reserved: taken from what is left, never below zero.
    shard
        .admit(
            tpm.iter(),
            &Demand {
                input: 10,
                output: 10,
                spend: 0,
            },
            NOW,
            &mut c,
        )
        .unwrap();
    shard.settle(
        &c,
        &Actual {
            input: 10,
            output: 2_000,
            spend: 0,
        },
    );
    assert_eq!(shard.state(&tpm[0], NOW).remaining, 0);
    assert_eq!(shard.overshoot, 2_010 - 20 - 830);
}

#[test]
fn concurrency_comes_back_when_requests_end() {
    let pool: Arc<dyn Pool> = Arc::new(InProcess);
    let (mut a, mut b) = (Leases::new(pool.clone(), 2), Leases::new(pool, 2));
    let par = [limit(0, Meter::Concurrent, Window::Forever, 3)];
    let d = Demand::default();
    let mut held = Vec::new();
    for on_a in [true, false, true] {
        let mut c = Charges::default();
        let shard = if on_a { &mut a } else { &mut b };
        shard.admit(par.iter(), &d, NOW, &mut c).unwrap();
        held.push(c);
    }
    let mut c = Charges::default();
    assert!(
        b.admit(par.iter(), &d, NOW, &mut c).is_err(),
        "three in flight"
    );
    a.settle(&held.pop().unwrap(), &Actual::default());
    a.release_all();
    b.admit(par.iter(), &d, NOW, &mut c).unwrap();
}

#[test]
fn a_new_window_starts_over() {
    let pool: Arc<dyn Pool> = Arc::new(InProcess);
    let mut shard = Leases::new(pool, 1);
    let rps = [limit(0, Meter::Requests, Window::Secs(1), 2)];
    let mut c = Charges::default();
    for _ in 0..2 {
        shard
            .admit(rps.iter(), &Demand::default(), NOW, &mut c)
            .unwrap();
    }
    assert!(
        shard
            .admit(rps.iter(), &Demand::default(), NOW, &mut c)
            .is_err()
    );
    shard
        .admit(rps.iter(), &Demand::default(), NOW + 1_000, &mut c)
        .unwrap();
}

/// Threads as shards, each with its own leases, against one request limit: exactly the limit
/// is admitted (never more; fewer only by what the others hold unspent, and here none is left
/// over because every thread keeps asking until the pool is dry).
#[test]
fn shards_together_admit_exactly_the_limit() {
    for shards in [2usize, 4, 8] {
        let pool: Arc<dyn Pool> = Arc::new(InProcess);
        let rpm = Arc::new([limit(0, Meter::Requests, Window::Secs(3600), 10_000)]);
        let threads: Vec<_> = (0..shards)
            .map(|_| {
                let (pool, rpm) = (pool.clone(), rpm.clone());
                std::thread::spawn(move || {
                    let mut leases = Leases::new(pool, shards);
                    let mut c = Charges::default();
                    let mut n = 0u64;
                    let mut refused = 0;
                    while refused < 1000 {
                        match leases.admit(rpm.iter(), &Demand::default(), NOW, &mut c) {
                            Ok(()) => n += 1,
                            Err(_) => refused += 1,
                        }
                    }
                    (n, leases.holds(0))
                })
            })
            .collect();
        let (admitted, held): (u64, u64) = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!(admitted + held, 10_000, "{shards} shards");
        assert!(admitted <= 10_000);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Admit {
        shard: usize,
        input: u64,
        output: u64,
    },
    Settle {
        shard: usize,
        which: usize,
        input: u64,
        output: u64,
    },
    Tick {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..300u64, 0..300u64).prop_map(|(shard, input, output)| Op::Admit {
            shard,
            input,
            output
        }),
        (0..3usize, 0..8usize, 0..400u64, 0..400u64).prop_map(|(shard, which, input, output)| {
            Op::Settle {
                shard,
                which,
                input,
                output,
            }
        }),
        (0..2_000i64).prop_map(|ms| Op::Tick { ms }),
    ]
}

proptest! {
    /// Whatever the interleaving of shards, reservations and settlements: requests admitted
    /// per window never pass the request limit, concurrency never passes its limit, and token
    /// use passes its limit only by what was used beyond reservations (the declared slack);
    /// no count ever goes negative (the pool's word would wrap).
    #[test]
    fn never_admits_past_the_limit_plus_slack(ops in prop::collection::vec(op(), 1..300)) {
        let pool: Arc<dyn Pool> = Arc::new(InProcess);
        let rps = limit(0, Meter::Requests, Window::Secs(1), 20);
        let tps = limit(1, Meter::Tokens(Side::Total), Window::Secs(1), 2_000);
        let par = limit(2, Meter::Concurrent, Window::Forever, 5);
        let all = [rps.clone(), tps.clone(), par.clone()];
        let mut shards: Vec<Leases> = (0..3).map(|_| Leases::new(pool.clone(), 3)).collect();
        let mut open: Vec<Vec<Charges>> = vec![Vec::new(); 3];
        let mut now = NOW;
        let mut admitted_in: std::collections::HashMap<u32, u64> = Default::default();
        let mut in_flight = 0u64;
        let mut used_beyond = std::collections::HashMap::<u32, u64>::new();
        let mut used_tokens = std::collections::HashMap::<u32, u64>::new();
        for op in ops {
            match op {
                Op::Admit { shard, input, output } => {
                    let mut c = Charges::default();
                    let d = Demand { input, output, spend: 0 };
                    if shards[shard].admit(all.iter(), &d, now, &mut c).is_ok() {
                        *admitted_in.entry(Window::Secs(1).index(now)).or_default() += 1;
                        in_flight += 1;
                        open[shard].push(c);
                        prop_assert!(in_flight <= 5);
                    }
                }
                Op::Settle { shard, which, input, output } => {
                    if !open[shard].is_empty() {
                        let at = which % open[shard].len();
                        let c = open[shard].remove(at);
                        let reserved = c_reserved(&c);
                        let w = c_window(&c);
                        *used_tokens.entry(w).or_default() += input + output;
                        *used_beyond.entry(w).or_default() += (input + output).saturating_sub(reserved);
                        shards[shard].settle(&c, &Actual { input, output, spend: 0 });
                        in_flight -= 1;
                    }
                }
                Op::Tick { ms } => now += ms,
            }
            let w = Window::Secs(1).index(now);
            prop_assert!(admitted_in.get(&w).copied().unwrap_or(0) <= 20);
            prop_assert!(rps.slot.granted(w) <= 20);
            prop_assert!(tps.slot.granted(w) <= 2_000, "the pool never grants past capacity");
            prop_assert!(par.slot.granted(0) <= 5);
        }
        for (w, used) in used_tokens {
            // Tokens charged in a window: within capacity, plus what went past reservations.
            let beyond = used_beyond.get(&w).copied().unwrap_or(0);
            prop_assert!(used <= 2_000 + beyond);
        }
    }
}

/// The token reservation of a request's charges (tests only peek at it).
fn c_reserved(c: &Charges) -> u64 {
    c.reserved(Meter::Tokens(Side::Total))
}

fn c_window(c: &Charges) -> u32 {
    c.window_of(Meter::Tokens(Side::Total))
}
