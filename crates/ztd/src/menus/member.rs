//! `/zerotier/controller/member`: the members of the controllers' networks (ROUTEROS.md
//! §8.4). Members appear by themselves when a node asks to join; `add` pre-creates one.
//!
//! Properties: `network` (the controller item's **name**, as the seed's print shows),
//! `zt-address`, `authorized`, `bridge`, `ip-address` (comma list), `name`, `comment`,
//! `disabled`; read-only `last-seen` (time since the member last asked for its config) and
//! `inactive` (no request within the online window). Authorizing, deauthorizing and address
//! changes are pushed to the member (and revocations to the network) right away, by the
//! controller service as for every other face. A command that names members (`print where
//! network=…`, `where zt-address=…`, an id) reads only those, by key, from the database; no
//! command holds the daemon's model lock across database work.
use std::cmp::Ordering;

use async_trait::async_trait;
use zt_controller::controller::ONLINE_WINDOW_MS;
use zt_controller::patch::MemberPatch;
use zt_controller::props::member_properties;
use zt_controller::storage::{ItemNo, MemberFilter};
use zt_controller::Member;
use zt_crypto::Address;

use crate::controller::service::Face;
use crate::controller::{find_network_item, menu_id, menu_id_parts, service_error, NetworkItem};
use crate::daemon::Daemon;
use crate::menu::{bool_text, Args, CommandError, Menu, Record};
use crate::menus::controller::rest_value;
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

/// The member's record as print shows it; `now` for `last-seen`.
fn member_record(id: ItemId, network: &NetworkItem, member: &Member, now: i64) -> Record {
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
    r
}

/// The database look-ups a `print where` needs: the keys among `equal` that the database
/// indexes. `None` when no member can match (a value no member has, such as a malformed id).
struct Lookup {
    id: Option<ItemId>,
    network_name: Option<String>,
    address: Option<Address>,
}

impl Lookup {
    fn from_equalities(equal: &[(String, String)]) -> Option<Lookup> {
        let mut lookup = Lookup {
            id: None,
            network_name: None,
            address: None,
        };
        for (name, value) in equal {
            match name.as_str() {
                ".id" => {
                    let id = value.parse().ok()?;
                    if lookup.id.replace(id).is_some_and(|other| other != id) {
                        return None;
                    }
                }
                "network" => lookup.network_name = Some(value.clone()),
                // As print shows it: 10 lower-case hex digits.
                "zt-address" => {
                    let address = value.parse::<Address>().ok()?;
                    if address.to_string() != *value {
                        return None;
                    }
                    lookup.address = Some(address);
                }
                _ => {}
            }
        }
        Some(lookup)
    }
}

