//! The network configuration a controller sends to a member, as a typed struct and as the
//! Dictionary it travels in (PROTOCOL.md §6.4).
//!
//! [`NetworkConfig::to_dictionary`] writes keys in the reference controller's order and
//! formats, so a config read from a real controller re-serializes to the same bytes.
//! Binary values that exceed a protocol limit (routes, IPs, rules, credentials) are refused
//! with a typed error rather than silently truncated.

use crate::capability::Capability;
use crate::com::CertificateOfMembership;
use crate::coo::{self, CertificateOfOwnership};
use crate::cursor::{Reader, Writer};
use crate::dictionary::Dictionary;
use crate::error::WireError;
use crate::inet::InetAddress;
use crate::network_id::{AdHoc, NetworkId, SIXPLANE_PREFIX_BITS};
use crate::rules::{self, Rule, RuleKind, MAX_NETWORK_RULES};
use crate::tag::Tag;
use std::net::IpAddr;
use zt_crypto::Address;

/// The format version this writer produces.
pub const CONFIG_VERSION: u64 = 7;
/// Oldest version a node accepts (older ones need legacy support, not compiled in).
pub const MIN_CONFIG_VERSION: u64 = 6;
pub const DEFAULT_MTU: u16 = 2800;
pub const MIN_MTU: u16 = 1280;
pub const MAX_MTU: u16 = 10000;
pub const MAX_NAME_LEN: usize = 127;
pub const MAX_ROUTES: usize = 128;
pub const MAX_STATIC_IPS: usize = 32;
pub const MAX_SPECIALISTS: usize = 256;
pub const MAX_CAPABILITIES: usize = 128;
pub const MAX_TAGS: usize = 128;
pub const MAX_DNS_SERVERS: usize = 4;
const DNS_DOMAIN_LEN: usize = 128;

/// Flag bits of the `f` key.
pub const FLAG_ENABLE_BROADCAST: u64 = 0x02;
pub const FLAG_ENABLE_IPV6_NDP_EMULATION: u64 = 0x04;
pub const FLAG_RULES_RESULT_OF_UNSUPPORTED_MATCH: u64 = 0x08;
pub const FLAG_DISABLE_COMPRESSION: u64 = 0x10;

/// `ctmd` of locally built (ad-hoc) configs: 2 hours.
pub const ADHOC_CREDENTIAL_TIME_MAX_DELTA: u64 = 2 * 60 * 60 * 1000;
/// TCP flag bits of the CHARACTERISTICS match.
pub const CHARACTERISTICS_TCP_SYN: u64 = 0x02;
pub const CHARACTERISTICS_TCP_ACK: u64 = 0x10;

/// Role bits of a specialist entry (the low 40 bits are the address).
pub const SPECIALIST_ACTIVE_BRIDGE: u64 = 0x0000_0200_0000_0000;
pub const SPECIALIST_ANCHOR: u64 = 0x0000_0400_0000_0000;
pub const SPECIALIST_MULTICAST_REPLICATOR: u64 = 0x0000_0800_0000_0000;

/// Private networks gate traffic on COMs; public ones let anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkType {
    #[default]
    Private,
    Public,
}

/// A managed route: `target` (port field = prefix bits) reached `via` a gateway (or directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub target: InetAddress,
    pub via: InetAddress,
    pub flags: u16,
    pub metric: u16,
}

impl Route {
    pub fn write(&self, out: &mut Vec<u8>) {
        self.target.write(out);
        self.via.write(out);
        out.put_u16(self.flags);
        out.put_u16(self.metric);
    }
    pub fn read(r: &mut Reader<'_>) -> Result<Route, WireError> {
        Ok(Route {
            target: InetAddress::read(r)?,
            via: InetAddress::read(r)?,
            flags: r.u16("route flags")?,
            metric: r.u16("route metric")?,
        })
    }
}

