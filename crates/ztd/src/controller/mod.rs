//! The network controller of each instance (`/zerotier/controller`, PROTOCOL.md §7): a
//! [`zt_controller::Controller`] over SQLite at `<home>/<instance>/controller.db`, or over one
//! PostgreSQL database shared by several daemons ([`ControllerDb`]), owned by a
//! [`service::ControllerService`] off the packet path, and the RouterOS ids of controller
//! networks and members.
//!
//! ```text
//!   node Event::ConfigRequest ──> ControllerHandler ──try_send──> ControllerService (own thread)
//!   menus / REST / JSON API ──> ControllerService::{update_*, delete_*, read}
//!   ControllerService: zt-controller answers / pushes, signed ──> the instance's node
//! ```
//!
//! The controller state (networks, members, addresses) lives only in the database, and so do
//! the RouterOS item numbers of networks and members (allocated by the database, see
//! `zt_controller::storage`): a RouterOS id is the instance's id and the item number together
//! ([`menu_id`]), so every daemon on one database shows the same ids, and a command that names
//! an item goes to its controller and row by key. Older versions kept the numbers in
//! per-daemon files (`controller-ids.json`, `controller-member-ids.json`); those are adopted
//! by the databases once and then renamed `*.migrated` ([`LegacyItemIds`]).
//!
//! Locking: the controller menus take the daemon's model lock only to find an instance's
//! service, never across database work; adding or renaming a network holds
//! `Daemon::controller_names` so names stay unique. The databases belong to their services,
//! so no lock is shared with the packet path.
pub mod service;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use zt_controller::model::parse_network_id;
use zt_controller::storage::{ItemNo, LegacyItemNumbers};
use zt_controller::{Network, NetworkId};
use zt_crypto::{Address, Identity};
use zt_node::Event;

use crate::daemon::{Daemon, Model};
use crate::menu::CommandError;
use crate::model::{ItemId, Table};
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
/// RouterOS ids of `/zerotier/controller` items, as versions before the ids moved into the
/// databases kept them.
const NETWORK_IDS_FILE: &str = "controller-ids.json";
/// RouterOS ids of `/zerotier/controller/member` items, likewise.
const MEMBER_IDS_FILE: &str = "controller-member-ids.json";
/// What an adopted id file is renamed to (`<file>` + this).
const ADOPTED_SUFFIX: &str = ".migrated";

/// One `/zerotier/controller` row of the old id files: a network of an instance's controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRef {
    /// The instance's item id (stable across renames).
    pub instance: ItemId,
    /// 16 hex digits.
    pub network: String,
}

/// One `/zerotier/controller/member` row of the old id files.
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

/// Bits of a controller item's RouterOS id that hold the database's item number. The
/// instance's own id, less one, is above them: the first instance's items show the numbers as
/// they are, and two instances' databases (each SQLite file numbers from 1) never give one id
/// twice.
const ITEM_BITS: u32 = 24;

/// The RouterOS id of item number `item` of the controller of `instance`.
pub(crate) fn menu_id(instance: ItemId, item: ItemNo) -> Result<ItemId, CommandError> {
    let slot = instance
        .0
        .checked_sub(1)
        .filter(|s| *s < 1 << (32 - ITEM_BITS));
    match (slot, u32::try_from(item)) {
        (Some(slot), Ok(item)) if item > 0 && item < 1 << ITEM_BITS => {
            Ok(ItemId(slot << ITEM_BITS | item))
        }
        _ => Err(CommandError::Internal(format!(
            "controller item {item} of instance {instance} has no RouterOS id (instances up to *100, items below 2^24)"
        ))),
    }
}

/// The instance and item number a RouterOS id of a controller item stands for.
pub(crate) fn menu_id_parts(id: ItemId) -> (ItemId, ItemNo) {
    (
        ItemId((id.0 >> ITEM_BITS) + 1),
        (id.0 & ((1 << ITEM_BITS) - 1)).into(),
    )
}

