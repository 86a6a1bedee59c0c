//! zt-node: the sans-I/O ZeroTier engine.
//!
//! Sits between `zt-wire` (bytes) and `ztd` (sockets), see `DESIGN.md`:
//!
//! ```text
//!   UDP datagram ──► Node::handle_datagram(now, socket, remote, bytes)
//!                        │ reassemble · relay · authenticate · decrypt · decompress
//!                        ▼
//!                    VL1 verbs: HELLO OK ERROR WHOIS RENDEZVOUS ECHO PUSH_DIRECT_PATHS …
//!                    VL2 verbs ──► vl2 boundary
//!   Node::poll_transmit() ──► datagrams to send      Node::poll_event() ──► peers, paths, worlds
//!   Node::poll_timeout() / handle_timeout(now) ──► pings, keepalives, WHOIS retries, expiry
//! ```
//!
//! Like `quinn-proto`, the engine never touches a socket, never reads a clock (`now` is a
//! monotonic millisecond count passed in) and never reads the OS RNG (the caller hands it a
//! seeded `RngCore`). Malformed, forged or replayed input is dropped and counted in
//! [`Stats`]; nothing on the wire can make it panic.
//!
//! The `testing` feature adds [`sim`], a virtual-time network that runs several nodes in one
//! process with latency, loss and per-link filters.
#![deny(unsafe_code)]

pub mod constants;
mod node;
pub mod path;
pub mod peer;
mod relay;
mod stats;
mod tables;
pub mod topology;
mod vl1;
mod vl2;
mod whois;

#[cfg(feature = "testing")]
pub mod sim;

pub use node::{
    compressed_by_default, Event, LocalSocketId, Node, NodeConfig, NodeError, PathInfo, PeerInfo,
    SendError, Sent, Transmit,
};
pub use stats::Stats;
pub use topology::Role;
pub use zt_crypto::{Address, Identity};
pub use zt_wire::header::Verb;
pub use zt_wire::world::World;
