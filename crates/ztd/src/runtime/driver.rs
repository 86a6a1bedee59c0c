//! One running instance: the task that owns its UDP sockets and its [`Engine`], and the
//! handle the rest of the daemon uses to talk to it.
//!
//! The task is an actor: management code never touches the engine directly but sends it a
//! closure ([`InstanceRuntime::with_engine`]) that runs between datagrams, so the engine needs
//! no lock and sees one event at a time. Receiving is one task polling all of the instance's
//! sockets with one buffer (no task or allocation per datagram).
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::engine::{wall_clock_ms, Engine, LocalSocket, LocalSocketId};
use super::sockets::BoundSocket;

/// Largest UDP payload we accept (ZeroTier packets are at most the physical MTU, but a
/// full-size buffer costs nothing and never truncates).
const RECV_BUFFER: usize = 65536;
/// Depth of the engine-call queue.
const CALL_QUEUE: usize = 64;

type EngineCall = Box<dyn FnOnce(&mut dyn Engine, i64) + Send>;

/// Why a call into the instance failed: it stopped (disabled or crashed).
#[derive(Debug, thiserror::Error)]
#[error("instance is not running")]
pub struct NotRunning;

/// Handle on a running instance. Dropping it without [`InstanceRuntime::stop`] also stops the
/// task (the stop channel closes), but only `stop` waits for the sockets to be closed.
pub struct InstanceRuntime {
    sockets: Vec<LocalSocket>,
    calls: mpsc::Sender<EngineCall>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl InstanceRuntime {
    /// Register the bound sockets with tokio and start the driver task with `engine`.
    /// Must run inside the tokio runtime.
    pub fn start(
        bound: Vec<BoundSocket>,
        engine: Box<dyn Engine>,
        label: String,
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
        let (calls_tx, calls_rx) = mpsc::channel(CALL_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let driver = Driver {
            engine,
            sockets: udp,
            local: sockets.clone(),
            label,
            transmit_errors: 0,
        };
        let task = tokio::spawn(driver.run(calls_rx, stop_rx));
        Ok(InstanceRuntime {
            sockets,
            calls: calls_tx,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The sockets this instance listens on.
    pub fn sockets(&self) -> &[LocalSocket] {
        &self.sockets
    }

    /// Run `f` on the engine inside the driver task and return its result. Datagrams the
    /// call queues are sent right after it.
    pub async fn with_engine<R, F>(&self, f: F) -> Result<R, NotRunning>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Engine, i64) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let call: EngineCall = Box::new(move |engine, now| {
            let _ = tx.send(f(engine, now));
        });
        self.calls.send(call).await.map_err(|_| NotRunning)?;
        rx.await.map_err(|_| NotRunning)
    }

    /// Stop the task and wait until its sockets are closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "instance driver ended abnormally");
            }
        }
    }
}

struct Driver {
    engine: Box<dyn Engine>,
    sockets: Vec<Arc<UdpSocket>>,
    local: Vec<LocalSocket>,
    label: String,
    transmit_errors: u64,
}

enum Event {
    Datagram {
        socket: usize,
        remote: SocketAddr,
        len: usize,
    },
    ReceiveError {
        socket: usize,
        error: std::io::Error,
    },
    Timer,
    Call(EngineCall),
    Stop,
}

impl Driver {
    async fn run(mut self, mut calls: mpsc::Receiver<EngineCall>, mut stop: oneshot::Receiver<()>) {
        tracing::info!(instance = %self.label, sockets = ?self.local.iter().map(|s| s.bound).collect::<Vec<_>>(), "instance running");
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut out = Vec::with_capacity(RECV_BUFFER);
        // Which socket is polled first; rotated so a busy socket cannot starve the others.
        let mut first = 0usize;
        loop {
            let sleep = match self.engine.next_deadline() {
                Some(deadline) => {
                    let wait = deadline.saturating_sub(wall_clock_ms()).max(0) as u64;
                    Some(tokio::time::sleep(Duration::from_millis(wait)))
                }
                None => None,
            };
            let event = {
                let sockets = &self.sockets;
                let buf = &mut buf;
                let recv = poll_fn(|cx| {
                    let n = sockets.len();
                    for k in 0..n {
                        let index = (first + k) % n;
                        let mut read = ReadBuf::new(buf);
                        match sockets[index].poll_recv_from(cx, &mut read) {
                            Poll::Ready(Ok(remote)) => {
                                return Poll::Ready(Event::Datagram {
                                    socket: index,
                                    remote,
                                    len: read.filled().len(),
                                })
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
                tokio::select! {
                    _ = &mut stop => Event::Stop,
                    call = calls.recv() => match call { Some(c) => Event::Call(c), None => Event::Stop },
                    event = recv => event,
                    _ = async { match sleep { Some(s) => s.await, None => std::future::pending().await } } => Event::Timer,
                }
            };
            first = first.wrapping_add(1);
            match event {
                Event::Stop => break,
                Event::Datagram {
                    socket,
                    remote,
                    len,
                } => {
                    let id = self.local[socket].id;
                    self.engine
                        .receive(wall_clock_ms(), id, remote, &buf[..len]);
                }
                Event::ReceiveError { socket, error } => {
                    // ICMP errors surface here (e.g. connection refused); they concern one
                    // earlier send, not the socket.
                    tracing::debug!(instance = %self.label, socket, %error, "UDP receive error");
                }
                Event::Timer => self.engine.tick(wall_clock_ms()),
                Event::Call(call) => call(self.engine.as_mut(), wall_clock_ms()),
            }
            self.flush(&mut out);
        }
        tracing::info!(instance = %self.label, transmit_errors = self.transmit_errors, "instance stopped");
    }

    /// Send everything the engine has queued.
    fn flush(&mut self, out: &mut Vec<u8>) {
        loop {
            out.clear();
            let Some(t) = self.engine.poll_transmit(out) else {
                break;
            };
            let payload = &out[..t.len.min(out.len())];
            match t.local {
                Some(id) => match self.local.iter().position(|s| s.id == id) {
                    Some(index) => self.send(index, t.remote, payload),
                    None => self.transmit_errors += 1,
                },
                None => {
                    for index in 0..self.local.len() {
                        if self.local[index].bound.is_ipv4() == t.remote.is_ipv4() {
                            self.send(index, t.remote, payload);
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, index: usize, remote: SocketAddr, payload: &[u8]) {
        // UDP is best effort: a full socket buffer drops the datagram like the network would.
        if let Err(error) = self.sockets[index].try_send_to(payload, remote) {
            self.transmit_errors += 1;
            tracing::trace!(instance = %self.label, %remote, %error, "UDP send failed");
        }
    }
}
