//! Moon and planet JSON: the editable description of a World (PROTOCOL.md §5) that `genmoon`
//! and `genplanet` turn into the signed binary form.
//!
//! The moon JSON is `zerotier-idtool`'s: `objtype`, `worldType` (`moon`/`planet`), `id` (hex),
//! `updatesMustBeSignedBy`, `signingKey`, `signingKey_SECRET` (hex), and `roots` of
//! `{identity, stableEndpoints: ["IP/PORT", …]}`. The planet JSON is the same except that the
//! secret half of the signing key stays out of it: `signingKeyFile` names a 128-byte
//! `public ‖ private` file (`planet.c25519`, mode 0600) beside the JSON, so the JSON can be
//! shared and versioned while the key stays put.
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zt_crypto::c25519::KeyPair;
use zt_crypto::Identity;
use zt_wire::inet::InetAddress;
use zt_wire::world::{Root, World, WorldType};

use super::files::{self, Mode};
use super::{fail, identity_from_arg, Failure};

/// The public planet's world ID: a custom planet with this ID would compete with it.
const PUBLIC_PLANET_ID: u64 = 0x0000_0000_08ea_c90a;
/// Roots per world and endpoints per root allowed by the format (PROTOCOL.md §5.1).
const MAX_ROOTS: usize = 4;
const MAX_ENDPOINTS: usize = 32;
/// The planet's signing key file name, written by `initplanet` beside `planet.json`.
const PLANET_KEY_FILE: &str = "planet.c25519";
const PLANET_JSON_FILE: &str = "planet.json";

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RootJson {
    /// Public identity string.
    pub identity: String,
    /// `IP/PORT` strings.
    #[serde(rename = "stableEndpoints", default)]
    pub stable_endpoints: Vec<String>,
}

/// One JSON shape for both moon and planet files; which fields are used depends on the command.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct WorldJson {
    #[serde(default = "world_objtype")]
    pub objtype: String,
    #[serde(rename = "worldType")]
    pub world_type: String,
    /// World ID, hex.
    pub id: String,
    #[serde(rename = "updatesMustBeSignedBy", default)]
    pub updates_must_be_signed_by: String,
    #[serde(
        rename = "signingKey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub signing_key: Option<String>,
    #[serde(
        rename = "signingKey_SECRET",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub signing_key_secret: Option<String>,
    #[serde(
        rename = "signingKeyFile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub signing_key_file: Option<String>,
    #[serde(default)]
    pub roots: Vec<RootJson>,
}

fn world_objtype() -> String {
    "world".to_string()
}

/// `initmoon`: a moon whose ID is the first root's address, with a fresh signing key.
pub fn init_moon<R: RngCore + CryptoRng>(first_root: &Identity, rng: &mut R) -> WorldJson {
    let key = KeyPair::generate(rng);
    WorldJson {
        objtype: world_objtype(),
        world_type: "moon".to_string(),
        id: first_root.address().to_string(),
        updates_must_be_signed_by: hex::encode(key.public),
        signing_key: Some(hex::encode(key.public)),
        signing_key_secret: Some(hex::encode(key.private)),
        signing_key_file: None,
        roots: vec![RootJson {
            identity: first_root.to_public_string(),
            stable_endpoints: Vec::new(),
        }],
    }
}

/// `genmoon`: sign the JSON's world with its inline key at `now_ms`; write `<16hex>.moon` in
/// the current directory. Returns the file name and the timestamp.
pub fn gen_moon(json_path: &Path, now_ms: u64) -> Result<(String, u64), Failure> {
    let json = read_json(json_path)?;
    let world_type = world_type(&json.world_type)?;
    let public = hex_field::<64>(json.signing_key.as_deref(), "signingKey")?;
    let private = hex_field::<64>(json.signing_key_secret.as_deref(), "signingKey_SECRET")?;
    let key = KeyPair { public, private };
    let bytes = build(&json, world_type, &key, now_ms)?;
    let id = world_id(&json.id)?;
    let file_name = format!("{id:016x}.moon");
    files::write_atomic(Path::new(&file_name), &bytes, Mode::Public)
        .map_err(|e| Failure(format!("cannot write {file_name}: {e}")))?;
    Ok((file_name, now_ms))
}

