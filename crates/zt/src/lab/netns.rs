//! The lab's network: one hub namespace holding a bridge, one namespace per node joined to it
//! by a veth pair, all on a private /24 with no default route, so nothing the nodes send can
//! leave this host. The only work done in the root namespace is `ip` creating namespaces and
//! links. Names all start with [`PREFIX`] so `zt lab down` can find leftovers.
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Every lab namespace's name starts with this (then the owning process id).
pub const PREFIX: &str = "ztlab-";

/// The lab subnet's first three octets; node `i` is `.(i+1)`.
const SUBNET: [u8; 3] = [10, 99, 0];
pub const PREFIX_LEN: u8 = 24;

/// The namespaces of one lab; removed on drop unless [`Namespaces::keep`] was called.
pub struct Namespaces {
    hub: String,
    nodes: Vec<(String, String)>,
    keep: bool,
}

impl Namespaces {
    /// The prefix of a lab run by process `pid`: `ztlab-<pid>-`.
    pub fn prefix_for(pid: u32) -> String {
        format!("{PREFIX}{pid}-")
    }

    /// Build the hub and one namespace per name (`<prefix><name>`). On failure whatever was
    /// created is removed again.
    pub fn create(prefix: &str, names: &[&str]) -> Result<Namespaces, String> {
        let mut lab = Namespaces {
            hub: format!("{prefix}hub"),
            nodes: Vec::new(),
            keep: false,
        };
        // From here on Drop removes what exists, whichever step fails.
        ip(&["netns", "add", &lab.hub])?;
        ip(&["-n", &lab.hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &lab.hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &lab.hub, "link", "set", "br0", "up"])?;
        for (i, name) in names.iter().enumerate() {
            let ns = format!("{prefix}{name}");
            ip(&["netns", "add", &ns])?;
            lab.nodes.push((name.to_string(), ns.clone()));
            // Interface names are limited to 15 bytes; node names are short words.
            let port: String = format!("p-{name}").chars().take(15).collect();
            ip(&[
                "-n", &lab.hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            ip(&["-n", &lab.hub, "link", "set", &port, "master", "br0", "up"])?;
            let address = format!("{}/{PREFIX_LEN}", node_address(i));
            ip(&["-n", &ns, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    /// The namespace of node `name`.
    pub fn ns(&self, name: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ns)| ns.as_str())
    }

    /// Leave the namespaces in place when dropped (`zt lab --keep`).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Every namespace of this lab, hub last.
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = self.nodes.iter().map(|(_, ns)| ns.clone()).collect();
        all.push(self.hub.clone());
        all
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for ns in self.all() {
            // Deleting a namespace also deletes its veth end and with it the hub's peer.
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}

/// The underlay address of the `i`-th node (0-based).
pub fn node_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], (i + 1) as u8)
}

/// Run `ip ARGS…`; Err carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The names of every existing lab namespace (any owner), from `ip netns list`.
pub fn existing() -> Result<Vec<String>, String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip netns list: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(lab_namespaces(&String::from_utf8_lossy(&out.stdout)))
}

/// Lab namespace names in `ip netns list` output (`NAME` or `NAME (id: N)` per line).
fn lab_namespaces(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

/// The ids of the processes running in namespace `ns` (`ip netns pids`).
pub fn pids_in(ns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lab_namespaces_are_listed() {
        let listing = "ztlab-41-home (id: 3)\nzt-77-0-br\nztlab-41-hub\nother (id: 1)\n";
        assert_eq!(
            lab_namespaces(listing),
            ["ztlab-41-home".to_string(), "ztlab-41-hub".to_string()]
        );
    }

    #[test]
    fn node_addresses_are_private() {
        assert_eq!(node_address(0), Ipv4Addr::new(10, 99, 0, 1));
        assert!(node_address(3).is_private());
    }
}
