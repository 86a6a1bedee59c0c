//! Membership credentials (PROTOCOL.md §4.11, §6.5, §6.6, §6.8): pushing ours before frames
//! and on request, accepting peers' (signed by the network's controller; WHOIS it and wait
//! if unknown), revocations, and the gate every frame, LIKE and GATHER passes through.

use super::{
    PendingCredentials, CREDENTIALS_PUSH_PERIOD, CREDENTIALS_RATE_LIMIT,
    CREDENTIALS_REQUEST_RATE_LIMIT, MULTICAST_ANNOUNCE_PERIOD, PENDING_CREDENTIALS_LIMIT,
};
use crate::node::{Inbound, Node};
use std::collections::BTreeSet;
use zt_crypto::{Address, Identity};
use zt_wire::com::CertificateOfMembership;
use zt_wire::credential::{CredentialType, Verification};
use zt_wire::header::Verb;
use zt_wire::network_id::NetworkId;
use zt_wire::revocation::Revocation;
use zt_wire::verbs::network::NetworkCredentials;

impl Node {
    /// `Network::gate`: no config → closed; public → open; private → the peer's stored COM is
    /// not revoked and agrees with ours.
    pub(crate) fn gate(&self, nwid: NetworkId, peer: Address) -> bool {
        let Some(network) = self.vl2.networks.get(&nwid) else {
            return false;
        };
        let Some(config) = &network.config else {
            return false;
        };
        if config.is_public() {
            return true;
        }
        let Some(ours) = &config.com else {
            return false;
        };
        let Some(member) = network.members.get(&peer) else {
            return false;
        };
        let Some(identity) = self.peers.get(&peer).map(|p| &p.identity) else {
            return false;
        };
        member.com_admits(ours, identity)
    }

    /// A packet from `from` passed the gate of `nwid`: the path is trust-established, and the
    /// member gets our subscriptions if it has not had them this minute.
    pub(crate) fn gate_passed(&mut self, from: &Inbound, nwid: NetworkId) {
        self.note_trusted_packet(from.now, from.source, from.local_socket, from.remote);
        let now = from.now;
        let due = self.vl2.networks.get_mut(&nwid).is_some_and(|n| {
            let m = n.member(from.source);
            let due = m
                .last_announced
                .is_none_or(|t| now.saturating_sub(t) >= MULTICAST_ANNOUNCE_PERIOD);
            if due {
                m.last_announced = Some(now);
            }
            due
        });
        if due {
            self.announce_to(now, nwid, from.source, None);
        }
    }

