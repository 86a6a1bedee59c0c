//! The virtual switch (PROTOCOL.md §1 step 8, §4.7–4.10, §4.14–4.15, §6.2, §6.9, §6.11):
//! frames from the tap to their owners (FRAME, EXT_FRAME when bridging, MULTICAST_FRAME to
//! group subscribers with gathers when too few are known), frames from peers to the tap after
//! the gate and bridging checks, and multicast subscriptions (LIKE, GATHER) both ways.

use super::network::{PendingMulticast, SubscriptionChange};
use super::rules::{evaluate, FrameFacts, Outcome, Verdict};
use super::{
    Datagrams, Encapsulated, FrameError, FramePlan, HeldPacket, FRAME_HEADROOM,
    FRAME_PACKET_PREFIX, HELD_PACKETS_LIMIT, MAX_BRIDGE_BROADCAST, MAX_BRIDGE_ROUTES,
    MAX_FRAME_LEN, MAX_GATHER_RECIPIENTS, MAX_PENDING_MULTICASTS, MULTICAST_ANNOUNCE_PERIOD,
    MULTICAST_EXPLICIT_GATHER_DELAY,
};
use crate::constants::DEFAULT_PHYSICAL_MTU;
use crate::node::{Event, Inbound, Node};
use crate::vl1::InPlaceDelivery;
use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use zt_crypto::Address;
use zt_wire::com::CertificateOfMembership;
use zt_wire::ethernet::{EthernetHeader, ETHERNET_HEADER_LEN};
use zt_wire::fragment::write_datagrams;
use zt_wire::header::{HeaderRepr, PacketFlags, PacketHeader, Verb, HEADER_LEN, MAX_PAYLOAD_LEN};
use zt_wire::mac::Mac;
use zt_wire::netconf::{SPECIALIST_ANCHOR, SPECIALIST_MULTICAST_REPLICATOR};
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::error::{ErrorBody, ErrorCode, ErrorPayload};
use zt_wire::verbs::frame::{ExtFrame, Frame, FRAME_PREFIX_LEN};
use zt_wire::verbs::multicast::{
    GatherMembers, MulticastFrame, MulticastGather, MulticastGroup, MulticastLike,
    MULTICAST_FRAME_FLAG_REPLICATE,
};
use zt_wire::verbs::ok::{OkBody, OkMulticastFrame, OkMulticastGather, OkPayload};
use zt_wire::verbs::packet::seal;

const ETHERTYPE_ARP: u16 = 0x0806;
/// LIKE tuples per packet (18 bytes each, well under the packet limit).
const LIKES_PER_PACKET: usize = 500;
/// Addresses in one gather answer, keeping the packet under the maximum size.
const MAX_GATHER_ANSWER: usize = (MAX_PAYLOAD_LEN - 64) / 5;

/// The ARP group of an outgoing broadcast ARP request (§6.9): its target IPv4 as ADI.
fn arp_request_target(ethertype: u16, payload: &[u8]) -> Option<u32> {
    if ethertype != ETHERTYPE_ARP || payload.len() < 28 {
        return None;
    }
    let is_request =
        payload[2..4] == [0x08, 0x00] && payload[4] == 6 && payload[5] == 4 && payload[7] == 1;
    is_request.then(|| u32::from_be_bytes([payload[24], payload[25], payload[26], payload[27]]))
}

/// A TEE/WATCH copy carries at most `length` bytes of the frame (0 = all of it).
fn truncated(payload: &[u8], length: u16) -> &[u8] {
    if length == 0 {
        payload
    } else {
        &payload[..payload.len().min(usize::from(length))]
    }
}

/// The EXT_FRAME subtype flags the reference puts on rule copies (PROTOCOL.md §4.8), which
/// differ by the direction whose rules made the copy.
struct CopyFlags {
    tee: u8,
    watch: u8,
    redirect: u8,
}

const OUTBOUND_COPY_FLAGS: CopyFlags = CopyFlags {
    tee: 0x02,
    watch: 0x16,
    redirect: 0x04,
};
const INBOUND_COPY_FLAGS: CopyFlags = CopyFlags {
    tee: 0x08,
    watch: 0x1c,
    redirect: 0x0a,
};

impl Node {
    // -----------------------------------------------------------------------------------------
    // From the tap

    /// An Ethernet frame from the tap of `nwid`. Unicast goes to the member owning the MAC
    /// (or the bridge behind it), multicast to the group's subscribers up to the network's
    /// limit; ARP requests go to their target's ARP group even with broadcast disabled.
    /// Everything goes out through `poll_transmit`; the data path uses
    /// [`Node::encapsulate_frame`] instead.
    pub fn send_frame(
        &mut self,
        now: u64,
        nwid: NetworkId,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) -> Result<(), FrameError> {
        let now = self.clock(now);
        let planned = self.plan_frame(now, nwid, src_mac, dst_mac, ethertype, payload);
        match planned {
            Ok(FramePlan::Unicast { to, ext }) => {
                self.send_unicast(now, nwid, to, src_mac, dst_mac, ethertype, payload, ext);
                Ok(())
            }
            Ok(FramePlan::Done) => Ok(()),
            Err(e) => {
                self.stats.vl2.tap_frames_dropped += 1;
                Err(e)
            }
        }
    }

