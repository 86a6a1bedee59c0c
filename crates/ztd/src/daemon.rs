//! The daemon's shared state: the state directory, the API token, the configuration model
//! and the running instances, behind one lock.
//!
//! Every management command (REST today, other APIs later) takes the lock for its whole
//! duration, so commands run one at a time against a consistent model, and a command's
//! side effects (binding sockets, writing files) either all happen or are undone before the
//! lock is released. The controllers' menu ids have a lock of their own, held by the
//! controller menus across their database work, so a slow controller database holds up only
//! other controller commands; those take the model lock only briefly, after it (never the
//! other way round).
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::controller::{ControllerDb, ControllerRegistry, Controllers};
use crate::identity_store::PublicIdentityText;
use crate::instances::InstanceConfig;
use crate::model::{ItemId, Table, TableError};
use crate::runtime::driver::InstanceRuntime;
use crate::runtime::engine::{EngineClock, EngineFactory};
use crate::state_dir::{StateDir, StateError};

/// Fatal start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Everything management commands read and change. Later menus add their tables here.
pub struct Model {
    /// `/zerotier`: the configured instances.
    pub instances: Table<InstanceConfig>,
    /// Running instances by item id (enabled and successfully started).
    pub(crate) runtimes: HashMap<ItemId, InstanceRuntime>,
    /// Why an enabled instance is not running (bind failure at start-up, …).
    pub(crate) runtime_errors: HashMap<ItemId, String>,
    /// Identities known per instance (from `identity.public`), for display.
    pub(crate) identities: HashMap<ItemId, PublicIdentityText>,
    /// `/zerotier/interface`: joined networks and their TAP ports.
    pub(crate) interfaces: crate::menus::interface::Interfaces,
}

impl Model {
    /// The instance with this name (menus refer to instances by name, e.g. `instance=zt1`).
    pub fn instance_by_name(&self, name: &str) -> Option<ItemId> {
        self.instances
            .iter()
            .find(|(_, c)| c.name == name)
            .map(|(id, _)| id)
    }

    /// The running instance with this id, if any.
    pub fn runtime(&self, id: ItemId) -> Option<&InstanceRuntime> {
        self.runtimes.get(&id)
    }
}

/// The daemon. Shared as `Arc<Daemon>` by the API servers.
pub struct Daemon {
    pub(crate) state: StateDir,
    authtoken: String,
    pub(crate) engines: Arc<dyn EngineFactory>,
    /// The one clock all engines of this daemon run on.
    pub(crate) clock: EngineClock,
    model: Mutex<Model>,
    /// `/zerotier/controller` and `/zerotier/controller/member`: the menu ids (see the
    /// module doc for the lock order).
    pub(crate) controllers: Mutex<Controllers>,
    /// The instances' controller services (no lock of the daemon needed).
    pub(crate) controller_registry: Arc<ControllerRegistry>,
}

impl Daemon {
    /// Open the state directory, load (or create) the configuration. Instances are not
    /// started yet: call [`Daemon::start_enabled_instances`] inside the runtime.
    pub fn open(state: StateDir, engines: Arc<dyn EngineFactory>) -> Result<Daemon, DaemonError> {
        Self::open_with(state, engines, ControllerDb::default())
    }

    /// [`Daemon::open`] with the controllers' database chosen (`ztd --controller-db`).
    pub fn open_with(
        state: StateDir,
        engines: Arc<dyn EngineFactory>,
        controller_db: ControllerDb,
    ) -> Result<Daemon, DaemonError> {
        let authtoken = state.load_or_create_authtoken()?;
        let (instances, identities) = crate::instances::load(&state)?;
        let clock = EngineClock::new();
        let model = Model {
            instances,
            runtimes: HashMap::new(),
            runtime_errors: HashMap::new(),
            identities,
            interfaces: crate::menus::interface::Interfaces::load(&state)?,
        };
        let controllers = Controllers::load(&state)?;
        Ok(Daemon {
            state,
            authtoken,
            engines,
            clock,
            model: Mutex::new(model),
            controllers: Mutex::new(controllers),
            controller_registry: Arc::new(ControllerRegistry::new(clock, controller_db)),
        })
    }

    /// The token the HTTP APIs require.
    pub fn authtoken(&self) -> &str {
        &self.authtoken
    }

    pub fn state_dir(&self) -> &StateDir {
        &self.state
    }

    /// Exclusive access to the model for one command.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, Model> {
        self.model.lock().await
    }

    /// Start every instance that is configured enabled. A failure is logged and shown in the
    /// instance's `state`; the daemon keeps running.
    pub async fn start_enabled_instances(&self) {
        let mut model = self.lock().await;
        for id in model.instances.ids() {
            let Some(config) = model.instances.get(id).cloned() else {
                continue;
            };
            if config.disabled {
                continue;
            }
            if let Err(e) = self.start_instance(&mut model, id, &config).await {
                tracing::error!(instance = %config.name, error = %e, "instance could not start");
                model.runtime_errors.insert(id, e.to_string());
            }
        }
    }

    /// Stop all instances (graceful shutdown), waiting for their sockets to close.
    pub async fn shutdown(&self) {
        let mut model = self.lock().await;
        for (_, runtime) in model.runtimes.drain() {
            runtime.stop().await;
        }
    }
}
