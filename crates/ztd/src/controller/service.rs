//! The controller service: one thread per instance controller owns its database, off the
//! packet path. A slow or briefly failing database delays answers, never packets.
//!
//! ```text
//!   driver task: Event::ConfigRequest ──try_send──> request queue (bounded; full: dropped, counted)
//!   menus / REST / JSON API ──> ControllerService::{update_*, delete_*, read} ──> command queue
//!                                                        │
//!   service thread: Controller::answer / mutation + Controller::outgoing (zt-controller decides, signs)
//!                                                        │ ControllerPacket
//!       deliver() ──> InstanceHandle::transmit_controller_packets ──> transmit(&mut Node) (bytes only)
//! ```
//!
//! Several controllers may share one database (PostgreSQL): each writes its changes with a
//! note in the database's change feed, and each follows the feed (woken by the database's
//! `NOTIFY`, or every [`FEED_POLL`] at the latest), sending the pushes a change by another
//! controller owes to the members whose session is here (they asked for their config through
//! this controller within [`ONLINE_WINDOW_MS`]). The writer itself pushes to every online
//! member, as with a database of its own.
//!
//! The node's handler never waits: a request that finds the queue full is dropped and counted
//! ([`ServiceStatus::requests_dropped`]); the member sends its NETWORK_CONFIG_REQUEST again.
//! Management calls wait for their turn on their own queue, which the service serves first.
//! Every change that owes members packets goes through one method here, whatever the face
//! (console, RouterOS REST, zerotier JSON API), so all faces push and revoke alike.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use zt_controller::controller::ONLINE_WINDOW_MS;
use zt_controller::model::format_network_id;
use zt_controller::storage::{ChangeSeq, FeedListener, ItemNo, LegacyItemNumbers, MemberFilter};
use zt_controller::{
    Controller, ControllerError, ControllerOptions, Member, MemberPatch, Network, NetworkId,
    NetworkPatch, Outgoing, PostgresStorage, Pushes, Reply, SqliteStorage, Storage, StorageError,
};
use zt_crypto::{Address, Identity};
use zt_wire::dictionary::Dictionary;
use zt_wire::network_id::NetworkId as WireNetworkId;

use crate::runtime::driver::{InstanceHandle, NotRunning};
use crate::runtime::engine::EngineClock;

/// How many config requests may wait for the controller. A burst beyond this (a slow
/// database under many joining members) is dropped rather than queued without bound.
pub const REQUEST_QUEUE_LIMIT: usize = 1024;
/// Management calls waiting for the controller; callers wait for room.
const COMMAND_QUEUE: usize = 64;
/// Jobs decided together before their packets go to the node in one call.
const BATCH_LIMIT: usize = 256;
/// Packets handed to the node in one call at most.
const DELIVERY_SLICE: usize = 256;
/// The first drop and then every this many are logged (a full queue can last a while).
const DROP_LOG_EVERY: u64 = 1024;
/// The change feed is read at least this often (a notification wakes the service sooner).
pub const FEED_POLL: Duration = Duration::from_secs(1);
/// Changes read from the feed in one query.
const FEED_PAGE: usize = 256;
/// Sessions older than the online window are forgotten this often.
const SESSION_PRUNE_EVERY: Duration = Duration::from_secs(30);

/// The storage the service owns (SQLite in the daemon; tests wrap it).
pub type ServiceStorage = Box<dyn Storage + Send>;
/// The controller the service owns.
pub type ServiceController = Controller<ServiceStorage>;
/// Opens the storage on the service thread; called again after a failure.
pub type StorageOpener = Box<dyn FnMut() -> Result<ServiceStorage, StorageError> + Send>;

/// The SQLite database at `path`, opened on the service thread.
pub fn sqlite_opener(path: PathBuf) -> StorageOpener {
    Box::new(move || SqliteStorage::open(&path).map(|storage| Box::new(storage) as ServiceStorage))
}

/// The PostgreSQL database at `url`, as the storage of controller `address` (connected on
/// the service thread, again after a failure).
pub fn postgres_opener(url: String, address: Address) -> StorageOpener {
    Box::new(move || {
        PostgresStorage::connect(&url, Some(address))
            .map(|storage| Box::new(storage) as ServiceStorage)
    })
}

/// How a service is set up besides its storage.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Config requests that may wait (see [`REQUEST_QUEUE_LIMIT`]).
    pub request_queue_limit: usize,
    /// A PostgreSQL database to `LISTEN` on for changes by other controllers; without it
    /// the feed is read every [`FEED_POLL`].
    pub feed_notifications: Option<String>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            request_queue_limit: REQUEST_QUEUE_LIMIT,
            feed_notifications: None,
        }
    }
}

/// A NETWORK_CONFIG_REQUEST as the node reported it.
#[derive(Debug)]
pub struct ConfigRequest {
    /// Engine time when the request arrived: the decision uses it (rate limit, COM time).
    pub received_at: u64,
    pub requester: Identity,
    pub nwid: NetworkId,
    pub metadata: Dictionary,
    /// The request's packet ID: the reply's `in_re`.
    pub request_packet_id: u64,
}

/// Something the controller sends through its node.
#[derive(Debug)]
pub enum ControllerPacket {
    /// The answer to a config request.
    Reply {
        dest: Address,
        nwid: NetworkId,
        request_packet_id: u64,
        reply: Reply,
    },
    /// A push or revocation an administrative change owes a member.
    Push(Outgoing),
}

/// Why a management call on the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// The database cannot be opened (the service retries on the next call).
    #[error("controller database unavailable: {0}")]
    Unavailable(String),
    /// The service ended (its instance was removed).
    #[error("controller service stopped")]
    Stopped,
}