    /// The data path's send: `buffer[frame]` is an Ethernet frame read from the tap of
    /// `nwid`, with at least [`FRAME_HEADROOM`] bytes before it. A unicast frame to a member
    /// we have a path to becomes a FRAME in place (header written into the headroom, sealed
    /// there) and its datagrams are written back to back into `out` (at least
    /// [`DATAGRAMS_CAPACITY`] bytes): no allocation. Anything else (multicast, bridging,
    /// rule copies, a member not yet known) takes the general path through `poll_transmit`.
    pub fn encapsulate_frame(
        &mut self,
        now: u64,
        nwid: NetworkId,
        buffer: &mut [u8],
        frame: Range<usize>,
        out: &mut [u8],
    ) -> Encapsulated {
        let now = self.clock(now);
        let Some(header) = buffer.get(frame.clone()).and_then(EthernetHeader::parse) else {
            self.stats.vl2.tap_frames_dropped += 1;
            return Encapsulated::Dropped(FrameError::Malformed);
        };
        let payload = frame.start + ETHERNET_HEADER_LEN..frame.end;
        let planned = self.plan_frame(
            now,
            nwid,
            header.source,
            header.destination,
            header.ethertype,
            &buffer[payload.clone()],
        );
        let (to, ext) = match planned {
            Ok(FramePlan::Unicast { to, ext }) => (to, ext),
            Ok(FramePlan::Done) => return Encapsulated::Queued,
            Err(e) => {
                self.stats.vl2.tap_frames_dropped += 1;
                return Encapsulated::Dropped(e);
            }
        };
        if !ext && frame.start >= FRAME_HEADROOM {
            // Our credentials go before the frame, as `send_unicast` does on the general path.
            self.push_credentials_if_needed(now, nwid, to);
            let packet = payload.start - FRAME_PACKET_PREFIX..payload.end;
            if let Some(done) =
                self.send_frame_in_place(now, nwid, to, header.ethertype, &mut buffer[packet], out)
            {
                return done;
            }
        }
        self.send_unicast(
            now,
            nwid,
            to,
            header.source,
            header.destination,
            header.ethertype,
            &buffer[payload],
            ext,
        );
        Encapsulated::Queued
    }

    /// FRAME to `to` built around the Ethernet payload at the end of `packet` (the first
    /// [`FRAME_PACKET_PREFIX`] bytes are for the packet header and the FRAME prefix), sealed
    /// in place and laid out as datagrams in `out`. `None` (nothing sent, `packet`
    /// untouched) when the general path must do it: the member's identity is unknown (WHOIS
    /// first) or there is no path to it.
    fn send_frame_in_place(
        &mut self,
        now: u64,
        nwid: NetworkId,
        to: Address,
        ethertype: u16,
        packet: &mut [u8],
        out: &mut [u8],
    ) -> Option<Encapsulated> {
        let (local_socket, remote) = self.next_hop(now, to)?;
        let packet_id = self.random_packet_id();
        let source = self.address();
        let peer = self.peers.get_mut(&to)?;
        let suite = peer.cipher_suite();
        let (header, rest) = packet.split_at_mut(HEADER_LEN);
        HeaderRepr {
            packet_id,
            destination: to,
            source,
            flags: PacketFlags::for_sending(suite, false),
            mac: [0; 8],
            verb: Verb::Frame,
            compressed: false,
        }
        .emit(&mut PacketHeader::new_unchecked(header));
        let prefix: &mut [u8; FRAME_PREFIX_LEN] =
            (&mut rest[..FRAME_PREFIX_LEN]).try_into().ok()?;
        Frame::emit_prefix(nwid, ethertype, prefix);
        let mtu = DEFAULT_PHYSICAL_MTU;
        let sealed = seal(packet, suite, mtu, &peer.key)
            .and_then(|wire_id| Ok((wire_id, write_datagrams(packet, mtu, out)?)));
        let Ok((wire_id, layout)) = sealed else {
            // Only a frame near the largest MTU makes a packet over ZeroTier's maximum.
            self.stats.send_too_large += 1;
            self.stats.vl2.tap_frames_dropped += 1;
            return Some(Encapsulated::Dropped(FrameError::TooLarge));
        };
        if let Some(path) = peer.path_mut(local_socket, remote) {
            path.last_send = now;
        }
        self.expect.expect(wire_id);
        self.stats.tx_datagrams += layout.count as u64;
        self.stats.tx_bytes += layout.len as u64;
        self.stats.vl2.frames_sent += 1;
        Some(Encapsulated::Send(Datagrams {
            local_socket,
            remote,
            layout,
        }))
    }

