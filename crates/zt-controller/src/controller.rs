//! The controller's decisions (PROTOCOL.md §7.1): who gets a config, what it holds, which
//! member records change, and who must be told when an administrator changes something.
//!
//! Sans-I/O: time comes in as `now_ms`, nothing here sends packets or reads a clock; the only
//! side effect is on the injected [`Storage`]. [`Controller::answer`] turns a [`Decision`] into the
//! signed reply and [`Controller::outgoing`] a [`Pushes`] into signed packets (`crate::answer`).
use std::net::IpAddr;

use zt_crypto::{Address, Identity};
use zt_wire::rules::{Rule, MAX_NETWORK_RULES};

use crate::assign::{self, PoolOutcome, RFC4193_PREFIX_BITS, SIXPLANE_PREFIX_BITS};
use crate::error::{ControllerError, ModelError, StorageError};
use crate::model::{
    controller_of, network_id_for, AuthorizedBy, ClientVersion, Dns, IpPrefix, Member, Network,
    NetworkId, Route, MAX_ASSIGNED_IPS, MAX_CAPABILITIES, MAX_DNS_SERVERS, MAX_TAGS,
};
use crate::patch::{MemberPatch, NetworkPatch};
use crate::storage::{Change, ChangeSeq, Expect, FeedNote, RequestInputs, Storage};

/// A member that asked for config within this window is "online": it gets pushes and
/// revocations (PROTOCOL.md §8).
pub const ONLINE_WINDOW_MS: i64 = 120_000;
/// Requests from one member closer together than this (inclusive) are ignored
/// (`ZT_NETCONF_MIN_REQUEST_PERIOD`).
pub const MIN_REQUEST_PERIOD_MS: i64 = 1000;
/// The COM timestamp window (`ctmd`): default and clamp bounds.
pub const DEFAULT_CREDENTIAL_WINDOW_MS: u64 = 1_800_000;
pub const MIN_CREDENTIAL_WINDOW_MS: u64 = 300_000;
pub const MAX_CREDENTIAL_WINDOW_MS: u64 = 7_200_000;
/// How often a change is computed again after another writer changed the same record first
/// (a database shared by several controllers); beyond this the operation fails.
pub const WRITE_ATTEMPTS: usize = 32;

/// What a member said about itself in its request (the metadata Dictionary, PROTOCOL.md §4.12).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMetadata {
    /// `majv`/`minv`/`revv`/`pv`, when all are present.
    pub version: Option<ClientVersion>,
    /// `revr`: 0 or absent means an old node that understands only the single ACCEPT rule.
    pub rules_engine_revision: u64,
    /// The `<t>` of `a=token:<t>`, if present.
    pub auth_token: Option<String>,
}

/// Whether the request came from the member (packet ID ≠ 0) or is a re-run for a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Request,
    Push,
}

/// Why a request gets no answer at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// `nwid >> 24` is not this controller: the reference drops these silently.
    NotOurNetwork,
    /// Within [`MIN_REQUEST_PERIOD_MS`] of the member's previous request.
    RateLimited,
}

/// The answer to one NETWORK_CONFIG_REQUEST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send nothing.
    Ignore(IgnoreReason),
    /// ERROR OBJ_NOT_FOUND (0x03): no such network, or it is disabled.
    NotFound,
    /// ERROR NETWORK_ACCESS_DENIED (0x07): not authorized, disabled, or identity mismatch.
    AccessDenied,
    /// OK with this config.
    Config(Box<NetworkConfigData>),
}

impl Decision {
    /// The ERROR code to answer with (PROTOCOL.md §7.3), for a request with a non-zero packet
    /// ID: OBJ_NOT_FOUND (0x03) or NETWORK_ACCESS_DENIED (0x07). `None` for a config or silence.
    pub fn error_code(&self) -> Option<u8> {
        match self {
            Decision::NotFound => Some(0x03),
            Decision::AccessDenied => Some(0x07),
            Decision::Ignore(_) | Decision::Config(_) => None,
        }
    }
}

/// A capability to issue to the member: signed by [`crate::issue::build_config`] with the
/// config's timestamp and a custody chain of one (controller → member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCapability {
    pub id: u32,
    pub rules: Vec<Rule>,
}

