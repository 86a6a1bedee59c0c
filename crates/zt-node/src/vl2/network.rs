//! Per-network state: status, config, our MAC and subscriptions, what we know about each
//! member (credentials, pushes), bridge routes and multicasts waiting for gather answers.

use super::MULTICAST_TRANSMIT_TIMEOUT;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use zt_crypto::{Address, Identity};
use zt_wire::capability::Capability;
use zt_wire::com::{CertificateOfMembership, Qualifier};
use zt_wire::coo::CertificateOfOwnership;
use zt_wire::inet::InetAddress;
use zt_wire::mac::Mac;
use zt_wire::netconf::{NetworkConfig, NetworkType, Route};
use zt_wire::network_id::NetworkId;
use zt_wire::tag::Tag;
use zt_wire::verbs::multicast::MulticastGroup;
use zt_wire::verbs::network::ConfigAssembler;

/// A joined network's status, as `zerotier-cli listnetworks` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkStatus {
    RequestingConfiguration,
    Ok,
    AccessDenied,
    NotFound,
    /// The daemon could not set up the tap ([`Node::set_network_port_error`](crate::Node)).
    PortError,
    /// The controller refused our protocol version (ERROR BAD_PROTOCOL_VERSION).
    ClientTooOld,
    AuthenticationRequired,
}

impl NetworkStatus {
    /// The reference's name (`REQUESTING_CONFIGURATION`, `OK`, ...).
    pub fn name(self) -> &'static str {
        match self {
            NetworkStatus::RequestingConfiguration => "REQUESTING_CONFIGURATION",
            NetworkStatus::Ok => "OK",
            NetworkStatus::AccessDenied => "ACCESS_DENIED",
            NetworkStatus::NotFound => "NOT_FOUND",
            NetworkStatus::PortError => "PORT_ERROR",
            NetworkStatus::ClientTooOld => "CLIENT_TOO_OLD",
            NetworkStatus::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
        }
    }
}

/// How we join a network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinSettings {
    /// Sent as request metadata `a=token:<t>` (controllers auto-authorize valid tokens).
    pub auth_token: Option<String>,
}

/// A network as the console and the API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub nwid: NetworkId,
    pub name: String,
    pub status: NetworkStatus,
    /// `None` until a config arrived.
    pub network_type: Option<NetworkType>,
    pub mac: Mac,
    pub mtu: u16,
    /// Assigned addresses; the port is the prefix length.
    pub assigned_addresses: Vec<InetAddress>,
    pub routes: Vec<Route>,
    pub broadcast: bool,
    pub netconf_revision: u64,
    /// The tap's subscriptions as the daemon set them (what zerotier-one lists as
    /// `multicastSubscriptions`), sorted; the groups the node adds itself are not here.
    pub multicast_subscriptions: Vec<MulticastGroup>,
    /// The search domain and servers the controller pushed (empty without a config).
    pub dns: zt_wire::netconf::Dns,
}

/// How [`crate::Node::set_multicast_subscriptions`] changed a network's tap subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionChange {
    pub added: Vec<MulticastGroup>,
    pub removed: Vec<MulticastGroup>,
}

/// What we know about one member of a network.
#[derive(Debug, Clone, Default)]
pub(crate) struct Membership {
    pub com: Option<CertificateOfMembership>,
    /// COMs with a timestamp at or below this are revoked.
    pub com_revoked_below: u64,
    pub tags: HashMap<u32, Tag>,
    pub capabilities: HashMap<u32, Capability>,
    pub coos: HashMap<u32, CertificateOfOwnership>,
    /// Last time we pushed our credentials to it.
    pub last_pushed_credentials: Option<u64>,
    /// Last push in answer to NEED_MEMBERSHIP_CERTIFICATE.
    pub last_requested_push: Option<u64>,
    /// Last time we sent it our LIKEs (members passing the gate get them once a minute).
    pub last_announced: Option<u64>,
    /// Accepted revocation IDs (so a fast-propagated one is forwarded once).
    pub revocations_seen: HashSet<u32>,
    /// The last COM agreement check for this member. The gate runs for every frame and the
    /// check hashes the sender's identity, so its verdict is kept with the inputs it came
    /// from; interior mutability lets the gate stay a read-only question of the node.
    com_agreement: RefCell<Option<ComAgreement>>,
}

impl Membership {
    /// A revocation covers every COM we know of this member: it lost access, so frames are
    /// not sent to it (the receive side is [`Membership::com_admits`]). A member that is
    /// admitted again shows a newer COM, which ends this.
    pub fn is_revoked(&self) -> bool {
        self.com_revoked_below > 0
            && self
                .com
                .as_ref()
                .is_none_or(|c| c.timestamp().unwrap_or(0) <= self.com_revoked_below)
    }

    /// The member's half of the private-network gate: it holds a COM that is not revoked and
    /// agrees with `ours` when presented by `sender`. A changed COM on either side, another
    /// sender identity or a raised revocation threshold is seen on the next call.
    pub fn com_admits(&self, ours: &CertificateOfMembership, sender: &Identity) -> bool {
        let Some(theirs) = &self.com else {
            return false;
        };
        // Checked every time rather than cached: a revocation must apply to the next frame,
        // and this is a plain comparison.
        if theirs.timestamp().unwrap_or(0) <= self.com_revoked_below {
            return false;
        }
        if let Some(known) = self.com_agreement.borrow().as_ref() {
            if known.is_for(ours, theirs, sender) {
                return known.agrees;
            }
        }
        let agreement = ComAgreement {
            ours: ours.qualifiers.clone(),
            theirs: theirs.qualifiers.clone(),
            sender: sender.clone(),
            agrees: ours.agrees_with(theirs, sender),
        };
        let agrees = agreement.agrees;
        *self.com_agreement.borrow_mut() = Some(agreement);
        agrees
    }

