//! The VL1 receive pipeline (PROTOCOL.md §3.11) and the VL1 verb handlers (§4.1–4.6, 4.9,
//! 4.13, 4.17). Byte formats come from `zt-wire`; this module decides what to do. Nothing
//! here panics on wire input: every failure is a counted drop.

use crate::constants::*;
use crate::node::{Event, Inbound, LocalSocketId, Node};
use crate::path::{canonical, ip_scope, scope_allows_contact, IpScope};
use crate::peer::RemoteVersion;
use crate::topology::WorldUpdate;
use crate::whois::PendingRx;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use zt_crypto::{Identity, PeerKey};
use zt_wire::ethernet::{EthernetHeader, ETHERNET_HEADER_LEN};
use zt_wire::fragment::{Fragment, Offered};
use zt_wire::header::{field, is_fragment, PacketHeader, Verb, LEGACY_BEACON_LEN};
use zt_wire::inet::InetAddress;
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::error::{ErrorBody, ErrorCode, ErrorPayload};
use zt_wire::verbs::hello::{peek_identity, Hello, WORLD_TYPE_MOON};
use zt_wire::verbs::ok::{OkBody, OkHello, OkPayload};
use zt_wire::verbs::packet::{decode, decode_in_place, DecodeError};
use zt_wire::verbs::push_direct_paths::{
    PathAddress, PushDirectPaths, PATH_FLAG_CLUSTER_REDIRECT, PATH_FLAG_FORGET,
};
use zt_wire::verbs::rendezvous::Rendezvous;
use zt_wire::verbs::user_message::UserMessage;
use zt_wire::verbs::whois::Whois;
use zt_wire::world::World;
use zt_wire::Reader;

/// What [`Node::decapsulate`] leaves for the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An Ethernet frame for the TAP of `nwid`: `buffer[frame]`, header included, made in
    /// place in the caller's buffer.
    Frame {
        nwid: NetworkId,
        frame: Range<usize>,
    },
    /// Nothing for the TAP: control traffic (whose answers wait in `poll_transmit`), a piece
    /// of a packet still being reassembled, or a drop (counted in [`crate::Stats`]).
    Consumed,
}

/// A frame that arrived in the packet being decapsulated, to be made in place once the
/// handlers are done with the packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InPlaceDelivery {
    pub nwid: NetworkId,
    pub header: EthernetHeader,
    /// The Ethernet payload is the last `payload_len` bytes of the packet.
    pub payload_len: usize,
}

/// The packet [`Node::decapsulate`] is dispatching: where its plaintext ends (an address,
/// compared, never dereferenced) and the frame found in it.
#[derive(Debug, Default)]
pub(crate) struct InPlaceReceive {
    pub packet_end: Option<usize>,
    pub delivery: Option<InPlaceDelivery>,
}

impl Node {
    /// One UDP datagram received on `local_socket` from `remote`. Frames for a TAP come out
    /// as [`Event::Frame`]; the data path uses [`Node::decapsulate`] instead.
    pub fn handle_datagram(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        data: &[u8],
    ) {
        let mut buffer = std::mem::take(&mut self.rx_scratch);
        buffer.clear();
        buffer.extend_from_slice(data);
        let received = self.decapsulate(now, local_socket, remote, &mut buffer);
        self.frame_to_event(&buffer, received);
        self.rx_scratch = buffer;
    }

    /// Turn a frame made in place into an [`Event::Frame`] (for callers of the event API).
    fn frame_to_event(&mut self, buffer: &[u8], received: Received) {
        let Received::Frame { nwid, frame } = received else {
            return;
        };
        let Some(header) = buffer.get(frame.clone()).and_then(EthernetHeader::parse) else {
            return;
        };
        self.events.push_back(Event::Frame {
            nwid,
            src_mac: header.source,
            dst_mac: header.destination,
            ethertype: header.ethertype,
            payload: buffer[frame.start + ETHERNET_HEADER_LEN..frame.end].to_vec(),
        });
    }

