//! `/zerotier/peer` (read-only): the peers each running instance knows, as RouterOS prints
//! them (seed manual): `instance`, `zt-address`, `version`, `latency`, `role`
//! (PLANET/MOON/LEAF), `path` — each path `active,preferred,IP/port,recvd:…,sent:…` with
//! times since the last receive/send — plus `direct` (an alive direct path; else traffic is
//! relayed) and `bonded` (always false: no multipath).
//!
//! Items are numbered in print order (instances in `/zerotier` order, peers by address); the
//! list is a snapshot, so ids are only meaningful within one print.
use async_trait::async_trait;
use zt_console::format_duration_ms;
use zt_node::{PathInfo, PeerInfo};

use crate::daemon::Daemon;
use crate::menu::{bool_text, CommandError, Menu, Record};
use crate::model::ItemId;
use crate::runtime::commands::PeerList;
use crate::service_api::peer::role_name;

/// How long print waits for one instance's engine.
const ENGINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub struct PeerMenu;

/// One path as RouterOS shows it.
pub fn path_text(path: &PathInfo, now: u64) -> String {
    let mut words = Vec::new();
    if path.active {
        words.push("active".to_string());
    }
    if path.preferred {
        words.push("preferred".to_string());
    }
    if path.expired {
        words.push("expired".to_string());
    }
    words.push(format!("{}/{}", path.remote.ip(), path.remote.port()));
    if path.last_receive > 0 {
        words.push(format!(
            "recvd:{}",
            format_duration_ms(now.saturating_sub(path.last_receive))
        ));
    }
    if path.last_send > 0 {
        words.push(format!(
            "sent:{}",
            format_duration_ms(now.saturating_sub(path.last_send))
        ));
    }
    words.join(",")
}

/// The record of one peer (without `.id`).
pub fn peer_record(instance: &str, peer: &PeerInfo, now: u64) -> Record {
    let mut r = Record::new();
    r.insert("instance".into(), instance.to_string());
    r.insert("zt-address".into(), peer.address.to_string());
    if let Some((a, b, c)) = peer.version {
        r.insert("version".into(), format!("{a}.{b}.{c}"));
    }
    if let Some(latency) = peer.latency_ms {
        r.insert("latency".into(), format_duration_ms(latency as u64));
    }
    r.insert("role".into(), role_name(peer.role).to_string());
    // Several paths are separated by `;` (each path's own words use commas).
    let paths: Vec<String> = peer.paths.iter().map(|p| path_text(p, now)).collect();
    r.insert("path".into(), paths.join(";"));
    r.insert("direct".into(), bool_text(peer.direct));
    r.insert("bonded".into(), bool_text(false));
    r
}

#[async_trait]
impl Menu for PeerMenu {
    fn path(&self) -> &'static str {
        "zerotier/peer"
    }
    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        let model = daemon.lock().await;
        let mut records = Vec::new();
        for (id, config) in model.instances.iter() {
            let Some(runtime) = model.runtime(id) else {
                continue;
            };
            let handle = runtime.handle();
            // A stuck engine must not hang the management API: its peers are left out.
            let Ok(Ok(PeerList { peers, now })) =
                tokio::time::timeout(ENGINE_TIMEOUT, handle.peers()).await
            else {
                continue;
            };
            for peer in &peers {
                let mut r = peer_record(&config.name, peer, now);
                r.insert(".id".into(), ItemId(records.len() as u32 + 1).to_string());
                records.push(r);
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_node::{LocalSocketId, Role};

    #[test]
    fn paths_read_like_the_routeros_manual() {
        let now = 100_000;
        let path = PathInfo {
            remote: "50.7.252.138:9993".parse().unwrap(),
            local_socket: LocalSocketId(0),
            last_send: now - 9_766,
            last_receive: now - 4_440,
            active: true,
            preferred: true,
            expired: false,
        };
        assert_eq!(
            path_text(&path, now),
            "active,preferred,50.7.252.138/9993,recvd:4s440ms,sent:9s766ms"
        );
        let peer = PeerInfo {
            address: "62f865ae71".parse().unwrap(),
            version: Some((1, 14, 1)),
            protocol_version: Some(12),
            latency_ms: Some(270),
            role: Role::Planet,
            paths: vec![path],
            direct: true,
        };
        let r = peer_record("zt1", &peer, now);
        assert_eq!(r["zt-address"], "62f865ae71");
        assert_eq!(r["latency"], "270ms");
        assert_eq!(r["role"], "PLANET");
        assert_eq!(r["direct"], "true");
        assert_eq!(r["version"], "1.14.1");
    }
}
