//! The network controller of each instance (`/zerotier/controller`, PROTOCOL.md §7): a
//! [`zt_controller::Controller`] over SQLite at `<home>/<instance>/controller.db`, or over one
//! PostgreSQL database shared by several daemons ([`ControllerDb`]), owned by a
//! [`service::ControllerService`] off the packet path, and the RouterOS item ids of controller
//! networks and members.
//!
//! ```text
//!   node Event::ConfigRequest ──> ControllerHandler ──try_send──> ControllerService (own thread)
//!   menus / REST / JSON API ──> ControllerService::{update_*, delete_*, read}
//!   ControllerService: zt-controller answers / pushes, signed ──> the instance's node
//! ```
//!
//! The controller state (networks, members, addresses) lives only in SQLite; what this module
//! adds is a table per menu mapping RouterOS ids (`*1`, `*2`) to (instance, network[, member]),
//! so ids stay stable across prints and restarts while members appear by themselves when a
//! node asks to join. The tables are brought in step with snapshots of the databases before
//! every print ([`Controllers::sync`]).
//!
//! Locking: the id tables have their own lock (`Daemon::controllers`), which the controller
//! menus hold across their database work; they take the daemon's model lock only briefly,
//! after it. The databases belong to their services, so no lock is shared with the packet
//! path.
pub mod service;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::MutexGuard;

use serde::{Deserialize, Serialize};
use zt_controller::model::format_network_id;
use zt_controller::{Member, Network, NetworkId};
use zt_crypto::Identity;
use zt_node::Event;

use crate::daemon::{Daemon, Model};
use crate::menu::CommandError;
use crate::model::{ItemId, Table, TableError};
use crate::runtime::driver::InstanceHandle;
use crate::runtime::engine::EngineClock;
use crate::runtime::events::{EventHandler, InstanceInfo, Subsystem};
use crate::state_dir::StateDir;
use service::{
    postgres_opener, sqlite_opener, ConfigRequest, ControllerService, NodeRoute, ServiceError,
    ServiceOptions,
};

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

/// Where the controllers of this daemon keep networks and members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ControllerDb {
    /// `controller.db` in each instance's directory (the default).
    #[default]
    Sqlite,
    /// One PostgreSQL database (`postgresql://USER@HOST/DB`) for every instance's
    /// controller, shared with the other daemons that name it: each controller sees its own
    /// networks (by network ID), and daemons that run the same controller identity serve the
    /// same networks.
    Postgres(String),
}

/// For the log: the URL without its password.
impl std::fmt::Display for ControllerDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControllerDb::Sqlite => f.write_str("sqlite"),
            ControllerDb::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgresql", url));
                match rest.split_once('@') {
                    Some((user, host)) => {
                        let user = user.split_once(':').map_or(user, |(name, _)| name);
                        write!(f, "{scheme}://{user}@{host}")
                    }
                    None => f.write_str(url),
                }
            }
        }
    }
}

impl ControllerDb {
    /// `sqlite`, or a `postgresql://` / `postgres://` URL (as `--controller-db` takes it).
    pub fn parse(value: &str) -> Result<ControllerDb, String> {
        if value == "sqlite" {
            Ok(ControllerDb::Sqlite)
        } else if value.starts_with("postgresql://") || value.starts_with("postgres://") {
            Ok(ControllerDb::Postgres(value.to_string()))
        } else {
            Err("expected sqlite or a postgresql://USER@HOST/DB URL".into())
        }
    }
}

#[cfg(test)]
mod db_tests {
    use super::ControllerDb;

    #[test]
    fn the_logged_database_url_has_no_password() {
        let db = ControllerDb::parse("postgresql://zt:s3cret@db.example:5432/zt").unwrap();
        assert_eq!(db.to_string(), "postgresql://zt@db.example:5432/zt");
        let db = ControllerDb::parse("postgres://zt@%2Frun%2Fpostgresql/zt").unwrap();
        assert_eq!(db.to_string(), "postgres://zt@%2Frun%2Fpostgresql/zt");
        assert_eq!(ControllerDb::Sqlite.to_string(), "sqlite");
    }
}