    /// Checks, rules and the frame's destination. Multicast, bridged and rule-redirected
    /// frames are sent here; a frame to one member is left to the caller.
    fn plan_frame(
        &mut self,
        now: u64,
        nwid: NetworkId,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) -> Result<FramePlan, FrameError> {
        let me = self.address();
        let network = self.vl2.networks.get(&nwid).ok_or(FrameError::NotJoined)?;
        let config = network.config.as_ref().ok_or(FrameError::NoConfig)?;
        if payload.len() > usize::from(config.mtu) {
            return Err(FrameError::TooLarge);
        }
        let bridging = src_mac != network.mac;
        if bridging && !config.active_bridges().any(|b| b == me) {
            return Err(FrameError::NotBridge);
        }
        if let Some((member, target, asker)) =
            super::ndp::solicited_member(nwid, config, me, ethertype, payload)
        {
            // Answered here; the solicitation never goes on the wire.
            let member_mac = Mac::from_address(member, nwid);
            let advert = super::ndp::advertisement(target, member_mac, asker);
            self.deliver(nwid, member_mac, src_mac, ethertype, &advert);
            return Ok(FramePlan::Done);
        }
        if dst_mac.is_multicast() {
            let group = if dst_mac.is_broadcast() {
                match arp_request_target(ethertype, payload) {
                    Some(ip) => MulticastGroup {
                        mac: dst_mac,
                        adi: ip,
                    },
                    None if !config.enable_broadcast() => {
                        self.stats.vl2.broadcast_dropped += 1;
                        return Err(FrameError::BroadcastDisabled);
                    }
                    None => MulticastGroup {
                        mac: dst_mac,
                        adi: 0,
                    },
                }
            } else {
                MulticastGroup {
                    mac: dst_mac,
                    adi: 0,
                }
            };
            if config.multicast_limit == 0 {
                return Err(FrameError::MulticastDisabled);
            }
            let zero = Address::default();
            let outcome = self.run_rules(
                nwid, false, zero, me, zero, src_mac, dst_mac, ethertype, payload,
            );
            if self
                .apply_outbound_outcome(now, nwid, outcome, src_mac, dst_mac, ethertype, payload)?
            {
                self.send_multicast(now, nwid, group, src_mac, ethertype, payload, None);
            }
            return Ok(FramePlan::Done);
        }
        if dst_mac == network.mac {
            return Err(FrameError::ToSelf);
        }
        if let Some(owner) = dst_mac.to_address(nwid) {
            if owner == me {
                return Err(FrameError::ToSelf);
            }
            // Deauthorization stops traffic both ways: its revocation reached us, so nothing
            // more goes to it (its frames to us are refused by the gate).
            if network.members.get(&owner).is_some_and(|m| m.is_revoked()) {
                self.stats.vl2.frames_dropped += 1;
                return Err(FrameError::Revoked);
            }
            let outcome = self.run_rules(
                nwid, false, owner, me, owner, src_mac, dst_mac, ethertype, payload,
            );
            let addressed = self
                .apply_outbound_outcome(now, nwid, outcome, src_mac, dst_mac, ethertype, payload)?;
            return Ok(if addressed {
                FramePlan::Unicast {
                    to: owner,
                    ext: bridging,
                }
            } else {
                FramePlan::Done
            });
        }
        // Behind a bridge: the learned one, else every active bridge (up to 32).
        let mut bridges: Vec<Address> = match network.bridge_routes.get(&dst_mac) {
            Some(b) => vec![*b],
            None => config.active_bridges().filter(|b| *b != me).collect(),
        };
        if bridges.is_empty() {
            return Err(FrameError::NoRoute);
        }
        let zero = Address::default();
        let outcome = self.run_rules(
            nwid, false, zero, me, zero, src_mac, dst_mac, ethertype, payload,
        );
        if !self.apply_outbound_outcome(now, nwid, outcome, src_mac, dst_mac, ethertype, payload)? {
            return Ok(FramePlan::Done);
        }
        self.shuffle(&mut bridges);
        bridges.truncate(MAX_BRIDGE_BROADCAST);
        for bridge in bridges {
            self.send_unicast(
                now, nwid, bridge, src_mac, dst_mac, ethertype, payload, true,
            );
        }
        Ok(FramePlan::Done)
    }

    /// Runs the rules of `nwid` on a frame. `peer` is the other member (for its tags and,
    /// inbound, its capabilities); zero for multicast. `None` without a config.
    #[allow(clippy::too_many_arguments)]
    fn run_rules(
        &mut self,
        nwid: NetworkId,
        inbound: bool,
        peer: Address,
        zt_source: Address,
        zt_dest: Address,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) -> Option<Outcome> {
        let random = self.rng.next_u32();
        let us = self.address();
        let network = self.vl2.networks.get(&nwid)?;
        let config = network.config.as_ref()?;
        let ours = super::rules::TagValues::Config(&config.tags);
        // A multicast has no one member on the other side: no lookup, no tags nor
        // capabilities of whoever a zero-addressed credential was stored under.
        let member = (peer != Address::default())
            .then(|| network.members.get(&peer))
            .flatten();
        let theirs = member.map_or(super::rules::TagValues::Unknown, |m| {
            super::rules::TagValues::Member(&m.tags)
        });
        let ownership = match member {
            Some(m) if inbound => super::rules::Ownership::Member {
                certificates: &m.coos,
                ndp_emulated_prefix: super::rules::ndp_emulated_prefix(config),
            },
            None if inbound => super::rules::Ownership::None,
            _ => super::rules::Ownership::Config(&config.certificates_of_ownership),
        };
        let facts = FrameFacts {
            inbound,
            us,
            zt_source,
            zt_dest,
            src_mac,
            dst_mac,
            ethertype,
            payload,
            our_tags: ours,
            their_tags: theirs,
            ownership,
            unsupported_match_result: config.flags
                & zt_wire::netconf::FLAG_RULES_RESULT_OF_UNSUPPORTED_MATCH
                != 0,
            random,
        };
        let outcome = if inbound {
            let caps = member
                .into_iter()
                .flat_map(|m| m.capabilities.values())
                .map(|c| c.rules.as_slice());
            evaluate(&facts, &config.rules, caps)
        } else {
            let caps = config.capabilities.iter().map(|c| c.rules.as_slice());
            evaluate(&facts, &config.rules, caps)
        };
        Some(outcome)
    }

    /// Makes an outbound verdict's copies and redirection. `Ok(true)`: send the frame as
    /// addressed; `Ok(false)`: it went elsewhere (REDIRECT).
    #[allow(clippy::too_many_arguments)]
    fn apply_outbound_outcome(
        &mut self,
        now: u64,
        nwid: NetworkId,
        outcome: Option<Outcome>,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) -> Result<bool, FrameError> {
        let Some(outcome) = outcome else {
            return Err(FrameError::NoConfig);
        };
        self.send_rule_copies(
            now,
            nwid,
            &outcome,
            &OUTBOUND_COPY_FLAGS,
            src_mac,
            dst_mac,
            ethertype,
            payload,
        );
        match outcome.verdict {
            Verdict::Drop => {
                self.stats.vl2.frames_filtered += 1;
                Err(FrameError::Filtered)
            }
            Verdict::Redirect(_) => Ok(false),
            Verdict::Accept { .. } => Ok(true),
        }
    }

    /// Inbound verdict: copies and redirection done; `Some(super_accept)` if the frame is to
    /// be delivered.
    #[allow(clippy::too_many_arguments)]
    fn apply_inbound_outcome(
        &mut self,
        now: u64,
        nwid: NetworkId,
        outcome: Option<Outcome>,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) -> Option<bool> {
        let outcome = outcome?;
        self.send_rule_copies(
            now,
            nwid,
            &outcome,
            &INBOUND_COPY_FLAGS,
            src_mac,
            dst_mac,
            ethertype,
            payload,
        );
        match outcome.verdict {
            Verdict::Drop => {
                self.stats.vl2.frames_filtered += 1;
                None
            }
            Verdict::Redirect(_) => None,
            Verdict::Accept { super_accept } => Some(super_accept),
        }
    }

