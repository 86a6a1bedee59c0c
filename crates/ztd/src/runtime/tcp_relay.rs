//! The TCP relay an instance runs when its `tcp-relay` property names a port: what
//! zerotier-one's `tcp-proxy` does, so that nodes whose UDP is blocked (ztd's or
//! zerotier-one's, pointed here with `tcpFallbackRelay`) reach the network over TCP.
//!
//! ```text
//!   client ══TCP══> relay: hello, then records "send to ADDRESS: datagram"
//!                     └─ one UDP socket per client ──> ADDRESS
//!   client <══TCP══ relay: records "from ADDRESS: datagram" <── what that socket receives
//! ```
//!
//! The framing is [`zt_wire::tcp_tunnel`]. The relay does not look inside the datagrams and
//! holds no ZeroTier state: it is a UDP socket on the far side of a TCP connection. Like
//! `tcp-proxy` it never forwards to ports up to 1024 (so it cannot be used to reach DNS or
//! other services), nothing shorter than a ZeroTier header, and nothing before the client's
//! hello (the very old clients that sent no hello are not served).
//!
//! Unlike `tcp-proxy`, which listens and forwards on IPv4 only, it also accepts clients over
//! IPv6 and forwards to IPv6 addresses (records of address type 6, which zerotier-one's
//! tunnel already reads from a relay), so a node with only IPv6 can fall back to it.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use zt_node::path::canonical;
use zt_wire::tcp_tunnel::{self, Record, TunnelDecoder, HELLO_LEN};

use super::sockets::ipv6_unavailable;

/// The port ZeroTier's own relays listen on (HTTPS's, which firewalls let through).
pub const DEFAULT_RELAY_PORT: u16 = 443;
/// Clients served at once; more are refused (closed at accept) until one leaves.
pub const MAX_CLIENTS: usize = 1024;
/// A client with no traffic either way for this long is closed (`tcp-proxy`'s 300 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Records queued towards one client; past this, datagrams for it are dropped as a
/// congested link would (about 2.5 MB of full-size packets, `tcp-proxy` keeps 128 KiB).
const CLIENT_QUEUE: usize = 256;
/// Ports up to this one are never forwarded to (`tcp-proxy`'s abuse rule).
const HIGHEST_REFUSED_PORT: u16 = 1024;
/// Shorter datagrams cannot be ZeroTier packets and are not forwarded either way.
const MIN_DATAGRAM: usize = 16;
/// The largest datagram forwarded (ZeroTier's largest physical payload).
const MAX_DATAGRAM: usize = zt_wire::header::MAX_PHYS_PAYLOAD;
/// Bytes of queued records written to a TCP stream at once.
const WRITE_BATCH: usize = 64 * 1024;
/// Bytes read from a client's TCP stream at a time.
const READ_CHUNK: usize = 65536;
/// Connections the kernel queues for each listener before they are accepted.
const LISTEN_BACKLOG: i32 = 1024;

/// A running relay; stopped (its connections closed) by [`TcpRelay::stop`] or on drop.
pub struct TcpRelay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl TcpRelay {
    /// Listen on TCP `port` (0: one the system picks) of every IPv4 address and, where the
    /// host has IPv6, of every IPv6 address, and serve clients until stopped. Must run
    /// inside the tokio runtime.
    pub async fn start(port: u16, label: String) -> std::io::Result<TcpRelay> {
        let v4 = listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
        let port = v4.local_addr()?.port();
        // The same port on IPv6, in a socket of its own (IPV6_V6ONLY) as the UDP ports are.
        let v6 = match listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
            Ok(listener) => Some(listener),
            Err(error) if ipv6_unavailable(&error) => {
                tracing::warn!(instance = %label, port, %error, "IPv6 unavailable; TCP relay on IPv4 only");
                None
            }
            Err(error) => return Err(error),
        };
        tracing::info!(instance = %label, port, ipv6 = v6.is_some(), "TCP relay listening");
        let task = tokio::spawn(serve(v4, v6, label));
        Ok(TcpRelay { port, task })
    }

    /// The TCP port the relay listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Close the listener and every client connection.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listening TCP socket on `address`; an IPv6 one takes IPv6 only.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // A restarted relay can listen again while connections of the last one linger.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// The next connection on either listener.
