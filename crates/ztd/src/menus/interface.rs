//! `/zerotier/interface`: joined networks, each a TAP interface (ROUTEROS.md, schema
//! `ZEROTIER_INTERFACE`).
//!
//! Properties: `name` (default `zerotier1`, `zerotier2`, …; also the TAP's name), `network`
//! (16 hex digits, required), `instance` (`zt1`), `allow-managed` (yes), `allow-global` (no),
//! `allow-default` (no), `arp-timeout` (`auto` or a time), `disable-running-check` (no),
//! `disabled`, `comment`, `copy-from`; read-only `mac-address`, `network-name`, `status`,
//! `type`, `mtu`, `running`, `dynamic`, `bridge`, `dhcp`. The table is `interfaces.json`;
//! the port runtime is [`crate::networks::Port`].
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zt_node::NetworkStatus;
use zt_wire::netconf::NetworkType;
use zt_wire::network_id::NetworkId;

use crate::daemon::{Daemon, Model};
use crate::menu::{bool_text, Args, CommandError, Menu, Record, COPY_FROM};
use crate::model::{ItemId, Table, TableError};
use crate::networks::{AllowSettings, Port, PortSettings};
use crate::state_dir::StateDir;

const INTERFACES_FILE: &str = "interfaces.json";
const DEFAULT_NAME_PREFIX: &str = "zerotier";

/// One configured interface, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceConfig {
    pub name: String,
    /// The network ID, 16 lower-case hex digits.
    pub network: String,
    pub instance: String,
    pub allow_managed: bool,
    pub allow_global: bool,
    pub allow_default: bool,
    /// The pushed DNS on the interface (zerotier-one's `allowDNS`; off by default).
    #[serde(default)]
    pub allow_dns: bool,
    /// Seconds; `None` is `auto` (the kernel's default reachable time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_timeout: Option<u32>,
    pub disable_running_check: bool,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl InterfaceConfig {
    fn nwid(&self) -> Option<NetworkId> {
        self.network.parse().ok()
    }

    fn allow(&self) -> AllowSettings {
        AllowSettings {
            managed: self.allow_managed,
            global: self.allow_global,
            default_route: self.allow_default,
            dns: self.allow_dns,
        }
    }

    /// Apply `add`/`set` arguments, checked by the schema already.
    fn apply(&mut self, mut args: Args) -> Result<(), CommandError> {
        if let Some(name) = args.take_text("name")? {
            // The schema limits the length; the OS also wants printable ASCII.
            if !crate::os::tap::valid_interface_name(&name) {
                return Err(CommandError::invalid_value("name"));
            }
            self.name = name;
        }
        if let Some(network) = args.take_network_id("network")? {
            let network = network.ok_or_else(|| CommandError::invalid_value("network"))?;
            self.network = format!("{:016x}", network.0);
        }
        if let Some(instance) = args.take_text("instance")? {
            self.instance = instance;
        }
        if let Some(v) = args.take_bool("allow-managed")? {
            self.allow_managed = v;
        }
        if let Some(v) = args.take_bool("allow-global")? {
            self.allow_global = v;
        }
        if let Some(v) = args.take_bool("allow-default")? {
            self.allow_default = v;
        }
        if let Some(v) = args.take_bool("allow-dns")? {
            self.allow_dns = v;
        }
        if let Some(timeout) = args.take_auto_or_duration("arp-timeout")? {
            self.arp_timeout = match timeout {
                None => None,
                // Kept in whole seconds (the kernel's reachable time is set in them).
                Some(ms) if ms % 1000 == 0 => Some(
                    u32::try_from(ms / 1000)
                        .map_err(|_| CommandError::invalid_value("arp-timeout"))?,
                ),
                Some(_) => {
                    return Err(CommandError::refused(
                        "invalid value for argument arp-timeout: whole seconds only",
                    ))
                }
            };
        }
        if let Some(v) = args.take_bool("disable-running-check")? {
            self.disable_running_check = v;
        }
        if let Some(v) = args.take_bool("disabled")? {
            self.disabled = v;
        }
        if let Some(comment) = args.take_text("comment")? {
            self.comment = (!comment.is_empty()).then_some(comment);
        }
        args.finish()
    }
}

