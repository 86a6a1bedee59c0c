//! The VL1 receive pipeline (PROTOCOL.md §3.11) and the VL1 verb handlers (§4.1–4.6, 4.9,
//! 4.13, 4.17). Nothing here panics on wire input: every failure is a counted drop.

use crate::constants::*;
use crate::node::{Event, Inbound, LocalSocketId, Node};
use crate::packet::{self, error_code, Reassembly, Verb};
use crate::path::{ip_scope, scope_allows_contact};
use crate::payload::{self, Hello, OkHello, Rendezvous};
use crate::peer::RemoteVersion;
use crate::topology::WorldUpdate;
use crate::whois::PendingRx;
use std::collections::HashMap;
use std::net::SocketAddr;
use zt_crypto::{armor, Address, Identity, PeerKey};
use zt_wire::world::World;
use zt_wire::Reader;

impl Node {
    /// One UDP datagram received on `local_socket` from `remote`.
    pub fn handle_datagram(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        data: &[u8],
    ) {
        let now = self.clock(now);
        self.stats.rx_datagrams += 1;
        self.stats.rx_bytes += data.len() as u64;
        if data.len() == 13 {
            self.stats.legacy_beacons += 1;
            return;
        }
        if data.len() < FRAGMENT_HEADER_LEN {
            self.stats.dropped_runt += 1;
            return;
        }
        if packet::is_fragment(data) {
            let total = data[14] >> 4;
            let number = data[14] & 0x0f;
            if !(total > 1 && total as usize <= MAX_FRAGMENTS && number >= 1 && number < total) {
                self.stats.dropped_bad_fragment += 1;
                return;
            }
            if packet::destination(data) != self.address() {
                self.relay(now, local_socket, remote, data.to_vec(), true);
                return;
            }
            match self.reassembler.add_fragment(now, data, number, total) {
                Reassembly::Complete(p) => self.process_packet(now, local_socket, remote, p),
                Reassembly::Pending => {}
                Reassembly::Duplicate => self.stats.fragments_duplicate += 1,
            }
            return;
        }
        if data.len() < HEADER_LEN {
            self.stats.dropped_runt += 1;
            return;
        }
        if packet::destination(data) != self.address() {
            self.relay(now, local_socket, remote, data.to_vec(), false);
            return;
        }
        if packet::is_fragmented(data) {
            match self.reassembler.add_head(now, data) {
                Reassembly::Complete(p) => self.process_packet(now, local_socket, remote, p),
                Reassembly::Pending => {}
                Reassembly::Duplicate => self.stats.fragments_duplicate += 1,
            }
            return;
        }
        self.process_packet(now, local_socket, remote, data.to_vec());
    }

    /// An assembled packet addressed to us: authenticate, decrypt, decompress, dispatch.
    pub(crate) fn process_packet(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        mut pkt: Vec<u8>,
    ) {
        if pkt.len() < HEADER_LEN {
            self.stats.dropped_runt += 1;
            return;
        }
        let source = packet::source(&pkt);
        if source == self.address() || source.is_reserved() {
            self.stats.dropped_bad_source += 1;
            return;
        }
        let suite = packet::cipher_bits(&pkt);
        if suite == 2 || suite > 3 {
            self.stats.dropped_unsupported_cipher += 1;
            return;
        }
        if suite == 0 && packet::verb_byte(&pkt) & packet::VERB_MASK == Verb::Hello as u8 {
            self.handle_hello(now, local_socket, remote, pkt);
            return;
        }
        let Some(peer) = self.peers.get(&source) else {
            if self.whois.queue_rx(PendingRx {
                source,
                local_socket,
                remote,
                packet: pkt,
                created: now,
            }) {
                self.stats.rx_queue_dropped += 1;
            }
            self.request_whois(now, source);
            return;
        };
        if armor::dearmor(&mut pkt, &peer.key).is_err() {
            self.stats.dropped_bad_mac += 1;
            return;
        }
        let packet_id = packet::packet_id(&pkt);
        if !self.replay.check_and_insert(source.to_u64(), packet_id) {
            self.stats.dropped_replay += 1;
            return;
        }
        if packet::decompress(&mut pkt).is_err() {
            self.stats.dropped_decompress += 1;
            return;
        }
        self.stats.rx_packets += 1;
        let from = Inbound {
            now,
            local_socket,
            remote,
            source,
            hops: packet::hops(&pkt),
            packet_id,
        };
        let verb_number = packet::verb_byte(&pkt) & packet::VERB_MASK;
        let payload = &pkt[HEADER_LEN..];
        let Some(verb) = Verb::from_u8(verb_number) else {
            self.stats.unknown_verbs += 1;
            self.peer_received(&from, verb_number);
            return;
        };
        match verb {
            Verb::Ok => {
                self.handle_ok(&from, payload);
                return;
            }
            Verb::Hello => {
                // A HELLO under suite 1/3 from a known peer is already authenticated.
                self.handle_hello_payload(&from, payload, None);
                return;
            }
            _ => {}
        }
        self.peer_received(&from, verb_number);
        match verb {
            Verb::Nop => {}
            Verb::Error => self.handle_error(&from, payload),
            Verb::Whois => self.handle_whois(&from, payload),
            Verb::Rendezvous => self.handle_rendezvous(&from, payload),
            Verb::Echo => self.handle_echo(&from, payload),
            Verb::PushDirectPaths => self.handle_push_direct_paths(&from, payload),
            Verb::UserMessage => self.handle_user_message(&from, payload),
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
            | Verb::RemoteTrace => self.vl2_packet(&from, verb, payload),
            Verb::Ok | Verb::Hello => {}
        }
    }