#[async_trait]
impl Menu for MemberMenu {
    fn path(&self) -> &'static str {
        "zerotier/controller/member"
    }

    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        self.print_where(daemon, &[]).await
    }

    async fn print_where(
        &self,
        daemon: &Daemon,
        equal: &[(String, String)],
    ) -> Result<Vec<Record>, CommandError> {
        let Some(lookup) = Lookup::from_equalities(equal) else {
            return Ok(Vec::new());
        };
        let networks = daemon.controller_networks().await?;
        let now = daemon.clock.now() as i64;
        let mut records = Vec::new();
        for (instance, service) in daemon.controller_services().await? {
            let item = match lookup.id.map(menu_id_parts) {
                Some((of, _)) if of != instance => continue,
                Some((_, item)) => Some(item),
                None => None,
            };
            let filter = MemberFilter {
                item,
                address: lookup.address,
                network: None,
            };
            // Members of the named networks only; every network's when none is named.
            let named: Option<Vec<u64>> = lookup.network_name.as_ref().map(|name| {
                networks
                    .iter()
                    .filter(|n| n.instance == instance && n.network.name == *name)
                    .map(|n| n.network.id)
                    .collect()
            });
            let found = service
                .read(move |ctl| match named {
                    None => ctl.storage().member_items(filter),
                    Some(nwids) => {
                        let mut found = Vec::new();
                        for network in nwids {
                            let filter = MemberFilter {
                                network: Some(network),
                                ..filter
                            };
                            found.extend(ctl.storage().member_items(filter)?);
                        }
                        found.sort_unstable_by_key(|(item, _)| *item);
                        Ok(found)
                    }
                })
                .await
                .map_err(service_error)?
                .map_err(|e| service_error(e.into()))?;
            for (item, member) in found {
                let Some(network) = networks
                    .iter()
                    .find(|n| n.instance == instance && n.network.id == member.network_id)
                else {
                    continue;
                };
                let record = member_record(menu_id(instance, item)?, network, &member, now);
                if equal.iter().all(|(k, v)| record.get(k) == Some(v)) {
                    records.push(record);
                }
            }
        }
        Ok(records)
    }

    /// Counted by the databases: every member of the controllers before the item's, and the
    /// members numbered below it in its own.
    async fn count_below(&self, daemon: &Daemon, below: ItemId) -> Result<usize, CommandError> {
        let (below_instance, below_item) = menu_id_parts(below);
        let mut count = 0;
        for (instance, service) in daemon.controller_services().await? {
            let limit = match instance.cmp(&below_instance) {
                Ordering::Less => ItemNo::MAX,
                Ordering::Equal => below_item,
                Ordering::Greater => continue,
            };
            let counted = service
                .read(move |ctl| ctl.storage().count_members_below(limit))
                .await
                .map_err(service_error)?
                .map_err(|e| service_error(e.into()))?;
            count += usize::try_from(counted).unwrap_or(usize::MAX);
        }
        Ok(count)
    }

    async fn add(&self, daemon: &Daemon, mut args: Args) -> Result<ItemId, CommandError> {
        let network = args
            .take_text("network")?
            .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) network"))?;
        let address = args
            .take_zt_address("zt-address")?
            .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) zt-address"))?;
        let networks = daemon.controller_networks().await?;
        let network = find_network_item(&networks, &network)
            .ok_or_else(|| CommandError::invalid_value("network"))?;
        let patch = member_patch(&mut args)?;
        args.finish()?;
        let nwid = network.network.id;
        let controller = daemon.controller_of_instance(network.instance).await?;
        let added = controller
            .add_member(nwid, address, patch, Face::RouterOs)
            .await
            .map_err(service_error)?;
        if added.is_none() {
            return Err(CommandError::failure(
                "member with the same zt-address already exists",
            ));
        }
        let filter = MemberFilter {
            network: Some(nwid),
            address: Some(address),
            item: None,
        };
        let numbered = controller
            .read(move |ctl| ctl.storage().member_items(filter))
            .await
            .map_err(service_error)?
            .map_err(|e| service_error(e.into()))?;
        match numbered.first() {
            Some((item, _)) => menu_id(network.instance, *item),
            // Removed again at once, through another face.
            None => Err(CommandError::NoSuchItem),
        }
    }

    async fn set(&self, daemon: &Daemon, id: ItemId, mut args: Args) -> Result<(), CommandError> {
        let patch = member_patch(&mut args)?;
        args.finish()?;
        let (instance, item) = menu_id_parts(id);
        let controller = daemon.controller_of_item(instance).await?;
        controller
            .update_member_item(item, patch, Face::RouterOs)
            .await
            .map_err(service_error)?
            .map(drop)
            .ok_or(CommandError::NoSuchItem)
    }

    async fn remove(&self, daemon: &Daemon, id: ItemId) -> Result<(), CommandError> {
        let (instance, item) = menu_id_parts(id);
        let controller = daemon.controller_of_item(instance).await?;
        controller
            .delete_member_item(item, Face::RouterOs)
            .await
            .map_err(service_error)?
            .map(drop)
            .ok_or(CommandError::NoSuchItem)
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
