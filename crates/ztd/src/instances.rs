//! `/zerotier`: ZeroTier instances, each one node with its own identity and UDP ports.
//!
//! Properties (ROUTEROS.md §8.1): `name` (default `zt1`), `port` (9993), `disabled`,
//! `interfaces` (default `all`), `route-distance` (1), `comment`; read-only
//! `identity.public`, `online`, `state`. `identity` is the secret identity string
//! (`addr:0:pub:priv`), shown only by `print show-sensitive` (so `export show-sensitive`
//! carries it); setting it imports that identity (checked: key pair and address derivation)
//! in place of the generated one. Our additions: `secondary-port`
//! (PROTOCOL.md §9.1; random when unset); `port-mapping` (zerotier-one's
//! `portMappingEnabled`: bind a third UDP port, random like the secondary, ask the gateway
//! by NAT-PMP or UPnP-IGD to forward it, and tell peers the mapped address; `yes` by
//! default, so listed only when `no`; read-only `tertiary-port` and `mapped-address` show
//! the port and the gateway's address while the instance runs); and `tcp-relay`
//! (a TCP port: the instance also serves as a TCP relay there, as ZeroTier's own relays do
//! on 443, for nodes whose UDP is blocked; empty: off; a change restarts the instance, like
//! a port change). Read-only `tcp-fallback` is RouterOS's flag `F`: the instance reaches
//! the network through a TCP relay because it receives no UDP. The default instance `zt1`
//! exists from the first start, carries ZeroTier Central's comment and is disabled until
//! enabled, as on RouterOS;
//! it cannot be removed (RouterOS behaviour not verified; keeps the default item stable).
use std::collections::HashMap;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zt_crypto::Identity;

use crate::daemon::{Daemon, Model};
use crate::identity_store::{self, PublicIdentityText};
use crate::menu::{bool_text, Args, CommandError, Record};
use crate::model::{ItemId, Table, TableError};
use crate::runtime::driver::InstanceRuntime;
use crate::runtime::engine::PortRole;
use crate::runtime::engine::{EngineStart, LocalSocket};
use crate::runtime::sockets::{bind_port, bind_random_port};
use crate::runtime::tcp_relay::TcpRelay;
use crate::state_dir::StateDir;

pub const DEFAULT_INSTANCE_NAME: &str = "zt1";
pub const DEFAULT_PORT: u16 = 9993;
pub const DEFAULT_ROUTE_DISTANCE: u8 = 1;
pub const DEFAULT_INTERFACES: &str = "all";
pub const DEFAULT_COMMENT: &str = "ZeroTier Central controller - https://my.zerotier.com/";
const INSTANCES_FILE: &str = "instances.json";
/// How long `print` waits for an engine's status.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// One configured instance, as persisted in `instances.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub name: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_port: Option<u16>,
    pub disabled: bool,
    /// The TCP port the instance's relay listens on; `None`: no relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_relay: Option<u16>,
    pub interfaces: Vec<String>,
    pub route_distance: u8,
    /// Absent in files written before the property existed: on, as in zerotier-one.
    #[serde(default = "port_mapping_default")]
    pub port_mapping: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The factory default item (`zt1`): cannot be removed.
    #[serde(default)]
    pub default: bool,
}

impl InstanceConfig {
    /// The factory default `zt1`.
    pub fn factory_default() -> InstanceConfig {
        InstanceConfig {
            name: DEFAULT_INSTANCE_NAME.into(),
            port: DEFAULT_PORT,
            secondary_port: None,
            disabled: true,
            tcp_relay: None,
            interfaces: vec![DEFAULT_INTERFACES.into()],
            route_distance: DEFAULT_ROUTE_DISTANCE,
            port_mapping: port_mapping_default(),
            comment: Some(DEFAULT_COMMENT.into()),
            default: true,
        }
    }

