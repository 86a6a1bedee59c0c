//! A NAT lab: an "internet" (a bridge namespace on 203.0.113.0/24, a documentation prefix of
//! global scope, routed nowhere) with node 0 on it, and behind it one leaf node per NAT
//! gateway namespace, each gateway translating with nftables the way a kind of home router
//! or carrier NAT does. Every namespace is removed on drop, also on panic; no namespace has a
//! route out of the lab.
//!
//! ```text
//!  node 0 (203.0.113.1) ── br0 ──┬── wan [gateway of leaf 1] lan ── eth0 node 1 (192.168.1.2)
//!                                └── wan [carrier] lan ── wan [home] lan ── eth0 node 2
//! ```
//!
//! [`NatLab`] derefs to [`Lab`], so what runs a process in a node's namespace works unchanged;
//! [`Lab::ip`] is a node's own address (its LAN address for a leaf) and
//! [`NatLab::public_ip`] the one the internet sees.

use std::net::Ipv4Addr;
use std::ops::Deref;
use std::process::Command;

use crate::{ip, Lab};

/// The UDP port a full-cone gateway forwards to its leaf (ZeroTier's primary port).
pub const FULL_CONE_PORT: u16 = 9993;

/// How a leaf's gateway translates (RFC 4787 terms: mapping, then filtering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// Endpoint-independent mapping and filtering: the leaf's UDP port [`FULL_CONE_PORT`] is
    /// always the gateway's port [`FULL_CONE_PORT`], and anything arriving there is forwarded.
    FullCone,
    /// Endpoint-independent mapping (Linux masquerading keeps the source port when it is
    /// free), filtering by conntrack: only the exact address and port the leaf sent to may
    /// answer.
    PortRestricted,
    /// Endpoint-dependent mapping: a random outside port per destination
    /// (`masquerade fully-random`), so the port a third party reports is useless to others.
    Symmetric,
    /// Two port-restricted gateways in a row: a home router behind a carrier-grade NAT.
    Double,
    /// [`NatKind::Symmetric`] whose gateway also runs Debian's `miniupnpd` answering NAT-PMP
    /// on its LAN side, so the leaf can have a port forwarded. miniupnpd refuses reserved
    /// external addresses (203.0.113.0/24 among them): build such a lab with
    /// [`NatLab::with_internet`] on another prefix. The leaf has a default route to its
    /// gateway (NAT-PMP clients find the gateway that way); the gateway has none.
    SymmetricNatPmp,
    /// [`NatKind::SymmetricNatPmp`] whose miniupnpd answers UPnP-IGD (SSDP and SOAP) and not
    /// NAT-PMP.
    SymmetricUpnp,
}

impl NatKind {
    /// Whether the gateway runs miniupnpd (and the leaf has a default route to it).
    fn maps_ports(self) -> bool {
        matches!(self, NatKind::SymmetricNatPmp | NatKind::SymmetricUpnp)
    }
}

impl NatKind {
    /// A short name for test output.
    pub fn name(self) -> &'static str {
        match self {
            NatKind::FullCone => "full-cone",
            NatKind::PortRestricted => "port-restricted",
            NatKind::Symmetric => "symmetric",
            NatKind::Double => "double",
            NatKind::SymmetricNatPmp => "symmetric with NAT-PMP",
            NatKind::SymmetricUpnp => "symmetric with UPnP-IGD",
        }
    }
}

/// See the module documentation. Node 0 is on the internet; node `i ≥ 1` is behind the
/// gateway(s) of `kinds[i - 1]`.
pub struct NatLab {
    /// Daemons of the gateways (miniupnpd): first, so they are killed before the
    /// namespaces go.
    daemons: Vec<crate::NsProcess>,
    /// Their configuration files, removed on drop.
    files: Vec<std::path::PathBuf>,
    lab: Lab,
    /// The internet's /24; node 0 is .1, leaf i's (outermost) gateway is .(10 + i).
    internet: [u8; 3],
    /// Per node, the address the internet sees it at.
    public: Vec<Ipv4Addr>,
    /// Per leaf, its gateway namespaces from the internet inwards.
    gateways: Vec<Vec<String>>,
}

