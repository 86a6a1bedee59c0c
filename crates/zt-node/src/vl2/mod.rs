//! VL2: virtual Ethernet networks on top of VL1 (PROTOCOL.md §6).
//!
//! VL1 authenticates and decrypts every packet, then hands the VL2 verbs (FRAME, EXT_FRAME,
//! MULTICAST_*, NETWORK_*) and the OK/ERROR replies to them to [`Node::vl2_packet`],
//! [`Node::vl2_ok`] and [`Node::vl2_error`]. The layer is split by concern:
//!
//! - `network`: per-network state (status, config, MAC, subscriptions, members) and the
//!   console's [`NetworkInfo`] view;
//! - `config`: joining, NETWORK_CONFIG_REQUEST, signed config chunks, ERRORs from the
//!   controller, and the local-controller hook (`Event::ConfigRequest` →
//!   [`Node::send_network_config`] / [`Node::send_network_error`]);
//! - `credentials`: NETWORK_CREDENTIALS both ways, revocations, and the membership gate
//!   (§6.5, §6.8);
//! - `switch`: frames from the tap ([`Node::send_frame`]) and from peers, multicast
//!   (LIKE, GATHER, MULTICAST_FRAME, §6.9) and bridging (§6.11);
//! - `rules`: the rules engine (network rules, then capabilities; TEE/WATCH/REDIRECT copies);
//! - `ndp`: IPv6 neighbour discovery emulation for RFC 4193 / 6plane addresses.
//!
//! Not implemented (documented gaps): the sender-IP/MAC-authenticated (COO) characteristics
//! bits of the rules engine, which never match. Replicated multicasts keep the original
//! source MAC, which members accept only from active bridges (as the reference does), so a
//! multicast replicator must also be an active bridge.

mod config;
mod credentials;
mod ndp;
mod network;
mod rules;
pub(crate) mod subscriptions;
mod switch;

pub(crate) use network::Network;
pub use network::{JoinSettings, NetworkInfo, NetworkStatus, SubscriptionChange};

use crate::node::{Inbound, Node};
use std::collections::{BTreeMap, HashMap};
use zt_crypto::Address;
use zt_wire::header::Verb;
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::error::ErrorPayload;
use zt_wire::verbs::ok::{OkBody, OkPayload};

/// Re-request a config this often once we have one (`ZT_NETWORK_AUTOCONF_DELAY`); while we
/// have none, at every ping check (5 s).
pub const CONFIG_REFRESH_PERIOD: u64 = 60_000;
/// ... but not within this of the previous request (the one `join` sends at once); the
/// controller ignores repeats this close anyway (`ZT_NETCONF_MIN_REQUEST_PERIOD`).
pub const CONFIG_RETRY_PERIOD: u64 = 1_000;
/// Multicast subscriptions learned from LIKEs expire after this (`ZT_MULTICAST_LIKE_EXPIRE`).
pub const MULTICAST_LIKE_EXPIRE: u64 = 600_000;
/// Re-announce our subscriptions this often (`ZT_MULTICAST_ANNOUNCE_PERIOD`).
pub const MULTICAST_ANNOUNCE_PERIOD: u64 = 60_000;
/// Explicit gathers for one group at most this often.
pub const MULTICAST_EXPLICIT_GATHER_DELAY: u64 = 60_000;
/// A multicast waits this long for gather answers (`ZT_MULTICAST_TRANSMIT_TIMEOUT`).
pub const MULTICAST_TRANSMIT_TIMEOUT: u64 = 5_000;
/// Inbound NETWORK_CREDENTIALS per peer (`ZT_PEER_CREDENTIALS_RATE_LIMIT`).
pub const CREDENTIALS_RATE_LIMIT: u64 = 1_000;
/// Re-push on NEED_MEMBERSHIP_CERTIFICATE at most this often.
pub const CREDENTIALS_REQUEST_RATE_LIMIT: u64 = 1_000;
/// Credentials are re-pushed before frames when the last push is older than this.
pub const CREDENTIALS_PUSH_PERIOD: u64 = 500_000;
/// A member our local controller authorized this recently may LIKE and GATHER
/// (`localControllerHasAuthorized`: 3 × 60 s).
pub const LOCAL_AUTHORIZATION_WINDOW: u64 = 180_000;
/// Most gather/explicit recipients and bridge fan-out.
pub const MAX_GATHER_RECIPIENTS: usize = 16;
pub const MAX_BRIDGE_BROADCAST: usize = 32;
/// Largest Ethernet payload a frame may carry (`ZT_MAX_MTU`).
pub const MAX_FRAME_LEN: usize = 10_000;
/// Credential packets waiting for the controller's identity.
pub const PENDING_CREDENTIALS_LIMIT: usize = 64;
/// Multicasts from the tap waiting for gather answers, per network.
pub const MAX_PENDING_MULTICASTS: usize = 256;
/// MACs learned behind active bridges, per network.
pub const MAX_BRIDGE_ROUTES: usize = 65_536;
/// Packets held after failing the gate, waiting for the sender's credentials (each for
/// `QUEUE_TIMEOUT`, like the reference's receive queue).
pub const HELD_PACKETS_LIMIT: usize = 64;