    /// Apply `set`/`add` arguments, checked by the schema already (ranges, names). Properties
    /// the menu does not take are refused.
    fn apply(&mut self, mut args: Args) -> Result<(), CommandError> {
        if let Some(name) = args.take_text("name")? {
            self.name = name;
        }
        if let Some(port) = args.take_number("port")? {
            self.port = port;
        }
        if let Some(port) = args.take_optional_number("secondary-port")? {
            self.secondary_port = port;
        }
        if let Some(port) = args.take_optional_number("tcp-relay")? {
            self.tcp_relay = port;
        }
        if let Some(disabled) = args.take_bool("disabled")? {
            self.disabled = disabled;
        }
        if let Some(list) = args.take_words("interfaces")? {
            if list.is_empty() {
                return Err(CommandError::invalid_value("interfaces"));
            }
            self.interfaces = list;
        }
        if let Some(distance) = args.take_number("route-distance")? {
            self.route_distance = distance;
        }
        if let Some(on) = args.take_bool("port-mapping")? {
            self.port_mapping = on;
        }
        if let Some(comment) = args.take_text("comment")? {
            self.comment = (!comment.is_empty()).then_some(comment);
        }
        args.finish()
    }

    /// Ports this instance claims in its configuration.
    fn configured_ports(&self) -> impl Iterator<Item = u16> {
        std::iter::once(self.port).chain(self.secondary_port)
    }
}

fn port_mapping_default() -> bool {
    true
}

/// Load `instances.json`, creating it with the factory default on first start, plus the
/// identities already on disk.
pub(crate) fn load(
    state: &StateDir,
) -> Result<(Table<InstanceConfig>, HashMap<ItemId, PublicIdentityText>), TableError> {
    let path = state.file(INSTANCES_FILE);
    let table = match Table::load(&path)? {
        Some(table) => table,
        None => {
            let mut table = Table::default();
            table.insert(InstanceConfig::factory_default());
            table.save(&path)?;
            table
        }
    };
    let mut identities = HashMap::new();
    for (id, config) in table.iter() {
        if let Some(shown) = identity_store::read_public(&state.root().join(&config.name))? {
            identities.insert(id, shown);
        }
    }
    Ok((table, identities))
}

impl Daemon {
    fn save_instances(&self, model: &Model) -> Result<(), CommandError> {
        model
            .instances
            .save(&self.state.file(INSTANCES_FILE))
            .map_err(|e| CommandError::Internal(e.to_string()))
    }

    /// Refuse a configuration that clashes with another instance (name, ports).
    fn check_conflicts(
        model: &Model,
        id: Option<ItemId>,
        config: &InstanceConfig,
    ) -> Result<(), CommandError> {
        for (other_id, other) in model.instances.iter() {
            if Some(other_id) == id {
                continue;
            }
            if other.name == config.name {
                return Err(CommandError::failure(format!(
                    "instance with name {} already exists",
                    config.name
                )));
            }
            if config.tcp_relay.is_some() && other.tcp_relay == config.tcp_relay {
                return Err(CommandError::failure(format!(
                    "tcp-relay port {} already used by instance {}",
                    config.tcp_relay.unwrap_or_default(),
                    other.name
                )));
            }
            for port in config.configured_ports() {
                if other.configured_ports().any(|p| p == port) {
                    return Err(CommandError::failure(format!(
                        "port {port} already used by instance {}",
                        other.name
                    )));
                }
            }
        }
        if config.secondary_port == Some(config.port) {
            return Err(CommandError::failure(
                "secondary-port must differ from port",
            ));
        }
        Ok(())
    }