impl From<StorageError> for ServiceError {
    fn from(e: StorageError) -> Self {
        ServiceError::Controller(e.into())
    }
}

/// Counters of one controller service (shown in `/controller`).
#[derive(Debug, Default)]
struct Counters {
    requests_dropped: AtomicU64,
    requests_answered: AtomicU64,
    requests_failed: AtomicU64,
    configs_pushed: AtomicU64,
    revocations_issued: AtomicU64,
    pushes_failed: AtomicU64,
    packets_undelivered: AtomicU64,
    feed_changes: AtomicU64,
    feed_errors: AtomicU64,
}

fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// A snapshot of a service's queue and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Requests the queue holds at most.
    pub request_queue_limit: usize,
    /// Requests waiting now.
    pub requests_queued: usize,
    /// Requests dropped because the queue was full (the members ask again).
    pub requests_dropped: u64,
    /// Requests decided (configs, refusals and deliberate silence).
    pub requests_answered: u64,
    /// Requests that could not be decided (database failure); nothing was sent.
    pub requests_failed: u64,
    /// Configs pushed after changes.
    pub configs_pushed: u64,
    /// Revocation packets issued after members lost access.
    pub revocations_issued: u64,
    /// Pushes or revocations that could not be produced.
    pub pushes_failed: u64,
    /// Packets not handed to the node because its instance was not running.
    pub packets_undelivered: u64,
    /// Changes by other controllers on the same database read from the change feed.
    pub feed_changes: u64,
    /// Failed reads of the change feed (database unreachable).
    pub feed_errors: u64,
}

/// The way from a controller to its instance's node, set while the instance runs (the
/// controller outlives restarts of its instance).
#[derive(Default)]
pub struct NodeRoute {
    handle: Mutex<Option<InstanceHandle>>,
}

impl NodeRoute {
    /// The instance (re)started with this handle.
    pub fn attach(&self, handle: InstanceHandle) {
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    fn current(&self) -> Option<InstanceHandle> {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Hand `packets` to the instance's node. The one place the controller reaches into the
/// instance: a typed command on its management queue, carried out by [`transmit`].
async fn deliver(route: &NodeRoute, packets: Vec<ControllerPacket>) -> Result<(), NotRunning> {
    let handle = route.current().ok_or(NotRunning)?;
    handle.transmit_controller_packets(packets).await
}

/// Put `packets` on the wire through `node`: bytes only, everything was decided and signed
/// by zt-controller.
pub fn transmit(node: &mut zt_node::Node, now: u64, packets: Vec<ControllerPacket>) {
    for packet in packets {
        let (dest, sent) = match packet {
            ControllerPacket::Reply {
                dest,
                nwid,
                request_packet_id,
                reply,
            } => {
                let wire_nwid = WireNetworkId(nwid);
                let sent = match reply {
                    Reply::Nothing => Ok(()),
                    Reply::Error(code) => {
                        // ctl_netns reads this line to see refusals reach the member.
                        tracing::debug!(member = %dest, network = %format_network_id(nwid), ?code, "config request refused");
                        node.send_network_error(now, dest, wire_nwid, request_packet_id, code)
                    }
                    Reply::Config(config) => node.send_network_config(
                        now,
                        dest,
                        wire_nwid,
                        Some(request_packet_id),
                        &config,
                    ),
                };
                (dest, sent)
            }
            ControllerPacket::Push(Outgoing::Config { dest, nwid, config }) => (
                dest,
                node.send_network_config(now, dest, WireNetworkId(nwid), None, &config),
            ),
            ControllerPacket::Push(Outgoing::Revocation { dest, revocation }) => {
                (dest, node.send_revocation(now, dest, &revocation))
            }
        };
        if let Err(error) = sent {
            tracing::warn!(%error, member = %dest, "controller packet not sent");
        }
    }
}

/// What a management call does on the service thread.
struct Work<'a> {
    controller: &'a mut ServiceController,
    signer: &'a Identity,
    now: i64,
    packets: &'a mut Vec<ControllerPacket>,
    counters: &'a Counters,
}

impl Work<'_> {
    /// Queue the packets `pushes` owes (sent after the batch).
    fn push(&mut self, pushes: &Pushes) {
        if pushes.is_empty() {
            return;
        }
        let items = self
            .controller
            .outgoing(self.now, pushes, self.signer, rand::random::<u32>);
        for item in items {
            match item {
                Ok(outgoing) => {
                    match &outgoing {
                        Outgoing::Config { .. } => count(&self.counters.configs_pushed, 1),
                        Outgoing::Revocation { .. } => count(&self.counters.revocations_issued, 1),
                    }
                    self.packets.push(ControllerPacket::Push(outgoing));
                }
                Err(error) => {
                    count(&self.counters.pushes_failed, 1);
                    tracing::warn!(%error, network = %format_network_id(pushes.network_id), "controller push not issued");
                }
            }
        }
    }
}

type Command = Box<dyn for<'a, 'b> FnOnce(Result<&'a mut Work<'b>, String>) + Send>;

/// A handle on one controller's service; cheap to clone. The service ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct ControllerService {
    address: Address,
    requests: mpsc::Sender<ConfigRequest>,
    request_queue_limit: usize,
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
}

impl ControllerService {
    /// Start the service thread for the controller `identity` (with its private key: it
    /// signs), over the storage `open` returns, sending through `route`.
    pub fn start(
        identity: Identity,
        open: StorageOpener,
        route: Arc<NodeRoute>,
        clock: EngineClock,
    ) -> ControllerService {
        Self::start_with_queue(identity, open, route, clock, REQUEST_QUEUE_LIMIT)
    }

