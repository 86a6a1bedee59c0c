//! Nanoseconds per frame on the data path: one member encapsulates an Ethernet frame read into
//! a buffer with headroom (FRAME built and sealed in place, datagrams laid out for the socket)
//! and the other decapsulates the datagrams in place back into the frame for its tap. 1400-
//! and 2800-byte frames (2800 is ZeroTier's default MTU: two datagrams, reassembled).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zt_node::sim::two_members_on_an_adhoc_network;
use zt_node::{Encapsulated, LocalSocketId, Received, DATAGRAMS_CAPACITY, FRAME_HEADROOM};
use zt_wire::ethernet::{EthernetHeader, ETHERNET_HEADER_LEN};
use zt_wire::mac::Mac;

fn data_path(c: &mut Criterion) {
    let (mut sim, a, b, nwid) = two_members_on_an_adhoc_network(1);
    let a_addr = sim.addrs[a];
    let now = sim.now;
    let (left, right) = sim.nodes.split_at_mut(b);
    let (node_a, node_b) = (&mut left[a], &mut right[0]);
    let header = EthernetHeader {
        destination: Mac::from_address(node_b.address(), nwid),
        source: Mac::from_address(node_a.address(), nwid),
        ethertype: 0x0800,
    };
    let mut frame_buffer = vec![0u8; FRAME_HEADROOM + ETHERNET_HEADER_LEN + 10_000];
    let mut out = vec![0u8; DATAGRAMS_CAPACITY];
    let mut receive = Vec::with_capacity(65_536);
    let mut g = c.benchmark_group("data_path");
    for len in [1400usize, 2800] {
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(
            BenchmarkId::new("encapsulate_decapsulate", len),
            &len,
            |bench, &len| {
                bench.iter(|| {
                    let start = FRAME_HEADROOM;
                    let frame = start..start + ETHERNET_HEADER_LEN + len;
                    header.emit(
                        (&mut frame_buffer[start..start + ETHERNET_HEADER_LEN])
                            .try_into()
                            .unwrap(),
                    );
                    let Encapsulated::Send(datagrams) =
                        node_a.encapsulate_frame(now, nwid, &mut frame_buffer, frame, &mut out)
                    else {
                        panic!("frame took the general path");
                    };
                    let mut delivered = 0;
                    for datagram in datagrams.layout.datagrams(&out) {
                        receive.clear();
                        receive.extend_from_slice(datagram);
                        if let Received::Frame { frame, .. } =
                            node_b.decapsulate(now, LocalSocketId(0), a_addr, &mut receive)
                        {
                            delivered = frame.len();
                        }
                    }
                    assert_eq!(delivered, ETHERNET_HEADER_LEN + len);
                })
            },
        );
        // The same frame through the event API, the path every frame took before the data
        // path existed: payload copied into a FRAME body, built in a new packet, split into
        // new datagrams, queued, and delivered as an event with its own payload copy.
        let payload = vec![0u8; len];
        g.bench_with_input(
            BenchmarkId::new("send_frame_handle_datagram", len),
            &len,
            |bench, _| {
                bench.iter(|| {
                    node_a
                        .send_frame(
                            now,
                            nwid,
                            header.source,
                            header.destination,
                            header.ethertype,
                            &payload,
                        )
                        .unwrap();
                    while let Some(t) = node_a.poll_transmit() {
                        node_b.handle_datagram(now, LocalSocketId(0), a_addr, &t.data);
                    }
                    let mut delivered = 0;
                    while let Some(event) = node_b.poll_event() {
                        if let zt_node::Event::Frame { payload, .. } = event {
                            delivered = payload.len();
                        }
                    }
                    assert_eq!(delivered, len);
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, data_path);
criterion_main!(benches);