    /// Bring an instance up: identity (generated on first use), sockets, engine, driver.
    pub(crate) async fn start_instance(
        &self,
        model: &mut Model,
        id: ItemId,
        config: &InstanceConfig,
    ) -> Result<(), CommandError> {
        let dir = self
            .state
            .instance_dir(&config.name)
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        let (identity, shown) = identity_store::load_or_generate(&dir)
            .await
            .map_err(|e| CommandError::failure(e.to_string()))?;
        model.identities.insert(id, shown);

        let mut bound = bind_port(config.port, PortRole::Primary).map_err(CommandError::failure)?;
        let avoid: Vec<u16> = model
            .instances
            .iter()
            .flat_map(|(_, c)| c.configured_ports().collect::<Vec<_>>())
            .collect();
        bound.extend(
            bind_random_port(
                PortRole::Secondary,
                config.secondary_port,
                rand::random(),
                &avoid,
            )
            .map_err(CommandError::failure)?,
        );
        // zerotier-one binds the port it has the gateway forward only when it maps one, and
        // goes without the mapping when no port is free: it is an extra path, never a reason
        // not to start.
        if config.port_mapping {
            match bind_random_port(PortRole::Tertiary, None, rand::random(), &avoid) {
                Ok(sockets) => bound.extend(sockets),
                Err(error) => {
                    tracing::warn!(instance = %config.name, %error, "no port mapping")
                }
            }
        }

        let sockets: Vec<LocalSocket> = bound
            .iter()
            .enumerate()
            .map(|(i, b)| LocalSocket {
                id: crate::runtime::engine::LocalSocketId(i as u32),
                bound: b.bound,
                role: b.role,
            })
            .collect();
        let engine = self
            .engines
            .start(EngineStart {
                instance_name: config.name.clone(),
                interfaces: config.interfaces.clone(),
                identity,
                instance_dir: dir.clone(),
                home_worlds: config.default.then(|| self.state.root().to_path_buf()),
                sockets,
                port_mapping: config.port_mapping,
                now: self.clock.now(),
            })
            .map_err(CommandError::failure)?;
        let relay =
            match config.tcp_relay {
                Some(port) => Some(TcpRelay::start(port, config.name.clone()).await.map_err(
                    |e| {
                        CommandError::failure(format!(
                            "cannot listen on TCP port {port} for tcp-relay: {e}"
                        ))
                    },
                )?),
                None => None,
            };
        let mut runtime = InstanceRuntime::start(
            bound,
            engine,
            self.clock,
            config.name.clone(),
            self.tcp_fallback(),
        )
        .map_err(|e| CommandError::failure(format!("cannot register sockets: {e}")))?;
        if let Some(relay) = relay {
            runtime.attach_relay(relay);
        }
        // The instance's controller answers through this runtime.
        self.controller_registry
            .instance_started(&dir, runtime.handle());
        model.runtimes.insert(id, runtime);
        model.runtime_errors.remove(&id);
        self.open_interfaces_of(model, id).await;
        Ok(())
    }

    pub(crate) async fn stop_instance(model: &mut Model, id: ItemId) {
        crate::menus::interface::close_interfaces_of(model, id);
        if let Some(runtime) = model.runtimes.remove(&id) {
            runtime.stop().await;
        }
        model.runtime_errors.remove(&id);
    }

    /// Take and check an `identity=<secret identity>` argument (import of a known identity).
    async fn take_identity(args: &mut Args) -> Result<Option<Identity>, CommandError> {
        let Some(text) = args.take_text("identity")? else {
            return Ok(None);
        };
        identity_store::parse_secret(&text)
            .await
            .map(Some)
            .map_err(|reason| {
                // The reason names the faulty part, never the key itself.
                tracing::info!(%reason, "identity refused");
                CommandError::refused(format!("invalid value for argument identity: {reason}"))
            })
    }

    /// Write an imported identity into the instance directory, remembering what was there.
    fn install_identity(
        &self,
        model: &mut Model,
        id: ItemId,
        name: &str,
        identity: &Identity,
    ) -> Result<(PathBuf, identity_store::Snapshot), CommandError> {
        let internal = |e: String| CommandError::Internal(e);
        let dir = self
            .state
            .instance_dir(name)
            .map_err(|e| internal(e.to_string()))?;
        let snapshot = identity_store::snapshot(&dir).map_err(|e| internal(e.to_string()))?;
        let shown = identity_store::install(&dir, identity).map_err(|e| internal(e.to_string()))?;
        model.identities.insert(id, shown);
        Ok((dir, snapshot))
    }

    /// Undo [`Daemon::install_identity`].
    fn restore_identity(
        model: &mut Model,
        id: ItemId,
        dir: &Path,
        snapshot: &identity_store::Snapshot,
    ) {
        if let Err(e) = identity_store::restore(dir, snapshot) {
            tracing::error!(error = %e, "could not restore the previous identity files");
        }
        match identity_store::read_public(dir) {
            Ok(Some(shown)) => model.identities.insert(id, shown),
            _ => model.identities.remove(&id),
        };
    }