/// The controller services, by instance directory. Shared by the management side and the
/// [`ControllerSubsystem`] handlers inside the driver tasks, so both use one service (one
/// database connection) per instance.
pub struct ControllerRegistry {
    clock: EngineClock,
    db: ControllerDb,
    open: Mutex<HashMap<PathBuf, ControllerService>>,
    /// The way to each instance's node, kept across controller re-opens and instance restarts.
    routes: Mutex<HashMap<PathBuf, Arc<NodeRoute>>>,
}

impl ControllerRegistry {
    pub fn new(clock: EngineClock, db: ControllerDb) -> ControllerRegistry {
        ControllerRegistry {
            clock,
            db,
            open: Mutex::default(),
            routes: Mutex::default(),
        }
    }

    /// The service of the instance in `dir` with `identity`, started on first use (the
    /// database is opened on the service's thread, so this never touches the disk). A
    /// service started for another identity (the instance imported a new one) is replaced.
    pub fn open(&self, dir: &Path, identity: &Identity) -> ControllerService {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = open.get(dir) {
            if existing.address() == identity.address() {
                return existing.clone();
            }
        }
        let (opener, feed_notifications) = match &self.db {
            ControllerDb::Sqlite => (sqlite_opener(dir.join(DB_FILE)), None),
            ControllerDb::Postgres(url) => (
                postgres_opener(url.clone(), identity.address()),
                Some(url.clone()),
            ),
        };
        let options = ServiceOptions {
            feed_notifications,
            ..ServiceOptions::default()
        };
        let started = ControllerService::start_with(
            identity.clone(),
            opener,
            self.route(dir),
            self.clock,
            options,
        );
        open.insert(dir.to_path_buf(), started.clone());
        started
    }

    /// Use `service` for the instance in `dir` (tests: a service over another storage).
    #[cfg(test)]
    pub(crate) fn install(&self, dir: &Path, service: ControllerService) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(dir.to_path_buf(), service);
    }

    /// The service of `dir` if it is open.
    pub fn get(&self, dir: &Path) -> Option<ControllerService> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(dir).cloned()
    }

    /// Every started service with its instance directory, in directory order.
    pub fn services(&self) -> Vec<(PathBuf, ControllerService)> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = open.iter().map(|(d, s)| (d.clone(), s.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The way to the node of the instance in `dir` (created empty on first use).
    pub fn route(&self, dir: &Path) -> Arc<NodeRoute> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.entry(dir.to_path_buf()).or_default().clone()
    }

    /// The instance in `dir` started: its controller sends through `handle`.
    pub fn instance_started(&self, dir: &Path, handle: InstanceHandle) {
        self.route(dir).attach(handle);
    }

    /// Close the controller of `dir` (the instance was removed or renamed): its service
    /// ends once no handler uses it, and a new directory at that path gets a new database.
    pub fn forget(&self, dir: &Path) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(dir);
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(dir);
    }
}

/// The event subsystem that hands config requests for the networks an instance controls to
/// its controller service.
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
            service: None,
        }))
    }
}

/// One instance's hook, inside its driver task: `Event::ConfigRequest` → the service's
/// queue, without waiting (a full queue drops the request; the member asks again).
struct ControllerHandler {
    registry: Arc<ControllerRegistry>,
    dir: PathBuf,
    /// Found on the first request after the instance started.
    service: Option<ControllerService>,
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
        let service = self
            .service
            .get_or_insert_with(|| self.registry.open(&self.dir, node.identity()));
        service.submit(ConfigRequest {
            received_at: now,
            requester: requester.clone(),
            nwid: nwid.0,
            metadata: metadata.clone(),
            request_packet_id: *request_packet_id,
        });
    }
}

