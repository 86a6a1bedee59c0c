//! VL2 in virtual time: ad-hoc networks through a root (ARP via the ADI group, IPv4 both
//! ways, broadcast flag), a controller node driven by zt-controller (REQUESTING → ACCESS_DENIED
//! → OK after authorization, deauthorization revokes, the gate follows a config update),
//! multicast limits, refused configs, and flow rules and capabilities set through the zerotier
//! JSON API and enforced by the members.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use zt_controller::controller::{Decision, RequestMetadata};
use zt_controller::issue::{build_config, build_revocation};
use zt_controller::props::{member_patch_from_properties, network_patch_from_properties};
use zt_controller::{Controller, MemoryStorage};
use zt_node::constants::MAX_SUBSCRIPTIONS_PER_MEMBER;
use zt_node::sim::{make_planet, test_identity, Sim};
use zt_node::{Address, Event, FrameError, Identity, JoinSettings, NetworkStatus, NodeConfig};
use zt_wire::com::CertificateOfMembership;
use zt_wire::mac::Mac;
use zt_wire::netconf::NetworkConfig;
use zt_wire::network_id::NetworkId;
use zt_wire::rules::{Forward, Rule, RuleKind};
use zt_wire::verbs::error::ErrorCode;
use zt_wire::verbs::multicast::MulticastGroup;
use zt_wire::verbs::network::ConfigChunk;

const STEPS: usize = 500_000;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A root (test identity 0) plus one leaf per further identity index, all online.
fn lab(seed: u64, leaves: &[usize]) -> (Sim, Vec<usize>) {
    let mut sim = Sim::new(seed, 5, 0.0);
    let root_addr = sa("10.0.0.1:9993");
    let (planet, _) = make_planet(1, 1, &[(test_identity(0), root_addr)], seed);
    sim.add_node(test_identity(0), NodeConfig::new(planet.clone()), root_addr);
    let ids = leaves
        .iter()
        .map(|&i| {
            let ep = sa(&format!("10.0.{i}.1:9993"));
            sim.add_node(test_identity(i), NodeConfig::new(planet.clone()), ep)
        })
        .collect();
    sim.run_for(6_000, STEPS);
    (sim, ids)
}

fn mac_of(sim: &Sim, node: usize, nwid: NetworkId) -> Mac {
    Mac::from_address(sim.nodes[node].address(), nwid)
}

fn status(sim: &Sim, node: usize, nwid: NetworkId) -> Option<NetworkStatus> {
    sim.nodes[node]
        .networks()
        .into_iter()
        .find(|n| n.nwid == nwid)
        .map(|n| n.status)
}

/// Frames delivered to `node`'s tap since event index `since`.
fn frames(sim: &Sim, node: usize, since: usize) -> Vec<(Mac, Mac, u16, Vec<u8>)> {
    sim.events[node][since..]
        .iter()
        .filter_map(|e| match e {
            Event::Frame {
                src_mac,
                dst_mac,
                ethertype,
                payload,
                ..
            } => Some((*src_mac, *dst_mac, *ethertype, payload.clone())),
            _ => None,
        })
        .collect()
}

fn first_ipv4(sim: &Sim, node: usize, nwid: NetworkId) -> Ipv4Addr {
    let config = sim.nodes[node].network_config(nwid).expect("config");
    config
        .static_ips
        .iter()
        .find_map(|a| match a.ip() {
            Some(std::net::IpAddr::V4(v4)) => Some(v4),
            _ => None,
        })
        .expect("an IPv4 address")
}

/// An ARP request from (`sha`, `spa`) for `tpa`.
/// An IPv4 TCP SYN from port 40000 to `port` (checksums left zero: nothing here checks them).
fn tcp_syn(src: [u8; 4], dst: [u8; 4], port: u16) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&port.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0, 0, 0, 0, 0, 0]);
    p
}

fn arp_request(sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01];
    p.extend_from_slice(&sha.0);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&tpa.octets());
    p
}

fn arp_reply(sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02];
    p.extend_from_slice(&sha.0);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha.0);
    p.extend_from_slice(&tpa.octets());
    p
}

/// Members that join before their first contact with the root (a daemon adding the
/// interface as it starts) still get their ARP groups to the root well within one announce
/// period: a LIKE that found no route to an upstream is retried at the next tick.
#[test]
fn adhoc_join_before_reaching_the_root_still_resolves_arp() {
    let mut sim = Sim::new(7, 5, 0.0);
    let root_addr = sa("10.0.0.1:9993");
    let (planet, _) = make_planet(1, 1, &[(test_identity(0), root_addr)], 7);
    sim.add_node(test_identity(0), NodeConfig::new(planet.clone()), root_addr);
    let nwid = NetworkId(0xff1c_0000_0000_0001);
    let mut leaves = Vec::new();
    for i in [1, 2] {
        let ep = sa(&format!("10.0.{i}.1:9993"));
        let n = sim.add_node(test_identity(i), NodeConfig::new(planet.clone()), ep);
        let now = sim.now;
        assert!(sim.nodes[n].join(now, nwid, JoinSettings::default()));
        leaves.push(n);
    }
    // Less than the 60 s announce period.
    sim.run_for(20_000, STEPS);
    let (a, b) = (leaves[0], leaves[1]);
    let (ip_a, ip_b) = (first_ipv4(&sim, a, nwid), first_ipv4(&sim, b, nwid));
    let (mac_a, mac_b) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    for (from, to, mac_from, ip_from, ip_to) in
        [(b, a, mac_b, ip_b, ip_a), (a, b, mac_a, ip_a, ip_b)]
    {
        let request = arp_request(mac_from, ip_from, ip_to);
        let seen = sim.events[to].len();
        let now = sim.now;
        sim.nodes[from]
            .send_frame(now, nwid, mac_from, Mac::BROADCAST, ETHERTYPE_ARP, &request)
            .unwrap();
        sim.run_for(2_000, STEPS);
        assert_eq!(
            frames(&sim, to, seen),
            vec![(mac_from, Mac::BROADCAST, ETHERTYPE_ARP, request)]
        );
    }
}

