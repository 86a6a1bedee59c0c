//! Joined networks as TAP interfaces (`/zerotier/interface`): what the daemon does between a
//! network of the protocol engine and its TAP device.
//!
//! ```text
//!   TAP read / write ──────────────────────────────> the instance's driver task (runtime::driver),
//!                                                     which serves the TAP queue a port attaches
//!   Event::Frame (emulated NDP answers, held frames) > TAP write
//!   Event::NetworkConfigChanged ──> plan (allow-managed/global/default) ──> ip address/route
//!                               └─> <instance>/networks.d/<nwid>.conf (restored at start)
//!   every 5 s: the TAP's multicast groups (os::multicast) ──> node subscriptions (LIKEs)
//! ```
//!
//! The pure parts live here and are unit-tested: which managed addresses and routes a config
//! leads to ([`plan_managed`]), Ethernet framing, and the saved config files. The OS calls are in [`crate::os`].
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use zt_crypto::Address;
use zt_node::path::{ip_scope, IpScope};
use zt_wire::mac::Mac;
use zt_wire::netconf::NetworkConfig;
use zt_wire::network_id::NetworkId;

use crate::os::dns::LinkDns;
use crate::os::iproute::Prefix;
use crate::state_dir::{read_optional, write_atomic, StateError, SECRET_MODE};

/// What the operator allows a network's controller to configure (zerotier-one's
/// `allowManaged`, `allowGlobal`, `allowDefault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowSettings {
    /// Apply managed addresses and routes at all.
    pub managed: bool,
    /// Also addresses and routes of global scope.
    pub global: bool,
    /// Also default routes (`0.0.0.0/0`, `::/0`).
    pub default_route: bool,
    /// The pushed DNS domain and servers on the interface (`allowDNS`).
    pub dns: bool,
}

impl Default for AllowSettings {
    /// zerotier-one's defaults: managed yes, global no, default no, DNS no.
    fn default() -> Self {
        AllowSettings {
            managed: true,
            global: false,
            default_route: false,
            dns: false,
        }
    }
}

/// One managed route to install on the TAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManagedRoute {
    pub target: Prefix,
    /// `None`: on-link through the TAP.
    pub gateway: Option<IpAddr>,
    pub metric: u16,
}

/// The addresses, routes and DNS a config leads to under some [`AllowSettings`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedPlan {
    pub addresses: Vec<Prefix>,
    pub routes: Vec<ManagedRoute>,
    /// With `allow.dns`, what the controller pushed (if anything).
    pub dns: Option<LinkDns>,
}

/// Which managed addresses and routes of `config` to apply (zerotier-one's
/// `OneServiceImpl::syncManagedStuff` rules):
/// - nothing unless `managed`;
/// - global-scope addresses and route targets only with `global`;
/// - default routes only with `default_route`;
/// - a route through one of our own addresses is skipped (we are that gateway), and an
///   on-link route to the subnet of an assigned address is the kernel's connected route
///   already;
/// - the pushed DNS only with `dns` (whatever `managed` says, as zerotier-one).
pub fn plan_managed(config: &NetworkConfig, allow: AllowSettings) -> ManagedPlan {
    let mut plan = ManagedPlan {
        dns: allow
            .dns
            .then(|| LinkDns::from_config(&config.dns))
            .flatten(),
        ..ManagedPlan::default()
    };
    if !allow.managed {
        return plan;
    }
    let allowed_scope = |ip: IpAddr| allow.global || ip_scope(ip) != IpScope::Global;
    for assigned in &config.static_ips {
        let Some(ip) = assigned.ip() else { continue };
        let Some(prefix) = Prefix::new(ip, assigned.port()) else {
            continue;
        };
        if ip.is_unspecified() || !allowed_scope(ip) || plan.addresses.contains(&prefix) {
            continue;
        }
        plan.addresses.push(prefix);
    }
    for route in &config.routes {
        let Some(target_ip) = route.target.ip() else {
            continue;
        };
        let Some(target) = Prefix::new(target_ip, route.target.port()) else {
            continue;
        };
        let target = Prefix {
            ip: target.network(),
            bits: target.bits,
        };
        let gateway = route.via.ip().filter(|g| !g.is_unspecified());
        if target.is_default() {
            if !allow.default_route {
                continue;
            }
        } else if !allowed_scope(target.ip) {
            continue;
        }
        if let Some(g) = gateway {
            if g.is_ipv4() != target.ip.is_ipv4() || plan.addresses.iter().any(|a| a.ip == g) {
                continue;
            }
        } else if plan.addresses.iter().any(|a| {
            a.bits == target.bits
                && a.network() == target.ip
                && a.ip.is_ipv4() == target.ip.is_ipv4()
        }) {
            continue;
        }
        let managed = ManagedRoute {
            target,
            gateway,
            metric: route.metric,
        };
        if !plan.routes.contains(&managed) {
            plan.routes.push(managed);
        }
    }
    plan
}