    /// The data path's receive: `buffer` holds one UDP datagram received on `local_socket`
    /// from `remote`; it is reassembled, authenticated and decrypted in place, and a frame
    /// for a TAP is made in place too (see [`Received`]). Give `buffer` a capacity of at
    /// least [`zt_wire::header::MAX_PACKET_LEN`] so that reassembly never grows it: then a
    /// unicast frame from a known member costs no allocation.
    pub fn decapsulate(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        buffer: &mut Vec<u8>,
    ) -> Received {
        let now = self.clock(now);
        self.stats.rx_datagrams += 1;
        self.stats.rx_bytes += buffer.len() as u64;
        if buffer.len() == LEGACY_BEACON_LEN {
            self.stats.legacy_beacons += 1;
            return Received::Consumed;
        }
        if buffer.len() < FRAGMENT_HEADER_LEN {
            self.stats.dropped_runt += 1;
            return Received::Consumed;
        }
        let offered = if is_fragment(buffer) {
            let Ok(fragment) = Fragment::new_checked(&buffer[..]) else {
                self.stats.dropped_bad_fragment += 1;
                return Received::Consumed;
            };
            if fragment.destination() != self.address() {
                self.relay(now, local_socket, remote, buffer.to_vec(), true);
                return Received::Consumed;
            }
            self.reassembler.offer_fragment(now, buffer)
        } else {
            let Ok(head) = PacketHeader::new_checked(&buffer[..]) else {
                self.stats.dropped_runt += 1;
                return Received::Consumed;
            };
            if head.destination() != self.address() {
                self.relay(now, local_socket, remote, buffer.to_vec(), false);
                return Received::Consumed;
            }
            if !head.is_fragmented() {
                return self.process_packet(now, local_socket, remote, buffer);
            }
            self.reassembler.offer_head(now, buffer)
        };
        let whole = match offered {
            Ok(Offered::Complete(whole)) => whole,
            Ok(Offered::Pending) => return Received::Consumed,
            Ok(Offered::Duplicate) => {
                self.stats.fragments_duplicate += 1;
                return Received::Consumed;
            }
            Err(_) => {
                self.stats.dropped_bad_fragment += 1;
                return Received::Consumed;
            }
        };
        if self.reassembler.assemble_into(whole, buffer).is_err() {
            self.stats.dropped_bad_fragment += 1;
            return Received::Consumed;
        }
        self.process_packet(now, local_socket, remote, buffer)
    }

    /// A packet that waited for its sender's identity, now known.
    pub(crate) fn process_queued_packet(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        mut packet: Vec<u8>,
    ) {
        let received = self.process_packet(now, local_socket, remote, &mut packet);
        self.frame_to_event(&packet, received);
    }

    /// An assembled packet addressed to us: authenticate, decrypt, decompress and dispatch,
    /// all in `pkt`.
    pub(crate) fn process_packet(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        pkt: &mut Vec<u8>,
    ) -> Received {
        let Ok(head) = PacketHeader::new_checked(&pkt[..]) else {
            self.stats.dropped_runt += 1;
            return Received::Consumed;
        };
        let source = head.source();
        if source == self.address() || source.is_reserved() {
            self.stats.dropped_bad_source += 1;
            return Received::Consumed;
        }
        let suite = head.cipher_bits();
        if suite == 2 || suite > 3 {
            self.stats.dropped_unsupported_cipher += 1;
            return Received::Consumed;
        }
        if suite == 0 && Verb::from_verb_byte(head.verb_byte()) == Verb::Hello {
            self.handle_hello(now, local_socket, remote, pkt.clone());
            return Received::Consumed;
        }
        let Some(peer) = self.peers.get(&source) else {
            if self.whois.queue_rx(PendingRx {
                source,
                local_socket,
                remote,
                packet: pkt.clone(),
                created: now,
            }) {
                self.stats.rx_queue_dropped += 1;
            }
            self.request_whois(now, source);
            return Received::Consumed;
        };
        let header = match decode_in_place(pkt, &peer.key) {
            Ok((header, _suite)) => header,
            Err(e) => {
                self.count_decode_error(&e);
                return Received::Consumed;
            }
        };
        let packet_id = header.packet_id;
        if !self.replay.check_and_insert(source.to_u64(), packet_id) {
            self.stats.dropped_replay += 1;
            return Received::Consumed;
        }
        self.stats.rx_packets += 1;
        let from = Inbound {
            now,
            local_socket,
            remote,
            source,
            hops: header.flags.hops(),
            packet_id,
        };
        self.in_place = InPlaceReceive {
            packet_end: Some(pkt.as_ptr_range().end as usize),
            delivery: None,
        };
        self.dispatch(&from, header.verb, &pkt[field::PAYLOAD..]);
        let delivery = std::mem::take(&mut self.in_place).delivery;
        let Some(delivery) = delivery else {
            return Received::Consumed;
        };
        // The payload is the packet's tail, behind at least the packet header, so the
        // Ethernet header fits in front of it.
        let Some(start) = pkt
            .len()
            .checked_sub(delivery.payload_len + ETHERNET_HEADER_LEN)
        else {
            return Received::Consumed;
        };
        let header_bytes: &mut [u8; ETHERNET_HEADER_LEN] =
            match (&mut pkt[start..start + ETHERNET_HEADER_LEN]).try_into() {
                Ok(bytes) => bytes,
                Err(_) => return Received::Consumed,
            };
        delivery.header.emit(header_bytes);
        Received::Frame {
            nwid: delivery.nwid,
            frame: start..pkt.len(),
        }
    }