/// Something the administrator should know about an issued config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigNote {
    /// Every address of the IPv4 pools that was tried is taken.
    Ipv4PoolExhausted,
    /// Every address of the IPv6 pools that was tried is taken.
    Ipv6PoolExhausted,
}

/// Everything a member's network config says, before it is encoded and signed
/// (PROTOCOL.md §6.4 keys in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfigData {
    /// [`nwid`]
    pub network_id: NetworkId,
    /// [`ts`] controller clock, ms; also the COM timestamp.
    pub timestamp: i64,
    /// [`ctmd`]
    pub credential_window_ms: u64,
    /// [`r`]
    pub revision: u64,
    /// [`id`]
    pub issued_to: Address,
    /// The member's public identity string (for the COM's identity-hash qualifiers).
    pub issued_to_identity: String,
    /// [`t`]: false means public.
    pub private: bool,
    /// [`n`]
    pub name: String,
    /// [`f`] 0x02
    pub enable_broadcast: bool,
    /// [`f`] 0x04: set when an rfc4193 or 6plane address is issued.
    pub ndp_emulation: bool,
    /// [`ml`]
    pub multicast_limit: u32,
    /// [`mtu`]
    pub mtu: u32,
    /// [`tt`], [`tl`]
    pub remote_trace_target: Option<Address>,
    pub remote_trace_level: u32,
    /// [`S`] with the active-bridge role bit.
    pub active_bridges: Vec<Address>,
    /// [`RT`]
    pub routes: Vec<Route>,
    /// [`I`]: address and the prefix length it is issued with, in issue order.
    pub static_ips: Vec<IpPrefix>,
    /// [`R`]: the network's rules, or a single ACCEPT for a node without a rules engine.
    pub rules: Vec<Rule>,
    /// [`CAP`]: the network capabilities the member holds (none for a node without a rules
    /// engine, which could not use them).
    pub capabilities: Vec<IssuedCapability>,
    /// [`TAG`]: the member's tag values `(id, value)`, ascending by ID, network defaults
    /// included.
    pub tags: Vec<(u32, u32)>,
    /// [`DNS`]
    pub dns: Dns,
    /// Not sent; for logs and the console.
    pub notes: Vec<ConfigNote>,
}

/// What the caller must send after an administrative change of one network
/// ([`Controller::outgoing`] turns it into signed packets). Stored in the change feed as JSON,
/// so every controller on a shared database can send the part it is placed to send.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pushes {
    /// The network that changed.
    pub network_id: NetworkId,
    /// Members to re-send the config to ([`Controller::push_config`] for each).
    #[serde(with = "crate::model::address_list_serde")]
    pub config_to: Vec<Address>,
    /// COM revocations to send (PROTOCOL.md §6.6), one per member that lost access: one
    /// for a deauthorized or deleted member, one per admitted member of a deleted network.
    pub revocations: Vec<RevocationPlan>,
}

impl Pushes {
    /// Nothing to send about `network_id`.
    pub fn none(network_id: NetworkId) -> Pushes {
        Pushes {
            network_id,
            config_to: Vec::new(),
            revocations: Vec::new(),
        }
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.config_to.is_empty() && self.revocations.is_empty()
    }
}

/// A COM revocation for a member who lost access.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationPlan {
    pub network_id: NetworkId,
    /// The member whose COMs become invalid.
    #[serde(with = "crate::model::address_serde")]
    pub target: Address,
    /// COMs with timestamp ≤ this are rejected (controller clock, ms).
    pub threshold: i64,
    /// Online members to send it to (the target included).
    #[serde(with = "crate::model::address_list_serde")]
    pub recipients: Vec<Address>,
}

/// Behaviour choices where ZeroTier One and RouterOS may differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerOptions {
    /// Give a member its pool addresses on its first request, before it is authorized, so the
    /// administrator sees the address it will get. The reference controller assigns only to
    /// admitted members (the default here). The RouterOS manual's member list shows a pool
    /// address on a not-yet-authorized member (seed: `deba5dc5b1 172.27.27.13`, the address this
    /// walk gives it), which suggests RouterOS does this. The cost: requests from identities
    /// that are never authorized use up pool addresses.
    pub assign_before_authorization: bool,
    /// Who this controller is among the writers of a shared database (random per process):
    /// its changes in the feed carry it, so it can tell them from the others'.
    pub writer_id: u64,
}

/// The network controller of one node, over a storage.
#[derive(Debug)]
pub struct Controller<S: Storage> {
    address: Address,
    storage: S,
    options: ControllerOptions,
}

