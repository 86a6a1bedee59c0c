//! Link, address and route configuration of our TAP devices.
//!
//! This drives the kernel through iproute2's `ip` command (which speaks rtnetlink for us)
//! rather than the `rtnetlink` crate: the operations are few, idempotent (`replace`), rare
//! (at join, config change and leave) and their failures come back as `ip`'s own one-line
//! messages, which we show to the operator as they are. Reads of what the kernel has are not
//! needed: the daemon shows what it applied ([`crate::networks`]).
//!
//! Every call names the device explicitly, so nothing outside our own interfaces is touched.
use std::net::IpAddr;
use std::process::Stdio;

use tokio::process::Command;

use zt_wire::mac::Mac;

/// An address or route prefix: an IP and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub ip: IpAddr,
    pub bits: u8,
}

impl Prefix {
    /// `None` when `bits` is longer than the address.
    pub fn new(ip: IpAddr, bits: u16) -> Option<Prefix> {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Prefix {
            ip,
            bits: bits as u8,
        })
    }

    /// The network part (host bits cleared): what RouterOS shows as `network` and what a
    /// route's destination is.
    pub fn network(&self) -> IpAddr {
        match self.ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// The default route of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_default(&self) -> bool {
        self.bits == 0
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip, self.bits)
    }
}

/// `ip` failed; the text is its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ip {command}: {message}")]
pub struct IpError {
    pub command: String,
    pub message: String,
}

async fn ip(args: &[String]) -> Result<(), IpError> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| IpError {
            command: args.join(" "),
            message: e.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(IpError {
            command: args.join(" "),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Set the MAC and MTU of `device` and bring it up.
pub async fn configure_link(device: &str, mac: Mac, mtu: u16) -> Result<(), IpError> {
    ip(&words(&[
        "link",
        "set",
        "dev",
        device,
        "address",
        &mac.to_string(),
        "mtu",
        &mtu.to_string(),
        "up",
    ]))
    .await
}

/// Set only the MTU of `device`.
pub async fn set_mtu(device: &str, mtu: u16) -> Result<(), IpError> {
    ip(&words(&[
        "link",
        "set",
        "dev",
        device,
        "mtu",
        &mtu.to_string(),
    ]))
    .await
}

/// Add `address` to `device` (no-op if present). IPv6 addresses skip duplicate address
/// detection: the controller (or the address derivation) already guarantees uniqueness, and
/// DAD would hold the address unusable for a second or more.
pub async fn add_address(device: &str, address: Prefix) -> Result<(), IpError> {
    let text = address.to_string();
    let mut args = words(&["address", "replace", &text, "dev", device]);
    if address.ip.is_ipv6() {
        args.push("nodad".into());
    }
    ip(&args).await
}

/// Remove `address` from `device`.
pub async fn remove_address(device: &str, address: Prefix) -> Result<(), IpError> {
    ip(&words(&[
        "address",
        "del",
        &address.to_string(),
        "dev",
        device,
    ]))
    .await
}

/// Route `target` through `device`, via `gateway` if given, with `metric`.
pub async fn add_route(
    device: &str,
    target: Prefix,
    gateway: Option<IpAddr>,
    metric: u32,
) -> Result<(), IpError> {
    let mut args = words(&["route", "replace", &route_target(target)]);
    if let Some(gateway) = gateway {
        args.extend(words(&["via", &gateway.to_string()]));
    }
    args.extend(words(&["dev", device, "metric", &metric.to_string()]));
    ip(&args).await
}

/// Remove the route that [`add_route`] made.
pub async fn remove_route(
    device: &str,
    target: Prefix,
    gateway: Option<IpAddr>,
    metric: u32,
) -> Result<(), IpError> {
    let mut args = words(&["route", "del", &route_target(target)]);
    if let Some(gateway) = gateway {
        args.extend(words(&["via", &gateway.to_string()]));
    }
    args.extend(words(&["dev", device, "metric", &metric.to_string()]));
    ip(&args).await
}

/// Routes name their destination network (host bits cleared), as the kernel requires.
fn route_target(target: Prefix) -> String {
    Prefix {
        ip: target.network(),
        bits: target.bits,
    }
    .to_string()
}

/// Delete `device` (a TAP normally vanishes with its descriptor; this removes one left
/// behind by a crashed daemon before we create ours).
pub async fn delete_link(device: &str) -> Result<(), IpError> {
    ip(&words(&["link", "del", "dev", device])).await
}

/// Whether `device` exists in this namespace.
pub fn link_exists(device: &str) -> bool {
    super::tap::valid_interface_name(device)
        && std::path::Path::new("/sys/class/net").join(device).exists()
}

/// Whether `device` is up with a carrier (RouterOS flag `R`).
pub fn link_running(device: &str) -> bool {
    if !super::tap::valid_interface_name(device) {
        return false;
    }
    let base = std::path::Path::new("/sys/class/net").join(device);
    let carrier = std::fs::read_to_string(base.join("carrier")).unwrap_or_default();
    let flags = std::fs::read_to_string(base.join("flags")).unwrap_or_default();
    let up = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
        .is_ok_and(|f| f & libc::IFF_UP as u32 != 0);
    up && carrier.trim() == "1"
}

/// Set the ARP/neighbour reachable time of `device` (`arp-timeout`), IPv4 and IPv6.
pub fn set_neighbour_reachable_time(device: &str, millis: u64) -> std::io::Result<()> {
    if !super::tap::valid_interface_name(device) {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    for family in ["ipv4", "ipv6"] {
        let path = format!("/proc/sys/net/{family}/neigh/{device}/base_reachable_time_ms");
        std::fs::write(path, millis.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_know_their_network() {
        let p = Prefix::new("10.147.17.5".parse().unwrap(), 24).unwrap();
        assert_eq!(p.network(), "10.147.17.0".parse::<IpAddr>().unwrap());
        assert_eq!(p.to_string(), "10.147.17.5/24");
        let p = Prefix::new("fc12:3456:78aa:bbcc:dd00::1".parse().unwrap(), 40).unwrap();
        assert_eq!(p.network(), "fc12:3456:7800::".parse::<IpAddr>().unwrap());
        let d = Prefix::new("0.0.0.0".parse().unwrap(), 0).unwrap();
        assert!(d.is_default());
        assert_eq!(d.network(), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert!(Prefix::new("10.0.0.1".parse().unwrap(), 33).is_none());
        assert!(Prefix::new("::1".parse().unwrap(), 129).is_none());
    }
}
