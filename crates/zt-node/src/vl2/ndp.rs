//! IPv6 neighbour discovery emulation (PROTOCOL.md §6.10): on networks with flag 0x04, a
//! neighbour solicitation from our tap for another member's RFC 4193 or 6plane address is
//! answered locally — the member's MAC follows from the address — and never sent.

use std::net::Ipv6Addr;
use zt_crypto::Address;
use zt_wire::mac::Mac;
use zt_wire::netconf::NetworkConfig;
use zt_wire::network_id::NetworkId;

const ETHERTYPE_IPV6: u16 = 0x86dd;
const NEXT_HEADER_ICMPV6: u8 = 58;
const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// IPv6 header, ICMPv6 header, target address.
const NS_MIN_LEN: usize = 40 + 8 + 16;

/// The member a neighbour solicitation asks about, if the network emulates NDP and the target
/// lies in one of our own RFC 4193 (/88) or 6plane (/40) prefixes.
pub(crate) fn solicited_member(
    nwid: NetworkId,
    config: &NetworkConfig,
    us: Address,
    ethertype: u16,
    frame: &[u8],
) -> Option<(Address, Ipv6Addr, Ipv6Addr)> {
    if !config.ndp_emulation()
        || ethertype != ETHERTYPE_IPV6
        || frame.len() < NS_MIN_LEN
        || frame[0] >> 4 != 6
        || frame[6] != NEXT_HEADER_ICMPV6
        || frame[40] != ICMPV6_NEIGHBOR_SOLICITATION
    {
        return None;
    }
    let source: [u8; 16] = frame[8..24].try_into().ok()?;
    let target: [u8; 16] = frame[48..64].try_into().ok()?;
    let target = Ipv6Addr::from(target);
    let assigned = |ip: Ipv6Addr| {
        config
            .static_ips
            .iter()
            .any(|a| a.ip() == Some(std::net::IpAddr::V6(ip)))
    };
    let member = if assigned(nwid.rfc4193_address(us)) {
        nwid.rfc4193_member(&target)
    } else {
        None
    }
    .or_else(|| {
        assigned(nwid.sixplane_address(us))
            .then(|| nwid.sixplane_member(&target))
            .flatten()
    })?;
    (member != us && member != Address::default()).then_some((member, target, source.into()))
}

/// The neighbour advertisement `target` (owned by `target_mac`) sends back to `to`:
/// solicited + override, with the target link-layer address option.
pub(crate) fn advertisement(target: Ipv6Addr, target_mac: Mac, to: Ipv6Addr) -> Vec<u8> {
    let mut p = Vec::with_capacity(72);
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&32u16.to_be_bytes());
    p.push(NEXT_HEADER_ICMPV6);
    p.push(255);
    p.extend_from_slice(&target.octets());
    p.extend_from_slice(&to.octets());
    let icmp_at = p.len();
    p.extend_from_slice(&[ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0, 0, 0x60, 0, 0, 0]);
    p.extend_from_slice(&target.octets());
    p.extend_from_slice(&[2, 1]);
    p.extend_from_slice(&target_mac.0);
    let checksum = icmpv6_checksum(&target, &to, &p[icmp_at..]);
    p[icmp_at + 2..icmp_at + 4].copy_from_slice(&checksum.to_be_bytes());
    p
}

/// The Internet checksum over the IPv6 pseudo-header and the ICMPv6 message.
pub(crate) fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(message.len() as u32).to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