impl<S: Storage> Controller<S> {
    /// `address` is the controller node's own address: it owns networks `address << 24 | n`.
    pub fn new(address: Address, storage: S) -> Controller<S> {
        Self::with_options(address, storage, ControllerOptions::default())
    }

    pub fn with_options(address: Address, storage: S, options: ControllerOptions) -> Controller<S> {
        Controller {
            address,
            storage,
            options,
        }
    }

    pub fn address(&self) -> Address {
        self.address
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, for bulk loading and tests: writes here bypass validation, revisions and
    /// pushes.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    pub fn options(&self) -> &ControllerOptions {
        &self.options
    }

    fn note(&self, pushes: Pushes) -> FeedNote {
        FeedNote {
            writer: self.options.writer_id,
            pushes,
        }
    }

    /// Up to `limit` changes committed after `after`, by any controller on the database
    /// ([`Change::note`] says who wrote it and what it owes).
    pub fn changes_after(
        &self,
        after: ChangeSeq,
        limit: usize,
    ) -> Result<Vec<Change>, StorageError> {
        self.storage.changes_after(after, limit)
    }

    /// The last committed change: where a controller starting now begins to read the feed.
    pub fn latest_change(&self) -> Result<ChangeSeq, StorageError> {
        self.storage.latest_change()
    }

    /// Answers a NETWORK_CONFIG_REQUEST from `requester` (packet ID ≠ 0) and records what it
    /// learned about the member.
    pub fn handle_config_request(
        &mut self,
        now_ms: i64,
        requester: &Identity,
        nwid: NetworkId,
        metadata: &RequestMetadata,
    ) -> Result<Decision, StorageError> {
        let identity = requester.to_public_string();
        self.decide(
            now_ms,
            requester.address(),
            &identity,
            nwid,
            metadata,
            Origin::Request,
        )
    }

    /// The config to push to `member` after a change (a re-run with packet ID 0, using the
    /// identity and metadata the member last sent). `None` if it should get nothing: unknown,
    /// never requested, or no longer admitted (no ERROR is sent for pushes).
    pub fn push_config(
        &mut self,
        now_ms: i64,
        nwid: NetworkId,
        member: Address,
    ) -> Result<Option<NetworkConfigData>, StorageError> {
        let Some(stored) = self.storage.member(nwid, member)? else {
            return Ok(None);
        };
        let Some(identity) = stored.identity.clone() else {
            return Ok(None);
        };
        let metadata = RequestMetadata {
            version: stored.version,
            rules_engine_revision: stored.rules_engine_revision,
            auth_token: None,
        };
        match self.decide(now_ms, member, &identity, nwid, &metadata, Origin::Push)? {
            Decision::Config(c) => Ok(Some(*c)),
            _ => Ok(None),
        }
    }

    /// The decision and its writes, computed again if another writer changed the member
    /// in between (or took the pool address it chose).
    pub(crate) fn decide(
        &mut self,
        now_ms: i64,
        requester: Address,
        requester_identity: &str,
        nwid: NetworkId,
        metadata: &RequestMetadata,
        origin: Origin,
    ) -> Result<Decision, StorageError> {
        let writer = self.options.writer_id;
        let lost_race =
            |e: &StorageError| matches!(e, StorageError::Conflict | StorageError::IpInUse { .. });
        retry_lost_races(writer, lost_race, || {
            self.decide_once(
                now_ms,
                requester,
                requester_identity,
                nwid,
                metadata,
                origin,
            )
        })
    }

