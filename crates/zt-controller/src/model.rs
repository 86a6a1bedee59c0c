//! The controller's records: [`Network`] and [`Member`], their parts ([`IpPrefix`], [`Route`],
//! [`IpPool`], [`Dns`]) and the structural rules every stored record obeys
//! ([`Network::validate`], [`Member::validate`]). PROTOCOL.md §7.4 gives the defaults.
//!
//! The records are plain data. Parsing of user text (RouterOS properties, zerotier JSON) lives in
//! [`crate::props`] and [`crate::json`]; both end in the same validation here, so a record that
//! reaches storage is always consistent.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zt_crypto::Address;
use zt_wire::rules::{Rule, MAX_CAPABILITY_RULES, MAX_NETWORK_RULES};

use crate::error::ModelError;

/// A 64-bit network ID: controller address (top 40 bits) ‖ network number (low 24 bits).
pub type NetworkId = u64;

/// The controller that owns `nwid` (PROTOCOL.md §6.1).
pub fn controller_of(nwid: NetworkId) -> Address {
    Address::new(nwid >> 24).expect("a u64 shifted right by 24 has at most 40 bits")
}

/// The network ID for `number` (low 24 bits used) on `controller`. Number 0 is never issued by
/// the reference controller: it becomes 1.
pub fn network_id_for(controller: Address, number: u32) -> NetworkId {
    let number = match number & 0x00ff_ffff {
        0 => 1,
        n => n,
    };
    (controller.to_u64() << 24) | u64::from(number)
}

/// Formats a network ID the way every ZeroTier tool does: 16 lowercase hex digits.
pub fn format_network_id(nwid: NetworkId) -> String {
    format!("{nwid:016x}")
}

/// Parses a 16-hex-digit network ID.
pub fn parse_network_id(s: &str) -> Result<NetworkId, ModelError> {
    s.parse::<zt_wire::network_id::NetworkId>()
        .map(|id| id.0)
        .map_err(|_| ModelError::InvalidNetworkId(s.to_string()))
}

/// Defaults from `DB::initNetwork` (PROTOCOL.md §7.4) and the RouterOS controller menu.
pub const DEFAULT_MTU: u32 = 2800;
pub const MIN_MTU: u32 = 1280;
pub const MAX_MTU: u32 = 10000;
pub const DEFAULT_MULTICAST_LIMIT: u32 = 32;
/// Most routes a network config can carry (`RT`, PROTOCOL.md §6.4).
pub const MAX_ROUTES: usize = 128;
/// Most addresses a network config can carry (`I`, PROTOCOL.md §6.4).
pub const MAX_ASSIGNED_IPS: usize = 32;
/// DNS servers carried in the `DNS` key: exactly four slots.
pub const MAX_DNS_SERVERS: usize = 4;
/// The `DNS` key's domain field is 128 bytes, NUL padded, so 127 usable.
pub const MAX_DNS_DOMAIN_LEN: usize = 127;
/// The `n` key: short name of at most 127 characters.
pub const MAX_NAME_LEN: usize = 127;
/// Capabilities a network defines, and a member holds: at most what one config can carry
/// (`ZT_MAX_NETWORK_CAPABILITIES`).
pub const MAX_CAPABILITIES: usize = zt_wire::netconf::MAX_CAPABILITIES;
/// Tags a network defines, and a member holds: at most what one config can carry
/// (`ZT_MAX_NETWORK_TAGS`).
pub const MAX_TAGS: usize = zt_wire::netconf::MAX_TAGS;
/// Pools per network. The reference caps arrays at 16384; a pool list that long is a mistake,
/// and every config request walks the list, so we keep it small.
pub const MAX_POOLS: usize = 64;

/// An address with a prefix length, e.g. `172.27.27.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    addr: IpAddr,
    bits: u8,
}

