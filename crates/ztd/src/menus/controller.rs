//! `/zerotier/controller`: the networks the instances' controllers serve (ROUTEROS.md §8.3).
//!
//! Properties: `instance` (default `zt1`), `name` (mandatory, unique: members refer to their
//! network by it), `network` (16 hex; when omitted: the instance address + 24 random bits),
//! `private` (yes), `broadcast` (yes), `mtu` (2800), `multicast-limit` (32), `ip-range`,
//! `ip6-range`, `ip6-rfc4193` (no), `ip6-6plane` (no), `routes`, `rules` (flow rules in
//! ZeroTier's rules language; empty is accept-all), `comment`, `disabled`;
//! `copy-from` on `add` starts from another item's settings; read-only `inactive` (the
//! network id is not this instance's, or the instance is not running). Values arrive typed
//! (checked by zt-console's schema, as the console checks them) and become a
//! `zt_controller` patch, whose rules (ranges inside routes, no host bits) hold for every face;
//! a refused change writes nothing. Changes go through the instance's controller service, which pushes
//! and revokes as for every other face. Adding or renaming holds the daemon's controller-names
//! lock (not its model lock) across the database work, so names stay unique.
use async_trait::async_trait;
use zt_console::values::{IpRange, RouteSpec, Value};
use zt_controller::model::{IpPool, IpPrefix, Route};
use zt_controller::patch::NetworkPatch;
use zt_controller::props::network_properties;
use zt_controller::{ControllerError, ModelError, Network};

use crate::controller::{find_network_item, service_error, NetworkItem};
use crate::daemon::{Daemon, Model};
use crate::instances::DEFAULT_INSTANCE_NAME;
use crate::menu::{bool_text, Args, CommandError, Menu, Record, COPY_FROM};
use crate::model::ItemId;

/// Properties shown as booleans (REST prints `true`/`false`).
const BOOLEAN_PROPERTIES: &[&str] = &[
    "private",
    "broadcast",
    "ip6-rfc4193",
    "ip6-6plane",
    "disabled",
    "authorized",
    "bridge",
];

pub struct ControllerMenu;

/// A zt-controller validation error in RouterOS wording where RouterOS has one.
pub(crate) fn model_error(e: ModelError) -> CommandError {
    match e {
        ModelError::UnknownProperty(name) | ModelError::ReadOnly(name) => {
            CommandError::unknown_parameter(&name)
        }
        ModelError::InvalidBool { property, .. } => CommandError::invalid_value(&property),
        ModelError::InvalidValue {
            property, reason, ..
        } => CommandError::refused(format!("invalid value for argument {property}: {reason}")),
        ModelError::RulesLanguage { property, error } => {
            CommandError::refused(format!("invalid value for argument {property}: {error}"))
        }
        ModelError::MtuOutOfRange(_) => CommandError::out_of_range(
            "mtu",
            zt_controller::model::MIN_MTU,
            zt_controller::model::MAX_MTU,
        ),
        other => CommandError::failure(other),
    }
}

pub(crate) fn controller_error(e: ControllerError) -> CommandError {
    match e {
        ControllerError::Invalid(m) => model_error(m),
        ControllerError::Storage(s) => CommandError::Internal(format!("controller database: {s}")),
        other => CommandError::failure(other),
    }
}

/// Property values for the record (`yes`/`no` from zt-controller become REST booleans).
pub(crate) fn rest_value(name: &str, value: String) -> String {
    if BOOLEAN_PROPERTIES.contains(&name) {
        match value.as_str() {
            "yes" => return bool_text(true),
            "no" => return bool_text(false),
            _ => {}
        }
    }
    value
}

