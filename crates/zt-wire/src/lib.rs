//! zt-wire: the byte formats of ZeroTier 1.x, with no I/O and no clocks.
//!
//! Sits on `zt-crypto` and under `zt-node`/`zt-controller` (see `DESIGN.md`). Every format is a
//! typed representation with `read`/`parse` (validates once, never panics, returns a typed
//! [`WireError`]) and `write`/`emit` (appends bytes). Packet-level views work in place on
//! caller-owned buffers. References are to `PROTOCOL.md`.
#![deny(unsafe_code)]

pub mod cursor;
pub mod error;

// Packets (PROTOCOL.md §3–4)
pub mod compress;
pub mod fragment;
pub mod header;
pub mod inet;
pub mod verbs;

// The TCP fallback tunnel's stream framing (zerotier-one's TCP relay)
pub mod tcp_tunnel;

// Structures (PROTOCOL.md §5–6)
pub mod capability;
pub mod com;
pub mod coo;
pub mod credential;
pub mod dictionary;
pub mod ethernet;
pub mod mac;
pub mod netconf;
pub mod network_id;
pub mod revocation;
pub mod rules;
pub mod tag;
pub mod world;

pub use cursor::{Reader, Writer};
pub use error::WireError;
pub use zt_crypto::{Address, Identity};