// ---------------------------------------------------------------------------------------------
// Saved configs

/// `<instance dir>/networks.d/<nwid>.conf`.
pub fn saved_config_path(instance_dir: &Path, nwid: NetworkId) -> PathBuf {
    instance_dir
        .join("networks.d")
        .join(format!("{:016x}.conf", nwid.0))
}

/// Save a config (its dictionary bytes, as zerotier-one keeps them) atomically.
pub fn save_config(instance_dir: &Path, config: &NetworkConfig) -> Result<(), StateError> {
    let path = saved_config_path(instance_dir, config.network_id);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StateError {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let bytes = config.to_bytes().map_err(|e| StateError {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    // Configs carry certificates and rules; keep them private like zerotier-one.
    write_atomic(&path, &bytes, SECRET_MODE)
}

/// The saved config of `nwid`, if one exists and parses (a damaged file is ignored: the
/// controller will send a fresh one).
pub fn load_config(instance_dir: &Path, nwid: NetworkId) -> Option<NetworkConfig> {
    let bytes = read_optional(&saved_config_path(instance_dir, nwid)).ok()??;
    NetworkConfig::parse(&bytes)
        .ok()
        .filter(|c| c.network_id == nwid)
}

/// Forget the saved config of a network we left.
pub fn remove_saved_config(instance_dir: &Path, nwid: NetworkId) {
    let _ = std::fs::remove_file(saved_config_path(instance_dir, nwid));
}

// ---------------------------------------------------------------------------------------------
// Ports: one TAP per joined network

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zt_node::{Event, NetworkStatus, Node};
use zt_wire::netconf::NetworkType;

use crate::os::multicast;
use crate::os::tap::TapDevice;
use crate::os::{dns, iproute};
use crate::runtime::commands::Join;
use crate::runtime::driver::{DataCommand, InstanceHandle, InstanceRuntime};
use crate::runtime::events::EventHandler;
use zt_wire::ethernet::{EthernetHeader, ETHERNET_HEADER_LEN};
use zt_wire::verbs::multicast::MulticastGroup;

/// Configs waiting to be applied; a newer one supersedes older ones anyway.
const CONFIG_QUEUE: usize = 8;
/// How often a TAP's multicast memberships are re-read. zerotier-one polls too: the kernel
/// has no cheap notification for `/proc/net/dev_mcast`, and a group joined a few seconds
/// late costs a program at most its first few multicasts.
const MULTICAST_SCAN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// What `print` shows about a port (updated by its tasks and the event handler).
#[derive(Debug, Clone, Default)]
pub struct PortView {
    pub status: Option<NetworkStatus>,
    pub network_name: String,
    pub network_type: Option<NetworkType>,
    pub mtu: u16,
    pub mac: Mac,
    /// What we applied to the kernel.
    pub applied: ManagedPlan,
    /// Route metric (`distance`) of the applied routes.
    pub route_distance: u8,
    /// The last failure configuring the interface.
    pub error: Option<String>,
}

/// One joined network's TAP and the tasks serving it. Dropping the last reference (after
/// [`Port::close`]) closes the TAP, which deletes the interface with its addresses and routes.
pub struct Port {
    pub nwid: NetworkId,
    pub interface: String,
    view: Mutex<PortView>,
    allow: Mutex<AllowSettings>,
    closed: AtomicBool,
    tap: Arc<TapDevice>,
    /// The instance, whose driver task reads and writes the TAP.
    instance: InstanceHandle,
    configs: mpsc::Sender<Managed>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// What the controller's word means for the kernel side of a port.
#[derive(Debug)]
enum Managed {
    /// Apply this config's MTU, addresses and routes.
    Apply(Box<NetworkConfig>),
    /// Access was lost (ACCESS_DENIED, a revocation of our own membership, NOT_FOUND): the
    /// managed addresses and routes come off, and the saved config goes, so a restart does
    /// not bring them back. The next config puts them on again.
    Withdraw,
    /// The instance's `route-distance` changed: the applied routes move to this metric.
    RouteDistance(u8),
}

/// What a port is created with.
pub struct PortSettings {
    pub nwid: NetworkId,
    pub interface: String,
    pub allow: AllowSettings,
    /// Neighbour reachable time (`arp-timeout`), `None` for the kernel default (`auto`).
    pub arp_timeout_ms: Option<u64>,
    pub route_distance: u8,
    pub instance_dir: PathBuf,
    pub own: Address,
}

impl Port {
    /// Create the TAP (named as the interface), give it our MAC on the network and bring it
    /// up, attach to the instance's node events, restore the saved config and join.
    /// On a TAP failure the network is still joined, with status PORT_ERROR, and the error is
    /// returned for display.
    pub async fn open(
        runtime: &InstanceRuntime,
        settings: PortSettings,
    ) -> (Option<Arc<Port>>, Option<String>) {
        let nwid = settings.nwid;
        let saved = load_config(&settings.instance_dir, nwid);
        let instance = runtime.handle();
        let port = match Port::create(instance.clone(), &settings).await {
            Ok(port) => port,
            Err(e) => {
                let join = Join {
                    port_error: true,
                    ..Join::network(nwid)
                };
                let _ = instance.join(join).await;
                return (None, Some(e));
            }
        };
        let handler = PortEvents {
            port: Arc::downgrade(&port),
        };
        if instance.add_event_handler(Box::new(handler)).await.is_err() {
            port.close();
            return (None, Some("instance is not running".into()));
        }
        tracing::info!(network = %nwid, interface = %port.interface, "joining network");
        let join = Join {
            saved_config: saved,
            ..Join::network(nwid)
        };
        let joined = instance.join(join).await;
        if let Ok(Some(info)) = joined {
            // Only if no status event came first: a controller on this node answers the join
            // at once, and its event (say ACCESS_DENIED) is newer than this snapshot; later
            // identical answers change nothing and raise no event to correct it.
            port.lock_view().status.get_or_insert(info.status);
        }
        // Started after the join, so its first scan already finds the network and the
        // kernel's groups go out with our first LIKEs once the config arrives.
        let multicast = tokio::spawn(follow_multicast_groups(port.clone()));
        port.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(multicast);
        (Some(port), None)
    }

    async fn create(handle: InstanceHandle, settings: &PortSettings) -> Result<Arc<Port>, String> {
        let name = settings.interface.clone();
        // A TAP left behind by a crashed daemon would refuse our MAC/MTU; start clean.
        if iproute::link_exists(&name) {
            let _ = iproute::delete_link(&name).await;
        }
        let tap = Arc::new(
            TapDevice::create(&name, crate::os::tap::requested_mode())
                .map_err(|e| format!("tap {name}: {e}"))?,
        );
        let mac = Mac::from_address(settings.own, settings.nwid);
        let mtu = zt_wire::netconf::DEFAULT_MTU;
        iproute::configure_link(&name, mac, mtu)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(ms) = settings.arp_timeout_ms {
            iproute::set_neighbour_reachable_time(&name, ms)
                .map_err(|e| format!("arp-timeout on {name}: {e}"))?;
        }
        let (configs, config_rx) = mpsc::channel(CONFIG_QUEUE);
        let port = Arc::new(Port {
            nwid: settings.nwid,
            interface: name,
            view: Mutex::new(PortView {
                mtu,
                mac,
                route_distance: settings.route_distance,
                ..PortView::default()
            }),
            allow: Mutex::new(settings.allow),
            closed: AtomicBool::new(false),
            tap: tap.clone(),
            instance: handle.clone(),
            configs,
            tasks: Mutex::new(Vec::new()),
        });
        handle
            .data(DataCommand::AttachTap {
                nwid: settings.nwid,
                tap,
            })
            .map_err(|e| e.to_string())?;
        let applier = tokio::spawn(apply_configs(
            port.clone(),
            config_rx,
            settings.instance_dir.clone(),
        ));
        port.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(applier);
        Ok(port)
    }

    fn lock_view(&self) -> std::sync::MutexGuard<'_, PortView> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot for `print` and the APIs.
    pub fn view(&self) -> PortView {
        self.lock_view().clone()
    }

    /// Whether the TAP is up with a carrier (flag `R`).
    pub fn running(&self) -> bool {
        !self.closed.load(Ordering::Relaxed) && iproute::link_running(&self.interface)
    }

    /// Change what the controller may configure; the current config is re-applied.
    pub async fn set_allow(&self, runtime: &InstanceRuntime, allow: AllowSettings) {
        *self.allow.lock().unwrap_or_else(|e| e.into_inner()) = allow;
        let nwid = self.nwid;
        let config = runtime.handle().network_config(nwid).await;
        if let Ok(Some(config)) = config {
            let _ = self.configs.send(Managed::Apply(Box::new(config))).await;
        }
    }

    /// Move the routes this port installed to `distance` (the instance's `route-distance`).
    pub async fn set_route_distance(&self, distance: u8) {
        let _ = self.configs.send(Managed::RouteDistance(distance)).await;
    }

    /// Stop the tasks; the TAP (and with it the interface, its addresses and routes) goes
    /// when the last reference is dropped, which the tasks' end makes this one.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        // A stopped instance has no driver to detach from; that is fine.
        let _ = self
            .instance
            .data(DataCommand::DetachTap { nwid: self.nwid });
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    /// Leave the network and remove the interface.
    pub async fn leave(self: Arc<Port>, runtime: Option<&InstanceRuntime>, instance_dir: &Path) {
        self.close();
        let nwid = self.nwid;
        if let Some(runtime) = runtime {
            let _ = runtime.handle().leave(nwid).await;
        }
        remove_saved_config(instance_dir, nwid);
        let name = self.interface.clone();
        tracing::info!(network = %nwid, interface = %name, "left network");
        drop(self);
        // The TAP closes with its last reference; make sure the link is gone even if a
        // late event handler call still held one.
        if iproute::link_exists(&name) {
            let _ = iproute::delete_link(&name).await;
        }
    }
}

/// Configs → kernel: MTU, managed addresses and routes (diffed against what we applied),
/// and the saved file.
async fn apply_configs(
    port: Arc<Port>,
    mut configs: mpsc::Receiver<Managed>,
    instance_dir: PathBuf,
) {
    while let Some(mut managed) = configs.recv().await {
        // Only the newest queued config or withdrawal matters; a distance change is applied
        // in its turn (it changes what later configs install).
        while let Ok(newer) = configs.try_recv() {
            if let Managed::RouteDistance(distance) = managed {
                move_routes(&port, distance).await;
            }
            managed = newer;
        }
        let config = match managed {
            Managed::Apply(config) => config,
            Managed::Withdraw => {
                withdraw(&port, &instance_dir).await;
                continue;
            }
            Managed::RouteDistance(distance) => {
                move_routes(&port, distance).await;
                continue;
            }
        };
        if let Err(e) = save_config(&instance_dir, &config) {
            tracing::warn!(error = %e, "network config not saved");
        }
        let allow = *port.allow.lock().unwrap_or_else(|e| e.into_inner());
        let plan = plan_managed(&config, allow);
        let (old, old_mtu, distance) = {
            let mut view = port.lock_view();
            view.network_name = config.name.clone();
            view.network_type = Some(config.network_type);
            (view.applied.clone(), view.mtu, view.route_distance)
        };
        let name = port.interface.as_str();
        let mut errors = Vec::new();
        if config.mtu != old_mtu {
            if let Err(e) = iproute::set_mtu(name, config.mtu).await {
                errors.push(e.to_string());
            }
        }
        let metric = u32::from(distance);
        for route in old.routes.iter().filter(|r| !plan.routes.contains(r)) {
            let _ = iproute::remove_route(name, route.target, route.gateway, metric).await;
        }
        for address in old.addresses.iter().filter(|a| !plan.addresses.contains(a)) {
            let _ = iproute::remove_address(name, *address).await;
        }
        let mut applied = ManagedPlan::default();
        for address in &plan.addresses {
            match iproute::add_address(name, *address).await {
                Ok(()) => applied.addresses.push(*address),
                Err(e) => errors.push(e.to_string()),
            }
        }
        for route in &plan.routes {
            match iproute::add_route(name, route.target, route.gateway, metric).await {
                Ok(()) => applied.routes.push(*route),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if plan.dns != old.dns {
            let changed = match &plan.dns {
                Some(dns) => dns::set(name, dns).await,
                None => dns::revert(name).await,
            };
            if let Err(e) = changed {
                errors.push(e);
            }
        }
        applied.dns = plan.dns.clone();
        tracing::info!(
            network = %port.nwid,
            interface = %port.interface,
            revision = config.revision,
            name = %config.name,
            addresses = ?applied.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            routes = applied.routes.len(),
            "network config applied"
        );
        let mut view = port.lock_view();
        view.mtu = config.mtu;
        view.applied = applied;
        view.error = errors.into_iter().next();
        if let Some(e) = &view.error {
            tracing::warn!(interface = %port.interface, error = %e, "managed configuration");
        }
    }
}

/// Kernel → node: every [`MULTICAST_SCAN_INTERVAL`] the groups the TAP listens to become the
/// node's subscriptions on the network, so it LIKEs new ones and drops gone ones. The set is
/// handed over every time, not only on change: it is small, and a node that lost it (the
/// network rejoined) gets it back without the port tracking that.
async fn follow_multicast_groups(port: Arc<Port>) {
    let mut ticker = tokio::time::interval(MULTICAST_SCAN_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut read_failed = false;
    loop {
        ticker.tick().await;
        let interface = port.interface.clone();
        // File and getifaddrs reads block; keep them off the runtime's (and so the packet
        // task's) threads.
        let read = tokio::task::spawn_blocking(move || multicast::interface_groups(&interface));
        let groups = match read.await {
            Ok(Ok(groups)) => groups,
            Ok(Err(e)) => {
                // Keep the last subscriptions rather than dropping them all on a failed read;
                // say so once, not every five seconds.
                if !std::mem::replace(&mut read_failed, true) {
                    tracing::warn!(
                        interface = %port.interface,
                        error = %e,
                        "multicast groups not readable"
                    );
                }
                continue;
            }
            Err(_) => continue,
        };
        read_failed = false;
        let nwid = port.nwid;
        let change = port
            .instance
            .set_multicast_subscriptions(nwid, groups)
            .await;
        match change {
            Ok(Some(change)) if !change.added.is_empty() || !change.removed.is_empty() => {
                let show = |groups: &[MulticastGroup]| -> Vec<String> {
                    groups
                        .iter()
                        .map(|g| format!("{}/{:x}", g.mac, g.adi))
                        .collect()
                };
                tracing::debug!(
                    network = %nwid,
                    interface = %port.interface,
                    added = ?show(&change.added),
                    removed = ?show(&change.removed),
                    "multicast subscriptions"
                );
            }
            // Left already, or the instance is not running: the next scan hands the set over
            // again if it comes back; closing the port ends this.
            _ => {}
        }
    }
}

/// Re-installs the applied routes with metric `distance`; a route that cannot be added is
/// no longer applied (as when a config is applied), and says why.
async fn move_routes(port: &Port, distance: u8) {
    let (routes, old) = {
        let view = port.lock_view();
        (view.applied.routes.clone(), view.route_distance)
    };
    if old == distance {
        return;
    }
    let name = port.interface.as_str();
    let mut moved = Vec::with_capacity(routes.len());
    let mut error = None;
    for route in routes {
        let _ = iproute::remove_route(name, route.target, route.gateway, u32::from(old)).await;
        match iproute::add_route(name, route.target, route.gateway, u32::from(distance)).await {
            Ok(()) => moved.push(route),
            Err(e) => error = Some(e.to_string()),
        }
    }
    tracing::info!(interface = %port.interface, distance, routes = moved.len(), "route distance changed");
    let mut view = port.lock_view();
    view.route_distance = distance;
    view.applied.routes = moved;
    if let Some(e) = error {
        tracing::warn!(interface = %port.interface, error = %e, "route not moved to the new distance");
        view.error = Some(e);
    }
}

/// Takes the managed addresses and routes off the port and forgets the saved config.
async fn withdraw(port: &Port, instance_dir: &Path) {
    remove_saved_config(instance_dir, port.nwid);
    let (old, distance) = {
        let view = port.lock_view();
        (view.applied.clone(), view.route_distance)
    };
    let name = port.interface.as_str();
    for route in &old.routes {
        let _ = iproute::remove_route(name, route.target, route.gateway, u32::from(distance)).await;
    }
    for address in &old.addresses {
        let _ = iproute::remove_address(name, *address).await;
    }
    if old.dns.is_some() {
        let _ = dns::revert(name).await;
    }
    if !old.addresses.is_empty() || !old.routes.is_empty() {
        tracing::info!(interface = %port.interface, "access to the network lost: managed addresses and routes removed");
    }
    port.lock_view().applied = ManagedPlan::default();
}

/// One INFO line per status change of a joined network, with what the status means.
fn log_status(port: &Port, status: NetworkStatus) {
    let meaning = match status {
        NetworkStatus::Ok => "configured by its controller",
        NetworkStatus::RequestingConfiguration => "waiting for the controller's answer",
        NetworkStatus::AccessDenied => {
            "the controller refused: this member is not authorized (authorize it on the controller)"
        }
        NetworkStatus::NotFound => "the controller has no network with this ID",
        NetworkStatus::PortError => "the TAP interface could not be set up",
        NetworkStatus::ClientTooOld => "the controller refused our protocol version",
        NetworkStatus::AuthenticationRequired => {
            "the controller requires SSO authentication, which zt does not support"
        }
    };
    tracing::info!(
        network = %port.nwid,
        interface = %port.interface,
        status = status.name(),
        "network status: {meaning}"
    );
}

/// Node events for one port, inside the instance's driver task.
struct PortEvents {
    /// Weak: the handler stays attached to the engine after a leave, and must not keep the
    /// TAP open.
    port: std::sync::Weak<Port>,
}

impl EventHandler for PortEvents {
    fn finished(&self) -> bool {
        self.port
            .upgrade()
            .is_none_or(|port| port.closed.load(Ordering::Relaxed))
    }

    fn on_event(&mut self, _node: &mut Node, _now: u64, event: &Event) {
        let Some(port) = self.port.upgrade() else {
            return;
        };
        if port.closed.load(Ordering::Relaxed) {
            return;
        }
        match event {
            Event::Frame {
                nwid,
                src_mac,
                dst_mac,
                ethertype,
                payload,
            } if *nwid == port.nwid => {
                let mut frame = vec![0u8; ETHERNET_HEADER_LEN + payload.len()];
                let (header, rest) = frame.split_at_mut(ETHERNET_HEADER_LEN);
                if let Ok(header) = header.try_into() {
                    EthernetHeader {
                        destination: *dst_mac,
                        source: *src_mac,
                        ethertype: *ethertype,
                    }
                    .emit(header);
                }
                rest.copy_from_slice(payload);
                // Non-blocking: a full TAP queue drops the frame like a congested port.
                let _ = port.tap.try_write_frame(&frame);
            }
            Event::NetworkConfigChanged { nwid, config }
                if *nwid == port.nwid
                    && port
                        .configs
                        .try_send(Managed::Apply(config.clone()))
                        .is_err() =>
            {
                tracing::warn!(interface = %port.interface, "config queue full");
            }
            Event::NetworkStatusChanged { nwid, status } if *nwid == port.nwid => {
                port.lock_view().status = Some(*status);
                log_status(&port, *status);
                if matches!(
                    status,
                    NetworkStatus::AccessDenied | NetworkStatus::NotFound
                ) && port.configs.try_send(Managed::Withdraw).is_err()
                {
                    tracing::warn!(interface = %port.interface, "config queue full");
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_wire::inet::InetAddress;
    use zt_wire::netconf::Route;

    fn nwid() -> NetworkId {
        NetworkId(0x8056_c2e2_1c00_0001)
    }
    fn own() -> Address {
        Address::new(0x0011_2233_4455).unwrap()
    }
    fn inet(text: &str, bits: u16) -> InetAddress {
        InetAddress::new(text.parse().unwrap(), bits)
    }
    fn route(target: &str, bits: u16, via: Option<&str>) -> Route {
        Route {
            target: inet(target, bits),
            via: via.map_or(InetAddress::default(), |v| inet(v, 0)),
            flags: 0,
            metric: 0,
        }
    }
    fn config() -> NetworkConfig {
        let mut c = NetworkConfig::new(nwid(), own());
        c.static_ips = vec![inet("10.147.17.5", 24), inet("8.8.4.4", 32)];
        c.routes = vec![
            route("10.147.17.0", 24, None),
            route("192.168.50.0", 24, Some("10.147.17.1")),
            route("0.0.0.0", 0, Some("10.147.17.1")),
            route("1.2.3.0", 24, Some("10.147.17.1")),
            route("10.147.99.0", 24, Some("10.147.17.5")),
        ];
        c
    }
    fn p(text: &str, bits: u16) -> Prefix {
        Prefix::new(text.parse().unwrap(), bits).unwrap()
    }

    #[test]
    fn defaults_apply_private_addresses_and_routes_only() {
        let plan = plan_managed(&config(), AllowSettings::default());
        assert_eq!(plan.addresses, vec![p("10.147.17.5", 24)]);
        // The on-link /24 is the connected route; the one via ourselves is skipped.
        assert_eq!(
            plan.routes,
            vec![ManagedRoute {
                target: p("192.168.50.0", 24),
                gateway: Some("10.147.17.1".parse().unwrap()),
                metric: 0
            }]
        );
    }

    #[test]
    fn allow_global_and_default_widen_the_plan() {
        let allow = AllowSettings {
            managed: true,
            global: true,
            default_route: true,
            dns: false,
        };
        let plan = plan_managed(&config(), allow);
        assert_eq!(plan.addresses, vec![p("10.147.17.5", 24), p("8.8.4.4", 32)]);
        let targets: Vec<Prefix> = plan.routes.iter().map(|r| r.target).collect();
        assert_eq!(
            targets,
            vec![p("192.168.50.0", 24), p("0.0.0.0", 0), p("1.2.3.0", 24)]
        );
        let only_default = AllowSettings {
            global: false,
            ..allow
        };
        let targets: Vec<Prefix> = plan_managed(&config(), only_default)
            .routes
            .iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(targets, vec![p("192.168.50.0", 24), p("0.0.0.0", 0)]);
    }

    #[test]
    fn allow_managed_off_applies_nothing() {
        let allow = AllowSettings {
            managed: false,
            global: true,
            default_route: true,
            dns: false,
        };
        assert_eq!(plan_managed(&config(), allow), ManagedPlan::default());
    }

    #[test]
    fn pushed_dns_is_planned_only_with_allow_dns() {
        let mut pushed = config();
        pushed.dns = zt_wire::netconf::Dns {
            domain: "lab.example".into(),
            servers: vec![inet("10.147.17.1", 53)],
        };
        assert_eq!(plan_managed(&pushed, AllowSettings::default()).dns, None);
        let dns_only = AllowSettings {
            managed: false,
            dns: true,
            ..AllowSettings::default()
        };
        let plan = plan_managed(&pushed, dns_only);
        assert!(plan.addresses.is_empty());
        assert_eq!(
            plan.dns,
            Some(LinkDns {
                domain: "lab.example".into(),
                servers: vec!["10.147.17.1".parse().unwrap()],
            })
        );
        assert_eq!(
            plan_managed(&config(), dns_only).dns,
            None,
            "nothing pushed"
        );
    }

    #[test]
    fn saved_configs_round_trip_and_damage_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let c = NetworkConfig::adhoc(NetworkId(0xff00_00ff_ff00_0000), own(), 1_700_000_000_000)
            .unwrap();
        save_config(tmp.path(), &c).unwrap();
        let path = saved_config_path(tmp.path(), c.network_id);
        assert!(path.ends_with("networks.d/ff0000ffff000000.conf"));
        assert_eq!(load_config(tmp.path(), c.network_id), Some(c.clone()));
        // A file for another network under this name is not restored.
        assert_eq!(load_config(tmp.path(), nwid()), None);
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(load_config(tmp.path(), c.network_id), None);
        remove_saved_config(tmp.path(), c.network_id);
        assert!(!path.exists());
    }
}