    #[cfg(test)]
    pub fn has_com_agreement(&self) -> bool {
        self.com_agreement.borrow().is_some()
    }
}

/// One verdict of [`CertificateOfMembership::agrees_with`] and everything it depends on: the
/// qualifiers of both COMs (the signature and signer play no part in agreement) and the
/// sender's identity (its hash is compared with their COM's identity qualifiers).
#[derive(Debug, Clone)]
struct ComAgreement {
    ours: Vec<Qualifier>,
    theirs: Vec<Qualifier>,
    sender: Identity,
    agrees: bool,
}

impl ComAgreement {
    fn is_for(
        &self,
        ours: &CertificateOfMembership,
        theirs: &CertificateOfMembership,
        sender: &Identity,
    ) -> bool {
        self.ours == ours.qualifiers && self.theirs == theirs.qualifiers && self.sender == *sender
    }
}

/// A multicast from the tap still collecting recipients from gather answers.
#[derive(Debug, Clone)]
pub(crate) struct PendingMulticast {
    pub created: u64,
    pub group: MulticastGroup,
    pub src_mac: Mac,
    pub ethertype: u16,
    pub payload: Vec<u8>,
    pub sent_to: HashSet<Address>,
    pub limit: usize,
}

/// One joined network.
pub(crate) struct Network {
    pub nwid: NetworkId,
    pub settings: JoinSettings,
    /// Our MAC on this network (§6.2).
    pub mac: Mac,
    pub config: Option<NetworkConfig>,
    /// Set by an ERROR from the controller or the daemon; overrides the config status.
    pub failure: Option<NetworkStatus>,
    pub port_error: bool,
    pub last_config_request: Option<u64>,
    /// When the current config was applied (credentials are re-pushed after a change).
    pub last_config_update: u64,
    pub last_announce: Option<u64>,
    pub assembler: ConfigAssembler,
    /// Groups the daemon subscribed (the tap's multicast MACs).
    pub subscriptions: BTreeSet<MulticastGroup>,
    pub members: HashMap<Address, Membership>,
    /// MACs learned behind active bridges.
    pub bridge_routes: HashMap<Mac, Address>,
    pub last_gather: HashMap<MulticastGroup, u64>,
    pub pending_multicasts: Vec<PendingMulticast>,
}

impl Network {
    pub fn new(nwid: NetworkId, own: Address, settings: JoinSettings) -> Network {
        Network {
            nwid,
            settings,
            mac: Mac::from_address(own, nwid),
            config: None,
            failure: None,
            port_error: false,
            last_config_request: None,
            last_config_update: 0,
            last_announce: None,
            assembler: ConfigAssembler::new(nwid),
            subscriptions: BTreeSet::new(),
            members: HashMap::new(),
            bridge_routes: HashMap::new(),
            last_gather: HashMap::new(),
            pending_multicasts: Vec::new(),
        }
    }

    /// `Network::_status`: a port error, then a controller refusal, then config or not.
    pub fn status(&self) -> NetworkStatus {
        if self.port_error {
            return NetworkStatus::PortError;
        }
        if let Some(f) = self.failure {
            return f;
        }
        if self.config.is_some() {
            NetworkStatus::Ok
        } else {
            NetworkStatus::RequestingConfiguration
        }
    }

    pub fn member(&mut self, addr: Address) -> &mut Membership {
        self.members.entry(addr).or_default()
    }

    /// The groups we announce: the daemon's subscriptions, the ARP group of each assigned
    /// IPv4, the solicited-node group of each assigned IPv6, and broadcast if enabled.
    pub fn announced_groups(&self) -> BTreeSet<MulticastGroup> {
        let mut groups = self.subscriptions.clone();
        if let Some(config) = &self.config {
            for ip in config.static_ips.iter().filter_map(|a| a.ip()) {
                groups.insert(MulticastGroup::for_address_resolution(ip));
            }
            if config.enable_broadcast() {
                groups.insert(MulticastGroup {
                    mac: Mac::BROADCAST,
                    adi: 0,
                });
            }
        }
        groups
    }

    pub fn info(&self) -> NetworkInfo {
        let c = self.config.as_ref();
        NetworkInfo {
            nwid: self.nwid,
            name: c.map(|c| c.name.clone()).unwrap_or_default(),
            status: self.status(),
            network_type: c.map(|c| c.network_type),
            mac: self.mac,
            mtu: c.map_or(zt_wire::netconf::DEFAULT_MTU, |c| c.mtu),
            assigned_addresses: c.map(|c| c.static_ips.clone()).unwrap_or_default(),
            routes: c.map(|c| c.routes.clone()).unwrap_or_default(),
            broadcast: c.is_some_and(|c| c.enable_broadcast()),
            netconf_revision: c.map_or(0, |c| c.revision),
            multicast_subscriptions: self.subscriptions.iter().copied().collect(),
            dns: c.map(|c| c.dns.clone()).unwrap_or_default(),
        }
    }

    pub fn expire(&mut self, now: u64) {
        self.pending_multicasts
            .retain(|m| now.saturating_sub(m.created) < MULTICAST_TRANSMIT_TIMEOUT);
        self.last_gather
            .retain(|_, t| now.saturating_sub(*t) < super::MULTICAST_EXPLICIT_GATHER_DELAY);
    }
}