impl IpPrefix {
    /// `bits` must fit the family (≤ 32 or ≤ 128).
    pub fn new(addr: IpAddr, bits: u8) -> Result<IpPrefix, ModelError> {
        if bits > max_bits(addr) {
            return Err(ModelError::InvalidPrefix(format!("{addr}/{bits}")));
        }
        Ok(IpPrefix { addr, bits })
    }
    /// A single host (/32 or /128).
    pub fn host(addr: IpAddr) -> IpPrefix {
        IpPrefix {
            addr,
            bits: max_bits(addr),
        }
    }
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    pub fn bits(&self) -> u8 {
        self.bits
    }
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
    /// The prefix with every host bit cleared.
    pub fn network(&self) -> IpPrefix {
        IpPrefix {
            addr: mask_addr(self.addr, self.bits),
            bits: self.bits,
        }
    }
    /// True if no host bit is set (`10.0.0.0/8`, not `10.0.0.1/8`).
    pub fn is_network_address(&self) -> bool {
        self.network().addr == self.addr
    }
    /// True if `ip` is of the same family and its first `bits` bits equal this prefix's.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && mask_addr(ip, self.bits) == mask_addr(self.addr, self.bits)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

impl FromStr for IpPrefix {
    type Err = ModelError;
    /// `addr/bits`, or a bare address meaning a single host.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.split_once('/') {
            None => Ok(IpPrefix::host(parse_ip(s, "address")?)),
            Some((a, b)) => {
                let addr = parse_ip(a, "address")?;
                let bits: u8 = b
                    .parse()
                    .map_err(|_| ModelError::InvalidPrefix(s.to_string()))?;
                IpPrefix::new(addr, bits)
            }
        }
    }
}

impl Serialize for IpPrefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for IpPrefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn max_bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask_addr(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// Parses one IPv4 or IPv6 address; `what` names the field for the error.
pub fn parse_ip(s: &str, what: &'static str) -> Result<IpAddr, ModelError> {
    s.trim().parse().map_err(|_| ModelError::InvalidIp {
        what,
        value: s.to_string(),
    })
}

/// A managed route pushed to members: `target` optionally `via` a gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub target: IpPrefix,
    pub via: Option<IpAddr>,
}

impl Route {
    fn validate(&self) -> Result<(), ModelError> {
        if !self.target.is_network_address() {
            return Err(ModelError::HostBitsSet {
                value: self.target.to_string(),
                network: self.target.network().to_string(),
            });
        }
        if let Some(via) = self.via {
            if via.is_ipv4() != self.target.is_ipv4() {
                return Err(ModelError::ViaFamilyMismatch {
                    target: self.target.to_string(),
                    via: via.to_string(),
                });
            }
            if via.is_unspecified() {
                return Err(ModelError::InvalidIp {
                    what: "gateway",
                    value: via.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Route {
    /// RouterOS form: `dst[@gw]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.via {
            Some(via) => write!(f, "{}@{}", self.target, via),
            None => write!(f, "{}", self.target),
        }
    }
}

/// An address pool for automatic assignment: `start..=end`, one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpPool {
    pub start: IpAddr,
    pub end: IpAddr,
}

impl IpPool {
    pub fn is_ipv4(&self) -> bool {
        self.start.is_ipv4()
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.start.is_ipv4()
            && ip_to_u128(ip) >= ip_to_u128(self.start)
            && ip_to_u128(ip) <= ip_to_u128(self.end)
    }
    pub(crate) fn overlaps(&self, other: &IpPool) -> bool {
        self.is_ipv4() == other.is_ipv4()
            && ip_to_u128(self.start) <= ip_to_u128(other.end)
            && ip_to_u128(other.start) <= ip_to_u128(self.end)
    }
    fn validate(&self) -> Result<(), ModelError> {
        if self.start.is_ipv4() != self.end.is_ipv4() {
            return Err(ModelError::PoolMixedFamily(self.to_string()));
        }
        if ip_to_u128(self.start) > ip_to_u128(self.end) {
            return Err(ModelError::PoolReversed(self.to_string()));
        }
        if self.start.is_unspecified() {
            return Err(ModelError::PoolStartsAtZero(self.to_string()));
        }
        Ok(())
    }
}

impl fmt::Display for IpPool {
    /// RouterOS form: `first-last`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// An address as one number (IPv4 in the low 32 bits), for ordering and arithmetic.
pub(crate) fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Which IPv6 addresses members get (`v6AssignMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V6AssignMode {
    /// From the IPv6 pools.
    pub zt: bool,
    /// The RFC 4193 /128 derived from network ID and address (PROTOCOL.md §6.10).
    pub rfc4193: bool,
    /// The 6plane /80 derived from network ID and address (PROTOCOL.md §6.10).
    pub sixplane: bool,
}

/// DNS pushed to members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    pub domain: String,
    pub servers: Vec<IpAddr>,
}

/// How a member last became authorized (`lastAuthorizedCredentialType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizedBy {
    /// By an administrator (API, console).
    Api,
    /// Automatically, because the network is public.
    Public,
    /// Automatically, by a network auth token in the request metadata.
    Token,
}

impl AuthorizedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizedBy::Api => "api",
            AuthorizedBy::Public => "public",
            AuthorizedBy::Token => "token",
        }
    }
}

/// A member's software version, as it reported in its last config request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientVersion {
    pub major: u32,
    pub minor: u32,
    pub revision: u32,
    pub protocol: u32,
}

/// A capability the network defines (`capabilities: [{id, default, rules}]`): a set of rules a
/// member holding it may also use, issued to it as a signed credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityDef {
    pub id: u32,
    /// Given to every member on its first config request.
    pub default: bool,
    #[serde(with = "rules_serde")]
    pub rules: Vec<Rule>,
}

