//! One running instance: the task that owns its UDP sockets, the TAP queues of its joined
//! networks and its [`Engine`], and the handle the rest of the daemon uses to talk to it.
//!
//! ```text
//!   UDP datagram ──> Engine::decapsulate (in place) ──> frame? ──> TAP write
//!   TAP frame (read behind headroom) ──> Engine::encapsulate_frame (in place) ──> send batch
//!                                           end of the TAP batch: one sendmmsg per socket ──┘
//!   management command / data command (both typed) / timer ──> engine, then control flush
//! ```
//!
//! The task is an actor: management code never touches the engine directly but sends it a
//! typed command ([`super::commands::NodeCommand`], through the methods of [`InstanceHandle`])
//! that runs between packets, so the engine needs no lock and sees one event at a time.
//! Frames do not travel through any queue: the task reads the TAPs itself, so a frame costs no
//! task hop and management commands never wait behind frames (they are polled first, and
//! data is handled in bounded batches). The buffers are the task's own and reused: the
//! steady-state data path allocates nothing.
//!
//! The memory-hard check of a new peer's identity (~10 ms) never runs in the task: the node
//! holds the HELLO and the task hands the identity to the instance's identity worker thread,
//! whose verdict comes back as one more event. A flood of new identities keeps that thread
//! busy, not the packets of known peers.
use std::future::poll_fn;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::task::Poll;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use zt_node::{Encapsulated, Received, DATAGRAMS_CAPACITY, FRAME_HEADROOM};
use zt_wire::network_id::NetworkId;

use super::commands::NodeCommand;
use super::engine::{Engine, EngineClock, LocalSocket, LocalSocketId};
use super::sockets::BoundSocket;
use super::tcp_fallback::{TcpFallback, TcpFallbackSettings, TunnelEvent};
use super::tcp_relay::TcpRelay;
use crate::os::offload::{
    complete_checksum, Coalescer, TsoSuperFrame, VnetHeader, F_NEEDS_CSUM, GSO_NONE, VNET_HDR_LEN,
};
use crate::os::tap::{TapDevice, TapMode};
use crate::os::udp::{segmentation_refused, SendBatch, SEND_BATCH_MESSAGES};

/// Largest UDP payload we accept (ZeroTier packets are at most the physical MTU, but a
/// full-size buffer costs nothing and never truncates).
const RECV_BUFFER: usize = 65536;
/// Largest frame a TAP hands us (MTU up to 10000 plus the Ethernet header).
const MAX_TAP_FRAME: usize = 10_000 + zt_wire::ethernet::ETHERNET_HEADER_LEN;
/// Largest read of a TAP with offloads: the vnet header and a TCP super-frame (64 KB of IP
/// behind Ethernet and up to two VLAN tags).
const MAX_TAP_READ: usize = VNET_HDR_LEN + zt_wire::ethernet::ETHERNET_HEADER_LEN + 8 + 65_535 + 40;
/// TCP flows whose received segments are coalesced at once (TAPs with offloads).
const COALESCED_FLOWS: usize = 8;
/// Datagrams (or GRO batches) one receive system call can return.
const RECV_BATCH: usize = 8;
/// Bytes of datagrams gathered from TAP frames before they are sent (one `sendmmsg` per
/// socket): about [`SEND_BATCH_MESSAGES`] packets of the default 2,800-byte MTU, and always
/// room for one of the largest.
const SEND_BATCH_BYTES: usize = SEND_BATCH_MESSAGES * 3_000 + DATAGRAMS_CAPACITY;
/// Depth of the management command queue.
const COMMAND_QUEUE: usize = 64;
/// Packets or frames handled from one ready source before the task looks at its other
/// sources (management commands first) again.
const BATCH: usize = 64;

/// Why a call into the instance failed: it stopped (disabled or crashed).
#[derive(Debug, thiserror::Error)]
#[error("instance is not running")]
pub struct NotRunning;

/// What the data path of an instance is told, typed and on its own queue.
pub enum DataCommand {
    /// Serve this TAP queue for network `nwid` (frames read go to the engine, frames the
    /// engine delivers for `nwid` are written to it). Replaces an earlier one.
    AttachTap {
        nwid: NetworkId,
        tap: Arc<TapDevice>,
    },
    /// Stop serving the TAP of `nwid` (the network was left); the task drops its reference.
    DetachTap { nwid: NetworkId },
}

/// A cloneable way into a running instance (its typed management methods are in
/// [`super::commands`]). Commands fail once the instance stopped.
#[derive(Clone)]
pub struct InstanceHandle {
    commands: mpsc::Sender<NodeCommand>,
    data: mpsc::UnboundedSender<DataCommand>,
}

impl InstanceHandle {
    /// Queue a management command (waits while the queue is full).
    pub(super) async fn command(&self, command: NodeCommand) -> Result<(), NotRunning> {
        self.commands.send(command).await.map_err(|_| NotRunning)
    }

    /// Tell the data path (never blocks: the queue is unbounded, and holds only
    /// attach/detach commands, a few per join or leave).
    pub fn data(&self, command: DataCommand) -> Result<(), NotRunning> {
        self.data.send(command).map_err(|_| NotRunning)
    }
}