async fn accept(
    v4: &TcpListener,
    v6: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    let on_v6 = async {
        match v6 {
            Some(listener) => listener.accept().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        accepted = v4.accept() => accepted,
        accepted = on_v6 => accepted,
    }
}

/// Accepts clients; the `JoinSet` owns their tasks, so aborting this task ends them all.
async fn serve(v4: TcpListener, v6: Option<TcpListener>, label: String) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = accept(&v4, v6.as_ref()) => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of descriptors, say: wait a little instead of spinning.
                        tracing::warn!(instance = %label, %error, "TCP relay accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::debug!(instance = %label, %peer, "TCP relay full; connection refused");
                    continue;
                };
                let label = label.clone();
                clients.spawn(async move {
                    let _slot = slot;
                    match serve_client(stream).await {
                        Ok(why) => tracing::debug!(instance = %label, %peer, why, "TCP relay client left"),
                        Err(error) => tracing::debug!(instance = %label, %peer, %error, "TCP relay client closed"),
                    }
                });
            }
            // Reap finished clients so the set does not grow with the connections served.
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
}

/// One client: its records go out of its own UDP socket, what that socket receives comes
/// back framed. Returns why it ended when that was not an I/O error.
async fn serve_client(stream: TcpStream) -> std::io::Result<&'static str> {
    let _ = stream.set_nodelay(true);
    let udp = ClientUdp::bind()?;
    let (mut reader, writer) = stream.into_split();
    // A separate writer, so a client slow to read never stalls what it sends us.
    let (records, queued) = mpsc::channel::<Vec<u8>>(CLIENT_QUEUE);
    let mut write_task = tokio::spawn(write_records(writer, queued));
    let mut decoder = TunnelDecoder::new();
    let mut said_hello = false;
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut datagram = vec![0u8; MAX_DATAGRAM + 1];
    let idle = tokio::time::sleep(IDLE_TIMEOUT);
    tokio::pin!(idle);
    let why = loop {
        tokio::select! {
            read = reader.read(&mut chunk) => {
                let n = read?;
                if n == 0 {
                    break "closed by the client";
                }
                idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
                decoder.push(&chunk[..n]);
                while let Some(payload) = decoder
                    .next_payload()
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
                {
                    if payload.len() == HELLO_LEN {
                        said_hello = true;
                    } else if said_hello {
                        udp.forward(payload).await;
                    }
                }
            }
            received = udp.socket.recv_from(&mut datagram) => {
                let (len, from) = received?;
                // Framed as the client sent it: an IPv4 source as IPv4, not mapped.
                let from = canonical(from);
                if (MIN_DATAGRAM..=MAX_DATAGRAM).contains(&len) {
                    idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
                    let mut record = Vec::new();
                    if tcp_tunnel::encode_datagram(&mut record, Some(from), &datagram[..len]).is_ok() {
                        // A full queue drops the datagram, as a congested path would.
                        let _ = records.try_send(record);
                    }
                }
            }
            written = &mut write_task => {
                written.map_err(std::io::Error::other)??;
                break "writer ended";
            }
            _ = &mut idle => break "idle",
        }
    };
    write_task.abort();
    Ok(why)
}

/// Copies queued records to `writer`, all those waiting in one write (up to
/// [`WRITE_BATCH`] bytes), so that a burst of datagrams costs one system call, not one each.
/// Ends when the queue closes or a write fails.
pub(crate) async fn write_records<W: tokio::io::AsyncWrite + Unpin>(
    mut writer: W,
    mut records: mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while let Some(first) = records.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < WRITE_BATCH {
            let Ok(next) = records.try_recv() else { break };
            batch.extend_from_slice(&next);
        }
        writer.write_all(&batch).await?;
    }
    Ok(())
}

/// The UDP socket a client's datagrams leave from: one for both families where the host has
/// IPv6 (`[::]` without IPV6_V6ONLY, IPv4 peers as IPv4-mapped addresses), else IPv4 only.
struct ClientUdp {
    socket: UdpSocket,
    dual_stack: bool,
}