    fn count_decode_error(&mut self, e: &DecodeError) {
        match e {
            DecodeError::Dearmor(_) => self.stats.dropped_bad_mac += 1,
            DecodeError::Wire(_) => self.stats.dropped_decompress += 1,
        }
    }

    fn dispatch(&mut self, from: &Inbound, verb: Verb, payload: &[u8]) {
        self.stats.packets_received.count(verb);
        match verb {
            Verb::Ok => return self.handle_ok(from, payload),
            // A HELLO under suite 1/3 from a known peer is already authenticated.
            Verb::Hello => return self.handle_authenticated_hello(from, payload),
            _ => {}
        }
        self.peer_received(from, verb);
        match verb {
            Verb::Nop => {}
            Verb::Error => self.handle_error(from, payload),
            Verb::Whois => self.handle_whois(from, payload),
            Verb::Rendezvous => self.handle_rendezvous(from, payload),
            Verb::Echo => self.handle_echo(from, payload),
            Verb::PushDirectPaths => self.handle_push_direct_paths(from, payload),
            Verb::UserMessage => self.handle_user_message(from, payload),
            Verb::Ack | Verb::QosMeasurement | Verb::PathNegotiationRequest => {
                self.stats.bonding_ignored += 1
            }
            Verb::Frame
            | Verb::ExtFrame
            | Verb::MulticastLike
            | Verb::NetworkCredentials
            | Verb::NetworkConfigRequest
            | Verb::NetworkConfig
            | Verb::MulticastGather
            | Verb::MulticastFrame
            | Verb::RemoteTrace => self.vl2_packet(from, verb, payload),
            Verb::Unknown(_) => self.stats.unknown_verbs += 1,
            Verb::Ok | Verb::Hello => {}
        }
    }

    /// Bookkeeping for every authenticated packet (`Peer::received`): activity, path
    /// learning (only from OK), HELLO back to unknown paths, and PUSH_DIRECT_PATHS when
    /// trust is established.
    fn peer_received(&mut self, from: &Inbound, verb: Verb) {
        let now = from.now;
        let Some(peer) = self.peers.get_mut(&from.source) else {
            return;
        };
        peer.last_receive = now;
        if matches!(
            verb,
            Verb::Frame
                | Verb::ExtFrame
                | Verb::NetworkConfigRequest
                | Verb::NetworkConfig
                | Verb::MulticastFrame
        ) {
            peer.last_nontrivial_receive = now;
        }
        // A direct packet on a path the peer does not have yet; only such a path is checked
        // against the path policy (a scan of prefixes, too much for every packet).
        let unknown_path = from.hops == 0
            && match peer.path_mut(from.local_socket, from.remote) {
                Some(path) => {
                    path.last_receive = now;
                    false
                }
                None => true,
            };
        let push_due = peer.trust_established(now) && {
            let interval = if from.hops == 0 {
                DIRECT_PATH_PUSH_INTERVAL_HAVE_PATH
            } else {
                DIRECT_PATH_PUSH_INTERVAL
            };
            peer.last_direct_path_push_sent
                .is_none_or(|t| now.saturating_sub(t) >= interval)
        };
        if push_due {
            peer.last_direct_path_push_sent = Some(now);
        }
        let mut contact = false;
        let mut learned = false;
        if unknown_path && self.path_allowed(from.source, from.remote) {
            if let Some(peer) = self.peers.get_mut(&from.source) {
                if verb == Verb::Ok {
                    learned = peer.learn_path(now, from.local_socket, from.remote);
                } else {
                    contact = peer.rate_gate_unknown_path(now, from.remote);
                }
            }
        }
        if learned {
            self.events.push_back(Event::PathUp {
                peer: from.source,
                local_socket: from.local_socket,
                remote: from.remote,
            });
        }
        if contact {
            self.attempt_to_contact(now, from.source, Some(from.local_socket), from.remote);
        }
        if push_due {
            self.push_direct_paths(from);
        }
        if self.topology.is_upstream(from.source) {
            self.update_online(now);
        }
    }

