//! TCP fallback of an instance, zerotier-one's rule (`service/OneService.cpp`): when no UDP
//! has come from a global address for [`FALLBACK_AFTER_MS`] while the node keeps sending to
//! global addresses (its roots), open one TCP connection to a relay
//! (local.conf `tcpFallbackRelay`, ZeroTier's own by default) and send every such datagram
//! through it as well as over UDP; what the relay sends back is handed to the node as if it
//! had arrived by UDP from the address the relay names. Once UDP from a global address is
//! received again, the tunnel is closed (zerotier-one closes it while such UDP is less than
//! half of [`FALLBACK_AFTER_MS`] old).
//!
//! zerotier-one tunnels datagrams to IPv4 addresses only; ztd tunnels those to IPv6 ones
//! too (address type 6 of the framing), so that a node with IPv6 alone, or roots reachable
//! only over IPv6, can fall back as well. The relay may be reached over either family. A
//! relay that forwards IPv4 only (zerotier-one's `tcp-proxy`) drops the IPv6 records and
//! carries on with the others.
//!
//! UDP keeps being sent the whole time, so that the moment the firewall lets it through
//! again the node's paths answer over UDP and the tunnel is dropped. The node itself knows
//! nothing of this: the driver ([`super::driver`]) calls [`TcpFallback::udp_received`] for
//! UDP it receives and [`TcpFallback::on_send`] for each datagram it sends, and injects the
//! tunnel's datagrams ([`TunnelEvent`]) as received ones.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zt_node::path::{ip_scope, IpScope};
use zt_wire::tcp_tunnel::{self, Record, TunnelDecoder, TunnelVersion};

/// `ZT_TCP_FALLBACK_AFTER`: UDP silence from global addresses before the tunnel is used.
pub const FALLBACK_AFTER_MS: u64 = 60_000;
/// `ZT_PING_CHECK_INTERVAL`: a tunnel is opened only by a send at least half of this after
/// the previous one, so one burst of sends opens one connection.
const PING_CHECK_INTERVAL_MS: u64 = 5_000;
/// `ZT_TCP_FALLBACK_RELAY`: ZeroTier's relay, used when local.conf names none.
pub const ZEROTIER_RELAY: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(204, 80, 128, 1)), 443);
/// Shorter datagrams are not ZeroTier packets and count for nothing (zerotier-one's 16).
const MIN_DATAGRAM: usize = 16;
/// `ZT_TCP_ACTIVITY_TIMEOUT`: a tunnel that brings nothing for this long is closed (the
/// next send opens a new one).
const TUNNEL_IDLE: Duration = Duration::from_secs(60);
/// How long a connection to the relay may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Records queued towards the relay; past this, datagrams are sent by UDP only (zerotier-one
/// stops queueing at 64 KiB).
const OUTGOING_QUEUE: usize = 128;
/// Datagrams from the relay waiting for the driver; past this they are dropped.
const INCOMING_QUEUE: usize = 1024;

/// The instance's fallback settings (local.conf, the same for every instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFallbackSettings {
    /// `allowTcpFallbackRelay` (default on, as in zerotier-one).
    pub allowed: bool,
    /// `tcpFallbackRelay`.
    pub relay: SocketAddr,
    /// `forceTcpRelay`: the relay from the start and for everything, no UDP sent or heard
    /// (zerotier-one's setting for networks that pass only TCP).
    pub forced: bool,
}

impl Default for TcpFallbackSettings {
    fn default() -> Self {
        TcpFallbackSettings {
            allowed: true,
            relay: ZEROTIER_RELAY,
            forced: false,
        }
    }
}

impl TcpFallbackSettings {
    /// No fallback at all.
    pub fn disabled() -> Self {
        TcpFallbackSettings {
            allowed: false,
            forced: false,
            ..TcpFallbackSettings::default()
        }
    }
}

/// What a send means for the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAction {
    /// UDP only.
    UdpOnly,
    /// Also through the tunnel (it is up).
    AlsoThroughTunnel,
    /// Open the tunnel (the next sends will use it).
    OpenTunnel,
}

