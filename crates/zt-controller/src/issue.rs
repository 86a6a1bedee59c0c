//! Turning a decision into what goes on the wire: the zt-wire [`NetworkConfig`] with its signed
//! COM and COO (PROTOCOL.md §6.4, §6.6, §7.1 step 14), the revocation for a member who lost
//! access, and the request metadata read back from its Dictionary.
//!
//! The output matches what ZeroTier One 1.14 sends: given the same inputs and the same
//! controller key, the Dictionary is byte-identical to the captured one
//! (`tests/capture_config.rs`), since C25519 signatures are deterministic.
use std::net::IpAddr;

use zt_crypto::Identity;
use zt_wire::capability::Capability;
use zt_wire::com::CertificateOfMembership;
use zt_wire::coo::{self, CertificateOfOwnership, Thing};
use zt_wire::credential::CredentialType;
use zt_wire::dictionary::Dictionary;
use zt_wire::inet::InetAddress;
use zt_wire::netconf::{
    self, NetworkConfig, NetworkType, FLAG_ENABLE_BROADCAST, FLAG_ENABLE_IPV6_NDP_EMULATION,
    SPECIALIST_ACTIVE_BRIDGE,
};
use zt_wire::network_id::NetworkId as WireNetworkId;
use zt_wire::revocation::{Revocation, FLAG_FAST_PROPAGATE};
use zt_wire::tag::Tag;
use zt_wire::WireError;

use crate::controller::{NetworkConfigData, RequestMetadata, RevocationPlan};
use crate::model::ClientVersion;

/// The ID of the one certificate of ownership the controller issues per config.
pub const COO_ID: u32 = 1;