/// One `/zerotier/controller` item.
pub(crate) struct NetworkItem {
    pub(crate) id: ItemId,
    pub(crate) instance: ItemId,
    pub(crate) network: Network,
    /// Requests for it come to this controller (`nwid >> 24` is its address).
    pub(crate) serves: bool,
}

/// The item of `networks` that `selector` (a RouterOS id or a network name) names.
pub(crate) fn find_network_item<'a>(
    networks: &'a [NetworkItem],
    selector: &str,
) -> Option<&'a NetworkItem> {
    match selector.parse::<ItemId>() {
        Ok(id) => networks.iter().find(|n| n.id == id),
        Err(()) => networks.iter().find(|n| n.network.name == selector),
    }
}

/// The RouterOS ids older versions kept in the state directory, by instance, until the
/// databases adopted them.
pub(crate) struct LegacyItemIds {
    by_instance: HashMap<ItemId, LegacyItemNumbers>,
}

impl LegacyItemIds {
    /// The old id files, if there are any. A file that cannot be read is left alone with a
    /// warning: the databases number everything themselves anyway.
    pub(crate) fn load(state: &StateDir) -> Option<LegacyItemIds> {
        fn read<T: Serialize + serde::de::DeserializeOwned>(path: &Path) -> Option<Table<T>> {
            match Table::load(path) {
                Ok(table) => table,
                Err(error) => {
                    tracing::warn!(%error, "old RouterOS id file not adopted; the controller items get the numbers of their database");
                    None
                }
            }
        }
        let networks: Option<Table<NetworkRef>> = read(&state.file(NETWORK_IDS_FILE));
        let members: Option<Table<MemberRef>> = read(&state.file(MEMBER_IDS_FILE));
        if networks.is_none() && members.is_none() {
            return None;
        }
        let mut by_instance: HashMap<ItemId, LegacyItemNumbers> = HashMap::new();
        for (id, row) in networks.iter().flat_map(|t| t.iter()) {
            if let Ok(nwid) = parse_network_id(&row.network) {
                let numbers = by_instance.entry(row.instance).or_default();
                numbers.networks.push((nwid, id.0.into()));
            }
        }
        for (id, row) in members.iter().flat_map(|t| t.iter()) {
            let address = u64::from_str_radix(&row.address, 16)
                .ok()
                .and_then(Address::new);
            if let (Ok(nwid), Some(address)) = (parse_network_id(&row.network), address) {
                let numbers = by_instance.entry(row.instance).or_default();
                numbers.members.push((nwid, address, id.0.into()));
            }
        }
        Some(LegacyItemIds { by_instance })
    }

