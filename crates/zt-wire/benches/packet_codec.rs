//! Packet codec throughput: header view, verb parsing, build (compress + armor + fragment),
//! decode (dearmor + decompress) and reassembly, on real identities from the captures.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use zt_crypto::armor::PeerKey;
use zt_crypto::{CipherSuite, Identity};
use zt_wire::fragment::{Reassembler, Reassembly};
use zt_wire::header::{HeaderRepr, PacketHeader, Verb};
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::{self, Frame, OutgoingPacket, Payload};

const MEMBER: &str = "a6c5664b6f:0:f1171dfc6e8330dea8d879b1509c756649c4e87821216b3a9eb7cf7daaac035a408c29349e1e6b66990a633bddcd87d20408785f73bc5f09b850a8421dd930e4:0454dc513f5295b9c5bd8eecf6f3699ad72e547044559d3371fadfd194eeedc6e17618fcf783fe0a192a80da0396c8fb0b1b83a27f7fa888e01889cd30a81753";
const CONTROLLER: &str = "51479cea31:0:8b548000c0f83fa4ef4a80b915993fc701fd2b392774af546713630774633b1b747fb6d327b198bc78a5f0922d9ec29d835664bc2a255b76148d60442417aa37";

fn key() -> PeerKey {
    let me = Identity::from_string(MEMBER).unwrap();
    let peer = Identity::from_string(CONTROLLER).unwrap();
    PeerKey::new(me.agree(&peer).unwrap())
}

fn frame_payload(len: usize) -> Vec<u8> {
    let ip: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
    Payload::Frame(Frame {
        nwid: NetworkId(0x51479cea31ccae5c),
        ethertype: 0x0800,
        payload: &ip,
    })
    .to_vec()
}

fn outgoing(payload: &[u8], suite: CipherSuite, compress: bool) -> OutgoingPacket<'_> {
    OutgoingPacket {
        destination: "51479cea31".parse().unwrap(),
        source: "a6c5664b6f".parse().unwrap(),
        verb: Verb::Frame,
        payload,
        packet_id: 0x1122334455667788,
        suite,
        compress,
        mtu: 1432,
    }
}

fn bench(c: &mut Criterion) {
    let key = key();
    let mut g = c.benchmark_group("packet");
    for len in [64usize, 1400, 8000] {
        let payload = frame_payload(len);
        g.throughput(Throughput::Bytes(payload.len() as u64));
        for (name, suite) in [
            ("salsa", CipherSuite::Poly1305Salsa2012),
            ("aes", CipherSuite::AesGmacSiv),
        ] {
            g.bench_with_input(
                BenchmarkId::new(format!("build_{name}"), len),
                &payload,
                |b, p| b.iter(|| verbs::build(&outgoing(p, suite, false), &key).unwrap()),
            );
            let built = verbs::build(&outgoing(&payload, suite, false), &key).unwrap();
            let whole = assembled(&built.datagrams);
            g.bench_with_input(
                BenchmarkId::new(format!("decode_{name}"), len),
                &whole,
                |b, w| b.iter(|| verbs::decode(w.clone(), &key).unwrap()),
            );
        }
        g.bench_with_input(BenchmarkId::new("parse_frame", len), &payload, |b, p| {
            b.iter(|| Payload::parse(Verb::Frame, black_box(p)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("build_aes_lz4", len), &payload, |b, p| {
            b.iter(|| verbs::build(&outgoing(p, CipherSuite::AesGmacSiv, true), &key).unwrap())
        });
    }
    let big = frame_payload(8000);
    let built = verbs::build(&outgoing(&big, CipherSuite::AesGmacSiv, false), &key).unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("reassemble_8000", |b| {
        b.iter(|| {
            let mut q = Reassembler::new();
            let mut out = None;
            for (i, d) in built.datagrams.iter().enumerate() {
                let r = if i == 0 {
                    q.on_head(0, d)
                } else {
                    q.on_fragment(0, d)
                };
                if let Ok(Reassembly::Complete(p)) = r {
                    out = Some(p);
                }
            }
            out.unwrap()
        })
    });
    g.bench_function("header_view", |b| {
        let d = &built.datagrams[0];
        b.iter(|| HeaderRepr::parse(&PacketHeader::new_checked(black_box(&d[..])).unwrap()))
    });
    g.finish();
}

/// Head plus fragment data: the assembled packet, without going through the queue.
fn assembled(datagrams: &[Vec<u8>]) -> Vec<u8> {
    let mut out = datagrams[0].clone();
    for f in &datagrams[1..] {
        out.extend_from_slice(&f[zt_wire::fragment::FRAGMENT_HEADER_LEN..]);
    }
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
