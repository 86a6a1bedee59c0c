//! `/zerotier/controller`: the networks the instances' controllers serve (ROUTEROS.md §8.3).
//!
//! Properties: `instance` (default `zt1`), `name` (mandatory, unique: members refer to their
//! network by it), `network` (16 hex; when omitted: the instance address + 24 random bits),
//! `private` (yes), `broadcast` (yes), `mtu` (2800), `multicast-limit` (32), `ip-range`,
//! `ip6-range`, `ip6-rfc4193` (no), `ip6-6plane` (no), `routes`, `comment`, `disabled`;
//! `copy-from` on `add` starts from another item's settings; read-only `inactive` (the
//! network id is not this instance's, or the instance is not running). Values are parsed by
//! `zt_controller::props`, so the console, REST and the JSON API validate alike; a refused
//! change writes nothing.
use std::sync::Arc;

use async_trait::async_trait;
use zt_controller::controller::RevocationPlan;
use zt_controller::model::format_network_id;
use zt_controller::props::{network_patch_from_properties, network_properties};
use zt_controller::{ControllerError, ModelError, Network, Pushes};

use crate::controller::{parse_nwid, storage_error, InstanceController};
use crate::daemon::{Daemon, Model};
use crate::instances::DEFAULT_INSTANCE_NAME;
use crate::menu::{bool_text, Args, CommandError, Menu, Record};
use crate::model::ItemId;

/// The settable network properties, in menu order.
pub(crate) const NETWORK_PROPERTIES: &[&str] = &[
    "name",
    "private",
    "broadcast",
    "mtu",
    "multicast-limit",
    "ip-range",
    "ip6-range",
    "ip6-rfc4193",
    "ip6-6plane",
    "routes",
    "comment",
    "disabled",
];
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
        ControllerError::Storage(s) => storage_error(s),
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

/// Take the given network properties out of `args`, in menu order.
fn take_properties(args: &mut Args) -> Vec<(&'static str, String)> {
    NETWORK_PROPERTIES
        .iter()
        .filter_map(|&name| args.take(name).map(|v| (name, v)))
        .collect()
}

/// The controller menu item for a name or id given as a reference (`copy-from`, member
/// `network=`).
pub(crate) fn find_network_item(
    model: &Model,
    open: &[(ItemId, Arc<InstanceController>)],
    selector: &str,
) -> Option<ItemId> {
    if let Ok(id) = selector.parse::<ItemId>() {
        return model.controllers.networks.get(id).map(|_| id);
    }
    model
        .controllers
        .networks
        .iter()
        .find(|(_, row)| {
            network_of(open, row.instance, &row.network).is_some_and(|n| n.name == selector)
        })
        .map(|(id, _)| id)
}

/// The stored network of a menu row.
pub(crate) fn network_of(
    open: &[(ItemId, Arc<InstanceController>)],
    instance: ItemId,
    network: &str,
) -> Option<Network> {
    let controller = &open.iter().find(|(i, _)| *i == instance)?.1;
    let nwid = u64::from_str_radix(network, 16).ok()?;
    controller.lock().network(nwid).ok().flatten()
}