    /// PUSH_DIRECT_PATHS with our addresses, on the path the triggering packet came in on,
    /// each packet under the reference's size limit.
    fn push_direct_paths(&mut self, from: &Inbound) {
        let candidates: Vec<PathAddress<'static>> = self
            .direct_path_candidates()
            .into_iter()
            .map(|a| match canonical(a) {
                SocketAddr::V4(v4) => PathAddress::V4(v4),
                SocketAddr::V6(v6) => PathAddress::V6(v6),
            })
            .collect();
        // Per record: flags, extension length, type, length, address and port.
        let record_len = |a: &PathAddress| {
            if matches!(a, PathAddress::V4(_)) {
                11
            } else {
                23
            }
        };
        let mut start = 0;
        while start < candidates.len() {
            let mut size = HEADER_LEN + 2;
            let mut end = start;
            while end < candidates.len()
                && size + record_len(&candidates[end]) < PUSH_DIRECT_PATHS_MAX_PACKET
            {
                size += record_len(&candidates[end]);
                end += 1;
            }
            let push = PushDirectPaths {
                paths: candidates[start..end]
                    .iter()
                    .map(|&address| zt_wire::verbs::push_direct_paths::DirectPath {
                        flags: 0,
                        extension: &[],
                        address,
                    })
                    .collect(),
            };
            let mut body = Vec::with_capacity(size);
            push.write(&mut body);
            self.stats.direct_path_pushes_sent += 1;
            self.send_on(
                from.now,
                from.source,
                Some(from.local_socket),
                from.remote,
                Verb::PushDirectPaths,
                &body,
                true,
                None,
            );
            start = end;
        }
    }

    /// A suite-0 HELLO: identify the sender (possibly a new peer), check the MAC, answer.
    fn handle_hello(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        pkt: Vec<u8>,
    ) {
        let head = PacketHeader::new_unchecked(&pkt[..]);
        let (source, packet_id, hops) = (head.source(), head.packet_id(), head.hops());
        let Ok(claimed) = peek_identity(&pkt[HEADER_LEN..]) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if claimed.address() != source {
            self.stats.dropped_hello_address_mismatch += 1;
            return;
        }
        // None: a new peer; Some(false): someone else claims a known peer's address.
        let known = self.peers.get(&source).map(|p| p.identity == claimed);
        let key = match known {
            Some(true) => match self.peers.get(&source) {
                Some(p) => p.key.clone(),
                None => return,
            },
            Some(false) | None => {
                // A new identity (or someone else claiming a known address): the per-source
                // gate bounds the key agreements and hashcash checks anyone can make us do.
                if !self.identity_gate.allow(now, remote) {
                    self.stats.dropped_hello_rate_limited += 1;
                    return;
                }
                let Ok(raw) = self.identity.agree(&claimed) else {
                    self.stats.dropped_invalid_identity += 1;
                    return;
                };
                PeerKey::new(raw)
            }
        };
        let decoded = match decode(pkt, &key) {
            Ok(d) => d,
            Err(e) => {
                self.count_decode_error(&e);
                return;
            }
        };
        let Ok(hello) = Hello::read(decoded.payload()) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if hello.protocol_version < PROTOCOL_VERSION_MIN {
            self.stats.dropped_old_protocol += 1;
            return;
        }
        if !self.replay.check_and_insert(source.to_u64(), packet_id) {
            self.stats.dropped_replay += 1;
            return;
        }
        let from = Inbound {
            now,
            local_socket,
            remote,
            source,
            hops,
            packet_id,
        };
        match known {
            Some(true) => {}
            Some(false) => {
                // Correctly MACed by another identity with our peer's address: tell it, keep
                // the peer we know.
                self.stats.identity_collisions += 1;
                let error = ErrorPayload {
                    in_re_verb: Verb::Hello,
                    in_re_packet_id: packet_id,
                    code: ErrorCode::IdentityCollision,
                    body: ErrorBody::Other(&[]),
                };
                let mut body = Vec::with_capacity(10);
                error.write(&mut body);
                self.send_with_key(&key, source, local_socket, remote, Verb::Error, &body);
                return;
            }
            None if self.config.defer_identity_checks => {
                if !self.identity_checks.hold(from, claimed, hello) {
                    self.stats.dropped_identity_check_queue += 1;
                }
                return;
            }
            None => {
                if !claimed.locally_validate() {
                    self.stats.dropped_invalid_identity += 1;
                    return;
                }
                self.add_peer(now, claimed);
            }
        }
        self.accept_hello(&from, hello);
    }