    /// [`ControllerService::start`] with another request queue limit.
    pub fn start_with_queue(
        identity: Identity,
        open: StorageOpener,
        route: Arc<NodeRoute>,
        clock: EngineClock,
        request_queue_limit: usize,
    ) -> ControllerService {
        let options = ServiceOptions {
            request_queue_limit,
            ..ServiceOptions::default()
        };
        Self::start_with(identity, open, route, clock, options)
    }

    /// [`ControllerService::start`] with `options`.
    pub fn start_with(
        identity: Identity,
        open: StorageOpener,
        route: Arc<NodeRoute>,
        clock: EngineClock,
        options: ServiceOptions,
    ) -> ControllerService {
        let request_queue_limit = options.request_queue_limit.max(1);
        let (requests_tx, requests) = mpsc::channel(request_queue_limit);
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let counters = Arc::new(Counters::default());
        let address = identity.address();
        let feed_wake = Arc::new(Notify::new());
        if let Some(url) = options.feed_notifications {
            listen_for_changes(address, url, Arc::downgrade(&feed_wake));
        }
        let service = ServiceLoop {
            slot: ControllerSlot {
                controller: None,
                open,
                signer: identity,
                // Non-zero: zero is what a controller without options writes.
                writer_id: rand::random::<u64>() | 1,
            },
            route,
            clock,
            counters: counters.clone(),
            requests,
            commands,
            sessions: HashMap::new(),
            sessions_pruned: Instant::now(),
            feed_cursor: None,
            feed_wake,
            next_feed_read: Instant::now(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("controller-{address}"))
            .spawn(move || service.run());
        if let Err(error) = spawned {
            // The receivers are gone with the closure: every call reports Stopped and
            // every request counts as dropped.
            tracing::error!(%error, "controller service thread not started");
        }
        ControllerService {
            address,
            requests: requests_tx,
            request_queue_limit,
            commands: commands_tx,
            counters,
        }
    }

    /// The controller node's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Queue a config request without waiting (the caller is the packet path). False if it
    /// was dropped: the queue is full or the service ended.
    pub fn submit(&self, request: ConfigRequest) -> bool {
        match self.requests.try_send(request) {
            Ok(()) => true,
            Err(_) => {
                let dropped = self
                    .counters
                    .requests_dropped
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if dropped % DROP_LOG_EVERY == 1 {
                    tracing::warn!(controller = %self.address, dropped, limit = self.request_queue_limit, "controller request queue full: config requests dropped (members ask again)");
                }
                false
            }
        }
    }

    /// The queue and counters now.
    pub fn status(&self) -> ServiceStatus {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServiceStatus {
            request_queue_limit: self.request_queue_limit,
            requests_queued: self
                .request_queue_limit
                .saturating_sub(self.requests.capacity()),
            requests_dropped: load(&c.requests_dropped),
            requests_answered: load(&c.requests_answered),
            requests_failed: load(&c.requests_failed),
            configs_pushed: load(&c.configs_pushed),
            revocations_issued: load(&c.revocations_issued),
            pushes_failed: load(&c.pushes_failed),
            packets_undelivered: load(&c.packets_undelivered),
            feed_changes: load(&c.feed_changes),
            feed_errors: load(&c.feed_errors),
        }
    }

    /// Run `f` on the service thread and wait for its result.
    async fn call<R: Send + 'static>(
        &self,
        f: impl for<'a, 'b> FnOnce(&'a mut Work<'b>) -> Result<R, ServiceError> + Send + 'static,
    ) -> Result<R, ServiceError> {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |work| {
            let result = match work {
                Ok(work) => f(work),
                Err(why) => Err(ServiceError::Unavailable(why)),
            };
            let _ = tx.send(result);
        });
        self.commands
            .send(command)
            .await
            .map_err(|_| ServiceError::Stopped)?;
        rx.await.map_err(|_| ServiceError::Stopped)?
    }

    /// Read the controller (networks, members) on the service thread.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&ServiceController) -> R + Send + 'static,
    ) -> Result<R, ServiceError> {
        self.call(move |work| Ok(f(work.controller))).await
    }

    /// Apply a change and send what it owes the members.
    async fn change<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ServiceController, i64) -> Result<(R, Pushes), ControllerError>
            + Send
            + 'static,
    ) -> Result<R, ServiceError> {
        self.call(move |work| {
            let (result, pushes) = f(work.controller, work.now)?;
            work.push(&pushes);
            Ok(result)
        })
        .await
    }

    /// Create a network: `nwid`, or a fresh random number of this controller.
    pub async fn create_network(
        &self,
        nwid: Option<NetworkId>,
        patch: NetworkPatch,
    ) -> Result<Network, ServiceError> {
        self.change(move |ctl, now| {
            let network = match nwid {
                Some(nwid) => ctl.create_network(now, nwid, &patch)?,
                None => ctl.create_network_with_random_id(now, &patch, rand::random::<u32>)?,
            };
            let nothing = Pushes::none(network.id);
            Ok((network, nothing))
        })
        .await
    }

    /// Change network `nwid`, or create it if absent (the JSON API's POST).
    pub async fn put_network(
        &self,
        nwid: NetworkId,
        patch: NetworkPatch,
    ) -> Result<Network, ServiceError> {
        self.change(move |ctl, now| match ctl.network(nwid)? {
            Some(_) => ctl.update_network(now, nwid, &patch),
            None => Ok((ctl.create_network(now, nwid, &patch)?, Pushes::none(nwid))),
        })
        .await
    }

    /// Change network `nwid`; its online members get the new config.
    pub async fn update_network(
        &self,
        nwid: NetworkId,
        patch: NetworkPatch,
    ) -> Result<Network, ServiceError> {
        self.change(move |ctl, now| ctl.update_network(now, nwid, &patch))
            .await
    }

    /// Delete network `nwid` and its members (`None` if it did not exist); every member
    /// that had access is revoked.
    pub async fn delete_network(&self, nwid: NetworkId) -> Result<Option<Network>, ServiceError> {
        self.change(move |ctl, now| Ok(ctl.delete_network(now, nwid)?))
            .await
    }

    /// Create member `address` of `nwid` with `patch`; `None` (and no change) if it exists.
    pub async fn add_member(
        &self,
        nwid: NetworkId,
        address: Address,
        patch: MemberPatch,
        face: Face,
    ) -> Result<Option<Member>, ServiceError> {
        let added = self
            .change(move |ctl, now| {
                if ctl.member(nwid, address)?.is_some() {
                    return Ok((None, Pushes::none(nwid)));
                }
                let (member, pushes) = ctl.update_member(now, nwid, address, &patch)?;
                Ok((Some(member), pushes))
            })
            .await?;
        if let Some(member) = &added {
            log_member_change(face, nwid, None, Some(member));
        }
        Ok(added)
    }

    /// Create or change member `address` of `nwid`; it (or, for a bridge change, every
    /// online member) gets its config, and a member that lost access is revoked.
    pub async fn update_member(
        &self,
        nwid: NetworkId,
        address: Address,
        patch: MemberPatch,
        face: Face,
    ) -> Result<Member, ServiceError> {
        let (before, member) = self
            .change(move |ctl, now| {
                let before = ctl.member(nwid, address)?;
                let (member, pushes) = ctl.update_member(now, nwid, address, &patch)?;
                Ok(((before, member), pushes))
            })
            .await?;
        log_member_change(face, nwid, before.as_ref(), Some(&member));
        Ok(member)
    }

    /// Change the member with item number `item` (the RouterOS faces name members so), as
    /// [`ControllerService::update_member`] does; `None` (and no change) if there is none.
    pub async fn update_member_item(
        &self,
        item: ItemNo,
        patch: MemberPatch,
        face: Face,
    ) -> Result<Option<Member>, ServiceError> {
        let changed = self
            .change(move |ctl, now| {
                let Some(before) = member_numbered(ctl, item)? else {
                    return Ok((None, Pushes::none(0)));
                };
                let (member, pushes) =
                    ctl.update_member(now, before.network_id, before.address, &patch)?;
                Ok((Some((before, member)), pushes))
            })
            .await?;
        Ok(changed.map(|(before, member)| {
            log_member_change(face, member.network_id, Some(&before), Some(&member));
            member
        }))
    }

    /// Delete the member with item number `item` (`None` if there is none), as
    /// [`ControllerService::delete_member`] does.
    pub async fn delete_member_item(
        &self,
        item: ItemNo,
        face: Face,
    ) -> Result<Option<Member>, ServiceError> {
        let deleted = self
            .change(move |ctl, now| match member_numbered(ctl, item)? {
                Some(m) => Ok(ctl.delete_member(now, m.network_id, m.address)?),
                None => Ok((None, Pushes::none(0))),
            })
            .await?;
        if let Some(member) = &deleted {
            log_member_change(face, member.network_id, Some(member), None);
        }
        Ok(deleted)
    }

    /// Give the records the item numbers of older versions' id files (see
    /// [`Storage::adopt_item_numbers`]); `false` if the database adopted numbers before.
    pub async fn adopt_item_numbers(
        &self,
        numbers: LegacyItemNumbers,
    ) -> Result<bool, ServiceError> {
        self.call(move |work| Ok(work.controller.storage_mut().adopt_item_numbers(&numbers)?))
            .await
    }

    /// Delete member `address` of `nwid` (`None` if it did not exist); revoked if it had
    /// access.
    pub async fn delete_member(
        &self,
        nwid: NetworkId,
        address: Address,
        face: Face,
    ) -> Result<Option<Member>, ServiceError> {
        let deleted = self
            .change(move |ctl, now| Ok(ctl.delete_member(now, nwid, address)?))
            .await?;
        log_member_change(face, nwid, deleted.as_ref(), None);
        Ok(deleted)
    }
}