/// DNS settings: a search domain and up to 4 servers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dns {
    /// At most 127 bytes (128 with the NUL on the wire).
    pub domain: String,
    pub servers: Vec<InetAddress>,
}

impl Dns {
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut domain = [0u8; DNS_DOMAIN_LEN];
        let bytes = self.domain.as_bytes();
        let n = bytes.len().min(DNS_DOMAIN_LEN - 1);
        domain[..n].copy_from_slice(&bytes[..n]);
        out.put_bytes(&domain);
        for i in 0..MAX_DNS_SERVERS {
            self.servers.get(i).copied().unwrap_or_default().write(out);
        }
    }

    /// Empty server slots (`0x00`) are dropped from `servers`.
    pub fn read(r: &mut Reader<'_>) -> Result<Dns, WireError> {
        let raw = r.bytes(DNS_DOMAIN_LEN, "DNS domain")?;
        let end = raw[..DNS_DOMAIN_LEN - 1]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(DNS_DOMAIN_LEN - 1);
        // Invalid UTF-8 grows under lossy decoding; cut again so the domain always fits.
        let mut domain = String::from_utf8_lossy(&raw[..end]).into_owned();
        truncate_at_char_boundary(&mut domain, DNS_DOMAIN_LEN - 1);
        let mut servers = Vec::new();
        for _ in 0..MAX_DNS_SERVERS {
            let server = InetAddress::read(r)?;
            if !server.is_nil() {
                servers.push(server);
            }
        }
        Ok(Dns { domain, servers })
    }
}

/// Single sign-on settings (`ssov` 0: implicit flow; 1: full OIDC flow).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sso {
    pub version: u64,
    pub enabled: bool,
    pub authentication_url: String,
    pub authentication_expiry_time: i64,
    pub issuer_url: String,
    pub central_endpoint_url: String,
    pub nonce: String,
    pub state: String,
    pub client_id: String,
    pub provider: String,
}

/// A member's network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Format version (`v`); ≥ 6 to be accepted.
    pub version: u64,
    pub network_id: NetworkId,
    /// Issue time, controller clock (ms).
    pub timestamp: u64,
    /// COM timestamp window (ms).
    pub credential_time_max_delta: u64,
    pub revision: u64,
    pub issued_to: Address,
    pub remote_trace_target: Address,
    pub remote_trace_level: u64,
    pub flags: u64,
    pub multicast_limit: u32,
    pub network_type: NetworkType,
    pub name: String,
    /// Clamped to 1280..=10000 on read.
    pub mtu: u16,
    pub com: Option<CertificateOfMembership>,
    pub capabilities: Vec<Capability>,
    pub tags: Vec<Tag>,
    pub certificates_of_ownership: Vec<CertificateOfOwnership>,
    /// Address (low 40 bits) plus role bits.
    pub specialists: Vec<u64>,
    pub routes: Vec<Route>,
    /// Assigned addresses; the port field is the prefix length.
    pub static_ips: Vec<InetAddress>,
    pub rules: Vec<Rule>,
    pub dns: Dns,
    pub sso: Sso,
}

impl NetworkConfig {
    /// A config with the reference defaults and nothing assigned.
    pub fn new(network_id: NetworkId, issued_to: Address) -> NetworkConfig {
        NetworkConfig {
            version: CONFIG_VERSION,
            network_id,
            timestamp: 0,
            credential_time_max_delta: 0,
            revision: 0,
            issued_to,
            remote_trace_target: Address::default(),
            remote_trace_level: 0,
            flags: 0,
            multicast_limit: 0,
            network_type: NetworkType::Private,
            name: String::new(),
            mtu: DEFAULT_MTU,
            com: None,
            capabilities: Vec::new(),
            tags: Vec::new(),
            certificates_of_ownership: Vec::new(),
            specialists: Vec::new(),
            routes: Vec::new(),
            static_ips: Vec::new(),
            rules: Vec::new(),
            dns: Dns::default(),
            sso: Sso::default(),
        }
    }