/// VL2 counters. All monotonic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vl2Stats {
    /// VL2 packets for a network we have not joined (or have no config for).
    pub not_member: u64,
    pub config_requests_sent: u64,
    /// Config requests for networks we control, handed to the daemon.
    pub config_requests_received: u64,
    /// Config requests for networks that are not ours (ignored silently).
    pub config_requests_not_ours: u64,
    pub configs_applied: u64,
    /// Chunks whose signature does not verify against the controller.
    pub config_bad_signature: u64,
    /// Chunks that are out of bounds, oversize or inconsistent with earlier chunks.
    pub config_bad_chunk: u64,
    /// Chunks whose controller identity we do not know (dropped, as the reference does).
    pub config_unknown_controller: u64,
    /// Assembled configs refused: unparseable, wrong `nwid`, `id` not ours, or `v` < 6.
    pub config_rejected: u64,
    /// Config chunks or errors about a network from a node that is not its controller.
    pub not_from_controller: u64,
    pub credentials_sent: u64,
    pub credentials_accepted: u64,
    pub credentials_rejected: u64,
    pub credentials_rate_limited: u64,
    pub revocations_accepted: u64,
    /// Frames and gathers refused by the membership gate (answered with
    /// NEED_MEMBERSHIP_CERTIFICATE).
    pub frames_gated: u64,
    /// Frames dropped by the network's rules (both directions).
    pub frames_filtered: u64,
    /// Frames dropped by the bridging, MAC, size or multicast checks.
    pub frames_dropped: u64,
    pub frames_received: u64,
    pub frames_sent: u64,
    pub multicast_frames_sent: u64,
    pub multicast_frames_received: u64,
    /// Broadcasts not sent or not delivered because the network disables broadcast.
    pub broadcast_dropped: u64,
    pub likes_sent: u64,
    pub likes_accepted: u64,
    pub likes_refused: u64,
    pub gathers_sent: u64,
    pub gathers_answered: u64,
    /// Frames from the tap that could not be sent (no config, too large, no route).
    pub tap_frames_dropped: u64,
}

/// Why a VL2 call from the daemon was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Vl2Error {
    #[error("network {0} is not joined")]
    NotJoined(NetworkId),
    #[error("we are not the controller of network {0}")]
    NotController(NetworkId),
    #[error("config refused: {0}")]
    BadConfig(&'static str),
    #[error("config could not be encoded: {0}")]
    Encode(String),
}

/// Why [`Node::send_frame`] did not send a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("network not joined")]
    NotJoined,
    #[error("network has no config yet")]
    NoConfig,
    #[error("frame larger than the network MTU")]
    TooLarge,
    #[error("source MAC is not ours and we are not an active bridge")]
    NotBridge,
    #[error("broadcast is disabled on this network")]
    BroadcastDisabled,
    #[error("multicast is disabled on this network (multicast limit 0)")]
    MulticastDisabled,
    #[error("destination MAC is ours")]
    ToSelf,
    #[error("no member or bridge owns the destination MAC")]
    NoRoute,
    #[error("the destination member's membership was revoked")]
    Revoked,
    #[error("dropped by the network's rules")]
    Filtered,
    #[error("shorter than an Ethernet header")]
    Malformed,
}