/// The member with item number `item`.
fn member_numbered(ctl: &ServiceController, item: ItemNo) -> Result<Option<Member>, StorageError> {
    let filter = MemberFilter {
        item: Some(item),
        ..MemberFilter::default()
    };
    Ok(ctl.storage().member_items(filter)?.pop().map(|(_, m)| m))
}

/// Which management face asked for a controller change, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `/zerotier/controller/member` of the console or the RouterOS REST API.
    RouterOs,
    /// The zerotier-one JSON API (`/controller/network/…/member/…`: ztncui, zero-ui, ZTNet).
    ZerotierApi,
}

impl std::fmt::Display for Face {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Face::RouterOs => "routeros",
            Face::ZerotierApi => "zerotier-api",
        })
    }
}

/// One INFO line when a member gains or loses access (or appears, or is deleted): what an
/// administrator reading the log wants to find again.
fn log_member_change(face: Face, nwid: NetworkId, before: Option<&Member>, after: Option<&Member>) {
    let was = before.is_some_and(|m| m.authorized);
    let is = after.is_some_and(|m| m.authorized);
    let Some(member) = after.or(before) else {
        return;
    };
    let network = format_network_id(nwid);
    let address = member.address;
    match (before.is_some(), after.is_some(), was, is) {
        (_, true, false, true) => {
            tracing::info!(%network, member = %address, %face, "member authorized")
        }
        (_, true, true, false) => {
            tracing::info!(%network, member = %address, %face, "member deauthorized")
        }
        (true, false, _, _) => {
            tracing::info!(%network, member = %address, %face, was_authorized = was, "member deleted")
        }
        (false, true, _, _) => {
            tracing::info!(%network, member = %address, %face, authorized = is, "member added")
        }
        _ => {}
    }
}

