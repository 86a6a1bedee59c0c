//! Protocol and timing constants (PROTOCOL.md §3, §8). Times are milliseconds.

pub use zt_wire::fragment::FRAGMENT_HEADER_LEN;
/// The protocol version we speak and announce in HELLO; HELLO and OK(HELLO) below the
/// minimum are dropped. Header length, MTU and hop limit are the wire's.
pub use zt_wire::header::{
    DEFAULT_PHYS_MTU as DEFAULT_PHYSICAL_MTU, HEADER_LEN, MAX_PACKET_LEN, PROTOCOL_VERSION,
    PROTOCOL_VERSION_MIN, RELAY_MAX_HOPS,
};

/// First protocol version that understands ECHO as a keepalive (older peers get HELLO).
pub const PROTOCOL_VERSION_ECHO: u8 = 5;
/// First protocol version that gets AES-GMAC-SIV (suite 3) from us.
pub const PROTOCOL_VERSION_AES: u8 = 12;

pub const PING_CHECK_INTERVAL: u64 = 5_000;
pub const PATH_HEARTBEAT_PERIOD: u64 = 14_000;
/// A path is alive if something was received on it within this window.
pub const PATH_ALIVE_TIMEOUT: u64 = PATH_HEARTBEAT_PERIOD + 5_000;
/// Full HELLO to active (non-upstream) peers.
pub const PEER_PING_PERIOD: u64 = 60_000;
/// Full HELLO to upstreams that already have a path.
pub const UPSTREAM_FULL_HELLO_PERIOD: u64 = PATH_HEARTBEAT_PERIOD * 16;
/// A path not heard from this long is forgotten.
pub const PATH_EXPIRATION: u64 = 4 * 60_000 + 3_000;
/// Peer alive / online window; peers silent longer are forgotten.
pub const PEER_ACTIVITY_TIMEOUT: u64 = 500_000;
pub const HOUSEKEEPING_PERIOD: u64 = 30_000;
pub const WHOIS_RETRY_DELAY: u64 = 500;
/// Packets waiting for a WHOIS answer are dropped after this long.
pub const QUEUE_TIMEOUT: u64 = 5_000;
pub const MIN_UNITE_INTERVAL: u64 = 30_000;
pub const DIRECT_PATH_PUSH_INTERVAL: u64 = 15_000;
pub const DIRECT_PATH_PUSH_INTERVAL_HAVE_PATH: u64 = 120_000;
pub const PUSH_DIRECT_PATHS_CUTOFF_TIME: u64 = 30_000;
pub const PUSH_DIRECT_PATHS_CUTOFF_LIMIT: u32 = 8;
pub const PUSH_DIRECT_PATHS_MAX_PER_SCOPE_AND_FAMILY: usize = 8;
/// PUSH_DIRECT_PATHS packets we send stay under this size.
pub const PUSH_DIRECT_PATHS_MAX_PACKET: usize = 1200;
/// Inbound WHOIS per peer for nodes that are not roots.
pub const PEER_WHOIS_RATE_LIMIT: u64 = 100;
/// Per path, at most one OK(ECHO) every 1000/6 ms.
pub const ECHO_REPLY_MIN_INTERVAL: u64 = 1000 / 6;
/// HELLO back to an unknown path, per peer and address.
pub const UNKNOWN_PATH_HELLO_INTERVAL: u64 = 1_000;
/// Full identity validation per 14-bit bucket of source networks (IPv4 /24, IPv6 /48).
pub const IDENTITY_VALIDATION_SOURCE_RATE_LIMIT: u64 = 2_000;
/// Full identity validations per second from all sources (each costs ~10 ms of CPU): a
/// flood from many networks takes at most about half a core.
pub const IDENTITY_VALIDATION_BUDGET: u32 = 48;
/// HELLOs of new identities waiting for a deferred identity check (see
/// [`crate::NodeConfig::defer_identity_checks`]); more are dropped and counted.
pub const IDENTITY_CHECK_QUEUE: usize = 64;
/// A deferred check not answered within this long is given up (the peer's HELLO is retried).
pub const IDENTITY_CHECK_TIMEOUT: u64 = 10_000;
/// Peers kept before a new one makes room by forgetting the least recently heard peer that
/// shares no network with us (not an upstream, no network-gated or frame/config traffic
/// lately, not the controller of a network we joined). Peers that share a network are never
/// evicted for a stranger, so a flood of fresh identities cannot push out the ones in use.
pub const MAX_PEERS: usize = 65_536;
/// Trust from a network-gated packet lasts this long (relay policy, path push).
pub const TRUST_EXPIRATION: u64 = 600_000;
/// Most paths kept per peer.
pub const MAX_PATHS_PER_PEER: usize = 16;
/// TX packets waiting for WHOIS.
pub const TX_QUEUE_LIMIT: usize = 256;
/// Identity lookups in flight.
pub const WHOIS_PENDING_LIMIT: usize = 1024;
/// RX packets waiting for WHOIS.
pub const RX_WAIT_QUEUE_LIMIT: usize = 32;
/// Reply-expectation table geometry: buckets × entries.
pub const EXPECT_BUCKETS: usize = 256;
pub const EXPECT_BUCKET_ENTRIES: usize = 32;
/// Remembered packet IDs for replay rejection.
pub const REPLAY_WINDOW: usize = 8192;

pub use crate::vl2::subscriptions::{
    MAX_GROUPS_PER_NETWORK, MAX_MULTICAST_GROUPS, MAX_SUBSCRIPTIONS_PER_MEMBER,
};