    /// The decision itself (PROTOCOL.md §7.1, steps 1–15).
    fn decide_once(
        &mut self,
        now_ms: i64,
        requester: Address,
        requester_identity: &str,
        nwid: NetworkId,
        metadata: &RequestMetadata,
        origin: Origin,
    ) -> Result<Decision, StorageError> {
        if controller_of(nwid) != self.address {
            return Ok(Decision::Ignore(IgnoreReason::NotOurNetwork));
        }
        let RequestInputs {
            network,
            member: stored,
            active_bridges,
        } = self.storage.request_inputs(nwid, requester)?;
        let network = match network {
            Some(n) if !n.disabled => n,
            _ => return Ok(Decision::NotFound),
        };
        if origin == Origin::Request {
            if let Some(last) = stored.as_ref().and_then(|m| m.last_request_time) {
                if now_ms >= last && now_ms - last <= MIN_REQUEST_PERIOD_MS {
                    return Ok(Decision::Ignore(IgnoreReason::RateLimited));
                }
            }
        }
        let mut member = stored
            .clone()
            .unwrap_or_else(|| Member::new(nwid, requester, now_ms));
        match &member.identity {
            Some(bound) if bound != requester_identity => return Ok(Decision::AccessDenied),
            Some(_) => {}
            None => member.identity = Some(requester_identity.to_string()),
        }
        if origin == Origin::Request {
            member.last_request_time = Some(now_ms);
        }

        if !member.authorized {
            let by = if !network.private {
                Some((AuthorizedBy::Public, None))
            } else {
                metadata
                    .auth_token
                    .as_deref()
                    .filter(|t| token_valid(&network, t, now_ms))
                    .map(|t| (AuthorizedBy::Token, Some(t.to_string())))
            };
            if let Some((by, credential)) = by {
                member.authorized = true;
                member.last_authorized_time = now_ms;
                member.authorized_by = Some(by);
                member.authorized_credential = credential;
            }
        }

        // Kept from every request, refused ones too: the config we push when the member is
        // authorized later is built from the record (zerotier-one pushes nothing then and
        // waits for the next request), and a member recorded without a rules engine would get
        // accept-all until it asked again.
        if origin == Origin::Request {
            member.rules_engine_revision = metadata.rules_engine_revision;
        }

        if !member.is_admitted() {
            if self.options.assign_before_authorization && origin == Origin::Request {
                let mut issued = self.routed_stored_ips(&network, &member);
                self.assign_from_pools(&network, &mut member, &mut issued, &mut Vec::new())?;
            }
            self.save_member(stored.as_ref(), &mut member)?;
            return Ok(Decision::AccessDenied);
        }

        // As zerotier-one, the version is recorded for admitted members only.
        if origin == Origin::Request && metadata.version.is_some() {
            member.version = metadata.version;
        }

        let new_member = stored.is_none();
        let config =
            self.build_config_data(now_ms, &network, &mut member, new_member, active_bridges)?;
        self.save_member(stored.as_ref(), &mut member)?;
        Ok(Decision::Config(Box::new(config)))
    }

    /// Steps 8–13: the config content, assigning pool addresses, default capabilities and
    /// default tags into `member`.
    fn build_config_data(
        &self,
        now_ms: i64,
        network: &Network,
        member: &mut Member,
        new_member: bool,
        mut active_bridges: Vec<Address>,
    ) -> Result<NetworkConfigData, StorageError> {
        let nwid = network.id;
        let mut static_ips: Vec<IpPrefix> = Vec::new();
        let mut ndp_emulation = false;
        let mut notes = Vec::new();

        if !member.no_auto_assign_ips {
            if network.v6_assign.rfc4193 {
                let ip = IpAddr::V6(assign::rfc4193_address(nwid, member.address));
                static_ips.push(prefix(ip, RFC4193_PREFIX_BITS));
                ndp_emulation = true;
            }
            if network.v6_assign.sixplane {
                let ip = IpAddr::V6(assign::sixplane_address(nwid, member.address));
                static_ips.push(prefix(ip, SIXPLANE_PREFIX_BITS));
                ndp_emulation = true;
            }
        }

        static_ips.extend(self.routed_stored_ips(network, member));
        static_ips.truncate(MAX_ASSIGNED_IPS);
        self.assign_from_pools(network, member, &mut static_ips, &mut notes)?;

        let (rules, capabilities, tags) = issued_rules(network, member, new_member);

        active_bridges.sort_unstable();
        // The config holds at most 256 specialists; the reference drops the rest too.
        active_bridges.truncate(zt_wire::netconf::MAX_SPECIALISTS);

        Ok(NetworkConfigData {
            network_id: nwid,
            timestamp: now_ms,
            credential_window_ms: network
                .credential_window_ms
                .unwrap_or(DEFAULT_CREDENTIAL_WINDOW_MS)
                .clamp(MIN_CREDENTIAL_WINDOW_MS, MAX_CREDENTIAL_WINDOW_MS),
            revision: network.revision,
            issued_to: member.address,
            issued_to_identity: member.identity.clone().unwrap_or_default(),
            private: network.private,
            name: network.name.clone(),
            enable_broadcast: network.enable_broadcast,
            ndp_emulation,
            multicast_limit: network.multicast_limit,
            mtu: network
                .mtu
                .clamp(crate::model::MIN_MTU, crate::model::MAX_MTU),
            remote_trace_target: member.remote_trace_target.or(network.remote_trace_target),
            remote_trace_level: if member.remote_trace_target.is_some() {
                member.remote_trace_level
            } else {
                network.remote_trace_level
            },
            active_bridges,
            routes: network.routes.clone(),
            static_ips,
            rules,
            capabilities,
            tags,
            dns: Dns {
                domain: network.dns.domain.clone(),
                servers: network
                    .dns
                    .servers
                    .iter()
                    .take(MAX_DNS_SERVERS)
                    .copied()
                    .collect(),
            },
            notes,
        })
    }

