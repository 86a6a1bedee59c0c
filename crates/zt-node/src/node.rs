//! The engine's public face: [`Node`] with its inputs (`handle_datagram`, `handle_timeout`,
//! `send_to_peer`) and outputs (`poll_transmit`, `poll_event`, `poll_timeout`), plus the
//! send machinery and the periodic tasks. The receive pipeline and the verb handlers are in
//! `vl1.rs`, relaying and introductions in `relay.rs`.

use crate::constants::*;
use crate::peer::{Peer, RemoteVersion};
use crate::stats::Stats;
use crate::tables::{ExpectTable, IdentityValidationGate, ReplayFilter};
use crate::topology::{Role, Topology};
use crate::vl2::{NetworkStatus, Vl2};
use crate::whois::{PendingTx, WhoisQueue};
use rand_core::RngCore;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use zt_crypto::{Address, CipherSuite, Identity, PeerKey};
use zt_wire::fragment::Reassembler;
use zt_wire::header::Verb;
use zt_wire::inet::InetAddress;
use zt_wire::verbs::hello::{Hello, MoonRef, WorldRef, WORLD_TYPE_MOON};
use zt_wire::verbs::packet::{build, OutgoingPacket};
use zt_wire::world::World;
use zt_wire::{dictionary::Dictionary, mac::Mac, netconf::NetworkConfig, network_id::NetworkId};

/// Verbs the reference compresses when that pays (PROTOCOL.md §3.7); unicast FRAME and
/// bridged EXT_FRAME are not compressed since 1.4.8.
pub fn compressed_by_default(verb: Verb) -> bool {
    matches!(
        verb,
        Verb::NetworkConfigRequest
            | Verb::NetworkConfig
            | Verb::MulticastLike
            | Verb::NetworkCredentials
            | Verb::PushDirectPaths
            | Verb::MulticastFrame
            | Verb::UserMessage
            | Verb::RemoteTrace
    )
}

/// Names one of the daemon's UDP sockets. The engine only hands it back in [`Transmit`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LocalSocketId(pub u32);

/// A datagram the daemon must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The socket to send from; `None` means any (the daemon's primary socket for the family).
    pub local_socket: Option<LocalSocketId>,
    pub remote: SocketAddr,
    pub data: Vec<u8>,
    /// IP TTL for this datagram only (2 for the NAT-opening junk before a RENDEZVOUS contact).
    pub ttl: Option<u8>,
}

/// Something the daemon (or a console) should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new peer identity was learned (HELLO or WHOIS).
    PeerLearned { address: Address },
    /// A direct path was learned (an OK arrived on it).
    PathUp {
        peer: Address,
        local_socket: LocalSocketId,
        remote: SocketAddr,
    },
    /// A direct path expired.
    PathDown {
        peer: Address,
        local_socket: LocalSocketId,
        remote: SocketAddr,
    },
    /// An upstream was heard from (or we are one).
    Online,
    /// No upstream heard from within the activity window.
    Offline,
    /// A newer planet or moon was accepted; persist it (`planet` or `moons.d/<id>.moon`).
    WorldUpdated { world: World },
    /// USER_MESSAGE from a peer.
    UserMessage {
        source: Address,
        type_id: u64,
        data: Vec<u8>,
    },
    /// An upstream says another node uses our address with a different identity.
    IdentityCollision { reporter: Address },
    /// VL2: a network's config was accepted (or restored). Apply MAC, MTU, addresses and
    /// routes to the tap and save `networks.d/<nwid>.conf`.
    NetworkConfigChanged {
        nwid: NetworkId,
        config: Box<NetworkConfig>,
    },
    /// VL2: a joined network's status changed.
    NetworkStatusChanged {
        nwid: NetworkId,
        status: NetworkStatus,
    },
    /// VL2: an Ethernet frame for the tap of `nwid`.
    Frame {
        nwid: NetworkId,
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        payload: Vec<u8>,
    },
    /// VL2: a config request for a network we control. Answer with
    /// [`Node::send_network_config`] or [`Node::send_network_error`] (`request_packet_id` is
    /// their `in_re`).
    ConfigRequest {
        requester: Identity,
        nwid: NetworkId,
        metadata: Dictionary,
        request_packet_id: u64,
    },
}

