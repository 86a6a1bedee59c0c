//! Criterion benchmarks: identity generation and validation (the memory-hard hash), C25519
//! signing and verification, and armor+dearmor throughput per cipher suite at the default
//! physical MTU (1432) and at a 2800-byte network MTU packet.
//!
//! Run: `cargo bench -p zt-crypto -- --warm-up-time 1 --measurement-time 3`.

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::hint::black_box;
use std::time::Duration;
use zt_crypto::armor::{armor, dearmor, CipherSuite, PeerKey};
use zt_crypto::Identity;

/// Criterion measurement by this thread's CPU time instead of wall time. The machine the
/// benchmarks run on is shared with parallel builds; CPU time leaves out the time the thread
/// spent descheduled. Reported like wall time (ns/µs/ms, bytes per second).
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, started: ThreadTime) -> Duration {
        started.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

type Crit = Criterion<ThreadCpuTime>;

fn identities(c: &mut Crit) {
    let mut group = c.benchmark_group("identity");
    group.sample_size(10);
    let mut rng = StdRng::seed_from_u64(42);
    group.bench_function("generate", |b| b.iter(|| Identity::generate(&mut rng)));
    let id = Identity::generate(&mut rng).to_public();
    group.bench_function("locally_validate", |b| {
        b.iter(|| black_box(&id).locally_validate())
    });
    let signer = Identity::generate(&mut rng);
    let msg = [0x5au8; 200];
    group.bench_function("sign", |b| {
        b.iter(|| signer.sign(black_box(&msg)).expect("has private key"))
    });
    let signature = signer.sign(&msg).expect("has private key");
    group.bench_function("verify", |b| {
        b.iter(|| signer.verify(black_box(&msg), &signature))
    });
    group.finish();
}

fn packet_armor(c: &mut Crit) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut raw = [0u8; 48];
    rng.fill_bytes(&mut raw);
    let key = PeerKey::new(raw);
    for (name, suite) in [
        ("poly1305_none", CipherSuite::Poly1305None),
        ("salsa2012_poly1305", CipherSuite::Poly1305Salsa2012),
        ("aes_gmac_siv", CipherSuite::AesGmacSiv),
    ] {
        let mut group = c.benchmark_group(format!("armor_dearmor/{name}"));
        for len in [1432usize, 2800] {
            let mut template = vec![0u8; len];
            rng.fill_bytes(&mut template);
            template[18] = (suite as u8) << 3;
            // One armor plus one dearmor per iteration: bytes count once per direction.
            group.throughput(Throughput::Bytes(2 * len as u64));
            let mut pkt = template.clone();
            // Dearmor restores the plaintext, so the same buffer is reused every iteration.
            group.bench_function(format!("{len}"), |b| {
                b.iter(|| {
                    armor(&mut pkt, &key, suite);
                    dearmor(black_box(&mut pkt), &key).expect("own packet");
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = identities, packet_armor
}
criterion_main!(benches);