/// A tag the network defines (`tags: [{id, default}]`). With a default, every member that has
/// no value of its own for this tag gets the default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDef {
    pub id: u32,
    pub default: Option<u32>,
}

/// The rule set of a new network: accept everything (`DB::initNetwork`).
pub fn default_rules() -> Vec<Rule> {
    vec![Rule::accept()]
}

/// A virtual network served by this controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: NetworkId,
    pub name: String,
    /// Private networks admit only authorized members; public ones admit everyone.
    pub private: bool,
    pub enable_broadcast: bool,
    pub mtu: u32,
    pub multicast_limit: u32,
    /// `v4AssignMode.zt`: assign IPv4 from the pools.
    pub v4_assign: bool,
    pub v6_assign: V6AssignMode,
    pub pools: Vec<IpPool>,
    pub routes: Vec<Route>,
    pub dns: Dns,
    /// Flow rules every member enforces, in order (`rules`); `None` until rules are first set,
    /// meaning the default accept-all set (see [`Network::effective_rules`]). The difference
    /// only shows in the JSON: the default reads as `DB::initNetwork` writes it, posted rules
    /// read back as posted.
    #[serde(default, with = "opt_rules_serde")]
    pub rules: Option<Vec<Rule>>,
    /// `rulesSource`: the rules-language text `rules` were compiled from (by a UI, or by us when
    /// it came without rules, see [`crate::rules_language`]). Kept and returned as given.
    #[serde(default)]
    pub rules_source: String,
    /// Capability definitions, ascending by ID.
    #[serde(default)]
    pub capabilities: Vec<CapabilityDef>,
    /// Tag definitions, ascending by ID.
    #[serde(default)]
    pub tags: Vec<TagDef>,
    /// Tokens for automatic authorization (`authTokens`): token → expiry in ms, 0 = never.
    pub auth_tokens: Vec<(String, u64)>,
    /// `certificateTimeoutWindowSize` if set; the issued `ctmd` is this clamped to 5 min..2 h.
    pub credential_window_ms: Option<u64>,
    #[serde(with = "opt_address_serde")]
    pub remote_trace_target: Option<Address>,
    pub remote_trace_level: u32,
    /// RouterOS only: free text.
    pub comment: String,
    /// RouterOS only: a disabled network is not served (requests get NOT_FOUND).
    pub disabled: bool,
    /// Incremented on every change; sent to members as `r`.
    pub revision: u64,
    /// Creation time, ms.
    pub creation_time: i64,
}

impl Network {
    /// A network with the reference defaults (`DB::initNetwork`, RouterOS menu defaults).
    pub fn new(id: NetworkId, creation_time: i64) -> Network {
        Network {
            id,
            name: String::new(),
            private: true,
            enable_broadcast: true,
            mtu: DEFAULT_MTU,
            multicast_limit: DEFAULT_MULTICAST_LIMIT,
            v4_assign: false,
            v6_assign: V6AssignMode::default(),
            pools: Vec::new(),
            routes: Vec::new(),
            dns: Dns::default(),
            rules: None,
            rules_source: String::new(),
            capabilities: Vec::new(),
            tags: Vec::new(),
            auth_tokens: Vec::new(),
            credential_window_ms: None,
            remote_trace_target: None,
            remote_trace_level: 0,
            comment: String::new(),
            disabled: false,
            revision: 0,
            creation_time,
        }
    }