    /// Rename the files: adopted, they are read no more (and kept for the operator).
    fn retire(state: &StateDir) {
        for name in [NETWORK_IDS_FILE, MEMBER_IDS_FILE] {
            let path = state.file(name);
            if !path.exists() {
                continue;
            }
            let mut adopted = path.as_os_str().to_owned();
            adopted.push(ADOPTED_SUFFIX);
            if let Err(error) = std::fs::rename(&path, PathBuf::from(adopted)) {
                tracing::warn!(%error, file = %path.display(), "adopted RouterOS id file not renamed");
            }
        }
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
    parse_network_id(&text.to_ascii_lowercase()).map_err(|_| CommandError::invalid_value(property))
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

    /// The controller service of every instance that has an identity, in instance order.
    /// The model is locked only to list them. The first call adopts the ids of older
    /// versions' files ([`LegacyItemIds`]).
    pub(crate) async fn controller_services(
        &self,
    ) -> Result<Vec<(ItemId, ControllerService)>, CommandError> {
        let services = {
            let mut model = self.lock().await;
            let mut services = Vec::new();
            for id in model.instances.ids() {
                if !model.identities.contains_key(&id) {
                    continue;
                }
                services.push((id, self.controller_for(&mut model, id).await?));
            }
            services
        };
        self.adopt_legacy_item_ids(&services).await?;
        Ok(services)
    }

    /// Hand the old id files' numbers to the databases, once; the files are renamed when
    /// every controller they number took them (a database that is down is asked again on the
    /// next command). Ids of instances that no longer exist are dropped.
    async fn adopt_legacy_item_ids(
        &self,
        services: &[(ItemId, ControllerService)],
    ) -> Result<(), CommandError> {
        let mut legacy = self.legacy_item_ids.lock().await;
        let Some(pending) = legacy.as_mut() else {
            return Ok(());
        };
        let instances = self.lock().await.instances.ids();
        pending
            .by_instance
            .retain(|instance, _| instances.contains(instance));
        for (instance, service) in services {
            let Some(numbers) = pending.by_instance.get(instance).cloned() else {
                continue;
            };
            let adopted = service
                .adopt_item_numbers(numbers)
                .await
                .map_err(service_error)?;
            tracing::info!(instance = %instance, adopted, "RouterOS ids of older versions handed to the controller database");
            pending.by_instance.remove(instance);
        }
        // What is left belongs to instances without an identity: no controller, nothing to
        // number.
        LegacyItemIds::retire(&self.state);
        *legacy = None;
        Ok(())
    }

    /// The controller of `instance`, for a command on one of its items: `NoSuchItem` when the
    /// instance has no controller (no identity, so no items).
    pub(crate) async fn controller_of_item(
        &self,
        instance: ItemId,
    ) -> Result<ControllerService, CommandError> {
        self.controller_services()
            .await?
            .into_iter()
            .find(|(id, _)| *id == instance)
            .map(|(_, service)| service)
            .ok_or(CommandError::NoSuchItem)
    }

    /// Every network of every controller, in id order.
    pub(crate) async fn controller_networks(&self) -> Result<Vec<NetworkItem>, CommandError> {
        let mut items = Vec::new();
        for (instance, service) in self.controller_services().await? {
            let networks = service
                .read(|ctl| -> Result<Vec<_>, zt_controller::StorageError> {
                    let mut networks = Vec::new();
                    for (item, nwid) in ctl.storage().network_items()? {
                        if let Some(network) = ctl.network(nwid)? {
                            networks.push((item, ctl.serves(nwid), network));
                        }
                    }
                    Ok(networks)
                })
                .await
                .map_err(service_error)?
                .map_err(|e| service_error(e.into()))?;
            for (item, serves, network) in networks {
                items.push(NetworkItem {
                    id: menu_id(instance, item)?,
                    instance,
                    network,
                    serves,
                });
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_ids_put_the_instance_above_the_item_number() {
        assert_eq!(menu_id(ItemId(1), 5).unwrap(), ItemId(5));
        assert_eq!(menu_id(ItemId(2), 0x1a).unwrap(), ItemId(0x100_001a));
        assert_eq!(menu_id_parts(ItemId(0x100_001a)), (ItemId(2), 0x1a));
        assert_eq!(menu_id_parts(ItemId(5)), (ItemId(1), 5));
        for (instance, item) in [(1, 0), (1, 1 << 24), (0, 1), (257, 1)] {
            assert!(
                menu_id(ItemId(instance), item).is_err(),
                "{instance} {item}"
            );
        }
        assert_eq!(menu_id(ItemId(256), 1).unwrap(), ItemId(0xff00_0001));
    }

    fn open_daemon(home: &Path) -> Daemon {
        let state = StateDir::open(home).unwrap();
        Daemon::open(state, Arc::new(crate::runtime::engine::NoProtocolFactory)).unwrap()
    }

    fn ids_and(records: &[crate::menu::Record], property: &str) -> Vec<(String, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r[".id"].clone(),
                    r.get(property).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// An upgrade from a version that kept the RouterOS ids in per-daemon files: the ids
    /// users know survive (the database adopts them once), new items are numbered after
    /// them, the files are renamed, and a daemon started later shows the same ids.
    #[tokio::test]
    async fn ids_of_the_old_id_files_survive_the_upgrade() {
        use crate::menu::{Args, Menu};
        use crate::menus::controller::ControllerMenu;
        use crate::menus::member::MemberMenu;
        use zt_controller::props::{member_patch_from_properties, network_patch_from_properties};

        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let (a, b) = (
            Address::new(0x0a00000001).unwrap(),
            Address::new(0x0b00000002).unwrap(),
        );
        let nwid = {
            let daemon = open_daemon(&home);
            let zt1 = daemon.lock().await.instances.ids()[0];
            let service = daemon.controller_of_instance(zt1).await.unwrap();
            let patch = network_patch_from_properties(&[("name", "office")]).unwrap();
            let network = service.create_network(None, patch).await.unwrap();
            for address in [a, b] {
                let patch = member_patch_from_properties(&[]).unwrap();
                service
                    .update_member(network.id, address, patch, service::Face::RouterOs)
                    .await
                    .unwrap();
            }
            network.id
        };
        // What the old version had written: its own numbering.
        let state = StateDir::open(&home).unwrap();
        let nw = zt_controller::model::format_network_id(nwid);
        std::fs::write(
            state.file(NETWORK_IDS_FILE),
            format!(r#"{{"next_id": 6, "rows": [{{"id": 5, "instance": 1, "network": "{nw}"}}]}}"#),
        )
        .unwrap();
        std::fs::write(
            state.file(MEMBER_IDS_FILE),
            format!(
                r#"{{"next_id": 10, "rows": [
                    {{"id": 3, "instance": 1, "network": "{nw}", "address": "{b}"}},
                    {{"id": 9, "instance": 1, "network": "{nw}", "address": "{a}"}}]}}"#
            ),
        )
        .unwrap();

        let daemon = open_daemon(&home);
        let members = MemberMenu.print(&daemon).await.unwrap();
        let expected = vec![
            ("*3".to_string(), b.to_string()),
            ("*9".to_string(), a.to_string()),
        ];
        assert_eq!(ids_and(&members, "zt-address"), expected);
        let networks = ControllerMenu.print(&daemon).await.unwrap();
        assert_eq!(
            ids_and(&networks, "name"),
            [("*5".to_string(), "office".to_string())]
        );
        for name in [NETWORK_IDS_FILE, MEMBER_IDS_FILE] {
            assert!(!state.file(name).exists(), "{name} is still read");
            assert!(state.file(&format!("{name}{ADOPTED_SUFFIX}")).exists());
        }
        let mut add = Args::new();
        add.insert("network", "office");
        add.insert("zt-address", "0c00000003");
        assert_eq!(MemberMenu.add(&daemon, add).await.unwrap(), ItemId(10));
        drop(daemon);

        let later = open_daemon(&home);
        let members = MemberMenu.print(&later).await.unwrap();
        let mut expected = expected;
        expected.push(("*A".to_string(), "0c00000003".to_string()));
        assert_eq!(ids_and(&members, "zt-address"), expected);
        // Looked up by key: the same records.
        let by_id = MemberMenu.item(&later, ItemId(9)).await.unwrap().unwrap();
        assert_eq!(by_id["zt-address"], a.to_string());
        let equal = [("zt-address".to_string(), b.to_string())];
        let found = MemberMenu.print_where(&later, &equal).await.unwrap();
        assert_eq!(
            ids_and(&found, "network"),
            [("*3".to_string(), "office".to_string())]
        );
        let equal = [("network".to_string(), "elsewhere".to_string())];
        assert!(MemberMenu
            .print_where(&later, &equal)
            .await
            .unwrap()
            .is_empty());
        assert!(MemberMenu.item(&later, ItemId(4)).await.unwrap().is_none());
    }
}