#[test]
fn adhoc_network_via_root_arp_and_ipv4_both_ways() {
    let (mut sim, leaves) = lab(1, &[1, 2]);
    let (a, b) = (leaves[0], leaves[1]);
    let nwid = NetworkId(0xff1c_0000_0000_0001);
    for n in [a, b] {
        let now = sim.now;
        assert!(sim.nodes[n].join(now, nwid, JoinSettings::default()));
    }
    sim.run_for(1_000, STEPS);
    for n in [a, b] {
        assert_eq!(status(&sim, n, nwid), Some(NetworkStatus::Ok));
        assert!(sim.events[n]
            .iter()
            .any(|e| matches!(e, Event::NetworkConfigChanged { nwid: id, .. } if *id == nwid)));
    }
    let (ip_a, ip_b) = (first_ipv4(&sim, a, nwid), first_ipv4(&sim, b, nwid));
    let (mac_a, mac_b) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    // 28.0.0.0/8, clear of the simulation's physical 10.0.0.0/16.
    assert_eq!(ip_a.octets()[0], 28);

    // B resolves A: broadcast ARP request → group (broadcast, A's IPv4) → gather at the root.
    let request = arp_request(mac_b, ip_b, ip_a);
    let (ev_a, ev_b) = (sim.events[a].len(), sim.events[b].len());
    let now = sim.now;
    sim.nodes[b]
        .send_frame(now, nwid, mac_b, Mac::BROADCAST, ETHERTYPE_ARP, &request)
        .unwrap();
    sim.run_for(2_000, STEPS);
    assert_eq!(
        frames(&sim, a, ev_a),
        vec![(mac_b, Mac::BROADCAST, ETHERTYPE_ARP, request.clone())]
    );

    // A answers by unicast; B gets it.
    let reply = arp_reply(mac_a, ip_a, mac_b, ip_b);
    let now = sim.now;
    sim.nodes[a]
        .send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_ARP, &reply)
        .unwrap();
    sim.run_for(1_000, STEPS);
    assert_eq!(
        frames(&sim, b, ev_b),
        vec![(mac_a, mac_b, ETHERTYPE_ARP, reply)]
    );

    // IPv4 both ways.
    let ping = b"\x45\x00 an ipv4 packet from B".to_vec();
    let pong = b"\x45\x00 an ipv4 packet from A".to_vec();
    let (ev_a, ev_b) = (sim.events[a].len(), sim.events[b].len());
    let now = sim.now;
    sim.nodes[b]
        .send_frame(now, nwid, mac_b, mac_a, ETHERTYPE_IPV4, &ping)
        .unwrap();
    sim.nodes[a]
        .send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_IPV4, &pong)
        .unwrap();
    sim.run_for(1_000, STEPS);
    assert_eq!(
        frames(&sim, a, ev_a),
        vec![(mac_b, mac_a, ETHERTYPE_IPV4, ping)]
    );
    assert_eq!(
        frames(&sim, b, ev_b),
        vec![(mac_a, mac_b, ETHERTYPE_IPV4, pong)]
    );

    // Ad-hoc networks have broadcast off: a plain broadcast is refused, nothing arrives.
    let ev_a = sim.events[a].len();
    let now = sim.now;
    assert_eq!(
        sim.nodes[b].send_frame(now, nwid, mac_b, Mac::BROADCAST, ETHERTYPE_IPV4, b"bcast"),
        Err(FrameError::BroadcastDisabled)
    );
    // Frames above the MTU and with a foreign source MAC are refused too.
    let big = vec![0u8; 2801];
    assert_eq!(
        sim.nodes[b].send_frame(now, nwid, mac_b, mac_a, ETHERTYPE_IPV4, &big),
        Err(FrameError::TooLarge)
    );
    assert_eq!(
        sim.nodes[b].send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_IPV4, b"spoof"),
        Err(FrameError::NotBridge)
    );
    sim.run_for(1_000, STEPS);
    assert!(frames(&sim, a, ev_a).is_empty());
    assert!(sim.nodes[b].stats().vl2.broadcast_dropped >= 1);
}

/// A controller node in the simulation, answered by zt-controller the way the daemon does.
struct ControllerLab {
    sim: Sim,
    ctl_node: usize,
    ctl: Controller<MemoryStorage>,
    identity: Identity,
    nwid: NetworkId,
    seen_events: usize,
    revocation_id: u32,
    /// Rules put into every config issued (zt-controller's RouterOS props have none).
    rules: Option<Vec<Rule>>,
    /// Specialist entries added to every config issued.
    specialists: Vec<u64>,
}

impl ControllerLab {
    fn new(seed: u64, leaves: &[usize], props: &[(&str, &str)]) -> (ControllerLab, Vec<usize>) {
        Self::with_network(seed, leaves, &network_patch_from_properties(props).unwrap())
    }

    fn with_network(
        seed: u64,
        leaves: &[usize],
        patch: &zt_controller::NetworkPatch,
    ) -> (ControllerLab, Vec<usize>) {
        let mut all = vec![3];
        all.extend_from_slice(leaves);
        let (sim, ids) = lab(seed, &all);
        let identity = test_identity(3);
        let mut ctl = Controller::new(identity.address(), MemoryStorage::new());
        let nwid = zt_controller::model::network_id_for(identity.address(), 0x00_0042);
        ctl.create_network(sim.now as i64, nwid, patch).unwrap();
        let lab = ControllerLab {
            sim,
            ctl_node: ids[0],
            ctl,
            identity,
            nwid: NetworkId(nwid),
            seen_events: 0,
            revocation_id: 1,
            rules: None,
            specialists: Vec::new(),
        };
        (lab, ids[1..].to_vec())
    }

    fn issue(&self, data: &zt_controller::NetworkConfigData) -> NetworkConfig {
        let mut config = build_config(data, &self.identity).unwrap();
        if let Some(rules) = &self.rules {
            config.rules = rules.clone();
        }
        config.specialists.extend(&self.specialists);
        config
    }

    /// Answers every config request the controller node raised since last time.
    fn serve(&mut self) {
        let now = self.sim.now;
        let events: Vec<Event> = self.sim.events[self.ctl_node][self.seen_events..].to_vec();
        self.seen_events = self.sim.events[self.ctl_node].len();
        for e in events {
            let Event::ConfigRequest {
                requester,
                nwid,
                metadata,
                request_packet_id,
            } = e
            else {
                continue;
            };
            let meta = RequestMetadata::from_dictionary(&metadata);
            let decision = self
                .ctl
                .handle_config_request(now as i64, &requester, nwid.0, &meta)
                .unwrap();
            let issued = match &decision {
                Decision::Config(data) => Some(self.issue(data)),
                _ => None,
            };
            let node = &mut self.sim.nodes[self.ctl_node];
            let to = requester.address();
            match decision {
                Decision::Config(_) => {
                    let config = issued.expect("issued above");
                    node.send_network_config(now, to, nwid, Some(request_packet_id), &config)
                        .unwrap();
                }
                Decision::NotFound => node
                    .send_network_error(now, to, nwid, request_packet_id, ErrorCode::ObjNotFound)
                    .unwrap(),
                Decision::AccessDenied => node
                    .send_network_error(
                        now,
                        to,
                        nwid,
                        request_packet_id,
                        ErrorCode::NetworkAccessDenied,
                    )
                    .unwrap(),
                Decision::Ignore(_) => {}
            }
        }
    }

    /// Runs the simulation for `ms`, serving requests every 100 ms.
    fn run(&mut self, ms: u64) {
        let end = self.sim.now + ms;
        while self.sim.now < end {
            self.sim.run_for(100, STEPS);
            self.serve();
        }
        self.sim.run_for(50, STEPS);
    }

    /// Joins each node to the network and runs two seconds, long enough for every config.
    fn join_and_settle(&mut self, nodes: &[usize]) {
        for &n in nodes {
            let now = self.sim.now;
            self.sim.nodes[n].join(now, self.nwid, JoinSettings::default());
        }
        self.run(2_000);
    }

    /// Authorizes each of `nodes` and has it join.
    fn authorize_and_join(&mut self, nodes: &[usize]) {
        for &n in nodes {
            let addr = self.sim.nodes[n].address();
            self.set_authorized(addr, true);
            let now = self.sim.now;
            self.sim.nodes[n].join(now, self.nwid, JoinSettings::default());
        }
    }

    /// Pushes `node` its current config, after `change`, and lets it arrive.
    fn push_config_to(&mut self, node: usize, change: impl FnOnce(&mut NetworkConfig)) {
        let now = self.sim.now;
        let to = self.sim.nodes[node].address();
        let data = self
            .ctl
            .push_config(now as i64, self.nwid.0, to)
            .unwrap()
            .expect("an authorized member gets a config");
        let mut config = self.issue(&data);
        change(&mut config);
        self.sim.nodes[self.ctl_node]
            .send_network_config(now, to, self.nwid, None, &config)
            .unwrap();
        self.run(500);
    }

    /// Authorizes or deauthorizes a member and sends the resulting pushes.
    fn set_authorized(&mut self, member: Address, yes: bool) {
        self.set_member(member, &[("authorized", if yes { "yes" } else { "no" })]);
    }

    /// Changes a member through the API and sends the resulting pushes, as the daemon does.
    fn set_member(&mut self, member: Address, props: &[(&str, &str)]) {
        self.update_member(member, &member_patch_from_properties(props).unwrap());
    }