/// Wakes `wake` whenever a controller commits a change to the PostgreSQL database at `url`,
/// from a thread of its own (the listener blocks), until the service drops `wake`.
fn listen_for_changes(address: Address, url: String, wake: Weak<Notify>) {
    let spawned = std::thread::Builder::new()
        .name(format!("controller-feed-{address}"))
        .spawn(move || {
            let mut listener = FeedListener::new(&url);
            let mut failing = false;
            while let Some(wake) = wake.upgrade() {
                match listener.wait(FEED_POLL) {
                    Ok(heard) => {
                        failing = false;
                        if heard {
                            wake.notify_one();
                        }
                    }
                    Err(error) => {
                        if !failing {
                            tracing::warn!(%error, controller = %address, "controller change notifications lost; reading the feed every second until they are back");
                        }
                        failing = true;
                        drop(wake);
                        std::thread::sleep(FEED_POLL);
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "controller change listener not started; the feed is polled");
    }
}

/// A job the service thread picked up.
enum Job {
    Request(ConfigRequest),
    Command(Command),
    /// Time to read the change feed.
    Feed,
}

/// The service thread's state: the only owner of the controller and its storage.
struct ServiceLoop {
    slot: ControllerSlot,
    route: Arc<NodeRoute>,
    clock: EngineClock,
    counters: Arc<Counters>,
    requests: mpsc::Receiver<ConfigRequest>,
    commands: mpsc::Receiver<Command>,
    /// Members that asked for a config through this controller, and when (engine ms): the
    /// sessions that are here, which get the pushes of other controllers' changes.
    sessions: HashMap<(NetworkId, Address), i64>,
    sessions_pruned: Instant,
    /// The last change of the feed seen; `None` until the database was first read.
    feed_cursor: Option<ChangeSeq>,
    feed_wake: Arc<Notify>,
    next_feed_read: Instant,
}

impl ServiceLoop {
    fn run(mut self) {
        // A runtime of its own: the thread waits on its queues and on the node's answer
        // without occupying a worker of the daemon's runtime. The database work runs outside
        // it (between the waits), where a blocking client may run a runtime of its own.
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "controller service cannot start its runtime");
                return;
            }
        };
        while let Some(batch) = runtime.block_on(self.next_batch()) {
            let mut packets = self.work(batch);
            if Instant::now() >= self.next_feed_read {
                self.follow_feed(&mut packets);
            }
            runtime.block_on(self.deliver_all(packets));
        }
    }

    /// In slices, so the node takes datagrams between them: deleting a network owes each of
    /// its admitted members' revocations to every online member.
    async fn deliver_all(&self, mut packets: Vec<ControllerPacket>) {
        while !packets.is_empty() {
            let rest = packets.split_off(packets.len().min(DELIVERY_SLICE));
            let n = packets.len() as u64;
            if deliver(&self.route, packets).await.is_err() {
                count(&self.counters.packets_undelivered, n);
                tracing::debug!(
                    packets = n,
                    "instance not running: controller packets not sent"
                );
            }
            packets = rest;
        }
    }

    /// Wait for a job, then take what else is queued (management first), up to a limit.
    /// `None` when every handle is gone.
    async fn next_batch(&mut self) -> Option<Vec<Job>> {
        let first = tokio::select! {
            biased;
            command = self.commands.recv() => Job::Command(command?),
            request = self.requests.recv() => Job::Request(request?),
            () = self.feed_wake.notified() => Job::Feed,
            () = tokio::time::sleep_until(self.next_feed_read) => Job::Feed,
        };
        let mut batch = vec![first];
        while batch.len() < BATCH_LIMIT {
            if let Ok(command) = self.commands.try_recv() {
                batch.push(Job::Command(command));
            } else if let Ok(request) = self.requests.try_recv() {
                batch.push(Job::Request(request));
            } else {
                break;
            }
        }
        Some(batch)
    }

    /// Decide every job of the batch; returns the packets to send.
    fn work(&mut self, batch: Vec<Job>) -> Vec<ControllerPacket> {
        let mut packets = Vec::new();
        for job in batch {
            match job {
                Job::Request(request) => {
                    if let Some(packet) = self.answer(request) {
                        packets.push(packet);
                    }
                }
                Job::Feed => self.next_feed_read = Instant::now(),
                Job::Command(command) => {
                    let now = self.clock.now() as i64;
                    match self.slot.get() {
                        Ok((controller, signer)) => command(Ok(&mut Work {
                            controller,
                            signer,
                            now,
                            packets: &mut packets,
                            counters: &self.counters,
                        })),
                        Err(why) => command(Err(why)),
                    }
                }
            }
        }
        packets
    }

    /// Send what the changes of other controllers since the last read owe the members whose
    /// session is here.
    fn follow_feed(&mut self, packets: &mut Vec<ControllerPacket>) {
        self.next_feed_read = Instant::now() + FEED_POLL;
        let now = self.clock.now() as i64;
        if self.sessions_pruned.elapsed() >= SESSION_PRUNE_EVERY {
            self.sessions_pruned = Instant::now();
            self.sessions
                .retain(|_, asked| now.saturating_sub(*asked) < ONLINE_WINDOW_MS);
        }
        let writer_id = self.slot.writer_id;
        let Ok((controller, signer)) = self.slot.get() else {
            return;
        };
        let mut cursor = match self.feed_cursor {
            Some(cursor) => cursor,
            // Changes before this service started owe nothing to sessions it has not had.
            None => match controller.latest_change() {
                Ok(latest) => {
                    self.feed_cursor = Some(latest);
                    return;
                }
                Err(error) => {
                    count(&self.counters.feed_errors, 1);
                    tracing::warn!(%error, "controller change feed not read");
                    return;
                }
            },
        };
        loop {
            let changes = match controller.changes_after(cursor, FEED_PAGE) {
                Ok(changes) => changes,
                Err(error) => {
                    count(&self.counters.feed_errors, 1);
                    tracing::warn!(%error, "controller change feed not read");
                    break;
                }
            };
            let mut work = Work {
                controller: &mut *controller,
                signer,
                now,
                packets: &mut *packets,
                counters: &self.counters,
            };
            for change in &changes {
                cursor = change.seq;
                if change.note.writer == writer_id {
                    continue;
                }
                count(&self.counters.feed_changes, 1);
                let here = |nwid: NetworkId, member: &Address| {
                    self.sessions
                        .get(&(nwid, *member))
                        .is_some_and(|asked| now.saturating_sub(*asked) < ONLINE_WINDOW_MS)
                };
                work.push(&sessions_only(&change.note.pushes, here));
            }
            if changes.len() < FEED_PAGE {
                break;
            }
        }
        self.feed_cursor = Some(cursor);
    }

    fn answer(&mut self, request: ConfigRequest) -> Option<ControllerPacket> {
        let dest = request.requester.address();
        self.sessions
            .insert((request.nwid, dest), request.received_at as i64);
        let answered = match self.slot.get() {
            Ok((controller, signer)) => controller
                .answer(
                    request.received_at as i64,
                    &request.requester,
                    request.nwid,
                    &request.metadata,
                    signer,
                )
                .map_err(|e| e.to_string()),
            Err(why) => Err(why),
        };
        match answered {
            Ok(reply) => {
                count(&self.counters.requests_answered, 1);
                if matches!(reply, Reply::Nothing) {
                    return None;
                }
                Some(ControllerPacket::Reply {
                    dest,
                    nwid: request.nwid,
                    request_packet_id: request.request_packet_id,
                    reply,
                })
            }
            Err(error) => {
                // Not a refusal: the member hears nothing and asks again.
                count(&self.counters.requests_failed, 1);
                tracing::error!(%error, member = %dest, network = %format_network_id(request.nwid), "config request not answered");
                None
            }
        }
    }
}