impl ClientUdp {
    fn bind() -> std::io::Result<ClientUdp> {
        let dual_stack =
            Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).and_then(|socket| {
                socket.set_only_v6(false)?;
                socket.set_nonblocking(true)?;
                socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
                Ok(socket)
            });
        let (socket, dual_stack) = match dual_stack {
            Ok(socket) => (std::net::UdpSocket::from(socket), true),
            Err(error) if ipv6_unavailable(&error) => {
                let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
                socket.set_nonblocking(true)?;
                (socket, false)
            }
            Err(error) => return Err(error),
        };
        Ok(ClientUdp {
            socket: UdpSocket::from_std(socket)?,
            dual_stack,
        })
    }

    /// Sends one client record's datagram where it says, if the relay forwards there.
    async fn forward(&self, payload: &[u8]) {
        let Ok(Record::Datagram {
            address: Some(to),
            payload: datagram,
        }) = tcp_tunnel::parse_payload(payload)
        else {
            return;
        };
        if to.port() <= HIGHEST_REFUSED_PORT || datagram.len() < MIN_DATAGRAM {
            return;
        }
        let to = match (canonical(to), self.dual_stack) {
            (SocketAddr::V4(v4), true) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            // No IPv6 on this host: the datagram is lost, as it would be over UDP.
            (SocketAddr::V6(_), false) => return,
            (to, _) => to,
        };
        // Awaited rather than tried: a socket tokio has not yet seen writable would refuse a
        // try; waiting on a full buffer holds back the client's TCP stream, which is the
        // backpressure a tunnel should give. A failed send loses one datagram, as UDP may.
        let _ = self.socket.send_to(datagram, to).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_wire::tcp_tunnel::TunnelVersion;

    const WAIT: Duration = Duration::from_secs(5);

    async fn next_record(stream: &mut TcpStream, decoder: &mut TunnelDecoder) -> Vec<u8> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(payload) = decoder.next_payload().unwrap() {
                return payload.to_vec();
            }
            let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
                .await
                .expect("a record in time")
                .unwrap();
            assert!(n > 0, "relay closed the connection");
            decoder.push(&chunk[..n]);
        }
    }

    /// A client connected to the relay over `client_ip` says hello, asks for a datagram to
    /// be sent to a UDP "root" on `root_ip`, and gets the root's answer back framed with the
    /// root's address; what the relay must not forward (before the hello, to a low port, too
    /// short) never arrives.
    async fn relays_both_ways(relay: &TcpRelay, client_ip: IpAddr, root_ip: IpAddr) {
        let relay_addr = SocketAddr::new(client_ip, relay.port());
        let root = UdpSocket::bind(SocketAddr::new(root_ip, 0)).await.unwrap();
        let root_addr = root.local_addr().unwrap();
        let mut client = TcpStream::connect(relay_addr).await.unwrap();

        let mut out = Vec::new();
        tcp_tunnel::encode_datagram(&mut out, Some(root_addr), b"before the hello....").unwrap();
        tcp_tunnel::encode_hello(
            &mut out,
            TunnelVersion {
                major: 1,
                minor: 14,
                revision: 2,
            },
        );
        tcp_tunnel::encode_datagram(&mut out, Some(SocketAddr::new(root_ip, 53)), &[7; 32])
            .unwrap();
        tcp_tunnel::encode_datagram(&mut out, Some(root_addr), b"short").unwrap();
        tcp_tunnel::encode_datagram(&mut out, Some(root_addr), b"hello root, 20 bytes").unwrap();
        client.write_all(&out).await.unwrap();

        let mut buf = [0u8; 1500];
        let (n, relay_udp) = tokio::time::timeout(WAIT, root.recv_from(&mut buf))
            .await
            .expect("forwarded in time")
            .unwrap();
        assert_eq!(&buf[..n], b"hello root, 20 bytes");
        root.send_to(b"hello client, 21 byte", relay_udp)
            .await
            .unwrap();

        let mut decoder = TunnelDecoder::new();
        let record = next_record(&mut client, &mut decoder).await;
        assert_eq!(
            tcp_tunnel::parse_payload(&record).unwrap(),
            Record::Datagram {
                address: Some(root_addr),
                payload: b"hello client, 21 byte"
            }
        );
    }

    #[tokio::test]
    async fn relays_datagrams_both_ways_after_the_hello() {
        let relay = TcpRelay::start(0, "test".into()).await.unwrap();
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        relays_both_ways(&relay, v4, v4).await;
        relay.stop().await;
    }

    /// Clients reach the relay over IPv6 too, and it forwards to IPv6 roots (records of
    /// address type 6) as well as IPv4 ones, from one socket per client.
    #[tokio::test]
    async fn ipv6_clients_are_served_and_ipv6_roots_reached() {
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            eprintln!("SKIPPED ipv6_clients_are_served_and_ipv6_roots_reached: no IPv6 loopback");
            return;
        }
        let relay = TcpRelay::start(0, "test".into()).await.unwrap();
        let (v4, v6) = (
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        );
        relays_both_ways(&relay, v6, v6).await;
        relays_both_ways(&relay, v6, v4).await;
        relays_both_ways(&relay, v4, v6).await;
        relay.stop().await;
    }

    #[tokio::test]
    async fn a_stream_that_is_not_a_tunnel_is_closed() {
        let relay = TcpRelay::start(0, "test".into()).await.unwrap();
        let relay_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, relay.port()));
        let mut client = TcpStream::connect(relay_addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(WAIT, client.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        relay.stop().await;
    }
}