/// Bytes of a FRAME packet before the Ethernet payload: the packet header (verb included)
/// and the FRAME prefix (network ID, ethertype).
pub const FRAME_PACKET_PREFIX: usize =
    zt_wire::header::HEADER_LEN + zt_wire::verbs::frame::FRAME_PREFIX_LEN;

/// Room [`Node::encapsulate_frame`] needs before an Ethernet frame to turn it into a FRAME
/// packet in place (the Ethernet header itself is overwritten).
pub const FRAME_HEADROOM: usize = FRAME_PACKET_PREFIX - zt_wire::ethernet::ETHERNET_HEADER_LEN;

/// Output room [`Node::encapsulate_frame`] needs: the datagrams of the largest packet.
pub const DATAGRAMS_CAPACITY: usize = zt_wire::header::MAX_PACKET_LEN
    + (zt_wire::fragment::MAX_PIECES - 1) * zt_wire::fragment::FRAGMENT_HEADER_LEN;

/// What [`Node::encapsulate_frame`] did with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encapsulated {
    /// Send these datagrams, written to the caller's output buffer.
    Send(Datagrams),
    /// Handed to the general path: whatever it sends waits in `poll_transmit`.
    Queued,
    /// Not sent (counted).
    Dropped(FrameError),
}

/// Datagrams of one packet in the caller's output buffer, all for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagrams {
    pub local_socket: crate::node::LocalSocketId,
    pub remote: std::net::SocketAddr,
    /// Where they are: back to back from the start of the output buffer.
    pub layout: zt_wire::fragment::DatagramLayout,
}

/// Where a frame from the tap goes once checked and filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FramePlan {
    /// FRAME (EXT_FRAME when `ext`: bridged source) to one member.
    Unicast { to: zt_crypto::Address, ext: bool },
    /// Sent already (multicast, bridges, an emulated answer) or redirected by the rules.
    Done,
}

/// A NETWORK_CREDENTIALS packet waiting for its controller's identity.
#[derive(Debug, Clone)]
pub(crate) struct PendingCredentials {
    pub received: u64,
    pub from: Inbound,
    pub payload: Vec<u8>,
    pub waiting_for: Address,
}

/// A frame or gather that failed the gate, retried when the sender's COM arrives.
#[derive(Debug, Clone)]
pub(crate) struct HeldPacket {
    pub received: u64,
    pub from: Inbound,
    pub verb: Verb,
    pub payload: Vec<u8>,
}

/// All VL2 state of a node.
#[derive(Default)]
pub(crate) struct Vl2 {
    pub networks: BTreeMap<NetworkId, Network>,
    /// Multicast subscribers learned from LIKEs and gathers, per (network, group). Kept for
    /// networks we are not in too (roots answer gathers).
    pub subscribers: subscriptions::Subscriptions,
    /// Last NETWORK_CREDENTIALS accepted per peer (the inbound rate gate).
    pub credentials_received: HashMap<Address, u64>,
    pub pending_credentials: Vec<PendingCredentials>,
    /// Members our local controller sent a config to, and when.
    pub authorized_by_us: HashMap<(NetworkId, Address), u64>,
    pub held: Vec<HeldPacket>,
    /// While held packets are retried: when the one being retried first arrived.
    pub retrying: Option<u64>,
}

impl Node {
    /// A VL2 verb from an authenticated peer.
    pub(crate) fn vl2_packet(&mut self, from: &Inbound, verb: Verb, payload: &[u8]) {
        match verb {
            Verb::Frame => self.handle_frame(from, payload),
            Verb::ExtFrame => self.handle_ext_frame(from, payload),
            Verb::MulticastFrame => self.handle_multicast_frame(from, payload),
            Verb::MulticastLike => self.handle_multicast_like(from, payload),
            Verb::MulticastGather => self.handle_multicast_gather(from, payload),
            Verb::NetworkCredentials => self.handle_network_credentials(from, payload),
            Verb::NetworkConfigRequest => self.handle_config_request(from, payload),
            Verb::NetworkConfig => self.handle_config_chunk(from, payload, false),
            _ => self.stats.vl2_unhandled += 1,
        }
    }

