//! The boundary to VL2 (networks, multicast, switching; PROTOCOL.md §6).
//!
//! VL1 authenticates and decrypts every packet, then hands the VL2 verbs (FRAME, EXT_FRAME,
//! MULTICAST_*, NETWORK_*) and the OK/ERROR replies to them here. Until the VL2 layer lands
//! these are counted as `vl2_unhandled`; the VL2 layer replaces the bodies of these three
//! functions and calls back into [`Node::send_to_peer`] and [`Node::note_trusted_packet`].

use crate::node::{Inbound, Node};
use zt_wire::header::Verb;
use zt_wire::verbs::error::ErrorPayload;
use zt_wire::verbs::ok::OkPayload;

impl Node {
    /// A VL2 verb from an authenticated peer.
    pub(crate) fn vl2_packet(&mut self, _from: &Inbound, _verb: Verb, _payload: &[u8]) {
        self.stats.vl2_unhandled += 1;
    }

    /// OK in reply to a VL2 request we sent (already matched against the expectation table).
    pub(crate) fn vl2_ok(&mut self, _from: &Inbound, _ok: &OkPayload<'_>) {
        self.stats.vl2_unhandled += 1;
    }

    /// ERROR about a VL2 request.
    pub(crate) fn vl2_error(&mut self, _from: &Inbound, _error: &ErrorPayload<'_>) {
        self.stats.vl2_unhandled += 1;
    }
}