    /// The member's stored addresses that some route contains, with the longest containing
    /// route's prefix: only these are issued (§7.1 step 12, §10.20).
    fn routed_stored_ips(&self, network: &Network, member: &Member) -> Vec<IpPrefix> {
        member
            .ip_assignments
            .iter()
            .filter_map(|&ip| network.static_ip_prefix(ip).map(|bits| prefix(ip, bits)))
            .collect()
    }

    /// Pool assignment, IPv6 then IPv4 (§7.2). A family's pools run only if that family's
    /// assignment is on, the member allows automatic addresses, and no stored address of that
    /// family is issued (rfc4193/6plane addresses do not count).
    fn assign_from_pools(
        &self,
        network: &Network,
        member: &mut Member,
        issued: &mut Vec<IpPrefix>,
        notes: &mut Vec<ConfigNote>,
    ) -> Result<(), StorageError> {
        let nwid = network.id;
        let computed = |p: &IpPrefix| {
            p.addr() == IpAddr::V6(assign::rfc4193_address(nwid, member.address))
                || p.addr() == IpAddr::V6(assign::sixplane_address(nwid, member.address))
        };
        let have_v4 = issued.iter().any(|p| p.is_ipv4());
        let have_v6 = issued.iter().any(|p| !p.is_ipv4() && !computed(p));
        if network.v6_assign.zt && !member.no_auto_assign_ips && !have_v6 {
            let outcome = assign::assign_ipv6(network, member.address, |ip| {
                self.is_taken(nwid, member, ip)
            })?;
            self.take_pool_outcome(
                outcome,
                member,
                issued,
                notes,
                ConfigNote::Ipv6PoolExhausted,
            );
        }
        if network.v4_assign && !member.no_auto_assign_ips && !have_v4 {
            let outcome = assign::assign_ipv4(network, member.address, |ip| {
                self.is_taken(nwid, member, ip)
            })?;
            self.take_pool_outcome(
                outcome,
                member,
                issued,
                notes,
                ConfigNote::Ipv4PoolExhausted,
            );
        }
        Ok(())
    }

    fn is_taken(&self, nwid: NetworkId, member: &Member, ip: IpAddr) -> Result<bool, StorageError> {
        Ok(member.ip_assignments.contains(&ip) || self.storage.ip_owner(nwid, ip)?.is_some())
    }

    fn take_pool_outcome(
        &self,
        outcome: PoolOutcome,
        member: &mut Member,
        static_ips: &mut Vec<IpPrefix>,
        notes: &mut Vec<ConfigNote>,
        exhausted: ConfigNote,
    ) {
        match outcome {
            PoolOutcome::Assigned(ip, bits) => {
                if member.ip_assignments.len() < MAX_ASSIGNED_IPS {
                    member.ip_assignments.push(ip);
                }
                if static_ips.len() < MAX_ASSIGNED_IPS {
                    static_ips.push(prefix(ip, bits));
                }
            }
            PoolOutcome::Exhausted => notes.push(exhausted),
            PoolOutcome::NoPool => {}
        }
    }

    /// Saves `member` if anything changed, if the stored record is still `stored`. The
    /// revision counts changes an administrator would see; the request time alone does not
    /// bump it, and only a revision change goes to the feed (config requests are frequent).
    fn save_member(
        &mut self,
        stored: Option<&Member>,
        member: &mut Member,
    ) -> Result<(), StorageError> {
        let seen = match stored {
            Some(old) if old == member => return Ok(()),
            Some(old) => {
                let mut unseen = old.clone();
                unseen.last_request_time = member.last_request_time;
                let seen = unseen != *member;
                if seen {
                    member.revision = old.revision + 1;
                }
                seen
            }
            None => {
                member.revision = 1;
                true
            }
        };
        let note = seen.then(|| self.note(Pushes::none(member.network_id)));
        self.storage
            .write_member(member, Expect::from_read(stored), note.as_ref())
    }

