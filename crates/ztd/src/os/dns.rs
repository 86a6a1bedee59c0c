//! A network's pushed DNS (search domain and servers) on its interface, through
//! systemd-resolved's per-link settings (`resolvectl`), as zerotier-one applies it on Linux
//! when the network's `allowDNS` is on. Where resolved is absent the commands fail, the
//! failure is shown as the interface's error and nothing else changes: ztd never edits
//! `/etc/resolv.conf`.
use std::process::Stdio;

use tokio::process::Command;
use zt_wire::netconf::Dns;

/// What was pushed, in the form `resolvectl` takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkDns {
    /// Empty: no search domain.
    pub domain: String,
    pub servers: Vec<std::net::IpAddr>,
}

impl LinkDns {
    /// The usable part of a pushed config; `None` if it names neither a domain nor a server.
    pub fn from_config(dns: &Dns) -> Option<LinkDns> {
        let servers: Vec<std::net::IpAddr> = dns.servers.iter().filter_map(|s| s.ip()).collect();
        let domain = dns.domain.trim().to_string();
        (!servers.is_empty() || !domain.is_empty()).then_some(LinkDns { domain, servers })
    }
}

/// The `resolvectl` invocations that give `interface` these settings: servers, then the
/// domain (routing lookups of that domain to the link, as the network's own names).
pub fn set_commands(interface: &str, dns: &LinkDns) -> Vec<Vec<String>> {
    let mut servers = vec!["dns".to_string(), interface.to_string()];
    servers.extend(dns.servers.iter().map(ToString::to_string));
    let mut domain = vec!["domain".to_string(), interface.to_string()];
    if !dns.domain.is_empty() {
        domain.push(dns.domain.clone());
    }
    vec![servers, domain]
}

/// Give `interface` the network's DNS.
pub async fn set(interface: &str, dns: &LinkDns) -> Result<(), String> {
    for args in set_commands(interface, dns) {
        resolvectl(&args).await?;
    }
    Ok(())
}

/// Take the network's DNS off `interface` (resolved forgets a deleted link by itself).
pub async fn revert(interface: &str) -> Result<(), String> {
    resolvectl(&["revert".to_string(), interface.to_string()]).await
}

async fn resolvectl(args: &[String]) -> Result<(), String> {
    let output = Command::new("resolvectl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("resolvectl (systemd-resolved) is needed for allow-dns: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "resolvectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_wire::inet::InetAddress;

    fn dns(domain: &str, servers: &[&str]) -> Dns {
        Dns {
            domain: domain.into(),
            servers: servers
                .iter()
                .map(|s| InetAddress::from(std::net::SocketAddr::new(s.parse().unwrap(), 53)))
                .collect(),
        }
    }

    #[test]
    fn servers_then_domain_per_link() {
        let link = LinkDns::from_config(&dns("lab.example", &["10.147.20.1", "fd00::53"])).unwrap();
        assert_eq!(
            set_commands("zerotier1", &link),
            vec![
                vec!["dns", "zerotier1", "10.147.20.1", "fd00::53"],
                vec!["domain", "zerotier1", "lab.example"],
            ]
        );
    }

    #[test]
    fn an_empty_push_applies_nothing() {
        assert_eq!(LinkDns::from_config(&Dns::default()), None);
        assert_eq!(LinkDns::from_config(&dns("  ", &[])), None);
        let only_domain = LinkDns::from_config(&dns("lab", &[])).unwrap();
        assert_eq!(
            set_commands("zt0", &only_domain),
            vec![vec!["dns", "zt0"], vec!["domain", "zt0", "lab"]]
        );
    }
}
