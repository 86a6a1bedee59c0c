//! Counters: every datagram the engine drops is counted under the reason it was dropped, so
//! a misbehaving peer or a bug shows up in metrics instead of silently.

/// Engine counters. All monotonic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub rx_datagrams: u64,
    pub rx_bytes: u64,
    pub tx_datagrams: u64,
    pub tx_bytes: u64,
    /// Authenticated packets handled (after reassembly, MAC check and decompression).
    pub rx_packets: u64,

    /// Shorter than a fragment or packet header.
    pub dropped_runt: u64,
    /// Old 13-byte LAN beacons (ignored).
    pub legacy_beacons: u64,
    /// Fragment header out of range.
    pub dropped_bad_fragment: u64,
    pub fragments_duplicate: u64,
    pub reassembly_expired: u64,
    /// Source address is ours or reserved.
    pub dropped_bad_source: u64,
    /// Suite 2 (trusted path) or an unknown suite.
    pub dropped_unsupported_cipher: u64,
    pub dropped_bad_mac: u64,
    pub dropped_replay: u64,
    pub dropped_decompress: u64,
    /// A payload that does not parse.
    pub dropped_malformed: u64,
    /// OK whose in-re packet ID we never sent.
    pub dropped_unexpected_reply: u64,
    /// OK(WHOIS) or RENDEZVOUS from a node that is not an upstream.
    pub dropped_not_from_upstream: u64,
    pub dropped_old_protocol: u64,
    /// HELLO whose identity's address differs from the packet source.
    pub dropped_hello_address_mismatch: u64,
    /// Identity validation refused by the per-source-IP gate.
    pub dropped_hello_rate_limited: u64,
    pub dropped_invalid_identity: u64,
    /// HELLOs of new identities dropped because the deferred check queue was full (or the
    /// check was never answered).
    pub dropped_identity_check_queue: u64,
    pub identity_collisions: u64,
    pub whois_rate_limited: u64,
    pub echo_rate_limited: u64,
    pub push_rate_limited: u64,
    /// Addresses from RENDEZVOUS/PUSH_DIRECT_PATHS refused by the path checks.
    pub paths_rejected: u64,
    /// Unknown verb numbers (count as received, otherwise ignored).
    pub unknown_verbs: u64,
    /// Bonding verbs (ACK, QOS_MEASUREMENT, PATH_NEGOTIATION_REQUEST), ignored.
    pub bonding_ignored: u64,
    /// VL2 verbs with no VL2 layer to take them.
    pub vl2_unhandled: u64,

    pub relayed: u64,
    pub dropped_relay_not_allowed: u64,
    pub dropped_relay_hop_limit: u64,
    pub dropped_relay_no_route: u64,
    pub rendezvous_sent: u64,
    pub rendezvous_received: u64,

    pub hello_sent: u64,
    pub echo_sent: u64,
    pub whois_sent: u64,
    pub whois_answered: u64,
    pub direct_path_pushes_sent: u64,
    pub world_updates_accepted: u64,
    pub world_updates_ignored: u64,
    /// An upstream saw us at a new address: paths in that scope were reset and re-probed.
    pub external_address_changes: u64,

    pub tx_queue_dropped: u64,
    pub rx_queue_dropped: u64,
    pub send_no_route: u64,
    pub send_too_large: u64,
    pub peers_expired: u64,
    /// Peers sharing no network forgotten to make room for a new one (table at its cap).
    pub peers_evicted: u64,

    /// VL2 counters (networks, credentials, frames).
    pub vl2: crate::vl2::Vl2Stats,

    /// Authenticated packets handled, by verb (HELLO included once authenticated).
    pub packets_received: VerbCounts,
    /// Packets we built and sent, by verb (relayed packets are not ours: see `relayed`).
    pub packets_sent: VerbCounts,
}

/// How many verb numbers [`VerbCounts`] keeps apart (the known verbs are 0x00..=0x16).
const VERB_SLOTS: usize = 32;

/// A counter per verb number. Verbs past the table (never sent by a conforming node) are
/// not counted here; `unknown_verbs` counts them on receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerbCounts([u64; VERB_SLOTS]);

impl VerbCounts {
    pub fn count(&mut self, verb: zt_wire::header::Verb) {
        if let Some(slot) = self.0.get_mut(usize::from(u8::from(verb))) {
            *slot += 1;
        }
    }

    pub fn get(&self, verb: zt_wire::header::Verb) -> u64 {
        self.0
            .get(usize::from(u8::from(verb)))
            .copied()
            .unwrap_or(0)
    }
}