    /// Every copy the rules asked for: the TEE/WATCH copies (truncated as asked) and, for a
    /// REDIRECT verdict, the whole frame to its new destination.
    #[allow(clippy::too_many_arguments)]
    fn send_rule_copies(
        &mut self,
        now: u64,
        nwid: NetworkId,
        outcome: &Outcome,
        flags: &CopyFlags,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) {
        for (forward, watch) in &outcome.copies {
            let subtype = if *watch { flags.watch } else { flags.tee };
            let copy = truncated(payload, forward.length);
            self.send_rule_copy(
                now,
                nwid,
                forward.address,
                subtype,
                src_mac,
                dst_mac,
                ethertype,
                copy,
            );
        }
        if let Verdict::Redirect(forward) = &outcome.verdict {
            self.send_rule_copy(
                now,
                nwid,
                forward.address,
                flags.redirect,
                src_mac,
                dst_mac,
                ethertype,
                payload,
            );
        }
    }

    /// A TEE/WATCH/REDIRECT copy as EXT_FRAME with the reference's subtype flags.
    #[allow(clippy::too_many_arguments)]
    fn send_rule_copy(
        &mut self,
        now: u64,
        nwid: NetworkId,
        to: Address,
        flags: u8,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) {
        if to == self.address() {
            return;
        }
        self.push_credentials_if_needed(now, nwid, to);
        let mut body = Vec::with_capacity(30 + payload.len());
        ExtFrame {
            nwid,
            flags,
            com: None,
            destination: dst_mac,
            source: src_mac,
            ethertype,
            payload,
        }
        .write(&mut body);
        self.stats.vl2.frames_sent += 1;
        let _ = self.send_to_peer(now, to, Verb::ExtFrame, &body);
    }

    /// FRAME to `to` (EXT_FRAME if `ext`: bridged source or a MAC behind a bridge), after our
    /// credentials if it needs them.
    #[allow(clippy::too_many_arguments)]
    fn send_unicast(
        &mut self,
        now: u64,
        nwid: NetworkId,
        to: Address,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
        ext: bool,
    ) {
        self.push_credentials_if_needed(now, nwid, to);
        let mut body = Vec::with_capacity(30 + payload.len());
        let verb = if ext {
            ExtFrame {
                nwid,
                flags: 0,
                com: None,
                destination: dst_mac,
                source: src_mac,
                ethertype,
                payload,
            }
            .write(&mut body);
            Verb::ExtFrame
        } else {
            Frame {
                nwid,
                ethertype,
                payload,
            }
            .write(&mut body);
            Verb::Frame
        };
        self.stats.vl2.frames_sent += 1;
        let _ = self.send_to_peer(now, to, verb, &body);
    }