/// The typed network properties of `args` as a patch (what `set` changes, or what `add`
/// starts from). The network rules (ranges inside routes, no host bits) are the patch's.
fn network_patch(args: &mut Args) -> Result<NetworkPatch, CommandError> {
    let pools = |ranges: Vec<IpRange>| -> Vec<IpPool> {
        ranges
            .into_iter()
            .map(|r| IpPool {
                start: r.first,
                end: r.last,
            })
            .collect()
    };
    let mut p = NetworkPatch {
        require_routed_pools: true,
        ..NetworkPatch::default()
    };
    p.name = args.take_text("name")?;
    p.private = args.take_bool("private")?;
    p.enable_broadcast = args.take_bool("broadcast")?;
    p.mtu = args.take_number("mtu")?;
    p.multicast_limit = args.take_number("multicast-limit")?;
    if let Some(ranges) = args.take_ranges("ip-range")? {
        p.v4_assign = Some(!ranges.is_empty());
        p.ipv4_pools = Some(pools(ranges));
    }
    if let Some(ranges) = args.take_ranges("ip6-range")? {
        p.v6_assign_zt = Some(!ranges.is_empty());
        p.ipv6_pools = Some(pools(ranges));
    }
    p.v6_assign_rfc4193 = args.take_bool("ip6-rfc4193")?;
    p.v6_assign_sixplane = args.take_bool("ip6-6plane")?;
    if let Some(routes) = args.take_routes("routes")? {
        let routes = routes
            .into_iter()
            .map(|r| {
                Ok(Route {
                    target: IpPrefix::new(r.destination, r.bits).map_err(model_error)?,
                    via: r.gateway,
                })
            })
            .collect::<Result<_, CommandError>>()?;
        p.routes = Some(routes);
    }
    if let Some(rules) = args.take_text("rules")? {
        p.set_rules_source(&rules).map_err(|error| {
            model_error(ModelError::RulesLanguage {
                property: "rules",
                error,
            })
        })?;
    }
    p.comment = args.take_text("comment")?;
    p.disabled = args.take_bool("disabled")?;
    Ok(p)
}

/// What `copy-from` takes over from `source`: its settings, not its name and network ID
/// (the copy is a new network; the schema's `copied`), as typed arguments the given ones
/// override.
fn copied_settings(source: &Network) -> Args {
    let ranges = |v4: bool| {
        Value::Ranges(
            source
                .pools
                .iter()
                .filter(|p| p.is_ipv4() == v4)
                .map(|p| IpRange {
                    first: p.start,
                    last: p.end,
                })
                .collect(),
        )
    };
    let routes = source
        .routes
        .iter()
        .map(|r| RouteSpec {
            destination: r.target.addr(),
            bits: r.target.bits(),
            gateway: r.via,
        })
        .collect();
    let mut args = Args::new();
    args.insert("private", Value::Bool(source.private));
    args.insert("broadcast", Value::Bool(source.enable_broadcast));
    args.insert("mtu", Value::Number(i64::from(source.mtu)));
    args.insert(
        "multicast-limit",
        Value::Number(i64::from(source.multicast_limit)),
    );
    args.insert("ip-range", ranges(true));
    args.insert("ip6-range", ranges(false));
    args.insert("ip6-rfc4193", Value::Bool(source.v6_assign.rfc4193));
    args.insert("ip6-6plane", Value::Bool(source.v6_assign.sixplane));
    args.insert("routes", Value::Routes(routes));
    args.insert("rules", Value::Text(source.rules_source.clone()));
    args.insert("comment", Value::Text(source.comment.clone()));
    args.insert("disabled", Value::Bool(source.disabled));
    args
}

fn name_taken(networks: &[NetworkItem], name: &str, except: Option<ItemId>) -> bool {
    networks
        .iter()
        .any(|n| Some(n.id) != except && n.network.name == name)
}

fn record(model: &Model, id: ItemId, instance: ItemId, network: &Network, serves: bool) -> Record {
    let mut r = Record::new();
    r.insert(".id".into(), id.to_string());
    let instance_name = model
        .instances
        .get(instance)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    for (name, value) in network_properties(network) {
        // Unset lists and texts are left out, as RouterOS REST leaves out unset properties.
        if value.is_empty() {
            continue;
        }
        r.insert(name.to_string(), rest_value(name, value));
    }
    let running = model.runtime(instance).is_some();
    r.insert("instance".into(), instance_name);
    r.insert("inactive".into(), bool_text(!serves || !running));
    r
}

