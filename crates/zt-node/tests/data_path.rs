//! The data path on caller-owned buffers: `encapsulate_frame` turns a frame read into a
//! buffer with headroom into datagrams, `decapsulate` turns them back into the same frame in
//! place, both ways, for frames that fit one datagram and frames that are fragmented; and in
//! steady state neither allocates (a counting global allocator proves it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use zt_node::sim::two_members_on_an_adhoc_network;
use zt_node::{Encapsulated, LocalSocketId, Node, Received, DATAGRAMS_CAPACITY, FRAME_HEADROOM};
use zt_wire::ethernet::{EthernetHeader, ETHERNET_HEADER_LEN};
use zt_wire::mac::Mac;
use zt_wire::network_id::NetworkId;

/// Counts the allocations of the current thread (tests run on several threads).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the thread-local
// counter has a const initialiser and no destructor, so using it here never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// The buffers a data-path worker owns.
struct Buffers {
    frame: Vec<u8>,
    out: Vec<u8>,
    receive: Vec<u8>,
}

impl Buffers {
    fn new() -> Buffers {
        Buffers {
            frame: vec![0; FRAME_HEADROOM + ETHERNET_HEADER_LEN + 10_000],
            out: vec![0; DATAGRAMS_CAPACITY],
            receive: Vec::with_capacity(65_536),
        }
    }
}

/// One frame from `from`'s tap to `to`'s tap through the data-path API; returns the header
/// `to` writes to its tap and how many datagrams carried it. Panics if the frame takes the
/// general path or arrives changed.
fn carry(
    (from, from_addr): (&mut Node, std::net::SocketAddr),
    to: &mut Node,
    (now, nwid): (u64, NetworkId),
    header: EthernetHeader,
    payload: &[u8],
    buffers: &mut Buffers,
) -> Option<(EthernetHeader, usize)> {
    let start = FRAME_HEADROOM;
    let frame = start..start + ETHERNET_HEADER_LEN + payload.len();
    header.emit(
        (&mut buffers.frame[start..start + ETHERNET_HEADER_LEN])
            .try_into()
            .unwrap(),
    );
    buffers.frame[start + ETHERNET_HEADER_LEN..frame.end].copy_from_slice(payload);
    let sent = from.encapsulate_frame(now, nwid, &mut buffers.frame, frame, &mut buffers.out);
    let Encapsulated::Send(datagrams) = sent else {
        panic!("frame took the general path: {sent:?}");
    };
    let mut delivered = None;
    for datagram in datagrams.layout.datagrams(&buffers.out) {
        buffers.receive.clear();
        buffers.receive.extend_from_slice(datagram);
        if let Received::Frame { nwid: got, frame } =
            to.decapsulate(now, LocalSocketId(0), from_addr, &mut buffers.receive)
        {
            assert_eq!(got, nwid);
            assert_eq!(
                &buffers.receive[frame.start + ETHERNET_HEADER_LEN..frame.end],
                payload
            );
            delivered = Some((
                EthernetHeader::parse(&buffers.receive[frame.clone()]).unwrap(),
                datagrams.layout.count,
            ));
        }
    }
    delivered
}

#[test]
fn frames_cross_in_place_both_ways_without_allocating() {
    let (mut sim, a, b, nwid) = two_members_on_an_adhoc_network(7);
    let (a_addr, b_addr) = (sim.addrs[a], sim.addrs[b]);
    let at = (sim.now, nwid);
    let (left, right) = sim.nodes.split_at_mut(b);
    let (node_a, node_b) = (&mut left[a], &mut right[0]);
    let mac_a = Mac::from_address(node_a.address(), nwid);
    let mac_b = Mac::from_address(node_b.address(), nwid);
    let a_to_b = EthernetHeader {
        destination: mac_b,
        source: mac_a,
        ethertype: 0x0800,
    };
    let b_to_a = EthernetHeader {
        destination: mac_a,
        source: mac_b,
        ethertype: 0x86dd,
    };
    let mut buffers = Buffers::new();
    // 1300 bytes fit one 1432-byte datagram; 2800 (ZeroTier's default MTU) take two.
    let payloads: Vec<Vec<u8>> = [1300usize, 2800]
        .iter()
        .map(|&len| (0..len).map(|i| (i * 7) as u8).collect())
        .collect();
    let mut round_trip = |payload: &[u8], buffers: &mut Buffers| {
        let there = carry((&mut *node_a, a_addr), node_b, at, a_to_b, payload, buffers);
        let back = carry((&mut *node_b, b_addr), node_a, at, b_to_a, payload, buffers);
        assert_eq!(there.map(|(h, _)| h), Some(a_to_b));
        assert_eq!(back.map(|(h, _)| h), Some(b_to_a));
        there.map_or(0, |(_, count)| count)
    };

    // Warm up: the reassembly queue and the replay window reach their steady size.
    for round in 0..300 {
        round_trip(&payloads[round % 2], &mut buffers);
    }
    let before = allocations();
    let mut datagrams_per_size = [0usize; 2];
    for round in 0..200 {
        datagrams_per_size[round % 2] = round_trip(&payloads[round % 2], &mut buffers);
    }
    let allocated = allocations() - before;
    assert_eq!(
        datagrams_per_size,
        [1, 2],
        "1300 B in one datagram, 2800 B fragmented"
    );
    assert_eq!(allocated, 0, "heap allocations in 400 steady-state frames");
    // Control traffic is not part of the data path; nothing was left waiting there.
    assert!(node_a.poll_transmit().is_none() && node_b.poll_transmit().is_none());
}

#[test]
fn a_frame_without_headroom_or_to_an_unknown_member_takes_the_general_path() {
    let (mut sim, a, b, nwid) = two_members_on_an_adhoc_network(8);
    let now = sim.now;
    let mac_a = Mac::from_address(sim.nodes[a].address(), nwid);
    let mac_b = Mac::from_address(sim.nodes[b].address(), nwid);
    let mut buffers = Buffers::new();
    let header = EthernetHeader {
        destination: mac_b,
        source: mac_a,
        ethertype: 0x0800,
    };
    header.emit(
        (&mut buffers.frame[..ETHERNET_HEADER_LEN])
            .try_into()
            .unwrap(),
    );
    let frame = 0..ETHERNET_HEADER_LEN + 100;
    // No headroom: still sent, through the control queue.
    assert_eq!(
        sim.nodes[a].encapsulate_frame(
            now,
            nwid,
            &mut buffers.frame,
            frame.clone(),
            &mut buffers.out
        ),
        Encapsulated::Queued
    );
    assert!(sim.nodes[a].poll_transmit().is_some());
    // A runt is dropped with a reason.
    assert!(matches!(
        sim.nodes[a].encapsulate_frame(now, nwid, &mut buffers.frame, 0..10, &mut buffers.out),
        Encapsulated::Dropped(zt_node::FrameError::Malformed)
    ));
    // A member nobody has heard of: WHOIS first, through the general path.
    let stranger = Mac::from_address(zt_node::Address::new(0x1234567890).unwrap(), nwid);
    let header = EthernetHeader {
        destination: stranger,
        source: mac_a,
        ethertype: 0x0800,
    };
    let start = FRAME_HEADROOM;
    header.emit(
        (&mut buffers.frame[start..start + ETHERNET_HEADER_LEN])
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        sim.nodes[a].encapsulate_frame(
            now,
            nwid,
            &mut buffers.frame,
            start..start + ETHERNET_HEADER_LEN + 100,
            &mut buffers.out
        ),
        Encapsulated::Queued
    );
}