    /// OK in reply to a VL2 request we sent (already matched against the expectation table).
    pub(crate) fn vl2_ok(&mut self, from: &Inbound, ok: &OkPayload<'_>) {
        match &ok.body {
            OkBody::NetworkConfig(body) => self.handle_config_chunk(from, body, true),
            OkBody::MulticastGather(g) => {
                self.learn_members(from.now, g.nwid, g.group, &g.gathered.members)
            }
            OkBody::MulticastFrame(f) => {
                if let Some(g) = &f.gathered {
                    self.learn_members(from.now, f.nwid, f.group, &g.members);
                }
            }
            // OK(EXT_FRAME) acknowledges a WATCH copy; ECHO-tagged config acks are ignored
            // as the reference controller does.
            OkBody::ExtFrame(_) | OkBody::Echo(_) => {}
            _ => self.stats.vl2_unhandled += 1,
        }
    }

    /// ERROR about a VL2 request.
    pub(crate) fn vl2_error(&mut self, from: &Inbound, error: &ErrorPayload<'_>) {
        self.handle_vl2_error(from, error);
    }

    /// Periodic VL2 work, run with the ping check (every 5 s): config requests and refreshes,
    /// multicast announcements, expiry.
    pub(crate) fn vl2_tick(&mut self, now: u64) {
        self.request_configs_due(now);
        self.announce_multicast_due(now);
        self.vl2_expire(now);
    }

    /// A WHOIS answer arrived: retry credentials that waited for that controller.
    pub(crate) fn vl2_identity_learned(&mut self, now: u64, addr: Address) {
        if self.vl2.pending_credentials.is_empty() {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.vl2.pending_credentials)
            .into_iter()
            .partition(|p| p.waiting_for == addr);
        self.vl2.pending_credentials = waiting;
        for p in ready {
            let from = Inbound { now, ..p.from };
            self.accept_credentials(&from, &p.payload);
        }
    }

    /// A COM for `member` was accepted: its held packets get another chance.
    pub(crate) fn retry_held(&mut self, now: u64, member: Address) {
        if self.vl2.retrying.is_some() || !self.vl2.held.iter().any(|p| p.from.source == member) {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.vl2.held)
            .into_iter()
            .partition(|p| p.from.source == member);
        self.vl2.held = waiting;
        for p in ready {
            if now.saturating_sub(p.received) >= crate::constants::QUEUE_TIMEOUT {
                continue;
            }
            self.vl2.retrying = Some(p.received);
            let from = Inbound { now, ..p.from };
            self.vl2_packet(&from, p.verb, &p.payload);
            self.vl2.retrying = None;
        }
    }

    fn vl2_expire(&mut self, now: u64) {
        self.vl2.subscribers.expire(now);
        self.vl2
            .pending_credentials
            .retain(|p| now.saturating_sub(p.received) < crate::constants::QUEUE_TIMEOUT);
        self.vl2
            .held
            .retain(|p| now.saturating_sub(p.received) < crate::constants::QUEUE_TIMEOUT);
        self.vl2
            .authorized_by_us
            .retain(|_, t| now.saturating_sub(*t) < LOCAL_AUTHORIZATION_WINDOW);
        self.vl2
            .credentials_received
            .retain(|_, t| now.saturating_sub(*t) < CREDENTIALS_RATE_LIMIT);
        for network in self.vl2.networks.values_mut() {
            network.expire(now);
        }
    }

    /// Whether `ip` is inside an address/prefix assigned to us on a joined network: such an
    /// address is never a physical path (`shouldUsePathForZeroTierTraffic`), whatever the
    /// daemon passed to [`Node::set_virtual_prefixes`].
    pub(crate) fn vl2_assigned_prefix_contains(&self, ip: std::net::IpAddr) -> bool {
        self.vl2
            .networks
            .values()
            .filter_map(|n| n.config.as_ref())
            .flat_map(|c| c.static_ips.iter())
            .any(|a| {
                a.ip().is_some_and(|net| {
                    let bits = u8::try_from(a.bits()).unwrap_or(u8::MAX);
                    crate::path::prefix_contains(net, bits, ip)
                })
            })
    }

    /// Sends a reply on the path the request came in on (relayed if it was relayed).
    pub(crate) fn vl2_reply(&mut self, from: &Inbound, verb: Verb, body: &[u8]) {
        self.send_on(
            from.now,
            from.source,
            Some(from.local_socket),
            from.remote,
            verb,
            body,
            crate::node::compressed_by_default(verb),
            None,
        );
    }
}