#[async_trait]
impl Menu for ControllerMenu {
    fn path(&self) -> &'static str {
        "zerotier/controller"
    }

    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        let networks = daemon.controller_networks().await?;
        // Instance names and running state only: no database work under the model lock.
        let model = daemon.lock().await;
        Ok(networks
            .iter()
            .map(|n| record(&model, n.id, n.instance, &n.network, n.serves))
            .collect())
    }

    async fn add(&self, daemon: &Daemon, mut args: Args) -> Result<ItemId, CommandError> {
        // Held until the network is created: two networks cannot get one name.
        let _names = daemon.controller_names.lock().await;
        let networks = daemon.controller_networks().await?;
        let instance_name = args
            .take_text("instance")?
            .unwrap_or_else(|| DEFAULT_INSTANCE_NAME.to_string());
        let instance = daemon
            .lock()
            .await
            .instance_by_name(&instance_name)
            .ok_or_else(|| CommandError::invalid_value("instance"))?;
        let nwid = args.take_network_id("network")?.flatten().map(|id| id.0);
        let mut settings = match args.take_text(COPY_FROM)? {
            Some(selector) => {
                let source = find_network_item(&networks, &selector)
                    .ok_or_else(|| CommandError::invalid_value(COPY_FROM))?;
                copied_settings(&source.network)
            }
            None => Args::new(),
        };
        // The given settings win over the copied ones.
        settings.extend(args);
        let patch = network_patch(&mut settings)?;
        settings.finish()?;
        let Some(name) = patch.name.clone() else {
            return Err(CommandError::refused(
                "missing value(s) of argument(s) name",
            ));
        };
        if name_taken(&networks, &name, None) {
            return Err(CommandError::failure(
                "controller with the same name already exists",
            ));
        }
        let controller = daemon.controller_of_instance(instance).await?;
        let created = controller
            .create_network(nwid, patch)
            .await
            .map_err(service_error)?;
        let numbered = controller
            .read(move |ctl| ctl.storage().network_items())
            .await
            .map_err(service_error)?
            .map_err(|e| service_error(e.into()))?;
        match numbered.iter().find(|(_, id)| *id == created.id) {
            Some((item, _)) => crate::controller::menu_id(instance, *item),
            // Removed again at once, through another face.
            None => Err(CommandError::NoSuchItem),
        }
    }

    async fn set(&self, daemon: &Daemon, id: ItemId, mut args: Args) -> Result<(), CommandError> {
        // Held until the change is stored: a new name stays unique.
        let _names = daemon.controller_names.lock().await;
        let networks = daemon.controller_networks().await?;
        let item = networks
            .iter()
            .find(|n| n.id == id)
            .ok_or(CommandError::NoSuchItem)?;
        let patch = network_patch(&mut args)?;
        args.finish()?;
        if let Some(name) = &patch.name {
            if name_taken(&networks, name, Some(id)) {
                return Err(CommandError::failure(
                    "controller with the same name already exists",
                ));
            }
        }
        let controller = daemon.controller_of_item(item.instance).await?;
        controller
            .update_network(item.network.id, patch)
            .await
            .map_err(service_error)?;
        Ok(())
    }

    async fn remove(&self, daemon: &Daemon, id: ItemId) -> Result<(), CommandError> {
        let networks = daemon.controller_networks().await?;
        let item = networks
            .iter()
            .find(|n| n.id == id)
            .ok_or(CommandError::NoSuchItem)?;
        let controller = daemon.controller_of_item(item.instance).await?;
        // Members that had access are revoked, as when the JSON API deletes it.
        controller
            .delete_network(item.network.id)
            .await
            .map_err(service_error)?;
        Ok(())
    }
}
