//! The network controller of each instance (`/zerotier/controller`, PROTOCOL.md §7): a
//! [`zt_controller::Controller`] over SQLite at `<home>/<instance>/controller.db`, the glue
//! that answers the node's config requests and pushes changes, and the RouterOS item ids of
//! controller networks and members.
//!
//! ```text
//!   node Event::ConfigRequest ──> InstanceController::answer ──> Reply ──> send_reply(&mut Node)
//!   menus / JSON API ──> Controller::update_* ──> Pushes ──> InstanceController::outgoing
//!                                                   ──> send_outgoing(&mut Node) (driver task)
//! ```
//!
//! The controller state (networks, members, addresses) lives only in SQLite; what this module
//! adds is a table per menu mapping RouterOS ids (`*1`, `*2`) to (instance, network[, member]),
//! so ids stay stable across prints and restarts while members appear by themselves when a
//! node asks to join. The tables are brought in step with the databases before every print
//! ([`Controllers::sync`]).
//!
//! Locking: the model lock (tokio) orders management commands; each controller has its own
//! short std mutex, taken by commands and by the instance's driver task (config requests),
//! never across an `.await`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use zt_controller::controller::RevocationPlan;
use zt_controller::issue::{build_config, build_revocation};
use zt_controller::model::{format_network_id, parse_network_id};
use zt_controller::{Controller, Decision, NetworkId, Pushes, RequestMetadata, SqliteStorage};
use zt_crypto::{Address, Identity};
use zt_node::Event;
use zt_wire::dictionary::Dictionary;
use zt_wire::netconf::NetworkConfig;
use zt_wire::network_id::NetworkId as WireNetworkId;
use zt_wire::revocation::Revocation;
use zt_wire::verbs::error::ErrorCode;

use crate::daemon::{Daemon, Model};
use crate::menu::CommandError;
use crate::model::{ItemId, Table, TableError};
use crate::runtime::events::{EventHandler, InstanceInfo, Subsystem};
use crate::state_dir::StateDir;

/// The controller database inside an instance directory.
pub const DB_FILE: &str = "controller.db";
/// RouterOS ids of `/zerotier/controller` items.
const NETWORK_IDS_FILE: &str = "controller-ids.json";
/// RouterOS ids of `/zerotier/controller/member` items.
const MEMBER_IDS_FILE: &str = "controller-member-ids.json";

/// One `/zerotier/controller` item: a network of an instance's controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRef {
    /// The instance's item id (stable across renames).
    pub instance: ItemId,
    /// 16 hex digits.
    pub network: String,
}

/// One `/zerotier/controller/member` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRef {
    pub instance: ItemId,
    pub network: String,
    /// 10 hex digits.
    pub address: String,
}

/// The controller of one instance, shared by the management commands and the instance's
/// driver task.
pub struct InstanceController {
    identity: Identity,
    controller: Mutex<Controller<SqliteStorage>>,
}

/// What to answer a config request with.
#[derive(Debug)]
pub enum Reply {
    /// Send nothing (not our network, rate limited, or the config could not be built).
    Nothing,
    /// ERROR with this code.
    Error(ErrorCode),
    /// OK with this signed config.
    Config(Box<NetworkConfig>),
}

/// Something to send after an administrative change.
#[derive(Debug)]
pub enum Outgoing {
    /// An unsolicited NETWORK_CONFIG.
    Config {
        dest: Address,
        nwid: NetworkId,
        config: Box<NetworkConfig>,
    },
    /// NETWORK_CREDENTIALS with a COM revocation.
    Revocation {
        dest: Address,
        revocation: Box<Revocation>,
    },
}

impl InstanceController {
    /// Open (or create) the database at `<dir>/controller.db` for the instance `identity`.
    pub fn open(dir: &std::path::Path, identity: Identity) -> Result<InstanceController, String> {
        let storage = SqliteStorage::open(dir.join(DB_FILE)).map_err(|e| e.to_string())?;
        Ok(InstanceController {
            controller: Mutex::new(Controller::new(identity.address(), storage)),
            identity,
        })
    }