/// The part of `pushes` for the members `here` says have their session with this controller.
fn sessions_only(pushes: &Pushes, here: impl Fn(NetworkId, &Address) -> bool) -> Pushes {
    let nwid = pushes.network_id;
    let mut mine = Pushes::none(nwid);
    mine.config_to = pushes
        .config_to
        .iter()
        .copied()
        .filter(|a| here(nwid, a))
        .collect();
    for plan in &pushes.revocations {
        let recipients: Vec<Address> = plan
            .recipients
            .iter()
            .copied()
            .filter(|a| here(plan.network_id, a))
            .collect();
        if !recipients.is_empty() {
            let mut plan = plan.clone();
            plan.recipients = recipients;
            mine.revocations.push(plan);
        }
    }
    mine
}

/// The service's controller and what opens it: the database is opened on first use, and
/// again on the next use after it could not be.
struct ControllerSlot {
    controller: Option<ServiceController>,
    open: StorageOpener,
    /// The controller's identity, with its private key: it signs.
    signer: Identity,
    /// This service among the writers of the database (its own changes are skipped in the
    /// feed).
    writer_id: u64,
}

impl ControllerSlot {
    /// The controller, opening the database if it is not open, and the identity it signs with.
    fn get(&mut self) -> Result<(&mut ServiceController, &Identity), String> {
        if self.controller.is_none() {
            match (self.open)() {
                Ok(storage) => {
                    let options = ControllerOptions {
                        writer_id: self.writer_id,
                        ..ControllerOptions::default()
                    };
                    self.controller = Some(Controller::with_options(
                        self.signer.address(),
                        storage,
                        options,
                    ))
                }
                Err(error) => {
                    tracing::error!(%error, "controller database cannot be opened");
                    return Err(error.to_string());
                }
            }
        }
        match &mut self.controller {
            Some(controller) => Ok((controller, &self.signer)),
            None => Err("not open".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing::{
        controller_identity, eventually, member_identity, Gate, GatedStorage, WAIT,
    };
    use crate::controller::{ControllerDb, ControllerRegistry, ControllerSubsystem};
    use crate::runtime::commands::Join;
    use crate::runtime::driver::InstanceRuntime;
    use crate::runtime::engine::{EngineStart, LocalSocket, LocalSocketId, PortRole};
    use crate::runtime::events::{EventChannel, InstanceInfo, Subsystem};
    use crate::runtime::node_engine::{NodeEngine, PLANET_FILE};
    use crate::runtime::sockets::BoundSocket;
    use std::net::SocketAddr;
    use std::path::Path;
    use zt_controller::model::network_id_for;
    use zt_controller::props::network_patch_from_properties;
    use zt_crypto::c25519::KeyPair;
    use zt_node::{Event, Verb};
    use zt_wire::inet::InetAddress;
    use zt_wire::verbs::user_message::UserMessage;
    use zt_wire::world::{Root, World, WorldType};

    fn request(from: &Identity, nwid: NetworkId, packet_id: u64) -> ConfigRequest {
        ConfigRequest {
            received_at: EngineClock::new().now(),
            requester: from.to_public(),
            nwid,
            metadata: Dictionary::new(),
            request_packet_id: packet_id,
        }
    }

    #[tokio::test]
    async fn a_full_request_queue_drops_and_counts() {
        let gate = Arc::new(Gate::default());
        let ctl = controller_identity();
        let service = ControllerService::start_with_queue(
            ctl.clone(),
            GatedStorage::opener(gate.clone()),
            Arc::default(),
            EngineClock::new(),
            4,
        );
        let nwid = network_id_for(ctl.address(), 1);
        let member = member_identity();
        // The first request is taken and held inside the database.
        gate.close();
        assert!(service.submit(request(&member, nwid, 1)));
        assert!(
            eventually(|| gate.held() > 0).await,
            "request never reached the storage"
        );
        // Four wait in the queue; the rest find it full and are dropped, counted.
        let accepted: Vec<bool> = (2..=8)
            .map(|id| service.submit(request(&member, nwid, id)))
            .collect();
        assert_eq!(accepted, [true, true, true, true, false, false, false]);
        let status = service.status();
        assert_eq!(status.request_queue_limit, 4);
        assert_eq!(status.requests_queued, 4);
        assert_eq!(status.requests_dropped, 3);
        assert_eq!(status.requests_answered, 0);
        // Once the database moves again, everything queued is answered.
        gate.open();
        assert!(eventually(|| service.status().requests_answered == 5).await);
        let status = service.status();
        assert_eq!((status.requests_queued, status.requests_dropped), (0, 3));
    }

    fn bind_loopback() -> (BoundSocket, SocketAddr) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let bound = socket.local_addr().unwrap();
        let bound_socket = BoundSocket {
            socket,
            bound,
            role: PortRole::Primary,
        };
        (bound_socket, bound)
    }

    /// An instance with a real node on `socket`, its planet in `dir`.
    fn start_instance(
        dir: &Path,
        identity: Identity,
        (socket, bound): (BoundSocket, SocketAddr),
        handlers: Vec<Box<dyn crate::runtime::events::EventHandler>>,
        clock: EngineClock,
    ) -> InstanceRuntime {
        let start = EngineStart {
            instance_name: format!("{}", identity.address()),
            interfaces: Vec::new(),
            identity,
            instance_dir: dir.to_path_buf(),
            home_worlds: None,
            sockets: vec![LocalSocket {
                id: LocalSocketId(0),
                bound,
                role: PortRole::Primary,
            }],
            port_mapping: false,
            now: clock.now(),
        };
        let engine = NodeEngine::start(start, handlers, Default::default()).unwrap();
        InstanceRuntime::start(
            vec![socket],
            Box::new(engine),
            clock,
            "test".into(),
            crate::runtime::tcp_fallback::TcpFallbackSettings::disabled(),
        )
        .unwrap()
    }

    /// A private planet whose only root is the controller's node at `at`, written into
    /// each of `dirs`.
    fn private_planet(ctl: &Identity, at: SocketAddr, dirs: &[&Path]) {
        let signer = KeyPair::generate(&mut rand_core::OsRng);
        let root = Root {
            identity: ctl.to_public(),
            stable_endpoints: vec![InetAddress::new(at.ip(), at.port())],
        };
        let planet =
            World::new_signed(WorldType::Planet, 7, 1, signer.public, vec![root], &signer).unwrap();
        for dir in dirs {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(PLANET_FILE), planet.to_bytes()).unwrap();
        }
    }

    /// The controller's instance, its controller handler from `registry`, plus `handlers`.
    fn start_controller_instance(
        dir: &Path,
        ctl: &Identity,
        socket: (BoundSocket, SocketAddr),
        registry: &Arc<ControllerRegistry>,
        mut handlers: Vec<Box<dyn crate::runtime::events::EventHandler>>,
        clock: EngineClock,
    ) -> InstanceRuntime {
        let info = InstanceInfo {
            name: "ctl".into(),
            dir: dir.to_path_buf(),
            address: ctl.address(),
        };
        let controller_handler = ControllerSubsystem::new(registry.clone())
            .attach(&info)
            .unwrap();
        handlers.insert(0, controller_handler);
        let runtime = start_instance(dir, ctl.clone(), socket, handlers, clock);
        registry.instance_started(dir, runtime.handle());
        runtime
    }

    /// A member's instance, once it reached its root, with the network configs it receives.
    async fn start_member(
        dir: &Path,
        member: &Identity,
        socket: (BoundSocket, SocketAddr),
        clock: EngineClock,
    ) -> (
        InstanceRuntime,
        InstanceHandle,
        tokio::sync::mpsc::Receiver<Event>,
    ) {
        let (configs, configured) =
            EventChannel::new(|e| matches!(e, Event::NetworkConfigChanged { .. }), 16);
        let runtime = start_instance(dir, member.clone(), socket, vec![Box::new(configs)], clock);
        let handle = runtime.handle();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !handle.is_online().await.unwrap_or(false) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "member never reached its root"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        (runtime, handle, configured)
    }

    /// Two controllers with one identity share a PostgreSQL database. The member's session
    /// is with controller B (its root); an administrator authorizes it through controller A,
    /// which has no way to the member. B learns of the change from the database's change
    /// feed and sends the member its config.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_through_another_controller_reaches_the_member() {
        let cluster = zt_testnet::skip_unless!(zt_testnet::postgres::TestCluster::start());
        let url = cluster.uri();
        let tmp = tempfile::tempdir().unwrap();
        let clock = EngineClock::new();
        let ctl = controller_identity();
        let member = member_identity();
        let (ctl_dir, member_dir) = (tmp.path().join("ctl"), tmp.path().join("member"));
        let ctl_socket = bind_loopback();
        let member_socket = bind_loopback();
        private_planet(&ctl, ctl_socket.1, &[&ctl_dir, &member_dir]);

        // Controller A: no node of its own (what it sends is undelivered).
        let db = ControllerDb::Postgres(url.clone());
        let options = ServiceOptions {
            feed_notifications: Some(url.clone()),
            ..ServiceOptions::default()
        };
        let service_a = ControllerService::start_with(
            ctl.clone(),
            postgres_opener(url.clone(), ctl.address()),
            Arc::default(),
            clock,
            options,
        );
        let nwid = network_id_for(ctl.address(), 0xa11);
        let private = network_patch_from_properties(&[("name", "ha"), ("private", "yes")]).unwrap();
        service_a.create_network(Some(nwid), private).await.unwrap();

        // Controller B: the member's root, over the same database.
        let registry = Arc::new(ControllerRegistry::new(clock, db));
        let ctl_runtime =
            start_controller_instance(&ctl_dir, &ctl, ctl_socket, &registry, Vec::new(), clock);
        let service_b = registry.open(&ctl_dir, &ctl);
        let (member_runtime, member_handle, mut configured) =
            start_member(&member_dir, &member, member_socket, clock).await;
        member_handle
            .join(Join::network(WireNetworkId(nwid)))
            .await
            .unwrap();
        // B refuses it (not authorized yet): the session is with B.
        assert!(
            eventually(|| service_b.status().requests_answered >= 1).await,
            "B never heard the member's request"
        );
        assert!(configured.try_recv().is_err());

        let authorize =
            zt_controller::props::member_patch_from_properties(&[("authorized", "yes")]).unwrap();
        service_a
            .update_member(nwid, member.address(), authorize, Face::RouterOs)
            .await
            .unwrap();
        let config = tokio::time::timeout(WAIT, configured.recv()).await;
        let Ok(Some(Event::NetworkConfigChanged { nwid: got, config })) = config else {
            panic!(
                "the member never got the config B owed it: {config:?}\nA: {:?}\nB: {:?}",
                service_a.status(),
                service_b.status()
            );
        };
        assert_eq!((got.0, config.issued_to), (nwid, member.address()));
        let b = service_b.status();
        assert!(b.feed_changes >= 1, "B did not read A's change: {b:?}");
        assert!(b.configs_pushed >= 1, "B did not push: {b:?}");
        // A pushed too (the member is online in the database) but had no node to send with;
        // that is counted when A's push is carried out, which may be after B's arrived.
        assert!(
            eventually(|| service_a.status().packets_undelivered >= 1).await,
            "{:?}",
            service_a.status()
        );
        member_runtime.stop().await;
        ctl_runtime.stop().await;
    }