/// What the node is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub planet: World,
    pub moons: Vec<World>,
    /// Software version announced in HELLO (major, minor, revision).
    pub version: (u8, u8, u16),
    /// Leave the memory-hard check of a new peer's identity (~10 ms) to the embedder: the
    /// HELLO waits, [`Node::poll_identity_check`] hands the identity out, and
    /// [`Node::identity_checked`] finishes the HELLO, so a daemon can run the checks on a
    /// worker thread and a flood of new identities never delays known peers' packets.
    /// Off: the check runs inside [`Node::handle_datagram`].
    pub defer_identity_checks: bool,
    /// Peers kept before strangers are evicted to make room (see [`MAX_PEERS`]).
    pub max_peers: usize,
}

impl NodeConfig {
    /// The reference release whose protocol (version 12) we implement.
    pub const DEFAULT_VERSION: (u8, u8, u16) = (1, 14, 1);

    pub fn new(planet: World) -> NodeConfig {
        NodeConfig {
            planet,
            moons: Vec::new(),
            version: Self::DEFAULT_VERSION,
            defer_identity_checks: false,
            max_peers: MAX_PEERS,
        }
    }
}

/// Why a node could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("the node identity has no private key")]
    NoPrivateKey,
}

/// Why [`Node::send_to_peer`] could not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("cannot send to our own address")]
    ToSelf,
    #[error("no direct path and no upstream to relay through")]
    NoRoute,
    #[error("payload too large for the fragment limit")]
    TooLarge,
}

/// What [`Node::send_to_peer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Sent now; `packet_id` is the wire ID an OK would name.
    Now { packet_id: u64 },
    /// Waiting for the destination's identity (a WHOIS is out).
    QueuedForWhois,
}

/// A path as shown by the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub remote: SocketAddr,
    pub local_socket: LocalSocketId,
    pub last_send: u64,
    pub last_receive: u64,
    pub active: bool,
    pub preferred: bool,
    pub expired: bool,
}

/// A peer as shown by the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub address: Address,
    /// (major, minor, revision) once the peer told us.
    pub version: Option<(u8, u8, u16)>,
    pub protocol_version: Option<u8>,
    pub latency_ms: Option<u32>,
    pub role: Role,
    pub paths: Vec<PathInfo>,
    /// Has an alive direct path (else traffic is RELAYed).
    pub direct: bool,
}

/// Where a received packet came from, as the handlers see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inbound {
    pub now: u64,
    pub local_socket: LocalSocketId,
    pub remote: SocketAddr,
    pub source: Address,
    pub hops: u8,
    pub packet_id: u64,
}

/// The sans-I/O VL1 engine of one node. Feed it datagrams and timeouts; drain transmits and
/// events. It never reads a clock or an OS RNG: `now` (milliseconds, monotonic) is passed in
/// and randomness comes from the RNG handed to [`Node::new`].
pub struct Node {
    pub(crate) identity: Identity,
    pub(crate) config: NodeConfig,
    pub(crate) rng: Box<dyn RngCore + Send>,
    pub(crate) topology: Topology,
    pub(crate) peers: HashMap<Address, Peer>,
    pub(crate) whois: WhoisQueue,
    pub(crate) expect: ExpectTable,
    pub(crate) replay: ReplayFilter,
    pub(crate) identity_gate: IdentityValidationGate,
    /// HELLOs of new identities waiting for their deferred identity check.
    pub(crate) identity_checks: crate::vl1::IdentityChecks,
    pub(crate) reassembler: Reassembler,
    /// Last RENDEZVOUS introduction per (lower, higher) address pair.
    pub(crate) unites: HashMap<(Address, Address), u64>,
    /// Last OK(ECHO) per (socket, remote), the ECHO reply gate.
    pub(crate) echo_gate: HashMap<(LocalSocketId, SocketAddr), u64>,
    /// Our external addresses as upstreams reported them: reporter → (address, when).
    /// Where upstreams see us (surface addresses), per (upstream, our socket, its address).
    pub(crate) external_addresses: HashMap<(Address, LocalSocketId, SocketAddr), (SocketAddr, u64)>,
    pub(crate) local_addresses: Vec<SocketAddr>,
    /// Addresses/prefixes assigned to us on ZeroTier networks (never used as physical paths).
    pub(crate) virtual_prefixes: Vec<(IpAddr, u8)>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    pub(crate) last_now: u64,
    pub(crate) next_ping_check: u64,
    pub(crate) next_housekeeping: u64,
    pub(crate) online: bool,
    /// VL2: joined networks, multicast subscribers, credentials.
    pub(crate) vl2: Vl2,
    /// The packet being decapsulated in the caller's buffer, and the frame found in it.
    pub(crate) in_place: crate::vl1::InPlaceReceive,
    /// Reused by [`Node::handle_datagram`], the copying form of [`Node::decapsulate`].
    pub(crate) rx_scratch: Vec<u8>,
}