    /// Counts and answers a HELLO whose sender is now a known peer.
    fn accept_hello(&mut self, from: &Inbound, hello: Hello) {
        self.stats.rx_packets += 1;
        self.stats.packets_received.count(Verb::Hello);
        self.answer_hello(from, hello);
    }

    /// The next new identity whose HELLO waits for its check (deferred checks only).
    pub fn poll_identity_check(&mut self) -> Option<IdentityCheck> {
        self.identity_checks.next_to_hand_out()
    }

    /// The embedder's verdict on [`IdentityCheck::identity`] (`Identity::locally_validate`):
    /// a valid one becomes a peer and its HELLO is answered; an invalid one is dropped and
    /// counted. A ticket that is unknown (given up, or answered twice) changes nothing.
    pub fn identity_checked(&mut self, now: u64, ticket: u64, valid: bool) {
        self.last_now = self.last_now.max(now);
        let Some(held) = self.identity_checks.take(ticket) else {
            return;
        };
        if !valid {
            self.stats.dropped_invalid_identity += 1;
            return;
        }
        let source = held.from.source;
        match self.peers.get(&source).map(|p| p.identity == held.identity) {
            // Another HELLO of the same identity was checked first: answer this one too.
            Some(true) => {}
            // Someone else's valid identity took the address meanwhile: keep that peer.
            Some(false) => {
                self.stats.identity_collisions += 1;
                return;
            }
            None => {
                self.add_peer(now, held.identity);
            }
        }
        let from = Inbound { now, ..held.from };
        self.accept_hello(&from, held.hello);
    }

    /// A HELLO that arrived under suite 1 or 3 from a known peer (already dearmored).
    fn handle_authenticated_hello(&mut self, from: &Inbound, payload: &[u8]) {
        match Hello::read(payload) {
            Ok(h) if h.identity.address() == from.source => {
                if h.protocol_version < PROTOCOL_VERSION_MIN {
                    self.stats.dropped_old_protocol += 1;
                    return;
                }
                let same = self
                    .peers
                    .get(&from.source)
                    .is_some_and(|p| p.identity == h.identity);
                if same {
                    self.answer_hello(from, h);
                } else {
                    self.stats.identity_collisions += 1;
                }
            }
            _ => self.stats.dropped_malformed += 1,
        }
    }

    /// Answers an authenticated HELLO with OK(HELLO) on the path it came in on.
    fn answer_hello(&mut self, from: &Inbound, hello: Hello) {
        if from.hops == 0 && self.topology.is_upstream(from.source) {
            if let Some(ours) = hello.physical_destination.and_then(|a| a.socket_addr()) {
                self.note_external_address(from, ours);
            }
        }
        let moons: Vec<(u64, u64)> = hello
            .moons
            .iter()
            .flatten()
            .filter(|m| m.world_type == WORLD_TYPE_MOON)
            .map(|m| (m.id, m.timestamp))
            .collect();
        let worlds = self
            .topology
            .updates_for(hello.planet.map(|p| (p.id, p.timestamp)), &moons);
        let (major, minor, revision) = self.config.version;
        let seen_from = if hello.protocol_version < 5 {
            SocketAddr::new(from.remote.ip(), 0)
        } else {
            from.remote
        };
        let ok = OkPayload {
            in_re_verb: Verb::Hello,
            in_re_packet_id: from.packet_id,
            body: OkBody::Hello(OkHello {
                timestamp: hello.timestamp,
                protocol_version: PROTOCOL_VERSION,
                major,
                minor,
                revision,
                physical_source: Some(InetAddress::from(seen_from)),
                world_updates: Some(&worlds),
            }),
        };
        let mut body = Vec::with_capacity(64 + worlds.len());
        ok.write(&mut body);
        // Armored with the suite we knew before this HELLO (the reference records the
        // version after answering, so the first OK goes out with Salsa20/12).
        self.send_on(
            from.now,
            from.source,
            Some(from.local_socket),
            from.remote,
            Verb::Ok,
            &body,
            false,
            None,
        );
        self.record_version(
            from.source,
            RemoteVersion {
                protocol: hello.protocol_version,
                major: hello.major,
                minor: hello.minor,
                revision: hello.revision,
            },
        );
        self.peer_received(from, Verb::Hello);
    }

