//! The host's interface addresses, for the node's PUSH_DIRECT_PATHS (PROTOCOL.md §4): peers
//! on the same LAN learn our local addresses and talk directly instead of through NAT.
//!
//! Which addresses qualify follows zerotier-one's binder: not loopback, not link-local IPv6
//! (needs a scope id peers cannot use), not multicast/unspecified, not ZeroTier's own
//! virtual interfaces (that would tunnel ZeroTier inside itself), not on interfaces whose
//! name starts with a prefix of local.conf's `interfacePrefixBlacklist`, and only on the
//! interfaces the instance's `interfaces` property lists (`all` = every interface).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// How often the interface list is re-read (zerotier-one re-binds every 60 s; addresses
/// change with DHCP and hot-plugged links).
pub const REFRESH_INTERVAL_MS: u64 = 60_000;

/// The interface-name prefixes of ZeroTier's own devices (ours and zerotier-one's).
const VIRTUAL_PREFIXES: [&str; 2] = ["zt", "zerotier"];

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub interface: String,
    pub ip: IpAddr,
}

/// Every interface address of the host (`getifaddrs(3)`).
pub fn host_addresses() -> std::io::Result<Vec<InterfaceAddress>> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we own until freeifaddrs; we only read the
    // entries' name and sockaddr (checked for null and family before the cast), copy them
    // into owned values, and free the list exactly once.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut entry = head;
        while !entry.is_null() {
            let ifa = &*entry;
            entry = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let ip = match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            };
            out.push(InterfaceAddress {
                interface: name,
                ip,
            });
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

/// Interface-name prefixes whose addresses are never used (local.conf's
/// `interfacePrefixBlacklist`), shared by the daemon and its engines so a SIGHUP reaches
/// running instances at their next interface scan.
#[derive(Clone, Default)]
pub struct ExcludedInterfaces(std::sync::Arc<std::sync::RwLock<Vec<String>>>);

impl ExcludedInterfaces {
    pub fn set(&self, prefixes: Vec<String>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = prefixes;
    }

    pub fn get(&self) -> Vec<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The addresses worth pushing to peers, each with every port the instance listens on.
/// `allowed` is the instance's `interfaces` list (`all` accepts every interface); interfaces
/// whose name starts with one of `excluded` are skipped.
pub fn push_addresses(
    host: &[InterfaceAddress],
    allowed: &[String],
    excluded: &[String],
    ports: &[u16],
) -> Vec<SocketAddr> {
    let all = allowed.iter().any(|a| a == "all");
    let mut out = Vec::new();
    for a in host {
        if !all && !allowed.contains(&a.interface) {
            continue;
        }
        let excluded_name = VIRTUAL_PREFIXES
            .iter()
            .copied()
            .chain(excluded.iter().map(String::as_str))
            .any(|p| a.interface.starts_with(p));
        if excluded_name || !usable(&a.ip) {
            continue;
        }
        for &port in ports {
            let addr = SocketAddr::new(a.ip, port);
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

fn usable(ip: &IpAddr) -> bool {
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => !v4.is_link_local() && !v4.is_broadcast(),
        // fe80::/10 needs a scope id that means nothing to the peer.
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(interface: &str, ip: &str) -> InterfaceAddress {
        InterfaceAddress {
            interface: interface.into(),
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn filters_loopback_link_local_virtual_and_unlisted_interfaces() {
        let host = [
            a("lo", "127.0.0.1"),
            a("lo", "::1"),
            a("eth0", "192.168.1.5"),
            a("eth0", "fe80::1"),
            a("eth0", "2001:db8::5"),
            a("eth1", "10.0.0.2"),
            a("eth1", "169.254.3.3"),
            a("zt1234", "10.147.17.1"),
            a("zerotier1", "10.147.18.1"),
        ];
        let all = push_addresses(&host, &["all".into()], &[], &[9993, 21000]);
        assert_eq!(
            all,
            vec![
                "192.168.1.5:9993".parse().unwrap(),
                "192.168.1.5:21000".parse().unwrap(),
                "[2001:db8::5]:9993".parse().unwrap(),
                "[2001:db8::5]:21000".parse().unwrap(),
                "10.0.0.2:9993".parse().unwrap(),
                "10.0.0.2:21000".parse().unwrap(),
            ]
        );
        let only_eth1 = push_addresses(&host, &["eth1".into()], &[], &[9993]);
        assert_eq!(only_eth1, vec!["10.0.0.2:9993".parse().unwrap()]);
    }

    #[test]
    fn blacklisted_prefixes_are_skipped() {
        let host = [
            a("eth0", "192.168.1.5"),
            a("docker0", "172.17.0.1"),
            a("dockerbr", "172.18.0.1"),
            a("eth1", "10.0.0.2"),
        ];
        let kept = push_addresses(
            &host,
            &["all".into()],
            &["docker".into(), "eth1".into()],
            &[9993],
        );
        assert_eq!(kept, vec!["192.168.1.5:9993".parse().unwrap()]);
    }

    #[test]
    fn host_addresses_include_loopback() {
        // Every Linux host (and network namespace) has lo with 127.0.0.1 once it is up; the
        // test only checks that the list is read and parsed, whatever else is there.
        let host = host_addresses().unwrap();
        assert!(host.iter().all(|a| !a.interface.is_empty()));
    }
}