    /// The config a node builds for itself on an ad-hoc (`0xff…`) network (PROTOCOL.md §6.1),
    /// issued at `now` (ms). `None` if `network_id` is not an ad-hoc ID the reference serves,
    /// including a port range whose end is below its start (status NOT_FOUND).
    pub fn adhoc(network_id: NetworkId, own: Address, now: u64) -> Option<NetworkConfig> {
        let mut config = NetworkConfig::new(network_id, own);
        config.timestamp = now;
        config.credential_time_max_delta = ADHOC_CREDENTIAL_TIME_MAX_DELTA;
        config.revision = 1;
        config.flags = FLAG_ENABLE_IPV6_NDP_EMULATION;
        config.network_type = NetworkType::Public;
        let sixplane = InetAddress::new(
            IpAddr::V6(network_id.sixplane_address(own)),
            SIXPLANE_PREFIX_BITS.into(),
        );
        match network_id.adhoc()? {
            AdHoc::PortRange { start, end } => {
                if end < start {
                    return None;
                }
                config.multicast_limit = 0;
                config.static_ips = vec![sixplane];
                config.name = format!("adhoc-{start:04x}-{end:04x}");
                let protocol = |p| Rule::new(RuleKind::IpProtocol(p));
                let syn = Rule::new(RuleKind::Characteristics(CHARACTERISTICS_TCP_SYN));
                config.rules = vec![
                    // Only IPv6 ...
                    Rule::new(RuleKind::Ethertype(0x86dd)).negated(),
                    Rule::drop(),
                    // ... ICMPv6 always ...
                    protocol(58),
                    Rule::accept(),
                    // ... UDP or TCP to the port range ...
                    protocol(17),
                    protocol(6).or(),
                    Rule::new(RuleKind::IpDestPortRange { start, end }),
                    Rule::accept(),
                    // ... and TCP that does not open a connection, or answers one.
                    syn.clone().negated(),
                    Rule::accept(),
                    syn,
                    Rule::new(RuleKind::Characteristics(CHARACTERISTICS_TCP_ACK)),
                    Rule::accept(),
                    Rule::drop(),
                ];
            }
            AdHoc::Ipv4 {
                first_octet,
                specialist,
            } => {
                config.multicast_limit = 1024;
                let v4 = network_id.adhoc_ipv4_address(own)?;
                config.static_ips = vec![sixplane, InetAddress::new(IpAddr::V4(v4), 8)];
                // The hub field becomes a specialist with no role bits, which has no effect.
                if specialist != 0 {
                    config.specialists = vec![specialist];
                }
                config.rules = vec![Rule::accept()];
                config.name = format!("adhoc-{first_octet}.0.0.0");
            }
        }
        Some(config)
    }

