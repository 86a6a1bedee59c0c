//! The multicast groups a TAP listens to, as the kernel knows them: what the node should
//! subscribe to (MULTICAST_LIKE) so that multicasts on the network reach the programs on
//! this host, as on an Ethernet LAN.
//!
//! Two sources, as zerotier-one uses them on Linux:
//! - the link-layer memberships the kernel keeps for the interface (`/proc/net/dev_mcast`):
//!   the IPv4/IPv6 groups programs and the kernel joined (all-hosts, mDNS, solicited-node
//!   groups of the IPv6 addresses, `ip maddr add`, ...), each with ADI 0;
//! - the address-resolution group of every address on the interface, because ARP requests
//!   are broadcasts that ZeroTier narrows by the target IPv4 (the ADI), which the kernel's
//!   table cannot show.
//!
//! Reading is blocking file and `getifaddrs(3)` I/O: callers run it off the async threads.
use std::collections::BTreeSet;
use std::net::IpAddr;

use zt_wire::mac::Mac;
use zt_wire::verbs::multicast::MulticastGroup;

/// The kernel's table of link-layer multicast memberships of the network namespace.
const DEV_MCAST: &str = "/proc/net/dev_mcast";

/// One line of `/proc/net/dev_mcast`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMembership {
    pub interface_index: u32,
    pub interface: String,
    /// How many times the group was joined on the interface.
    pub users: u32,
    /// How many of those joins are global (not tied to one socket).
    pub global_users: u32,
    pub mac: Mac,
}

/// The lines of `/proc/net/dev_mcast` (`index name users global-users hex-MAC`) that make
/// sense; any other line (a future format, a truncated read) is skipped rather than
/// guessed at.
pub fn parse_dev_mcast(text: &str) -> Vec<LinkMembership> {
    text.lines().filter_map(parse_dev_mcast_line).collect()
}

fn parse_dev_mcast_line(line: &str) -> Option<LinkMembership> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [index, name, users, global_users, hex] = fields[..] else {
        return None;
    };
    Some(LinkMembership {
        interface_index: index.parse().ok()?,
        interface: name.to_string(),
        users: users.parse().ok()?,
        global_users: global_users.parse().ok()?,
        mac: mac_from_plain_hex(hex)?,
    })
}

/// A MAC written as 12 hex digits without separators, as the kernel prints it.
fn mac_from_plain_hex(hex: &str) -> Option<Mac> {
    if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(Mac::from_u64)
}

/// The groups to subscribe for `interface`, given the kernel's memberships (of all
/// interfaces) and the interface's own addresses.
pub fn groups_for_interface(
    interface: &str,
    memberships: &[LinkMembership],
    addresses: &[IpAddr],
) -> BTreeSet<MulticastGroup> {
    let joined = memberships
        .iter()
        .filter(|m| m.interface == interface && m.mac.is_multicast())
        .map(|m| MulticastGroup { mac: m.mac, adi: 0 });
    let resolution = addresses
        .iter()
        .map(|ip| MulticastGroup::for_address_resolution(*ip));
    joined.chain(resolution).collect()
}

/// What `interface` listens to now (blocking: reads `/proc/net/dev_mcast` and the host's
/// addresses). An interface the kernel does not list has no groups beyond its addresses'.
pub fn interface_groups(interface: &str) -> std::io::Result<BTreeSet<MulticastGroup>> {
    let memberships = parse_dev_mcast(&std::fs::read_to_string(DEV_MCAST)?);
    let addresses: Vec<IpAddr> = crate::runtime::interfaces::host_addresses()?
        .into_iter()
        .filter(|a| a.interface == interface)
        .map(|a| a.ip)
        .collect();
    Ok(groups_for_interface(interface, &memberships, &addresses))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel prints for a TAP with IPv4 and IPv6 up, plus an `ip maddr add`.
    const SAMPLE: &str = "\
1    lo              1     0     333300000001
1    lo              1     0     01005e000001
7    ztabc           1     0     333300000001
7    ztabc           1     0     01005e000001
7    ztabc           2     0     3333ffddeeff
7    ztabc           1     1     01005e010203
8    ztother         1     0     01005e0000fb
";

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    fn group(text: &str, adi: u32) -> MulticastGroup {
        MulticastGroup {
            mac: mac(text),
            adi,
        }
    }

    #[test]
    fn parses_every_field_of_the_kernel_table() {
        let parsed = parse_dev_mcast(SAMPLE);
        assert_eq!(parsed.len(), 7);
        assert_eq!(
            parsed[5],
            LinkMembership {
                interface_index: 7,
                interface: "ztabc".into(),
                users: 1,
                global_users: 1,
                mac: mac("01:00:5e:01:02:03"),
            }
        );
    }

    #[test]
    fn bad_lines_are_skipped_and_the_rest_kept() {
        let text = "\
garbage
7    ztabc           1     0     3333000000
7    ztabc           1     0     33330000000g
7    ztabc           1     0     333300000001 extra
x    ztabc           1     0     333300000001
7    ztabc           -1    0     333300000001
7    ztabc           1

7    ztabc           1     0     3333ff000001\r
";
        let parsed = parse_dev_mcast(text);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].mac, mac("33:33:ff:00:00:01"));
        assert!(parse_dev_mcast("").is_empty());
    }

    #[test]
    fn groups_are_the_interface_memberships_and_its_address_resolution_groups() {
        let addresses: Vec<IpAddr> = ["10.147.17.5", "fd00::12:3456"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let groups = groups_for_interface("ztabc", &parse_dev_mcast(SAMPLE), &addresses);
        let expected: BTreeSet<MulticastGroup> = [
            group("33:33:00:00:00:01", 0),
            group("01:00:5e:00:00:01", 0),
            group("33:33:ff:dd:ee:ff", 0),
            group("01:00:5e:01:02:03", 0),
            group("ff:ff:ff:ff:ff:ff", 0x0a93_1105),
            group("33:33:ff:12:34:56", 0),
        ]
        .into();
        assert_eq!(groups, expected);
        // Another interface's groups (lo, ztother) never leak in; a unicast MAC in the table
        // is no group.
        let unicast = parse_dev_mcast("7 ztabc 1 0 020000000001");
        assert!(groups_for_interface("ztabc", &unicast, &[]).is_empty());
        assert!(groups_for_interface("missing", &parse_dev_mcast(SAMPLE), &[]).is_empty());
    }
}
