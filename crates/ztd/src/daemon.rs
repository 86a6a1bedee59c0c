//! The daemon's shared state: the state directory, the API token, the configuration model
//! and the running instances, behind one lock.
//!
//! Every management command (REST today, other APIs later) takes the lock for its whole
//! duration, so commands run one at a time against a consistent model, and a command's
//! side effects (binding sockets, writing files) either all happen or are undone before the
//! lock is released. The controller menus take the model lock only to find an instance's
//! controller service, never across database work, so a slow controller database or a
//! controller with many members holds up no other command; adding or renaming a controller
//! network holds a lock of its own (`controller_names`) so names stay unique.
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::controller::{ControllerDb, ControllerRegistry, LegacyItemIds};
use crate::identity_store::PublicIdentityText;
use crate::instances::InstanceConfig;
use crate::model::{ItemId, Table, TableError};
use crate::runtime::driver::InstanceRuntime;
use crate::runtime::engine::{EngineClock, EngineFactory};
use crate::runtime::tcp_fallback::TcpFallbackSettings;
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

/// How often instances are checked for a failed engine.
pub const SUPERVISION_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);
/// Restarts within [`RESTART_WINDOW`] after which a failing instance is left stopped.
pub const MAX_RESTARTS: usize = 5;
pub const RESTART_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// The daemon. Shared as `Arc<Daemon>` by the API servers.
pub struct Daemon {
    pub(crate) state: StateDir,
    authtoken: String,
    /// Opens `/metrics` only (`metricstoken.secret`).
    metricstoken: String,
    pub(crate) engines: Arc<dyn EngineFactory>,
    /// The one clock all engines of this daemon run on.
    pub(crate) clock: EngineClock,
    model: Mutex<Model>,
    /// Held while a `/zerotier/controller` name is checked and stored, so names stay unique.
    pub(crate) controller_names: Mutex<()>,
    /// RouterOS ids of controller items that older versions kept in the state directory,
    /// until the databases adopted them.
    pub(crate) legacy_item_ids: Mutex<Option<LegacyItemIds>>,
    /// The instances' controller services (no lock of the daemon needed).
    pub(crate) controller_registry: Arc<ControllerRegistry>,
    /// Where instances turn when they receive no UDP (local.conf `tcpFallbackRelay`,
    /// `allowTcpFallbackRelay`); read when an instance starts.
    tcp_fallback: std::sync::RwLock<TcpFallbackSettings>,
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
        let metricstoken = state.load_or_create_metricstoken()?;
        let (instances, identities) = crate::instances::load(&state)?;
        let clock = EngineClock::new();
        let model = Model {
            instances,
            runtimes: HashMap::new(),
            runtime_errors: HashMap::new(),
            identities,
            interfaces: crate::menus::interface::Interfaces::load(&state)?,
        };
        let legacy_item_ids = LegacyItemIds::load(&state);
        Ok(Daemon {
            state,
            authtoken,
            metricstoken,
            engines,
            clock,
            model: Mutex::new(model),
            controller_names: Mutex::new(()),
            legacy_item_ids: Mutex::new(legacy_item_ids),
            controller_registry: Arc::new(ControllerRegistry::new(clock, controller_db)),
            tcp_fallback: std::sync::RwLock::new(TcpFallbackSettings::default()),
        })
    }

    /// Set the TCP fallback of instances started from now on (ztd's `main` passes
    /// local.conf's before starting them).
    pub fn set_tcp_fallback(&self, settings: TcpFallbackSettings) {
        *self.tcp_fallback.write().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// The TCP fallback an instance starts with.
    pub(crate) fn tcp_fallback(&self) -> TcpFallbackSettings {
        *self.tcp_fallback.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The token the HTTP APIs require.
    pub fn authtoken(&self) -> &str {
        &self.authtoken
    }

    /// The token that opens `/metrics` (besides [`Daemon::authtoken`]).
    pub fn metricstoken(&self) -> &str {
        &self.metricstoken
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

    /// Restart instances whose engine failed (a panic), every [`SUPERVISION_PERIOD`], until
    /// the daemon ends. An instance that fails [`MAX_RESTARTS`] times within
    /// [`RESTART_WINDOW`] is left stopped; `/zerotier/print` shows why in `state`.
    pub async fn supervise_instances(self: Arc<Self>) {
        let mut restarts = HashMap::new();
        loop {
            tokio::time::sleep(SUPERVISION_PERIOD).await;
            self.restart_failed(&mut restarts).await;
        }
    }

    /// One round of [`Daemon::supervise_instances`]; `restarts` remembers recent restarts.
    pub(crate) async fn restart_failed(
        &self,
        restarts: &mut HashMap<ItemId, Vec<std::time::Instant>>,
    ) {
        let mut model = self.lock().await;
        let failed: Vec<(ItemId, String)> = model
            .runtimes
            .iter()
            .filter_map(|(id, runtime)| runtime.failure().map(|why| (*id, why)))
            .collect();
        for (id, why) in failed {
            let Some(config) = model.instances.get(id).cloned() else {
                continue;
            };
            Self::stop_instance(&mut model, id).await;
            let now = std::time::Instant::now();
            let recent = restarts.entry(id).or_default();
            recent.retain(|at| now.duration_since(*at) < RESTART_WINDOW);
            if recent.len() >= MAX_RESTARTS {
                let note = format!(
                    "stopped: the engine failed {} times within {} s; last failure: {why}",
                    recent.len() + 1,
                    RESTART_WINDOW.as_secs()
                );
                tracing::error!(instance = %config.name, "{note}");
                model.runtime_errors.insert(id, note);
                continue;
            }
            recent.push(now);
            let note = match self.start_instance(&mut model, id, &config).await {
                Ok(()) => format!("restarted after an engine failure: {why}"),
                Err(e) => format!("the engine failed ({why}) and did not restart: {e}"),
            };
            tracing::warn!(instance = %config.name, "{note}");
            model.runtime_errors.insert(id, note);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::{Args, Menu};
    use crate::menus::zerotier::ZerotierMenu;
    use crate::runtime::engine::PanickingEngine;
    use zt_console::values::Value;

    /// An engine that panics is replaced by a restarted instance, and `/zerotier/print` says
    /// so; one that keeps failing is left stopped with the reason. The engine here sends
    /// nothing: it binds a free UDP port (in a network namespace of the test's own), answers
    /// no packet and panics when told its `interfaces`.
    #[tokio::test]
    async fn a_failed_engine_is_restarted_and_shown() {
        zt_testnet::skip_unless!(zt_testnet::isolate_this_thread());
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path().join("home")).unwrap();
        let daemon = Daemon::open(state, Arc::new(PanickingEngine::new("engine bug 7"))).unwrap();
        let free = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = i64::from(free.local_addr().unwrap().port());
        drop(free);
        let id = daemon.lock().await.instances.ids()[0];
        let mut args = Args::new();
        args.insert("disabled", Value::Bool(false));
        args.insert("port", Value::Number(port));
        ZerotierMenu.set(&daemon, id, args).await.unwrap();
        let state_of = || async {
            let rows = ZerotierMenu.print(&daemon).await.unwrap();
            rows[0].get("state").cloned().unwrap_or_default()
        };
        assert_eq!(state_of().await, "running");

        let mut restarts = HashMap::new();
        for round in 1..=MAX_RESTARTS + 1 {
            {
                let model = daemon.lock().await;
                let runtime = model.runtimes.get(&id).expect("the instance runs");
                let told = runtime.handle().set_interfaces(vec!["all".into()]).await;
                assert!(told.is_err(), "the command cannot complete");
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while runtime.failure().is_none() {
                    assert!(std::time::Instant::now() < deadline);
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            daemon.restart_failed(&mut restarts).await;
            let shown = state_of().await;
            if round <= MAX_RESTARTS {
                assert_eq!(
                    shown, "running; restarted after an engine failure: engine bug 7",
                    "round {round}"
                );
            } else {
                assert!(
                    shown.starts_with("stopped: the engine failed 6 times"),
                    "{shown}"
                );
                assert!(!daemon.lock().await.runtimes.contains_key(&id));
            }
        }
        daemon.shutdown().await;
    }
}