    /// Self-awareness (`SelfAwareness::iam`): an upstream tells us the address it sees us
    /// at, per (upstream, our socket, its address). If the IP changed within the entry
    /// lifetime, our network changed: every path in that IP scope and family is probably
    /// dead, so it is marked expired and probed again (it comes back when the OK does;
    /// traffic is relayed meanwhile). A new port alone is not a change, as in zerotier-one:
    /// a NAT may map each of our sockets, and each new flow, to its own port.
    fn note_external_address(&mut self, from: &Inbound, seen: SocketAddr) {
        let now = from.now;
        let seen = canonical(seen);
        let key = (from.source, from.local_socket, from.remote);
        let previous = self.external_addresses.insert(key, (seen, now));
        let changed = previous.is_some_and(|(old, when)| {
            old.ip() != seen.ip()
                && now.saturating_sub(when) < TRUST_EXPIRATION
                && ip_scope(old.ip()) == ip_scope(seen.ip())
        });
        if !changed {
            return;
        }
        self.stats.external_address_changes += 1;
        let scope = ip_scope(seen.ip());
        let mut probes = Vec::new();
        for (addr, peer) in self.peers.iter_mut() {
            for path in peer.paths.iter_mut() {
                if path.remote.is_ipv4() == seen.is_ipv4() && ip_scope(path.remote.ip()) == scope {
                    path.last_receive = 0;
                    probes.push((*addr, path.local_socket, path.remote));
                }
            }
        }
        for (addr, ls, remote) in probes {
            self.attempt_to_contact(now, addr, Some(ls), remote);
        }
    }

    fn handle_ok(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(ok) = OkPayload::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if !self.expect.expecting(ok.in_re_packet_id) {
            self.stats.dropped_unexpected_reply += 1;
            return;
        }
        self.peer_received(from, Verb::Ok);
        match &ok.body {
            OkBody::Hello(h) => self.handle_ok_hello(from, h),
            OkBody::Whois(ids) => self.handle_ok_whois(from, ids),
            OkBody::Echo(b) if ok.in_re_verb == Verb::Echo => self.handle_ok_echo(from, b),
            _ => self.vl2_ok(from, &ok),
        }
    }

    fn set_latency(&mut self, from: &Inbound, sent_at: u64) {
        let rtt = from.now.saturating_sub(sent_at).min(u32::MAX as u64) as u32;
        if let Some(p) = self.peers.get_mut(&from.source) {
            p.latency_ms = Some(rtt);
            if let Some(path) = p.path_mut(from.local_socket, from.remote) {
                path.latency_ms = Some(rtt);
            }
        }
    }

    fn handle_ok_hello(&mut self, from: &Inbound, ok: &OkHello<'_>) {
        if ok.protocol_version < PROTOCOL_VERSION_MIN {
            self.stats.dropped_old_protocol += 1;
            return;
        }
        if from.hops == 0 && ok.timestamp <= from.now {
            self.set_latency(from, ok.timestamp);
        }
        self.record_version(
            from.source,
            RemoteVersion {
                protocol: ok.protocol_version,
                major: ok.major,
                minor: ok.minor,
                revision: ok.revision,
            },
        );
        if from.hops == 0 && self.topology.is_upstream(from.source) {
            if let Some(ext) = ok.physical_source.and_then(|a| a.socket_addr()) {
                self.note_external_address(from, ext);
            }
        }
        if !self.topology.accepts_world_updates_from(from.source) {
            return;
        }
        let mut r = Reader::new(ok.world_updates.unwrap_or_default());
        while !r.is_empty() {
            let world = match World::read(&mut r) {
                Ok(w) => w,
                Err(_) => {
                    self.stats.dropped_malformed += 1;
                    break;
                }
            };
            match self.topology.offer(world.clone(), from.source) {
                WorldUpdate::Accepted => {
                    self.stats.world_updates_accepted += 1;
                    self.events.push_back(Event::WorldUpdated { world });
                    self.ensure_upstream_peers(from.now);
                }
                WorldUpdate::Ignored => self.stats.world_updates_ignored += 1,
            }
        }
    }