/// The timing rules alone, on the engine clock (ms), for unit tests.
#[derive(Debug, Clone)]
pub struct FallbackRule {
    /// Last UDP datagram received from a global address.
    last_global_receive: u64,
    /// Last datagram sent to a global address.
    last_global_send: u64,
    /// When the instance started: no fallback in its first [`FALLBACK_AFTER_MS`].
    started: u64,
    /// `forceTcpRelay`: the tunnel without waiting, and it stays.
    forced: bool,
}

/// Only global addresses count, as in zerotier-one: a relay on the Internet cannot stand in
/// for a blocked path to a LAN peer.
fn counts(address: SocketAddr, len: usize) -> bool {
    len >= MIN_DATAGRAM && ip_scope(address.ip()) == IpScope::Global
}

impl FallbackRule {
    pub fn new(now: u64) -> FallbackRule {
        FallbackRule {
            last_global_receive: 0,
            last_global_send: 0,
            started: now,
            forced: false,
        }
    }

    /// The rule of `forceTcpRelay`.
    pub fn forced(now: u64) -> FallbackRule {
        FallbackRule {
            forced: true,
            ..FallbackRule::new(now)
        }
    }

    pub fn udp_received(&mut self, now: u64, from: SocketAddr, len: usize) {
        if counts(from, len) {
            self.last_global_receive = now;
        }
    }

    /// A datagram of `len` bytes is being sent to `to` over UDP; `tunnel_up` says whether a
    /// tunnel is connected, `tunnel_exists` whether one is connected or connecting.
    pub fn on_send(
        &mut self,
        now: u64,
        to: SocketAddr,
        len: usize,
        tunnel_up: bool,
        tunnel_exists: bool,
    ) -> SendAction {
        if !counts(to, len) {
            return SendAction::UdpOnly;
        }
        let silent = now.saturating_sub(self.last_global_receive) > FALLBACK_AFTER_MS
            && now.saturating_sub(self.started) > FALLBACK_AFTER_MS;
        let since_last_send = now.saturating_sub(self.last_global_send);
        self.last_global_send = now;
        if self.forced {
            if tunnel_up {
                SendAction::AlsoThroughTunnel
            } else if !tunnel_exists {
                SendAction::OpenTunnel
            } else {
                SendAction::UdpOnly
            }
        } else if !silent {
            SendAction::UdpOnly
        } else if tunnel_up {
            SendAction::AlsoThroughTunnel
        } else if !tunnel_exists
            && since_last_send < FALLBACK_AFTER_MS
            && since_last_send > PING_CHECK_INTERVAL_MS / 2
        {
            SendAction::OpenTunnel
        } else {
            SendAction::UdpOnly
        }
    }

    /// UDP from a global address is flowing again: the tunnel should go.
    pub fn udp_is_back(&self, now: u64) -> bool {
        !self.forced && now.saturating_sub(self.last_global_receive) < FALLBACK_AFTER_MS / 2
    }
}

/// What the tunnel task tells the driver.
#[derive(Debug)]
pub enum TunnelEvent {
    /// Connected and the hello sent: datagrams may be queued.
    Connected,
    /// A datagram from the relay, and the address it came from.
    Datagram(SocketAddr, Vec<u8>),
    /// The connection failed or ended.
    Closed(String),
}

/// One connection to the relay, as the driver holds it. Dropping it closes the connection.
struct Tunnel {
    records: mpsc::Sender<Vec<u8>>,
    events: mpsc::Receiver<TunnelEvent>,
    up: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An instance's fallback: the rule, the tunnel when there is one, and the flag the
/// management APIs show (`tcp-fallback`, `tcpFallbackActive`).
pub struct TcpFallback {
    settings: TcpFallbackSettings,
    rule: FallbackRule,
    tunnel: Option<Tunnel>,
    active: Arc<AtomicBool>,
    label: String,
    /// Records not queued because the tunnel was behind.
    pub dropped: u64,
}

impl TcpFallback {
    pub fn new(settings: TcpFallbackSettings, now: u64, label: String) -> TcpFallback {
        TcpFallback {
            settings,
            rule: if settings.forced && settings.allowed {
                FallbackRule::forced(now)
            } else {
                FallbackRule::new(now)
            },
            tunnel: None,
            active: Arc::default(),
            label,
            dropped: 0,
        }
    }

    /// True while datagrams go through a connected tunnel.
    pub fn active_flag(&self) -> Arc<AtomicBool> {
        self.active.clone()
    }