impl Node {
    /// Creates a node. `identity` must include its private key; `rng` supplies packet IDs and
    /// choices (seed it from the OS in the daemon, with a fixed seed in tests).
    pub fn new(
        identity: Identity,
        config: NodeConfig,
        rng: Box<dyn RngCore + Send>,
        now: u64,
    ) -> Result<Node, NodeError> {
        if !identity.has_private() {
            return Err(NodeError::NoPrivateKey);
        }
        let topology = Topology::new(
            identity.address(),
            config.planet.clone(),
            config.moons.clone(),
        );
        let mut node = Node {
            identity,
            config,
            rng,
            topology,
            peers: HashMap::new(),
            whois: WhoisQueue::default(),
            expect: ExpectTable::default(),
            replay: ReplayFilter::default(),
            identity_gate: IdentityValidationGate::default(),
            identity_checks: Default::default(),
            reassembler: Reassembler::default(),
            unites: HashMap::new(),
            echo_gate: HashMap::new(),
            external_addresses: HashMap::new(),
            local_addresses: Vec::new(),
            virtual_prefixes: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_now: now,
            next_ping_check: now,
            next_housekeeping: now + HOUSEKEEPING_PERIOD,
            online: false,
            vl2: Vl2::default(),
            in_place: Default::default(),
            rx_scratch: Vec::with_capacity(zt_wire::header::MAX_PACKET_LEN),
        };
        node.ensure_upstream_peers(now);
        node.update_online(now);
        Ok(node)
    }

    pub fn address(&self) -> Address {
        self.identity.address()
    }
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn planet(&self) -> &World {
        self.topology.planet()
    }
    pub fn moons(&self) -> &[World] {
        self.topology.moons()
    }
    /// We are a root of the planet or of a moon we hold.
    pub fn is_root(&self) -> bool {
        self.topology.am_upstream()
    }
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// How many direct paths to `peer` are alive (0: traffic to it is relayed).
    pub fn alive_paths(&self, peer: Address) -> usize {
        let now = self.last_now;
        self.peers
            .get(&peer)
            .map_or(0, |p| p.paths.iter().filter(|path| path.alive(now)).count())
    }

    /// Orbits a moon from a local file (always accepted).
    pub fn add_moon(&mut self, now: u64, moon: World) {
        self.topology.add_moon(moon);
        self.ensure_upstream_peers(now);
    }
    /// Stops orbiting a moon (held or wanted). The daemon deletes its `moons.d` file.
    pub fn remove_moon(&mut self, id: u64) -> bool {
        self.topology.remove_moon(id)
    }

    /// Orbits a moon we have no file for (`zerotier-cli orbit <id> <seed>`): the seed is
    /// looked up, HELLOed with the moon listed as wanted, and the moon it returns in
    /// OK(HELLO) is accepted ([`Event::WorldUpdated`]; persist it).
    pub fn orbit(&mut self, now: u64, world_id: u64, seed: Address) {
        let now = self.clock(now);
        if seed == self.address() {
            return;
        }
        self.topology.add_seed(world_id, seed);
        if !self.peers.contains_key(&seed) {
            self.request_whois(now, seed);
        }
    }

    /// The host's interface addresses (with our UDP port), pushed to peers in
    /// PUSH_DIRECT_PATHS.
    pub fn set_local_addresses(&mut self, addresses: Vec<SocketAddr>) {
        self.local_addresses = addresses;
    }

