//! `/zerotier/controller`: the networks the instances' controllers serve (ROUTEROS.md §8.3).
//!
//! Properties: `instance` (default `zt1`), `name` (mandatory, unique: members refer to their
//! network by it), `network` (16 hex; when omitted: the instance address + 24 random bits),
//! `private` (yes), `broadcast` (yes), `mtu` (2800), `multicast-limit` (32), `ip-range`,
//! `ip6-range`, `ip6-rfc4193` (no), `ip6-6plane` (no), `routes`, `rules` (flow rules in
//! ZeroTier's rules language; empty is accept-all), `comment`, `disabled`;
//! `copy-from` on `add` starts from another item's settings; read-only `inactive` (the
//! network id is not this instance's, or the instance is not running). Values are parsed by
//! `zt_controller::props`, so the console, REST and the JSON API validate alike; a refused
//! change writes nothing. Changes go through the instance's controller service, which pushes
//! and revokes as for every other face. Adding or renaming holds the daemon's controller-names
//! lock (not its model lock) across the database work, so names stay unique.
use async_trait::async_trait;
use zt_controller::props::{network_patch_from_properties, network_properties};
use zt_controller::{ControllerError, ModelError, Network};

use crate::controller::{find_network_item, parse_nwid, service_error, NetworkItem};
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
    "rules",
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

/// Take the given network properties out of `args`, in menu order.
fn take_properties(args: &mut Args) -> Vec<(&'static str, String)> {
    NETWORK_PROPERTIES
        .iter()
        .filter_map(|&name| args.take(name).map(|v| (name, v)))
        .collect()
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
            .take("instance")
            .unwrap_or_else(|| DEFAULT_INSTANCE_NAME.to_string());
        let instance = daemon
            .lock()
            .await
            .instance_by_name(&instance_name)
            .ok_or_else(|| CommandError::invalid_value("instance"))?;
        let nwid = args
            .take("network")
            .map(|text| parse_nwid(&text, "network"))
            .transpose()?;
        let mut props: Vec<(&'static str, String)> = Vec::new();
        if let Some(selector) = args.take("copy-from") {
            let source = find_network_item(&networks, &selector)
                .ok_or_else(|| CommandError::invalid_value("copy-from"))?;
            props.extend(
                network_properties(&source.network)
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
        if name_taken(&networks, &name, None) {
            return Err(CommandError::failure(
                "controller with the same name already exists",
            ));
        }
        props.extend(given);
        let pairs: Vec<(&str, &str)> = props.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let patch = network_patch_from_properties(&pairs).map_err(model_error)?;
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
            if name_taken(&networks, name, Some(id)) {
                return Err(CommandError::failure(
                    "controller with the same name already exists",
                ));
            }
        }
        let pairs: Vec<(&str, &str)> = given.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let patch = network_patch_from_properties(&pairs).map_err(model_error)?;
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