    /// Exclusive use of the controller (never held across an `.await`). A panic while it was
    /// held cannot leave SQLite half-written (each change is one transaction), so a poisoned
    /// lock is used as is.
    pub fn lock(&self) -> MutexGuard<'_, Controller<SqliteStorage>> {
        self.controller
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The controller node's address.
    pub fn address(&self) -> Address {
        self.identity.address()
    }

    /// Decide and build the answer to a NETWORK_CONFIG_REQUEST (`now` in engine ms, which
    /// reads like wall-clock ms).
    pub fn answer(
        &self,
        now: u64,
        requester: &Identity,
        nwid: NetworkId,
        metadata: &Dictionary,
    ) -> Reply {
        let metadata = RequestMetadata::from_dictionary(metadata);
        let decision = self
            .lock()
            .handle_config_request(now as i64, requester, nwid, &metadata);
        match decision {
            Ok(Decision::Config(data)) => match build_config(&data, &self.identity) {
                Ok(config) => Reply::Config(Box::new(config)),
                Err(error) => {
                    tracing::warn!(%error, member = %requester.address(), "config not issued");
                    Reply::Nothing
                }
            },
            Ok(Decision::NotFound) => Reply::Error(ErrorCode::ObjNotFound),
            Ok(Decision::AccessDenied) => Reply::Error(ErrorCode::NetworkAccessDenied),
            Ok(Decision::Ignore(_)) => Reply::Nothing,
            Err(error) => {
                // A database failure must not look like a refusal to the member: it retries.
                tracing::error!(%error, "controller database failed on a config request");
                Reply::Nothing
            }
        }
    }

    /// The packets `pushes` stands for: configs re-issued to online members, and the signed
    /// revocation to every recipient. `revocation_id` is random (the caller's RNG).
    pub fn outgoing(
        &self,
        now: u64,
        nwid: NetworkId,
        pushes: &Pushes,
        revocation_id: u32,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for &dest in &pushes.config_to {
            let data = self.lock().push_config(now as i64, nwid, dest);
            match data {
                Ok(Some(data)) => match build_config(&data, &self.identity) {
                    Ok(config) => out.push(Outgoing::Config {
                        dest,
                        nwid,
                        config: Box::new(config),
                    }),
                    Err(error) => tracing::warn!(%error, member = %dest, "push not issued"),
                },
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "controller database failed on a push"),
            }
        }
        if let Some(plan) = &pushes.revocation {
            out.extend(self.revocations(plan, revocation_id));
        }
        out
    }

    fn revocations(&self, plan: &RevocationPlan, revocation_id: u32) -> Vec<Outgoing> {
        match build_revocation(plan, revocation_id, &self.identity) {
            Ok(revocation) => plan
                .recipients
                .iter()
                .map(|&dest| Outgoing::Revocation {
                    dest,
                    revocation: Box::new(revocation.clone()),
                })
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "revocation not issued");
                Vec::new()
            }
        }
    }
}

/// Send a [`Reply`] to request `request_packet_id` from `dest` through the node.
pub fn send_reply(
    node: &mut zt_node::Node,
    now: u64,
    dest: Address,
    nwid: NetworkId,
    request_packet_id: u64,
    reply: Reply,
) {
    let wire_nwid = WireNetworkId(nwid);
    let sent = match reply {
        Reply::Nothing => Ok(()),
        Reply::Error(code) => {
            tracing::debug!(member = %dest, network = %format_network_id(nwid), ?code, "config request refused");
            node.send_network_error(now, dest, wire_nwid, request_packet_id, code)
        }
        Reply::Config(config) => {
            node.send_network_config(now, dest, wire_nwid, Some(request_packet_id), &config)
        }
    };
    if let Err(error) = sent {
        tracing::warn!(%error, member = %dest, "controller reply not sent");
    }
}