    /// What [`Node::set_local_addresses`] last set.
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }

    /// Our addresses as peers upstream of us see them (zerotier-one's surface addresses),
    /// each once, in address order.
    pub fn surface_addresses(&self) -> Vec<SocketAddr> {
        let mut seen: Vec<SocketAddr> = self.external_addresses.values().map(|(a, _)| *a).collect();
        seen.sort();
        seen.dedup();
        seen
    }

    /// Addresses and prefixes assigned to us on ZeroTier networks: never used as physical
    /// paths (that would tunnel ZeroTier inside itself).
    pub fn set_virtual_prefixes(&mut self, prefixes: Vec<(IpAddr, u8)>) {
        self.virtual_prefixes = prefixes;
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t = self.next_ping_check.min(self.next_housekeeping);
        if let Some(w) = self.whois.next_deadline() {
            t = t.min(w);
        }
        Some(t)
    }

    /// Runs due periodic work: WHOIS retries, ping check (HELLO to roots, keepalives, path
    /// expiry), housekeeping.
    pub fn handle_timeout(&mut self, now: u64) {
        let now = self.clock(now);
        self.whois_tick(now);
        if now >= self.next_ping_check {
            self.next_ping_check = now + PING_CHECK_INTERVAL;
            self.ping_check(now);
            self.vl2_tick(now);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_PERIOD;
            self.housekeeping(now);
        }
    }

    /// Sends a VL1 packet to `dest`: direct on its best path, else relayed through the best
    /// upstream; if its identity is unknown, queued while a WHOIS goes out. Compression
    /// follows the reference's per-verb choice.
    pub fn send_to_peer(
        &mut self,
        now: u64,
        dest: Address,
        verb: Verb,
        payload: &[u8],
    ) -> Result<Sent, SendError> {
        self.send_to_peer_with(now, dest, verb, payload, compressed_by_default(verb))
    }

    /// [`Node::send_to_peer`] with an explicit compression choice.
    pub fn send_to_peer_with(
        &mut self,
        now: u64,
        dest: Address,
        verb: Verb,
        payload: &[u8],
        compress: bool,
    ) -> Result<Sent, SendError> {
        let now = self.clock(now);
        if dest == self.address() {
            return Err(SendError::ToSelf);
        }
        if !self.peers.contains_key(&dest) {
            if self.whois.queue_tx(PendingTx {
                dest,
                verb,
                payload: payload.to_vec(),
                compress,
                created: now,
            }) {
                self.stats.tx_queue_dropped += 1;
            }
            self.request_whois(now, dest);
            return Ok(Sent::QueuedForWhois);
        }
        self.route(now, dest, verb, payload, compress)
    }

    /// The console's view of all peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let now = self.last_now;
        let mut out: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(addr, p)| {
                let best = p.best_path_index(now);
                PeerInfo {
                    address: *addr,
                    version: p.version.map(|v| (v.major, v.minor, v.revision)),
                    protocol_version: p.version.map(|v| v.protocol),
                    latency_ms: p.latency_ms,
                    role: self.topology.role_of(*addr),
                    paths: p
                        .paths
                        .iter()
                        .enumerate()
                        .map(|(i, path)| PathInfo {
                            remote: path.remote,
                            local_socket: path.local_socket,
                            last_send: path.last_send,
                            last_receive: path.last_receive,
                            active: path.alive(now),
                            preferred: Some(i) == best,
                            expired: !path.alive(now),
                        })
                        .collect(),
                    direct: p.has_alive_path(now),
                }
            })
            .collect();
        out.sort_by_key(|p| p.address);
        out
    }

    /// Records that a network-gated (trust establishing) packet arrived from `peer` on this
    /// path. Called by VL2; it enables relaying for that path and PUSH_DIRECT_PATHS.
    pub fn note_trusted_packet(
        &mut self,
        now: u64,
        peer: Address,
        local_socket: LocalSocketId,
        remote: SocketAddr,
    ) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_trusted_receive = Some(now);
            if let Some(path) = p.path_mut(local_socket, remote) {
                path.last_trusted_receive = Some(now);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Internals shared by the handlers.

    /// Time never goes backwards inside the engine, whatever the caller passes.
    pub(crate) fn clock(&mut self, now: u64) -> u64 {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    pub(crate) fn random_packet_id(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Creates a peer for `identity` (computing the long-term key). `None` if agreement fails.
    pub(crate) fn add_peer(&mut self, now: u64, identity: Identity) -> Option<&mut Peer> {
        let addr = identity.address();
        if !self.peers.contains_key(&addr) {
            let raw = self.identity.agree(&identity).ok()?;
            if self.peers.len() >= self.config.max_peers {
                self.evict_a_stranger(now);
            }
            self.peers.insert(
                addr,
                Peer::new(now, identity.to_public(), PeerKey::new(raw)),
            );
            self.events.push_back(Event::PeerLearned { address: addr });
        }
        self.peers.get_mut(&addr)
    }

    /// Forgets the least recently heard peer that shares no network with us, if there is one
    /// (a full table of peers in use keeps them all: see [`MAX_PEERS`]).
    fn evict_a_stranger(&mut self, now: u64) {
        let joined = &self.vl2.networks;
        let stranger = self
            .peers
            .iter()
            .filter(|(addr, peer)| {
                !self.topology.is_upstream(**addr)
                    && !self.whois.is_pending(**addr)
                    && !peer.trust_established(now)
                    && !peer.wants_keepalive(now)
                    && !joined.keys().any(|nwid| nwid.controller() == **addr)
            })
            .min_by_key(|(_, peer)| peer.created.max(peer.last_receive))
            .map(|(addr, _)| *addr);
        if let Some(addr) = stranger {
            self.peers.remove(&addr);
            self.stats.peers_evicted += 1;
        }
    }

    /// Every upstream gets a peer entry from the world definition, so we can HELLO it.
    pub(crate) fn ensure_upstream_peers(&mut self, now: u64) {
        let ids: Vec<Identity> = self
            .topology
            .upstreams()
            .iter()
            .map(|u| u.identity.clone())
            .collect();
        for id in ids {
            if !self.peers.contains_key(&id.address()) {
                self.add_peer(now, id);
            }
        }
    }

    /// Paths we may use for a peer (`Node::shouldUsePathForZeroTierTraffic`): not a
    /// prohibited endpoint of an upstream, not inside our own virtual networks.
    pub(crate) fn path_allowed(&self, peer: Address, remote: SocketAddr) -> bool {
        if self.topology.is_prohibited_endpoint(peer, remote) {
            return false;
        }
        let ip = crate::path::canonical(remote).ip();
        !self
            .virtual_prefixes
            .iter()
            .any(|(p, bits)| crate::path::prefix_contains(*p, *bits, ip))
            && !self.vl2_assigned_prefix_contains(ip)
    }

    /// The best upstream with a usable path (lowest latency, then most recent), excluding
    /// the given addresses. Returns its address and path.
    pub(crate) fn best_upstream(
        &self,
        now: u64,
        exclude: &[Address],
    ) -> Option<(Address, LocalSocketId, SocketAddr)> {
        self.topology
            .upstreams()
            .iter()
            .map(|u| u.identity.address())
            .filter(|a| !exclude.contains(a))
            .filter_map(|a| {
                let p = self.peers.get(&a)?;
                let path = p.best_path(now)?;
                Some((path.quality(now), a, path.local_socket, path.remote))
            })
            .min_by_key(|(q, a, _, _)| (*q, *a))
            .map(|(_, a, ls, r)| (a, ls, r))
    }

    /// Sends to a known peer: its best path, else via the best upstream.
    pub(crate) fn route(
        &mut self,
        now: u64,
        dest: Address,
        verb: Verb,
        payload: &[u8],
        compress: bool,
    ) -> Result<Sent, SendError> {
        let Some((ls, remote)) = self.next_hop(now, dest) else {
            self.stats.send_no_route += 1;
            return Err(SendError::NoRoute);
        };
        match self.send_on(now, dest, Some(ls), remote, verb, payload, compress, None) {
            Some(id) => Ok(Sent::Now { packet_id: id }),
            None => Err(SendError::TooLarge),
        }
    }

    /// Where a packet to `dest` goes: its best direct path, else the best upstream.
    pub(crate) fn next_hop(&self, now: u64, dest: Address) -> Option<(LocalSocketId, SocketAddr)> {
        let direct = self
            .peers
            .get(&dest)
            .and_then(|p| p.best_path(now))
            .map(|p| (p.local_socket, p.remote));
        direct.or_else(|| {
            self.best_upstream(now, &[dest])
                .map(|(_, ls, remote)| (ls, remote))
        })
    }

    /// Builds, compresses, armors (with the destination's key and suite, or `suite` if
    /// given) and fragments a packet, queues the datagrams for `remote`, records the wire
    /// packet ID for reply matching and updates the path's send time. Returns the wire ID;
    /// `None` if the destination is unknown or the packet is too large.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_on(
        &mut self,
        now: u64,
        dest: Address,
        local_socket: Option<LocalSocketId>,
        remote: SocketAddr,
        verb: Verb,
        payload: &[u8],
        compress: bool,
        suite: Option<CipherSuite>,
    ) -> Option<u64> {
        let id = self.random_packet_id();
        let source = self.address();
        let peer = self.peers.get_mut(&dest)?;
        let suite = suite.unwrap_or_else(|| peer.cipher_suite());
        let outgoing = OutgoingPacket {
            destination: dest,
            source,
            verb,
            payload,
            packet_id: id,
            suite,
            compress,
            mtu: DEFAULT_PHYSICAL_MTU,
        };
        let built = match build(&outgoing, &peer.key) {
            Ok(b) => b,
            Err(_) => {
                self.stats.send_too_large += 1;
                return None;
            }
        };
        self.stats.packets_sent.count(verb);
        if let Some(ls) = local_socket {
            if let Some(path) = peer.path_mut(ls, remote) {
                path.last_send = now;
            }
        }
        let (datagrams, wire_id) = (built.datagrams, built.wire_packet_id);
        self.expect.expect(wire_id);
        for data in datagrams {
            self.push_transmit(local_socket, remote, data, None);
        }
        Some(wire_id)
    }

    /// Sends a packet armored with a key that is not a known peer's (the IDENTITY_COLLISION
    /// error goes to the impostor, keyed with its claimed identity).
    pub(crate) fn send_with_key(
        &mut self,
        key: &PeerKey,
        dest: Address,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        verb: Verb,
        payload: &[u8],
    ) {
        let outgoing = OutgoingPacket {
            destination: dest,
            source: self.address(),
            verb,
            payload,
            packet_id: self.random_packet_id(),
            suite: CipherSuite::Poly1305Salsa2012,
            compress: false,
            mtu: DEFAULT_PHYSICAL_MTU,
        };
        if let Ok(built) = build(&outgoing, key) {
            self.stats.packets_sent.count(verb);
            for data in built.datagrams {
                self.push_transmit(Some(local_socket), remote, data, None);
            }
        }
    }

    pub(crate) fn push_transmit(
        &mut self,
        local_socket: Option<LocalSocketId>,
        remote: SocketAddr,
        data: Vec<u8>,
        ttl: Option<u8>,
    ) {
        self.stats.tx_datagrams += 1;
        self.stats.tx_bytes += data.len() as u64;
        self.transmits.push_back(Transmit {
            local_socket,
            remote,
            data,
            ttl,
        });
    }

    /// Our HELLO to `dest` at `remote` (suite 0, moon list encrypted, never fragmented).
    pub(crate) fn send_hello(
        &mut self,
        now: u64,
        dest: Address,
        local_socket: Option<LocalSocketId>,
        remote: SocketAddr,
    ) -> Option<u64> {
        self.send_hello_telling(now, dest, local_socket, remote, true)
    }

    /// HELLO to `dest` sent to `remote`, which is `dest`'s own endpoint (`tell` = true: the
    /// HELLO says where it was sent) or an upstream relaying it (`tell` = false: null).
    pub(crate) fn send_hello_telling(
        &mut self,
        now: u64,
        dest: Address,
        local_socket: Option<LocalSocketId>,
        remote: SocketAddr,
        tell: bool,
    ) -> Option<u64> {
        let (major, minor, revision) = self.config.version;
        let planet = self.topology.planet();
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            major,
            minor,
            revision,
            timestamp: now,
            identity: self.identity.to_public(),
            physical_destination: Some(if tell {
                InetAddress::from(remote)
            } else {
                InetAddress::Nil
            }),
            planet: Some(WorldRef {
                id: planet.id,
                timestamp: planet.timestamp,
            }),
            moons: Some(
                self.topology
                    .moon_list()
                    .into_iter()
                    .map(|(id, timestamp)| MoonRef {
                        world_type: WORLD_TYPE_MOON,
                        id,
                        timestamp,
                    })
                    .collect(),
            ),
        };
        let mut body = Vec::with_capacity(200);
        hello.write(&mut body);
        let wire_id = self.send_on(
            now,
            dest,
            local_socket,
            remote,
            Verb::Hello,
            &body,
            false,
            Some(CipherSuite::Poly1305None),
        )?;
        self.stats.hello_sent += 1;
        Some(wire_id)
    }

    /// A probe to an address of a known peer: ECHO if it understands it, else HELLO
    /// (`Peer::attemptToContactAt`).
    pub(crate) fn attempt_to_contact(
        &mut self,
        now: u64,
        dest: Address,
        local_socket: Option<LocalSocketId>,
        remote: SocketAddr,
    ) {
        let echo = self
            .peers
            .get(&dest)
            .is_some_and(|p| p.prefers_echo_probe());
        if echo {
            self.stats.echo_sent += 1;
            self.send_on(
                now,
                dest,
                local_socket,
                remote,
                Verb::Echo,
                &now.to_be_bytes(),
                false,
                None,
            );
        } else {
            self.send_hello(now, dest, local_socket, remote);
        }
    }

    /// Sends a WHOIS for `addr` to the best upstream, unless one went out within the retry
    /// delay.
    pub(crate) fn request_whois(&mut self, now: u64, addr: Address) {
        if self.whois.want(now, addr) {
            self.send_whois(now, addr);
        }
    }

    fn send_whois(&mut self, now: u64, addr: Address) {
        if let Some((up, _, _)) = self.best_upstream(now, &[addr]) {
            self.stats.whois_sent += 1;
            let _ = self.route(now, up, Verb::Whois, &addr.to_bytes(), false);
        }
    }

    fn whois_tick(&mut self, now: u64) {
        let (tx_dropped, rx_dropped, retry) = self.whois.tick(now);
        self.stats.tx_queue_dropped += tx_dropped as u64;
        self.stats.rx_queue_dropped += rx_dropped as u64;
        for a in retry {
            self.send_whois(now, a);
        }
    }

    /// Sends everything queued for `addr` and re-processes everything received from it.
    pub(crate) fn flush_resolved(&mut self, now: u64, addr: Address) {
        self.vl2_identity_learned(now, addr);
        let (tx, rx) = self.whois.resolved(addr);
        for p in tx {
            let _ = self.route(now, p.dest, p.verb, &p.payload, p.compress);
        }
        for p in rx {
            self.process_queued_packet(now, p.local_socket, p.remote, p.packet);
        }
        for endpoint in self.whois.take_rendezvous(now, addr) {
            self.act_on_rendezvous(now, addr, endpoint);
        }
    }

    /// Every 5 s: contact upstreams, keep paths alive, expire silent paths.
    fn ping_check(&mut self, now: u64) {
        self.ensure_upstream_peers(now);
        let upstreams: Vec<(Address, Vec<SocketAddr>)> = self
            .topology
            .upstreams()
            .iter()
            .map(|u| (u.identity.address(), u.stable_endpoints.clone()))
            .collect();
        for (addr, endpoints) in &upstreams {
            let alive = self.peers.get(addr).is_some_and(|p| p.has_alive_path(now));
            if alive {
                self.keepalive(now, *addr, UPSTREAM_FULL_HELLO_PERIOD);
            } else {
                // One random IPv4 and one random IPv6 stable endpoint.
                for want_v4 in [true, false] {
                    let candidates: Vec<SocketAddr> = endpoints
                        .iter()
                        .copied()
                        .filter(|e| e.is_ipv4() == want_v4)
                        .collect();
                    if candidates.is_empty() {
                        continue;
                    }
                    let pick = candidates[(self.rng.next_u32() as usize) % candidates.len()];
                    self.send_hello(now, *addr, None, pick);
                }
                if endpoints.is_empty() {
                    // An upstream with no stable endpoint (a moon root known only by address)
                    // is HELLOed through the best other upstream.
                    if let Some((_, ls, relay)) = self.best_upstream(now, &[*addr]) {
                        self.send_hello_telling(now, *addr, Some(ls), relay, false);
                    }
                }
                if let Some(p) = self.peers.get_mut(addr) {
                    p.last_full_hello = Some(now);
                }
            }
        }
        self.contact_seeds(now);
        let others: Vec<Address> = self
            .peers
            .iter()
            .filter(|(a, p)| {
                !self.topology.is_upstream(**a) && p.wants_keepalive(now) && !p.paths.is_empty()
            })
            .map(|(a, _)| *a)
            .collect();
        for a in others {
            self.keepalive(now, a, PEER_PING_PERIOD);
        }
        self.expire_paths(now);
        let pending = self.reassembler.len();
        self.reassembler.expire(now);
        self.stats.reassembly_expired += (pending - self.reassembler.len()) as u64;
        self.update_online(now);
    }

    /// Moon seeds we know: HELLO (listing the wanted moon) on their path, or through the best
    /// upstream while we have none.
    fn contact_seeds(&mut self, now: u64) {
        let seeds: Vec<Address> = self.topology.seeds().iter().map(|(_, s)| *s).collect();
        for seed in seeds {
            let Some(peer) = self.peers.get(&seed) else {
                continue;
            };
            match peer.best_path(now).map(|p| (p.local_socket, p.remote)) {
                Some((ls, remote)) => {
                    self.send_hello(now, seed, Some(ls), remote);
                }
                None => {
                    if let Some((_, ls, remote)) = self.best_upstream(now, &[seed]) {
                        self.send_hello_telling(now, seed, Some(ls), remote, false);
                    }
                }
            }
        }
    }

    /// Full HELLO on the best path when due; ECHO/HELLO heartbeats on other silent paths.
    fn keepalive(&mut self, now: u64, addr: Address, full_hello_period: u64) {
        let Some(peer) = self.peers.get(&addr) else {
            return;
        };
        let full_due = peer
            .last_full_hello
            .is_none_or(|t| now.saturating_sub(t) >= full_hello_period);
        let best = peer.best_path(now).map(|p| (p.local_socket, p.remote));
        let heartbeats: Vec<(LocalSocketId, SocketAddr)> = peer
            .paths
            .iter()
            .filter(|p| p.usable(now) && p.needs_heartbeat(now))
            .map(|p| (p.local_socket, p.remote))
            .filter(|p| !(full_due && Some(*p) == best))
            .collect();
        if full_due {
            if let Some((ls, remote)) = best {
                self.send_hello(now, addr, Some(ls), remote);
                if let Some(p) = self.peers.get_mut(&addr) {
                    p.last_full_hello = Some(now);
                }
            }
        }
        for (ls, remote) in heartbeats {
            self.attempt_to_contact(now, addr, Some(ls), remote);
        }
    }

    fn expire_paths(&mut self, now: u64) {
        for (addr, peer) in self.peers.iter_mut() {
            let events = &mut self.events;
            peer.paths.retain(|p| {
                let keep = p.usable(now);
                if !keep {
                    events.push_back(Event::PathDown {
                        peer: *addr,
                        local_socket: p.local_socket,
                        remote: p.remote,
                    });
                }
                keep
            });
        }
    }

    fn housekeeping(&mut self, now: u64) {
        let topology = &self.topology;
        let before = self.peers.len();
        self.peers.retain(|a, p| {
            topology.is_upstream(*a) || self.whois.is_pending(*a) || !p.is_expired(now)
        });
        self.stats.peers_expired += (before - self.peers.len()) as u64;
        self.unites
            .retain(|_, t| now.saturating_sub(*t) < MIN_UNITE_INTERVAL);
        self.echo_gate
            .retain(|_, t| now.saturating_sub(*t) < ECHO_REPLY_MIN_INTERVAL);
        self.external_addresses
            .retain(|_, (_, t)| now.saturating_sub(*t) < TRUST_EXPIRATION);
    }

    /// Online: we are a root, or an upstream was heard from within the activity window.
    pub(crate) fn update_online(&mut self, now: u64) {
        let online = self.topology.am_upstream()
            || self.topology.upstreams().iter().any(|u| {
                self.peers
                    .get(&u.identity.address())
                    .is_some_and(|p| p.is_active(now))
            });
        if online != self.online {
            self.online = online;
            self.events.push_back(if online {
                Event::Online
            } else {
                Event::Offline
            });
        }
    }

    /// Our externally visible addresses plus the host's: what we push to peers.
    pub(crate) fn direct_path_candidates(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self.local_addresses.clone();
        for (a, _) in self.external_addresses.values() {
            if !v.contains(a) {
                v.push(*a);
            }
        }
        v
    }

    pub(crate) fn record_version(&mut self, peer: Address, v: RemoteVersion) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.version = Some(v);
        }
    }
}