    /// Whether UDP is used at all: not under `forceTcpRelay`, which neither sends nor
    /// hears it.
    pub fn udp_used(&self) -> bool {
        !(self.settings.allowed && self.settings.forced)
    }

    /// UDP datagram received (not one injected from the tunnel).
    pub fn udp_received(&mut self, now: u64, from: SocketAddr, len: usize) {
        self.rule.udp_received(now, from, len);
    }

    /// A datagram is being sent by UDP to `to`: also queue it on the tunnel, or open one,
    /// as the rule says.
    pub fn on_send(&mut self, now: u64, to: SocketAddr, datagram: &[u8]) {
        if !self.settings.allowed {
            return;
        }
        let up = self.tunnel.as_ref().is_some_and(|t| t.up);
        let action = self
            .rule
            .on_send(now, to, datagram.len(), up, self.tunnel.is_some());
        match action {
            SendAction::UdpOnly => {}
            SendAction::OpenTunnel => self.open(),
            SendAction::AlsoThroughTunnel => {
                let Some(tunnel) = &self.tunnel else { return };
                let mut record = Vec::with_capacity(datagram.len() + 12);
                if tcp_tunnel::encode_datagram(&mut record, Some(to), datagram).is_err()
                    || tunnel.records.try_send(record).is_err()
                {
                    self.dropped += 1;
                }
            }
        }
    }

    fn open(&mut self) {
        if self.rule.forced {
            tracing::info!(instance = %self.label, relay = %self.settings.relay, "forceTcpRelay: connecting to the TCP relay");
        } else {
            tracing::info!(instance = %self.label, relay = %self.settings.relay, "no UDP received for {} s: trying the TCP relay", FALLBACK_AFTER_MS / 1000);
        }
        let (records, outgoing) = mpsc::channel(OUTGOING_QUEUE);
        let (event_tx, events) = mpsc::channel(INCOMING_QUEUE);
        let task = tokio::spawn(run_tunnel(self.settings.relay, outgoing, event_tx));
        self.tunnel = Some(Tunnel {
            records,
            events,
            up: false,
            task,
        });
    }

    /// The next event of the tunnel; never ready without one.
    pub async fn next_event(&mut self) -> TunnelEvent {
        match &mut self.tunnel {
            Some(tunnel) => tunnel
                .events
                .recv()
                .await
                .unwrap_or_else(|| TunnelEvent::Closed("tunnel task ended".into())),
            None => std::future::pending().await,
        }
    }

    /// Apply a connection event (datagrams are the driver's to inject).
    pub fn tunnel_event(&mut self, event: &TunnelEvent) {
        match event {
            TunnelEvent::Connected => {
                if let Some(tunnel) = &mut self.tunnel {
                    tunnel.up = true;
                    self.active.store(true, Ordering::Relaxed);
                    tracing::info!(instance = %self.label, relay = %self.settings.relay, "TCP fallback active: datagrams also go through the relay");
                }
            }
            TunnelEvent::Closed(why) => {
                tracing::info!(instance = %self.label, relay = %self.settings.relay, why, "TCP relay connection closed");
                self.close();
            }
            TunnelEvent::Datagram(..) => {}
        }
    }

    /// Close the tunnel once UDP is back (called after every event of the driver).
    pub fn housekeeping(&mut self, now: u64) {
        if self.tunnel.is_some() && self.rule.udp_is_back(now) {
            tracing::info!(instance = %self.label, "UDP received again: TCP fallback closed");
            self.close();
        }
    }

