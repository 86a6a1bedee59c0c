//! The real protocol engine: a [`zt_node::Node`] per instance, adapted to the driver's
//! [`Engine`] trait, with the instance's planet and moons loaded from its state directory,
//! accepted world updates saved back, local addresses refreshed for PUSH_DIRECT_PATHS, and
//! node events dispatched to the daemon's subsystems ([`super::events`]).
//!
//! State files in `<home>/<instance>/` follow zerotier-one's names (the default instance also
//! reads `<home>/planet` and `<home>/moons.d/`, where zerotier-one keeps them; see
//! [`WorldFiles`]):
//! - `planet`: the planet to use (else ZeroTier's default planet compiled in);
//! - `moons.d/<16-hex id>.moon`: moons orbited (loaded at start, written when accepted).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::SeedableRng;
use zt_node::{Event, Node, NodeConfig, World};
use zt_wire::world::WorldType;

use super::engine::{
    Engine, EngineFactory, EngineStart, EngineStatus, LocalSocketId, PortRole, Transmit,
};
use super::events::{EventHandler, InstanceInfo, Subsystems};
use super::interfaces::{self, ExcludedInterfaces};
use super::port_mapping::PortMapper;
use crate::state_dir::write_atomic;

/// ZeroTier's default planet ("Earth", world 149604618): the bytes `ZT_DEFAULT_WORLD` of
/// zerotier-one's `node/Topology.cpp`, used when the instance has no `planet` file.
pub const DEFAULT_PLANET: &[u8] = include_bytes!("default_planet.bin");
/// The world ID of [`DEFAULT_PLANET`].
pub const DEFAULT_PLANET_ID: u64 = 149_604_618;

/// When set (to anything), an instance without a `planet` file gets a planet with no roots
/// instead of ZeroTier's public one: for tests that enable instances on a host with a route
/// to the Internet, so they never contact the public roots.
pub const NO_DEFAULT_PLANET_ENV: &str = "ZTD_NO_DEFAULT_PLANET";

/// A planet with no roots (world id 0): the node contacts no one until given a planet.
fn empty_planet() -> World {
    World {
        world_type: WorldType::Planet,
        id: 0,
        timestamp: 0,
        updates_must_be_signed_by: [0u8; 64],
        signature: [0u8; zt_crypto::identity::SIGNATURE_LEN],
        roots: Vec::new(),
    }
}

/// File names inside the instance directory.
pub const PLANET_FILE: &str = "planet";
pub const MOONS_DIR: &str = "moons.d";

/// Why the engine of an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{path}: not a valid world: {reason}")]
    BadPlanet { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("built-in default planet does not parse: {0}")]
    BadDefaultPlanet(String),
    #[error("cannot create the node: {0}")]
    Node(#[from] zt_node::NodeError),
}

/// Where an instance's planet and moons are. Each instance has its own `planet` and
/// `moons.d/` in its directory; the default instance also uses those of the home directory,
/// where zerotier-one keeps them, so a planet installed as zerotier-one's documentation says
/// (`<home>/planet`) is the one used. The instance's own file wins when both exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldFiles {
    /// `<home>/<instance>`.
    pub instance_dir: PathBuf,
    /// `<home>`, for the default instance only.
    pub home: Option<PathBuf>,
}