/// Send what an administrative change produced through the node.
pub fn send_outgoing(node: &mut zt_node::Node, now: u64, outgoing: Vec<Outgoing>) {
    for item in outgoing {
        let sent = match item {
            Outgoing::Config { dest, nwid, config } => {
                node.send_network_config(now, dest, WireNetworkId(nwid), None, &config)
            }
            Outgoing::Revocation { dest, revocation } => {
                node.send_revocation(now, dest, &revocation)
            }
        };
        if let Err(error) = sent {
            tracing::warn!(%error, "controller push not sent");
        }
    }
}

/// Answer one `Event::ConfigRequest` of `node` with `controller` (the whole hook).
pub fn handle_config_request(
    controller: &InstanceController,
    node: &mut zt_node::Node,
    now: u64,
    requester: &Identity,
    nwid: WireNetworkId,
    metadata: &Dictionary,
    request_packet_id: u64,
) {
    let reply = controller.answer(now, requester, nwid.0, metadata);
    send_reply(
        node,
        now,
        requester.address(),
        nwid.0,
        request_packet_id,
        reply,
    );
}

/// The open controllers, by instance directory. Shared by the management side and the
/// [`ControllerSubsystem`] handlers inside the driver tasks, so both use one connection.
#[derive(Default)]
pub struct ControllerRegistry {
    open: Mutex<HashMap<PathBuf, Arc<InstanceController>>>,
}

impl ControllerRegistry {
    /// The controller of the instance in `dir` with `identity`, opened on first use. A
    /// controller opened for another identity (the instance imported a new one) is replaced.
    pub fn open(&self, dir: &Path, identity: &Identity) -> Result<Arc<InstanceController>, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = open.get(dir) {
            // A removed and re-created instance directory needs a new database file.
            if existing.address() == identity.address() && dir.join(DB_FILE).exists() {
                return Ok(existing.clone());
            }
        }
        let opened = Arc::new(InstanceController::open(dir, identity.clone())?);
        open.insert(dir.to_path_buf(), opened.clone());
        Ok(opened)
    }

    /// The controller of `dir` if it is open.
    pub fn get(&self, dir: &Path) -> Option<Arc<InstanceController>> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(dir)
            .filter(|_| dir.join(DB_FILE).exists())
            .cloned()
    }

    /// Close the controller of `dir` (the instance was removed or renamed).
    pub fn forget(&self, dir: &Path) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(dir);
    }
}

/// The event subsystem that answers config requests for the networks an instance controls.
pub struct ControllerSubsystem {
    registry: Arc<ControllerRegistry>,
}

impl ControllerSubsystem {
    pub fn new(registry: Arc<ControllerRegistry>) -> ControllerSubsystem {
        ControllerSubsystem { registry }
    }
}

impl Subsystem for ControllerSubsystem {
    fn attach(&self, instance: &InstanceInfo) -> Option<Box<dyn EventHandler>> {
        Some(Box::new(ControllerHandler {
            registry: self.registry.clone(),
            dir: instance.dir.clone(),
        }))
    }
}

/// One instance's hook: `Event::ConfigRequest` → decision → OK/ERROR through the node.
struct ControllerHandler {
    registry: Arc<ControllerRegistry>,
    dir: PathBuf,
}

impl EventHandler for ControllerHandler {
    fn on_event(&mut self, node: &mut zt_node::Node, now: u64, event: &Event) {
        let Event::ConfigRequest {
            requester,
            nwid,
            metadata,
            request_packet_id,
        } = event
        else {
            return;
        };
        // Opened here on the first request when no command opened it yet (SQLite open is
        // quick; it happens once per instance start at most).
        let controller = match self.registry.open(&self.dir, node.identity()) {
            Ok(controller) => controller,
            Err(error) => {
                tracing::error!(%error, "controller database cannot be opened");
                return;
            }
        };
        handle_config_request(
            &controller,
            node,
            now,
            requester,
            *nwid,
            metadata,
            *request_packet_id,
        );
    }
}