    /// `/zerotier/add`.
    pub async fn instance_add(&self, mut args: Args) -> Result<ItemId, CommandError> {
        let mut model = self.lock().await;
        let mut config = InstanceConfig {
            comment: None,
            default: false,
            disabled: false,
            ..InstanceConfig::factory_default()
        };
        config.name = (1..)
            .map(|n| format!("zt{n}"))
            .find(|n| !model.instances.iter().any(|(_, c)| &c.name == n))
            .unwrap_or_default();
        let import = Self::take_identity(&mut args).await?;
        config.apply(args)?;
        Self::check_conflicts(&model, None, &config)?;
        let id = model.instances.insert(config.clone());
        let installed = match &import {
            Some(identity) => match self.install_identity(&mut model, id, &config.name, identity) {
                Ok(installed) => Some(installed),
                Err(e) => {
                    model.instances.remove(id);
                    model.identities.remove(&id);
                    return Err(e);
                }
            },
            None => None,
        };
        let mut result = Ok(());
        if !config.disabled {
            result = self.start_instance(&mut model, id, &config).await;
        }
        if result.is_ok() {
            result = self.save_instances(&model);
            if result.is_err() {
                Self::stop_instance(&mut model, id).await;
            }
        }
        if let Err(e) = result {
            if let Some((dir, snapshot)) = &installed {
                Self::restore_identity(&mut model, id, dir, snapshot);
            }
            model.instances.remove(id);
            model.identities.remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    /// `/zerotier/set`. Either the whole change takes effect or nothing does: a running
    /// instance whose name, ports or identity change is restarted, and restored if the
    /// restart fails.
    pub async fn instance_set(&self, id: ItemId, mut args: Args) -> Result<(), CommandError> {
        let mut model = self.lock().await;
        let old = model
            .instances
            .get(id)
            .cloned()
            .ok_or(CommandError::NoSuchItem)?;
        let mut new = old.clone();
        let import = Self::take_identity(&mut args).await?;
        new.apply(args)?;
        Self::check_conflicts(&model, Some(id), &new)?;
        let running = model.runtimes.contains_key(&id);
        let rebind = new.port != old.port
            || new.secondary_port != old.secondary_port
            || new.port_mapping != old.port_mapping
            || new.name != old.name
            || new.tcp_relay != old.tcp_relay
            || import.is_some();
        let must_run = !new.disabled;
        if running && (!must_run || rebind) {
            Self::stop_instance(&mut model, id).await;
        }
        let start = must_run && (!running || rebind);
        if let Err(e) = self
            .change_instance(&mut model, id, &old, &new, import.as_ref(), start)
            .await
        {
            if running && !model.runtimes.contains_key(&id) {
                if let Err(again) = self.start_instance(&mut model, id, &old).await {
                    tracing::error!(instance = %old.name, error = %again, "could not restore the instance");
                    model.runtime_errors.insert(id, again.to_string());
                }
            }
            return Err(e);
        }
        // A running instance picks up a new `interfaces` list without a restart.
        if running && must_run && !rebind && new.interfaces != old.interfaces {
            if let Some(runtime) = model.runtimes.get(&id) {
                let applied = runtime
                    .handle()
                    .set_interfaces(new.interfaces.clone())
                    .await;
                if applied.is_err() {
                    tracing::warn!(instance = %new.name, "interfaces not applied: instance stopped");
                }
            }
        }
        let distance_changed = new.route_distance != old.route_distance;
        let (name, distance) = (new.name.clone(), new.route_distance);
        if let Some(slot) = model.instances.get_mut(id) {
            *slot = new;
        }
        self.save_instances(&model)?;
        // The routes the instance's interfaces installed move to the new distance now, not at
        // the next disable/enable (a restart above opened them with the old one, too).
        if distance_changed {
            crate::menus::interface::set_route_distance_of(&model, &name, distance).await;
        }
        Ok(())
    }

    /// The file and runtime steps of a `set` (rename the directory, install an imported
    /// identity, start); on failure the steps already taken are undone.
    async fn change_instance(
        &self,
        model: &mut Model,
        id: ItemId,
        old: &InstanceConfig,
        new: &InstanceConfig,
        import: Option<&Identity>,
        start: bool,
    ) -> Result<(), CommandError> {
        let renamed = new.name != old.name;
        let rename_back = |daemon: &Daemon| {
            if renamed {
                if let Err(e) = daemon.state.rename_instance_dir(&new.name, &old.name) {
                    tracing::error!(error = %e, "could not move the instance directory back");
                }
            }
        };
        if renamed {
            self.state
                .rename_instance_dir(&old.name, &new.name)
                .map_err(|e| CommandError::Internal(e.to_string()))?;
            // The controller reopens its database at the new path on next use.
            self.controller_registry
                .forget(&self.state.root().join(&old.name));
        }
        let installed = match import {
            Some(identity) => match self.install_identity(model, id, &new.name, identity) {
                Ok(installed) => Some(installed),
                Err(e) => {
                    rename_back(self);
                    return Err(e);
                }
            },
            None => None,
        };
        if start {
            if let Err(e) = self.start_instance(model, id, new).await {
                if let Some((dir, snapshot)) = &installed {
                    Self::restore_identity(model, id, dir, snapshot);
                }
                rename_back(self);
                return Err(e);
            }
        }
        Ok(())
    }

    /// `/zerotier/remove`: stops the instance and deletes its state (identity included).
    pub async fn instance_remove(&self, id: ItemId) -> Result<(), CommandError> {
        let mut model = self.lock().await;
        let config = model
            .instances
            .get(id)
            .cloned()
            .ok_or(CommandError::NoSuchItem)?;
        if config.default {
            return Err(CommandError::failure("default instance can not be removed"));
        }
        Self::stop_instance(&mut model, id).await;
        model.instances.remove(id);
        model.identities.remove(&id);
        self.save_instances(&model)?;
        // Its database goes with the directory; an instance made later under this name
        // starts a new one.
        self.controller_registry
            .forget(&self.state.root().join(&config.name));
        self.state
            .remove_instance_dir(&config.name)
            .map_err(|e| CommandError::Internal(e.to_string()))
    }

    /// `/zerotier/print show-sensitive`: [`Daemon::instance_records`] plus each instance's
    /// secret `identity`, which `set identity=` takes back (a backup restores the same node).
    pub async fn instance_records_with_secrets(&self) -> Result<Vec<Record>, CommandError> {
        let mut records = self.instance_records().await;
        for record in &mut records {
            let Some(name) = record.get("name") else {
                continue;
            };
            let dir = self.state.root().join(name);
            let secret = identity_store::read_secret_text(&dir)
                .map_err(|e| CommandError::Internal(e.to_string()))?;
            if let Some(secret) = secret {
                record.insert("identity".into(), secret);
            }
        }
        Ok(records)
    }

    /// `/zerotier/print`. The secret identity is left out (see
    /// [`Daemon::instance_records_with_secrets`]).
    pub async fn instance_records(&self) -> Vec<Record> {
        let model = self.lock().await;
        let mut records = Vec::with_capacity(model.instances.len());
        for (id, config) in model.instances.iter() {
            let mut r = Record::new();
            r.insert(".id".into(), id.to_string());
            r.insert("name".into(), config.name.clone());
            r.insert("port".into(), config.port.to_string());
            if let Some(port) = config.secondary_port {
                r.insert("secondary-port".into(), port.to_string());
            }
            r.insert("disabled".into(), bool_text(config.disabled));
            if let Some(port) = config.tcp_relay {
                r.insert("tcp-relay".into(), port.to_string());
            }
            r.insert("interfaces".into(), config.interfaces.join(","));
            r.insert("route-distance".into(), config.route_distance.to_string());
            if !config.port_mapping {
                r.insert("port-mapping".into(), bool_text(false));
            }
            if let Some(comment) = &config.comment {
                r.insert("comment".into(), comment.clone());
            }
            if let Some(shown) = model.identities.get(&id) {
                r.insert("identity.public".into(), shown.public.clone());
            }
            let online = match model.runtimes.get(&id) {
                Some(runtime) => {
                    // A note of an engine failure the instance was restarted after.
                    let state = match model.runtime_errors.get(&id) {
                        Some(note) => format!("running; {note}"),
                        None => "running".to_string(),
                    };
                    r.insert("state".into(), state);
                    r.insert(
                        "tcp-fallback".into(),
                        bool_text(runtime.tcp_fallback_active()),
                    );
                    let tertiary = runtime
                        .sockets()
                        .iter()
                        .find(|s| s.role == PortRole::Tertiary);
                    if let Some(socket) = tertiary {
                        r.insert("tertiary-port".into(), socket.bound.port().to_string());
                    }
                    // A stuck engine must not hang the management API: show it offline.
                    let handle = runtime.handle();
                    match tokio::time::timeout(STATUS_TIMEOUT, handle.status()).await {
                        Ok(Ok(status)) => {
                            // The planet in use: its world ID and its roots' addresses.
                            if let Some(node) = status.node {
                                let roots: Vec<String> =
                                    node.planet_roots.iter().map(|a| a.to_string()).collect();
                                r.insert("planet".into(), format!("{:016x}", node.planet_id));
                                r.insert("planet-roots".into(), roots.join(","));
                            }
                            if let Some(mapped) = status.engine.mapped {
                                r.insert("mapped-address".into(), mapped.to_string());
                            }
                            status.engine.online
                        }
                        _ => false,
                    }
                }
                None => {
                    if let Some(error) = model.runtime_errors.get(&id) {
                        r.insert("state".into(), error.clone());
                    }
                    false
                }
            };
            r.insert("online".into(), bool_text(online));
            records.push(r);
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> Args {
        Args::check_pairs("zerotier", pairs).unwrap()
    }

    #[test]
    fn apply_changes_nothing_on_error() {
        let mut c = InstanceConfig::factory_default();
        let before = c.clone();
        let mut copy = c.clone();
        let mut unknown = args(&[("port", "1234")]);
        unknown.insert("bogus", zt_console::values::Value::Text("x".into()));
        assert_eq!(
            copy.apply(unknown),
            Err(CommandError::Refused("unknown parameter bogus".into()))
        );
        // apply works on a copy in the daemon; the original is untouched by design
        assert_eq!(c, before);
        c.apply(args(&[
            ("port", "1234"),
            ("comment", ""),
            ("interfaces", "ether1,ether2"),
        ]))
        .unwrap();
        assert_eq!(c.port, 1234);
        assert_eq!(c.comment, None);
        assert_eq!(c.interfaces, vec!["ether1", "ether2"]);
    }

    #[test]
    fn tcp_relay_takes_a_port_and_is_cleared_by_an_empty_value() {
        let mut c = InstanceConfig::factory_default();
        assert_eq!(c.tcp_relay, None);
        c.apply(args(&[("tcp-relay", "443")])).unwrap();
        assert_eq!(c.tcp_relay, Some(443));
        for bad in ["0", "65536", "https"] {
            assert!(
                Args::check_pairs("zerotier", &[("tcp-relay", bad)]).is_err(),
                "{bad}"
            );
        }
        c.apply(args(&[("tcp-relay", "")])).unwrap();
        assert_eq!(c.tcp_relay, None);
    }

    #[test]
    fn read_only_properties_are_refused() {
        for p in [
            "identity.public",
            "online",
            "state",
            "tcp-fallback",
            "tertiary-port",
            "mapped-address",
            ".id",
        ] {
            assert_eq!(
                Args::check_pairs("zerotier", &[(p, "x")]),
                Err(CommandError::unknown_parameter(p))
            );
        }
    }

    #[test]
    fn names_that_could_escape_the_home_directory_are_refused() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "*1", "a b"] {
            assert!(
                Args::check_pairs("zerotier", &[("name", bad)]).is_err(),
                "{bad:?}"
            );
        }
        args(&[("name", "zt2")]);
    }
}