    fn handle_ok_whois(&mut self, from: &Inbound, identities: &[Identity]) {
        if !self.topology.is_upstream(from.source) {
            self.stats.dropped_not_from_upstream += 1;
            return;
        }
        // Like the reference, only the first identity is used.
        let Some(identity) = identities.first() else {
            return;
        };
        let addr = identity.address();
        if addr == self.address() || addr.is_reserved() {
            self.stats.dropped_malformed += 1;
            return;
        }
        if let Some(existing) = self.peers.get(&addr) {
            if existing.identity != *identity {
                self.stats.identity_collisions += 1;
                return;
            }
        } else {
            // The reference trusts the root here; we validate anyway (PROTOCOL.md §10.23).
            if !identity.locally_validate() {
                self.stats.dropped_invalid_identity += 1;
                return;
            }
            self.add_peer(from.now, identity.clone());
        }
        self.flush_resolved(from.now, addr);
    }

    fn handle_ok_echo(&mut self, from: &Inbound, body: &[u8]) {
        // Our ECHOs carry the send time; the OK echoes it back.
        if let (0, Ok(sent)) = (from.hops, <[u8; 8]>::try_from(body)) {
            let sent = u64::from_be_bytes(sent);
            if sent <= from.now {
                self.set_latency(from, sent);
            }
        }
    }

    fn handle_error(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(error) = ErrorPayload::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if error.in_re_verb == Verb::Hello {
            if error.code == ErrorCode::IdentityCollision && self.topology.is_upstream(from.source)
            {
                self.events.push_back(Event::IdentityCollision {
                    reporter: from.source,
                });
            }
            return;
        }
        self.vl2_error(from, &error);
    }

    fn handle_whois(&mut self, from: &Inbound, payload: &[u8]) {
        if !self.topology.am_upstream() {
            let allowed = self
                .peers
                .get_mut(&from.source)
                .is_some_and(|p| p.rate_gate_whois(from.now));
            if !allowed {
                self.stats.whois_rate_limited += 1;
                return;
            }
        }
        let Ok(request) = Whois::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for addr in request.addresses {
            if addr == self.address() {
                known.push(self.identity.to_public());
            } else if let Some(p) = self.peers.get(&addr) {
                known.push(p.identity.clone());
            } else if !addr.is_reserved() {
                unknown.push(addr);
            }
        }
        if !known.is_empty() {
            self.stats.whois_answered += 1;
            let ok = OkPayload {
                in_re_verb: Verb::Whois,
                in_re_packet_id: from.packet_id,
                body: OkBody::Whois(known),
            };
            let mut body = Vec::with_capacity(9 + 71);
            ok.write(&mut body);
            self.send_on(
                from.now,
                from.source,
                Some(from.local_socket),
                from.remote,
                Verb::Ok,
                &body,
                false,
                None,
            );
        }
        for addr in unknown {
            self.request_whois(from.now, addr);
        }
    }

    fn handle_rendezvous(&mut self, from: &Inbound, payload: &[u8]) {
        self.stats.rendezvous_received += 1;
        if !self.topology.is_upstream(from.source) {
            self.stats.dropped_not_from_upstream += 1;
            return;
        }
        let Ok(rv) = Rendezvous::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if rv.peer == self.address() {
            return;
        }
        if !self.peers.contains_key(&rv.peer) {
            // The relay introduces us to a peer whose first packet (relayed at the same
            // moment) we are still looking up. The reference drops such a RENDEZVOUS and
            // waits up to 30 s for the next one; we keep it until the WHOIS answers.
            self.whois.defer_rendezvous(from.now, rv.peer, rv.endpoint);
            self.request_whois(from.now, rv.peer);
            return;
        }
        self.act_on_rendezvous(from.now, rv.peer, rv.endpoint);
    }

    /// Tries a direct path to `peer` at `endpoint` as a relay told us.
    pub(crate) fn act_on_rendezvous(
        &mut self,
        now: u64,
        peer: zt_crypto::Address,
        endpoint: SocketAddr,
    ) {
        let endpoint = canonical(endpoint);
        if !scope_allows_contact(endpoint) || !self.path_allowed(peer, endpoint) {
            self.stats.paths_rejected += 1;
            return;
        }
        // Open NAT/firewall state with a short-lived junk datagram, then probe.
        let junk = self.rng.next_u32().to_be_bytes().to_vec();
        self.push_transmit(None, endpoint, junk, Some(2));
        self.attempt_to_contact(now, peer, None, endpoint);
    }