/// What one controller holds, read in one go for a management command.
pub(crate) struct ControllerView {
    pub(crate) instance: ItemId,
    /// Every network, ascending, with whether this controller serves it and its members.
    pub(crate) networks: Vec<NetworkView>,
}

pub(crate) struct NetworkView {
    pub(crate) network: Network,
    /// Requests for it come to this controller (`nwid >> 24` is its address).
    pub(crate) serves: bool,
    /// Ascending by address.
    pub(crate) members: Vec<Member>,
}

impl ControllerView {
    /// Read everything `service` (the controller of `instance`) holds, on its thread.
    pub(crate) async fn read(
        instance: ItemId,
        service: &ControllerService,
    ) -> Result<ControllerView, ServiceError> {
        let networks = service
            .read(
                |ctl| -> Result<Vec<NetworkView>, zt_controller::StorageError> {
                    let mut networks = Vec::new();
                    for nwid in ctl.network_ids()? {
                        let Some(network) = ctl.network(nwid)? else {
                            continue;
                        };
                        networks.push(NetworkView {
                            serves: ctl.serves(nwid),
                            members: ctl.members(nwid)?,
                            network,
                        });
                    }
                    Ok(networks)
                },
            )
            .await??;
        Ok(ControllerView { instance, networks })
    }

    /// The network with these 16 hex digits.
    pub(crate) fn network(&self, network: &str) -> Option<&NetworkView> {
        let nwid = network.parse::<zt_wire::network_id::NetworkId>().ok()?;
        self.networks.iter().find(|n| n.network.id == nwid.0)
    }
}

/// The view of `instance` among `views`.
pub(crate) fn view_of(views: &[ControllerView], instance: ItemId) -> Option<&ControllerView> {
    views.iter().find(|v| v.instance == instance)
}

/// The controllers of all instances and the RouterOS ids of their items.
pub struct Controllers {
    pub(crate) networks: Table<NetworkRef>,
    pub(crate) members: Table<MemberRef>,
}

impl Controllers {
    /// Load the id tables. They only number what the databases hold, so a damaged table is
    /// set aside (`<file>.damaged`) and rebuilt from the databases on the next command, with
    /// new numbers, rather than stopping the daemon.
    pub fn load(state: &StateDir) -> Result<Controllers, TableError> {
        Ok(Controllers {
            networks: load_rebuildable(&state.file(NETWORK_IDS_FILE))?,
            members: load_rebuildable(&state.file(MEMBER_IDS_FILE))?,
        })
    }

    fn save(&self, state: &StateDir) -> Result<(), CommandError> {
        let internal = |e: crate::state_dir::StateError| CommandError::Internal(e.to_string());
        self.networks
            .save(&state.file(NETWORK_IDS_FILE))
            .map_err(internal)?;
        // Lists every member of every controller: private to the owner, as the database is.
        self.members
            .save_private(&state.file(MEMBER_IDS_FILE))
            .map_err(internal)
    }

    /// Bring the id tables in step with the controllers' contents `views` (read under
    /// the tables' lock, so never older than what the tables saw): rows for networks and members
    /// that appeared (joins, the JSON API) are added, rows for vanished ones dropped. Rows of
    /// instances without a view are kept while the instance exists (`instances`).
    pub(crate) fn sync(
        &mut self,
        state: &StateDir,
        instances: &[ItemId],
        views: &[ControllerView],
    ) -> Result<(), CommandError> {
        let mut networks_now: Vec<(ItemId, String)> = Vec::new();
        let mut members_now: Vec<(ItemId, String, String)> = Vec::new();
        for view in views {
            for n in &view.networks {
                let network = format_network_id(n.network.id);
                for m in &n.members {
                    members_now.push((view.instance, network.clone(), m.address.to_string()));
                }
                networks_now.push((view.instance, network));
            }
        }
        // Rows of an open controller must match its database; rows of a removed instance go.
        let authoritative =
            |instance: ItemId| view_of(views, instance).is_some() || !instances.contains(&instance);
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

/// The id table at `path`; empty if it does not exist, or if it is damaged (then the file is
/// renamed to `<file>.damaged` and a warning logged).
fn load_rebuildable<T: Serialize + serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Table<T>, TableError> {
    match Table::load(path) {
        Ok(table) => Ok(table.unwrap_or_default()),
        Err(TableError::Corrupt {
            path: shown,
            message,
        }) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".damaged");
            let aside = PathBuf::from(aside);
            std::fs::rename(path, &aside).map_err(|e| TableError::Corrupt {
                path: shown.clone(),
                message: format!("{message}; and it cannot be set aside: {e}"),
            })?;
            tracing::warn!(file = %shown, %message, kept_as = %aside.display(), "damaged RouterOS id table set aside; it is rebuilt from the controller databases, with new item numbers");
            Ok(Table::default())
        }
        Err(other) => Err(other),
    }
}

