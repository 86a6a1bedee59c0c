//! What the daemon asks of a running instance, as typed commands on the instance's command
//! queue (polled by its driver task before any data).
//!
//! ```text
//!   menus / REST / JSON API / controller ──> InstanceHandle::join(…), peers(), … (async, typed)
//!        │ NodeCommand { arguments, reply: oneshot::Sender<T> }   bounded queue, before data
//!        ▼
//!   driver task: NodeCommand::run(engine, now) ── one match ──> Engine / zt_node::Node
//!        events it caused are dispatched and its datagrams sent right after
//! ```
//!
//! Every command says what it does and what it answers, so the driver can count them and
//! no face can do to the node what is not listed here. A command the engine cannot carry
//! out (it has no node, or refuses an event handler) drops its reply: the caller gets
//! [`NotRunning`], as it does when the instance stopped.
use std::collections::BTreeSet;
use std::net::SocketAddr;

use tokio::sync::oneshot;
use zt_node::{
    Address, JoinSettings, NetworkInfo, PeerInfo, SendError, Sent, Stats, SubscriptionChange, Verb,
    World,
};
use zt_wire::netconf::NetworkConfig;
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::multicast::MulticastGroup;

use super::driver::{InstanceHandle, NotRunning};
use super::engine::{Engine, EngineStatus};
use super::events::EventHandler;
use crate::controller::service::ControllerPacket;

/// Where a command's answer goes.
type Reply<T> = oneshot::Sender<T>;

/// A join of a network, with what the instance's port knows about it.
#[derive(Debug, Clone)]
pub struct Join {
    pub nwid: NetworkId,
    pub settings: JoinSettings,
    /// The config saved by an earlier run (`networks.d/<nwid>.conf`), restored first so the
    /// network works before its controller answers; a stale or foreign one is ignored.
    pub saved_config: Option<NetworkConfig>,
    /// The network's TAP could not be set up (status PORT_ERROR).
    pub port_error: bool,
}

impl Join {
    /// A plain join: default settings, nothing saved, no port error.
    pub fn network(nwid: NetworkId) -> Join {
        Join {
            nwid,
            settings: JoinSettings::default(),
            saved_config: None,
            port_error: false,
        }
    }
}

/// Where an orbited moon comes from.
#[derive(Debug, Clone)]
pub enum MoonSource {
    /// Already in `moons.d/`: loaded as it is (boxed: a world is large, and commands share
    /// the driver's event type with every packet).
    Cached(Box<World>),
    /// Asked of this root, which sends the moon in its OK(HELLO).
    Seed(Address),
}

/// The node's peers, with the engine time they were read at (for path ages).
#[derive(Debug, Clone)]
pub struct PeerList {
    pub peers: Vec<PeerInfo>,
    pub now: u64,
}

/// The node behind a running engine, as the status views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The planet in use: its world ID, revision timestamp and roots' addresses.
    pub planet_id: u64,
    pub planet_timestamp: u64,
    pub planet_roots: Vec<Address>,
    /// The interface addresses the node may be reached at.
    pub local_addresses: Vec<SocketAddr>,
    /// Our addresses as upstream peers see them.
    pub surface_addresses: Vec<SocketAddr>,
}

/// What a running instance reports about itself: the engine's status, and its node's when
/// it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub engine: EngineStatus,
    pub node: Option<NodeStatus>,
}

/// What `/metrics` reads of a node, at one moment.
#[derive(Debug, Clone)]
pub struct NodeMetrics {
    pub online: bool,
    pub networks: usize,
    pub stats: Stats,
    pub peers: Vec<PeerInfo>,
}