/// `initplanet`: write `planet.json` (public) and `planet.c25519` (0600) into `dir`.
pub fn init_planet(
    dir: &Path,
    world_id_hex: Option<&str>,
    force: bool,
    root_specs: &[String],
) -> Result<Vec<PathBuf>, Failure> {
    let id = match world_id_hex {
        Some(hex) => world_id(hex)?,
        None => random_world_id(),
    };
    if id == PUBLIC_PLANET_ID {
        fail!("world ID {id:x} is the public planet's; choose another");
    }
    let mut roots = Vec::with_capacity(root_specs.len());
    for spec in root_specs {
        roots.push(root_from_spec(spec)?);
    }
    if roots.len() > MAX_ROOTS {
        fail!(
            "a world holds at most {MAX_ROOTS} roots, {} given",
            roots.len()
        );
    }
    let json_path = dir.join(PLANET_JSON_FILE);
    let key_path = dir.join(PLANET_KEY_FILE);
    if !force {
        for path in [&json_path, &key_path] {
            if path.exists() {
                fail!("{} exists; use --force to replace it", path.display());
            }
        }
    }
    fs::create_dir_all(dir)
        .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;
    let key = KeyPair::generate(&mut rand_core::OsRng);
    let json = WorldJson {
        objtype: world_objtype(),
        world_type: "planet".to_string(),
        id: format!("{id:016x}"),
        updates_must_be_signed_by: hex::encode(key.public),
        signing_key: None,
        signing_key_secret: None,
        signing_key_file: Some(PLANET_KEY_FILE.to_string()),
        roots,
    };
    files::write_atomic(&key_path, &key.to_bytes(), Mode::Private)
        .map_err(|e| Failure(format!("cannot write {}: {e}", key_path.display())))?;
    let mut text = serde_json::to_string_pretty(&json)?;
    text.push('\n');
    files::write_atomic(&json_path, text.as_bytes(), Mode::Public)
        .map_err(|e| Failure(format!("cannot write {}: {e}", json_path.display())))?;
    Ok(vec![json_path, key_path])
}

/// What `genplanet` made.
pub struct MadePlanet {
    pub path: PathBuf,
    pub world_id: u64,
    pub root_count: usize,
    pub timestamp: u64,
}

/// `genplanet`: sign the planet JSON with the key file beside it; write `planet` (or `out`).
pub fn gen_planet(
    json_path: &Path,
    out: Option<&Path>,
    now_ms: u64,
) -> Result<MadePlanet, Failure> {
    let json = read_json(json_path)?;
    let world_type = world_type(&json.world_type)?;
    if world_type != WorldType::Planet {
        fail!(
            "{} is not a planet (worldType {:?}); use genmoon",
            json_path.display(),
            json.world_type
        );
    }
    let dir = json_path.parent().unwrap_or(Path::new("."));
    let key_name = json.signing_key_file.as_deref().unwrap_or(PLANET_KEY_FILE);
    let key_path = dir.join(key_name);
    let key_bytes = fs::read(&key_path).map_err(|e| {
        Failure(format!(
            "cannot read signing key {}: {e}",
            key_path.display()
        ))
    })?;
    let key = KeyPair::from_bytes(&key_bytes).ok_or_else(|| {
        Failure(format!(
            "{} is not a 128-byte C25519 key pair",
            key_path.display()
        ))
    })?;
    let bytes = build(&json, world_type, &key, now_ms)?;
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("planet"));
    files::write_atomic(&path, &bytes, Mode::Public)
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    Ok(MadePlanet {
        path,
        world_id: world_id(&json.id)?,
        root_count: json.roots.len(),
        timestamp: now_ms,
    })
}