    // ----- administration -------------------------------------------------------------------

    /// All network IDs, ascending.
    pub fn network_ids(&self) -> Result<Vec<NetworkId>, StorageError> {
        self.storage.network_ids()
    }

    pub fn network(&self, nwid: NetworkId) -> Result<Option<Network>, StorageError> {
        self.storage.network(nwid)
    }

    pub fn members(&self, nwid: NetworkId) -> Result<Vec<Member>, StorageError> {
        self.storage.members(nwid)
    }

    pub fn member(
        &self,
        nwid: NetworkId,
        address: Address,
    ) -> Result<Option<Member>, StorageError> {
        self.storage.member(nwid, address)
    }

    /// Creates network `nwid` with the defaults, changed by `patch`. It is stored only if the
    /// result is valid, and only if `nwid` is this controller's (begins with its address):
    /// members would send their requests for another's to that controller.
    pub fn create_network(
        &mut self,
        now_ms: i64,
        nwid: NetworkId,
        patch: &NetworkPatch,
    ) -> Result<Network, ControllerError> {
        if !self.serves(nwid) {
            return Err(ModelError::ForeignNetwork {
                network: crate::model::format_network_id(nwid),
                owner: controller_of(nwid).to_string(),
                ours: self.address.to_string(),
            }
            .into());
        }
        if self.storage.network(nwid)?.is_some() {
            return Err(ControllerError::NetworkExists(nwid));
        }
        let mut network = patch.apply(&Network::new(nwid, now_ms))?;
        network.revision = 1;
        let note = self.note(Pushes::none(nwid));
        match self
            .storage
            .write_network(&network, Expect::Absent, Some(&note))
        {
            Err(StorageError::Conflict) => Err(ControllerError::NetworkExists(nwid)),
            written => Ok(written.map(|()| network)?),
        }
    }

    /// Creates a network with a fresh random number (`/zerotier/controller/add` without
    /// `network=`, `POST /controller/network`). `random24` is the caller's RNG; numbers already
    /// in use are drawn again, up to 64 times.
    pub fn create_network_with_random_id(
        &mut self,
        now_ms: i64,
        patch: &NetworkPatch,
        mut random24: impl FnMut() -> u32,
    ) -> Result<Network, ControllerError> {
        for _ in 0..64 {
            let nwid = network_id_for(self.address, random24());
            if self.storage.network(nwid)?.is_none() {
                return self.create_network(now_ms, nwid, patch);
            }
        }
        Err(ControllerError::NoFreeNetworkId)
    }

    /// True if requests for `nwid` come to this controller (`nwid >> 24` is our address). A
    /// stored network that fails this is never served (RouterOS shows it as inactive).
    pub fn serves(&self, nwid: NetworkId) -> bool {
        controller_of(nwid) == self.address
    }

    /// Changes a network; every online member gets the new config.
    pub fn update_network(
        &mut self,
        now_ms: i64,
        nwid: NetworkId,
        patch: &NetworkPatch,
    ) -> Result<(Network, Pushes), ControllerError> {
        let writer = self.options.writer_id;
        retry_lost_races(writer, is_conflict, || {
            self.update_network_once(now_ms, nwid, patch)
        })
    }

    fn update_network_once(
        &mut self,
        now_ms: i64,
        nwid: NetworkId,
        patch: &NetworkPatch,
    ) -> Result<(Network, Pushes), ControllerError> {
        let old = self
            .storage
            .network(nwid)?
            .ok_or(ControllerError::NoSuchNetwork(nwid))?;
        let mut network = patch.apply(&old)?;
        if network == old {
            return Ok((network, Pushes::none(nwid)));
        }
        network.revision = old.revision + 1;
        let pushes = Pushes {
            network_id: nwid,
            config_to: self.online_members(now_ms, nwid)?,
            revocations: Vec::new(),
        };
        let note = self.note(pushes);
        self.storage
            .write_network(&network, Expect::Current(&old), Some(&note))?;
        Ok((network, note.pushes))
    }

