//! Worlds and upstreams (PROTOCOL.md §5): the planet and the moons we orbit, who our roots
//! are, whether we are one, and which world updates to accept.

use std::net::SocketAddr;
use zt_crypto::{Address, Identity};
use zt_wire::world::{World, WorldType};

/// A root of the planet or of a moon.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub identity: Identity,
    pub stable_endpoints: Vec<SocketAddr>,
    pub role: Role,
}

/// How a peer relates to us (for the console's ROLE column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Planet,
    Moon,
    Leaf,
}

/// The outcome of offering a world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorldUpdate {
    /// Accepted: replaces (or adds) a world; the caller should persist it.
    Accepted,
    /// Not newer, different ID, bad signature, or a moon we do not orbit.
    Ignored,
}

pub struct Topology {
    my_address: Address,
    planet: World,
    moons: Vec<World>,
    upstreams: Vec<Upstream>,
    am_upstream: bool,
    /// Moons we want but do not hold yet: (world ID, seed address) (`Topology::addMoon`).
    seeds: Vec<(u64, Address)>,
}

impl Topology {
    pub fn new(my_address: Address, planet: World, moons: Vec<World>) -> Topology {
        let mut t = Topology {
            my_address,
            planet,
            moons: moons
                .into_iter()
                .filter(|m| m.world_type == WorldType::Moon)
                .collect(),
            upstreams: Vec::new(),
            am_upstream: false,
            seeds: Vec::new(),
        };
        t.rebuild();
        t
    }

    fn rebuild(&mut self) {
        let mut ups: Vec<Upstream> = Vec::new();
        let mut am_upstream = false;
        let worlds = std::iter::once((&self.planet, Role::Planet))
            .chain(self.moons.iter().map(|m| (m, Role::Moon)));
        for (world, role) in worlds {
            for root in &world.roots {
                if root.identity.address() == self.my_address {
                    am_upstream = true;
                    continue;
                }
                if ups
                    .iter()
                    .any(|u| u.identity.address() == root.identity.address())
                {
                    continue;
                }
                ups.push(Upstream {
                    identity: root.identity.clone(),
                    stable_endpoints: root
                        .stable_endpoints
                        .iter()
                        .filter_map(|e| e.socket_addr())
                        .collect(),
                    role,
                });
            }
        }
        ups.sort_by_key(|u| u.identity.address());
        self.upstreams = ups;
        self.am_upstream = am_upstream;
    }

    pub fn planet(&self) -> &World {
        &self.planet
    }
    pub fn moons(&self) -> &[World] {
        &self.moons
    }
    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }
    /// We are a root of the planet or of a moon.
    pub fn am_upstream(&self) -> bool {
        self.am_upstream
    }
    pub fn is_upstream(&self, a: Address) -> bool {
        self.upstreams.iter().any(|u| u.identity.address() == a)
    }
    pub fn upstream(&self, a: Address) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.identity.address() == a)
    }
    pub fn role_of(&self, a: Address) -> Role {
        self.upstream(a).map(|u| u.role).unwrap_or(Role::Leaf)
    }

    /// For an upstream, only the IPs of its stable endpoints may be used as paths (port
    /// ignored); no restriction if it lists none (`Topology::isProhibitedEndpoint`).
    pub fn is_prohibited_endpoint(&self, a: Address, remote: SocketAddr) -> bool {
        match self.upstream(a) {
            Some(u) if !u.stable_endpoints.is_empty() => {
                let ip = crate::path::canonical(remote).ip();
                !u.stable_endpoints.iter().any(|e| e.ip() == ip)
            }
            _ => false,
        }
    }

    /// Asks for a moon we do not hold: its seed will be contacted and may send it.
    pub fn add_seed(&mut self, world_id: u64, seed: Address) {
        if self.moons.iter().any(|m| m.id == world_id) || self.seeds.contains(&(world_id, seed)) {
            return;
        }
        self.seeds.push((world_id, seed));
    }

    /// Moons wanted from seeds, not held yet.
    pub fn seeds(&self) -> &[(u64, Address)] {
        &self.seeds
    }

    /// World updates in OK(HELLO) are read only from upstreams and moon seeds
    /// (`Topology::shouldAcceptWorldUpdateFrom`).
    pub fn accepts_world_updates_from(&self, a: Address) -> bool {
        self.is_upstream(a) || self.seeds.iter().any(|(_, s)| *s == a)
    }

    /// The moons to list in our HELLO: those we hold with their timestamps, and the wanted
    /// ones with timestamp 0.
    pub fn moon_list(&self) -> Vec<(u64, u64)> {
        self.moons
            .iter()
            .map(|m| (m.id, m.timestamp))
            .chain(self.seeds.iter().map(|(id, _)| (*id, 0)))
            .collect()
    }

    /// Offers a world received in OK(HELLO) from `sender` (§5.2): a newer, correctly signed
    /// revision of our planet or of a moon we orbit, or a wanted moon from its seed (it must
    /// list the seed among its roots).
    pub fn offer(&mut self, world: World, sender: Address) -> WorldUpdate {
        let accepted = match world.world_type {
            WorldType::Planet => {
                if self.planet.should_be_replaced_by(&world) {
                    self.planet = world;
                    true
                } else {
                    false
                }
            }
            WorldType::Moon => match self.moons.iter_mut().find(|m| m.id == world.id) {
                Some(current) if current.should_be_replaced_by(&world) => {
                    *current = world;
                    true
                }
                Some(_) => false,
                None => {
                    let wanted = self.seeds.contains(&(world.id, sender))
                        && world.roots.iter().any(|r| r.identity.address() == sender);
                    if wanted {
                        self.seeds.retain(|(id, _)| *id != world.id);
                        self.moons.push(world);
                    }
                    wanted
                }
            },
        };
        if accepted {
            self.rebuild();
            WorldUpdate::Accepted
        } else {
            WorldUpdate::Ignored
        }
    }

    /// Adds or replaces a moon explicitly (local moon file: always accepted).
    pub fn add_moon(&mut self, moon: World) {
        if moon.world_type != WorldType::Moon {
            return;
        }
        match self.moons.iter_mut().find(|m| m.id == moon.id) {
            Some(m) => *m = moon,
            None => self.moons.push(moon),
        }
        self.rebuild();
    }

    /// Stops orbiting a moon (held or only wanted).
    pub fn remove_moon(&mut self, id: u64) -> bool {
        let before = self.moons.len() + self.seeds.len();
        self.moons.retain(|m| m.id != id);
        self.seeds.retain(|(w, _)| *w != id);
        let removed = self.moons.len() + self.seeds.len() != before;
        if removed {
            self.rebuild();
        }
        removed
    }

    /// The worlds to put in an OK(HELLO) for a peer that reported these worlds: our planet if
    /// it has the same ID and an older timestamp, and each listed moon we hold a newer copy of.
    /// Planet and moons are (world ID, timestamp) pairs.
    pub fn updates_for(&self, planet: Option<(u64, u64)>, moons: &[(u64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some((id, ts)) = planet {
            if id != 0 && id == self.planet.id && self.planet.timestamp > ts {
                self.planet.write(&mut out);
            }
        }
        for (id, timestamp) in moons {
            if let Some(ours) = self.moons.iter().find(|w| w.id == *id) {
                if ours.timestamp > *timestamp {
                    ours.write(&mut out);
                }
            }
        }
        out
    }
}