/// Build, sign and serialize the world described by `json`, then decode and verify the result
/// again so that a file we write is one we (and, by the format, ZeroTier) would accept.
fn build(
    json: &WorldJson,
    world_type: WorldType,
    key: &KeyPair,
    timestamp: u64,
) -> Result<Vec<u8>, Failure> {
    let id = world_id(&json.id)?;
    let updates_must_be_signed_by = if json.updates_must_be_signed_by.is_empty() {
        key.public
    } else {
        hex_field::<64>(
            Some(&json.updates_must_be_signed_by),
            "updatesMustBeSignedBy",
        )?
    };
    // A key whose halves do not belong together would sign a world nobody can verify.
    let probe = key.sign(b"zt idtool key check");
    if !zt_crypto::c25519::verify(&key.public, b"zt idtool key check", &probe) {
        fail!("the signing key's public and private halves do not match");
    }
    if json.roots.is_empty() {
        fail!("the world lists no roots");
    }
    if json.roots.len() > MAX_ROOTS {
        fail!(
            "a world holds at most {MAX_ROOTS} roots, {} given",
            json.roots.len()
        );
    }
    let mut roots = Vec::with_capacity(json.roots.len());
    for root in &json.roots {
        let identity = Identity::from_string(root.identity.trim())
            .map_err(|e| Failure(format!("root identity {:?}: {e}", root.identity)))?;
        if root.stable_endpoints.len() > MAX_ENDPOINTS {
            fail!(
                "root {} has more than {MAX_ENDPOINTS} endpoints",
                identity.address()
            );
        }
        let mut endpoints = root
            .stable_endpoints
            .iter()
            .map(|e| parse_endpoint(e))
            .collect::<Result<Vec<_>, _>>()?;
        if world_type == WorldType::Moon {
            endpoints.sort_by_key(endpoint_order);
        }
        let stable_endpoints = endpoints.into_iter().map(InetAddress::from).collect();
        roots.push(Root {
            identity: identity.to_public(),
            stable_endpoints,
        });
    }
    // Moons are sorted like zerotier-idtool's. A planet keeps the order its author wrote, as
    // `zts_util_sign_root_set` does, so the same input gives the same bytes as `ztpeer mkroots`.
    if world_type == WorldType::Moon {
        roots.sort_by_key(|r| r.identity.address());
    }
    let world = World::new_signed(
        world_type,
        id,
        timestamp,
        updates_must_be_signed_by,
        roots,
        key,
    )?;
    let bytes = world.to_bytes();
    let decoded =
        World::parse(&bytes).map_err(|e| Failure(format!("built world does not decode: {e}")))?;
    if decoded != world || !decoded.verify_signed_by(&key.public) {
        fail!("built world does not verify");
    }
    Ok(bytes)
}

/// `IDENTITY[@IP/PORT[,IP/PORT…]]`.
fn root_from_spec(spec: &str) -> Result<RootJson, Failure> {
    let (identity_arg, endpoints) = match spec.rsplit_once('@') {
        Some((id, eps)) => (
            id,
            eps.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        ),
        None => (spec, Vec::new()),
    };
    let identity = identity_from_arg(identity_arg)?;
    if !identity.locally_validate() {
        fail!("root identity {identity_arg} FAILED validation");
    }
    let mut stable_endpoints = Vec::with_capacity(endpoints.len());
    for e in endpoints {
        stable_endpoints.push(format_endpoint(parse_endpoint(e)?));
    }
    Ok(RootJson {
        identity: identity.to_public_string(),
        stable_endpoints,
    })
}

/// `IP/PORT`, ZeroTier's notation for a physical endpoint.
pub fn parse_endpoint(text: &str) -> Result<SocketAddr, Failure> {
    let (ip, port) = text
        .trim()
        .rsplit_once('/')
        .ok_or_else(|| Failure(format!("endpoint {text:?} is not IP/PORT")))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| Failure(format!("endpoint {text:?}: bad IP address")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| Failure(format!("endpoint {text:?}: bad port")))?;
    if port == 0 {
        fail!("endpoint {text:?}: port 0");
    }
    Ok(SocketAddr::new(ip, port))
}

fn format_endpoint(addr: SocketAddr) -> String {
    format!("{}/{}", addr.ip(), addr.port())
}

/// IPv4 before IPv6, then address, then port.
fn endpoint_order(addr: &SocketAddr) -> (u8, Vec<u8>, u16) {
    match addr.ip() {
        IpAddr::V4(v4) => (4, v4.octets().to_vec(), addr.port()),
        IpAddr::V6(v6) => (6, v6.octets().to_vec(), addr.port()),
    }
}

fn world_type(text: &str) -> Result<WorldType, Failure> {
    match text {
        "moon" => Ok(WorldType::Moon),
        "planet" => Ok(WorldType::Planet),
        other => fail!("invalid worldType {other:?} (moon or planet)"),
    }
}

fn world_id(hex: &str) -> Result<u64, Failure> {
    let hex = hex.trim();
    let id = u64::from_str_radix(hex.trim_start_matches("0x"), 16)
        .map_err(|_| Failure(format!("world ID {hex:?} is not hex")))?;
    if id == 0 {
        fail!("world ID is zero");
    }
    Ok(id)
}

fn random_world_id() -> u64 {
    loop {
        let id = rand_core::OsRng.next_u64();
        if id != 0 && id != PUBLIC_PLANET_ID {
            return id;
        }
    }
}

fn hex_field<const N: usize>(value: Option<&str>, name: &str) -> Result<[u8; N], Failure> {
    let value = value.ok_or_else(|| Failure(format!("{name} is missing")))?;
    let bytes = hex::decode(value.trim()).map_err(|_| Failure(format!("{name} is not hex")))?;
    bytes
        .try_into()
        .map_err(|_| Failure(format!("{name} is not {N} bytes")))
}

fn read_json(path: &Path) -> Result<WorldJson, Failure> {
    let text = fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure(format!("{}: {e}", path.display())))
}