    /// The controller's node answers packets while its database is stuck on a config
    /// request; the request is answered once the database moves again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_database_delays_answers_not_packets() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = EngineClock::new();
        let ctl = controller_identity();
        let member = member_identity();
        let (ctl_dir, member_dir) = (tmp.path().join("ctl"), tmp.path().join("member"));
        let ctl_socket = bind_loopback();
        let member_socket = bind_loopback();

        private_planet(&ctl, ctl_socket.1, &[&ctl_dir, &member_dir]);

        // The controller over a gated storage, with a public network.
        let gate = Arc::new(Gate::default());
        let registry = Arc::new(ControllerRegistry::new(clock, Default::default()));
        let service = ControllerService::start(
            ctl.clone(),
            GatedStorage::opener(gate.clone()),
            registry.route(&ctl_dir),
            clock,
        );
        registry.install(&ctl_dir, service.clone());
        let nwid = network_id_for(ctl.address(), 0x5eed);
        let public = network_patch_from_properties(&[("name", "pub"), ("private", "no")]).unwrap();
        service.create_network(Some(nwid), public).await.unwrap();

        let (messages, mut heard) =
            EventChannel::new(|e| matches!(e, Event::UserMessage { .. }), 16);
        let ctl_runtime = start_controller_instance(
            &ctl_dir,
            &ctl,
            ctl_socket,
            &registry,
            vec![Box::new(messages)],
            clock,
        );
        let (member_runtime, member_handle, mut configured) =
            start_member(&member_dir, &member, member_socket, clock).await;