    fn close(&mut self) {
        self.tunnel = None;
        self.active.store(false, Ordering::Relaxed);
    }
}

/// The version the hello announces (the release whose protocol the node speaks).
fn hello_version() -> TunnelVersion {
    let (major, minor, revision) = zt_node::NodeConfig::DEFAULT_VERSION;
    TunnelVersion {
        major,
        minor,
        revision,
    }
}

/// Connects, says hello, then copies queued records to the relay and the relay's datagrams
/// to the driver until either side fails, the driver drops the tunnel, or nothing comes for
/// [`TUNNEL_IDLE`].
async fn run_tunnel(
    relay: SocketAddr,
    outgoing: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<TunnelEvent>,
) {
    let session = async {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(relay))
            .await
            .map_err(|_| "connection timed out".to_string())?
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let mut hello = Vec::new();
        tcp_tunnel::encode_hello(&mut hello, hello_version());
        writer
            .write_all(&hello)
            .await
            .map_err(|e| format!("hello: {e}"))?;
        events
            .send(TunnelEvent::Connected)
            .await
            .map_err(|_| "driver gone".to_string())?;
        let mut write_task = tokio::spawn(super::tcp_relay::write_records(writer, outgoing));
        let mut decoder = TunnelDecoder::new();
        let mut chunk = vec![0u8; 65536];
        let result = loop {
            let read = tokio::select! {
                read = tokio::time::timeout(TUNNEL_IDLE, reader.read(&mut chunk)) => read,
                written = &mut write_task => {
                    break Err(match written {
                        Ok(Err(e)) => format!("write: {e}"),
                        _ => "writer ended".to_string(),
                    });
                }
            };
            let n = match read {
                Err(_) => break Err("idle".to_string()),
                Ok(Err(e)) => break Err(format!("read: {e}")),
                Ok(Ok(0)) => break Err("closed by the relay".to_string()),
                Ok(Ok(n)) => n,
            };
            decoder.push(&chunk[..n]);
            let mut bad = None;
            loop {
                match decoder.next_record() {
                    Ok(Some(Record::Datagram {
                        address: Some(from),
                        payload,
                    })) => {
                        // A driver behind drops datagrams, as a congested path would.
                        let _ = events.try_send(TunnelEvent::Datagram(from, payload.to_vec()));
                    }
                    // Hellos and records without an address carry nothing for the node.
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        bad = Some(format!("bad record: {e}"));
                        break;
                    }
                }
            }
            if let Some(why) = bad {
                break Err(why);
            }
        };
        write_task.abort();
        result
    };
    let why = match session.await {
        Ok(()) => "ended".to_string(),
        Err(why) => why,
    };
    let _ = events.send(TunnelEvent::Closed(why)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "203.0.113.1:9993";
    const T0: u64 = 1_700_000_000_000;

    fn root() -> SocketAddr {
        ROOT.parse().unwrap()
    }

    #[test]
    fn the_tunnel_opens_after_a_minute_without_udp_and_closes_when_udp_returns() {
        let mut rule = FallbackRule::new(T0);
        // The first minute after the start never falls back.
        for s in (0..=60).step_by(5) {
            assert_eq!(
                rule.on_send(T0 + s * 1000, root(), 100, false, false),
                SendAction::UdpOnly
            );
        }
        // Silence past a minute: the next send opens the tunnel...
        let t = T0 + 65_000;
        assert_eq!(
            rule.on_send(t, root(), 100, false, false),
            SendAction::OpenTunnel
        );
        // ...and only one: sends in the same burst, or while connecting, do not.
        assert_eq!(
            rule.on_send(t + 10, root(), 100, false, false),
            SendAction::UdpOnly
        );
        assert_eq!(
            rule.on_send(t + 5_000, root(), 100, false, true),
            SendAction::UdpOnly
        );
        assert_eq!(
            rule.on_send(t + 6_000, root(), 100, true, true),
            SendAction::AlsoThroughTunnel
        );
        assert!(!rule.udp_is_back(t + 6_000));
        // UDP from a global address again: the tunnel goes, sends are UDP only.
        rule.udp_received(t + 7_000, root(), 100);
        assert!(rule.udp_is_back(t + 7_000));
        assert_eq!(
            rule.on_send(t + 8_000, root(), 100, true, true),
            SendAction::UdpOnly
        );
        assert!(!rule.udp_is_back(t + 7_000 + FALLBACK_AFTER_MS / 2));
    }

    #[test]
    fn forced_relay_opens_at_once_and_stays() {
        let mut rule = FallbackRule::forced(T0);
        assert_eq!(
            rule.on_send(T0, root(), 100, false, false),
            SendAction::OpenTunnel
        );
        assert_eq!(
            rule.on_send(T0 + 10, root(), 100, false, true),
            SendAction::UdpOnly
        );
        assert_eq!(
            rule.on_send(T0 + 20, root(), 100, true, true),
            SendAction::AlsoThroughTunnel
        );
        rule.udp_received(T0 + 30, root(), 100);
        assert!(!rule.udp_is_back(T0 + 30));
        // Still only what a relay on the Internet can reach: global addresses.
        assert_eq!(
            rule.on_send(T0 + 40, "10.0.0.1:9993".parse().unwrap(), 100, true, true),
            SendAction::UdpOnly
        );
    }

    #[test]
    fn only_global_addresses_and_real_packets_count() {
        let mut rule = FallbackRule::new(T0);
        rule.on_send(T0 + 60_000, root(), 100, false, false);
        let t = T0 + 65_000;
        for (to, len) in [
            ("10.0.0.1:9993", 100),
            ("192.168.1.1:9993", 100),
            ("[fd00::1]:9993", 100),
            ("[fe80::1]:9993", 100),
            (ROOT, 15),
        ] {
            assert_eq!(
                rule.on_send(t, to.parse().unwrap(), len, false, false),
                SendAction::UdpOnly,
                "{to} {len}"
            );
        }
        // Private or short receptions do not count as UDP being back.
        rule.udp_received(t, "10.0.0.1:9993".parse().unwrap(), 100);
        rule.udp_received(t, root(), 15);
        assert!(!rule.udp_is_back(t));
        assert_eq!(
            rule.on_send(t + 3_000, root(), 100, false, false),
            SendAction::OpenTunnel
        );
    }

    /// A node whose roots are reachable over IPv6 only falls back the same way: sends to a
    /// global IPv6 address open the tunnel and then go through it.
    #[test]
    fn sends_to_a_global_ipv6_root_open_the_tunnel() {
        let root: SocketAddr = "[2001:db8:77::1]:9993".parse().unwrap();
        let mut rule = FallbackRule::new(T0);
        rule.on_send(T0 + 60_000, root, 100, false, false);
        let t = T0 + 65_000;
        assert_eq!(
            rule.on_send(t, root, 100, false, false),
            SendAction::OpenTunnel
        );
        assert_eq!(
            rule.on_send(t + 5_000, root, 100, true, true),
            SendAction::AlsoThroughTunnel
        );
        rule.udp_received(t + 6_000, root, 100);
        assert!(rule.udp_is_back(t + 6_000));
    }

    /// The whole loop against a relay on loopback: a send opens the tunnel, the next one
    /// goes through it, and the relay's answer comes back as a datagram from the root.
    #[tokio::test]
    async fn datagrams_go_through_a_relay_and_answers_come_back() {
        use tokio::net::UdpSocket;
        let relay = super::super::tcp_relay::TcpRelay::start(0, "relay".into())
            .await
            .unwrap();
        let relay_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, relay.port()));
        let settings = TcpFallbackSettings {
            allowed: true,
            relay: relay_addr,
            forced: false,
        };
        let mut fallback = TcpFallback::new(settings, T0, "leaf".into());
        // The "root" is on loopback, which is not global: the rule is driven by a global
        // address, and the tunnel is then used directly for the loopback one.
        let t = T0 + 65_000;
        fallback.on_send(t - 3_000, root(), &[1; 32]);
        fallback.on_send(t, root(), &[1; 32]);
        assert!(fallback.tunnel.is_some(), "tunnel opening");
        let event = tokio::time::timeout(Duration::from_secs(5), fallback.next_event())
            .await
            .unwrap();
        fallback.tunnel_event(&event);
        assert!(matches!(event, TunnelEvent::Connected));
        assert!(fallback.active_flag().load(Ordering::Relaxed));

        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        let mut record = Vec::new();
        tcp_tunnel::encode_datagram(&mut record, Some(echo_addr), b"through the relay...").unwrap();
        fallback
            .tunnel
            .as_ref()
            .unwrap()
            .records
            .try_send(record)
            .unwrap();
        let mut buf = [0u8; 100];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), echo.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"through the relay...");
        echo.send_to(b"answer from the root", from).await.unwrap();
        let event = tokio::time::timeout(Duration::from_secs(5), fallback.next_event())
            .await
            .unwrap();
        match event {
            TunnelEvent::Datagram(source, bytes) => {
                assert_eq!(source, echo_addr);
                assert_eq!(bytes, b"answer from the root");
            }
            other => panic!("{other:?}"),
        }
        // UDP back: closed.
        fallback.udp_received(t + 1_000, root(), 100);
        fallback.housekeeping(t + 1_000);
        assert!(fallback.tunnel.is_none());
        assert!(!fallback.active_flag().load(Ordering::Relaxed));
        relay.stop().await;
    }
}