/// Everything the daemon asks of a running instance; each answers on its own typed reply.
pub enum NodeCommand {
    /// Join a network (see [`Join`]); answers the network as the node shows it afterwards.
    Join {
        /// Boxed: a saved config is large, and commands share the driver's event type with
        /// every packet.
        join: Box<Join>,
        reply: Reply<Option<NetworkInfo>>,
    },
    /// Leave a network; answers whether it was joined.
    Leave { nwid: NetworkId, reply: Reply<bool> },
    /// The current config of a joined network.
    NetworkConfig {
        nwid: NetworkId,
        reply: Reply<Option<NetworkConfig>>,
    },
    /// The joined networks.
    Networks { reply: Reply<Vec<NetworkInfo>> },
    /// The node's peers.
    Peers { reply: Reply<PeerList> },
    /// The node's counters.
    Stats { reply: Reply<Stats> },
    /// Whether a root answered recently.
    IsOnline { reply: Reply<bool> },
    /// The moons orbited.
    Moons { reply: Reply<Vec<World>> },
    /// Orbit moon `id`; answers the moon once the node has it (`None` while it waits for
    /// the seed's answer).
    Orbit {
        id: u64,
        source: MoonSource,
        reply: Reply<Option<World>>,
    },
    /// Stop orbiting moon `id`; answers whether it was orbited.
    Deorbit { id: u64, reply: Reply<bool> },
    /// The multicast groups a network's TAP listens to (LIKEs go out for new ones); `None`
    /// if the network is not joined.
    SetMulticastSubscriptions {
        nwid: NetworkId,
        groups: BTreeSet<MulticastGroup>,
        reply: Reply<Option<SubscriptionChange>>,
    },
    /// Send one VL1 packet to a peer.
    SendToPeer {
        dest: Address,
        verb: Verb,
        payload: Vec<u8>,
        reply: Reply<Result<Sent, SendError>>,
    },
    /// Put packets the instance's controller decided on the wire.
    TransmitControllerPackets {
        packets: Vec<ControllerPacket>,
        reply: Reply<()>,
    },
    /// The instance's `interfaces` property changed (addresses for direct paths).
    SetInterfaces {
        interfaces: Vec<String>,
        reply: Reply<()>,
    },
    /// The engine's and its node's status.
    Status { reply: Reply<InstanceStatus> },
    /// What `/metrics` shows of the node.
    Metrics { reply: Reply<NodeMetrics> },
    /// Attach one more event handler (for subsystems that start using an instance after it
    /// started; those registered as a `Subsystem` are attached at start).
    AddEventHandler {
        handler: Box<dyn EventHandler>,
        reply: Reply<()>,
    },
}

impl NodeCommand {
    /// Carry the command out on `engine` (inside the instance's driver task) and answer it.
    /// An answer nobody waits for any more (the caller timed out) is dropped.
    pub(super) fn run(self, engine: &mut dyn Engine, now: u64) {
        match self {
            NodeCommand::SetInterfaces { interfaces, reply } => {
                engine.set_interfaces(interfaces, now);
                let _ = reply.send(());
            }
            NodeCommand::Status { reply } => {
                let node = engine.node().map(|node| {
                    let planet = node.planet();
                    NodeStatus {
                        planet_id: planet.id,
                        planet_timestamp: planet.timestamp,
                        planet_roots: planet.roots.iter().map(|r| r.identity.address()).collect(),
                        local_addresses: node.local_addresses().to_vec(),
                        surface_addresses: node.surface_addresses(),
                    }
                });
                let engine = engine.status();
                let _ = reply.send(InstanceStatus { engine, node });
            }
            NodeCommand::AddEventHandler { handler, reply } => {
                // A refused handler is dropped with the reply: the caller sees NotRunning.
                if engine.add_event_handler(handler).is_ok() {
                    let _ = reply.send(());
                }
            }
            command => {
                // Without a node the command is dropped, and with it its reply.
                if let Some(node) = engine.node_mut() {
                    command.run_on_node(node, now);
                }
            }
        }
    }