/// The controllers of all instances and the RouterOS ids of their items.
pub struct Controllers {
    pub(crate) registry: Arc<ControllerRegistry>,
    pub(crate) networks: Table<NetworkRef>,
    pub(crate) members: Table<MemberRef>,
}

impl Controllers {
    /// Load the id tables (controllers are opened on first use).
    pub fn load(state: &StateDir) -> Result<Controllers, TableError> {
        Ok(Controllers {
            registry: Arc::default(),
            networks: Table::load(&state.file(NETWORK_IDS_FILE))?.unwrap_or_default(),
            members: Table::load(&state.file(MEMBER_IDS_FILE))?.unwrap_or_default(),
        })
    }

    fn save(&self, state: &StateDir) -> Result<(), CommandError> {
        let internal = |e: crate::state_dir::StateError| CommandError::Internal(e.to_string());
        self.networks
            .save(&state.file(NETWORK_IDS_FILE))
            .map_err(internal)?;
        self.members
            .save(&state.file(MEMBER_IDS_FILE))
            .map_err(internal)
    }

    /// Bring the id tables in step with the databases of `open` (instance id → controller):
    /// rows for networks and members that appeared (joins, the JSON API) are added, rows for
    /// vanished ones dropped. Rows of instances not in `open` are kept while the instance
    /// exists (`instances`).
    pub(crate) fn sync(
        &mut self,
        state: &StateDir,
        instances: &[ItemId],
        open: &[(ItemId, Arc<InstanceController>)],
    ) -> Result<(), CommandError> {
        let mut networks_now: Vec<(ItemId, String)> = Vec::new();
        let mut members_now: Vec<(ItemId, String, String)> = Vec::new();
        for (instance, controller) in open {
            let ctl = controller.lock();
            for nwid in ctl.network_ids().map_err(storage_error)? {
                let network = format_network_id(nwid);
                for m in ctl.members(nwid).map_err(storage_error)? {
                    members_now.push((*instance, network.clone(), m.address.to_string()));
                }
                networks_now.push((*instance, network));
            }
        }
        // Rows of an open controller must match its database; rows of a removed instance go.
        let authoritative = |instance: ItemId| {
            open.iter().any(|(i, _)| *i == instance) || !instances.contains(&instance)
        };
        let mut changed = false;
        for id in self.networks.ids() {
            let Some(row) = self.networks.get(id) else {
                continue;
            };
            if authoritative(row.instance)
                && !networks_now
                    .iter()
                    .any(|(i, n)| *i == row.instance && *n == row.network)
            {
                self.networks.remove(id);
                changed = true;
            }
        }
        for (instance, network) in networks_now {
            let known = self
                .networks
                .iter()
                .any(|(_, r)| r.instance == instance && r.network == network);
            if !known {
                self.networks.insert(NetworkRef { instance, network });
                changed = true;
            }
        }
        for id in self.members.ids() {
            let Some(row) = self.members.get(id) else {
                continue;
            };
            if authoritative(row.instance)
                && !members_now
                    .iter()
                    .any(|(i, n, a)| *i == row.instance && *n == row.network && *a == row.address)
            {
                self.members.remove(id);
                changed = true;
            }
        }
        for (instance, network, address) in members_now {
            let known = self.members.iter().any(|(_, r)| {
                r.instance == instance && r.network == network && r.address == address
            });
            if !known {
                self.members.insert(MemberRef {
                    instance,
                    network,
                    address,
                });
                changed = true;
            }
        }
        if changed {
            self.save(state)?;
        }
        Ok(())
    }
}

/// A database failure as a command error.
pub(crate) fn storage_error(e: zt_controller::StorageError) -> CommandError {
    CommandError::Internal(format!("controller database: {e}"))
}

/// Parse a network id given by an operator.
pub(crate) fn parse_nwid(text: &str, property: &str) -> Result<NetworkId, CommandError> {
    parse_network_id(&text.to_ascii_lowercase()).map_err(|_| CommandError::invalid_value(property))
}