    /// Deletes a network and its members; returns the deleted record. Every member that had
    /// access loses it as if deauthorized: its COM is revoked towards the online members, so
    /// they stop accepting its traffic before their own COMs expire.
    pub fn delete_network(
        &mut self,
        now_ms: i64,
        nwid: NetworkId,
    ) -> Result<(Option<Network>, Pushes), StorageError> {
        let mut pushes = Pushes::none(nwid);
        let Some(old) = self.storage.network(nwid)? else {
            return Ok((None, pushes));
        };
        let online = self.online_members(now_ms, nwid)?;
        let members = self.storage.members(nwid)?;
        pushes.revocations = members
            .iter()
            .filter(|m| m.is_admitted())
            .map(|m| RevocationPlan {
                network_id: nwid,
                target: m.address,
                threshold: now_ms,
                recipients: online.clone(),
            })
            .collect();
        let note = self.note(pushes);
        if !self.storage.remove_network(nwid, Some(&note))? {
            // Another controller deleted it first and owes the revocations.
            return Ok((None, Pushes::none(nwid)));
        }
        Ok((Some(old), note.pushes))
    }

    /// Creates (if absent) or changes a member. Authorizing stamps `lastAuthorizedTime` with
    /// credential type `api`; deauthorizing stamps `lastDeauthorizedTime` and plans a COM
    /// revocation.
    pub fn update_member(
        &mut self,
        now_ms: i64,
        nwid: NetworkId,
        address: Address,
        patch: &MemberPatch,
    ) -> Result<(Member, Pushes), ControllerError> {
        let writer = self.options.writer_id;
        retry_lost_races(writer, is_conflict, || {
            self.update_member_once(now_ms, nwid, address, patch)
        })
    }

    fn update_member_once(
        &mut self,
        now_ms: i64,
        nwid: NetworkId,
        address: Address,
        patch: &MemberPatch,
    ) -> Result<(Member, Pushes), ControllerError> {
        let network = self
            .storage
            .network(nwid)?
            .ok_or(ControllerError::NoSuchNetwork(nwid))?;
        let stored = self.storage.member(nwid, address)?;
        let old = stored
            .clone()
            .unwrap_or_else(|| Member::new(nwid, address, now_ms));
        let mut member = patch.apply(&old, &network)?;
        if member.authorized && !old.authorized {
            member.last_authorized_time = now_ms;
            member.authorized_by = Some(AuthorizedBy::Api);
            member.authorized_credential = None;
        } else if !member.authorized && old.authorized {
            member.last_deauthorized_time = now_ms;
        }
        if stored.as_ref() == Some(&member) {
            return Ok((member, Pushes::none(nwid)));
        }
        member.revision = old.revision + 1;

        let lost_access = old.is_admitted() && !member.is_admitted();
        let online = self.online_members(now_ms, nwid)?;
        let mut pushes = Pushes::none(nwid);
        if member.active_bridge != old.active_bridge {
            // The bridge list is in everyone's config.
            pushes.config_to = online.clone();
        } else if online.contains(&address) {
            pushes.config_to = vec![address];
        }
        if lost_access {
            pushes.config_to.retain(|a| *a != address);
            pushes.revocations.push(RevocationPlan {
                network_id: nwid,
                target: address,
                threshold: now_ms,
                recipients: online,
            });
        }
        let note = self.note(pushes);
        self.storage
            .write_member(&member, Expect::from_read(stored.as_ref()), Some(&note))?;
        Ok((member, note.pushes))
    }

    /// Deletes a member; returns the deleted record. A deleted member that was admitted is
    /// revoked like a deauthorized one.
    pub fn delete_member(
        &mut self,
        now_ms: i64,
        nwid: NetworkId,
        address: Address,
    ) -> Result<(Option<Member>, Pushes), StorageError> {
        let Some(old) = self.storage.member(nwid, address)? else {
            return Ok((None, Pushes::none(nwid)));
        };
        let online = self.online_members(now_ms, nwid)?;
        let mut pushes = Pushes::none(nwid);
        if old.active_bridge {
            pushes.config_to = online.iter().copied().filter(|a| *a != address).collect();
        }
        if old.is_admitted() {
            pushes.revocations.push(RevocationPlan {
                network_id: nwid,
                target: address,
                threshold: now_ms,
                recipients: online,
            });
        }
        let note = self.note(pushes);
        if !self.storage.remove_member(nwid, address, Some(&note))? {
            // Another controller deleted it first and owes the revocation.
            return Ok((None, Pushes::none(nwid)));
        }
        Ok((Some(old), note.pushes))
    }