/// `/zerotier/interface` state: the table and the open ports.
#[derive(Default)]
pub struct Interfaces {
    pub table: Table<InterfaceConfig>,
    pub(crate) ports: HashMap<ItemId, Arc<Port>>,
    /// Why an enabled interface has no port (TAP creation failed, instance not running).
    pub(crate) errors: HashMap<ItemId, String>,
}

impl Interfaces {
    pub fn load(state: &StateDir) -> Result<Interfaces, TableError> {
        let table = Table::load(&state.file(INTERFACES_FILE))?.unwrap_or_default();
        Ok(Interfaces {
            table,
            ..Interfaces::default()
        })
    }
}

impl Daemon {
    fn save_interfaces(&self, model: &Model) -> Result<(), CommandError> {
        model
            .interfaces
            .table
            .save(&self.state.file(INTERFACES_FILE))
            .map_err(|e| CommandError::Internal(e.to_string()))
    }

    /// Open the ports of every enabled interface of instance `instance_id` (at its start).
    pub(crate) async fn open_interfaces_of(&self, model: &mut Model, instance_id: ItemId) {
        let Some(instance) = model.instances.get(instance_id).map(|c| c.name.clone()) else {
            return;
        };
        let ids: Vec<ItemId> = model
            .interfaces
            .table
            .iter()
            .filter(|(_, c)| c.instance == instance && !c.disabled)
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            self.open_port(model, id).await;
        }
    }

    async fn open_port(&self, model: &mut Model, id: ItemId) {
        let Some(config) = model.interfaces.table.get(id).cloned() else {
            return;
        };
        model.interfaces.errors.remove(&id);
        let Some(nwid) = config.nwid() else { return };
        let Some(instance_id) = model.instance_by_name(&config.instance) else {
            model
                .interfaces
                .errors
                .insert(id, format!("no instance {}", config.instance));
            return;
        };
        let route_distance = model
            .instances
            .get(instance_id)
            .map_or(1, |c| c.route_distance);
        let (Some(runtime), Some(identity)) = (
            model.runtimes.get(&instance_id),
            model.identities.get(&instance_id),
        ) else {
            model
                .interfaces
                .errors
                .insert(id, "instance is not running".into());
            return;
        };
        let Ok(own) = identity.address.parse::<zt_crypto::Address>() else {
            return;
        };
        let instance_dir = match self.state.instance_dir(&config.instance) {
            Ok(dir) => dir,
            Err(e) => {
                model.interfaces.errors.insert(id, e.to_string());
                return;
            }
        };
        let settings = PortSettings {
            nwid,
            interface: config.name.clone(),
            allow: config.allow(),
            arp_timeout_ms: config.arp_timeout.map(|s| u64::from(s) * 1000),
            route_distance,
            instance_dir,
            own,
        };
        let (port, error) = Port::open(runtime, settings).await;
        if let Some(port) = port {
            model.interfaces.ports.insert(id, port);
        }
        if let Some(error) = error {
            tracing::warn!(interface = %config.name, %error, "interface not opened");
            model.interfaces.errors.insert(id, error);
        }
    }

    async fn close_port(&self, model: &mut Model, id: ItemId, config: &InterfaceConfig) {
        model.interfaces.errors.remove(&id);
        let Some(port) = model.interfaces.ports.remove(&id) else {
            // Joined with a port error, or not running: still leave.
            if let (Some(nwid), Some(instance_id)) =
                (config.nwid(), model.instance_by_name(&config.instance))
            {
                if let Some(runtime) = model.runtimes.get(&instance_id) {
                    let _ = runtime.handle().leave(nwid).await;
                }
            }
            return;
        };
        let instance_id = model.instance_by_name(&config.instance);
        let runtime = instance_id.and_then(|i| model.runtimes.get(&i));
        let dir = self
            .state
            .instance_dir(&config.instance)
            .unwrap_or_else(|_| self.state.root().join(&config.instance));
        port.leave(runtime, &dir).await;
    }

    fn next_default_interface_name(model: &Model) -> String {
        (1..)
            .map(|n| format!("{DEFAULT_NAME_PREFIX}{n}"))
            .find(|n| !model.interfaces.table.iter().any(|(_, c)| &c.name == n))
            .unwrap_or_default()
    }

    fn check_interface(
        model: &Model,
        id: Option<ItemId>,
        c: &InterfaceConfig,
    ) -> Result<(), CommandError> {
        if c.network.is_empty() {
            return Err(CommandError::refused(
                "missing value(s) of argument(s) network",
            ));
        }
        if model.instance_by_name(&c.instance).is_none() {
            return Err(CommandError::invalid_value("instance"));
        }
        for (other, o) in model.interfaces.table.iter() {
            if Some(other) == id {
                continue;
            }
            if o.name == c.name {
                return Err(CommandError::failure("interface with such name exists"));
            }
            if o.network == c.network && o.instance == c.instance {
                return Err(CommandError::failure(
                    "network is already joined on this instance",
                ));
            }
        }
        Ok(())
    }

    pub async fn interface_add(&self, mut args: Args) -> Result<ItemId, CommandError> {
        let mut model = self.lock().await;
        let mut config = match args.take_text(COPY_FROM)? {
            Some(from) => {
                let source = model
                    .interfaces
                    .table
                    .iter()
                    .find(|(id, c)| c.name == from || id.to_string() == from)
                    .map(|(_, c)| c.clone())
                    .ok_or_else(|| CommandError::invalid_value("copy-from"))?;
                let mut copy = source;
                copy.name = Daemon::next_default_interface_name(&model);
                copy
            }
            None => InterfaceConfig {
                name: Daemon::next_default_interface_name(&model),
                network: String::new(),
                instance: crate::instances::DEFAULT_INSTANCE_NAME.into(),
                allow_managed: true,
                allow_global: false,
                allow_default: false,
                allow_dns: false,
                arp_timeout: None,
                disable_running_check: false,
                disabled: false,
                comment: None,
            },
        };
        config.apply(args)?;
        Daemon::check_interface(&model, None, &config)?;
        let id = model.interfaces.table.insert(config.clone());
        if let Err(e) = self.save_interfaces(&model) {
            model.interfaces.table.remove(id);
            return Err(e);
        }
        if !config.disabled {
            self.open_port(&mut model, id).await;
        }
        Ok(id)
    }

    pub async fn interface_set(&self, id: ItemId, args: Args) -> Result<(), CommandError> {
        let mut model = self.lock().await;
        let old = model
            .interfaces
            .table
            .get(id)
            .cloned()
            .ok_or(CommandError::NoSuchItem)?;
        let mut new = old.clone();
        new.apply(args)?;
        Daemon::check_interface(&model, Some(id), &new)?;
        if let Some(row) = model.interfaces.table.get_mut(id) {
            *row = new.clone();
        }
        if let Err(e) = self.save_interfaces(&model) {
            if let Some(row) = model.interfaces.table.get_mut(id) {
                *row = old;
            }
            return Err(e);
        }
        let reopen = old.name != new.name
            || old.network != new.network
            || old.instance != new.instance
            || old.arp_timeout != new.arp_timeout
            || old.disabled != new.disabled;
        if reopen {
            self.close_port(&mut model, id, &old).await;
            if !new.disabled {
                self.open_port(&mut model, id).await;
            }
        } else if old.allow() != new.allow() {
            let port = model.interfaces.ports.get(&id).cloned();
            let runtime = model
                .instance_by_name(&new.instance)
                .and_then(|i| model.runtimes.get(&i));
            if let (Some(port), Some(runtime)) = (port, runtime) {
                port.set_allow(runtime, new.allow()).await;
            }
        }
        Ok(())
    }

    pub async fn interface_remove(&self, id: ItemId) -> Result<(), CommandError> {
        let mut model = self.lock().await;
        let config = model
            .interfaces
            .table
            .remove(id)
            .ok_or(CommandError::NoSuchItem)?;
        if let Err(e) = self.save_interfaces(&model) {
            model.interfaces.table = {
                let mut t = model.interfaces.table.clone();
                // Put it back; ids are never reused so the old one cannot be restored in
                // place, but nothing was changed on disk either.
                t.insert(config);
                t
            };
            return Err(e);
        }
        self.close_port(&mut model, id, &config).await;
        Ok(())
    }

    pub async fn interface_records(&self) -> Vec<Record> {
        let model = self.lock().await;
        model
            .interfaces
            .table
            .iter()
            .map(|(id, c)| interface_record(&model, id, c))
            .collect()
    }
}