impl WorldFiles {
    /// The directories searched, the instance's first.
    fn dirs(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.instance_dir.as_path()).chain(self.home.as_deref())
    }

    /// The planet file in use: the first of `<instance>/planet`, `<home>/planet` that exists
    /// (`None`: no file, the built-in planet is used).
    pub fn planet_file(&self) -> Option<PathBuf> {
        self.dirs()
            .map(|dir| dir.join(PLANET_FILE))
            .find(|path| path.exists())
    }

    /// Where the places a planet is looked for are, for messages (`a or b`).
    pub fn planet_places(&self) -> String {
        self.dirs()
            .map(|dir| dir.join(PLANET_FILE).display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// The planet: the file of [`WorldFiles::planet_file`], else the default planet. A
    /// `planet` file that exists but does not parse is an error (silently falling back to
    /// ZeroTier's public roots would surprise anyone running a private planet).
    pub fn load_planet(&self) -> Result<World, StartError> {
        let Some(path) = self.planet_file() else {
            if std::env::var_os(NO_DEFAULT_PLANET_ENV).is_some() {
                return Ok(empty_planet());
            }
            return World::parse(DEFAULT_PLANET)
                .map_err(|e| StartError::BadDefaultPlanet(e.to_string()));
        };
        match std::fs::read(&path) {
            Ok(bytes) => World::parse(&bytes).map_err(|e| StartError::BadPlanet {
                path,
                reason: e.to_string(),
            }),
            Err(source) => Err(StartError::Io { path, source }),
        }
    }

    /// The moons in `moons.d/*.moon` of every directory (the instance's copy of a moon
    /// wins). Unreadable or invalid files are skipped with a warning (one bad moon must not
    /// keep the node offline).
    pub fn load_moons(&self) -> Vec<World> {
        let mut moons: Vec<World> = Vec::new();
        for dir in self.dirs() {
            for moon in load_moons_of(dir) {
                if !moons.iter().any(|m| m.id == moon.id) {
                    moons.push(moon);
                }
            }
        }
        moons.sort_by_key(|m| m.id);
        moons
    }

    /// The file an accepted world is saved to: a planet update replaces the planet file in
    /// use, a moon goes to the instance's `moons.d/`.
    pub fn world_path(&self, world: &World) -> PathBuf {
        match world.world_type {
            WorldType::Planet => self
                .planet_file()
                .unwrap_or_else(|| self.instance_dir.join(PLANET_FILE)),
            WorldType::Moon => self.moon_path(&self.instance_dir, world.id),
        }
    }

    fn moon_path(&self, dir: &Path, id: u64) -> PathBuf {
        dir.join(MOONS_DIR).join(format!("{id:016x}.moon"))
    }

    /// Delete a moon's files (deorbit), wherever they are. A missing file is not an error.
    pub fn delete_moon(&self, id: u64) -> std::io::Result<()> {
        for dir in self.dirs() {
            match std::fs::remove_file(self.moon_path(dir, id)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The moons of one directory's `moons.d/`.
fn load_moons_of(dir: &Path) -> Vec<World> {
    let dir = dir.join(MOONS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut moons = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("moon") {
            continue;
        }
        match std::fs::read(&path).map(|b| World::parse(&b)) {
            Ok(Ok(world)) if world.world_type == WorldType::Moon => moons.push(world),
            Ok(Ok(_)) => tracing::warn!(path = %path.display(), "not a moon; ignored"),
            Ok(Err(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "invalid moon; ignored")
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot read moon"),
        }
    }
    moons
}

/// Counters of the adapter itself (the node's own are in `Node::stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterStats {
    /// World updates that could not be written to disk.
    pub world_save_errors: u64,
    /// Interface scans that failed (`getifaddrs`).
    pub interface_scan_errors: u64,
}

/// One instance's node and everything attached to it.
pub struct NodeEngine {
    node: Node,
    instance: InstanceInfo,
    handlers: Vec<Box<dyn EventHandler>>,
    /// Where the planet and moons are read from and accepted updates written to.
    worlds: WorldFiles,
    /// Ports to pair with interface addresses (every bound port of the instance).
    ports: Vec<u16>,
    /// The instance's `interfaces` property.
    interfaces: Vec<String>,
    /// local.conf's `interfacePrefixBlacklist`.
    excluded_interfaces: ExcludedInterfaces,
    next_interface_scan: u64,
    stats: AdapterStats,
    /// Since when no root has been heard from (`None` while online).
    offline_since: Option<u64>,
    last_offline_warning: Option<u64>,
    /// The gateway's mapping of the tertiary port (`port-mapping=yes`), and what of it the node
    /// was last told, so a new or lost mapping reaches peers within [`MAPPING_CHECK_MS`]
    /// rather than at the next interface scan.
    port_mapper: Option<PortMapper>,
    advertised_mapping: Option<SocketAddr>,
    next_mapping_check: u64,
}

/// How often the engine looks whether the port mapper's address changed.
const MAPPING_CHECK_MS: u64 = 1_000;

/// Offline for this long: a WARN says so (roots unreachable is rarely a blip).
const OFFLINE_WARNING_AFTER_MS: u64 = 5 * 60 * 1000;
/// And says it again at most this often.
const OFFLINE_WARNING_EVERY_MS: u64 = 30 * 60 * 1000;

impl NodeEngine {
    /// Start a node for this instance (planet and moons from its directory).
    pub fn start(
        start: EngineStart,
        handlers: Vec<Box<dyn EventHandler>>,
        excluded_interfaces: ExcludedInterfaces,
    ) -> Result<NodeEngine, StartError> {
        let worlds = WorldFiles {
            instance_dir: start.instance_dir.clone(),
            home: start.home_worlds.clone(),
        };
        let planet = worlds.load_planet()?;
        let moons = worlds.load_moons();
        let address = start.identity.address();
        let config = NodeConfig {
            moons,
            // The driver runs them on the instance's identity worker thread.
            defer_identity_checks: true,
            ..NodeConfig::new(planet)
        };
        let node = Node::new(
            start.identity,
            config,
            Box::new(StdRng::from_entropy()),
            start.now,
        )?;
        let mut ports: Vec<u16> = start.sockets.iter().map(|s| s.bound.port()).collect();
        ports.sort_by_key(|p| {
            // The primary port first: peers try pushed addresses in order.
            let primary = start
                .sockets
                .iter()
                .any(|s| s.bound.port() == *p && s.role == PortRole::Primary);
            (!primary, *p)
        });
        ports.dedup();
        // The daemon binds a tertiary port only with port mapping on, as zerotier-one does.
        let tertiary_port = start
            .sockets
            .iter()
            .find(|s| s.role == PortRole::Tertiary)
            .map(|s| s.bound.port());
        // Without a mapper the instance works as before: mapping is an extra path, never a
        // reason not to start.
        let port_mapper = match tertiary_port.filter(|_| start.port_mapping) {
            Some(port) => PortMapper::start(start.instance_name.clone(), port)
                .map_err(|error| {
                    tracing::warn!(instance = %start.instance_name, %error, "cannot start port mapping")
                })
                .ok(),
            None => None,
        };
        let mut engine = NodeEngine {
            node,
            instance: InstanceInfo {
                name: start.instance_name,
                dir: start.instance_dir,
                address,
            },
            handlers,
            worlds,
            ports,
            interfaces: start.interfaces,
            excluded_interfaces,
            next_interface_scan: start.now,
            stats: AdapterStats::default(),
            offline_since: Some(start.now),
            last_offline_warning: None,
            port_mapper,
            advertised_mapping: None,
            next_mapping_check: start.now,
        };
        let planet = engine.node.planet();
        let planet_file = engine.worlds.planet_file();
        tracing::info!(
            instance = %engine.instance.name,
            address = %address,
            planet = format!("{:016x}", planet.id),
            planet_file = %planet_file.as_deref().map_or("built-in".into(), |p| p.display().to_string()),
            roots = planet.roots.len(),
            moons = engine.node.moons().len(),
            "instance enabled"
        );
        if planet.id == DEFAULT_PLANET_ID {
            let endpoints: Vec<String> = planet
                .roots
                .iter()
                .flat_map(|r| r.stable_endpoints.iter().map(ToString::to_string))
                .collect();
            tracing::info!(
                instance = %engine.instance.name,
                roots = ?endpoints,
                "using ZeroTier's public planet (no planet file at {})",
                engine.worlds.planet_places()
            );
        }
        engine.refresh_local_addresses(start.now);
        Ok(engine)
    }

    pub fn node(&self) -> &Node {
        &self.node
    }
    pub fn instance(&self) -> &InstanceInfo {
        &self.instance
    }
    pub fn adapter_stats(&self) -> &AdapterStats {
        &self.stats
    }

    fn refresh_local_addresses(&mut self, now: u64) {
        self.next_interface_scan = now + interfaces::REFRESH_INTERVAL_MS;
        self.advertised_mapping = self.port_mapper.as_ref().and_then(PortMapper::mapped);
        match interfaces::host_addresses() {
            Ok(host) => {
                let mut push = interfaces::push_addresses(
                    &host,
                    &self.interfaces,
                    &self.excluded_interfaces.get(),
                    &self.ports,
                );
                // The gateway's forwarded port first: behind a NAT it is the one address
                // peers can certainly reach.
                if let Some(mapped) = self.advertised_mapping {
                    push.retain(|a| *a != mapped);
                    push.insert(0, mapped);
                }
                self.node.set_local_addresses(push);
            }
            Err(error) => {
                self.stats.interface_scan_errors += 1;
                tracing::warn!(instance = %self.instance.name, %error, "cannot list interface addresses");
            }
        }
    }

    /// The WARN for roots unreachable too long, at most every `OFFLINE_WARNING_EVERY_MS`.
    fn warn_if_long_offline(&mut self, now: u64) {
        let Some(since) = self.offline_since else {
            return;
        };
        let offline_for = now.saturating_sub(since);
        let warned_lately = self
            .last_offline_warning
            .is_some_and(|t| now.saturating_sub(t) < OFFLINE_WARNING_EVERY_MS);
        if offline_for >= OFFLINE_WARNING_AFTER_MS && !warned_lately {
            self.last_offline_warning = Some(now);
            tracing::warn!(
                instance = %self.instance.name,
                minutes = offline_for / 60_000,
                planet = format!("{:016x}", self.node.planet().id),
                "no root reachable: check that the planet's roots are up and that UDP reaches them"
            );
        }
    }

    /// The adapter's own reaction to an event, before subsystems see it.
    fn observe(&mut self, now: u64, event: &Event) {
        match event {
            Event::WorldUpdated { world } => {
                let path = self.worlds.world_path(world);
                let result = match path.parent() {
                    Some(parent) => std::fs::create_dir_all(parent)
                        .map_err(|e| e.to_string())
                        .and_then(|_| {
                            write_atomic(&path, &world.to_bytes(), 0o644).map_err(|e| e.to_string())
                        }),
                    None => Err("no parent directory".into()),
                };
                match result {
                    Ok(()) => {
                        tracing::info!(instance = %self.instance.name, id = format!("{:016x}", world.id), timestamp = world.timestamp, "world saved")
                    }
                    Err(error) => {
                        self.stats.world_save_errors += 1;
                        tracing::error!(instance = %self.instance.name, path = %path.display(), %error, "cannot save world");
                    }
                }
            }
            Event::Online => {
                self.offline_since = None;
                self.last_offline_warning = None;
                tracing::info!(instance = %self.instance.name, "online: a root answers");
            }
            Event::Offline => {
                self.offline_since = Some(now);
                tracing::info!(instance = %self.instance.name, "offline: no root answers");
            }
            Event::PathUp { peer, remote, .. } if self.node.alive_paths(*peer) == 1 => {
                // A root sees every node of its planet come and go: there, DEBUG.
                if self.node.is_root() {
                    tracing::debug!(instance = %self.instance.name, %peer, %remote, "peer direct");
                } else {
                    tracing::info!(instance = %self.instance.name, %peer, %remote, "peer direct");
                }
            }
            Event::PathDown { peer, remote, .. } if self.node.alive_paths(*peer) == 0 => {
                if self.node.is_root() {
                    tracing::debug!(instance = %self.instance.name, %peer, last_path = %remote, "peer relayed");
                } else {
                    tracing::info!(instance = %self.instance.name, %peer, last_path = %remote, "peer relayed: no direct path left");
                }
            }
            Event::IdentityCollision { reporter } => {
                tracing::error!(instance = %self.instance.name, %reporter, "another node uses our address")
            }
            _ => {}
        }
    }
}

impl Engine for NodeEngine {
    fn receive(&mut self, now: u64, local: LocalSocketId, remote: SocketAddr, datagram: &[u8]) {
        self.node
            .handle_datagram(now, zt_node::LocalSocketId(local.0), remote, datagram);
    }

    fn decapsulate(
        &mut self,
        now: u64,
        local: LocalSocketId,
        remote: SocketAddr,
        packet: &mut Vec<u8>,
    ) -> zt_node::Received {
        self.node
            .decapsulate(now, zt_node::LocalSocketId(local.0), remote, packet)
    }

    fn encapsulate_frame(
        &mut self,
        now: u64,
        nwid: zt_wire::network_id::NetworkId,
        buffer: &mut [u8],
        frame: std::ops::Range<usize>,
        out: &mut [u8],
    ) -> zt_node::Encapsulated {
        self.node.encapsulate_frame(now, nwid, buffer, frame, out)
    }

    fn tick(&mut self, now: u64) {
        if now >= self.next_interface_scan {
            self.refresh_local_addresses(now);
            self.warn_if_long_offline(now);
        }
        if let Some(mapper) = &self.port_mapper {
            if now >= self.next_mapping_check {
                self.next_mapping_check = now + MAPPING_CHECK_MS;
                if mapper.mapped() != self.advertised_mapping {
                    self.refresh_local_addresses(now);
                }
            }
        }
        self.node.handle_timeout(now);
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        let t = self.node.poll_transmit()?;
        buf.extend_from_slice(&t.data);
        Some(Transmit {
            local: t.local_socket.map(|s| LocalSocketId(s.0)),
            remote: t.remote,
            len: t.data.len(),
            ttl: t.ttl,
        })
    }

    fn next_deadline(&self) -> Option<u64> {
        let mut next = self.next_interface_scan;
        if self.port_mapper.is_some() {
            next = next.min(self.next_mapping_check);
        }
        Some(match self.node.poll_timeout() {
            Some(t) => t.min(next),
            None => next,
        })
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            online: self.node.is_online(),
            mapped: self.port_mapper.as_ref().and_then(PortMapper::mapped),
        }
    }

    fn node(&self) -> Option<&Node> {
        Some(&self.node)
    }

    fn node_mut(&mut self) -> Option<&mut Node> {
        Some(&mut self.node)
    }

    fn dispatch_events(&mut self, now: u64) {
        // Handlers may cause new events (e.g. a join); the loop drains those too.
        while let Some(event) = self.node.poll_event() {
            self.observe(now, &event);
            for handler in self.handlers.iter_mut() {
                handler.on_event(&mut self.node, now, &event);
            }
        }
        // A left network's port handler is done; it must not cost every later event a visit.
        self.handlers.retain(|handler| !handler.finished());
    }

    fn set_interfaces(&mut self, interfaces: Vec<String>, now: u64) {
        self.interfaces = interfaces;
        self.refresh_local_addresses(now);
    }

    fn add_event_handler(
        &mut self,
        handler: Box<dyn EventHandler>,
    ) -> Result<(), Box<dyn EventHandler>> {
        self.handlers.push(handler);
        Ok(())
    }
}

/// The factory the daemon uses: a [`NodeEngine`] per started instance, with a handler from
/// every registered subsystem.
#[derive(Clone, Default)]
pub struct NodeEngineFactory {
    subsystems: Subsystems,
    excluded_interfaces: ExcludedInterfaces,
}

impl NodeEngineFactory {
    pub fn new() -> NodeEngineFactory {
        NodeEngineFactory::default()
    }
    /// The registry subsystems add themselves to (see [`super::events`]).
    pub fn subsystems(&self) -> Subsystems {
        self.subsystems.clone()
    }

    /// The interface prefixes every engine leaves out of its local addresses.
    pub fn excluded_interfaces(&self) -> ExcludedInterfaces {
        self.excluded_interfaces.clone()
    }
}

impl EngineFactory for NodeEngineFactory {
    fn start(&self, start: EngineStart) -> Result<Box<dyn Engine>, String> {
        let info = InstanceInfo {
            name: start.instance_name.clone(),
            dir: start.instance_dir.clone(),
            address: start.identity.address(),
        };
        let handlers = self.subsystems.attach_all(&info);
        NodeEngine::start(start, handlers, self.excluded_interfaces.clone())
            .map(|e| Box::new(e) as Box<dyn Engine>)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_planet_is_zerotiers_earth() {
        assert_eq!(DEFAULT_PLANET.len(), 570);
        let world = World::parse(DEFAULT_PLANET).unwrap();
        assert_eq!(world.world_type, WorldType::Planet);
        assert_eq!(world.id, DEFAULT_PLANET_ID);
        assert_eq!(world.roots.len(), 4);
        assert_eq!(world.to_bytes(), DEFAULT_PLANET);
    }

    fn worlds_of(dir: &Path, home: Option<&Path>) -> WorldFiles {
        WorldFiles {
            instance_dir: dir.to_path_buf(),
            home: home.map(Path::to_path_buf),
        }
    }

    #[test]
    fn planet_file_wins_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let worlds = worlds_of(dir.path(), None);
        // No file: the default planet.
        assert_eq!(worlds.load_planet().unwrap().id, 149_604_618);
        // A bad file: an error naming the file, never a silent fallback.
        std::fs::write(dir.path().join(PLANET_FILE), b"junk").unwrap();
        match worlds.load_planet() {
            Err(StartError::BadPlanet { path, .. }) => assert!(path.ends_with(PLANET_FILE)),
            other => panic!("expected BadPlanet, got {other:?}"),
        }
    }

    #[test]
    fn the_default_instance_uses_the_homes_planet_unless_it_has_its_own() {
        let home = tempfile::tempdir().unwrap();
        let instance = home.path().join("zt1");
        std::fs::create_dir_all(&instance).unwrap();
        let mut private = World::parse(DEFAULT_PLANET).unwrap();
        private.id = 0x1234;
        std::fs::write(home.path().join(PLANET_FILE), private.to_bytes()).unwrap();
        let default = worlds_of(&instance, Some(home.path()));
        assert_eq!(default.load_planet().unwrap().id, 0x1234);
        assert_eq!(default.world_path(&private), home.path().join(PLANET_FILE));
        assert_eq!(
            default.planet_places(),
            format!(
                "{} or {}",
                instance.join(PLANET_FILE).display(),
                home.path().join(PLANET_FILE).display()
            )
        );
        // Another instance does not look at the home.
        let other = worlds_of(&instance, None);
        assert_eq!(other.load_planet().unwrap().id, DEFAULT_PLANET_ID);
        // The instance's own planet wins.
        private.id = 0x5678;
        std::fs::write(instance.join(PLANET_FILE), private.to_bytes()).unwrap();
        assert_eq!(default.load_planet().unwrap().id, 0x5678);
        assert_eq!(default.world_path(&private), instance.join(PLANET_FILE));
    }

    #[test]
    fn moons_round_trip_through_their_files() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("zt1");
        let worlds = worlds_of(&dir, Some(home.path()));
        let mut moon = World::parse(DEFAULT_PLANET).unwrap();
        moon.world_type = WorldType::Moon;
        moon.id = 0x0000_00ab_cdef_0123;
        let path = worlds.world_path(&moon);
        assert_eq!(path, dir.join("moons.d/000000abcdef0123.moon"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, moon.to_bytes()).unwrap();
        std::fs::write(dir.join(MOONS_DIR).join("bad.moon"), b"x").unwrap();
        // A moon in the home's moons.d, as zerotier-one users place them.
        let mut home_moon = moon.clone();
        home_moon.id = 0x0000_00ab_cdef_0456;
        std::fs::create_dir_all(home.path().join(MOONS_DIR)).unwrap();
        let home_path = home.path().join("moons.d/000000abcdef0456.moon");
        std::fs::write(&home_path, home_moon.to_bytes()).unwrap();
        let ids: Vec<u64> = worlds.load_moons().iter().map(|m| m.id).collect();
        assert_eq!(ids, [moon.id, home_moon.id]);
        for id in [moon.id, home_moon.id] {
            worlds.delete_moon(id).unwrap();
            worlds.delete_moon(id).unwrap();
        }
        assert!(worlds.load_moons().is_empty());
    }
}