    /// Our COM, capabilities, tags and COOs from the config, to `to`.
    pub(crate) fn push_credentials(&mut self, now: u64, nwid: NetworkId, to: Address) {
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return;
        };
        let Some(config) = &network.config else {
            return;
        };
        let Some(com) = &config.com else {
            return;
        };
        let credentials = NetworkCredentials {
            coms: vec![com.clone()],
            capabilities: config.capabilities.clone(),
            tags: config.tags.clone(),
            revocations: Vec::new(),
            certificates_of_ownership: config.certificates_of_ownership.clone(),
        };
        network.member(to).last_pushed_credentials = Some(now);
        let Ok(body) = credentials.to_bytes() else {
            return;
        };
        self.stats.vl2.credentials_sent += 1;
        let _ = self.send_to_peer(now, to, Verb::NetworkCredentials, &body);
    }

    /// Before frames: push when our last push to `to` predates our config, or is old.
    pub(crate) fn push_credentials_if_needed(&mut self, now: u64, nwid: NetworkId, to: Address) {
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return;
        };
        if network.config.as_ref().is_none_or(|c| c.com.is_none()) {
            return;
        }
        let since_update = network.last_config_update;
        let due = network
            .member(to)
            .last_pushed_credentials
            .is_none_or(|t| t < since_update || now.saturating_sub(t) >= CREDENTIALS_PUSH_PERIOD);
        if due {
            self.push_credentials(now, nwid, to);
        }
    }

    /// ERROR NEED_MEMBERSHIP_CERTIFICATE from anyone: push again, rate-limited.
    pub(crate) fn credentials_requested(&mut self, from: &Inbound, nwid: NetworkId) {
        let now = from.now;
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return;
        };
        if network.config.as_ref().is_none_or(|c| c.com.is_none()) {
            return;
        }
        let since_update = network.last_config_update;
        let m = network.member(from.source);
        let due = m.last_requested_push.is_none_or(|t| {
            t < since_update || now.saturating_sub(t) >= CREDENTIALS_REQUEST_RATE_LIMIT
        });
        if due {
            m.last_requested_push = Some(now);
            self.push_credentials(now, nwid, from.source);
        }
    }

    /// NETWORK_CREDENTIALS: at most one per peer per second.
    pub(crate) fn handle_network_credentials(&mut self, from: &Inbound, payload: &[u8]) {
        if let Some(t) = self.vl2.credentials_received.get(&from.source) {
            if from.now.saturating_sub(*t) < CREDENTIALS_RATE_LIMIT {
                self.stats.vl2.credentials_rate_limited += 1;
                return;
            }
        }
        self.vl2.credentials_received.insert(from.source, from.now);
        self.accept_credentials(from, payload);
    }

    /// Verifies and stores every credential for a network we are in. If a controller's
    /// identity is missing, the packet waits for the WHOIS answer.
    pub(crate) fn accept_credentials(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(creds) = NetworkCredentials::parse(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let mut networks: BTreeSet<NetworkId> = BTreeSet::new();
        networks.extend(creds.coms.iter().filter_map(|c| c.network_id()));
        networks.extend(creds.capabilities.iter().map(|c| c.network_id));
        networks.extend(creds.tags.iter().map(|t| t.network_id));
        networks.extend(creds.revocations.iter().map(|r| r.network_id));
        networks.extend(creds.certificates_of_ownership.iter().map(|c| c.network_id));
        networks.retain(|n| self.vl2.networks.contains_key(n));
        if let Some(missing) = networks
            .iter()
            .find(|n| self.controller_identity(**n).is_none())
        {
            let controller = missing.controller();
            if self.vl2.pending_credentials.len() < PENDING_CREDENTIALS_LIMIT {
                self.vl2.pending_credentials.push(PendingCredentials {
                    received: from.now,
                    from: *from,
                    payload: payload.to_vec(),
                    waiting_for: controller,
                });
            }
            self.request_whois(from.now, controller);
            return;
        }
        let sender = from.source;
        for com in &creds.coms {
            self.learn_com(from.now, com);
        }
        for cap in creds.capabilities {
            let nwid = cap.network_id;
            let valid = cap.verify(|a| self.identity_of(a)) == Verification::Valid;
            let holder = cap.issued_to();
            let ok = valid && holder.is_some() && networks.contains(&nwid);
            self.count_credential(ok);
            if let (Some(n), Some(holder)) =
                (self.vl2.networks.get_mut(&nwid), holder.filter(|_| ok))
            {
                let m = n.member(holder);
                if cap.timestamp > m.com_revoked_below {
                    m.capabilities.insert(cap.id, cap);
                }
            }
        }
        for tag in creds.tags {
            let ok = networks.contains(&tag.network_id)
                && self.signed_by_controller(tag.network_id, |c| tag.verify(c));
            self.count_credential(ok);
            if let Some(n) = self.vl2.networks.get_mut(&tag.network_id).filter(|_| ok) {
                n.member(tag.issued_to).tags.insert(tag.id, tag);
            }
        }
        for coo in creds.certificates_of_ownership {
            let ok = networks.contains(&coo.network_id)
                && self.signed_by_controller(coo.network_id, |c| coo.verify(c));
            self.count_credential(ok);
            if let Some(n) = self.vl2.networks.get_mut(&coo.network_id).filter(|_| ok) {
                n.member(coo.issued_to).coos.insert(coo.id, coo);
            }
        }
        for revocation in creds.revocations {
            let ok = networks.contains(&revocation.network_id)
                && self.signed_by_controller(revocation.network_id, |c| revocation.verify(c));
            if ok {
                self.apply_revocation(from.now, &revocation, sender);
            } else {
                self.stats.vl2.credentials_rejected += 1;
            }
        }
    }

    fn count_credential(&mut self, ok: bool) {
        if ok {
            self.stats.vl2.credentials_accepted += 1;
        } else {
            self.stats.vl2.credentials_rejected += 1;
        }
    }

    fn identity_of(&self, a: Address) -> Option<Identity> {
        if a == self.address() {
            return Some(self.identity.to_public());
        }
        self.peers.get(&a).map(|p| p.identity.clone())
    }

    fn signed_by_controller(
        &self,
        nwid: NetworkId,
        verify: impl FnOnce(&Identity) -> Verification,
    ) -> bool {
        self.controller_identity(nwid)
            .is_some_and(|c| verify(&c) == Verification::Valid)
    }

    /// A COM from a credentials push or inline in a frame/gather: stored for the member it
    /// is issued to (`Network::addCredential`) if the controller signed it and it is not
    /// older than the one we hold. The gate later checks it against that member's identity.
    pub(crate) fn learn_com(&mut self, now: u64, com: &CertificateOfMembership) {
        let Some(nwid) = com.network_id() else {
            self.stats.vl2.credentials_rejected += 1;
            return;
        };
        if !self.vl2.networks.contains_key(&nwid) {
            return;
        }
        let holder = com
            .issued_to()
            .filter(|a| *a != Address::default())
            .filter(|_| self.signed_by_controller(nwid, |c| com.verify(c)));
        self.count_credential(holder.is_some());
        if let (Some(holder), Some(network)) = (holder, self.vl2.networks.get_mut(&nwid)) {
            let m = network.member(holder);
            let newer = m
                .com
                .as_ref()
                .is_none_or(|old| old.timestamp() <= com.timestamp());
            if newer {
                m.com = Some(com.clone());
            }
            self.retry_held(now, holder);
        }
    }

    /// Applies a verified revocation to its target's membership (the COM threshold rises for
    /// every type, as the reference does) and forwards a new fast-propagate one to the other
    /// members.
    pub(crate) fn apply_revocation(&mut self, now: u64, revocation: &Revocation, sender: Address) {
        let nwid = revocation.network_id;
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return;
        };
        let kind = revocation.credential_type;
        if !matches!(
            kind,
            CredentialType::CertificateOfMembership
                | CredentialType::Capability
                | CredentialType::Tag
                | CredentialType::CertificateOfOwnership
        ) {
            self.stats.vl2.credentials_rejected += 1;
            return;
        }
        let m = network.member(revocation.target);
        if !m.revocations_seen.insert(revocation.id) {
            return;
        }
        let threshold = revocation.threshold;
        m.com_revoked_below = m.com_revoked_below.max(threshold);
        let id = revocation.credential_id;
        match kind {
            CredentialType::Capability => {
                m.capabilities
                    .retain(|k, c| *k != id || c.timestamp > threshold);
            }
            CredentialType::Tag => m.tags.retain(|k, t| *k != id || t.timestamp > threshold),
            CredentialType::CertificateOfOwnership => {
                m.coos.retain(|k, c| *k != id || c.timestamp > threshold)
            }
            _ => {}
        }
        self.stats.vl2.revocations_accepted += 1;
        if revocation.target == self.identity.address()
            && kind == CredentialType::CertificateOfMembership
        {
            self.revoked_ourselves(now, nwid, threshold);
            return;
        }
        if !revocation.fast_propagate() {
            return;
        }
        let signer = nwid.controller();
        let recipients: Vec<Address> = network
            .members
            .keys()
            .copied()
            .filter(|a| *a != sender && *a != signer)
            .collect();
        let credentials = NetworkCredentials {
            revocations: vec![revocation.clone()],
            ..Default::default()
        };
        let Ok(body) = credentials.to_bytes() else {
            return;
        };
        for to in recipients {
            if to != self.address() {
                let _ = self.send_to_peer(now, to, Verb::NetworkCredentials, &body);
            }
        }
    }
}