    /// The structural rules of a stored network. Every writer calls this before storing, so
    /// no half-valid record is ever saved.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.name.len() > MAX_NAME_LEN {
            return Err(ModelError::TooLong {
                what: "name",
                max: MAX_NAME_LEN,
            });
        }
        if self.name.contains(['\0', '\r', '\n']) {
            return Err(ModelError::ControlCharacter { what: "name" });
        }
        if !(MIN_MTU..=MAX_MTU).contains(&self.mtu) {
            return Err(ModelError::MtuOutOfRange(self.mtu));
        }
        if self.routes.len() > MAX_ROUTES {
            return Err(ModelError::TooMany {
                what: "routes",
                max: MAX_ROUTES,
            });
        }
        for route in &self.routes {
            route.validate()?;
        }
        if self.pools.len() > MAX_POOLS {
            return Err(ModelError::TooMany {
                what: "ip ranges",
                max: MAX_POOLS,
            });
        }
        for (i, pool) in self.pools.iter().enumerate() {
            pool.validate()?;
            if let Some(other) = self.pools[..i].iter().find(|p| p.overlaps(pool)) {
                return Err(ModelError::PoolsOverlap {
                    first: other.to_string(),
                    second: pool.to_string(),
                });
            }
        }
        if self.dns.servers.len() > MAX_DNS_SERVERS {
            return Err(ModelError::TooMany {
                what: "DNS servers",
                max: MAX_DNS_SERVERS,
            });
        }
        if self.dns.domain.len() > MAX_DNS_DOMAIN_LEN {
            return Err(ModelError::TooLong {
                what: "DNS domain",
                max: MAX_DNS_DOMAIN_LEN,
            });
        }
        if self.dns.domain.contains('\0') {
            return Err(ModelError::ControlCharacter { what: "DNS domain" });
        }
        if self
            .rules
            .as_ref()
            .is_some_and(|r| r.len() > MAX_NETWORK_RULES)
        {
            return Err(ModelError::TooMany {
                what: "rules",
                max: MAX_NETWORK_RULES,
            });
        }
        if self.capabilities.len() > MAX_CAPABILITIES {
            return Err(ModelError::TooMany {
                what: "capabilities",
                max: MAX_CAPABILITIES,
            });
        }
        if self
            .capabilities
            .iter()
            .any(|c| c.rules.len() > MAX_CAPABILITY_RULES)
        {
            return Err(ModelError::TooMany {
                what: "rules in one capability",
                max: MAX_CAPABILITY_RULES,
            });
        }
        if self.tags.len() > MAX_TAGS {
            return Err(ModelError::TooMany {
                what: "tags",
                max: MAX_TAGS,
            });
        }
        Ok(())
    }

    /// The rules members enforce: those set, or the default accept-all.
    pub fn effective_rules(&self) -> Vec<Rule> {
        self.rules.clone().unwrap_or_else(default_rules)
    }

    /// The first route (in config order) whose target contains `ip`, the rule for IPv4 pool
    /// addresses (PROTOCOL.md §7.2).
    pub fn first_route_containing(&self, ip: IpAddr) -> Option<&Route> {
        self.routes.iter().find(|r| r.target.contains(ip))
    }

    /// The prefix length under which a static address is issued: the longest route containing
    /// it (§7.1 step 12), or `None` if no route does (then it is not issued, §10.20).
    pub fn static_ip_prefix(&self, ip: IpAddr) -> Option<u8> {
        self.routes
            .iter()
            .filter(|r| r.target.contains(ip))
            .map(|r| r.target.bits())
            .max()
    }

    /// The configured IPv4 pools, in order.
    pub fn v4_pools(&self) -> impl Iterator<Item = &IpPool> {
        self.pools.iter().filter(|p| p.is_ipv4())
    }
    /// The configured IPv6 pools, in order.
    pub fn v6_pools(&self) -> impl Iterator<Item = &IpPool> {
        self.pools.iter().filter(|p| !p.is_ipv4())
    }
}

/// A node known to a network: authorized, waiting, or refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub network_id: NetworkId,
    #[serde(with = "address_serde")]
    pub address: Address,
    /// Public identity string, bound on the first request (PROTOCOL.md §10.28).
    pub identity: Option<String>,
    pub authorized: bool,
    pub active_bridge: bool,
    /// When set, the member gets no pool, rfc4193 or 6plane addresses (only static ones).
    pub no_auto_assign_ips: bool,
    /// Static and pool-assigned addresses, in assignment order. Kept across restarts.
    pub ip_assignments: Vec<IpAddr>,
    /// Tag values `(id, value)`, ascending by ID (`tags: [[id, value]]`).
    #[serde(default)]
    pub tags: Vec<(u32, u32)>,
    /// IDs of the network capabilities this member holds, ascending (`capabilities`).
    #[serde(default)]
    pub capabilities: Vec<u32>,
    pub name: String,
    /// RouterOS only.
    pub comment: String,
    /// RouterOS only: a disabled member is refused like an unauthorized one.
    pub disabled: bool,
    pub creation_time: i64,
    pub revision: u64,
    pub last_authorized_time: i64,
    pub last_deauthorized_time: i64,
    pub authorized_by: Option<AuthorizedBy>,
    /// The token that authorized it, for `AuthorizedBy::Token`.
    pub authorized_credential: Option<String>,
    /// Time of the last real config request (packet ID ≠ 0), ms.
    pub last_request_time: Option<i64>,
    pub version: Option<ClientVersion>,
    /// Rules engine revision from the last request (`revr`); 0 means the old single-rule form.
    pub rules_engine_revision: u64,
    #[serde(with = "opt_address_serde")]
    pub remote_trace_target: Option<Address>,
    pub remote_trace_level: u32,
}