    pub fn enable_broadcast(&self) -> bool {
        self.flags & FLAG_ENABLE_BROADCAST != 0
    }
    pub fn ndp_emulation(&self) -> bool {
        self.flags & FLAG_ENABLE_IPV6_NDP_EMULATION != 0
    }
    pub fn is_public(&self) -> bool {
        self.network_type == NetworkType::Public
    }
    /// Addresses with the active-bridge role bit.
    pub fn active_bridges(&self) -> impl Iterator<Item = Address> + '_ {
        self.specialists_with(SPECIALIST_ACTIVE_BRIDGE)
    }
    pub fn specialists_with(&self, role: u64) -> impl Iterator<Item = Address> + '_ {
        self.specialists
            .iter()
            .filter(move |s| *s & role != 0)
            .filter_map(|s| Address::new(s & 0xff_ffff_ffff))
    }

    /// The Dictionary, keys in the reference controller's order.
    pub fn to_dictionary(&self) -> Result<Dictionary, WireError> {
        self.check_limits()?;
        let mut d = Dictionary::new();
        d.add_u64("v", self.version)?;
        d.add_u64("nwid", self.network_id.to_u64())?;
        d.add_u64("ts", self.timestamp)?;
        d.add_u64("ctmd", self.credential_time_max_delta)?;
        d.add_u64("r", self.revision)?;
        d.add_address("id", self.issued_to)?;
        d.add_address("tt", self.remote_trace_target)?;
        d.add_u64("tl", self.remote_trace_level)?;
        d.add_u64("f", self.flags)?;
        d.add_u64("ml", u64::from(self.multicast_limit))?;
        d.add_u64("t", if self.is_public() { 1 } else { 0 })?;
        d.add_str("n", &self.name)?;
        d.add_u64("mtu", u64::from(self.mtu))?;
        if let Some(com) = &self.com {
            d.add_bytes("C", &com.to_bytes())?;
        }
        let mut buf = Vec::new();
        add_list(
            &mut d,
            "CAP",
            &self.capabilities,
            Capability::write,
            &mut buf,
        )?;
        add_list(&mut d, "TAG", &self.tags, Tag::write, &mut buf)?;
        add_list(
            &mut d,
            "COO",
            &self.certificates_of_ownership,
            CertificateOfOwnership::write,
            &mut buf,
        )?;
        add_list(
            &mut d,
            "S",
            &self.specialists,
            |s, out| out.put_u64(*s),
            &mut buf,
        )?;
        add_list(&mut d, "RT", &self.routes, Route::write, &mut buf)?;
        add_list(&mut d, "I", &self.static_ips, InetAddress::write, &mut buf)?;
        add_list(&mut d, "R", &self.rules, Rule::write, &mut buf)?;
        buf.clear();
        self.dns.write(&mut buf);
        d.add_bytes("DNS", &buf)?;
        // The reference writes nothing for SSO versions other than 0 and 1 (it never makes
        // them); writing version and flag keeps such a config's meaning through a round trip.
        let sso = &self.sso;
        d.add_u64("ssov", sso.version)?;
        d.add_bool("ssoe", sso.enabled)?;
        match sso.version {
            0 if sso.enabled => {
                if !sso.authentication_url.is_empty() {
                    d.add_str("aurl", &sso.authentication_url)?;
                }
                d.add_i64("aexpt", sso.authentication_expiry_time)?;
            }
            1 => {
                // v1 nodes derive the URL; the reference does not write it, but reads it.
                if !sso.authentication_url.is_empty() {
                    d.add_str("aurl", &sso.authentication_url)?;
                }
                d.add_str("iurl", &sso.issuer_url)?;
                d.add_str("ssoce", &sso.central_endpoint_url)?;
                d.add_str("sson", &sso.nonce)?;
                d.add_str("ssos", &sso.state)?;
                d.add_str("ssocid", &sso.client_id)?;
                d.add_str("ssop", &sso.provider)?;
            }
            _ => {}
        }
        Ok(d)
    }

    /// The serialized Dictionary text (what config chunks carry).
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        Ok(self.to_dictionary()?.to_bytes())
    }

    fn check_limits(&self) -> Result<(), WireError> {
        let limits: [(usize, usize, &'static str); 8] = [
            (
                self.capabilities.len(),
                MAX_CAPABILITIES,
                "config capabilities",
            ),
            (self.tags.len(), MAX_TAGS, "config tags"),
            (
                self.certificates_of_ownership.len(),
                coo::MAX_PER_CONFIG,
                "config certificates of ownership",
            ),
            (
                self.specialists.len(),
                MAX_SPECIALISTS,
                "config specialists",
            ),
            (self.routes.len(), MAX_ROUTES, "config routes"),
            (self.static_ips.len(), MAX_STATIC_IPS, "config static IPs"),
            (self.rules.len(), MAX_NETWORK_RULES, "config rules"),
            (
                self.dns.servers.len(),
                MAX_DNS_SERVERS,
                "config DNS servers",
            ),
        ];
        for (len, max, what) in limits {
            if len > max {
                return Err(WireError::TooLarge(what));
            }
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(WireError::TooLarge("config name"));
        }
        if self.dns.domain.len() >= DNS_DOMAIN_LEN {
            return Err(WireError::TooLarge("config DNS domain"));
        }
        Ok(())
    }

    /// Parse dictionary text (`fromDictionary`).
    pub fn parse(text: &[u8]) -> Result<NetworkConfig, WireError> {
        NetworkConfig::from_dictionary(&Dictionary::parse(text))
    }

    /// `fromDictionary`: `nwid` and `id` must be present and non-zero, `v` must be ≥ 6.
    pub fn from_dictionary(d: &Dictionary) -> Result<NetworkConfig, WireError> {
        let network_id = NetworkId(d.get_u64("nwid")?.unwrap_or(0));
        if network_id.to_u64() == 0 {
            return Err(WireError::invalid("config nwid", "missing or zero"));
        }
        let issued_to = d.get_address("id")?.unwrap_or_default();
        if issued_to == Address::default() {
            return Err(WireError::invalid("config id", "missing or zero"));
        }
        let version = d.get_u64("v")?.unwrap_or(0);
        if version < MIN_CONFIG_VERSION {
            return Err(WireError::invalid(
                "config v",
                format!("version {version} < 6 is not supported"),
            ));
        }
        let mtu = d.get_u64("mtu")?.unwrap_or(u64::from(DEFAULT_MTU));
        let mtu = mtu.clamp(u64::from(MIN_MTU), u64::from(MAX_MTU)) as u16;
        let multicast_limit = d.get_u64("ml")?.unwrap_or(0);
        let multicast_limit = u32::try_from(multicast_limit)
            .map_err(|_| WireError::invalid("config ml", "wider than 32 bits"))?;
        let mut name = d.get_str("n").unwrap_or_default();
        truncate_at_char_boundary(&mut name, MAX_NAME_LEN);

        let com = match d.get("C") {
            Some(v) => Some(CertificateOfMembership::parse(v)?),
            None => None,
        };
        let capabilities = read_list(
            d.get("CAP"),
            MAX_CAPABILITIES,
            "config capabilities",
            Capability::read,
        )?;
        let tags = read_list(d.get("TAG"), MAX_TAGS, "config tags", Tag::read)?;
        let certificates_of_ownership = read_list(
            d.get("COO"),
            coo::MAX_PER_CONFIG,
            "config certificates of ownership",
            CertificateOfOwnership::read,
        )?;
        let specialists = read_list(d.get("S"), MAX_SPECIALISTS, "config specialists", |r| {
            r.u64("specialist")
        })?;
        let routes = read_list(d.get("RT"), MAX_ROUTES, "config routes", Route::read)?;
        let static_ips = read_list(
            d.get("I"),
            MAX_STATIC_IPS,
            "config static IPs",
            InetAddress::read,
        )?;
        let rules = match d.get("R") {
            Some(v) => rules::read_all(&mut Reader::new(v), MAX_NETWORK_RULES)?,
            None => Vec::new(),
        };
        let dns = match d.get("DNS") {
            Some(v) => Dns::read(&mut Reader::new(v))?,
            None => Dns::default(),
        };

        Ok(NetworkConfig {
            version,
            network_id,
            timestamp: d.get_u64("ts")?.unwrap_or(0),
            credential_time_max_delta: d.get_u64("ctmd")?.unwrap_or(0),
            revision: d.get_u64("r")?.unwrap_or(0),
            issued_to,
            remote_trace_target: d.get_address("tt")?.unwrap_or_default(),
            remote_trace_level: d.get_u64("tl")?.unwrap_or(0),
            flags: d.get_u64("f")?.unwrap_or(0),
            multicast_limit,
            network_type: if d.get_u64("t")? == Some(1) {
                NetworkType::Public
            } else {
                NetworkType::Private
            },
            name,
            mtu,
            com,
            capabilities,
            tags,
            certificates_of_ownership,
            specialists,
            routes,
            static_ips,
            rules,
            dns,
            sso: read_sso(d)?,
        })
    }
}