/// Move the routes of instance `instance`'s open ports to `distance`.
pub(crate) async fn set_route_distance_of(model: &Model, instance: &str, distance: u8) {
    for (id, _) in model
        .interfaces
        .table
        .iter()
        .filter(|(_, c)| c.instance == instance)
    {
        if let Some(port) = model.interfaces.ports.get(&id) {
            port.set_route_distance(distance).await;
        }
    }
}

/// Close the ports of instance `instance_id` (it is stopping); the node goes with it.
pub(crate) fn close_interfaces_of(model: &mut Model, instance_id: ItemId) {
    let Some(instance) = model.instances.get(instance_id).map(|c| c.name.clone()) else {
        return;
    };
    let ids: Vec<ItemId> = model
        .interfaces
        .table
        .iter()
        .filter(|(_, c)| c.instance == instance)
        .map(|(id, _)| id)
        .collect();
    for id in ids {
        if let Some(port) = model.interfaces.ports.remove(&id) {
            port.close();
        }
    }
}

fn interface_record(model: &Model, id: ItemId, c: &InterfaceConfig) -> Record {
    let mut r = Record::new();
    r.insert(".id".into(), id.to_string());
    r.insert("name".into(), c.name.clone());
    r.insert("network".into(), c.network.clone());
    r.insert("instance".into(), c.instance.clone());
    r.insert("allow-managed".into(), bool_text(c.allow_managed));
    r.insert("allow-global".into(), bool_text(c.allow_global));
    r.insert("allow-default".into(), bool_text(c.allow_default));
    r.insert("allow-dns".into(), bool_text(c.allow_dns));
    r.insert(
        "arp-timeout".into(),
        c.arp_timeout.map_or("auto".into(), |s| {
            zt_console::format_duration_ms(u64::from(s) * 1000)
        }),
    );
    r.insert(
        "disable-running-check".into(),
        bool_text(c.disable_running_check),
    );
    r.insert("disabled".into(), bool_text(c.disabled));
    r.insert("dynamic".into(), bool_text(false));
    r.insert("bridge".into(), bool_text(false));
    r.insert("dhcp".into(), bool_text(false));
    if let Some(comment) = &c.comment {
        r.insert("comment".into(), comment.clone());
    }
    match model.interfaces.ports.get(&id) {
        Some(port) => {
            let view = port.view();
            r.insert("mac-address".into(), view.mac.to_string().to_uppercase());
            r.insert("mtu".into(), view.mtu.to_string());
            if !view.network_name.is_empty() {
                r.insert("network-name".into(), view.network_name.clone());
            }
            if let Some(status) = view.status {
                r.insert("status".into(), status.name().into());
            }
            if let Some(t) = view.network_type {
                let text = match t {
                    NetworkType::Private => "PRIVATE",
                    NetworkType::Public => "PUBLIC",
                };
                r.insert("type".into(), text.into());
            }
            // RouterOS's running for these interfaces: the TAP is up and the network is
            // OK (not while the controller refuses or has not answered), unless the check
            // is turned off.
            let network_ok = view.status == Some(NetworkStatus::Ok);
            let running = c.disable_running_check || (network_ok && port.running());
            r.insert("running".into(), bool_text(running && !c.disabled));
        }
        None => {
            r.insert("running".into(), bool_text(false));
            if model.interfaces.errors.contains_key(&id) && !c.disabled {
                r.insert("status".into(), "PORT_ERROR".into());
            }
        }
    }
    r
}

pub struct InterfaceMenu;

#[async_trait]
impl Menu for InterfaceMenu {
    fn path(&self) -> &'static str {
        "zerotier/interface"
    }
    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        Ok(daemon.interface_records().await)
    }
    async fn add(&self, daemon: &Daemon, args: Args) -> Result<ItemId, CommandError> {
        daemon.interface_add(args).await
    }
    async fn set(&self, daemon: &Daemon, id: ItemId, args: Args) -> Result<(), CommandError> {
        daemon.interface_set(id, args).await
    }
    async fn remove(&self, daemon: &Daemon, id: ItemId) -> Result<(), CommandError> {
        daemon.interface_remove(id).await
    }
}
