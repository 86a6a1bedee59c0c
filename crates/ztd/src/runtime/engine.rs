//! The boundary between the daemon's I/O loop and the sans-I/O protocol engine.
//!
//! The engine ([`super::node_engine::NodeEngine`] around zt-node) never touches a socket or a clock: the instance
//! driver ([`super::driver`]) owns the sockets and the timer and calls, in the style of
//! quinn-proto / firezone connlib:
//!
//! ```text
//!   UDP datagram ──> Engine::receive(now, local_socket, remote, bytes)
//!   timer expiry ──> Engine::tick(now)
//!   after either ──> while let Some(t) = Engine::poll_transmit(buf) { send t on t.local }
//!                    sleep until Engine::next_deadline()
//! ```
//!
//! Time (`now`) is a monotonic millisecond count from [`EngineClock`]: it never goes back
//! (timers stay sane when the wall clock is stepped) and starts at the wall-clock time of
//! the daemon's start, so it is never near zero and reads like ZeroTier's `now`.
use std::net::SocketAddr;
use std::path::PathBuf;

use zt_crypto::Identity;

/// Names one UDP socket bound by the instance (an index into its socket list; stable for
/// the life of one runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalSocketId(pub u32);

/// Which port of the instance a socket serves (PROTOCOL.md §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRole {
    Primary,
    Secondary,
    /// Bound only with port mapping on: the port the gateway is asked to forward.
    /// zerotier-one keeps the mapping off its other two ports because some NATs mangle
    /// the traffic of a port that is also forwarded explicitly.
    Tertiary,
}

impl PortRole {
    pub fn name(self) -> &'static str {
        match self {
            PortRole::Primary => "primary",
            PortRole::Secondary => "secondary",
            PortRole::Tertiary => "tertiary",
        }
    }
}

/// One bound socket as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSocket {
    pub id: LocalSocketId,
    /// The bound address (`0.0.0.0:port` or `[::]:port`).
    pub bound: SocketAddr,
    pub role: PortRole,
}

/// A datagram the engine wants sent. The payload is the first `len` bytes of the buffer
/// passed to [`Engine::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The socket to send from; `None` means "no preference": the driver sends a copy from
    /// every socket of the destination's address family (as zerotier-one does for a
    /// local socket of -1), so the peer learns all our ports.
    pub local: Option<LocalSocketId>,
    pub remote: SocketAddr,
    pub len: usize,
    /// IP TTL for this datagram only (ZeroTier sends some NAT-traversal probes with a low
    /// TTL); `None` for the system default.
    pub ttl: Option<u8>,
}

/// What the daemon shows about a running engine (REST `online`, later peers and networks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStatus {
    /// At least one root answered recently (REST `online`, RouterOS flag `R`).
    pub online: bool,
    /// The gateway's address that forwards to the tertiary port, while it does.
    pub mapped: Option<SocketAddr>,
}

/// The sans-I/O protocol engine of one instance. Implementations must not block, must not
/// read a clock or an RNG they were not given, and must not panic on any datagram.
pub trait Engine: Send + 'static {
    /// A datagram arrived on `local` from `remote`.
    fn receive(&mut self, now: u64, local: LocalSocketId, remote: SocketAddr, datagram: &[u8]);
    /// The data path's receive: the datagram in `packet` is processed in place, and a frame
    /// for a TAP comes back as a range of it (see [`zt_node::Node::decapsulate`]).
    fn decapsulate(
        &mut self,
        now: u64,
        local: LocalSocketId,
        remote: SocketAddr,
        packet: &mut Vec<u8>,
    ) -> zt_node::Received {
        self.receive(now, local, remote, packet);
        zt_node::Received::Consumed
    }
    /// The data path's send: a frame read from the TAP of `nwid` into `buffer[frame]` (with
    /// headroom) becomes datagrams in `out` (see [`zt_node::Node::encapsulate_frame`]).
    fn encapsulate_frame(
        &mut self,
        _now: u64,
        _nwid: zt_wire::network_id::NetworkId,
        _buffer: &mut [u8],
        _frame: std::ops::Range<usize>,
        _out: &mut [u8],
    ) -> zt_node::Encapsulated {
        zt_node::Encapsulated::Dropped(zt_node::FrameError::NotJoined)
    }
    /// The deadline returned by [`Engine::next_deadline`] was reached (or passed).
    fn tick(&mut self, now: u64);
    /// The next datagram to send, written into `buf` (cleared by the caller); `None` when the
    /// queue is empty. Called until `None` after every `receive`, `tick` and engine call.
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit>;
    /// When `tick` should next run (same clock as `now`); `None` if nothing is scheduled.
    fn next_deadline(&self) -> Option<u64>;
    /// A snapshot for the management APIs.
    fn status(&self) -> EngineStatus;
    /// The ZeroTier node behind this engine (`None` for an engine without one).
    fn node(&self) -> Option<&zt_node::Node> {
        None
    }
    /// The ZeroTier node, to act on it (join, send a frame, answer a config request).
    fn node_mut(&mut self) -> Option<&mut zt_node::Node> {
        None
    }
    /// Hand the node's pending events to the attached handlers ([`super::events`]). The
    /// driver calls it after every `receive`, `tick` and call, before sending.
    fn dispatch_events(&mut self, _now: u64) {}
    /// The instance's `interfaces` property changed (addresses for direct paths).
    fn set_interfaces(&mut self, _interfaces: Vec<String>, _now: u64) {}
    /// Attach one more event handler to a running engine; an engine without events hands it
    /// back.
    fn add_event_handler(
        &mut self,
        handler: Box<dyn super::events::EventHandler>,
    ) -> Result<(), Box<dyn super::events::EventHandler>> {
        Err(handler)
    }
}

