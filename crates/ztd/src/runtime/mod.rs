//! The OS edge of an instance: UDP sockets, the task that drives the protocol engine, and
//! how the rest of the daemon reaches the instance's ZeroTier node.
//!
//! ```text
//!   sockets ──> driver task ──> Engine (NodeEngine: one zt_node::Node) ──> poll_transmit ──> sockets
//!                  │   after every datagram / timer / call:
//!                  │     NodeEngine::dispatch_events: Node::poll_event() ──> each EventHandler
//!                  ▲
//!   management, TAP reader, controller ── InstanceRuntime::with_node(|node, now| …)
//! ```
//!
//! Using the node from a subsystem (TAP, controller, menus):
//! - **Act on the node**: `model.runtime(id)?.with_node(|node, now| node.join(…)).await` runs
//!   the closure inside the instance's driver task (no lock; the node sees one thing at a
//!   time). Events it causes are dispatched and datagrams it queues are sent right after.
//!   A TAP reader calls `with_node(|node, now| node.send_frame(now, …))` for each frame.
//! - **Receive node events**: implement [`events::Subsystem`] (returns an
//!   [`events::EventHandler`] per instance) and register it in `main.rs` with
//!   `engines.subsystems().add(Arc::new(…))` before instances start; the handler is created
//!   whenever an instance starts and gets every [`zt_node::Event`] with `&mut Node`, in
//!   order (`Frame`, `NetworkConfigChanged`, `ConfigRequest`, …). Handlers must not block:
//!   write to a non-blocking fd, or forward with [`events::EventChannel`] (bounded mpsc,
//!   drops counted) to your own task. A subsystem that starts later for a running instance
//!   can use `InstanceRuntime::add_event_handler`.
//! - **Read-only views** (peers, stats): `with_engine(|engine, _| engine.node().map(…))`.
//!
//! [`node_engine`] owns the node: planet and moons from the instance directory, world
//! updates saved, local interface addresses ([`interfaces`]) refreshed for direct paths.
pub mod driver;
pub mod engine;
pub mod events;
pub mod interfaces;
pub mod node_engine;
pub mod port_mapping;
pub mod sockets;
pub mod tcp_fallback;
pub mod tcp_relay;