    /// The commands for the node itself.
    fn run_on_node(self, node: &mut zt_node::Node, now: u64) {
        match self {
            NodeCommand::Join { join, reply } => {
                let nwid = join.nwid;
                if let Some(config) = join.saved_config {
                    // A stale or foreign file is only a missed head start.
                    let _ = node.restore_network_config(now, nwid, config);
                }
                node.join(now, nwid, join.settings);
                node.set_network_port_error(nwid, join.port_error);
                let _ = reply.send(node.networks().into_iter().find(|n| n.nwid == nwid));
            }
            NodeCommand::Leave { nwid, reply } => {
                let _ = reply.send(node.leave(nwid));
            }
            NodeCommand::NetworkConfig { nwid, reply } => {
                let _ = reply.send(node.network_config(nwid).cloned());
            }
            NodeCommand::Networks { reply } => {
                let _ = reply.send(node.networks());
            }
            NodeCommand::Peers { reply } => {
                let _ = reply.send(PeerList {
                    peers: node.peers(),
                    now,
                });
            }
            NodeCommand::Stats { reply } => {
                let _ = reply.send(node.stats().clone());
            }
            NodeCommand::IsOnline { reply } => {
                let _ = reply.send(node.is_online());
            }
            NodeCommand::Moons { reply } => {
                let _ = reply.send(node.moons().to_vec());
            }
            NodeCommand::Orbit { id, source, reply } => {
                match source {
                    MoonSource::Cached(moon) => node.add_moon(now, *moon),
                    MoonSource::Seed(seed) => node.orbit(now, id, seed),
                }
                let _ = reply.send(node.moons().iter().find(|m| m.id == id).cloned());
            }
            NodeCommand::Deorbit { id, reply } => {
                let _ = reply.send(node.remove_moon(id));
            }
            NodeCommand::SetMulticastSubscriptions {
                nwid,
                groups,
                reply,
            } => {
                let _ = reply.send(node.set_multicast_subscriptions(now, nwid, groups));
            }
            NodeCommand::SendToPeer {
                dest,
                verb,
                payload,
                reply,
            } => {
                let _ = reply.send(node.send_to_peer(now, dest, verb, &payload));
            }
            NodeCommand::TransmitControllerPackets { packets, reply } => {
                crate::controller::service::transmit(node, now, packets);
                let _ = reply.send(());
            }
            NodeCommand::Metrics { reply } => {
                let _ = reply.send(NodeMetrics {
                    online: node.is_online(),
                    networks: node.networks().len(),
                    stats: node.stats().clone(),
                    peers: node.peers(),
                });
            }
            // Answered by the engine in `run`.
            NodeCommand::SetInterfaces { .. }
            | NodeCommand::Status { .. }
            | NodeCommand::AddEventHandler { .. } => {}
        }
    }
}

/// The typed way into a running instance: each method sends its command and waits for the
/// answer. All fail with [`NotRunning`] once the instance stopped, and those for the node
/// when the engine has none.
impl InstanceHandle {
    /// Join a network; answers the network as the node shows it right after.
    pub async fn join(&self, join: Join) -> Result<Option<NetworkInfo>, NotRunning> {
        self.ask(|reply| NodeCommand::Join {
            join: Box::new(join),
            reply,
        })
        .await
    }

    /// Leave a network; answers whether it was joined.
    pub async fn leave(&self, nwid: NetworkId) -> Result<bool, NotRunning> {
        self.ask(|reply| NodeCommand::Leave { nwid, reply }).await
    }

    /// The current config of a joined network.
    pub async fn network_config(
        &self,
        nwid: NetworkId,
    ) -> Result<Option<NetworkConfig>, NotRunning> {
        self.ask(|reply| NodeCommand::NetworkConfig { nwid, reply })
            .await
    }

    /// The joined networks, in network ID order.
    pub async fn networks(&self) -> Result<Vec<NetworkInfo>, NotRunning> {
        self.ask(|reply| NodeCommand::Networks { reply }).await
    }