/// A controller service failure as a command error (validation errors are the menus' to
/// word, see `menus::controller::controller_error`).
pub(crate) fn service_error(e: ServiceError) -> CommandError {
    match e {
        ServiceError::Controller(e) => crate::menus::controller::controller_error(e),
        other => CommandError::Internal(other.to_string()),
    }
}

/// Parse a network id given by an operator.
pub(crate) fn parse_nwid(text: &str, property: &str) -> Result<NetworkId, CommandError> {
    text.parse::<zt_wire::network_id::NetworkId>()
        .map(|id| id.0)
        .map_err(|_| CommandError::invalid_value(property))
}

impl Daemon {
    /// The subsystem to register with the node event dispatch (before instances start).
    pub async fn controller_subsystem(&self) -> Arc<ControllerSubsystem> {
        Arc::new(ControllerSubsystem::new(self.controller_registry.clone()))
    }

    /// The controller of instance `id`, started on first use (the instance's identity is
    /// generated if it has none yet, as enabling would).
    pub(crate) async fn controller_for(
        &self,
        model: &mut Model,
        id: ItemId,
    ) -> Result<ControllerService, CommandError> {
        let name = model
            .instances
            .get(id)
            .map(|c| c.name.clone())
            .ok_or(CommandError::NoSuchItem)?;
        let dir = self
            .state
            .instance_dir(&name)
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        if let Some(open) = self.controller_registry.get(&dir) {
            return Ok(open);
        }
        let (identity, shown) = crate::identity_store::load_or_generate(&dir)
            .await
            .map_err(|e| CommandError::failure(e.to_string()))?;
        model.identities.insert(id, shown);
        Ok(self.controller_registry.open(&dir, &identity))
    }

    /// The controller of instance `id`, taking the model lock only to find it.
    pub(crate) async fn controller_of_instance(
        &self,
        id: ItemId,
    ) -> Result<ControllerService, CommandError> {
        let mut model = self.lock().await;
        self.controller_for(&mut model, id).await
    }

    /// The controllers' id tables, locked and in step with the databases, and what each
    /// controller holds. Hold the tables across the command's database work; the model
    /// lock is free meanwhile.
    pub(crate) async fn controllers_synced(
        &self,
    ) -> Result<(MutexGuard<'_, Controllers>, Vec<ControllerView>), CommandError> {
        let mut tables = self.controllers.lock().await;
        let views = self.sync_controllers(&mut tables).await?;
        Ok((tables, views))
    }