/// Why a config or revocation could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("member identity: {0}")]
    MemberIdentity(#[from] zt_crypto::IdentityError),
    #[error("the member identity {0} does not match the config's address")]
    IdentityMismatch(String),
    #[error("encoding: {0}")]
    Wire(#[from] WireError),
}

/// The signed network config for `data`. `controller` must hold its private key.
pub fn build_config(
    data: &NetworkConfigData,
    controller: &Identity,
) -> Result<NetworkConfig, IssueError> {
    let member = Identity::from_string(&data.issued_to_identity)?;
    if member.address() != data.issued_to {
        return Err(IssueError::IdentityMismatch(
            data.issued_to_identity.clone(),
        ));
    }
    let nwid = WireNetworkId(data.network_id);
    // Controller timestamps are never negative; a clock before 1970 would be a caller bug and
    // is issued as 0 rather than wrapping.
    let timestamp = u64::try_from(data.timestamp).unwrap_or(0);

    let mut config = NetworkConfig::new(nwid, data.issued_to);
    config.timestamp = timestamp;
    config.credential_time_max_delta = data.credential_window_ms;
    config.revision = data.revision;
    config.remote_trace_target = data.remote_trace_target.unwrap_or_default();
    config.remote_trace_level = u64::from(data.remote_trace_level);
    config.flags = if data.enable_broadcast {
        FLAG_ENABLE_BROADCAST
    } else {
        0
    } | if data.ndp_emulation {
        FLAG_ENABLE_IPV6_NDP_EMULATION
    } else {
        0
    };
    config.multicast_limit = data.multicast_limit;
    config.network_type = if data.private {
        NetworkType::Private
    } else {
        NetworkType::Public
    };
    config.name = data.name.clone();
    config.mtu = u16::try_from(
        data.mtu
            .clamp(u32::from(netconf::MIN_MTU), u32::from(netconf::MAX_MTU)),
    )
    .unwrap_or(netconf::DEFAULT_MTU);

    let mut com = CertificateOfMembership::new(timestamp, data.credential_window_ms, nwid, &member);
    com.sign(controller)?;
    config.com = Some(com);

    if !data.static_ips.is_empty() {
        let things = data
            .static_ips
            .iter()
            .take(coo::MAX_THINGS)
            .map(|p| match p.addr() {
                IpAddr::V4(a) => Thing::Ipv4(a),
                IpAddr::V6(a) => Thing::Ipv6(a),
            })
            .collect();
        let mut coo = CertificateOfOwnership::new(nwid, timestamp, COO_ID, things, data.issued_to)?;
        coo.sign(controller)?;
        config.certificates_of_ownership.push(coo);
    }

    config.specialists = data
        .active_bridges
        .iter()
        .map(|a| a.to_u64() | SPECIALIST_ACTIVE_BRIDGE)
        .collect();
    config.routes = data
        .routes
        .iter()
        .map(|r| netconf::Route {
            target: InetAddress::new(r.target.addr(), u16::from(r.target.bits())),
            via: r.via.map(|v| InetAddress::new(v, 0)).unwrap_or_default(),
            flags: 0,
            metric: 0,
        })
        .collect();
    config.static_ips = data
        .static_ips
        .iter()
        .map(|p| InetAddress::new(p.addr(), u16::from(p.bits())))
        .collect();
    config.rules = data.rules.clone();
    for issued in &data.capabilities {
        // The controller hands each capability straight to the member: a chain of one.
        let mut cap = Capability::new(nwid, timestamp, issued.id, issued.rules.clone(), 1)?;
        cap.sign(controller, data.issued_to)?;
        config.capabilities.push(cap);
    }
    for &(id, value) in &data.tags {
        let mut tag = Tag::new(nwid, timestamp, id, value, data.issued_to);
        tag.sign(controller)?;
        config.tags.push(tag);
    }
    config.dns = netconf::Dns {
        domain: data.dns.domain.clone(),
        servers: data
            .dns
            .servers
            .iter()
            .map(|ip| InetAddress::new(*ip, 0))
            .collect(),
    };
    Ok(config)
}

/// The signed COM revocation for `plan` (PROTOCOL.md §6.6): credential ID 0, fast propagate.
/// `revocation_id` is random (the caller's RNG).
pub fn build_revocation(
    plan: &RevocationPlan,
    revocation_id: u32,
    controller: &Identity,
) -> Result<Revocation, IssueError> {
    let threshold = u64::try_from(plan.threshold).unwrap_or(0);
    let mut revocation = Revocation::new(
        revocation_id,
        WireNetworkId(plan.network_id),
        0,
        threshold,
        FLAG_FAST_PROPAGATE,
        plan.target,
        CredentialType::CertificateOfMembership,
    );
    revocation.sign(controller)?;
    Ok(revocation)
}

impl RequestMetadata {
    /// Reads the keys the controller uses from a request's metadata Dictionary
    /// (PROTOCOL.md §4.12). Unknown or malformed keys are ignored, as the reference does:
    /// metadata never makes a request fail.
    pub fn from_dictionary(d: &Dictionary) -> RequestMetadata {
        let num = |k: &'static str| d.get_u64(k).ok().flatten();
        let small = |k: &'static str| num(k).and_then(|v| u32::try_from(v).ok());
        let version = match (small("majv"), small("minv"), small("revv"), small("pv")) {
            (Some(major), Some(minor), Some(revision), Some(protocol)) => Some(ClientVersion {
                major,
                minor,
                revision,
                protocol,
            }),
            _ => None,
        };
        let auth_token = d
            .get_str("a")
            .and_then(|a| a.strip_prefix("token:").map(str::to_string))
            .filter(|t| !t.is_empty());
        RequestMetadata {
            version,
            rules_engine_revision: num("revr").unwrap_or(0),
            auth_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_from_dictionary() {
        // The keys 1.8.4 sent in capture 2 (majv=1, minv=8, revv=4), plus a network token.
        let mut d = Dictionary::new();
        for (k, v) in [
            ("v", 7),
            ("pv", 12),
            ("majv", 1),
            ("minv", 8),
            ("revv", 4),
            ("revr", 1),
        ] {
            d.add_u64(k, v).unwrap();
        }
        d.add_str("a", "token:s3cret").unwrap();
        let m = RequestMetadata::from_dictionary(&d);
        assert_eq!(
            m.version,
            Some(ClientVersion {
                major: 1,
                minor: 8,
                revision: 4,
                protocol: 12
            })
        );
        assert_eq!(m.rules_engine_revision, 1);
        assert_eq!(m.auth_token.as_deref(), Some("s3cret"));

        // Missing keys: no version, old rules engine, no token; never an error.
        let mut d = Dictionary::new();
        d.add_u64("majv", 1).unwrap();
        d.add_str("a", "password:x").unwrap();
        d.add_str("revr", "zz").unwrap();
        assert_eq!(
            RequestMetadata::from_dictionary(&d),
            RequestMetadata::default()
        );
    }
}