    /// The node's peers, with the engine time they were read at.
    pub async fn peers(&self) -> Result<PeerList, NotRunning> {
        self.ask(|reply| NodeCommand::Peers { reply }).await
    }

    /// The node's counters.
    pub async fn stats(&self) -> Result<Stats, NotRunning> {
        self.ask(|reply| NodeCommand::Stats { reply }).await
    }

    /// Whether a root answered recently.
    pub async fn is_online(&self) -> Result<bool, NotRunning> {
        self.ask(|reply| NodeCommand::IsOnline { reply }).await
    }

    /// The moons orbited.
    pub async fn moons(&self) -> Result<Vec<World>, NotRunning> {
        self.ask(|reply| NodeCommand::Moons { reply }).await
    }

    /// Orbit moon `id`; answers the moon if the node has it already.
    pub async fn orbit(&self, id: u64, source: MoonSource) -> Result<Option<World>, NotRunning> {
        self.ask(|reply| NodeCommand::Orbit { id, source, reply })
            .await
    }

    /// Stop orbiting moon `id`; answers whether it was orbited.
    pub async fn deorbit(&self, id: u64) -> Result<bool, NotRunning> {
        self.ask(|reply| NodeCommand::Deorbit { id, reply }).await
    }

    /// Set the multicast groups a network's TAP listens to.
    pub async fn set_multicast_subscriptions(
        &self,
        nwid: NetworkId,
        groups: BTreeSet<MulticastGroup>,
    ) -> Result<Option<SubscriptionChange>, NotRunning> {
        self.ask(|reply| NodeCommand::SetMulticastSubscriptions {
            nwid,
            groups,
            reply,
        })
        .await
    }

    /// Send one VL1 packet to a peer.
    pub async fn send_to_peer(
        &self,
        dest: Address,
        verb: Verb,
        payload: Vec<u8>,
    ) -> Result<Result<Sent, SendError>, NotRunning> {
        self.ask(|reply| NodeCommand::SendToPeer {
            dest,
            verb,
            payload,
            reply,
        })
        .await
    }

    /// Put a controller's packets on the wire.
    pub async fn transmit_controller_packets(
        &self,
        packets: Vec<ControllerPacket>,
    ) -> Result<(), NotRunning> {
        self.ask(|reply| NodeCommand::TransmitControllerPackets { packets, reply })
            .await
    }

    /// Apply a new `interfaces` property.
    pub async fn set_interfaces(&self, interfaces: Vec<String>) -> Result<(), NotRunning> {
        self.ask(|reply| NodeCommand::SetInterfaces { interfaces, reply })
            .await
    }

    /// The engine's and its node's status.
    pub async fn status(&self) -> Result<InstanceStatus, NotRunning> {
        self.ask(|reply| NodeCommand::Status { reply }).await
    }

    /// What `/metrics` shows of the node.
    pub async fn metrics(&self) -> Result<NodeMetrics, NotRunning> {
        self.ask(|reply| NodeCommand::Metrics { reply }).await
    }

    /// Attach an event handler to the running instance.
    pub async fn add_event_handler(
        &self,
        handler: Box<dyn EventHandler>,
    ) -> Result<(), NotRunning> {
        self.ask(|reply| NodeCommand::AddEventHandler { handler, reply })
            .await
    }

    /// Queue the command `make` builds around a reply, then wait for the reply.
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> NodeCommand) -> Result<T, NotRunning> {
        let (reply, answer) = oneshot::channel();
        self.command(make(reply)).await?;
        answer.await.map_err(|_| NotRunning)
    }
}

#[cfg(test)]
mod tests {
    //! Each node command does what its name says to a real `zt_node::Node` (no sockets: the
    //! commands are run directly, as the driver runs them) and answers on its reply.
    use super::*;
    use crate::controller::testing::member_identity;
    use rand::SeedableRng;
    use zt_node::{NetworkStatus, Node, NodeConfig};
    use zt_wire::world::WorldType;

    const NOW: u64 = 1_700_000_000_000;