    /// Read the controllers of every instance that has an identity and sync `tables` (held
    /// by the caller); returns what each holds. The model is locked only to list the
    /// instances, not while the databases are read.
    pub(crate) async fn sync_controllers(
        &self,
        tables: &mut Controllers,
    ) -> Result<Vec<ControllerView>, CommandError> {
        let (instances, services) = {
            let mut model = self.lock().await;
            let mut services = Vec::new();
            for id in model.instances.ids() {
                if !model.identities.contains_key(&id) {
                    continue;
                }
                services.push((id, self.controller_for(&mut model, id).await?));
            }
            (model.instances.ids(), services)
        };
        let mut views = Vec::new();
        for (id, service) in services {
            views.push(
                ControllerView::read(id, &service)
                    .await
                    .map_err(service_error)?,
            );
        }
        tables.sync(&self.state, &instances, &views)?;
        Ok(views)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_controller::props::{member_patch_from_properties, network_patch_from_properties};
    use zt_controller::MemoryStorage;
    use zt_crypto::Address;

    /// identities[0] of `shared/interop/vectors.json`.
    const KNOWN_SECRET: &str = "3dd3377c70:0:b536662c7b3d61b5440d8dfc5f6e65b101ca3b6c32e8d3cafef52fd71786a264cf3ac90ce863a85a22ae6e93f2795e33f6af6731a126a5a7fdadd05808ca5533:18d7f229860de6a3220c19d51def3433e4e029c16760efdaf9f0c87437ffbf3149527de5d528174a6b64de837233cc4f5f123a3e809603c82096609c7a5e73fd";
    const NWID: u64 = 0x3dd3377c70a99e4b;

    fn memory_service() -> ControllerService {
        let identity = Identity::from_string(KNOWN_SECRET).unwrap();
        ControllerService::start(
            identity,
            Box::new(|| Ok(Box::new(MemoryStorage::new()) as service::ServiceStorage)),
            Arc::default(),
            EngineClock::new(),
        )
    }

    #[test]
    fn a_damaged_id_table_is_set_aside_and_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path().join("home")).unwrap();
        let members = state.file(MEMBER_IDS_FILE);
        std::fs::write(&members, b"{\"next_id\": 1, \"rows\": [tru").unwrap();
        let loaded = Controllers::load(&state).expect("the daemon starts");
        assert_eq!(loaded.members.iter().count(), 0);
        assert!(!members.exists());
        let mut aside = members.as_os_str().to_owned();
        aside.push(".damaged");
        assert_eq!(
            std::fs::read(std::path::PathBuf::from(aside)).unwrap(),
            b"{\"next_id\": 1, \"rows\": [tru"
        );
    }

    #[tokio::test]
    async fn menu_ids_are_stable_and_follow_the_databases() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path().join("home")).unwrap();
        let ctl = memory_service();
        let zt1 = ItemId(1);
        let views = || async { vec![ControllerView::read(zt1, &ctl).await.unwrap()] };
        let mut ids = Controllers::load(&state).unwrap();
        let patch = network_patch_from_properties(&[
            ("name", "ZT-private"),
            ("ip-range", "172.27.27.10-172.27.27.20"),
            ("routes", "172.27.27.0/24"),
        ])
        .unwrap();
        ctl.create_network(Some(NWID), patch).await.unwrap();
        let patch = member_patch_from_properties(&[]).unwrap();
        for address in [0x1111111111, 0x2222222222] {
            let address = Address::new(address).unwrap();
            ctl.update_member(NWID, address, patch.clone(), service::Face::RouterOs)
                .await
                .unwrap();
        }
        ids.sync(&state, &[zt1], &views().await).unwrap();
        let members: Vec<ItemId> = ids.members.ids();
        assert_eq!(members, [ItemId(1), ItemId(2)]);
        assert_eq!(ids.networks.ids(), [ItemId(1)]);

        // A member removed in the database loses its row; the other keeps its id, also
        // after a reload from disk.
        ctl.delete_member(
            NWID,
            Address::new(0x1111111111).unwrap(),
            service::Face::RouterOs,
        )
        .await
        .unwrap();
        ids.sync(&state, &[zt1], &views().await).unwrap();
        // The member table lists members: private to the owner.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.file(MEMBER_IDS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut reloaded = Controllers::load(&state).unwrap();
        reloaded.sync(&state, &[zt1], &views().await).unwrap();
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