    /// Members whose last real request is less than [`ONLINE_WINDOW_MS`] old.
    pub fn online_members(
        &self,
        now_ms: i64,
        nwid: NetworkId,
    ) -> Result<Vec<Address>, StorageError> {
        self.storage
            .requested_since(nwid, now_ms.saturating_sub(ONLINE_WINDOW_MS - 1))
    }
}

/// Runs `attempt` again, up to [`WRITE_ATTEMPTS`] times, while it fails because another
/// writer won the race for the same record (`lost_race` says which errors mean that).
fn retry_lost_races<T, E>(
    writer: u64,
    lost_race: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut tries = 1;
    loop {
        match attempt() {
            Err(e) if lost_race(&e) && tries < WRITE_ATTEMPTS => {
                back_off(tries, writer);
                tries += 1
            }
            done => return done,
        }
    }
}

/// An administrative change lost its race only to a concurrent write of the same record (an
/// address taken by another member is the operator's error, not a race).
fn is_conflict(e: &ControllerError) -> bool {
    matches!(e, ControllerError::Storage(StorageError::Conflict))
}

/// A short wait after losing a race, growing with the attempt and different per writer, so
/// two controllers changing one record at once stop colliding instead of retrying in step.
/// The only wait in this crate: a conflict means another controller writes the same record
/// at this very moment, which is rare.
fn back_off(attempt: usize, writer: u64) {
    let spread = (writer ^ (attempt as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 500;
    let micros = (100 + spread) * attempt.min(8) as u64;
    std::thread::sleep(std::time::Duration::from_micros(micros));
}

/// Step 9–10: the rules, capabilities and tags a member gets.
///
/// A node whose request says it has no rules engine (`revr` 0) gets a single ACCEPT and no
/// credentials: it could not evaluate anything else, and the members it talks to still enforce
/// the network's rules on what they receive. Otherwise the network's rules; the capabilities the
/// member holds (a new member first gets every capability marked `default`); its tag values,
/// with the network's tag defaults added for the tags it has no value for. Defaults given here
/// are written into the member record, so the API shows what the member holds.
fn issued_rules(
    network: &Network,
    member: &mut Member,
    new_member: bool,
) -> (Vec<Rule>, Vec<IssuedCapability>, Vec<(u32, u32)>) {
    if member.rules_engine_revision == 0 {
        return (vec![Rule::accept()], Vec::new(), Vec::new());
    }
    if new_member {
        for cap in network.capabilities.iter().filter(|c| c.default) {
            if !member.capabilities.contains(&cap.id)
                && member.capabilities.len() < MAX_CAPABILITIES
            {
                member.capabilities.push(cap.id);
            }
        }
        member.capabilities.sort_unstable();
    }
    for tag in &network.tags {
        if let Some(default) = tag.default {
            if !member.tags.iter().any(|(id, _)| *id == tag.id) && member.tags.len() < MAX_TAGS {
                member.tags.push((tag.id, default));
            }
        }
    }
    member.tags.sort_unstable();

    let capabilities = member
        .capabilities
        .iter()
        .filter_map(|id| network.capabilities.iter().find(|c| c.id == *id))
        .take(MAX_CAPABILITIES)
        .map(|c| IssuedCapability {
            id: c.id,
            rules: c.rules.clone(),
        })
        .collect();
    let tags = member.tags.iter().copied().take(MAX_TAGS).collect();
    let mut rules = network.effective_rules();
    rules.truncate(MAX_NETWORK_RULES);
    (rules, capabilities, tags)
}

fn prefix(ip: IpAddr, bits: u8) -> IpPrefix {
    IpPrefix::new(ip, bits).unwrap_or_else(|_| IpPrefix::host(ip))
}

/// A network auth token admits if it exists and does not expire (0) or expires after now.
fn token_valid(network: &Network, token: &str, now_ms: i64) -> bool {
    network.auth_tokens.iter().any(|(t, expiry)| {
        t == token && (*expiry == 0 || i64::try_from(*expiry).is_ok_and(|e| e > now_ms))
    })
}