impl Daemon {
    /// The subsystem to register with the node event dispatch (before instances start).
    pub async fn controller_subsystem(&self) -> Arc<ControllerSubsystem> {
        let model = self.lock().await;
        Arc::new(ControllerSubsystem::new(model.controllers.registry.clone()))
    }

    /// The controller of instance `id`, opened on first use (the instance's identity is
    /// generated if it has none yet, as enabling would).
    pub(crate) async fn controller_for(
        &self,
        model: &mut Model,
        id: ItemId,
    ) -> Result<Arc<InstanceController>, CommandError> {
        let name = model
            .instances
            .get(id)
            .map(|c| c.name.clone())
            .ok_or(CommandError::NoSuchItem)?;
        let dir = self
            .state
            .instance_dir(&name)
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        if let Some(open) = model.controllers.registry.get(&dir) {
            return Ok(open);
        }
        let (identity, shown) = crate::identity_store::load_or_generate(&dir)
            .await
            .map_err(|e| CommandError::failure(e.to_string()))?;
        model.identities.insert(id, shown);
        model
            .controllers
            .registry
            .open(&dir, &identity)
            .map_err(|e| CommandError::Internal(format!("controller database: {e}")))
    }

    /// Open the controllers of every instance that has an identity and sync the id tables;
    /// returns the open controllers by instance.
    pub(crate) async fn controllers_synced(
        &self,
        model: &mut Model,
    ) -> Result<Vec<(ItemId, Arc<InstanceController>)>, CommandError> {
        let mut open = Vec::new();
        for id in model.instances.ids() {
            if !model.identities.contains_key(&id) {
                continue;
            }
            open.push((id, self.controller_for(model, id).await?));
        }
        let instances = model.instances.ids();
        model.controllers.sync(&self.state, &instances, &open)?;
        Ok(open)
    }

