//! `/ip/address` and `/ip/route`: read-only views of what ztd applied to its ZeroTier
//! interfaces (managed addresses and routes, schema `IP_ADDRESS` / `IP_ROUTE`). ztd does not
//! manage the rest of the host's IP configuration, so only these (dynamic) items are shown.
use async_trait::async_trait;

use crate::daemon::Daemon;
use crate::menu::{bool_text, CommandError, Menu, Record};
use crate::os::iproute::Prefix;

/// One applied item, for numbering: `*` ids are positions, stable while nothing changes.
fn id_of(index: usize) -> String {
    format!("*{:X}", index + 1)
}

pub struct AddressMenu;

#[async_trait]
impl Menu for AddressMenu {
    fn path(&self) -> &'static str {
        "ip/address"
    }
    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        let model = daemon.lock().await;
        let mut records = Vec::new();
        for (id, config) in model.interfaces.table.iter() {
            let Some(port) = model.interfaces.ports.get(&id) else {
                continue;
            };
            for address in port.view().applied.addresses {
                // RouterOS's /ip/address is IPv4 only (IPv6 lives in /ipv6/address).
                if !address.ip.is_ipv4() {
                    continue;
                }
                let mut r = Record::new();
                r.insert(".id".into(), id_of(records.len()));
                r.insert("address".into(), address.to_string());
                r.insert("network".into(), address.network().to_string());
                r.insert("interface".into(), config.name.clone());
                r.insert("actual-interface".into(), config.name.clone());
                r.insert("dynamic".into(), bool_text(true));
                r.insert("disabled".into(), bool_text(false));
                r.insert("invalid".into(), bool_text(false));
                r.insert("slave".into(), bool_text(false));
                records.push(r);
            }
        }
        Ok(records)
    }
}

pub struct RouteMenu;

#[async_trait]
impl Menu for RouteMenu {
    fn path(&self) -> &'static str {
        "ip/route"
    }
    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        let model = daemon.lock().await;
        let mut records = Vec::new();
        for (id, config) in model.interfaces.table.iter() {
            let Some(port) = model.interfaces.ports.get(&id) else {
                continue;
            };
            let view = port.view();
            let mut push = |dst: Prefix, gateway: String, distance: u8, connect: bool| {
                let mut r = Record::new();
                r.insert(".id".into(), id_of(records.len()));
                r.insert("dst-address".into(), dst.to_string());
                r.insert("gateway".into(), gateway);
                r.insert("immediate-gw".into(), config.name.clone());
                r.insert("distance".into(), distance.to_string());
                r.insert("routing-table".into(), "main".into());
                r.insert("dynamic".into(), bool_text(true));
                r.insert("active".into(), bool_text(true));
                r.insert("connect".into(), bool_text(connect));
                r.insert("static".into(), bool_text(false));
                r.insert("disabled".into(), bool_text(false));
                records.push(r);
            };
            // Connected routes of the assigned IPv4 subnets (the kernel adds them).
            for address in view.applied.addresses.iter().filter(|a| a.ip.is_ipv4()) {
                let dst = Prefix {
                    ip: address.network(),
                    bits: address.bits,
                };
                push(dst, config.name.clone(), 0, true);
            }
            for route in view.applied.routes.iter().filter(|r| r.target.ip.is_ipv4()) {
                let gateway = route.gateway.map_or(config.name.clone(), |g| g.to_string());
                push(route.target, gateway, view.route_distance, false);
            }
        }
        Ok(records)
    }
}
