//! `/zerotier/controller/member`: the members of the controllers' networks (ROUTEROS.md
//! §8.4). Members appear by themselves when a node asks to join; `add` pre-creates one.
//!
//! Properties: `network` (the controller item's **name**, as the seed's print shows),
//! `zt-address`, `authorized`, `bridge`, `ip-address` (comma list), `name`, `comment`,
//! `disabled`; read-only `last-seen` (time since the member last asked for its config) and
//! `inactive` (no request within the online window). Authorizing, deauthorizing and address
//! changes are pushed to the member (and revocations to the network) right away, by the
//! controller service as for every other face. Commands hold the controllers' id tables, not
//! the daemon's model lock, across their database work.
use async_trait::async_trait;
use zt_controller::controller::ONLINE_WINDOW_MS;
use zt_controller::patch::MemberPatch;
use zt_controller::props::member_properties;
use zt_crypto::Address;

use crate::controller::service::Face;
use crate::controller::{parse_nwid, service_error, view_of};
use crate::daemon::Daemon;
use crate::menu::{bool_text, Args, CommandError, Menu, Record};
use crate::menus::controller::{find_network_item, rest_value};
use crate::model::ItemId;

pub struct MemberMenu;

/// A duration in RouterOS's time format: `3s348ms`, `2m10s`, `1d3h`, `1w2d`.
pub fn routeros_duration(ms: u64) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if ms == 0 {
        return "0ms".into();
    }
    let mut left = ms;
    let mut out = String::new();
    for (unit, size) in UNITS {
        let n = left / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            left -= n * size;
        }
    }
    out
}

/// The typed member properties of `args` as a patch. Whether the addresses lie inside the
/// network's routes is the patch's rule.
fn member_patch(args: &mut Args) -> Result<MemberPatch, CommandError> {
    Ok(MemberPatch {
        name: args.take_text("name")?,
        authorized: args.take_bool("authorized")?,
        active_bridge: args.take_bool("bridge")?,
        ip_assignments: args.take_addresses("ip-address")?,
        comment: args.take_text("comment")?,
        disabled: args.take_bool("disabled")?,
        require_routed_ips: true,
        ..MemberPatch::default()
    })
}

/// A member row's address (stored as the 10 hex digits).
fn row_address(text: &str) -> Result<Address, CommandError> {
    text.parse()
        .map_err(|_| CommandError::Internal(format!("stored member address {text:?}")))
}

#[async_trait]
impl Menu for MemberMenu {
    fn path(&self) -> &'static str {
        "zerotier/controller/member"
    }

    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        let (tables, views) = daemon.controllers_synced().await?;
        let now = daemon.clock.now() as i64;
        let mut records = Vec::new();
        for (id, row) in tables.members.iter() {
            let Some(network) = view_of(&views, row.instance).and_then(|v| v.network(&row.network))
            else {
                continue;
            };
            let Some(member) = network
                .members
                .iter()
                .find(|m| m.address.to_string() == row.address)
            else {
                continue;
            };
            let mut r = Record::new();
            r.insert(".id".into(), id.to_string());
            r.insert("network".into(), network.network.name.clone());
            for (name, value) in member_properties(member) {
                if value.is_empty() {
                    continue;
                }
                r.insert(name.to_string(), rest_value(name, value));
            }
            let since = member
                .last_request_time
                .map(|t| now.saturating_sub(t).max(0));
            if let Some(since) = since {
                r.insert("last-seen".into(), routeros_duration(since as u64));
            }
            let inactive = since.is_none_or(|s| s >= ONLINE_WINDOW_MS);
            r.insert("inactive".into(), bool_text(inactive));
            records.push(r);
        }
        Ok(records)
    }

    async fn add(&self, daemon: &Daemon, mut args: Args) -> Result<ItemId, CommandError> {
        let (mut tables, views) = daemon.controllers_synced().await?;
        let network = args
            .take_text("network")?
            .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) network"))?;
        let address = args
            .take_zt_address("zt-address")?
            .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) zt-address"))?;
        let row = find_network_item(&tables, &views, &network)
            .and_then(|id| tables.networks.get(id).cloned())
            .ok_or_else(|| CommandError::invalid_value("network"))?;
        let patch = member_patch(&mut args)?;
        args.finish()?;
        let nwid = parse_nwid(&row.network, "network")?;
        let controller = daemon.controller_of_instance(row.instance).await?;
        let added = controller
            .add_member(nwid, address, patch, Face::RouterOs)
            .await
            .map_err(service_error)?;
        if added.is_none() {
            return Err(CommandError::failure(
                "member with the same zt-address already exists",
            ));
        }
        daemon.sync_controllers(&mut tables).await?;
        let address = address.to_string();
        let found = tables
            .members
            .iter()
            .find(|(_, r)| {
                r.instance == row.instance && r.network == row.network && r.address == address
            })
            .map(|(id, _)| id)
            .ok_or_else(|| CommandError::Internal("created member not listed".into()));
        found
    }

    async fn set(&self, daemon: &Daemon, id: ItemId, mut args: Args) -> Result<(), CommandError> {
        let (tables, _) = daemon.controllers_synced().await?;
        let row = tables
            .members
            .get(id)
            .cloned()
            .ok_or(CommandError::NoSuchItem)?;
        let patch = member_patch(&mut args)?;
        args.finish()?;
        let nwid = parse_nwid(&row.network, "network")?;
        let address = row_address(&row.address)?;
        let controller = daemon.controller_of_instance(row.instance).await?;
        controller
            .update_member(nwid, address, patch, Face::RouterOs)
            .await
            .map_err(service_error)?;
        drop(tables);
        Ok(())
    }

    async fn remove(&self, daemon: &Daemon, id: ItemId) -> Result<(), CommandError> {
        let (mut tables, _) = daemon.controllers_synced().await?;
        let row = tables
            .members
            .get(id)
            .cloned()
            .ok_or(CommandError::NoSuchItem)?;
        let nwid = parse_nwid(&row.network, "network")?;
        let address = row_address(&row.address)?;
        let controller = daemon.controller_of_instance(row.instance).await?;
        controller
            .delete_member(nwid, address, Face::RouterOs)
            .await
            .map_err(service_error)?;
        daemon.sync_controllers(&mut tables).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::routeros_duration;

    #[test]
    fn durations_read_like_routeros() {
        assert_eq!(routeros_duration(3348), "3s348ms");
        assert_eq!(routeros_duration(130_000), "2m10s");
        assert_eq!(routeros_duration(90_000_000), "1d1h");
        assert_eq!(routeros_duration(0), "0ms");
    }
}