    /// A node whose planet has no roots: it sends nothing anywhere.
    fn lonely_node() -> Node {
        let planet = World::new(WorldType::Planet, 0x7e57, 1, [0; 64], Vec::new()).unwrap();
        let rng = Box::new(rand::rngs::StdRng::seed_from_u64(7));
        Node::new(member_identity(), NodeConfig::new(planet), rng, NOW).unwrap()
    }

    /// Run the command `make` builds on `node` and return its answer.
    fn ask<T>(node: &mut Node, make: impl FnOnce(Reply<T>) -> NodeCommand) -> T {
        let (reply, mut answer) = oneshot::channel();
        make(reply).run_on_node(node, NOW);
        answer.try_recv().expect("the command answered")
    }

    #[test]
    fn node_commands_act_on_the_node_and_answer() {
        let mut node = lonely_node();
        let nwid = NetworkId(0x8056_c2e2_1c00_0001);
        let failed_port = Join {
            port_error: true,
            ..Join::network(nwid)
        };
        let info = ask(&mut node, |reply| NodeCommand::Join {
            join: Box::new(failed_port),
            reply,
        });
        assert_eq!(
            info.map(|i| (i.nwid, i.status)),
            Some((nwid, NetworkStatus::PortError))
        );
        // Joined again once its port works: the error is gone.
        let info = ask(&mut node, |reply| NodeCommand::Join {
            join: Box::new(Join::network(nwid)),
            reply,
        });
        assert_eq!(
            info.map(|i| i.status),
            Some(NetworkStatus::RequestingConfiguration)
        );
        let networks = ask(&mut node, |reply| NodeCommand::Networks { reply });
        assert_eq!(networks.iter().map(|n| n.nwid).collect::<Vec<_>>(), [nwid]);
        assert!(ask(&mut node, |reply| NodeCommand::NetworkConfig {
            nwid,
            reply
        })
        .is_none());
        let arp = MulticastGroup::for_address_resolution([10, 0, 0, 1].into());
        let groups = BTreeSet::from([arp]);
        let change = ask(&mut node, |reply| NodeCommand::SetMulticastSubscriptions {
            nwid,
            groups,
            reply,
        });
        assert_eq!(change.map(|c| c.added), Some(vec![arp]));
        assert!(ask(&mut node, |reply| NodeCommand::Leave { nwid, reply }));
        assert!(!ask(&mut node, |reply| NodeCommand::Leave { nwid, reply }));
        let groups = BTreeSet::new();
        let change = ask(&mut node, |reply| NodeCommand::SetMulticastSubscriptions {
            nwid,
            groups,
            reply,
        });
        assert!(change.is_none(), "a network left has no subscriptions");

        // Orbiting by seed waits for the seed's answer; deorbiting forgets the wanted moon.
        let (id, seed) = (0xabc, Address::new(0x1122334455).unwrap());
        let source = MoonSource::Seed(seed);
        let moon = ask(&mut node, |reply| NodeCommand::Orbit { id, source, reply });
        assert!(moon.is_none(), "no moon before the seed answers");
        assert!(ask(&mut node, |reply| NodeCommand::Moons { reply }).is_empty());
        assert!(ask(&mut node, |reply| NodeCommand::Deorbit { id, reply }));
        assert!(!ask(&mut node, |reply| NodeCommand::Deorbit { id, reply }));

        assert!(!ask(&mut node, |reply| NodeCommand::IsOnline { reply }));
        let peers = ask(&mut node, |reply| NodeCommand::Peers { reply });
        assert_eq!(peers.now, NOW);
        let metrics = ask(&mut node, |reply| NodeCommand::Metrics { reply });
        assert_eq!((metrics.online, metrics.networks), (false, 0));
        assert_eq!(metrics.peers, peers.peers);
        assert_eq!(
            ask(&mut node, |reply| NodeCommand::Stats { reply }),
            metrics.stats
        );
    }
}
