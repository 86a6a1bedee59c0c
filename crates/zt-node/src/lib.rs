//! zt-node: the sans-I/O ZeroTier engine.
//!
//! Sits between `zt-wire` (bytes) and `ztd` (sockets), see `DESIGN.md`:
//!
//! ```text
//!   UDP datagram ──► Node::handle_datagram(now, socket, remote, bytes)
//!                        │ reassemble · relay · authenticate · decrypt · decompress
//!                        ▼
//!                    VL1 verbs: HELLO OK ERROR WHOIS RENDEZVOUS ECHO PUSH_DIRECT_PATHS …
//!                    VL2 verbs ──► vl2: networks, credentials, switch (Event::Frame, …)
//!   Node::poll_transmit() ──► datagrams to send      Node::poll_event() ──► peers, paths, worlds
//!   Node::poll_timeout() / handle_timeout(now) ──► pings, keepalives, WHOIS retries, expiry
//! ```
//!
//! Like `quinn-proto`, the engine never touches a socket, never reads a clock (`now` is a
//! monotonic millisecond count passed in) and never reads the OS RNG (the caller hands it a
//! seeded `RngCore`). Malformed, forged or replayed input is dropped and counted in
//! [`Stats`]; nothing on the wire can make it panic.
//!
//! ## Driving a node
//!
//! A driver (the daemon, or the test driver `src/bin/zt-node-udp.rs`) owns the sockets and the clock and loops:
//! feed what arrived, fire timeouts when due, then send everything the node queued.
//!
//! ```
//! # use rand::{rngs::StdRng, SeedableRng};
//! # use zt_node::sim::{make_planet, test_identity};
//! use zt_node::{Event, LocalSocketId, Node, NodeConfig};
//!
//! let root_endpoint = "10.0.0.1:9993".parse().unwrap();
//! let (planet, _signer) = make_planet(1, 1, &[(test_identity(0), root_endpoint)], 7);
//! let rng = Box::new(StdRng::seed_from_u64(1)); // the daemon seeds this from the OS
//! let mut node = Node::new(test_identity(1), NodeConfig::new(planet), rng, 1_000).unwrap();
//!
//! node.handle_timeout(1_000); // first ping check: HELLO to the root's stable endpoint
//! let hello = node.poll_transmit().unwrap();
//! assert_eq!(hello.remote, root_endpoint);
//! assert_eq!(hello.local_socket, None); // "any socket of that family"
//! // ... the driver sends it, and later feeds the answer:
//! // node.handle_datagram(now, LocalSocketId(0), from, &bytes);
//! assert!(node.poll_timeout().unwrap() > 1_000);
//! while let Some(event) = node.poll_event() {
//!     if let Event::WorldUpdated { world } = event { /* persist world.to_bytes() */ }
//! }
//! # let _ = LocalSocketId(0);
//! ```
//!
//! Times are milliseconds. ZeroTier puts the sender's clock on the wire (HELLO timestamps),
//! so a daemon passes wall-clock milliseconds; the engine only needs them not to go
//! backwards and clamps them if they do.
//!
//! VL2 (virtual Ethernet): [`Node::join`] a network, feed tap frames to
//! [`Node::send_frame`], write [`Event::Frame`]s to the tap and apply
//! [`Event::NetworkConfigChanged`]. A node that is a network's controller gets
//! [`Event::ConfigRequest`] and answers with [`Node::send_network_config`] /
//! [`Node::send_network_error`] (the daemon runs `zt-controller`).
//!
//! The `testing` feature adds `sim`, a virtual-time network that runs several nodes in one
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
pub use stats::{Stats, VerbCounts};
pub use topology::Role;
pub use vl1::{IdentityCheck, Received};
pub use vl2::{
    Datagrams, Encapsulated, FrameError, JoinSettings, NetworkInfo, NetworkStatus,
    SubscriptionChange, Vl2Error, Vl2Stats, DATAGRAMS_CAPACITY, FRAME_HEADROOM,
};
pub use zt_crypto::{Address, Identity};
pub use zt_wire::header::Verb;
pub use zt_wire::world::World;