impl Member {
    /// A member with the reference defaults (`DB::initMember`).
    pub fn new(network_id: NetworkId, address: Address, creation_time: i64) -> Member {
        Member {
            network_id,
            address,
            identity: None,
            authorized: false,
            active_bridge: false,
            no_auto_assign_ips: false,
            ip_assignments: Vec::new(),
            tags: Vec::new(),
            capabilities: Vec::new(),
            name: String::new(),
            comment: String::new(),
            disabled: false,
            creation_time,
            revision: 0,
            last_authorized_time: 0,
            last_deauthorized_time: 0,
            authorized_by: None,
            authorized_credential: None,
            last_request_time: None,
            version: None,
            rules_engine_revision: 0,
            remote_trace_target: None,
            remote_trace_level: 0,
        }
    }

    /// Authorized and not disabled: the member gets a config.
    pub fn is_admitted(&self) -> bool {
        self.authorized && !self.disabled
    }

    /// Structural rules of a stored member.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.address.is_reserved() {
            return Err(ModelError::ReservedAddress(self.address.to_string()));
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(ModelError::TooLong {
                what: "name",
                max: MAX_NAME_LEN,
            });
        }
        if self.ip_assignments.len() > MAX_ASSIGNED_IPS {
            return Err(ModelError::TooMany {
                what: "ip addresses",
                max: MAX_ASSIGNED_IPS,
            });
        }
        if self.tags.len() > MAX_TAGS {
            return Err(ModelError::TooMany {
                what: "tags",
                max: MAX_TAGS,
            });
        }
        if self.capabilities.len() > MAX_CAPABILITIES {
            return Err(ModelError::TooMany {
                what: "capabilities",
                max: MAX_CAPABILITIES,
            });
        }
        for (i, ip) in self.ip_assignments.iter().enumerate() {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(ModelError::InvalidIp {
                    what: "ip-address",
                    value: ip.to_string(),
                });
            }
            if self.ip_assignments[..i].contains(ip) {
                return Err(ModelError::DuplicateIp(ip.to_string()));
            }
        }
        Ok(())
    }
}

/// Serde for rule lists in their canonical zerotier JSON form, so the stored record reads like
/// the API's (and a rule type added later needs no storage change).
pub(crate) mod rules_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;
    use zt_wire::rules::Rule;

    use crate::rules_json::{rules_from_json, rules_to_json};

    pub fn serialize<S: Serializer>(rules: &[Rule], s: S) -> Result<S::Ok, S::Error> {
        rules_to_json(rules).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Rule>, D::Error> {
        let list = Vec::<Value>::deserialize(d)?;
        rules_from_json(&list, "rules").map_err(serde::de::Error::custom)
    }
}

/// Serde for `Option<Vec<Rule>>`: null (or absent, with `#[serde(default)]`) for unset.
pub(crate) mod opt_rules_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;
    use zt_wire::rules::Rule;

    use crate::rules_json::{rules_from_json, rules_to_json};

    pub fn serialize<S: Serializer>(rules: &Option<Vec<Rule>>, s: S) -> Result<S::Ok, S::Error> {
        rules.as_deref().map(rules_to_json).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Rule>>, D::Error> {
        Option::<Vec<Value>>::deserialize(d)?
            .map(|list| rules_from_json(&list, "rules").map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Serde for [`Address`] as 10 hex digits, for the storage form of the records.
pub(crate) mod address_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use zt_crypto::Address;

    pub fn serialize<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(a)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde for `Option<Address>`.
pub(crate) mod opt_address_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use zt_crypto::Address;

    pub fn serialize<S: Serializer>(a: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.collect_str(a),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Serde for `Vec<Address>`: a list of 10-digit hex strings.
pub(crate) mod address_list_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use zt_crypto::Address;

    pub fn serialize<S: Serializer>(list: &[Address], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(|a| a.to_string()))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Address>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}