    fn update_member(&mut self, member: Address, patch: &zt_controller::MemberPatch) {
        let now = self.sim.now;
        let (_, pushes) = self
            .ctl
            .update_member(now as i64, self.nwid.0, member, patch)
            .unwrap();
        for to in pushes.config_to {
            if let Some(data) = self.ctl.push_config(now as i64, self.nwid.0, to).unwrap() {
                let config = self.issue(&data);
                self.sim.nodes[self.ctl_node]
                    .send_network_config(now, to, self.nwid, None, &config)
                    .unwrap();
            }
        }
        for plan in pushes.revocations {
            self.revocation_id += 1;
            let revocation = build_revocation(&plan, self.revocation_id, &self.identity).unwrap();
            for to in plan.recipients {
                self.sim.nodes[self.ctl_node]
                    .send_revocation(now, to, &revocation)
                    .unwrap();
            }
        }
    }
}

#[test]
fn private_network_denied_then_authorized_then_revoked() {
    let props = [
        ("name", "lab"),
        ("ip-range", "10.9.0.10-10.9.0.50"),
        ("routes", "10.9.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(2, &[4, 5], &props);
    let (a, b) = (leaves[0], leaves[1]);
    let nwid = l.nwid;
    let addr_a = l.sim.nodes[a].address();
    let addr_b = l.sim.nodes[b].address();

    let now = l.sim.now;
    l.sim.nodes[a].join(now, nwid, JoinSettings::default());
    assert_eq!(
        status(&l.sim, a, nwid),
        Some(NetworkStatus::RequestingConfiguration)
    );
    l.run(2_000);
    assert_eq!(status(&l.sim, a, nwid), Some(NetworkStatus::AccessDenied));
    assert!(l.sim.nodes[a].network_config(nwid).is_none());

    // Authorized through the API: the push (and the 5 s retries) bring the config.
    l.set_authorized(addr_a, true);
    l.run(2_000);
    assert_eq!(status(&l.sim, a, nwid), Some(NetworkStatus::Ok));
    let info = l.sim.nodes[a].networks().remove(0);
    assert_eq!(info.name, "lab");
    assert_eq!(info.assigned_addresses.len(), 1);
    assert!(info.netconf_revision > 0);
    let statuses: Vec<NetworkStatus> = l.sim.events[a]
        .iter()
        .filter_map(|e| match e {
            Event::NetworkStatusChanged { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            NetworkStatus::RequestingConfiguration,
            NetworkStatus::AccessDenied,
            NetworkStatus::Ok
        ]
    );

    // B is authorized before it joins.
    l.set_authorized(addr_b, true);
    let now = l.sim.now;
    l.sim.nodes[b].join(now, nwid, JoinSettings::default());
    l.run(2_000);
    assert_eq!(status(&l.sim, b, nwid), Some(NetworkStatus::Ok));

    // Unicast A → B: credentials go first, B's gate passes.
    let (mac_a, mac_b) = (mac_of(&l.sim, a, nwid), mac_of(&l.sim, b, nwid));
    let ev_b = l.sim.events[b].len();
    let now = l.sim.now;
    l.sim.nodes[a]
        .send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_IPV4, b"hello b")
        .unwrap();
    l.run(1_000);
    assert_eq!(
        frames(&l.sim, b, ev_b),
        vec![(mac_a, mac_b, ETHERTYPE_IPV4, b"hello b".to_vec())]
    );
    assert!(l.sim.nodes[b].stats().vl2.credentials_accepted >= 1);

    // Deauthorized: the revocation reaches B, and A's frames stop being accepted at once.
    l.set_authorized(addr_a, false);
    l.run(1_000);
    assert!(l.sim.nodes[b].stats().vl2.revocations_accepted >= 1);
    // A hears its own revocation and leaves OK at once, not at its next refresh.
    assert_eq!(status(&l.sim, a, nwid), Some(NetworkStatus::AccessDenied));
    let gated = l.sim.nodes[b].stats().vl2.frames_gated;
    let ev_b = l.sim.events[b].len();
    let now = l.sim.now;
    l.sim.nodes[a]
        .send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_IPV4, b"still there?")
        .unwrap();
    l.run(3_000);
    assert!(frames(&l.sim, b, ev_b).is_empty());
    assert!(l.sim.nodes[b].stats().vl2.frames_gated > gated);
    // Both ways: B sends nothing more to A either.
    let (ev_a, dropped) = (
        l.sim.events[a].len(),
        l.sim.nodes[b].stats().vl2.frames_dropped,
    );
    let now = l.sim.now;
    assert_eq!(
        l.sim.nodes[b].send_frame(now, nwid, mac_b, mac_a, ETHERTYPE_IPV4, b"to a"),
        Err(zt_node::FrameError::Revoked)
    );
    l.run(1_000);
    assert!(frames(&l.sim, a, ev_a).is_empty());
    assert_eq!(l.sim.nodes[b].stats().vl2.frames_dropped, dropped + 1);
    // A's refreshes are now refused.
    l.run(61_000);
    assert_eq!(status(&l.sim, a, nwid), Some(NetworkStatus::AccessDenied));
}

/// Sends `payload` from `from` to `to` on the lab's network; true if `to`'s tap got it
/// within a second.
fn unicast_delivered(l: &mut ControllerLab, from: usize, to: usize, payload: &[u8]) -> bool {
    let nwid = l.nwid;
    let (src, dst) = (mac_of(&l.sim, from, nwid), mac_of(&l.sim, to, nwid));
    let since = l.sim.events[to].len();
    let now = l.sim.now;
    l.sim.nodes[from]
        .send_frame(now, nwid, src, dst, ETHERTYPE_IPV4, payload)
        .unwrap();
    l.run(1_000);
    frames(&l.sim, to, since).contains(&(src, dst, ETHERTYPE_IPV4, payload.to_vec()))
}

/// B's gate keeps its yes for A's COM only while its own COM stays the same: a config update
/// whose COM is far outside A's window shuts A out from the next frame on, and the next
/// ordinary config lets it in again.
#[test]
fn gate_verdict_follows_our_config_update() {
    let (mut l, leaves) = ControllerLab::new(12, &[4, 5], &[("name", "window")]);
    let (a, b) = (leaves[0], leaves[1]);
    l.authorize_and_join(&leaves);
    l.run(2_000);
    assert!(unicast_delivered(&mut l, a, b, b"first"));
    assert!(unicast_delivered(&mut l, a, b, b"second"));

    // The controller pushes B a config whose COM is dated far from A's.
    let (nwid, signer) = (l.nwid, l.identity.clone());
    let b_identity = l.sim.nodes[b].identity().to_public();
    let far_from = l.sim.now;
    l.push_config_to(b, |config| {
        let window = config.credential_time_max_delta;
        let mut far =
            CertificateOfMembership::new(far_from + 10 * window, window, nwid, &b_identity);
        far.sign(&signer).unwrap();
        config.com = Some(far);
    });
    let gated = l.sim.nodes[b].stats().vl2.frames_gated;
    assert!(!unicast_delivered(&mut l, a, b, b"outside the window"));
    assert!(l.sim.nodes[b].stats().vl2.frames_gated > gated);

    // An ordinary config brings B's COM back next to A's.
    l.push_config_to(b, |_| {});
    assert!(unicast_delivered(&mut l, a, b, b"back inside"));
}

#[test]
fn subscriptions_set_by_the_daemon_are_announced_at_once_and_replaced_as_a_set() {
    let props = [
        ("name", "os-groups"),
        ("private", "no"),
        ("ip-range", "10.9.0.10-10.9.0.50"),
        ("routes", "10.9.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(3, &[4, 5], &props);
    let nwid = l.nwid;
    for &n in &leaves {
        let now = l.sim.now;
        l.sim.nodes[n].join(now, nwid, JoinSettings::default());
    }
    l.run(3_000);
    let (sender, listener) = (leaves[0], leaves[1]);
    let group = |mac: &str| MulticastGroup {
        mac: mac.parse().unwrap(),
        adi: 0,
    };
    let (kept, dropped, joined) = (
        group("33:33:00:00:00:01"),
        group("01:00:5e:00:00:01"),
        group("01:00:5e:01:02:03"),
    );
    let now = l.sim.now;
    let first = l.sim.nodes[listener]
        .set_multicast_subscriptions(now, nwid, [kept, dropped].into())
        .unwrap();
    assert_eq!(first.added, vec![dropped, kept]);
    assert!(first.removed.is_empty());
    let now = l.sim.now;
    let second = l.sim.nodes[listener]
        .set_multicast_subscriptions(now, nwid, [kept, joined].into())
        .unwrap();
    assert_eq!(
        (second.added, second.removed),
        (vec![joined], vec![dropped])
    );
    let info = l.sim.nodes[listener]
        .networks()
        .into_iter()
        .find(|n| n.nwid == nwid)
        .unwrap();
    assert_eq!(info.multicast_subscriptions, vec![joined, kept]);
    // Not joined: nothing to set.
    let now = l.sim.now;
    assert!(l.sim.nodes[listener]
        .set_multicast_subscriptions(now, NetworkId(0x1234), BTreeSet::new())
        .is_none());

    // Well within the announce period, the LIKE sent at once lets a multicast to the new
    // group find the listener.
    l.run(1_000);
    let before = l.sim.events[listener].len();
    let mac_s = mac_of(&l.sim, sender, nwid);
    let now = l.sim.now;
    l.sim.nodes[sender]
        .send_frame(now, nwid, mac_s, joined.mac, 0x0800, b"to the new group")
        .unwrap();
    l.run(2_000);
    assert!(frames(&l.sim, listener, before)
        .iter()
        .any(|f| f.1 == joined.mac && f.3 == b"to the new group"));
}

#[test]
fn multicast_reaches_exactly_the_limit_and_broadcast_follows_the_flag() {
    let props = [
        ("name", "mc"),
        ("private", "no"),
        ("multicast-limit", "2"),
        ("broadcast", "yes"),
        ("ip-range", "10.8.0.10-10.8.0.50"),
        ("routes", "10.8.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(3, &[4, 5, 6, 7], &props);
    let nwid = l.nwid;
    for &n in &leaves {
        let now = l.sim.now;
        l.sim.nodes[n].join(now, nwid, JoinSettings::default());
    }
    l.run(3_000);
    for &n in &leaves {
        assert_eq!(status(&l.sim, n, nwid), Some(NetworkStatus::Ok));
    }
    let group_mac: Mac = "01:00:5e:00:00:fb".parse().unwrap();
    let (sender, subscribers) = (leaves[0], &leaves[1..]);
    for &n in subscribers {
        let now = l.sim.now;
        assert!(l.sim.nodes[n].multicast_subscribe(now, nwid, group_mac, 0));
    }
    l.run(1_000);

    let mac_s = mac_of(&l.sim, sender, nwid);
    for round in 0..2 {
        let before: Vec<usize> = subscribers.iter().map(|&n| l.sim.events[n].len()).collect();
        let now = l.sim.now;
        let payload = format!("mdns round {round}").into_bytes();
        l.sim.nodes[sender]
            .send_frame(now, nwid, mac_s, group_mac, 0x0800, &payload)
            .unwrap();
        l.run(2_000);
        let reached = subscribers
            .iter()
            .zip(&before)
            .filter(|(&n, &since)| {
                frames(&l.sim, n, since)
                    .iter()
                    .any(|f| f.1 == group_mac && f.3 == payload)
            })
            .count();
        assert_eq!(reached, 2, "round {round}: 3 subscribers, limit 2");
    }

    // Broadcast is enabled here: every member subscribes to it, and it reaches the limit.
    let before: Vec<usize> = subscribers.iter().map(|&n| l.sim.events[n].len()).collect();
    let now = l.sim.now;
    l.sim.nodes[sender]
        .send_frame(now, nwid, mac_s, Mac::BROADCAST, 0x0800, b"bcast")
        .unwrap();
    l.run(2_000);
    let reached = subscribers
        .iter()
        .zip(&before)
        .filter(|(&n, &since)| !frames(&l.sim, n, since).is_empty())
        .count();
    assert_eq!(reached, 2);
}

#[test]
fn bad_configs_are_refused_counted_and_change_nothing() {
    let props = [
        ("name", "strict"),
        ("ip-range", "10.7.0.10-10.7.0.50"),
        ("routes", "10.7.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(4, &[4, 5], &props);
    let (a, b) = (leaves[0], leaves[1]);
    let nwid = l.nwid;
    l.set_authorized(l.sim.nodes[a].address(), true);
    let now = l.sim.now;
    l.sim.nodes[a].join(now, nwid, JoinSettings::default());
    l.run(2_000);
    assert_eq!(status(&l.sim, a, nwid), Some(NetworkStatus::Ok));
    let good: NetworkConfig = l.sim.nodes[a].network_config(nwid).unwrap().clone();
    let stats_before = l.sim.nodes[a].stats().vl2.clone();
    let addr_a = l.sim.nodes[a].address();
    let ctl = l.ctl_node;

    let mut changed = good.clone();
    changed.name = "tampered".into();
    changed.revision += 1;
    let dictionary = changed.to_bytes().unwrap();

    // 1. A bad signature: a valid chunk with one data byte flipped.
    let mut chunk = ConfigChunk::split_and_sign(nwid, &dictionary, 0x1111, &l.identity)
        .unwrap()
        .remove(0);
    chunk.data[3] ^= 0x20;
    // 2. Oversize: a total length beyond the dictionary capacity (properly signed).
    let mut oversize = ConfigChunk {
        total_len: 100_000_000,
        ..ConfigChunk::split_and_sign(nwid, &dictionary, 0x2222, &l.identity)
            .unwrap()
            .remove(0)
    };
    oversize.signature = l.identity.sign(&oversize.signed_region()).unwrap();
    // 3. Inconsistent: two signed halves of one update disagreeing on the total length.
    let half = dictionary.len() / 2;
    let mut first = ConfigChunk {
        data: dictionary[..half].to_vec(),
        total_len: dictionary.len() as u32,
        ..oversize.clone()
    };
    first.update_id = 0x3333;
    first.signature = l.identity.sign(&first.signed_region()).unwrap();
    let mut second = ConfigChunk {
        data: dictionary[half..].to_vec(),
        index: half as u32,
        total_len: dictionary.len() as u32 + 1,
        ..first.clone()
    };
    second.signature = l.identity.sign(&second.signed_region()).unwrap();
    let now = l.sim.now;
    for c in [&chunk, &oversize, &first, &second] {
        l.sim.nodes[ctl]
            .send_to_peer(
                now,
                addr_a,
                zt_node::Verb::NetworkConfig,
                &c.to_bytes().unwrap(),
            )
            .unwrap();
    }
    // 4. A well-signed config issued to another member, and one with an old version.
    let mut not_ours = changed.clone();
    not_ours.issued_to = l.sim.nodes[b].address();
    l.sim.nodes[ctl]
        .send_network_config(now, addr_a, nwid, None, &not_ours)
        .unwrap();
    let mut too_old = changed.clone();
    too_old.version = 5;
    l.sim.nodes[ctl]
        .send_network_config(now, addr_a, nwid, None, &too_old)
        .unwrap();
    l.sim.run_for(500, STEPS);

    let after = &l.sim.nodes[a].stats().vl2;
    assert_eq!(
        after.config_bad_signature,
        stats_before.config_bad_signature + 1
    );
    assert_eq!(after.config_bad_chunk, stats_before.config_bad_chunk + 2);
    assert_eq!(after.config_rejected, stats_before.config_rejected + 2);
    assert_eq!(after.configs_applied, stats_before.configs_applied);
    assert_eq!(l.sim.nodes[a].network_config(nwid), Some(&good));
    assert_eq!(status(&l.sim, a, nwid), Some(NetworkStatus::Ok));

    // The same change, correctly signed and addressed, is applied.
    l.sim.nodes[ctl]
        .send_network_config(l.sim.now, addr_a, nwid, None, &changed)
        .unwrap();
    l.sim.run_for(500, STEPS);
    assert_eq!(l.sim.nodes[a].network_config(nwid), Some(&changed));
}

#[test]
fn own_network_served_locally_and_unknown_network_not_found() {
    let props = [("name", "home"), ("private", "no")];
    let (mut l, leaves) = ControllerLab::new(5, &[4], &props);
    let nwid = l.nwid;
    let ctl = l.ctl_node;
    // The controller's own node joins its own network: answered without any packet.
    let now = l.sim.now;
    l.sim.nodes[ctl].join(now, nwid, JoinSettings::default());
    l.run(500);
    assert_eq!(status(&l.sim, ctl, nwid), Some(NetworkStatus::Ok));
    // A network the controller does not have.
    let missing = NetworkId(nwid.0 + 1);
    let now = l.sim.now;
    l.sim.nodes[leaves[0]].join(now, missing, JoinSettings::default());
    l.run(1_000);
    assert_eq!(
        status(&l.sim, leaves[0], missing),
        Some(NetworkStatus::NotFound)
    );
    // Restoring a saved config works before (and without) the controller.
    let saved = l.sim.nodes[ctl].network_config(nwid).unwrap().clone();
    assert!(l.sim.nodes[ctl].leave(nwid));
    let now = l.sim.now;
    l.sim.nodes[ctl]
        .restore_network_config(now, nwid, saved.clone())
        .unwrap();
    assert_eq!(status(&l.sim, ctl, nwid), Some(NetworkStatus::Ok));
    assert!(l.sim.nodes[ctl]
        .restore_network_config(now, NetworkId(nwid.0 + 2), saved)
        .is_err());
}

/// The request metadata is what a real 1.14.1 client sends (capture `zt114-join`, packet 40),
/// with our own `o`.
#[test]
fn config_request_metadata_matches_a_real_client() {
    let (mut l, leaves) = ControllerLab::new(6, &[4], &[("name", "m")]);
    let nwid = l.nwid;
    let a = leaves[0];
    let now = l.sim.now;
    l.sim.nodes[a].join(now, nwid, JoinSettings::default());
    l.sim.run_for(1_000, STEPS);
    let requests: Vec<(Identity, NetworkId, Vec<u8>, u64)> = l.sim.events[l.ctl_node]
        .iter()
        .filter_map(|e| match e {
            Event::ConfigRequest {
                requester,
                nwid,
                metadata,
                request_packet_id,
            } => Some((
                requester.clone(),
                *nwid,
                metadata.to_bytes(),
                *request_packet_id,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 1);
    let (requester, got_nwid, metadata, pid) = &requests[0];
    assert_eq!(requester.address(), l.sim.nodes[a].address());
    assert_eq!(*got_nwid, nwid);
    assert_ne!(*pid, 0);
    let captured = "v=0000000000000007 vend=0000000000000001 pv=000000000000000c \
        majv=0000000000000001 minv=000000000000000e revv=0000000000000001 mr=0000000000000400 \
        mc=0000000000000080 mcr=0000000000000040 mt=0000000000000080 f=0000000000000000 \
        revr=0000000000000001";
    let mut expected = captured.split_whitespace().collect::<Vec<_>>().join("\n");
    expected.push_str(&format!(
        "\no={}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    ));
    assert_eq!(String::from_utf8_lossy(metadata), expected);
    // Unanswered, the request is repeated at the next ping checks (every 5 s; the capture
    // shows 20.026 → 25.025).
    l.sim.run_for(4_500, STEPS);
    let count = l.sim.events[l.ctl_node]
        .iter()
        .filter(|e| matches!(e, Event::ConfigRequest { .. }))
        .count();
    assert_eq!(count, 2);
    l.sim.run_for(5_000, STEPS);
    let count = l.sim.events[l.ctl_node]
        .iter()
        .filter(|e| matches!(e, Event::ConfigRequest { .. }))
        .count();
    assert_eq!(count, 3);
}

/// A member that lost our credentials (it left and rejoined) answers our frame with
/// NEED_MEMBERSHIP_CERTIFICATE and holds it; we push again, the held frame is delivered and
/// the next one gets through.
#[test]
fn need_membership_certificate_brings_a_fresh_push() {
    let props = [
        ("name", "n"),
        ("ip-range", "10.6.0.10-10.6.0.50"),
        ("routes", "10.6.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(7, &[4, 5], &props);
    let (a, b) = (leaves[0], leaves[1]);
    let nwid = l.nwid;
    for n in [a, b] {
        let addr = l.sim.nodes[n].address();
        l.set_authorized(addr, true);
        let now = l.sim.now;
        l.sim.nodes[n].join(now, nwid, JoinSettings::default());
    }
    l.run(2_000);
    let (mac_a, mac_b) = (mac_of(&l.sim, a, nwid), mac_of(&l.sim, b, nwid));
    let send = |l: &mut ControllerLab, text: &[u8]| {
        let now = l.sim.now;
        l.sim.nodes[a]
            .send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_IPV4, text)
            .unwrap();
        l.run(1_000);
    };
    send(&mut l, b"one");
    let pushes = l.sim.nodes[a].stats().vl2.credentials_sent;

    // B forgets A's credentials; A, having pushed recently, sends the frame alone.
    assert!(l.sim.nodes[b].leave(nwid));
    let now = l.sim.now;
    l.sim.nodes[b].join(now, nwid, JoinSettings::default());
    l.run(2_000);
    assert_eq!(status(&l.sim, b, nwid), Some(NetworkStatus::Ok));
    let ev_b = l.sim.events[b].len();
    send(&mut l, b"two");
    assert_eq!(l.sim.nodes[b].stats().vl2.frames_gated, 1);
    assert_eq!(l.sim.nodes[a].stats().vl2.credentials_sent, pushes + 1);
    // B held the frame and delivers it once the fresh credentials are in.
    send(&mut l, b"three");
    assert_eq!(
        frames(&l.sim, b, ev_b),
        vec![
            (mac_a, mac_b, ETHERTYPE_IPV4, b"two".to_vec()),
            (mac_a, mac_b, ETHERTYPE_IPV4, b"three".to_vec())
        ]
    );
    assert_eq!(l.sim.nodes[b].stats().vl2.frames_gated, 1);
}

/// An active bridge sends frames for MACs behind it (EXT_FRAME); members learn the route and
/// answer through it. A member that is not a bridge may not do either.
#[test]
fn active_bridge_carries_foreign_macs() {
    let props = [
        ("name", "br"),
        ("ip-range", "10.5.0.10-10.5.0.50"),
        ("routes", "10.5.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(8, &[4, 5], &props);
    let (bridge, b) = (leaves[0], leaves[1]);
    let nwid = l.nwid;
    let bridge_addr = l.sim.nodes[bridge].address();
    l.set_member(bridge_addr, &[("authorized", "yes"), ("bridge", "yes")]);
    let b_addr = l.sim.nodes[b].address();
    l.set_authorized(b_addr, true);
    l.join_and_settle(&[bridge, b]);
    let config = l.sim.nodes[b].network_config(nwid).unwrap();
    assert_eq!(
        config.active_bridges().collect::<Vec<_>>(),
        vec![bridge_addr]
    );

    let behind: Mac = "02:11:22:33:44:55".parse().unwrap();
    let mac_b = mac_of(&l.sim, b, nwid);
    let ev_b = l.sim.events[b].len();
    let now = l.sim.now;
    l.sim.nodes[bridge]
        .send_frame(now, nwid, behind, mac_b, ETHERTYPE_IPV4, b"from behind")
        .unwrap();
    l.run(1_000);
    assert_eq!(
        frames(&l.sim, b, ev_b),
        vec![(behind, mac_b, ETHERTYPE_IPV4, b"from behind".to_vec())]
    );

    // B answers the foreign MAC: the learned route leads to the bridge.
    let ev_bridge = l.sim.events[bridge].len();
    let now = l.sim.now;
    l.sim.nodes[b]
        .send_frame(now, nwid, mac_b, behind, ETHERTYPE_IPV4, b"to behind")
        .unwrap();
    l.run(1_000);
    assert_eq!(
        frames(&l.sim, bridge, ev_bridge),
        vec![(mac_b, behind, ETHERTYPE_IPV4, b"to behind".to_vec())]
    );

    // B is no bridge: it may not send from a foreign MAC.
    let now = l.sim.now;
    assert_eq!(
        l.sim.nodes[b].send_frame(now, nwid, behind, mac_b, ETHERTYPE_IPV4, b"x"),
        Err(FrameError::NotBridge)
    );
}

/// The network's rules are enforced both ways: a DROP rule stops a frame at the sender (and
/// would at the receiver), and a TEE rule copies frames to a third member, which accepts the
/// copies (it is the TEE target: "super accept") although they are not addressed to it.
#[test]
fn rules_drop_and_tee() {
    let props = [
        ("name", "ruled"),
        ("ip-range", "10.4.0.10-10.4.0.50"),
        ("routes", "10.4.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(9, &[4, 5, 6], &props);
    let (a, b, c) = (leaves[0], leaves[1], leaves[2]);
    let nwid = l.nwid;
    let watcher = l.sim.nodes[c].address();
    l.rules = Some(vec![
        // No SSH.
        Rule::new(RuleKind::IpProtocol(6)),
        Rule::new(RuleKind::IpDestPortRange { start: 22, end: 22 }),
        Rule::drop(),
        // Copy the first 20 bytes of every IPv4 frame to C.
        Rule::new(RuleKind::Ethertype(ETHERTYPE_IPV4)),
        Rule::new(RuleKind::Tee(Forward {
            address: watcher,
            flags: 0,
            length: 20,
        })),
        Rule::accept(),
    ]);
    l.authorize_and_join(&[a, b, c]);
    l.run(2_000);
    let (mac_a, mac_b) = (mac_of(&l.sim, a, nwid), mac_of(&l.sim, b, nwid));
    assert_eq!(l.sim.nodes[b].network_config(nwid).unwrap().rules.len(), 6);

    // An IPv4/TCP packet to port 22, and one to port 80.
    let tcp_to = |port| tcp_syn([10, 4, 0, 1], [10, 4, 0, 2], port);
    let (ev_b, ev_c) = (l.sim.events[b].len(), l.sim.events[c].len());
    let now = l.sim.now;
    assert_eq!(
        l.sim.nodes[a].send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_IPV4, &tcp_to(22)),
        Err(FrameError::Filtered)
    );
    let web = tcp_to(80);
    l.sim.nodes[a]
        .send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_IPV4, &web)
        .unwrap();
    l.run(1_000);
    assert_eq!(
        frames(&l.sim, b, ev_b),
        vec![(mac_a, mac_b, ETHERTYPE_IPV4, web.clone())]
    );
    // Both ends evaluate the TEE (A outbound, B inbound), so C gets a copy from each, as
    // with the reference (EXT_FRAME subtypes 0x02 and 0x08).
    let copy = (mac_a, mac_b, ETHERTYPE_IPV4, web[..20].to_vec());
    assert_eq!(frames(&l.sim, c, ev_c), vec![copy.clone(), copy]);
    assert_eq!(l.sim.nodes[a].stats().vl2.frames_filtered, 1);
}

/// Rules and a capability set through the zerotier JSON API, as zero-ui and ZTNet post them, are
/// issued by the controller and enforced by the members: zero-ui's default rules drop every
/// ethertype but IPv4, ARP and IPv6; SSH falls through to the capabilities (BREAK), and only the
/// member holding the SSH capability may open it (the receiver checks the sender's signed
/// capability).
#[test]
fn rules_and_capabilities_from_the_json_api_are_enforced() {
    let body = serde_json::json!({
        "name": "flows",
        "ipAssignmentPools": [{"ipRangeStart": "10.5.0.10", "ipRangeEnd": "10.5.0.50"}],
        "routes": [{"target": "10.5.0.0/24", "via": null}],
        "v4AssignMode": {"zt": "true"},
        "rules": [
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 2048},
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 2054},
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 34525},
            {"type": "ACTION_DROP"},
            {"type": "MATCH_IP_PROTOCOL", "not": false, "or": false, "ipProtocol": 6},
            {"type": "MATCH_IP_DEST_PORT_RANGE", "not": false, "or": false, "start": 22, "end": 22},
            {"type": "ACTION_BREAK"},
            {"type": "ACTION_ACCEPT"}
        ],
        "capabilities": [{"id": 22, "default": false, "rules": [
            {"type": "MATCH_IP_DEST_PORT_RANGE", "not": false, "or": false, "start": 22, "end": 22},
            {"type": "ACTION_ACCEPT"}
        ]}]
    });
    let patch = zt_controller::json::network_patch_from_json(&body)
        .unwrap()
        .patch;
    let (mut l, leaves) = ControllerLab::with_network(11, &[4, 5], &patch);
    let (a, b) = (leaves[0], leaves[1]);
    let nwid = l.nwid;
    let admin = l.sim.nodes[a].address();
    let ssh = zt_controller::json::member_patch_from_json(
        &serde_json::json!({"authorized": "true", "capabilities": [22]}),
    )
    .unwrap()
    .patch;
    l.update_member(admin, &ssh);
    let other = l.sim.nodes[b].address();
    l.set_authorized(other, true);
    l.join_and_settle(&[a, b]);
    let (mac_a, mac_b) = (mac_of(&l.sim, a, nwid), mac_of(&l.sim, b, nwid));
    let config_a = l.sim.nodes[a].network_config(nwid).unwrap();
    assert_eq!(config_a.rules.len(), 8);
    assert_eq!(config_a.capabilities.len(), 1);
    assert!(l.sim.nodes[b]
        .network_config(nwid)
        .unwrap()
        .capabilities
        .is_empty());

    let tcp_to = |port| tcp_syn([10, 5, 0, 1], [10, 5, 0, 2], port);
    let now = l.sim.now;
    // Not IPv4, ARP or IPv6: dropped at the sender.
    assert_eq!(
        l.sim.nodes[a].send_frame(now, nwid, mac_a, mac_b, 0x88b5, &[0u8; 46]),
        Err(FrameError::Filtered)
    );
    // SSH from the member without the capability: dropped at the sender.
    assert_eq!(
        l.sim.nodes[b].send_frame(now, nwid, mac_b, mac_a, ETHERTYPE_IPV4, &tcp_to(22)),
        Err(FrameError::Filtered)
    );
    // Web and SSH from the member holding it: both delivered.
    let ev_b = l.sim.events[b].len();
    let (web, ssh) = (tcp_to(80), tcp_to(22));
    for packet in [&web, &ssh] {
        l.sim.nodes[a]
            .send_frame(now, nwid, mac_a, mac_b, ETHERTYPE_IPV4, packet)
            .unwrap();
    }
    l.run(1_000);
    assert_eq!(
        frames(&l.sim, b, ev_b),
        vec![
            (mac_a, mac_b, ETHERTYPE_IPV4, web),
            (mac_a, mac_b, ETHERTYPE_IPV4, ssh)
        ]
    );
}

/// Addresses assigned to us on a network are never used as physical paths (that would tunnel
/// ZeroTier through itself): with 10.0.2.0/24 assigned, A keeps reaching B (at 10.0.2.1)
/// through the root only, while without it the two go direct.
#[test]
fn assigned_prefixes_are_not_physical_paths() {
    let direct_to_b = |assign: bool| {
        let (mut sim, leaves) = lab(10, &[1, 2]);
        let (a, b) = (leaves[0], leaves[1]);
        let addr_a = sim.nodes[a].address();
        let addr_b = sim.nodes[b].address();
        if assign {
            let nwid = NetworkId(0x0123_4567_89ab_cdef);
            let mut config = NetworkConfig::new(nwid, addr_a);
            config.static_ips = vec![zt_wire::inet::InetAddress::new(
                std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 2, 0)),
                24,
            )];
            let now = sim.now;
            sim.nodes[a]
                .restore_network_config(now, nwid, config)
                .unwrap();
        }
        for _ in 0..5 {
            let now = sim.now;
            let mut message = 0x1_0000u64.to_be_bytes().to_vec();
            message.extend_from_slice(b"hi");
            sim.nodes[a]
                .send_to_peer(now, addr_b, zt_node::Verb::UserMessage, &message)
                .unwrap();
            sim.run_for(3_000, STEPS);
        }
        let reached = sim.events[b]
            .iter()
            .filter(|e| matches!(e, Event::UserMessage { .. }))
            .count();
        assert_eq!(reached, 5);
        sim.nodes[a]
            .peers()
            .iter()
            .any(|p| p.address == addr_b && p.direct)
    };
    assert!(direct_to_b(false));
    assert!(!direct_to_b(true));
}

/// NDP emulation (§6.10): on the port-range ad-hoc network (flag 0x04, 6plane addresses) a
/// neighbour solicitation for another member's 6plane address is answered locally with its
/// MAC, and nothing goes on the wire.
#[test]
fn neighbour_solicitation_for_a_6plane_member_is_answered_locally() {
    let (mut sim, leaves) = lab(11, &[1, 2]);
    let (a, b) = (leaves[0], leaves[1]);
    let nwid = NetworkId::adhoc_port_range(0, 65535);
    let now = sim.now;
    sim.nodes[a].join(now, nwid, JoinSettings::default());
    sim.run_for(500, STEPS);
    let (mac_a, mac_b) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    let ip_a = nwid.sixplane_address(sim.nodes[a].address());
    let ip_b = nwid.sixplane_address(sim.nodes[b].address());
    let t = ip_b.octets();
    let solicited_node: std::net::Ipv6Addr =
        format!("ff02::1:ff{:02x}:{:02x}{:02x}", t[13], t[14], t[15])
            .parse()
            .unwrap();
    let mut ns = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
    ns.extend_from_slice(&ip_a.octets());
    ns.extend_from_slice(&solicited_node.octets());
    ns.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    ns.extend_from_slice(&ip_b.octets());
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&mac_a.0);
    let group_mac = Mac([0x33, 0x33, 0xff, t[13], t[14], t[15]]);

    let (ev_a, sent) = (sim.events[a].len(), sim.nodes[a].stats().tx_datagrams);
    let now = sim.now;
    sim.nodes[a]
        .send_frame(now, nwid, mac_a, group_mac, 0x86dd, &ns)
        .unwrap();
    assert_eq!(
        sim.nodes[a].stats().tx_datagrams,
        sent,
        "nothing on the wire"
    );
    sim.run_for(10, STEPS);
    let got = frames(&sim, a, ev_a);
    assert_eq!(got.len(), 1);
    let (src, dst, ethertype, na) = &got[0];
    assert_eq!((*src, *dst, *ethertype), (mac_b, mac_a, 0x86dd));
    assert_eq!(na.len(), 72);
    assert_eq!(&na[8..24], &ip_b.octets()); // from the target
    assert_eq!(&na[24..40], &ip_a.octets()); // to the asker
    assert_eq!((na[6], na[7], na[40]), (58, 255, 136));
    assert_eq!(na[44], 0x60); // solicited + override
    assert_eq!(&na[48..64], &ip_b.octets());
    assert_eq!(&na[64..66], &[2, 1]);
    assert_eq!(&na[66..72], &mac_b.0);
    // The ICMPv6 checksum verifies (the one's-complement sum over pseudo-header and message
    // is all ones).
    let mut sum: u32 = 0;
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&na[8..40]);
    pseudo.extend_from_slice(&32u32.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&na[40..]);
    for w in pseudo.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    assert_eq!(sum, 0xffff);
}

/// Garbage from an authenticated peer, for every VL2 verb and the OK/ERROR forms, with the
/// network ID of a joined network in front half the time (to get past the first checks and
/// into the switch, the rules and the config assembler): nothing panics, and the network
/// still works afterwards.
#[test]
fn random_vl2_payloads_from_a_peer_are_survived() {
    use rand::{Rng, SeedableRng};
    let (mut sim, leaves) = lab(12, &[1, 2]);
    let (a, b) = (leaves[0], leaves[1]);
    let nets = [
        NetworkId::adhoc_port_range(0, 65535),
        NetworkId(0xff1c_0000_0000_0001),
    ];
    for n in [a, b] {
        for nwid in nets {
            let now = sim.now;
            sim.nodes[n].join(now, nwid, JoinSettings::default());
        }
    }
    sim.run_for(1_000, STEPS);
    let addr_a = sim.nodes[a].address();
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let verbs = [
        zt_node::Verb::Frame,
        zt_node::Verb::ExtFrame,
        zt_node::Verb::MulticastFrame,
        zt_node::Verb::MulticastLike,
        zt_node::Verb::MulticastGather,
        zt_node::Verb::NetworkCredentials,
        zt_node::Verb::NetworkConfigRequest,
        zt_node::Verb::NetworkConfig,
        zt_node::Verb::Error,
    ];
    for round in 0..600 {
        let verb = verbs[round % verbs.len()];
        let len = rng.gen_range(0..300);
        let mut payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if rng.gen_bool(0.5) {
            let nwid = nets[rng.gen_range(0..nets.len())];
            let at = if verb == zt_node::Verb::Error { 10 } else { 0 };
            if payload.len() >= at + 8 {
                payload[at..at + 8].copy_from_slice(&nwid.0.to_be_bytes());
            }
            if verb == zt_node::Verb::Error {
                payload[0] = rng.gen_range(6..15); // a VL2 in-re verb
            }
        }
        let now = sim.now;
        sim.nodes[b]
            .send_to_peer(now, addr_a, verb, &payload)
            .unwrap();
        if round % 50 == 0 {
            sim.run_for(100, STEPS);
        }
    }
    sim.run_for(1_000, STEPS);
    // Still a working network: B's frame reaches A.
    let nwid = nets[1];
    let (mac_a, mac_b) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    let ev_a = sim.events[a].len();
    let now = sim.now;
    sim.nodes[b]
        .send_frame(now, nwid, mac_b, mac_a, ETHERTYPE_IPV4, b"after the noise")
        .unwrap();
    sim.run_for(1_000, STEPS);
    assert!(frames(&sim, a, ev_a)
        .iter()
        .any(|f| f.3 == b"after the noise".to_vec()));
    assert!(sim.nodes[a].stats().dropped_malformed > 0);
}

/// With a multicast replicator on the network, a member hands its multicast to the
/// replicator alone (flags 0x0c), which sends it on to the subscribers.
#[test]
fn multicast_goes_through_the_replicator() {
    let props = [
        ("name", "rep"),
        ("private", "no"),
        ("ip-range", "10.3.0.10-10.3.0.50"),
        ("routes", "10.3.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(13, &[4, 5, 6, 7], &props);
    let (sender, replicator, subscribers) = (leaves[0], leaves[1], &leaves[2..]);
    let nwid = l.nwid;
    // Replicated frames keep the sender's MAC, which members accept only from an active
    // bridge (as the reference does), so the replicator is one too.
    l.specialists = vec![
        zt_wire::netconf::SPECIALIST_MULTICAST_REPLICATOR
            | zt_wire::netconf::SPECIALIST_ACTIVE_BRIDGE
            | l.sim.nodes[replicator].address().to_u64(),
    ];
    for &n in &leaves {
        let now = l.sim.now;
        l.sim.nodes[n].join(now, nwid, JoinSettings::default());
    }
    l.run(3_000);
    let group_mac: Mac = "01:00:5e:00:00:fc".parse().unwrap();
    for &n in subscribers {
        let now = l.sim.now;
        l.sim.nodes[n].multicast_subscribe(now, nwid, group_mac, 0);
    }
    l.run(1_000);
    // The sender needs a live path to the replicator: any unicast opens one.
    let (mac_s, mac_r) = (
        mac_of(&l.sim, sender, nwid),
        mac_of(&l.sim, replicator, nwid),
    );
    let now = l.sim.now;
    l.sim.nodes[sender]
        .send_frame(now, nwid, mac_s, mac_r, ETHERTYPE_IPV4, b"hello replicator")
        .unwrap();
    l.run(3_000);

    let before: Vec<usize> = subscribers.iter().map(|&n| l.sim.events[n].len()).collect();
    let sent_before = l.sim.nodes[sender].stats().vl2.multicast_frames_sent;
    let relayed_before = l.sim.nodes[replicator].stats().vl2.multicast_frames_sent;
    let now = l.sim.now;
    l.sim.nodes[sender]
        .send_frame(now, nwid, mac_s, group_mac, 0x0800, b"to the group")
        .unwrap();
    l.run(2_000);
    assert_eq!(
        l.sim.nodes[sender].stats().vl2.multicast_frames_sent,
        sent_before + 1
    );
    assert!(l.sim.nodes[replicator].stats().vl2.multicast_frames_sent >= relayed_before + 2);
    for (&n, &since) in subscribers.iter().zip(&before) {
        assert!(
            frames(&l.sim, n, since)
                .iter()
                .any(|f| f.0 == mac_s && f.1 == group_mac && f.3 == b"to the group".to_vec()),
            "subscriber {n}"
        );
    }
}

/// `from` says MULTICAST_LIKE to `to` for `groups` of the lab's network, in packets of at
/// most 70 entries, sealed with their real shared key. Nodes are (index in the simulation,
/// test identity number).
fn like(
    l: &mut ControllerLab,
    (from, from_id): (usize, usize),
    (to, to_id): (usize, usize),
    groups: &[MulticastGroup],
) {
    use zt_crypto::armor::{CipherSuite, PeerKey};
    use zt_wire::verbs::packet::{build, OutgoingPacket};
    let (sender, receiver) = (&l.sim.nodes[from], &l.sim.nodes[to]);
    let key = PeerKey::new(
        test_identity(from_id)
            .agree(&test_identity(to_id))
            .expect("test identities agree"),
    );
    let (source, destination) = (sender.address(), receiver.address());
    for chunk in groups.chunks(70) {
        let mut payload = Vec::new();
        zt_wire::verbs::multicast::MulticastLike {
            entries: chunk.iter().map(|g| (l.nwid, *g)).collect(),
        }
        .write(&mut payload);
        let packet = OutgoingPacket {
            destination,
            source,
            verb: zt_node::Verb::MulticastLike,
            payload: &payload,
            packet_id: rand::random(),
            suite: CipherSuite::Poly1305Salsa2012,
            compress: false,
            mtu: 1432,
        };
        for datagram in build(&packet, &key).unwrap().datagrams {
            let at = l.sim.addrs[from];
            l.sim.inject(at, to, &datagram);
        }
        l.run(100);
    }
}

/// A group no one uses but the test: a multicast MAC numbered `n`.
fn test_group(n: u32) -> MulticastGroup {
    let [_, b, c, d] = n.to_be_bytes();
    MulticastGroup {
        mac: Mac([0x01, 0x00, 0x5e, b & 0x7f, c, d]),
        adi: 0,
    }
}

/// Sends a multicast frame from `from` to `group`: which nodes' taps got it within a second.
fn multicast_reaches(
    l: &mut ControllerLab,
    from: usize,
    group: MulticastGroup,
    candidates: &[usize],
) -> Vec<usize> {
    let nwid = l.nwid;
    let since: Vec<usize> = candidates.iter().map(|&n| l.sim.events[n].len()).collect();
    let now = l.sim.now;
    let src = mac_of(&l.sim, from, nwid);
    l.sim.nodes[from]
        .send_frame(now, nwid, src, group.mac, ETHERTYPE_IPV4, b"to the group")
        .unwrap();
    l.run(1_000);
    candidates
        .iter()
        .zip(since)
        .filter(|(&n, since)| {
            frames(&l.sim, n, *since)
                .iter()
                .any(|(_, dst, _, payload)| *dst == group.mac && payload == b"to the group")
        })
        .map(|(&n, _)| n)
        .collect()
}

/// A node that is not a member cannot subscribe at a member (its LIKEs are refused and it
/// gets nothing sent to the group), and a member that floods LIKEs for thousands of groups
/// is held to its per-member share while another member's group still gets its frames.
#[test]
fn like_floods_change_nothing_for_strangers_and_are_capped_per_member() {
    let props = [
        ("name", "lab"),
        ("ip-range", "10.9.0.10-10.9.0.50"),
        ("routes", "10.9.0.0/24"),
    ];
    let (mut l, leaves) = ControllerLab::new(7, &[4, 5, 6, 7], &props);
    let (a, b, d, stranger) = (leaves[0], leaves[1], leaves[2], leaves[3]);
    l.authorize_and_join(&[a, b, d]);
    l.join_and_settle(&[stranger]);
    let nwid = l.nwid;
    for n in [a, b, d] {
        assert_eq!(status(&l.sim, n, nwid), Some(NetworkStatus::Ok));
    }
    assert_eq!(
        status(&l.sim, stranger, nwid),
        Some(NetworkStatus::AccessDenied)
    );
    // A holds B's and D's membership certificates (credentials go with the first frame).
    assert!(unicast_delivered(&mut l, b, a, b"b to a"));
    assert!(unicast_delivered(&mut l, d, a, b"d to a"));

    let refused_before = l.sim.nodes[a].stats().vl2.likes_refused;
    let stranger_group = test_group(1);
    like(&mut l, (stranger, 7), (a, 4), &[stranger_group]);
    assert_eq!(
        l.sim.nodes[a].stats().vl2.likes_refused,
        refused_before + 1,
        "the stranger's LIKE was not refused"
    );
    l.sim.record = true;
    l.sim.log.clear();
    assert!(multicast_reaches(&mut l, a, stranger_group, &[stranger]).is_empty());
    let (at_a, at_stranger) = (l.sim.addrs[a], l.sim.addrs[stranger]);
    assert!(
        !l.sim
            .log
            .iter()
            .any(|(from, to, _)| (*from, *to) == (at_a, at_stranger)),
        "A sent the stranger something for its group"
    );
    l.sim.record = false;

    // D likes one group; B floods LIKEs for 3,000.
    let d_group = test_group(2);
    like(&mut l, (d, 6), (a, 4), &[d_group]);
    let flood: Vec<MulticastGroup> = (10..3_010).map(test_group).collect();
    let refused_before = l.sim.nodes[a].stats().vl2.likes_refused;
    let accepted_before = l.sim.nodes[a].stats().vl2.likes_accepted;
    like(&mut l, (b, 5), (a, 4), &flood);
    let stats = &l.sim.nodes[a].stats().vl2;
    let refused = stats.likes_refused - refused_before;
    let accepted = stats.likes_accepted - accepted_before;
    assert_eq!(refused + accepted, flood.len() as u64);
    // B's share: at most MAX_SUBSCRIPTIONS_PER_MEMBER groups, some taken by its own LIKEs.
    assert!(
        refused >= (flood.len() - MAX_SUBSCRIPTIONS_PER_MEMBER as usize) as u64,
        "only {refused} of B's {} LIKEs refused",
        flood.len()
    );
    assert_eq!(multicast_reaches(&mut l, a, d_group, &[b, d]), vec![d]);
    assert_eq!(multicast_reaches(&mut l, a, flood[0], &[b, d]), vec![b]);
}