/// Handle on a running instance. Dropping it without [`InstanceRuntime::stop`] also stops the
/// task (the stop channel closes), but only `stop` waits for the sockets to be closed.
pub struct InstanceRuntime {
    sockets: Vec<LocalSocket>,
    handle: InstanceHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// Why the driver ended on its own (a panic in the engine), for the daemon to restart it.
    failure: Arc<std::sync::Mutex<Option<String>>>,
    /// Set while the instance's datagrams go through a TCP relay.
    tcp_fallback_active: Arc<std::sync::atomic::AtomicBool>,
    /// The TCP relay this instance serves (`tcp-relay`), stopped with it.
    relay: Option<TcpRelay>,
}

/// Waits for the driver task: a panic in it is logged with the instance and kept in
/// `failure` instead of ending the instance silently.
async fn supervise(
    driver: JoinHandle<()>,
    label: String,
    failure: Arc<std::sync::Mutex<Option<String>>>,
) {
    let Err(error) = driver.await else {
        return;
    };
    let what = if error.is_panic() {
        let payload = error.into_panic();
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string())
    } else {
        error.to_string()
    };
    tracing::error!(instance = %label, failure = %what, "instance engine failed");
    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
}

impl InstanceRuntime {
    /// Register the bound sockets with tokio and start the driver task with `engine`.
    /// Must run inside the tokio runtime.
    pub fn start(
        bound: Vec<BoundSocket>,
        engine: Box<dyn Engine>,
        clock: EngineClock,
        label: String,
        tcp_fallback: TcpFallbackSettings,
    ) -> std::io::Result<InstanceRuntime> {
        let mut sockets = Vec::with_capacity(bound.len());
        let mut udp = Vec::with_capacity(bound.len());
        for (index, b) in bound.into_iter().enumerate() {
            sockets.push(LocalSocket {
                id: LocalSocketId(index as u32),
                bound: b.bound,
                role: b.role,
            });
            udp.push(Arc::new(UdpSocket::from_std(b.socket)?));
        }
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (data_tx, data_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        // Probed once per socket: GSO support, and the options the offload sends rely on.
        let offloads: Vec<_> = udp
            .iter()
            .map(|socket| {
                quinn_udp::UdpSocketState::new(quinn_udp::UdpSockRef::from(&**socket)).ok()
            })
            .collect();
        let segments_per_send = offloads
            .iter()
            .map(|state| state.as_ref().map_or(1, |s| s.max_gso_segments()))
            .collect();
        let failure = Arc::new(std::sync::Mutex::new(None));
        let fallback = TcpFallback::new(tcp_fallback, clock.now(), label.clone());
        let tcp_fallback_active = fallback.active_flag();
        let driver = Driver {
            fallback,
            engine,
            offloads,
            segments_per_send,
            sockets: udp,
            local: sockets.clone(),
            taps: Vec::new(),
            coalescer: Coalescer::new(COALESCED_FLOWS),
            coalescing_for: None,
            clock,
            label: label.clone(),
            counters: DriverCounters::default(),
            send_failures: FailureWarning::default(),
            identity_worker: IdentityWorker::start(&label),
        };
        let driver = tokio::spawn(driver.run(commands_rx, data_rx, stop_rx));
        let task = tokio::spawn(supervise(driver, label, failure.clone()));
        Ok(InstanceRuntime {
            sockets,
            handle: InstanceHandle {
                commands: commands_tx,
                data: data_tx,
            },
            stop: Some(stop_tx),
            task: Some(task),
            failure,
            tcp_fallback_active,
            relay: None,
        })
    }

    /// Stop `relay` with this instance.
    pub fn attach_relay(&mut self, relay: TcpRelay) {
        self.relay = Some(relay);
    }

    /// True while the instance reaches the network through a TCP relay (RouterOS `F`).
    pub fn tcp_fallback_active(&self) -> bool {
        self.tcp_fallback_active
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Why the instance's driver ended on its own (its engine panicked), if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The sockets this instance listens on.
    pub fn sockets(&self) -> &[LocalSocket] {
        &self.sockets
    }

    /// The way to the instance's engine: every management command goes through it (clone
    /// it to reach the instance on one's own, as a port or a controller does).
    pub fn handle(&self) -> InstanceHandle {
        self.handle.clone()
    }

    /// Stop the task and wait until its sockets are closed.
    pub async fn stop(mut self) {
        if let Some(relay) = self.relay.take() {
            relay.stop().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // The supervisor has already reported a failure of the driver.
            let _ = task.await;
        }
    }
}

/// What the driver counts about the edge (logged when the instance stops).
#[derive(Debug, Default)]
struct DriverCounters {
    transmit_errors: u64,
    tap_write_drops: u64,
    tap_read_errors: u64,
    frames_for_unattached_network: u64,
    /// TAP reads with offloads the edge could not turn into frames (a bad vnet header).
    tap_offload_errors: u64,
    /// TCP super-frames read from TAPs (cut into frames) and written to them (coalesced).
    tap_super_frames_read: u64,
    tap_super_frames_written: u64,
    /// Management commands carried out.
    commands: u64,
}

struct Driver {
    engine: Box<dyn Engine>,
    sockets: Vec<Arc<UdpSocket>>,
    /// Per socket, its receive offload state (`None` where the probe failed).
    offloads: Vec<Option<quinn_udp::UdpSocketState>>,
    /// Per socket, how many datagrams one send may ask the kernel to cut (UDP GSO): the
    /// probe's answer, 1 without GSO or once the kernel refused it.
    segments_per_send: Vec<usize>,
    local: Vec<LocalSocket>,
    taps: Vec<(NetworkId, Arc<TapDevice>)>,
    /// Received TCP segments for TAPs with offloads, held until the end of a receive batch
    /// to be written as super-frames; all for the network in `coalescing_for`.
    coalescer: Coalescer,
    coalescing_for: Option<NetworkId>,
    clock: EngineClock,
    label: String,
    counters: DriverCounters,
    send_failures: FailureWarning,
    identity_worker: IdentityWorker,
    /// The TCP relay path used when UDP is blocked.
    fallback: TcpFallback,
}

/// The instance's thread for identity checks (`Identity::locally_validate`): one at a time,
/// so a flood costs at most one core, and with a queue as long as the node's.
struct IdentityWorker {
    /// `None` when the thread could not be started: checks then run in the task.
    checks: Option<std::sync::mpsc::SyncSender<zt_node::IdentityCheck>>,
    verdicts: mpsc::UnboundedReceiver<(u64, bool)>,
}

impl IdentityWorker {
    fn start(label: &str) -> IdentityWorker {
        let (checks, requests) = std::sync::mpsc::sync_channel::<zt_node::IdentityCheck>(
            zt_node::constants::IDENTITY_CHECK_QUEUE,
        );
        let (verdict_tx, verdicts) = mpsc::unbounded_channel();
        // Ends when the driver drops `checks` (the instance stopped).
        let spawned = std::thread::Builder::new()
            .name(format!("identity-{label}"))
            .spawn(move || {
                while let Ok(check) = requests.recv() {
                    let valid = check.identity.locally_validate();
                    if verdict_tx.send((check.ticket, valid)).is_err() {
                        break;
                    }
                }
            });
        let checks = match spawned {
            Ok(_) => Some(checks),
            Err(error) => {
                tracing::warn!(instance = %label, %error, "no identity check thread: new peers are checked in the packet task");
                None
            }
        };
        IdentityWorker { checks, verdicts }
    }
}

/// A WARN for a failure that repeats per packet (a send with no route, say): the first at
/// once, then at most one per [`FailureWarning::EVERY`] with how many failed in between.
#[derive(Default)]
struct FailureWarning {
    last: Option<std::time::Instant>,
    since_last: u64,
}

impl FailureWarning {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    /// Counts one failure; `Some(failures since the last warning)` when one is due now.
    fn due(&mut self) -> Option<u64> {
        self.since_last += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

/// The buffers of the data path, allocated once per instance.
struct Buffers {
    /// UDP receive: [`RECV_BATCH`] slots of [`RECV_BUFFER`] bytes for one `recvmmsg`, each
    /// holding one datagram or, with UDP GRO, several of one sender cut at a stride.
    datagrams: Vec<u8>,
    /// The packet being decapsulated (a copy of the datagram, then its plaintext and frame).
    packet: Vec<u8>,
    /// A TAP read, placed so its frame starts [`FRAME_HEADROOM`] bytes in (a vnet header
    /// ends there) and its FRAME is built around it; big enough for a TCP super-frame.
    frame: Vec<u8>,
    /// One segment cut from a TCP super-frame, [`FRAME_HEADROOM`] bytes in.
    segment: Vec<u8>,
    /// Datagrams of encapsulated frames, sent at the end of a TAP batch (or when full).
    sends: SendBatch,
    /// A control transmit (`Engine::poll_transmit` fills it).
    control: Vec<u8>,
}

impl Buffers {
    fn new() -> Buffers {
        Buffers {
            datagrams: vec![0; RECV_BATCH * RECV_BUFFER],
            packet: Vec::with_capacity(RECV_BUFFER),
            frame: vec![0; FRAME_HEADROOM + MAX_TAP_READ],
            segment: vec![0; FRAME_HEADROOM + MAX_TAP_FRAME],
            sends: SendBatch::new(SEND_BATCH_BYTES),
            control: Vec::with_capacity(RECV_BUFFER),
        }
    }
}

enum Event {
    Readable {
        socket: usize,
    },
    ReceiveError {
        socket: usize,
        error: std::io::Error,
    },
    TapFrame {
        tap: usize,
        len: usize,
    },
    TapError {
        tap: usize,
        error: std::io::Error,
    },
    Timer,
    Command(NodeCommand),
    Data(DataCommand),
    IdentityChecked {
        ticket: u64,
        valid: bool,
    },
    Tunnel(TunnelEvent),
    Stop,
}

/// One write to a TAP with offloads, counted: a drop when the kernel's queue is full (like a
/// congested port), a super-frame when the header asks for segmentation.
fn write_offloaded(
    tap: &TapDevice,
    header: &[u8; VNET_HDR_LEN],
    frame: &[u8],
    counters: &mut DriverCounters,
) {
    if !matches!(tap.try_write_offloaded(header, frame), Ok(true)) {
        counters.tap_write_drops += 1;
    } else if *header != VnetHeader::PLAIN {
        counters.tap_super_frames_written += 1;
    }
}

/// Where in `Buffers::frame` a read of a TAP in `mode` goes: so that the frame itself starts
/// at [`FRAME_HEADROOM`], with a vnet header (if any) just before it.
fn read_offset(mode: TapMode) -> usize {
    match mode {
        TapMode::Plain => FRAME_HEADROOM,
        TapMode::Offload => FRAME_HEADROOM - VNET_HDR_LEN,
    }
}

/// Time far enough away to mean "no timer".
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365)
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<NodeCommand>,
        mut data: mpsc::UnboundedReceiver<DataCommand>,
        mut stop: oneshot::Receiver<()>,
    ) {
        tracing::info!(instance = %self.label, sockets = ?self.local.iter().map(|s| s.bound).collect::<Vec<_>>(), "instance running");
        let mut buffers = Buffers::new();
        // One timer for the task's life, moved only when the engine's deadline changes.
        let sleep = tokio::time::sleep_until(far_future());
        tokio::pin!(sleep);
        let mut armed: Option<u64> = None;
        // Which socket/TAP is polled first; rotated so a busy one cannot starve the others.
        let mut first = 0usize;
        loop {
            let deadline = self.engine.next_deadline();
            if deadline != armed {
                let at = deadline.map_or_else(far_future, |d| self.clock.instant_of(d));
                sleep.as_mut().reset(at);
                armed = deadline;
            }
            let event = {
                let sockets = &self.sockets;
                let taps = &self.taps;
                let verdicts = &mut self.identity_worker.verdicts;
                let frame = &mut buffers.frame;
                let tunnel = self.fallback.next_event();
                let recv = poll_fn(|cx| {
                    let n = sockets.len();
                    for k in 0..n {
                        let index = (first + k) % n;
                        match sockets[index].poll_recv_ready(cx) {
                            Poll::Ready(Ok(())) => {
                                return Poll::Ready(Event::Readable { socket: index })
                            }
                            Poll::Ready(Err(error)) => {
                                return Poll::Ready(Event::ReceiveError {
                                    socket: index,
                                    error,
                                })
                            }
                            Poll::Pending => {}
                        }
                    }
                    Poll::Pending
                });
                let tap_read = poll_fn(|cx| {
                    let n = taps.len();
                    for k in 0..n {
                        let index = (first + k) % n;
                        let device = &taps[index].1;
                        let at = read_offset(device.mode());
                        match device.poll_read(cx, &mut frame[at..]) {
                            Poll::Ready(Ok(len)) => {
                                return Poll::Ready(Event::TapFrame { tap: index, len })
                            }
                            Poll::Ready(Err(error)) => {
                                return Poll::Ready(Event::TapError { tap: index, error })
                            }
                            Poll::Pending => {}
                        }
                    }
                    Poll::Pending
                });
                tokio::select! {
                    // Management first: it never waits behind data.
                    biased;
                    _ = &mut stop => Event::Stop,
                    command = commands.recv() => match command { Some(c) => Event::Command(c), None => Event::Stop },
                    command = data.recv() => match command { Some(c) => Event::Data(c), None => Event::Stop },
                    Some((ticket, valid)) = verdicts.recv() => Event::IdentityChecked { ticket, valid },
                    _ = &mut sleep => Event::Timer,
                    event = tunnel => Event::Tunnel(event),
                    event = recv => event,
                    event = tap_read => event,
                }
            };
            first = first.wrapping_add(1);
            let now = self.clock.now();
            match event {
                Event::Stop => break,
                Event::Readable { socket } => self.receive_batches(now, socket, &mut buffers),
                Event::ReceiveError { socket, error } => {
                    // ICMP errors surface here (e.g. connection refused); they concern one
                    // earlier send, not the socket.
                    tracing::debug!(instance = %self.label, socket, %error, "UDP receive error");
                }
                Event::TapFrame { tap, len } => {
                    self.tap_read(now, tap, len, &mut buffers);
                    for _ in 1..BATCH {
                        let Some((_, device)) = self.taps.get(tap) else {
                            break;
                        };
                        let at = read_offset(device.mode());
                        match device.try_read(&mut buffers.frame[at..]) {
                            Ok(Some(len)) => self.tap_read(now, tap, len, &mut buffers),
                            Ok(None) => break,
                            Err(error) => {
                                self.tap_failed(tap, error);
                                break;
                            }
                        }
                    }
                }
                Event::TapError { tap, error } => self.tap_failed(tap, error),
                Event::Timer => {
                    armed = None;
                    self.engine.tick(now);
                }
                Event::Command(command) => {
                    self.counters.commands += 1;
                    command.run(self.engine.as_mut(), now);
                }
                Event::Data(command) => self.data_command(command),
                Event::IdentityChecked { ticket, valid } => {
                    if let Some(node) = self.engine.node_mut() {
                        node.identity_checked(now, ticket, valid);
                    }
                }
                Event::Tunnel(event) => self.tunnel_event(now, event, &mut buffers.packet),
            }
            // Whatever a handler held back for coalescing or batching goes out before anything
            // else runs (and before control packets, so a peer's packets keep their order).
            self.flush_coalesced();
            self.send_batch(&mut buffers.sends);
            self.fallback.housekeeping(now);
            self.hand_out_identity_checks(now);
            self.engine.dispatch_events(now);
            self.flush(&mut buffers.control);
        }
        tracing::info!(instance = %self.label, counters = ?self.counters, tcp_relay_drops = self.fallback.dropped, "instance stopped");
    }

    /// A datagram from the TCP relay is received as if by UDP from the address the relay
    /// names, on the first socket of its family (zerotier-one hands it to the node without a
    /// socket; ours needs one, and answers on that path are also sent through the tunnel).
    fn tunnel_event(&mut self, now: u64, event: TunnelEvent, packet: &mut Vec<u8>) {
        self.fallback.tunnel_event(&event);
        if let TunnelEvent::Datagram(from, datagram) = event {
            if let Some(socket) = self
                .local
                .iter()
                .position(|s| s.bound.is_ipv4() == from.is_ipv4())
            {
                self.datagram_in(now, socket, from, &datagram, packet);
            }
        }
    }

    /// New identities the node holds HELLOs for go to the identity worker.
    fn hand_out_identity_checks(&mut self, now: u64) {
        let Some(node) = self.engine.node_mut() else {
            return;
        };
        while let Some(check) = node.poll_identity_check() {
            match &self.identity_worker.checks {
                // Full cannot happen while the node's queue is as long as the channel; if it
                // did, the node gives the HELLO up after its timeout and the peer retries.
                Some(checks) => {
                    let _ = checks.try_send(check);
                }
                None => {
                    let valid = check.identity.locally_validate();
                    node.identity_checked(now, check.ticket, valid);
                }
            }
        }
    }

    fn data_command(&mut self, command: DataCommand) {
        match command {
            DataCommand::AttachTap { nwid, tap } => {
                self.taps.retain(|(n, _)| *n != nwid);
                self.taps.push((nwid, tap));
            }
            DataCommand::DetachTap { nwid } => self.taps.retain(|(n, _)| *n != nwid),
        }
    }

    /// A TAP that fails to read is closed or gone: stop serving it (the port reports it).
    fn tap_failed(&mut self, tap: usize, error: std::io::Error) {
        self.counters.tap_read_errors += 1;
        if tap < self.taps.len() {
            let (nwid, device) = self.taps.remove(tap);
            tracing::warn!(instance = %self.label, interface = device.name(), network = %nwid, %error, "tap read failed; detached");
        }
    }

    /// What socket `socket` has received, up to [`BATCH`] system calls' worth: each call
    /// returns up to [`RECV_BATCH`] messages (`recvmmsg`), and each message may hold several
    /// datagrams of one sender coalesced by UDP GRO, cut at its stride. The frames all of
    /// them yield are one coalescing batch for TAPs with offloads (written when the driver
    /// loop flushes after this event, like a NAPI poll ends with a GRO flush): per system
    /// call, a batch would hold only about eight frames.
    fn receive_batches(&mut self, now: u64, socket: usize, buffers: &mut Buffers) {
        for _ in 0..BATCH {
            let mut metas = [quinn_udp::RecvMeta::default(); RECV_BATCH];
            let received = {
                let mut slots = buffers.datagrams.chunks_mut(RECV_BUFFER);
                let mut slices: [std::io::IoSliceMut<'_>; RECV_BATCH] = std::array::from_fn(|_| {
                    std::io::IoSliceMut::new(slots.next().unwrap_or_default())
                });
                let udp = &self.sockets[socket];
                match &self.offloads[socket] {
                    Some(state) => udp.try_io(tokio::io::Interest::READABLE, || {
                        state.recv(quinn_udp::UdpSockRef::from(&**udp), &mut slices, &mut metas)
                    }),
                    None => udp.try_recv_from(&mut slices[0]).map(|(len, addr)| {
                        metas[0].addr = addr;
                        metas[0].len = len;
                        metas[0].stride = len;
                        1
                    }),
                }
            };
            let count = match received {
                Ok(count) => count,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    // ICMP errors surface here (e.g. connection refused); they concern one
                    // earlier send, not the socket.
                    tracing::debug!(instance = %self.label, socket, %error, "UDP receive error");
                    return;
                }
            };
            for (meta, slot) in metas
                .iter()
                .zip(buffers.datagrams.chunks(RECV_BUFFER))
                .take(count)
            {
                let remote = meta.addr;
                let received = &slot[..meta.len.min(slot.len())];
                // forceTcpRelay: what comes by UDP is not heard, as in zerotier-one.
                if !self.fallback.udp_used() {
                    continue;
                }
                self.fallback.udp_received(now, remote, received.len());
                if received.is_empty() {
                    // An empty datagram is input too (counted as a runt by the engine).
                    self.datagram_in(now, socket, remote, received, &mut buffers.packet);
                    continue;
                }
                // Without GRO the stride is the length: one datagram.
                let stride = if meta.stride == 0 {
                    meta.len
                } else {
                    meta.stride
                };
                for datagram in received.chunks(stride) {
                    self.datagram_in(now, socket, remote, datagram, &mut buffers.packet);
                }
            }
        }
    }

    /// One received datagram through the engine; a frame it yields goes to its network's TAP.
    fn datagram_in(
        &mut self,
        now: u64,
        socket: usize,
        remote: SocketAddr,
        datagram: &[u8],
        packet: &mut Vec<u8>,
    ) {
        let id = self.local[socket].id;
        packet.clear();
        packet.extend_from_slice(datagram);
        let received = self.engine.decapsulate(now, id, remote, packet);
        if let Received::Frame { nwid, frame } = received {
            self.write_to_tap(nwid, &packet[frame]);
        }
    }

    /// A frame for the TAP of `nwid`: written now, or on a TAP with offloads held by the
    /// coalescer until the batch ends (frames of one flow keep their order either way).
    fn write_to_tap(&mut self, nwid: NetworkId, frame: &[u8]) {
        if self.coalescing_for.is_some_and(|n| n != nwid) {
            self.flush_coalesced();
        }
        let Some((_, tap)) = self.taps.iter().find(|(n, _)| *n == nwid) else {
            self.counters.frames_for_unattached_network += 1;
            return;
        };
        if tap.mode() == TapMode::Plain {
            // Non-blocking: a full TAP queue drops the frame like a congested port.
            if !matches!(tap.try_write_frame(frame), Ok(true)) {
                self.counters.tap_write_drops += 1;
            }
            return;
        }
        self.coalescing_for = Some(nwid);
        let counters = &mut self.counters;
        self.coalescer.push(frame, &mut |header, frame| {
            write_offloaded(tap, header, frame, counters)
        });
    }

    /// Write what the coalescer holds to the TAP it was gathered for.
    fn flush_coalesced(&mut self) {
        let Some(nwid) = self.coalescing_for.take() else {
            return;
        };
        let counters = &mut self.counters;
        let tap = self.taps.iter().find(|(n, _)| *n == nwid);
        self.coalescer.flush(&mut |header, frame| match tap {
            Some((_, tap)) => write_offloaded(tap, header, frame, counters),
            None => counters.tap_write_drops += 1,
        });
    }

    /// One read of TAP `tap` (`len` bytes at [`read_offset`] in `buffers.frame`): a plain
    /// frame goes to the engine as it is; with offloads, a partial checksum is completed in
    /// place and a TCP super-frame is cut into frames of its segment size, each its own
    /// trip through the engine.
    fn tap_read(&mut self, now: u64, tap: usize, len: usize, buffers: &mut Buffers) {
        let Some((_, device)) = self.taps.get(tap) else {
            return;
        };
        let start = read_offset(device.mode());
        let frame = FRAME_HEADROOM..start + len;
        if device.mode() == TapMode::Plain {
            self.frame_in(now, tap, &mut buffers.frame, frame, &mut buffers.sends);
            return;
        }
        let header = match VnetHeader::parse(&buffers.frame[start..start + len]) {
            Ok(header) => header,
            Err(error) => return self.offload_error(tap, error),
        };
        if header.gso_kind() == GSO_NONE {
            if header.flags & F_NEEDS_CSUM != 0 {
                let completed = complete_checksum(
                    &mut buffers.frame[frame.clone()],
                    header.csum_start.into(),
                    header.csum_offset.into(),
                );
                if let Err(error) = completed {
                    return self.offload_error(tap, error);
                }
            }
            self.frame_in(now, tap, &mut buffers.frame, frame, &mut buffers.sends);
            return;
        }
        let tso = match TsoSuperFrame::parse(&header, &buffers.frame[frame.clone()]) {
            Ok(tso) => tso,
            Err(error) => return self.offload_error(tap, error),
        };
        self.counters.tap_super_frames_read += 1;
        for index in 0..tso.segments() {
            let written = tso.write_segment(
                &buffers.frame[frame.clone()],
                index,
                &mut buffers.segment[FRAME_HEADROOM..],
            );
            match written {
                Ok(len) => self.frame_in(
                    now,
                    tap,
                    &mut buffers.segment,
                    FRAME_HEADROOM..FRAME_HEADROOM + len,
                    &mut buffers.sends,
                ),
                Err(error) => return self.offload_error(tap, error),
            }
        }
    }

    /// A TAP read with offloads that makes no frame: counted, and said at DEBUG (the kernel
    /// should never send one, so a flood of them is a kernel/edge mismatch to look into).
    fn offload_error(&mut self, tap: usize, error: crate::os::offload::OffloadError) {
        self.counters.tap_offload_errors += 1;
        if let Some((nwid, device)) = self.taps.get(tap) {
            tracing::debug!(instance = %self.label, interface = device.name(), network = %nwid, %error, "tap read dropped");
        }
    }

    /// One frame read from TAP `tap` (`buffer[frame]`, with [`FRAME_HEADROOM`] before it)
    /// through the engine; the datagrams it yields join the send batch (sent first if full).
    fn frame_in(
        &mut self,
        now: u64,
        tap: usize,
        buffer: &mut [u8],
        frame: Range<usize>,
        sends: &mut SendBatch,
    ) {
        let Some(&(nwid, _)) = self.taps.get(tap) else {
            return;
        };
        let pieces = zt_wire::fragment::MAX_PIECES;
        if sends.free(DATAGRAMS_CAPACITY, pieces).is_none() {
            self.send_batch(sends);
        }
        let Some(out) = sends.free(DATAGRAMS_CAPACITY, pieces) else {
            // An empty batch always has room (SEND_BATCH_BYTES); never reached.
            self.counters.transmit_errors += 1;
            return;
        };
        let Encapsulated::Send(datagrams) =
            self.engine.encapsulate_frame(now, nwid, buffer, frame, out)
        else {
            return;
        };
        let Some(index) = self
            .local
            .iter()
            .position(|s| s.id.0 == datagrams.local_socket.0)
        else {
            self.counters.transmit_errors += 1;
            return;
        };
        let layout = datagrams.layout;
        // A copy through the TCP relay when the fallback is on; UDP is sent all the same, so
        // that the moment it gets through again the node's paths use it.
        for datagram in layout.datagrams(out) {
            self.fallback.on_send(now, datagrams.remote, datagram);
        }
        if !self.fallback.udp_used() {
            return;
        }
        if !sends.push(
            index,
            datagrams.remote,
            layout.len,
            layout.segment_size,
            self.segments_per_send[index],
        ) {
            // Cannot happen: `free` promised the bytes and MAX_PIECES messages.
            self.counters.transmit_errors += 1;
        }
    }

    /// Send the batch: each run of one socket's messages with `sendmmsg` (a message with
    /// several datagrams cut by the kernel), in the order they were added. A full socket
    /// buffer drops the rest of the run like the network would; a refused segmentation sends
    /// that message's datagrams one by one and turns segmentation off for the socket.
    fn send_batch(&mut self, sends: &mut SendBatch) {
        let mut next = 0;
        while next < sends.len() {
            let index = sends.socket(next);
            let end = sends.run_end(next);
            let socket = &self.sockets[index];
            let sent = socket.try_io(tokio::io::Interest::WRITABLE, || {
                sends.send(&**socket, next..end)
            });
            match sent {
                Ok(count) => next += count.max(1),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.counters.transmit_errors += (end - next) as u64;
                    next = end;
                }
                Err(error) if sends.segmented(next) && segmentation_refused(&error) => {
                    if self.segments_per_send[index] > 1 {
                        tracing::debug!(instance = %self.label, socket = index, %error, "UDP segmentation refused; sending datagrams one by one");
                        self.segments_per_send[index] = 1;
                    }
                    let remote = sends.remote(next);
                    for datagram in sends.datagrams(next) {
                        self.send(index, remote, None, datagram);
                    }
                    next += 1;
                }
                Err(error) => {
                    self.send_failed(sends.remote(next), &error);
                    next += 1;
                }
            }
        }
        sends.clear();
    }

    /// Send everything the engine has queued.
    fn flush(&mut self, out: &mut Vec<u8>) {
        loop {
            out.clear();
            let Some(t) = self.engine.poll_transmit(out) else {
                break;
            };
            let payload = &out[..t.len.min(out.len())];
            // Once per datagram, however many sockets send it: the tunnel carries one copy.
            self.fallback.on_send(self.clock.now(), t.remote, payload);
            if !self.fallback.udp_used() {
                continue;
            }
            match t.local {
                Some(id) => match self.local.iter().position(|s| s.id == id) {
                    Some(index) => self.send(index, t.remote, t.ttl, payload),
                    None => self.counters.transmit_errors += 1,
                },
                None => {
                    for index in 0..self.local.len() {
                        if self.local[index].bound.is_ipv4() == t.remote.is_ipv4() {
                            self.send(index, t.remote, t.ttl, payload);
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, index: usize, remote: SocketAddr, ttl: Option<u8>, payload: &[u8]) {
        let socket = &self.sockets[index];
        let restore = match ttl {
            Some(ttl) => match set_ttl(socket, ttl as u32) {
                Ok(previous) => Some(previous),
                Err(error) => {
                    tracing::debug!(instance = %self.label, %error, "cannot set TTL");
                    None
                }
            },
            None => None,
        };
        let sent = socket.try_send_to(payload, remote);
        if let Some(previous) = restore {
            let _ = set_ttl(socket, previous);
        }
        // UDP is best effort: a full socket buffer drops the datagram like the network would.
        match sent {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                self.counters.transmit_errors += 1;
            }
            Err(error) => self.send_failed(remote, &error),
        }
    }

    /// A send that failed for another reason than a full buffer: counted, and warned about
    /// at most once a minute.
    fn send_failed(&mut self, remote: SocketAddr, error: &std::io::Error) {
        self.counters.transmit_errors += 1;
        match self.send_failures.due() {
            Some(failed) => {
                tracing::warn!(instance = %self.label, %remote, %error, failed, "UDP sends failing (no route to the peer or root?); said again at most once a minute")
            }
            None => {
                tracing::trace!(instance = %self.label, %remote, %error, "UDP send failed")
            }
        }
    }
}

/// Set the unicast TTL / hop limit of `socket`, returning the previous value.
fn set_ttl(socket: &UdpSocket, ttl: u32) -> std::io::Result<u32> {
    let sock = socket2::SockRef::from(socket);
    if socket.local_addr()?.is_ipv4() {
        let previous = sock.ttl_v4()?;
        sock.set_ttl_v4(ttl)?;
        Ok(previous)
    } else {
        let previous = sock.unicast_hops_v6()?;
        sock.set_unicast_hops_v6(ttl)?;
        Ok(previous)
    }
}

#[cfg(test)]
mod tests {
    //! The driver's plumbing, checked with a test engine that answers every datagram with a
    //! prefixed copy, sends the `interfaces` it is given to the last sender and counts its
    //! ticks (no protocol is involved at this layer).
    use super::*;
    use crate::runtime::engine::{EngineStatus, PanickingEngine, PortRole, Transmit};
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(5);

    struct EchoEngine {
        queue: VecDeque<(Option<LocalSocketId>, SocketAddr, Vec<u8>)>,
        ticks: Arc<AtomicU64>,
        next: u64,
        last_sender: Option<(LocalSocketId, SocketAddr)>,
    }

    impl Engine for EchoEngine {
        fn receive(
            &mut self,
            _now: u64,
            local: LocalSocketId,
            remote: SocketAddr,
            datagram: &[u8],
        ) {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(datagram);
            self.queue.push_back((Some(local), remote, reply));
            self.last_sender = Some((local, remote));
        }
        fn set_interfaces(&mut self, interfaces: Vec<String>, _now: u64) {
            if let Some((local, remote)) = self.last_sender {
                let told = format!("interfaces:{}", interfaces.join(","));
                self.queue
                    .push_back((Some(local), remote, told.into_bytes()));
            }
        }
        fn tick(&mut self, now: u64) {
            self.ticks.fetch_add(1, Ordering::SeqCst);
            self.next = now + 10;
        }
        fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
            let (local, remote, data) = self.queue.pop_front()?;
            *buf = data;
            Some(Transmit {
                local,
                remote,
                len: buf.len(),
                ttl: Some(7),
            })
        }
        fn next_deadline(&self) -> Option<u64> {
            Some(self.next)
        }
        fn status(&self) -> EngineStatus {
            EngineStatus::default()
        }
    }

    /// The runtime around a test engine, without TCP fallback.
    fn start_echo(
        bound: Vec<BoundSocket>,
        engine: EchoEngine,
        clock: EngineClock,
    ) -> InstanceRuntime {
        InstanceRuntime::start(
            bound,
            Box::new(engine),
            clock,
            "test".into(),
            TcpFallbackSettings::disabled(),
        )
        .unwrap()
    }

    async fn recv(client: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 1500];
        let (n, from) = tokio::time::timeout(WAIT, client.recv_from(&mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        (buf[..n].to_vec(), from)
    }

    #[tokio::test]
    async fn datagrams_timers_commands_and_stop() {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_socket.set_nonblocking(true).unwrap();
        let bound_addr = std_socket.local_addr().unwrap();
        let bound = vec![BoundSocket {
            socket: std_socket,
            bound: bound_addr,
            role: PortRole::Primary,
        }];
        let clock = EngineClock::new();
        let ticks = Arc::new(AtomicU64::new(0));
        let engine = EchoEngine {
            queue: VecDeque::new(),
            ticks: ticks.clone(),
            next: clock.now(),
            last_sender: None,
        };
        let runtime = start_echo(bound, engine, clock);
        assert_eq!(runtime.sockets()[0].bound, bound_addr);

        // receive → poll_transmit → sent from the socket it came in on
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"hi", bound_addr).await.unwrap();
        assert_eq!(recv(&client).await, (b"echo:hi".to_vec(), bound_addr));

        // a command runs inside the driver and its transmits are flushed too
        let handle = runtime.handle();
        handle
            .set_interfaces(vec!["eth0".into(), "eth1".into()])
            .await
            .unwrap();
        assert_eq!(recv(&client).await.0, b"interfaces:eth0,eth1".to_vec());
        // the engine answers for itself; a command for a node it lacks says NotRunning
        let status = handle.status().await.unwrap();
        assert_eq!(
            (status.engine, status.node),
            (EngineStatus::default(), None)
        );
        assert!(handle.peers().await.is_err());

        // the deadline drives tick()
        let deadline = tokio::time::Instant::now() + WAIT;
        while ticks.load(Ordering::SeqCst) < 3 {
            assert!(tokio::time::Instant::now() < deadline, "ticks did not run");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // stop closes the socket: the port can be bound again
        runtime.stop().await;
        std::net::UdpSocket::bind(bound_addr).expect("port released after stop");
    }

    /// A panic in the engine ends the instance's driver, and the failure is kept (and logged)
    /// for the daemon to show and restart it, rather than the instance going silent.
    #[tokio::test]
    async fn an_engine_panic_is_caught_and_reported() {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_socket.set_nonblocking(true).unwrap();
        let bound = vec![BoundSocket {
            bound: std_socket.local_addr().unwrap(),
            socket: std_socket,
            role: PortRole::Primary,
        }];
        let runtime = InstanceRuntime::start(
            bound,
            Box::new(PanickingEngine::new("engine bug")),
            EngineClock::new(),
            "test".into(),
            TcpFallbackSettings::disabled(),
        )
        .unwrap();
        assert_eq!(runtime.failure(), None);
        let told = runtime.handle().set_interfaces(vec!["all".into()]).await;
        assert!(told.is_err(), "the command cannot complete");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while runtime.failure().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "failure never reported"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(runtime.failure().as_deref(), Some("engine bug"));
        runtime.stop().await;
    }

    #[test]
    fn a_repeated_failure_warns_once_then_counts() {
        let mut warning = FailureWarning::default();
        assert_eq!(warning.due(), Some(1));
        for _ in 0..5 {
            assert_eq!(warning.due(), None);
        }
        // A minute later the next failure warns with the ones kept quiet in between.
        warning.last = warning.last.and_then(|t| {
            t.checked_sub(FailureWarning::EVERY + std::time::Duration::from_millis(1))
        });
        assert_eq!(warning.due(), Some(6));
    }

    #[test]
    fn engine_clock_is_monotonic_and_wall_like() {
        let clock = EngineClock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
        // 2020-01-01 in ms: a wall-clock-like origin, never near zero.
        assert!(a > 1_577_836_800_000);
        let at = clock.instant_of(a + 100);
        assert!(at > tokio::time::Instant::now());
    }
}
