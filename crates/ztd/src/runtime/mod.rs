//! The OS edge of an instance: UDP sockets, the task that drives the protocol engine, and
//! how the rest of the daemon reaches the instance's ZeroTier node.
//!
//! ```text
//!   sockets ──> driver task ──> Engine (NodeEngine: one zt_node::Node) ──> poll_transmit ──> sockets
//!                  │   after every datagram / timer / command:
//!                  │     NodeEngine::dispatch_events: Node::poll_event() ──> each EventHandler
//!                  ▲
//!   management, ports, controller ── InstanceHandle::join(…), peers(), … (commands::NodeCommand)
//! ```
//!
//! Using the node from a subsystem (TAP, controller, menus):
//! - **Act on the node**: `model.runtime(id)?.handle().join(Join::network(nwid)).await` sends
//!   a typed command ([`commands::NodeCommand`]) that the instance's driver task carries out
//!   between packets (no lock; the node sees one thing at a time). Events it causes are
//!   dispatched and datagrams it queues are sent right after. What the daemon may ask is the
//!   list of commands: a new need is a new variant. Frames take no queue: the driver task
//!   reads the TAPs a port attaches ([`driver::DataCommand`]).
//! - **Receive node events**: implement [`events::Subsystem`] (returns an
//!   [`events::EventHandler`] per instance) and register it in `main.rs` with
//!   `engines.subsystems().add(Arc::new(…))` before instances start; the handler is created
//!   whenever an instance starts and gets every [`zt_node::Event`] with `&mut Node`, in
//!   order (`Frame`, `NetworkConfigChanged`, `ConfigRequest`, …). Handlers must not block:
//!   write to a non-blocking fd, or forward with [`events::EventChannel`] (bounded mpsc,
//!   drops counted) to your own task. A subsystem that starts later for a running instance
//!   can use `InstanceHandle::add_event_handler`.
//! - **Read-only views** (peers, stats, status): `handle().peers()`, `handle().status()`, ….
//!
//! [`node_engine`] owns the node: planet and moons from the instance directory, world
//! updates saved, local interface addresses ([`interfaces`]) refreshed for direct paths.
pub mod commands;
pub mod driver;
pub mod engine;
pub mod events;
pub mod interfaces;
pub mod node_engine;
pub mod port_mapping;
pub mod sockets;
pub mod tcp_fallback;
pub mod tcp_relay;