fn name_taken(
    model: &Model,
    open: &[(ItemId, Arc<InstanceController>)],
    name: &str,
    except: Option<ItemId>,
) -> bool {
    model.controllers.networks.iter().any(|(id, row)| {
        Some(id) != except
            && network_of(open, row.instance, &row.network).is_some_and(|n| n.name == name)
    })
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
        let mut model = daemon.lock().await;
        let open = daemon.controllers_synced(&mut model).await?;
        let mut records = Vec::new();
        for (id, row) in model.controllers.networks.iter() {
            let Some((_, controller)) = open.iter().find(|(i, _)| *i == row.instance) else {
                continue;
            };
            let Ok(nwid) = u64::from_str_radix(&row.network, 16) else {
                continue;
            };
            let (network, serves) = {
                let ctl = controller.lock();
                (ctl.network(nwid).map_err(storage_error)?, ctl.serves(nwid))
            };
            if let Some(network) = network {
                records.push(record(&model, id, row.instance, &network, serves));
            }
        }
        Ok(records)
    }

    async fn add(&self, daemon: &Daemon, mut args: Args) -> Result<ItemId, CommandError> {
        let mut model = daemon.lock().await;
        let open = daemon.controllers_synced(&mut model).await?;
        let instance_name = args
            .take("instance")
            .unwrap_or_else(|| DEFAULT_INSTANCE_NAME.to_string());
        let instance = model
            .instance_by_name(&instance_name)
            .ok_or_else(|| CommandError::invalid_value("instance"))?;
        let nwid = args
            .take("network")
            .map(|text| parse_nwid(&text, "network"))
            .transpose()?;
        let mut props: Vec<(&'static str, String)> = Vec::new();
        if let Some(selector) = args.take("copy-from") {
            let source = find_network_item(&model, &open, &selector)
                .and_then(|id| model.controllers.networks.get(id))
                .and_then(|row| network_of(&open, row.instance, &row.network))
                .ok_or_else(|| CommandError::invalid_value("copy-from"))?;
            props.extend(
                network_properties(&source)
                    .into_iter()
                    .filter(|(name, _)| *name != "name" && *name != "network"),
            );
        }
        let given = take_properties(&mut args);
        args.finish()?;
        let Some(name) = given
            .iter()
            .find(|(n, _)| *n == "name")
            .map(|(_, v)| v.clone())
        else {
            return Err(CommandError::refused(
                "missing value(s) of argument(s) name",
            ));
        };
        if name_taken(&model, &open, &name, None) {
            return Err(CommandError::failure(
                "controller with the same name already exists",
            ));
        }
        props.extend(given);
        let pairs: Vec<(&str, &str)> = props.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let patch = network_patch_from_properties(&pairs).map_err(model_error)?;
        let controller = daemon.controller_for(&mut model, instance).await?;
        let now = daemon.clock.now() as i64;
        let created = {
            let mut ctl = controller.lock();
            match nwid {
                Some(nwid) => ctl.create_network(now, nwid, &patch),
                None => ctl.create_network_with_random_id(now, &patch, rand::random::<u32>),
            }
        }
        .map_err(controller_error)?;
        let open = daemon.controllers_synced(&mut model).await?;
        drop(open);
        let network = format_network_id(created.id);
        let found = model
            .controllers
            .networks
            .iter()
            .find(|(_, r)| r.instance == instance && r.network == network)
            .map(|(id, _)| id)
            .ok_or_else(|| CommandError::Internal("created network not listed".into()));
        found
    }

    async fn set(&self, daemon: &Daemon, id: ItemId, mut args: Args) -> Result<(), CommandError> {
        let mut model = daemon.lock().await;
        let open = daemon.controllers_synced(&mut model).await?;
        let row = model
            .controllers
            .networks
            .get(id)
            .cloned()
            .ok_or(CommandError::NoSuchItem)?;
        for fixed in ["instance", "network"] {
            if args.take(fixed).is_some() {
                return Err(CommandError::failure(format!(
                    "{fixed} of an existing controller can not be changed"
                )));
            }
        }
        let given = take_properties(&mut args);
        args.finish()?;
        if let Some((_, name)) = given.iter().find(|(n, _)| *n == "name") {
            if name_taken(&model, &open, name, Some(id)) {
                return Err(CommandError::failure(
                    "controller with the same name already exists",
                ));
            }
        }
        let pairs: Vec<(&str, &str)> = given.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let patch = network_patch_from_properties(&pairs).map_err(model_error)?;
        let nwid = parse_nwid(&row.network, "network")?;
        let controller = daemon.controller_for(&mut model, row.instance).await?;
        let now = daemon.clock.now();
        let (_, pushes) = controller
            .lock()
            .update_network(now as i64, nwid, &patch)
            .map_err(controller_error)?;
        daemon
            .send_pushes(&model, row.instance, controller, nwid, pushes)
            .await;
        Ok(())
    }

    async fn remove(&self, daemon: &Daemon, id: ItemId) -> Result<(), CommandError> {
        let mut model = daemon.lock().await;
        daemon.controllers_synced(&mut model).await?;
        let row = model
            .controllers
            .networks
            .get(id)
            .cloned()
            .ok_or(CommandError::NoSuchItem)?;
        let nwid = parse_nwid(&row.network, "network")?;
        let controller = daemon.controller_for(&mut model, row.instance).await?;
        let now = daemon.clock.now() as i64;
        // Members that had access lose it: their COMs are revoked as on deauthorization.
        let revocations: Vec<Pushes> = {
            let mut ctl = controller.lock();
            let online = ctl.online_members(now, nwid).map_err(storage_error)?;
            let members = ctl.members(nwid).map_err(storage_error)?;
            ctl.delete_network(nwid).map_err(storage_error)?;
            members
                .iter()
                .filter(|m| m.is_admitted())
                .map(|m| Pushes {
                    config_to: Vec::new(),
                    revocation: Some(RevocationPlan {
                        network_id: nwid,
                        target: m.address,
                        threshold: now,
                        recipients: online.clone(),
                    }),
                })
                .collect()
        };
        for pushes in revocations {
            daemon
                .send_pushes(&model, row.instance, controller.clone(), nwid, pushes)
                .await;
        }
        daemon.controllers_synced(&mut model).await?;
        Ok(())
    }
}