    fn handle_echo(&mut self, from: &Inbound, payload: &[u8]) {
        let key = (from.local_socket, from.remote);
        if let Some(t) = self.echo_gate.get(&key) {
            if from.now.saturating_sub(*t) < ECHO_REPLY_MIN_INTERVAL {
                self.stats.echo_rate_limited += 1;
                return;
            }
        }
        if self.echo_gate.len() > 4096 {
            let now = from.now;
            self.echo_gate
                .retain(|_, t| now.saturating_sub(*t) < ECHO_REPLY_MIN_INTERVAL);
        }
        self.echo_gate.insert(key, from.now);
        let ok = OkPayload {
            in_re_verb: Verb::Echo,
            in_re_packet_id: from.packet_id,
            body: OkBody::Echo(payload),
        };
        let mut body = Vec::with_capacity(9 + payload.len());
        ok.write(&mut body);
        self.send_on(
            from.now,
            from.source,
            Some(from.local_socket),
            from.remote,
            Verb::Ok,
            &body,
            false,
            None,
        );
    }

    fn handle_push_direct_paths(&mut self, from: &Inbound, payload: &[u8]) {
        let allowed = self
            .peers
            .get_mut(&from.source)
            .is_some_and(|p| p.rate_gate_push_direct_paths(from.now));
        if !allowed {
            self.stats.push_rate_limited += 1;
            return;
        }
        let Ok(push) = PushDirectPaths::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let mut per_scope: HashMap<(IpScope, bool), usize> = HashMap::new();
        for record in push.paths {
            if record.flags & PATH_FLAG_FORGET != 0 {
                continue;
            }
            let addr = match record.address {
                PathAddress::V4(a) => SocketAddr::V4(a),
                PathAddress::V6(a) => canonical(SocketAddr::V6(a)),
                PathAddress::Other { .. } => continue,
            };
            let redirect = record.flags & PATH_FLAG_CLUSTER_REDIRECT != 0;
            let have = self.peers.get(&from.source).is_some_and(|p| {
                p.paths
                    .iter()
                    .any(|path| path.remote == addr && path.alive(from.now))
            });
            if have && !redirect {
                continue;
            }
            if !scope_allows_contact(addr) || !self.path_allowed(from.source, addr) {
                self.stats.paths_rejected += 1;
                continue;
            }
            let n = per_scope
                .entry((ip_scope(addr.ip()), addr.is_ipv4()))
                .or_insert(0);
            if *n >= PUSH_DIRECT_PATHS_MAX_PER_SCOPE_AND_FAMILY {
                continue;
            }
            *n += 1;
            self.attempt_to_contact(from.now, from.source, None, addr);
        }
    }

    fn handle_user_message(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(m) = UserMessage::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        self.events.push_back(Event::UserMessage {
            source: from.source,
            type_id: m.type_id,
            data: m.data.to_vec(),
        });
    }
}

/// A new identity to check, handed to the embedder by [`Node::poll_identity_check`].
#[derive(Debug, Clone)]
pub struct IdentityCheck {
    /// Give it back to [`Node::identity_checked`] with the verdict.
    pub ticket: u64,
    pub identity: Identity,
}

/// A HELLO held until its sender's identity is checked.
struct HeldHello {
    from: Inbound,
    identity: Identity,
    hello: Hello,
    handed_out: bool,
}

/// HELLOs of new identities waiting for deferred checks: at most
/// [`IDENTITY_CHECK_QUEUE`], one per identity, given up after [`IDENTITY_CHECK_TIMEOUT`].
#[derive(Default)]
pub(crate) struct IdentityChecks {
    held: std::collections::BTreeMap<u64, HeldHello>,
    next_ticket: u64,
}

impl IdentityChecks {
    /// Holds a HELLO; false (dropped) when the queue is full.
    fn hold(&mut self, from: Inbound, identity: Identity, hello: Hello) -> bool {
        // A repeated HELLO of an identity already waiting adds no work.
        if self.held.values().any(|h| h.identity == identity) {
            return true;
        }
        let now = from.now;
        self.held
            .retain(|_, h| now.saturating_sub(h.from.now) < IDENTITY_CHECK_TIMEOUT);
        if self.held.len() >= IDENTITY_CHECK_QUEUE {
            return false;
        }
        self.next_ticket += 1;
        self.held.insert(
            self.next_ticket,
            HeldHello {
                from,
                identity,
                hello,
                handed_out: false,
            },
        );
        true
    }

    fn next_to_hand_out(&mut self) -> Option<IdentityCheck> {
        let (ticket, held) = self.held.iter_mut().find(|(_, h)| !h.handed_out)?;
        held.handed_out = true;
        Some(IdentityCheck {
            ticket: *ticket,
            identity: held.identity.clone(),
        })
    }

    fn take(&mut self, ticket: u64) -> Option<HeldHello> {
        self.held.remove(&ticket)
    }
}