impl Drop for NatLab {
    fn drop(&mut self) {
        // The daemons and namespaces go with the fields, after this.
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Deref for NatLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

/// The internet of [`NatLab::new`]: TEST-NET-3, of global scope and routed nowhere.
pub const DOCUMENTATION_INTERNET: [u8; 3] = [203, 0, 113];

impl NatLab {
    /// Builds the lab: node 0 on the internet, then one leaf behind each of `kinds`
    /// (at most 100).
    pub fn new(kinds: &[NatKind]) -> NatLab {
        NatLab::with_internet(DOCUMENTATION_INTERNET, kinds)
    }

    /// [`NatLab::new`] with `internet` (a /24) as the internet. Its addresses exist only
    /// inside the lab: no namespace routes anything beyond it.
    pub fn with_internet(internet: [u8; 3], kinds: &[NatKind]) -> NatLab {
        assert!(kinds.len() <= 100);
        let mut nat = NatLab {
            daemons: Vec::new(),
            files: Vec::new(),
            lab: Lab::bridge_only(),
            internet,
            public: Vec::new(),
            gateways: Vec::new(),
        };
        let root = nat.internet(1);
        let host = nat.lab.add_node_namespace(root);
        nat.public.push(root);
        nat.wire_to_bridge(&host, "v0", "eth0", root);
        for (index, kind) in kinds.iter().enumerate() {
            let leaf = index as u8 + 1;
            nat.add_leaf(leaf, *kind);
        }
        nat
    }

    /// The address node `i` is seen at on the internet (its gateway's for a leaf).
    pub fn public_ip(&self, i: usize) -> Ipv4Addr {
        self.public[i]
    }

    /// Leaf node `i`'s gateway namespaces, outermost first (empty for node 0).
    pub fn gateways(&self, i: usize) -> &[String] {
        i.checked_sub(1)
            .and_then(|leaf| self.gateways.get(leaf))
            .map_or(&[], Vec::as_slice)
    }

    fn internet(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.internet;
        Ipv4Addr::new(a, b, c, host)
    }

    /// The internet's /24, routed by leaves and inner gateways (not a default route:
    /// nothing leaves the lab).
    fn internet_prefix(&self) -> String {
        format!("{}/24", self.internet(0))
    }

    fn add_leaf(&mut self, leaf: u8, kind: NatKind) {
        let wan = self.internet(10 + leaf);
        let lan_address = Ipv4Addr::new(192, 168, leaf, 2);
        let home_gateway = Ipv4Addr::new(192, 168, leaf, 1);
        let mut hops = Vec::new();
        let outer = self.add_gateway(&format!("g{leaf}"));
        self.wire_to_bridge(&outer, &format!("w{leaf}"), "wan", wan);
        hops.push(outer.clone());
        // The namespace and address of the gateway the leaf's LAN hangs off.
        let home = if kind == NatKind::Double {
            // Carrier NAT on 100.64.<leaf>.0/24 (the shared address space carriers use).
            let inner = self.add_gateway(&format!("h{leaf}"));
            let (carrier_side, home_side) = (
                Ipv4Addr::new(100, 64, leaf, 1),
                Ipv4Addr::new(100, 64, leaf, 2),
            );
            link(&outer, "lan", carrier_side, &inner, "wan", home_side);
            ip(&[
                "-n",
                &inner,
                "route",
                "add",
                &self.internet_prefix(),
                "via",
                &carrier_side.to_string(),
            ]);
            nftables(&outer, &ruleset(NatKind::PortRestricted, None));
            hops.push(inner.clone());
            inner
        } else {
            outer.clone()
        };
        let node = self.lab.add_node_namespace(lan_address);
        link(&home, "lan", home_gateway, &node, "eth0", lan_address);
        let routed = if kind.maps_ports() {
            "default".to_string()
        } else {
            self.internet_prefix()
        };
        ip(&[
            "-n",
            &node,
            "route",
            "add",
            &routed,
            "via",
            &home_gateway.to_string(),
        ]);
        let home_kind = match kind {
            NatKind::Double => NatKind::PortRestricted,
            NatKind::SymmetricNatPmp | NatKind::SymmetricUpnp => NatKind::Symmetric,
            other => other,
        };
        nftables(&home, &ruleset(home_kind, Some(lan_address)));
        if kind.maps_ports() {
            let lan = format!("192.168.{leaf}.0/24");
            let (daemon, files) = start_miniupnpd(&home, &lan, kind == NatKind::SymmetricUpnp);
            self.daemons.push(daemon);
            self.files.extend(files);
        }
        self.public.push(wan);
        self.gateways.push(hops);
    }

    /// Creates (and records, for Drop) a gateway namespace that forwards IPv4.
    fn add_gateway(&mut self, name: &str) -> String {
        let ns = format!("{}-{name}", self.lab.prefix);
        ip(&["netns", "add", &ns]);
        self.lab.helpers.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&[
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        ns
    }

    /// A veth from the internet bridge (port `port`) to `interface` in `ns`, with `address`.
    fn wire_to_bridge(&self, ns: &str, port: &str, interface: &str, address: Ipv4Addr) {
        let bridge = &self.lab.bridge;
        ip(&[
            "-n", bridge, "link", "add", port, "type", "veth", "peer", "name", interface, "netns",
            ns,
        ]);
        ip(&["-n", bridge, "link", "set", port, "master", "br0", "up"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            interface,
        ]);
        ip(&["-n", ns, "link", "set", interface, "up"]);
    }
}

/// A veth between `a` (`a_if`, `a_addr`) and `b` (`b_if`, `b_addr`) on one /24.
fn link(a: &str, a_if: &str, a_addr: Ipv4Addr, b: &str, b_if: &str, b_addr: Ipv4Addr) {
    ip(&[
        "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
    ]);
    ip(&["-n", a, "addr", "add", &format!("{a_addr}/24"), "dev", a_if]);
    ip(&["-n", b, "addr", "add", &format!("{b_addr}/24"), "dev", b_if]);
    ip(&["-n", a, "link", "set", a_if, "up"]);
    ip(&["-n", b, "link", "set", b_if, "up"]);
}

/// The nftables rules of a gateway whose outside is `wan` and inside `lan`; `leaf` (the
/// host behind it) gets the full cone's fixed port forward.
fn ruleset(kind: NatKind, leaf: Option<Ipv4Addr>) -> String {
    let (mut forward_in, mut fixed_out) = (String::new(), String::new());
    if let (NatKind::FullCone, Some(leaf)) = (kind, leaf) {
        let port = FULL_CONE_PORT;
        forward_in = format!("iifname \"wan\" udp dport {port} dnat to {leaf}:{port}");
        // `snat to :port` keeps the gateway's own address and fixes the port.
        fixed_out =
            format!("oifname \"wan\" ip saddr {leaf} udp sport {port} masquerade to :{port}");
    }
    let masquerade = match kind {
        NatKind::Symmetric => "masquerade fully-random",
        _ => "masquerade",
    };
    // The input chain drops what arrives unasked at the gateway itself: besides being what a
    // router does, it keeps the kernel from confirming a conntrack entry for a peer's early
    // hole-punching packet, which would otherwise take the port masquerading wants to keep
    // and make a cone NAT behave like a symmetric one.
    format!(
        "table ip natlab {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    {forward_in}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    {fixed_out}
    oifname \"wan\" {masquerade}
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname \"wan\" ct state new drop
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    iifname \"lan\" oifname \"wan\" accept
    ct state established,related accept
    ct status dnat accept
  }}
}}
"
    )
}

