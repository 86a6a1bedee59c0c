//! Node event dispatch: how daemon subsystems (TAP, controller, …) hear what an instance's
//! [`zt_node::Node`] reports and act on it with `&mut Node`.
//!
//! A [`Subsystem`] is registered once with the [`Subsystems`] registry of the engine factory
//! (in `main.rs`, before instances start). Every time an instance starts, each subsystem is
//! asked for an [`EventHandler`] for that instance; the handlers live inside the instance's
//! driver task, next to the node, so no lock is needed and they see events in order. After
//! every engine step (datagram, timer, management command) the engine drains
//! `Node::poll_event()` and hands each event to every handler with `&mut Node`; datagrams a
//! handler queues (e.g. a controller's answer) are sent right after.
//!
//! Handlers must not block (they run on the instance's only task). Work that needs I/O or
//! time should be forwarded to the subsystem's own task, e.g. with [`EventChannel`], which
//! later acts on the node with the typed commands of `InstanceHandle` ([`super::commands`]).
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;
use zt_node::{Address, Event, Node};

/// The instance a handler is attached to.
#[derive(Debug, Clone)]
pub struct InstanceInfo {
    /// The `/zerotier` item name (`zt1`).
    pub name: String,
    /// `<home>/<name>`: the instance's state directory.
    pub dir: PathBuf,
    /// The node's ZeroTier address.
    pub address: Address,
}

/// Receives every event of one instance's node, inside that instance's driver task.
pub trait EventHandler: Send + 'static {
    /// Called once per event, in order. `now` is the engine clock (ms).
    fn on_event(&mut self, node: &mut Node, now: u64, event: &Event);
    /// True once the handler has nothing more to do (its subject is gone): the engine then
    /// drops it.
    fn finished(&self) -> bool {
        false
    }
}

/// A daemon subsystem that wants the events of every instance.
pub trait Subsystem: Send + Sync + 'static {
    /// An instance is starting (before its first datagram): return its handler, or `None`
    /// when this subsystem has nothing to do for it.
    fn attach(&self, instance: &InstanceInfo) -> Option<Box<dyn EventHandler>>;
}

/// The registry of subsystems, shared by the engine factory and `main.rs`.
#[derive(Clone, Default)]
pub struct Subsystems(Arc<RwLock<Vec<Arc<dyn Subsystem>>>>);

impl Subsystems {
    /// Register a subsystem; instances started afterwards get its handler.
    pub fn add(&self, subsystem: Arc<dyn Subsystem>) {
        // A poisoned lock only means a panic elsewhere while pushing; the list stays usable.
        let mut list = self.0.write().unwrap_or_else(|e| e.into_inner());
        list.push(subsystem);
    }

    /// Every registered subsystem's handler for this instance.
    pub fn attach_all(&self, instance: &InstanceInfo) -> Vec<Box<dyn EventHandler>> {
        let list = self.0.read().unwrap_or_else(|e| e.into_inner());
        list.iter().filter_map(|s| s.attach(instance)).collect()
    }
}

/// A ready-made handler that forwards selected events to an async task through a bounded
/// channel. When the channel is full the event is dropped and counted (a slow subsystem must
/// not stall the node); [`EventChannel::dropped`] reads the count.
pub struct EventChannel {
    filter: fn(&Event) -> bool,
    sender: mpsc::Sender<Event>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl EventChannel {
    /// A handler forwarding the events `filter` accepts, and the receiving end.
    pub fn new(
        filter: fn(&Event) -> bool,
        capacity: usize,
    ) -> (EventChannel, mpsc::Receiver<Event>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (
            EventChannel {
                filter,
                sender,
                dropped: Arc::default(),
            },
            receiver,
        )
    }

    /// A shared counter of events dropped because the receiver was full or gone.
    pub fn dropped(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.dropped.clone()
    }
}

impl EventHandler for EventChannel {
    fn on_event(&mut self, _node: &mut Node, _now: u64, event: &Event) {
        if (self.filter)(event) && self.sender.try_send(event.clone()).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