    /// Bookkeeping for every authenticated packet (`Peer::received`): activity, path
    /// learning (only from OK), HELLO back to unknown paths, and PUSH_DIRECT_PATHS when
    /// trust is established.
    fn peer_received(&mut self, from: &Inbound, verb_number: u8) {
        let now = from.now;
        let allowed = self.path_allowed(from.source, from.remote);
        let Some(peer) = self.peers.get_mut(&from.source) else {
            return;
        };
        peer.last_receive = now;
        let mut contact = false;
        let mut learned = false;
        if from.hops == 0 {
            if let Some(path) = peer.path_mut(from.local_socket, from.remote) {
                path.last_receive = now;
            } else if allowed {
                if verb_number == Verb::Ok as u8 {
                    learned = peer.learn_path(now, from.local_socket, from.remote);
                } else {
                    contact = peer.rate_gate_unknown_path(now, from.remote);
                }
            }
        }
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

    fn push_direct_paths(&mut self, from: &Inbound) {
        let candidates = self.direct_path_candidates();
        for body in payload::write_push_direct_paths(&candidates, PUSH_DIRECT_PATHS_MAX_PACKET) {
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
        }
    }

    /// A suite-0 HELLO: identify the sender (possibly a new peer), check the MAC, answer.
    fn handle_hello(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        mut pkt: Vec<u8>,
    ) {
        let source = packet::source(&pkt);
        let hello = match Hello::read(&pkt[HEADER_LEN..]) {
            Ok(h) => h,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        if hello.protocol_version < PROTOCOL_VERSION_MIN {
            self.stats.dropped_old_protocol += 1;
            return;
        }
        if hello.identity.address() != source {
            self.stats.dropped_hello_address_mismatch += 1;
            return;
        }
        let packet_id = packet::packet_id(&pkt);
        let hops = packet::hops(&pkt);
        match self.peers.get(&source) {
            Some(peer) if peer.identity == hello.identity => {
                if armor::dearmor(&mut pkt, &peer.key).is_err() {
                    self.stats.dropped_bad_mac += 1;
                    return;
                }
            }
            Some(_) => {
                // Someone else claims a known address. Answer only a correctly MACed HELLO,
                // and only as often as the identity gate allows.
                if !self.identity_gate.allow(now, remote) {
                    self.stats.dropped_hello_rate_limited += 1;
                    return;
                }
                let Ok(raw) = self.identity.agree(&hello.identity) else {
                    self.stats.dropped_invalid_identity += 1;
                    return;
                };
                let key = PeerKey::new(raw);
                if armor::dearmor(&mut pkt, &key).is_err() {
                    self.stats.dropped_bad_mac += 1;
                    return;
                }
                self.stats.identity_collisions += 1;
                let mut body = Vec::with_capacity(10);
                payload::write_reply_prefix(&mut body, Verb::Hello as u8, packet_id);
                body.push(error_code::IDENTITY_COLLISION);
                self.send_with_key(&key, source, local_socket, remote, Verb::Error, &body);
                return;
            }
            None => {
                if !self.identity_gate.allow(now, remote) {
                    self.stats.dropped_hello_rate_limited += 1;
                    return;
                }
                let Ok(raw) = self.identity.agree(&hello.identity) else {
                    self.stats.dropped_invalid_identity += 1;
                    return;
                };
                let key = PeerKey::new(raw);
                if armor::dearmor(&mut pkt, &key).is_err() {
                    self.stats.dropped_bad_mac += 1;
                    return;
                }
                if !hello.identity.locally_validate() {
                    self.stats.dropped_invalid_identity += 1;
                    return;
                }
                self.add_peer(now, hello.identity.clone());
            }
        }
        if !self.replay.check_and_insert(source.to_u64(), packet_id) {
            self.stats.dropped_replay += 1;
            return;
        }
        self.stats.rx_packets += 1;
        let from = Inbound {
            now,
            local_socket,
            remote,
            source,
            hops,
            packet_id,
        };
        // Decrypt the moon list in place now that the MAC is verified.
        let moons = match hello.moon_tail_offset {
            Some(off) => {
                let key = match self.peers.get(&source) {
                    Some(p) => p.key.clone(),
                    None => return,
                };
                let mut id = [0u8; 8];
                id.copy_from_slice(&pkt[0..8]);
                let tail = &mut pkt[HEADER_LEN + off..];
                armor::crypt_field(&key, &id, tail);
                payload::read_moon_list(tail).unwrap_or_default()
            }
            None => Vec::new(),
        };
        self.handle_hello_payload(&from, &pkt[HEADER_LEN..], Some((hello, moons)));
    }

    /// Answers an authenticated HELLO with OK(HELLO) on the path it came in on.
    fn handle_hello_payload(
        &mut self,
        from: &Inbound,
        payload: &[u8],
        parsed: Option<(Hello, Vec<payload::MoonRef>)>,
    ) {
        let (hello, moons) = match parsed {
            Some(x) => x,
            None => match Hello::read(payload) {
                Ok(h) if h.identity.address() == from.source => (h, Vec::new()),
                _ => {
                    self.stats.dropped_malformed += 1;
                    return;
                }
            },
        };
        if hello.protocol_version < PROTOCOL_VERSION_MIN {
            self.stats.dropped_old_protocol += 1;
            return;
        }
        if from.hops == 0 && self.topology.is_upstream(from.source) {
            if let Some(ours) = hello.destination {
                self.external_addresses
                    .insert(from.source, (ours, from.now));
            }
        }
        let (major, minor, revision) = self.config.version;
        let external = if hello.protocol_version < 5 {
            SocketAddr::new(from.remote.ip(), 0)
        } else {
            from.remote
        };
        let ok = OkHello {
            timestamp: hello.timestamp,
            protocol_version: PROTOCOL_VERSION,
            major,
            minor,
            revision,
            external: Some(external),
            worlds: self.topology.updates_for(hello.planet, &moons),
        };
        let mut body = Vec::with_capacity(64 + ok.worlds.len());
        payload::write_reply_prefix(&mut body, Verb::Hello as u8, from.packet_id);
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
        self.peer_received(from, Verb::Hello as u8);
    }

    fn handle_ok(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok((in_re_verb, in_re_id, body)) = payload::read_reply_prefix(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if !self.expect.expecting(in_re_id) {
            self.stats.dropped_unexpected_reply += 1;
            return;
        }
        self.peer_received(from, Verb::Ok as u8);
        match Verb::from_u8(in_re_verb) {
            Some(Verb::Hello) => self.handle_ok_hello(from, body),
            Some(Verb::Whois) => self.handle_ok_whois(from, body),
            Some(Verb::Echo) => self.handle_ok_echo(from, body),
            _ => self.vl2_ok(from, in_re_verb, in_re_id, body),
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

    fn handle_ok_hello(&mut self, from: &Inbound, body: &[u8]) {
        let ok = match OkHello::read(body) {
            Ok(ok) => ok,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
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
        if !self.topology.is_upstream(from.source) {
            return;
        }
        if from.hops == 0 {
            if let Some(ext) = ok.external {
                self.external_addresses.insert(from.source, (ext, from.now));
            }
        }
        let mut r = Reader::new(&ok.worlds);
        while !r.is_empty() {
            let world = match World::read(&mut r) {
                Ok(w) => w,
                Err(_) => {
                    self.stats.dropped_malformed += 1;
                    break;
                }
            };
            match self.topology.offer(world.clone()) {
                WorldUpdate::Accepted => {
                    self.stats.world_updates_accepted += 1;
                    self.events.push_back(Event::WorldUpdated { world });
                    self.ensure_upstream_peers(from.now);
                }
                WorldUpdate::Ignored => self.stats.world_updates_ignored += 1,
            }
        }
    }

    fn handle_ok_whois(&mut self, from: &Inbound, body: &[u8]) {
        if !self.topology.is_upstream(from.source) {
            self.stats.dropped_not_from_upstream += 1;
            return;
        }
        let Ok((identity, _)) = Identity::read_binary(body) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let addr = identity.address();
        if addr == self.address() || addr.is_reserved() {
            self.stats.dropped_malformed += 1;
            return;
        }
        if let Some(existing) = self.peers.get(&addr) {
            if existing.identity != identity {
                self.stats.identity_collisions += 1;
                return;
            }
        } else {
            // The reference trusts the root here; we validate anyway (PROTOCOL.md §10.23).
            if !identity.locally_validate() {
                self.stats.dropped_invalid_identity += 1;
                return;
            }
            self.add_peer(from.now, identity);
        }
        self.flush_resolved(from.now, addr);
    }

    fn handle_ok_echo(&mut self, from: &Inbound, body: &[u8]) {
        // Our ECHOs carry the send time; the OK echoes it back.
        if from.hops == 0 && body.len() == 8 {
            let sent = u64::from_be_bytes(body.try_into().unwrap_or([0; 8]));
            if sent <= from.now {
                self.set_latency(from, sent);
            }
        }
    }

    fn handle_error(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok((in_re_verb, in_re_id, rest)) = payload::read_reply_prefix(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let Some((&code, body)) = rest.split_first() else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if in_re_verb == Verb::Hello as u8 {
            if code == error_code::IDENTITY_COLLISION && self.topology.is_upstream(from.source) {
                self.events.push_back(Event::IdentityCollision {
                    reporter: from.source,
                });
            }
            return;
        }
        self.vl2_error(from, in_re_verb, in_re_id, code, body);
    }

    fn handle_whois(&mut self, from: &Inbound, payload: &[u8]) {
        let am_root = self.topology.am_upstream();
        if !am_root {
            let allowed = self
                .peers
                .get_mut(&from.source)
                .is_some_and(|p| p.rate_gate_whois(from.now));
            if !allowed {
                self.stats.whois_rate_limited += 1;
                return;
            }
        }
        let mut body = Vec::with_capacity(9 + 71);
        payload::write_reply_prefix(&mut body, Verb::Whois as u8, from.packet_id);
        let prefix_len = body.len();
        let mut unknown = Vec::new();
        for chunk in payload.chunks_exact(5) {
            let Some(addr) = Address::from_slice(chunk) else {
                continue;
            };
            if addr == self.address() {
                self.identity.write_binary(&mut body, false);
            } else if let Some(p) = self.peers.get(&addr) {
                p.identity.write_binary(&mut body, false);
            } else {
                unknown.push(addr);
            }
        }
        if body.len() > prefix_len {
            self.stats.whois_answered += 1;
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
            if !addr.is_reserved() {
                self.request_whois(from.now, addr);
            }
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
        if !self.peers.contains_key(&rv.peer) || rv.peer == self.address() {
            return;
        }
        if !scope_allows_contact(rv.endpoint) || !self.path_allowed(rv.peer, rv.endpoint) {
            self.stats.paths_rejected += 1;
            return;
        }
        // Open NAT/firewall state with a short-lived junk datagram, then probe.
        let junk = self.rng.next_u32().to_be_bytes().to_vec();
        self.push_transmit(None, rv.endpoint, junk, Some(2));
        self.attempt_to_contact(from.now, rv.peer, None, rv.endpoint);
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
        let mut body = Vec::with_capacity(9 + payload.len());
        payload::write_reply_prefix(&mut body, Verb::Echo as u8, from.packet_id);
        body.extend_from_slice(payload);
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
        let Ok(records) = payload::read_push_direct_paths(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let mut per_scope: HashMap<(crate::path::IpScope, bool), usize> = HashMap::new();
        for rec in records {
            if rec.flags & payload::PUSH_FLAG_FORGET != 0 {
                continue;
            }
            let addr = payload::canonical(rec.address);
            let redirect = rec.flags & payload::PUSH_FLAG_REDIRECT != 0;
            let known = self.peers.get(&from.source).is_some_and(|p| {
                p.paths
                    .iter()
                    .any(|path| path.remote == addr && path.alive(from.now))
            });
            if known && !redirect {
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
        if payload.len() < 8 {
            self.stats.dropped_malformed += 1;
            return;
        }
        let (type_id, data) = payload.split_at(8);
        self.events.push_back(Event::UserMessage {
            source: from.source,
            type_id: u64::from_be_bytes(type_id.try_into().unwrap_or([0; 8])),
            data: data.to_vec(),
        });
    }
}