/// Loads `rules` into namespace `ns`'s nftables (from a file: nft then quotes the line of
/// any error it finds).
fn nftables(ns: &str, rules: &str) {
    let file = std::env::temp_dir().join(format!("{ns}.nft"));
    std::fs::write(&file, rules).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let path = file.display().to_string();
    ip(&["netns", "exec", ns, "nft", "-f", &path]);
    let _ = std::fs::remove_file(&file);
}

/// Where Debian's miniupnpd (package miniupnpd-nftables) is.
const MINIUPNPD: &str = "/usr/sbin/miniupnpd";

/// The nftables chains miniupnpd adds its forwards to (its Debian package's init script
/// would make them; we name them in its configuration). Both families, as miniupnpd
/// versions differ in which they use.
fn miniupnpd_tables() -> String {
    ["ip", "inet"]
        .iter()
        .map(|family| {
            format!(
                "table {family} upnp {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    jump miniupnpd
  }}
  chain miniupnpd {{
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
  }}
  chain prerouting_miniupnpd {{
  }}
  chain postrouting_miniupnpd {{
  }}
}}
"
            )
        })
        .collect()
}

/// Starts miniupnpd in gateway namespace `ns`, answering NAT-PMP (or, with `upnp`, UPnP-IGD
/// only) on its `lan` side for hosts of `lan_prefix` only, and waits until it listens.
fn start_miniupnpd(
    ns: &str,
    lan_prefix: &str,
    upnp: bool,
) -> (crate::NsProcess, [std::path::PathBuf; 2]) {
    nftables(ns, &miniupnpd_tables());
    let dir = std::env::temp_dir();
    let config = dir.join(format!("{ns}-miniupnpd.conf"));
    let pid_file = dir.join(format!("{ns}-miniupnpd.pid"));
    let text = format!(
        "ext_ifname=wan
listening_ip=lan
enable_natpmp={natpmp}
enable_upnp={upnp}
uuid=3f4e2c9a-0000-4000-8000-5a7e57000000
secure_mode=yes
upnp_table_name=upnp
upnp_nat_table_name=upnp
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 {lan_prefix} 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
",
        natpmp = if upnp { "no" } else { "yes" },
        upnp = if upnp { "yes" } else { "no" },
    );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, MINIUPNPD, "-d", "-f"])
        .arg(&config)
        .arg("-P")
        .arg(&pid_file);
    let mut daemon = crate::NsProcess::spawn(cmd);
    // NAT-PMP's port 5351 (SSDP's 1900 for UPnP) in /proc/net/udp's hex, read inside the
    // namespace.
    let port = if upnp { ":076C " } else { ":14E7 " };
    let listening = (0..100).any(|_| {
        let udp = Command::new("ip")
            .args(["netns", "exec", ns, "cat", "/proc/net/udp"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(port))
            .unwrap_or(false);
        if !udp {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        udp
    });
    assert!(
        listening,
        "miniupnpd did not start in {ns}: {}",
        daemon.report()
    );
    (daemon, [config, pid_file])
}

/// Whether NAT labs can run miniupnpd ([`NatKind::SymmetricNatPmp`]); Err says why not.
pub fn nat_pmp_available() -> Result<(), String> {
    nat_lab_available()?;
    if std::path::Path::new(MINIUPNPD).is_file() {
        Ok(())
    } else {
        Err("miniupnpd not found: apt-get install miniupnpd-nftables".into())
    }
}

/// Whether this machine can build NAT labs; Err says why not.
pub fn nat_lab_available() -> Result<(), String> {
    crate::netns_available()?;
    match Command::new("nft").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err("nft (nftables) not found: apt-get install nftables".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `args` in `ns` and returns (success, stdout).
    fn run_in(ns: &str, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args);
        let out = crate::run_with_deadline(cmd, Duration::from_secs(10));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn leaves_reach_the_internet_only_through_their_gateways_and_everything_goes_on_drop() {
        if let Err(why) = nat_lab_available() {
            eprintln!("skipped: {why}");
            return;
        }
        let names;
        {
            let lab = NatLab::new(&[
                NatKind::FullCone,
                NatKind::Double,
                NatKind::PortRestricted,
                NatKind::Symmetric,
            ]);
            names = (0..5)
                .map(|node| lab.ns(node).to_string())
                .chain((1..5).flat_map(|node| lab.gateways(node).to_vec()))
                .collect::<Vec<_>>();
            assert_eq!(lab.gateways(2).len(), 2);
            assert_eq!(lab.public_ip(2), Ipv4Addr::new(203, 0, 113, 12));
            let root = lab.ip(0).to_string();
            for leaf in 1..5 {
                let (ok, out) = run_in(lab.ns(leaf), &["ping", "-c", "1", "-W", "2", &root]);
                assert!(ok, "leaf {leaf} cannot reach the root: {out}");
            }
            // Nothing outside: no route to a real address from anywhere in the lab.
            for ns in &names {
                let (ok, _) = run_in(ns, &["ip", "-4", "route", "get", "192.0.2.1"]);
                assert!(!ok, "{ns} has a route out");
            }
            // The root cannot open a connection to a leaf's LAN address.
            let (ok, _) = run_in(lab.ns(0), &["ip", "-4", "route", "get", "192.168.1.2"]);
            assert!(!ok, "the internet routes to a LAN");
        }
        let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let list = String::from_utf8_lossy(&list.stdout);
        for ns in names {
            assert!(!list.contains(&ns), "{ns} left behind");
        }
    }
}
