//! Protocol and timing constants (PROTOCOL.md §3, §8). Times are milliseconds.

/// The protocol version we speak and announce in HELLO.
pub const PROTOCOL_VERSION: u8 = 12;
/// HELLO / OK(HELLO) with a lower protocol version are dropped.
pub const PROTOCOL_VERSION_MIN: u8 = 4;
/// First protocol version that understands ECHO as a keepalive (older peers get HELLO).
pub const PROTOCOL_VERSION_ECHO: u8 = 5;
/// First protocol version that gets AES-GMAC-SIV (suite 3) from us.
pub const PROTOCOL_VERSION_AES: u8 = 12;

/// Packet header length; also the minimum packet length.
pub const HEADER_LEN: usize = 28;
/// Fragment header length.
pub const FRAGMENT_HEADER_LEN: usize = 16;
/// Default (and our only) physical MTU for UDP payloads.
pub const DEFAULT_PHYSICAL_MTU: usize = 1432;
/// Largest assembled packet.
pub const MAX_PACKET_LEN: usize = 7 * DEFAULT_PHYSICAL_MTU;
/// Head plus at most six fragments.
pub const MAX_FRAGMENTS: usize = 7;
/// Reassembly slots.
pub const RX_QUEUE_SIZE: usize = 32;
/// Payloads at most this long are never compressed.
pub const COMPRESSION_MIN_PAYLOAD: usize = 64;
/// A relay forwards only packets with fewer hops than this.
pub const RELAY_MAX_HOPS: u8 = 3;

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
/// Reassembly entries are dropped after this long.
pub const REASSEMBLY_TIMEOUT: u64 = 5_000;
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
/// Full identity validation per 14-bit source-IP bucket.
pub const IDENTITY_VALIDATION_SOURCE_RATE_LIMIT: u64 = 2_000;
/// Trust from a network-gated packet lasts this long (relay policy, path push).
pub const TRUST_EXPIRATION: u64 = 600_000;
/// Most paths kept per peer.
pub const MAX_PATHS_PER_PEER: usize = 16;
/// TX packets waiting for WHOIS.
pub const TX_QUEUE_LIMIT: usize = 256;
/// RX packets waiting for WHOIS.
pub const RX_WAIT_QUEUE_LIMIT: usize = 32;
/// Reply-expectation table geometry: buckets × entries.
pub const EXPECT_BUCKETS: usize = 256;
pub const EXPECT_BUCKET_ENTRIES: usize = 32;
/// Remembered packet IDs for replay rejection.
pub const REPLAY_WINDOW: usize = 8192;