    /// `Multicaster::send`: to `limit` recipients when enough are known (bridges first), else
    /// to those known plus a gather, keeping the frame for members the gather turns up.
    #[allow(clippy::too_many_arguments)]
    fn send_multicast(
        &mut self,
        now: u64,
        nwid: NetworkId,
        group: MulticastGroup,
        src_mac: Mac,
        ethertype: u16,
        payload: &[u8],
        origin: Option<Address>,
    ) {
        let me = self.address();
        let Some(config) = self.vl2.networks.get(&nwid).and_then(|n| n.config.as_ref()) else {
            return;
        };
        let limit = config.multicast_limit as usize;
        let bridges: Vec<Address> = config
            .active_bridges()
            .filter(|b| *b != me && Some(*b) != origin)
            .collect();
        // With replicators on the network, members hand multicasts to the nearest one.
        let replicators: Vec<Address> = config
            .specialists_with(SPECIALIST_MULTICAST_REPLICATOR)
            .collect();
        let we_bridge = config.active_bridges().any(|b| b == me);
        let replicating = origin.is_some() || replicators.contains(&me) || we_bridge;
        if !replicators.is_empty() && !replicating {
            let nearest = replicators
                .iter()
                .filter_map(|r| {
                    let p = self.peers.get(r)?;
                    p.has_alive_path(now)
                        .then(|| (p.latency_ms.unwrap_or(u32::MAX), *r))
                })
                .min();
            if let Some((_, replicator)) = nearest {
                self.push_credentials_if_needed(now, nwid, replicator);
                let mut body = Vec::with_capacity(40 + payload.len());
                MulticastFrame {
                    nwid,
                    flags: MULTICAST_FRAME_FLAG_REPLICATE,
                    com: None,
                    gather_limit: None,
                    source: Some(src_mac),
                    group,
                    ethertype,
                    payload,
                }
                .write(&mut body);
                self.stats.vl2.multicast_frames_sent += 1;
                let _ = self.send_to_peer(now, replicator, Verb::MulticastFrame, &body);
                return;
            }
        }
        let revoked = |a: &Address| {
            self.vl2
                .networks
                .get(&nwid)
                .and_then(|n| n.members.get(a))
                .is_some_and(|m| m.is_revoked())
        };
        let mut known: Vec<Address> = self
            .vl2
            .subscribers
            .members(nwid, group)
            .map(|m| {
                m.keys()
                    .copied()
                    .filter(|a| *a != me && Some(*a) != origin && !revoked(a))
                    .collect()
            })
            .unwrap_or_default();
        self.shuffle(&mut known);
        let mut recipients = bridges.clone();
        for a in known.iter() {
            if !recipients.contains(a) {
                recipients.push(*a);
            }
        }
        let enough = known.len() >= limit;
        recipients.truncate(limit);
        let gather_limit = if enough {
            1
        } else {
            (limit - known.len() + 1) as u32
        };
        if !enough {
            let last = self
                .vl2
                .networks
                .get(&nwid)
                .and_then(|n| n.last_gather.get(&group).copied());
            if known.is_empty()
                || last.is_none_or(|t| now.saturating_sub(t) >= MULTICAST_EXPLICIT_GATHER_DELAY)
            {
                self.send_gathers(now, nwid, group, gather_limit);
            }
        }
        for to in &recipients {
            self.send_multicast_frame(
                now,
                nwid,
                *to,
                group,
                src_mac,
                ethertype,
                payload,
                Some(gather_limit),
            );
        }
        if !enough {
            if let Some(network) = self.vl2.networks.get_mut(&nwid) {
                if network.pending_multicasts.len() >= MAX_PENDING_MULTICASTS {
                    network.pending_multicasts.remove(0);
                }
                network.pending_multicasts.push(PendingMulticast {
                    created: now,
                    group,
                    src_mac,
                    ethertype,
                    payload: payload.to_vec(),
                    sent_to: recipients.into_iter().collect(),
                    limit,
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send_multicast_frame(
        &mut self,
        now: u64,
        nwid: NetworkId,
        to: Address,
        group: MulticastGroup,
        src_mac: Mac,
        ethertype: u16,
        payload: &[u8],
        gather_limit: Option<u32>,
    ) {
        let own_mac = Mac::from_address(self.address(), nwid);
        self.push_credentials_if_needed(now, nwid, to);
        let mut body = Vec::with_capacity(40 + payload.len());
        MulticastFrame {
            nwid,
            flags: 0,
            com: None,
            gather_limit,
            source: (src_mac != own_mac).then_some(src_mac),
            group,
            ethertype,
            payload,
        }
        .write(&mut body);
        self.stats.vl2.multicast_frames_sent += 1;
        let _ = self.send_to_peer(now, to, Verb::MulticastFrame, &body);
    }

    /// MULTICAST_GATHER with our COM to the best root, the controller, then anchors and
    /// replicators (at most 16).
    fn send_gathers(&mut self, now: u64, nwid: NetworkId, group: MulticastGroup, limit: u32) {
        let me = self.address();
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return;
        };
        network.last_gather.insert(group, now);
        let Some(config) = network.config.as_ref() else {
            return;
        };
        let com = config.com.as_ref().map(CertificateOfMembership::to_bytes);
        let mut specialists: Vec<Address> = config
            .specialists_with(SPECIALIST_ANCHOR | SPECIALIST_MULTICAST_REPLICATOR)
            .collect();
        let mut recipients: Vec<Address> = Vec::new();
        if let Some((root, _, _)) = self.best_upstream(now, &[]) {
            recipients.push(root);
        }
        if !nwid.is_adhoc() {
            recipients.push(nwid.controller());
        }
        self.shuffle(&mut specialists);
        recipients.extend(specialists);
        let mut seen = HashSet::new();
        recipients.retain(|a| *a != me && seen.insert(*a));
        recipients.truncate(MAX_GATHER_RECIPIENTS);
        let mut body = Vec::with_capacity(32 + com.as_ref().map_or(0, Vec::len));
        MulticastGather {
            nwid,
            flags: 0,
            group,
            gather_limit: limit,
            com: com.as_deref(),
        }
        .write(&mut body);
        for to in recipients {
            self.stats.vl2.gathers_sent += 1;
            let _ = self.send_to_peer(now, to, Verb::MulticastGather, &body);
        }
    }

    /// New subscribers of a group from a gather answer: remember them and send waiting
    /// multicasts to them until each reaches its limit.
    pub(crate) fn learn_members(
        &mut self,
        now: u64,
        nwid: NetworkId,
        group: MulticastGroup,
        members: &[Address],
    ) {
        let me = self.address();
        if !self.vl2.networks.contains_key(&nwid) {
            return;
        }
        for m in members.iter().filter(|m| **m != me) {
            if !self.vl2.subscribers.subscribe(now, nwid, group, *m) {
                self.stats.vl2.likes_refused += 1;
            }
        }
        self.send_waiting_multicasts(now, nwid, group, members);
    }

    /// Multicasts of a joined network waiting for subscribers of `group` go to `members`,
    /// each until it reaches its limit.
    fn send_waiting_multicasts(
        &mut self,
        now: u64,
        nwid: NetworkId,
        group: MulticastGroup,
        members: &[Address],
    ) {
        let me = self.address();
        let mut sends = Vec::new();
        if let Some(network) = self.vl2.networks.get_mut(&nwid) {
            for pending in network
                .pending_multicasts
                .iter_mut()
                .filter(|p| p.group == group)
            {
                for m in members.iter().filter(|m| **m != me) {
                    if pending.sent_to.len() >= pending.limit {
                        break;
                    }
                    if pending.sent_to.insert(*m) {
                        sends.push((
                            *m,
                            pending.src_mac,
                            pending.ethertype,
                            pending.payload.clone(),
                        ));
                    }
                }
            }
        }
        for (to, src_mac, ethertype, payload) in sends {
            self.send_multicast_frame(now, nwid, to, group, src_mac, ethertype, &payload, None);
        }
    }

    /// Subscribes the tap to a multicast group and announces it at once.
    pub fn multicast_subscribe(&mut self, now: u64, nwid: NetworkId, mac: Mac, adi: u32) -> bool {
        let now = self.clock(now);
        let group = MulticastGroup { mac, adi };
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return false;
        };
        let added = network.subscriptions.insert(group);
        if added && network.config.is_some() {
            self.announce_multicast_groups(now, nwid, Some(&[group]));
        }
        added
    }

    /// Drops a subscription (peers forget it when it expires).
    pub fn multicast_unsubscribe(&mut self, nwid: NetworkId, mac: Mac, adi: u32) -> bool {
        self.vl2
            .networks
            .get_mut(&nwid)
            .is_some_and(|n| n.subscriptions.remove(&MulticastGroup { mac, adi }))
    }

    /// Replaces the tap's subscriptions on `nwid` with `groups` (what the OS says the
    /// interface listens to), announcing the new ones at once in as few LIKEs as fit; gone
    /// ones are dropped and expire at the peers. The groups the node adds itself (broadcast,
    /// its assigned addresses) are announced whatever this set holds. `None` if `nwid` is not
    /// joined.
    pub fn set_multicast_subscriptions(
        &mut self,
        now: u64,
        nwid: NetworkId,
        groups: BTreeSet<MulticastGroup>,
    ) -> Option<SubscriptionChange> {
        let now = self.clock(now);
        let network = self.vl2.networks.get_mut(&nwid)?;
        let change = SubscriptionChange {
            added: groups.difference(&network.subscriptions).copied().collect(),
            removed: network.subscriptions.difference(&groups).copied().collect(),
        };
        network.subscriptions = groups;
        if !change.added.is_empty() && network.config.is_some() {
            self.announce_multicast_groups(now, nwid, Some(&change.added));
        }
        Some(change)
    }

    // -----------------------------------------------------------------------------------------
    // Announcing subscriptions

    pub(crate) fn announce_multicast_due(&mut self, now: u64) {
        let due: Vec<NetworkId> = self
            .vl2
            .networks
            .values()
            .filter(|n| n.config.is_some())
            .filter(|n| {
                n.last_announce
                    .is_none_or(|t| now.saturating_sub(t) >= MULTICAST_ANNOUNCE_PERIOD)
            })
            .map(|n| n.nwid)
            .collect();
        for nwid in due {
            self.announce_multicast_groups(now, nwid, None);
        }
    }

    /// LIKEs (all groups, or just `only`) to the controller, anchors, replicators, upstreams
    /// and the members that pass the gate.
    pub(crate) fn announce_multicast_groups(
        &mut self,
        now: u64,
        nwid: NetworkId,
        only: Option<&[MulticastGroup]>,
    ) {
        let me = self.address();
        let Some(network) = self.vl2.networks.get(&nwid) else {
            return;
        };
        let Some(config) = &network.config else {
            return;
        };
        let mut recipients: Vec<Address> = Vec::new();
        if !nwid.is_adhoc() {
            recipients.push(nwid.controller());
        }
        recipients
            .extend(config.specialists_with(SPECIALIST_ANCHOR | SPECIALIST_MULTICAST_REPLICATOR));
        let upstreams: Vec<Address> = self
            .topology
            .upstreams()
            .iter()
            .map(|u| u.identity.address())
            .collect();
        recipients.extend(upstreams.iter().copied());
        let members: Vec<Address> = network.members.keys().copied().collect();
        for m in members {
            if self.gate(nwid, m) {
                recipients.push(m);
            }
        }
        let mut seen = HashSet::new();
        recipients.retain(|a| *a != me && seen.insert(*a));
        if let Some(network) = self.vl2.networks.get_mut(&nwid) {
            if only.is_none() {
                network.last_announce = Some(now);
            }
            for r in &recipients {
                if let Some(m) = network.members.get_mut(r) {
                    m.last_announced = Some(now);
                }
            }
        }
        let mut upstream_missed = false;
        for to in recipients {
            let delivered = self.announce_to(now, nwid, to, only);
            upstream_missed |= !delivered && upstreams.contains(&to);
        }
        // An upstream we could not reach yet (a join right after start, before the first
        // path to the root) would otherwise not hear of our groups for a whole period, and
        // no gather would find us: retry at the next tick instead.
        if upstream_missed && only.is_none() {
            if let Some(network) = self.vl2.networks.get_mut(&nwid) {
                network.last_announce = None;
            }
        }
    }

    /// Our subscriptions on `nwid` (or just `only`) to one peer; whether every LIKE left
    /// (or waits for the peer's identity).
    pub(crate) fn announce_to(
        &mut self,
        now: u64,
        nwid: NetworkId,
        to: Address,
        only: Option<&[MulticastGroup]>,
    ) -> bool {
        let groups: Vec<MulticastGroup> = match only {
            Some(groups) => groups.to_vec(),
            None => match self.vl2.networks.get(&nwid) {
                Some(n) => n.announced_groups().into_iter().collect(),
                None => return false,
            },
        };
        let mut delivered = true;
        for batch in groups.chunks(LIKES_PER_PACKET) {
            let like = MulticastLike {
                entries: batch.iter().map(|g| (nwid, *g)).collect(),
            };
            let mut body = Vec::with_capacity(batch.len() * 18);
            like.write(&mut body);
            self.stats.vl2.likes_sent += 1;
            delivered &= self
                .send_to_peer(now, to, Verb::MulticastLike, &body)
                .is_ok();
        }
        delivered
    }

    // -----------------------------------------------------------------------------------------
    // From peers

    /// The network's config if we are in it, else counts the packet as not for us.
    fn joined_config_check(&mut self, nwid: NetworkId) -> bool {
        let ok = self
            .vl2
            .networks
            .get(&nwid)
            .is_some_and(|n| n.config.is_some());
        if !ok {
            self.stats.vl2.not_member += 1;
        }
        ok
    }

    /// Runs the gate. On failure the packet is held (a credentials push may be on its way,
    /// as the reference keeps it in its receive queue) and, unless this is a retry of a held
    /// packet, answered with ERROR NEED_MEMBERSHIP_CERTIFICATE.
    fn gate_or_hold(
        &mut self,
        from: &Inbound,
        verb: Verb,
        nwid: NetworkId,
        payload: &[u8],
    ) -> bool {
        if self.gate(nwid, from.source) {
            self.gate_passed(from, nwid);
            return true;
        }
        let retry = self.vl2.retrying.is_some();
        let received = self.vl2.retrying.unwrap_or(from.now);
        if self.vl2.held.len() < HELD_PACKETS_LIMIT {
            self.vl2.held.push(HeldPacket {
                received,
                from: *from,
                verb,
                payload: payload.to_vec(),
            });
        }
        if retry {
            return false;
        }
        self.stats.vl2.frames_gated += 1;
        let mut body = Vec::with_capacity(18);
        ErrorPayload {
            in_re_verb: verb,
            in_re_packet_id: from.packet_id,
            code: ErrorCode::NeedMembershipCertificate,
            body: ErrorBody::Network(nwid),
        }
        .write(&mut body);
        self.vl2_reply(from, Verb::Error, &body);
        false
    }

    fn learn_inline_com(&mut self, now: u64, com: Option<&[u8]>) {
        if let Some(bytes) = com {
            match CertificateOfMembership::parse(bytes) {
                Ok(com) => self.learn_com(now, &com),
                Err(_) => self.stats.vl2.credentials_rejected += 1,
            }
        }
    }

    /// A source MAC other than the sender's own is allowed only from an active bridge, whose
    /// route we then learn.
    fn bridging_allowed(&mut self, from: &Inbound, nwid: NetworkId, src: Mac) -> bool {
        if src == Mac::from_address(from.source, nwid) {
            return true;
        }
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return false;
        };
        let is_bridge = network
            .config
            .as_ref()
            .is_some_and(|c| c.active_bridges().any(|b| b == from.source));
        let room = network.bridge_routes.len() < MAX_BRIDGE_ROUTES
            || network.bridge_routes.contains_key(&src);
        if is_bridge && room {
            network.bridge_routes.insert(src, from.source);
        }
        is_bridge
    }

    /// A frame for the tap. When it is the tail of the packet [`Node::decapsulate`] is
    /// dispatching, it is made in place in the caller's buffer; otherwise (an emulated
    /// neighbour advertisement, a held packet let through later) it becomes an event.
    fn deliver(
        &mut self,
        nwid: NetworkId,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) {
        self.stats.vl2.frames_received += 1;
        let header = EthernetHeader {
            destination: dst_mac,
            source: src_mac,
            ethertype,
        };
        let packet_tail = self.in_place.packet_end == Some(payload.as_ptr_range().end as usize);
        if packet_tail && self.in_place.delivery.is_none() {
            self.in_place.delivery = Some(InPlaceDelivery {
                nwid,
                header,
                payload_len: payload.len(),
            });
            return;
        }
        self.events.push_back(Event::Frame {
            nwid,
            src_mac,
            dst_mac,
            ethertype,
            payload: payload.to_vec(),
        });
    }

    pub(crate) fn handle_frame(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(frame) = Frame::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let nwid = frame.nwid;
        if !self.joined_config_check(nwid) || !self.gate_or_hold(from, Verb::Frame, nwid, payload) {
            return;
        }
        let me = self.address();
        let own_mac = Mac::from_address(me, nwid);
        let src = Mac::from_address(from.source, nwid);
        let outcome = self.run_rules(
            nwid,
            true,
            from.source,
            from.source,
            me,
            src,
            own_mac,
            frame.ethertype,
            frame.payload,
        );
        if self
            .apply_inbound_outcome(
                from.now,
                nwid,
                outcome,
                src,
                own_mac,
                frame.ethertype,
                frame.payload,
            )
            .is_some()
        {
            self.deliver(nwid, src, own_mac, frame.ethertype, frame.payload);
        }
    }

    pub(crate) fn handle_ext_frame(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(frame) = ExtFrame::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let nwid = frame.nwid;
        if !self.joined_config_check(nwid) {
            return;
        }
        self.learn_inline_com(from.now, frame.com);
        if !self.gate_or_hold(from, Verb::ExtFrame, nwid, payload) {
            return;
        }
        let me = self.address();
        let own_mac = Mac::from_address(me, nwid);
        if frame.source == Mac::default() || frame.source == own_mac {
            self.stats.vl2.frames_dropped += 1;
            return;
        }
        let outcome = self.run_rules(
            nwid,
            true,
            from.source,
            from.source,
            me,
            frame.source,
            frame.destination,
            frame.ethertype,
            frame.payload,
        );
        let Some(super_accept) = self.apply_inbound_outcome(
            from.now,
            nwid,
            outcome,
            frame.source,
            frame.destination,
            frame.ethertype,
            frame.payload,
        ) else {
            self.ack_ext_frame(from, &frame);
            return;
        };
        if !super_accept && !self.bridging_allowed(from, nwid, frame.source) {
            self.stats.vl2.frames_dropped += 1;
            return;
        }
        if !super_accept && frame.destination != own_mac {
            let Some(config) = self.vl2.networks.get(&nwid).and_then(|n| n.config.as_ref()) else {
                return;
            };
            let allowed = if frame.destination.is_multicast() {
                config.multicast_limit != 0
            } else {
                config.active_bridges().any(|b| b == me)
            };
            if !allowed {
                self.stats.vl2.frames_dropped += 1;
                return;
            }
        }
        self.ack_ext_frame(from, &frame);
        self.deliver(
            nwid,
            frame.source,
            frame.destination,
            frame.ethertype,
            frame.payload,
        );
    }

    /// OK(EXT_FRAME) when the sender asked (a WATCH copy), once the frame got past the early
    /// checks, delivered or filtered.
    fn ack_ext_frame(&mut self, from: &Inbound, frame: &ExtFrame<'_>) {
        if frame.ack_requested() {
            let mut body = Vec::with_capacity(17);
            OkPayload {
                in_re_verb: Verb::ExtFrame,
                in_re_packet_id: from.packet_id,
                body: OkBody::ExtFrame(frame.nwid),
            }
            .write(&mut body);
            self.vl2_reply(from, Verb::Ok, &body);
        }
    }

    pub(crate) fn handle_multicast_frame(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(frame) = MulticastFrame::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let nwid = frame.nwid;
        if !self.joined_config_check(nwid) {
            return;
        }
        self.learn_inline_com(from.now, frame.com);
        if !self.gate_or_hold(from, Verb::MulticastFrame, nwid, payload) {
            return;
        }
        let me = self.address();
        let own_mac = Mac::from_address(me, nwid);
        let Some(config) = self.vl2.networks.get(&nwid).and_then(|n| n.config.as_ref()) else {
            return;
        };
        let src = frame
            .source
            .unwrap_or_else(|| Mac::from_address(from.source, nwid));
        let broadcast = frame.group.mac.is_broadcast() && frame.group.adi == 0;
        if broadcast && !config.enable_broadcast() {
            self.stats.vl2.broadcast_dropped += 1;
            return;
        }
        let valid = config.multicast_limit != 0
            && !frame.payload.is_empty()
            && frame.payload.len() <= MAX_FRAME_LEN
            && frame.group.mac.is_multicast()
            && src != Mac::default()
            && !src.is_multicast()
            && src != own_mac;
        if !valid {
            self.stats.vl2.frames_dropped += 1;
            return;
        }
        let replicate = frame.flags & MULTICAST_FRAME_FLAG_REPLICATE != 0
            && config
                .specialists_with(SPECIALIST_MULTICAST_REPLICATOR)
                .any(|r| r == me);
        if replicate {
            let (group, ethertype) = (frame.group, frame.ethertype);
            self.send_multicast(
                from.now,
                nwid,
                group,
                src,
                ethertype,
                frame.payload,
                Some(from.source),
            );
        }
        if !self.bridging_allowed(from, nwid, src) {
            self.stats.vl2.frames_dropped += 1;
            return;
        }
        self.stats.vl2.multicast_frames_received += 1;
        let zero = Address::default();
        let outcome = self.run_rules(
            nwid,
            true,
            from.source,
            from.source,
            zero,
            src,
            frame.group.mac,
            frame.ethertype,
            frame.payload,
        );
        if self
            .apply_inbound_outcome(
                from.now,
                nwid,
                outcome,
                src,
                frame.group.mac,
                frame.ethertype,
                frame.payload,
            )
            .is_some()
        {
            self.deliver(nwid, src, frame.group.mac, frame.ethertype, frame.payload);
        }
        if let Some(limit) = frame.gather_limit.filter(|l| *l > 0) {
            let gathered = self.gather_members(nwid, frame.group, limit, from.source);
            if gathered.members.is_empty() {
                return;
            }
            let mut body = Vec::with_capacity(32 + gathered.members.len() * 5);
            OkPayload {
                in_re_verb: Verb::MulticastFrame,
                in_re_packet_id: from.packet_id,
                body: OkBody::MulticastFrame(OkMulticastFrame {
                    nwid,
                    group: frame.group,
                    flags: 0,
                    com: None,
                    gathered: Some(gathered),
                }),
            }
            .write(&mut body);
            self.vl2_reply(from, Verb::Ok, &body);
        }
    }

    /// Whether `from` may tell us about (or ask about) subscriptions on `nwid`: a member that
    /// passes the gate, anyone if we are a root, or a member our controller just authorized.
    fn multicast_peer_allowed(&self, now: u64, nwid: NetworkId, peer: Address) -> bool {
        self.topology.am_upstream()
            || self.gate(nwid, peer)
            || self
                .vl2
                .authorized_by_us
                .get(&(nwid, peer))
                .is_some_and(|t| now.saturating_sub(*t) < super::LOCAL_AUTHORIZATION_WINDOW)
    }

    pub(crate) fn handle_multicast_like(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(like) = MulticastLike::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        for (nwid, group) in like.entries {
            if !self.multicast_peer_allowed(from.now, nwid, from.source) {
                self.stats.vl2.likes_refused += 1;
                continue;
            }
            // Each entry counts once: refused when a table limit keeps it out.
            if !self
                .vl2
                .subscribers
                .subscribe(from.now, nwid, group, from.source)
            {
                self.stats.vl2.likes_refused += 1;
                continue;
            }
            self.stats.vl2.likes_accepted += 1;
            // Multicasts waiting for subscribers of this group may go to it now.
            self.send_waiting_multicasts(from.now, nwid, group, &[from.source]);
        }
    }

    pub(crate) fn handle_multicast_gather(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(gather) = MulticastGather::read(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let nwid = gather.nwid;
        self.learn_inline_com(from.now, gather.com);
        // A member of the network must pass its gate, root or not (`_doMULTICAST_GATHER`).
        if self.vl2.networks.contains_key(&nwid)
            && !self.gate_or_hold(from, Verb::MulticastGather, nwid, payload)
        {
            return;
        }
        if gather.gather_limit == 0 || !self.multicast_peer_allowed(from.now, nwid, from.source) {
            return;
        }
        let gathered = self.gather_members(nwid, gather.group, gather.gather_limit, from.source);
        if gathered.members.is_empty() {
            return;
        }
        self.stats.vl2.gathers_answered += 1;
        let mut body = Vec::with_capacity(32 + gathered.members.len() * 5);
        OkPayload {
            in_re_verb: Verb::MulticastGather,
            in_re_packet_id: from.packet_id,
            body: OkBody::MulticastGather(OkMulticastGather {
                nwid,
                group: gather.group,
                gathered,
            }),
        }
        .write(&mut body);
        self.vl2_reply(from, Verb::Ok, &body);
    }

    /// Up to `limit` random subscribers of a group other than `requester`, ourselves included
    /// if we are subscribed.
    fn gather_members(
        &mut self,
        nwid: NetworkId,
        group: MulticastGroup,
        limit: u32,
        requester: Address,
    ) -> GatherMembers {
        let me = self.address();
        let mut members: Vec<Address> = self
            .vl2
            .subscribers
            .members(nwid, group)
            .map(|m| {
                m.keys()
                    .copied()
                    .filter(|a| *a != requester && *a != me)
                    .collect()
            })
            .unwrap_or_default();
        let subscribed = self
            .vl2
            .networks
            .get(&nwid)
            .is_some_and(|n| n.config.is_some() && n.announced_groups().contains(&group));
        self.shuffle(&mut members);
        if subscribed && requester != me {
            members.insert(0, me);
        }
        let total_known = u32::try_from(members.len()).unwrap_or(u32::MAX);
        members.truncate((limit as usize).min(0xffff).min(MAX_GATHER_ANSWER));
        GatherMembers {
            total_known,
            members,
        }
    }

    /// Fisher–Yates with the node's RNG.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.rng.next_u32() as usize) % (i + 1);
            items.swap(i, j);
        }
    }
}
