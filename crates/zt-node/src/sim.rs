//! A virtual-time network for tests and benchmarks (feature `testing`).
//!
//! Several [`Node`]s live in one process, each at one UDP address. Datagrams they emit are
//! delivered after a fixed latency, optionally lost at random (seeded) or dropped by a
//! per-link filter; timeouts fire exactly when the nodes ask. Runs are bounded by a step
//! limit so a livelock fails a test instead of hanging it.

use crate::{Event, LocalSocketId, Node, NodeConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use zt_crypto::c25519::KeyPair;
use zt_crypto::Identity;
use zt_wire::inet::InetAddress;
use zt_wire::world::{Root, World, WorldType};

/// Secret identities from the interop vectors (`shared/interop/vectors.json` and the
/// capture identities), so tests need no slow identity generation. All are valid.
pub const TEST_IDENTITIES: [&str; 9] = [
    "3dd3377c70:0:b536662c7b3d61b5440d8dfc5f6e65b101ca3b6c32e8d3cafef52fd71786a264cf3ac90ce863a85a22ae6e93f2795e33f6af6731a126a5a7fdadd05808ca5533:18d7f229860de6a3220c19d51def3433e4e029c16760efdaf9f0c87437ffbf3149527de5d528174a6b64de837233cc4f5f123a3e809603c82096609c7a5e73fd",
    "2a6d498fe1:0:a95d25efcc7001ff72c5eb9fbfcb7d64bd19d4177d4cfd233a6e588915834949346c4903f301fbc8a01ece5b0558fda33d48680710567cb1baabdd45f9a8cbc6:32a8d600ad156438937bd7b890851b870d9622a2e8adffe05b9fad5a01c85a2d005046b8f5396ccbaf8a43f0948dc5d970666c812951f880a84ffa668c68b953",
    "d6d2f391f9:0:2b03360ba8dad16d482c127598eab25d52307454ed7f1018797daa4aa6d5265d445221da037466872010902d0f3f5b51be2f6e2db1f538f760a7e1c9a4108ced:060947f76e9904a0e4e8afd1a9fa80063fb73b66dd4f447c3d4326b744fe43e5a9fb3c01acf066a8a7f3762c8b785a5d090c07041d988956ca331989e0e2cc25",
    "b7f4fb972c:0:024423e0c67e00784c33ca082678af1b869f1db7ca4bcfd3a4a5e5590112f04633f604bb9e7432cc65aaabd6e4cfde2a710a212d5f7d09866ec55572315a314c:64d3f9e207409eda75d7b304d25613527925e53452f177c1b81df9d7a04c8c17bb087fd22b5f2a7c1f8bf9d97451bfd4cc7448935349bfed47e5083bad137bc3",
    "4114379b28:0:c15042fd5397e86bd9d50783c200b014cb6757c05164b60b770c017ee842266fb12f2c8c072f69a85c02cfb08ce3d7c29a20792bc3d6d806fdd972b1b435e8cf:e33d80fddcd69613acfb0eb38d826bd7c3173e9f5f16909dae55b1929f79701f46dcf8e17d4f8b9abaae75930f3bbe26b744c7f6ef7e962b07c0636713b95870",
    "ae2436cf84:0:0310beccac2ff571eed74ce1349f196cb0d10317a538d4c6af84f5fc7b7eb3707c119ce5d811d5114e7522363326725be007ac4ecd54a272d21764188d43d66d:721e270cd0a8daaed0fb34dd5bfdc0fef953dd867e70e4d70427fd0c0ba7a13d8fd5b34325e3ec688f6d77f95492a06b28e93ab2ef895ef62c455c84e456dd5c",
    "51479cea31:0:8b548000c0f83fa4ef4a80b915993fc701fd2b392774af546713630774633b1b747fb6d327b198bc78a5f0922d9ec29d835664bc2a255b76148d60442417aa37:9c20a24f2104ff2f51cad332ca70c5abe0b0f887eebec13981a7ea42bbb865a769ef93026051df05c0c7abfc8e519801d526938900168e9266bb919bab72dde9",
    "a6c5664b6f:0:f1171dfc6e8330dea8d879b1509c756649c4e87821216b3a9eb7cf7daaac035a408c29349e1e6b66990a633bddcd87d20408785f73bc5f09b850a8421dd930e4:0454dc513f5295b9c5bd8eecf6f3699ad72e547044559d3371fadfd194eeedc6e17618fcf783fe0a192a80da0396c8fb0b1b83a27f7fa888e01889cd30a81753",
    "6ebff17e20:0:891a95f619cbf611027e4ea76d0405f2b3a51fd6a00dfda09ee8a699e2c8a304af8aecc7041e301fe6f3595ab7629395e53b38f385e18036823ddf3a71767665:5dd140cae64e8b5280aba52e088c849f43f80ae03f7e0b0b28b1de3c8d353f569389627813d4374c27aeeb0bcadf8a877e9acadf302828e2b05364470d4edbd8",
];

/// The `n`th test identity (with its private key).
pub fn test_identity(n: usize) -> Identity {
    Identity::from_string(TEST_IDENTITIES[n % TEST_IDENTITIES.len()])
        .expect("test identities are well formed")
}

/// A planet whose roots are `roots` (identity, endpoint), signed by a key pair from `seed`.
/// Returns the world and its signing key pair (to sign later revisions).
pub fn make_planet(
    id: u64,
    timestamp: u64,
    roots: &[(Identity, SocketAddr)],
    seed: u64,
) -> (World, KeyPair) {
    let mut rng = StdRng::seed_from_u64(seed);
    let signer = KeyPair::generate(&mut rng);
    let roots = roots
        .iter()
        .map(|(id, ep)| Root {
            identity: id.to_public(),
            stable_endpoints: vec![InetAddress::new(ep.ip(), ep.port())],
        })
        .collect();
    let world = World::new_signed(
        WorldType::Planet,
        id,
        timestamp,
        signer.public,
        roots,
        &signer,
    )
    .expect("test planet within limits");
    (world, signer)
}

/// A datagram in flight.
struct InFlight {
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

/// Decides whether a datagram from → to is dropped (true = drop).
pub type LinkFilter = Box<dyn Fn(SocketAddr, SocketAddr) -> bool>;

/// The simulated network.
pub struct Sim {
    pub now: u64,
    pub nodes: Vec<Node>,
    pub addrs: Vec<SocketAddr>,
    /// Every event each node emitted, in order.
    pub events: Vec<Vec<Event>>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    in_flight: HashMap<u64, InFlight>,
    seq: u64,
    pub latency_ms: u64,
    /// Probability in [0, 1) that a datagram is lost.
    pub loss: f64,
    pub filter: Option<LinkFilter>,
    rng: StdRng,
    pub delivered: u64,
    pub dropped: u64,
    /// Datagrams that went to an address no node has.
    pub undeliverable: u64,
    /// When true, every delivered datagram is also kept in `log` (from, to, bytes).
    pub record: bool,
    pub log: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Sim {
    pub fn new(seed: u64, latency_ms: u64, loss: f64) -> Sim {
        Sim {
            now: 1_000_000,
            nodes: Vec::new(),
            addrs: Vec::new(),
            events: Vec::new(),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            latency_ms,
            loss,
            filter: None,
            rng: StdRng::seed_from_u64(seed),
            delivered: 0,
            dropped: 0,
            undeliverable: 0,
            record: false,
            log: Vec::new(),
        }
    }

    /// Adds a node at `addr`; its RNG is seeded from the simulation's.
    pub fn add_node(&mut self, identity: Identity, config: NodeConfig, addr: SocketAddr) -> usize {
        let seed: u64 = self.rng.gen();
        let node = Node::new(
            identity,
            config,
            Box::new(StdRng::seed_from_u64(seed)),
            self.now,
        )
        .expect("test identity has a private key");
        self.nodes.push(node);
        self.addrs.push(addr);
        self.events.push(Vec::new());
        self.by_addr.insert(addr, self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    /// Moves every node's pending transmits onto the wire and records its events.
    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].poll_transmit() {
                let from = self.addrs[i];
                let lost = self.loss > 0.0 && self.rng.gen::<f64>() < self.loss;
                let filtered = self.filter.as_ref().is_some_and(|f| f(from, t.remote));
                if lost || filtered {
                    self.dropped += 1;
                    continue;
                }
                self.seq += 1;
                self.queue
                    .push(Reverse((self.now + self.latency_ms, self.seq)));
                self.in_flight.insert(
                    self.seq,
                    InFlight {
                        from,
                        to: t.remote,
                        data: t.data,
                    },
                );
            }
            while let Some(e) = self.nodes[i].poll_event() {
                self.events[i].push(e);
            }
        }
    }

    /// Runs until virtual time `until`, delivering datagrams and firing timeouts in order.
    /// Panics if more than `max_steps` steps are needed (a livelock in a test).
    pub fn run_until(&mut self, until: u64, max_steps: usize) {
        let mut steps = 0;
        loop {
            self.collect();
            let next_delivery = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timeout = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            let next = match (next_delivery, next_timeout) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(until),
            };
            if next > until {
                self.now = until;
                break;
            }
            steps += 1;
            assert!(
                steps <= max_steps,
                "simulation exceeded {max_steps} steps at t={}",
                self.now
            );
            self.now = self.now.max(next);
            while let Some(Reverse((t, seq))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                let Some(d) = self.in_flight.remove(&seq) else {
                    continue;
                };
                match self.by_addr.get(&d.to) {
                    Some(&i) => {
                        self.delivered += 1;
                        if self.record {
                            self.log.push((d.from, d.to, d.data.clone()));
                        }
                        self.nodes[i].handle_datagram(self.now, LocalSocketId(0), d.from, &d.data);
                    }
                    None => self.undeliverable += 1,
                }
            }
            for n in self.nodes.iter_mut() {
                if n.poll_timeout().is_some_and(|t| t <= self.now) {
                    n.handle_timeout(self.now);
                }
            }
        }
        self.collect();
    }

    pub fn run_for(&mut self, ms: u64, max_steps: usize) {
        self.run_until(self.now + ms, max_steps);
    }

    /// Injects a raw datagram to node `to` as if it came from `from`, delivered now.
    pub fn inject(&mut self, from: SocketAddr, to: usize, data: &[u8]) {
        self.nodes[to].handle_datagram(self.now, LocalSocketId(0), from, data);
        self.collect();
    }
}

/// Two members of an ad-hoc network with a direct path to each other, for data-path tests
/// and benchmarks: a root (test identity 0) and leaves 1 and 2 joined to network
/// `0xff1c000000000001`, with a few frames already exchanged (so each knows the other's
/// identity, key and direct path, and credentials were pushed). Returns the simulation and
/// the indexes of the two leaves.
pub fn two_members_on_an_adhoc_network(
    seed: u64,
) -> (Sim, usize, usize, zt_wire::network_id::NetworkId) {
    use zt_wire::mac::Mac;
    const STEPS: usize = 500_000;
    let nwid = zt_wire::network_id::NetworkId(0xff1c_0000_0000_0001);
    let mut sim = Sim::new(seed, 1, 0.0);
    let root_addr: SocketAddr = "10.0.0.1:9993".parse().expect("address");
    let (planet, _) = make_planet(1, 1, &[(test_identity(0), root_addr)], seed);
    sim.add_node(test_identity(0), NodeConfig::new(planet.clone()), root_addr);
    let a = sim.add_node(
        test_identity(1),
        NodeConfig::new(planet.clone()),
        "10.0.1.1:9993".parse().expect("address"),
    );
    let b = sim.add_node(
        test_identity(2),
        NodeConfig::new(planet),
        "10.0.2.1:9993".parse().expect("address"),
    );
    sim.run_for(6_000, STEPS);
    for n in [a, b] {
        let now = sim.now;
        sim.nodes[n].join(now, nwid, crate::JoinSettings::default());
    }
    sim.run_for(1_000, STEPS);
    // Traffic both ways until the root's introduction gives the two a direct path.
    let (mac_a, mac_b) = (
        Mac::from_address(sim.nodes[a].address(), nwid),
        Mac::from_address(sim.nodes[b].address(), nwid),
    );
    for _ in 0..10 {
        let now = sim.now;
        let _ = sim.nodes[a].send_frame(now, nwid, mac_a, mac_b, 0x0800, b"warm-up");
        let _ = sim.nodes[b].send_frame(now, nwid, mac_b, mac_a, 0x0800, b"warm-up");
        sim.run_for(1_000, STEPS);
    }
    (sim, a, b, nwid)
}