/// What an engine is started with.
pub struct EngineStart {
    /// The instance's name (`/zerotier` item `name`).
    pub instance_name: String,
    /// The instance's `interfaces` property (`all` or interface names): where local
    /// addresses for direct paths are taken from.
    pub interfaces: Vec<String>,
    /// The instance's identity, with its private key.
    pub identity: Identity,
    /// The instance's own state directory (`<home>/<instance>`), for the engine's caches.
    pub instance_dir: PathBuf,
    /// The home directory for the default instance, whose `planet` and `moons.d/` it uses
    /// too (where zerotier-one keeps them); `None` for other instances.
    pub home_worlds: Option<PathBuf>,
    /// The sockets the driver bound for this instance.
    pub sockets: Vec<LocalSocket>,
    /// The instance's `port-mapping` property: ask the gateway (NAT-PMP, else UPnP-IGD) to
    /// forward the tertiary port (the socket with [`PortRole::Tertiary`], bound only then),
    /// and tell peers the mapped address.
    pub port_mapping: bool,
    pub now: u64,
}

/// Creates the engine when an instance is enabled. The daemon holds one factory; zt-node
/// provides the real one.
pub trait EngineFactory: Send + Sync + 'static {
    fn start(&self, start: EngineStart) -> Result<Box<dyn Engine>, String>;
}

/// The engine used until a protocol implementation is plugged in: it speaks no protocol,
/// sends nothing, counts what it receives and reports itself offline. It exists so the
/// instance lifecycle (sockets, identity, enable/disable) works and is testable on its own;
/// it pretends nothing.
#[derive(Debug, Default)]
pub struct NoProtocolEngine {
    /// Datagrams received and dropped.
    pub dropped_datagrams: u64,
}

impl Engine for NoProtocolEngine {
    fn receive(&mut self, _now: u64, _local: LocalSocketId, _remote: SocketAddr, _d: &[u8]) {
        self.dropped_datagrams += 1;
    }
    fn tick(&mut self, _now: u64) {}
    fn poll_transmit(&mut self, _buf: &mut Vec<u8>) -> Option<Transmit> {
        None
    }
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    fn status(&self) -> EngineStatus {
        EngineStatus::default()
    }
}

/// Factory for [`NoProtocolEngine`].
#[derive(Debug, Default)]
pub struct NoProtocolFactory;

impl EngineFactory for NoProtocolFactory {
    fn start(&self, _start: EngineStart) -> Result<Box<dyn Engine>, String> {
        Ok(Box::new(NoProtocolEngine::default()))
    }
}

/// A test engine with a bug: it panics with its message when told the instance's
/// `interfaces` (tests use it to check that a failed engine is reported and restarted).
/// Otherwise it is a [`NoProtocolEngine`].
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct PanickingEngine {
    message: &'static str,
    inner: NoProtocolEngine,
}

#[cfg(test)]
impl PanickingEngine {
    pub(crate) fn new(message: &'static str) -> PanickingEngine {
        PanickingEngine {
            message,
            inner: NoProtocolEngine::default(),
        }
    }
}

#[cfg(test)]
impl Engine for PanickingEngine {
    fn receive(&mut self, now: u64, local: LocalSocketId, remote: SocketAddr, d: &[u8]) {
        self.inner.receive(now, local, remote, d);
    }
    fn tick(&mut self, now: u64) {
        self.inner.tick(now);
    }
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.inner.poll_transmit(buf)
    }
    fn next_deadline(&self) -> Option<u64> {
        self.inner.next_deadline()
    }
    fn status(&self) -> EngineStatus {
        self.inner.status()
    }
    fn set_interfaces(&mut self, _interfaces: Vec<String>, _now: u64) {
        panic!("{}", self.message);
    }
}

/// Starts a [`PanickingEngine`] with the same message for every instance.
#[cfg(test)]
impl EngineFactory for PanickingEngine {
    fn start(&self, _start: EngineStart) -> Result<Box<dyn Engine>, String> {
        Ok(Box::new(PanickingEngine::new(self.message)))
    }
}

/// The engine's clock: monotonic milliseconds, offset to the wall-clock time at creation.
#[derive(Debug, Clone, Copy)]
pub struct EngineClock {
    origin: std::time::Instant,
    origin_ms: u64,
}

impl EngineClock {
    pub fn new() -> EngineClock {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        EngineClock {
            origin: std::time::Instant::now(),
            origin_ms: wall,
        }
    }
    /// The current time in engine milliseconds.
    pub fn now(&self) -> u64 {
        self.origin_ms + self.origin.elapsed().as_millis() as u64
    }
    /// The monotonic instant of an engine time (for sleeping until a deadline).
    pub fn instant_of(&self, ms: u64) -> tokio::time::Instant {
        let offset = std::time::Duration::from_millis(ms.saturating_sub(self.origin_ms));
        tokio::time::Instant::from_std(self.origin + offset)
    }
}

impl Default for EngineClock {
    fn default() -> Self {
        EngineClock::new()
    }
}