    /// Send `pushes` for network `nwid` of instance `id` through its running node, if it
    /// runs (a stopped instance has no online members to tell).
    pub(crate) async fn send_pushes(
        &self,
        model: &Model,
        id: ItemId,
        controller: Arc<InstanceController>,
        nwid: NetworkId,
        pushes: Pushes,
    ) {
        if pushes == Pushes::default() {
            return;
        }
        let Some(runtime) = model.runtime(id) else {
            return;
        };
        let revocation_id: u32 = rand::random();
        let sent = runtime
            .with_node(move |node, now| {
                let outgoing = controller.outgoing(now, nwid, &pushes, revocation_id);
                send_outgoing(node, now, outgoing);
            })
            .await;
        if sent.is_err() {
            tracing::debug!("instance stopped before the controller push");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_controller::props::{member_patch_from_properties, network_patch_from_properties};

    /// identities[0] of `shared/interop/vectors.json`.
    const KNOWN_SECRET: &str = "3dd3377c70:0:b536662c7b3d61b5440d8dfc5f6e65b101ca3b6c32e8d3cafef52fd71786a264cf3ac90ce863a85a22ae6e93f2795e33f6af6731a126a5a7fdadd05808ca5533:18d7f229860de6a3220c19d51def3433e4e029c16760efdaf9f0c87437ffbf3149527de5d528174a6b64de837233cc4f5f123a3e809603c82096609c7a5e73fd";
    const NWID: u64 = 0x3dd3377c70a99e4b;

    fn controller(dir: &Path) -> Arc<InstanceController> {
        let identity = Identity::from_string(KNOWN_SECRET).unwrap();
        Arc::new(InstanceController::open(dir, identity).unwrap())
    }

    fn private_network(ctl: &InstanceController) {
        let patch = network_patch_from_properties(&[
            ("name", "ZT-private"),
            ("ip-range", "172.27.27.10-172.27.27.20"),
            ("routes", "172.27.27.0/24"),
        ])
        .unwrap();
        ctl.lock().create_network(0, NWID, &patch).unwrap();
    }

    #[test]
    fn answers_follow_the_controller_decision() {
        let tmp = tempfile::tempdir().unwrap();
        let ctl = controller(tmp.path());
        let member = Identity::generate(&mut rand_core::OsRng);
        let none = Dictionary::default();
        assert!(matches!(
            ctl.answer(1_000, &member, NWID, &none),
            Reply::Error(ErrorCode::ObjNotFound)
        ));
        private_network(&ctl);
        assert!(matches!(
            ctl.answer(3_000, &member, NWID, &none),
            Reply::Error(ErrorCode::NetworkAccessDenied)
        ));
        let authorize = member_patch_from_properties(&[("authorized", "yes")]).unwrap();
        let (_, pushes) = ctl
            .lock()
            .update_member(4_000, NWID, member.address(), &authorize)
            .unwrap();
        // The member asked a second ago: it is online and gets its config pushed, signed.
        let out = ctl.outgoing(4_000, NWID, &pushes, 7);
        let [Outgoing::Config { dest, config, .. }] = out.as_slice() else {
            panic!("expected one config push, got {out:?}");
        };
        assert_eq!(*dest, member.address());
        assert_eq!(config.static_ips.len(), 1);
        let Reply::Config(config) = ctl.answer(6_000, &member, NWID, &none) else {
            panic!("authorized member refused");
        };
        assert_eq!(config.issued_to, member.address());

        // Deauthorized: a revocation goes to every online member (here the member itself).
        let deauthorize = member_patch_from_properties(&[("authorized", "no")]).unwrap();
        let (_, pushes) = ctl
            .lock()
            .update_member(7_000, NWID, member.address(), &deauthorize)
            .unwrap();
        let out = ctl.outgoing(7_000, NWID, &pushes, 9);
        let [Outgoing::Revocation { dest, revocation }] = out.as_slice() else {
            panic!("expected one revocation, got {out:?}");
        };
        assert_eq!(*dest, member.address());
        assert_eq!(revocation.target, member.address());
        assert_eq!(revocation.id, 9);
    }

    #[test]
    fn menu_ids_are_stable_and_follow_the_databases() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path().join("home")).unwrap();
        std::fs::create_dir(tmp.path().join("zt1")).unwrap();
        let ctl = controller(&tmp.path().join("zt1"));
        let zt1 = ItemId(1);
        let open = vec![(zt1, ctl.clone())];
        let mut ids = Controllers::load(&state).unwrap();
        private_network(&ctl);
        let patch = member_patch_from_properties(&[]).unwrap();
        for address in [0x1111111111, 0x2222222222] {
            let address = Address::new(address).unwrap();
            ctl.lock().update_member(0, NWID, address, &patch).unwrap();
        }
        ids.sync(&state, &[zt1], &open).unwrap();
        let members: Vec<ItemId> = ids.members.ids();
        assert_eq!(members, [ItemId(1), ItemId(2)]);
        assert_eq!(ids.networks.ids(), [ItemId(1)]);

        // A member removed in the database loses its row; the other keeps its id, also
        // after a reload from disk.
        ctl.lock()
            .delete_member(0, NWID, Address::new(0x1111111111).unwrap())
            .unwrap();
        ids.sync(&state, &[zt1], &open).unwrap();
        let mut reloaded = Controllers::load(&state).unwrap();
        reloaded.sync(&state, &[zt1], &open).unwrap();
        assert_eq!(reloaded.members.ids(), [ItemId(2)]);
        assert_eq!(
            reloaded.members.get(ItemId(2)).unwrap().address,
            "2222222222"
        );

        // Rows of an existing instance whose controller is not open stay; rows of a removed
        // instance go.
        reloaded.sync(&state, &[zt1], &[]).unwrap();
        assert_eq!(reloaded.networks.ids(), [ItemId(1)]);
        reloaded.sync(&state, &[], &[]).unwrap();
        assert!(reloaded.networks.is_empty() && reloaded.members.is_empty());
    }
}