impl Node {
    /// The controller revoked our own COM: we lost access now, not at our next config refresh.
    /// The network shows ACCESS_DENIED (the daemon takes its addresses down) and asks the
    /// controller again, which answers with a new config if we were admitted again since.
    fn revoked_ourselves(&mut self, now: u64, nwid: NetworkId, threshold: u64) {
        let covered = self
            .vl2
            .networks
            .get(&nwid)
            .and_then(|n| n.config.as_ref())
            .and_then(|c| c.com.as_ref())
            .is_some_and(|com| com.timestamp().unwrap_or(0) <= threshold);
        if !covered {
            return;
        }
        self.update_network_status(nwid, |n| {
            n.failure = Some(super::NetworkStatus::AccessDenied)
        });
        self.request_config(now, nwid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Peer;
    use crate::sim::{make_planet, test_identity};
    use crate::vl2::network::JoinSettings;
    use crate::vl2::FrameError;
    use crate::{LocalSocketId, NodeConfig};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use zt_crypto::armor::PeerKey;
    use zt_wire::mac::Mac;
    use zt_wire::netconf::NetworkConfig;
    use zt_wire::revocation::Revocation;
    use zt_wire::rules::{Rule, RuleKind, TagOp};
    use zt_wire::tag::Tag;

    const T0: u64 = 50_000_000;
    /// The window within which two COM timestamps agree.
    const MAX_DELTA: u64 = 7_200_000;

    /// Us (test identity 1) in a private network of controller 3, with member 2 known as a
    /// peer and the controller's identity at hand, and a config holding our COM of `T0`.
    struct Lab {
        node: Node,
        nwid: NetworkId,
        member: Identity,
        controller: Identity,
    }

    impl Lab {
        fn new() -> Lab {
            let us = test_identity(1);
            let member = test_identity(2);
            let controller = test_identity(3);
            let root = (test_identity(0), "10.0.0.1:9993".parse().unwrap());
            let (planet, _) = make_planet(1, 1_000, &[root], 7);
            let mut node = Node::new(
                us.clone(),
                NodeConfig::new(planet),
                Box::new(StdRng::seed_from_u64(1)),
                T0,
            )
            .unwrap();
            for peer in [&member, &controller] {
                let key = PeerKey::new(us.agree(peer).unwrap());
                node.peers
                    .insert(peer.address(), Peer::new(T0, peer.to_public(), key));
            }
            let nwid = NetworkId((controller.address().to_u64() << 24) | 0x42);
            node.join(T0, nwid, JoinSettings::default());
            let mut lab = Lab {
                node,
                nwid,
                member,
                controller,
            };
            lab.apply_config(T0, Vec::new(), Vec::new());
            lab
        }

        fn com(&self, timestamp: u64, to: &Identity) -> CertificateOfMembership {
            let mut com = CertificateOfMembership::new(timestamp, MAX_DELTA, self.nwid, to);
            com.sign(&self.controller).unwrap();
            com
        }

        /// A config update carrying our COM of `timestamp`, our tags and the rules.
        fn apply_config(&mut self, timestamp: u64, tags: Vec<Tag>, rules: Vec<Rule>) {
            let us = self.node.identity.to_public();
            let mut config = NetworkConfig::new(self.nwid, us.address());
            config.timestamp = timestamp;
            config.credential_time_max_delta = MAX_DELTA;
            config.com = Some(self.com(timestamp, &us));
            config.tags = tags;
            config.rules = rules;
            self.node
                .apply_config(timestamp, self.nwid, config)
                .unwrap();
        }

        fn inbound_from_member(&self, now: u64) -> Inbound {
            Inbound {
                now,
                local_socket: LocalSocketId(0),
                remote: "10.0.0.2:9993".parse().unwrap(),
                source: self.member.address(),
                hops: 0,
                packet_id: now,
            }
        }

        /// A controller-signed credentials push as it arrives from the member.
        fn receive(&mut self, now: u64, credentials: NetworkCredentials) {
            let from = self.inbound_from_member(now);
            self.node
                .accept_credentials(&from, &credentials.to_bytes().unwrap());
        }

        fn receive_com(&mut self, now: u64, com: CertificateOfMembership) {
            let coms = vec![com];
            self.receive(
                now,
                NetworkCredentials {
                    coms,
                    ..Default::default()
                },
            );
        }

        /// The member's COM of `timestamp`, issued to `to`.
        fn member_com(&mut self, now: u64, timestamp: u64, to: &Identity) {
            let com = self.com(timestamp, to);
            self.receive_com(now, com);
        }

        fn member_tag(&mut self, now: u64, timestamp: u64, id: u32, value: u32) {
            let mut tag = Tag::new(self.nwid, timestamp, id, value, self.member.address());
            tag.sign(&self.controller).unwrap();
            self.receive(
                now,
                NetworkCredentials {
                    tags: vec![tag],
                    ..Default::default()
                },
            );
        }

        fn gate(&self) -> bool {
            self.node.gate(self.nwid, self.member.address())
        }

        fn has_cached_verdict(&self) -> bool {
            let network = &self.node.vl2.networks[&self.nwid];
            network.members[&self.member.address()].has_com_agreement()
        }
    }

    /// Each change a verdict depends on is seen by the very next gate after a cached yes.
    #[test]
    fn cached_membership_verdict_follows_every_credential_change() {
        let mut lab = Lab::new();
        let member = lab.member.clone();
        assert!(!lab.gate(), "no COM from the member yet");
        lab.member_com(T0, T0, &member);
        assert!(lab.gate());
        assert!(lab.has_cached_verdict());
        assert!(lab.gate(), "the cached verdict is the same");

        // Our config moves on by more than the window: their old COM no longer agrees.
        let later = T0 + 3 * MAX_DELTA;
        lab.apply_config(later, Vec::new(), Vec::new());
        assert!(!lab.gate());
        // Their renewed COM agrees again.
        lab.member_com(later, later, &member);
        assert!(lab.gate());

        // Their new COM names another identity than the one the member has.
        let other = test_identity(4);
        let mut stolen = lab.com(later + 1, &other);
        for q in stolen.qualifiers.iter_mut() {
            if q.id == zt_wire::com::QUALIFIER_ISSUED_TO {
                q.value = member.address().to_u64();
            }
        }
        stolen.sign(&lab.controller).unwrap();
        lab.receive_com(later, stolen);
        assert!(!lab.gate());
        lab.member_com(later, later + 2, &member);
        assert!(lab.gate());

        // A revocation of everything up to now takes effect at once...
        let mut revocation = Revocation::new(
            1,
            lab.nwid,
            0,
            later + 2,
            0,
            member.address(),
            CredentialType::CertificateOfMembership,
        );
        revocation.sign(&lab.controller).unwrap();
        let revocations = vec![revocation];
        let push = NetworkCredentials {
            revocations,
            ..Default::default()
        };
        lab.receive(later, push);
        assert!(!lab.gate());
        // ...and a COM issued after it is accepted again.
        lab.member_com(later, later + 3, &member);
        assert!(lab.gate());
    }

    /// Outbound rules see the member's tags as last accepted, not as first looked at.
    #[test]
    fn rules_see_a_member_tag_change_at_once() {
        let mut lab = Lab::new();
        let ours = {
            let mut tag = Tag::new(lab.nwid, T0, 7, 5, lab.node.address());
            tag.sign(&lab.controller).unwrap();
            tag
        };
        // Accept only frames to a member whose tag 7 equals ours.
        let rules = vec![
            Rule::new(RuleKind::Tags {
                op: TagOp::Equal,
                id: 7,
                value: 5,
            }),
            Rule::accept(),
            Rule::drop(),
        ];
        lab.apply_config(T0, vec![ours], rules);
        let (src, dst) = (
            Mac::from_address(lab.node.address(), lab.nwid),
            Mac::from_address(lab.member.address(), lab.nwid),
        );
        let send = |lab: &mut Lab, now: u64| {
            lab.node
                .send_frame(now, lab.nwid, src, dst, 0x0800, &[0x45; 40])
        };
        // No tag of the member yet: out it goes, as from ZeroTier (the receiver filters).
        assert_eq!(send(&mut lab, T0), Ok(()), "no tag yet");
        lab.member_tag(T0, T0, 7, 5);
        assert_eq!(send(&mut lab, T0 + 1), Ok(()));
        assert_eq!(send(&mut lab, T0 + 2), Ok(()));
        // A newer tag with another value, then the first value back.
        lab.member_tag(T0 + 2_000, T0 + 1, 7, 6);
        assert_eq!(send(&mut lab, T0 + 2_001), Err(FrameError::Filtered));
        lab.member_tag(T0 + 4_000, T0 + 2, 7, 5);
        assert_eq!(send(&mut lab, T0 + 4_001), Ok(()));
    }
}