fn read_sso(d: &Dictionary) -> Result<Sso, WireError> {
    let version = d.get_u64("ssov")?.unwrap_or(0);
    let enabled = d.get_bool("ssoe").unwrap_or(false);
    let mut sso = Sso {
        version,
        enabled,
        ..Sso::default()
    };
    if !enabled {
        return Ok(sso);
    }
    let text = |key: &str| d.get_str(key).unwrap_or_default();
    match version {
        0 => {
            sso.authentication_url = text("aurl");
            sso.authentication_expiry_time = d.get_i64("aexpt")?.unwrap_or(0);
        }
        1 => {
            sso.authentication_url = text("aurl");
            sso.issuer_url = text("iurl");
            sso.central_endpoint_url = text("ssoce");
            sso.nonce = text("sson");
            sso.state = text("ssos");
            sso.client_id = text("ssocid");
            sso.provider = d
                .get_str("ssop")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "default".to_string());
        }
        _ => {}
    }
    Ok(sso)
}

fn truncate_at_char_boundary(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Concatenate `items` into one binary value under `key`; left out when empty.
fn add_list<T>(
    d: &mut Dictionary,
    key: &str,
    items: &[T],
    write: impl Fn(&T, &mut Vec<u8>),
    buf: &mut Vec<u8>,
) -> Result<(), WireError> {
    if items.is_empty() {
        return Ok(());
    }
    buf.clear();
    for item in items {
        write(item, buf);
    }
    d.add_bytes(key, buf)
}

/// Read back-to-back items until the value is used up.
fn read_list<T>(
    value: Option<&[u8]>,
    max: usize,
    what: &'static str,
    read: impl Fn(&mut Reader<'_>) -> Result<T, WireError>,
) -> Result<Vec<T>, WireError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut r = Reader::new(value);
    let mut items = Vec::new();
    while !r.is_empty() {
        if items.len() == max {
            return Err(WireError::TooLarge(what));
        }
        items.push(read(&mut r)?);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adhoc_port_range_config() {
        let own = Address::new(0x3dd3377c70).unwrap();
        let nwid = NetworkId::adhoc_port_range(80, 443);
        let config = NetworkConfig::adhoc(nwid, own, 1234).unwrap();
        assert_eq!(config.name, "adhoc-0050-01bb");
        assert_eq!(config.rules.len(), 14);
        assert_eq!(
            config.rules[6].kind,
            RuleKind::IpDestPortRange {
                start: 80,
                end: 443
            }
        );
        assert!(config.rules[5].or && config.rules[0].not && config.rules[8].not);
        assert_eq!(config.static_ips.len(), 1);
        assert_eq!(config.static_ips[0].bits(), 40);
        assert!(config.is_public() && config.ndp_emulation() && !config.enable_broadcast());
        assert_eq!(
            (config.multicast_limit, config.mtu, config.revision),
            (0, 2800, 1)
        );
        assert_eq!(
            NetworkConfig::parse(&config.to_bytes().unwrap()).unwrap(),
            config
        );
        assert!(NetworkConfig::adhoc(NetworkId::adhoc_port_range(443, 80), own, 0).is_none());
        assert!(NetworkConfig::adhoc(NetworkId(0x51479cea31ccae5c), own, 0).is_none());
    }

    #[test]
    fn adhoc_ipv4_config() {
        let own = Address::new(0x89e92ceee5).unwrap();
        let config = NetworkConfig::adhoc(NetworkId(0xff0a_0000_0000_0001), own, 0).unwrap();
        assert_eq!(config.name, "adhoc-10.0.0.0");
        assert_eq!(config.static_ips[1], "10.44.238.229/8".parse().unwrap());
        assert_eq!(config.rules, vec![Rule::accept()]);
        assert_eq!(config.multicast_limit, 1024);
        assert!(config.specialists.is_empty());
        let hub = NetworkConfig::adhoc(NetworkId(0xff0a_1234_5678_9a01), own, 0).unwrap();
        assert_eq!(hub.specialists, vec![0x12_3456_789a]);
        assert_eq!(hub.active_bridges().count(), 0, "no role bits");
    }

    #[test]
    fn required_keys_and_version() {
        assert!(
            NetworkConfig::parse(b"v=7\nid=a6c5664b6f").is_err(),
            "no nwid"
        );
        assert!(NetworkConfig::parse(b"v=7\nnwid=1").is_err(), "no id");
        assert!(
            NetworkConfig::parse(b"v=5\nnwid=1\nid=a6c5664b6f").is_err(),
            "old version"
        );
        let minimal = NetworkConfig::parse(b"v=6\nnwid=1\nid=a6c5664b6f\nmtu=ffff").unwrap();
        assert_eq!(minimal.mtu, MAX_MTU, "clamped");
        assert_eq!(minimal.network_type, NetworkType::Private);
        assert!(
            NetworkConfig::parse(b"v=6\nnwid=1\nid=a6c5664b6f\nRT=\\0").is_err(),
            "truncated route"
        );
    }

    #[test]
    fn sso_fields_round_trip() {
        let own = Address::new(0xa6c5664b6f).unwrap();
        let mut v0 = NetworkConfig::new(NetworkId(0x51479cea31ccae5c), own);
        v0.sso = Sso {
            enabled: true,
            authentication_url: "https://auth.example/x?a=b".into(),
            authentication_expiry_time: -5,
            ..Sso::default()
        };
        let text = v0.to_bytes().unwrap();
        let tail = String::from_utf8_lossy(&text).into_owned();
        assert!(tail.ends_with("ssov=0000000000000000\nssoe=1\naurl=https://auth.example/x?a\\eb\naexpt=-0000000000000005"), "{tail}");
        assert_eq!(NetworkConfig::parse(&text).unwrap(), v0);

        let mut v1 = v0.clone();
        v1.sso = Sso {
            version: 1,
            enabled: true,
            issuer_url: "https://issuer".into(),
            central_endpoint_url: "https://central".into(),
            nonce: "n".into(),
            state: "s".into(),
            client_id: "c".into(),
            provider: "default".into(),
            ..Sso::default()
        };
        assert_eq!(NetworkConfig::parse(&v1.to_bytes().unwrap()).unwrap(), v1);
        let mut v2 = v0.clone();
        v2.sso = Sso {
            version: 2,
            enabled: true,
            ..Sso::default()
        };
        assert_eq!(NetworkConfig::parse(&v2.to_bytes().unwrap()).unwrap(), v2);
        // A disabled v0 config carries no URL even if one is present.
        let disabled =
            NetworkConfig::parse(b"v=7\nnwid=1\nid=a6c5664b6f\nssov=0\nssoe=0\naurl=x").unwrap();
        assert!(disabled.sso.authentication_url.is_empty());
    }

    #[test]
    fn invalid_utf8_dns_domain_still_round_trips() {
        // Found by the netconf fuzz target: lossy decoding made the domain longer than 127
        // bytes, so it was cut on write and read back different.
        let mut dns = vec![0xffu8; 127];
        dns.push(0);
        dns.extend_from_slice(&[0, 0, 0, 0]);
        let mut d = Dictionary::new();
        d.add_u64("v", 7).unwrap();
        d.add_u64("nwid", 1).unwrap();
        d.add_str("id", "a6c5664b6f").unwrap();
        d.add_bytes("DNS", &dns).unwrap();
        let config = NetworkConfig::from_dictionary(&d).unwrap();
        assert!(config.dns.domain.len() <= 127);
        assert_eq!(
            NetworkConfig::parse(&config.to_bytes().unwrap()).unwrap(),
            config
        );
    }
}