        // The member asks for its config while the database is stuck.
        gate.close();
        member_handle
            .join(Join::network(WireNetworkId(nwid)))
            .await
            .unwrap();
        assert!(
            eventually(|| gate.held() > 0).await,
            "the config request never reached the database"
        );

        // Meanwhile the controller's node keeps taking packets: a USER_MESSAGE reaches it.
        let mut payload = Vec::new();
        UserMessage {
            type_id: 0x42,
            data: b"still there?",
        }
        .write(&mut payload);
        member_handle
            .send_to_peer(ctl.address(), Verb::UserMessage, payload)
            .await
            .unwrap()
            .expect("USER_MESSAGE sent or queued");
        let message = tokio::time::timeout(WAIT, heard.recv()).await;
        assert!(
            matches!(message, Ok(Some(Event::UserMessage { type_id: 0x42, .. }))),
            "the controller's node stalled behind its database: {message:?}"
        );
        assert!(gate.held() > 0, "the request should still be pending");
        assert!(
            configured.try_recv().is_err(),
            "no config before the database answered"
        );

        // The database moves again: the member gets its config.
        gate.open();
        let config = tokio::time::timeout(WAIT, configured.recv()).await;
        let Ok(Some(Event::NetworkConfigChanged { nwid: got, config })) = config else {
            panic!("no config after the database recovered: {config:?}");
        };
        assert_eq!(got.0, nwid);
        assert_eq!(config.issued_to, member.address());
        member_runtime.stop().await;
        ctl_runtime.stop().await;
    }
}
