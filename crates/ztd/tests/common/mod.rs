//! What the namespace tests of ztd share: identities and planets made with the real node
//! (`ztpeer`), ztd started inside a namespace, and its API called with curl from inside that
//! namespace (ztd's API listens on the namespace's own loopback).
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zt_crypto::Identity;
use zt_testnet::{json_line, Lab, NsProcess};

/// ztd's API address inside each test namespace.
pub const API: &str = "127.0.0.1:18093";
/// The ad-hoc network every node can join without a controller.
pub const ADHOC: &str = "ff0000ffff000000";

pub fn identity() -> Identity {
    Identity::generate(&mut rand::rngs::OsRng)
}

pub fn write_identity(home: &Path, id: &Identity) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join("identity.secret"), id.to_secret_string().unwrap()).unwrap();
    std::fs::write(home.join("identity.public"), id.to_public_string()).unwrap();
}

/// A planet signed by ztpeer listing `roots` (identity, endpoint).
pub fn make_planet(out: &Path, roots: &[(&Identity, String)]) {
    let out_s = out.display().to_string();
    let mut args: Vec<String> = vec!["mkroots".into()];
    for (id, endpoint) in roots {
        args.extend(["--identity".into(), id.to_public_string()]);
        args.extend(["--endpoint".into(), endpoint.clone()]);
    }
    args.extend(["--out".into(), out_s]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output =
        zt_testnet::run_with_deadline(zt_testnet::ztpeer(&refs).unwrap(), Duration::from_secs(30));
    assert!(output.status.success(), "mkroots failed: {output:?}");
}

/// A world (planet or moon) whose only root is `root` at `endpoint`, signed with a
/// throw-away key, made without ztpeer.
pub fn world_with_root(
    world_type: zt_wire::world::WorldType,
    id: u64,
    root: &Identity,
    endpoint: std::net::SocketAddr,
) -> zt_wire::world::World {
    let signer = zt_crypto::c25519::KeyPair::generate(&mut rand::rngs::OsRng);
    zt_wire::world::World::new_signed(
        world_type,
        id,
        1_700_000_000_000,
        signer.public,
        vec![zt_wire::world::Root {
            identity: root.clone(),
            stable_endpoints: vec![endpoint.into()],
        }],
        &signer,
    )
    .unwrap()
}

/// The 6plane address of `node` on the ad-hoc network.
pub fn sixplane(node: &Identity) -> String {
    let output = zt_testnet::run_with_deadline(
        zt_testnet::ztpeer(&["addr", ADHOC, &node.address().to_string()]).unwrap(),
        Duration::from_secs(30),
    );
    let v: Value = serde_json::from_slice(&output.stdout).expect("addr JSON");
    v["6plane"]
        .as_str()
        .expect("6plane")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// The ztd API inside namespace `ns`, through curl run in that namespace.
pub struct Api<'a> {
    pub lab: &'a Lab,
    pub ns: usize,
    pub token: String,
    /// `host:port` of the API inside the namespace ([`API`] unless started otherwise).
    pub address: String,
}

impl Api<'_> {
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Option<Value> {
        let url = format!("http://{}{path}", self.address);
        let auth = format!("Authorization: Bearer {}", self.token);
        let mut args = vec![
            "-s",
            "-m",
            "8",
            "-X",
            method,
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
        ];
        if let Some(b) = body {
            args.extend(["-d", b]);
        }
        args.push(&url);
        let out = self.lab.run(
            self.ns,
            Path::new("/usr/bin/curl"),
            &args,
            Duration::from_secs(12),
        );
        serde_json::from_slice(&out.stdout).ok()
    }
}

/// Poll `f` until it returns `Some`, or the deadline passes.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

/// Start ztd in namespace `ns` with `home`, wait for its API, return the API client.
pub fn start_ztd<'a>(lab: &'a Lab, ns: usize, home: &Path) -> (zt_testnet::NsProcess, Api<'a>) {
    start_ztd_with(lab, ns, home, &[])
}

/// [`start_ztd`] with more command-line arguments.
pub fn start_ztd_with<'a>(
    lab: &'a Lab,
    ns: usize,
    home: &Path,
    more: &[&str],
) -> (zt_testnet::NsProcess, Api<'a>) {
    start_ztd_with_env(lab, ns, home, more, &[])
}

/// [`start_ztd_with`] with more environment variables.
pub fn start_ztd_with_env<'a>(
    lab: &'a Lab,
    ns: usize,
    home: &Path,
    more: &[&str],
    env: &[(&str, String)],
) -> (zt_testnet::NsProcess, Api<'a>) {
    let ztd = Path::new(env!("CARGO_BIN_EXE_ztd"));
    let home_s = home.display().to_string();
    let mut args = vec!["--home", &home_s, "--api-listen", API];
    args.extend_from_slice(more);
    let mut command = lab.command(ns, ztd, &args);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    // Safety net: an instance that somehow has no planet file never uses the public planet.
    command.env("ZTD_NO_DEFAULT_PLANET", "1");
    let proc = zt_testnet::NsProcess::spawn(command);
    let token = poll(Duration::from_secs(15), || {
        std::fs::read_to_string(home.join("authtoken.secret")).ok()
    })
    .expect("ztd wrote its token");
    let api = Api {
        lab,
        ns,
        token: token.trim().to_string(),
        address: API.to_string(),
    };
    poll(Duration::from_secs(15), || api.call("GET", "/health", None)).expect("ztd API up");
    (proc, api)
}

/// Enable the default instance `zt1` with this identity (its planet must already be in
/// `<home>/zt1/planet`).
pub fn enable_with_identity(api: &Api, id: &Identity) {
    let body = serde_json::json!({
        "identity": id.to_secret_string().unwrap(),
        "disabled": "no",
    })
    .to_string();
    let reply = api.call("PATCH", "/rest/zerotier/zt1", Some(&body));
    assert!(reply.is_some(), "enable zt1 failed");
}

/// Add a `/zerotier/interface` for `network` on `zt1` (joins it).
pub fn add_interface(api: &Api, network: &str) {
    api.call(
        "PUT",
        "/rest/zerotier/interface",
        Some(&json!({ "network": network }).to_string()),
    )
    .expect("interface add");
}

/// `ztpeer run` in namespace `ns` with its state in `home`, the roots of `planet`, joining
/// `nwid`, plus `more` arguments; returned once it started, with its address (10 hex digits).
pub fn spawn_member(
    lab: &Lab,
    ns: usize,
    ztpeer: &Path,
    home: &Path,
    planet: &Path,
    nwid: &str,
    more: &[&str],
) -> (NsProcess, String) {
    std::fs::create_dir_all(home).unwrap();
    let (home_s, planet_s) = (home.display().to_string(), planet.display().to_string());
    let mut args = vec![
        "run", "--home", &home_s, "--roots", &planet_s, "--join", nwid,
    ];
    args.extend_from_slice(more);
    let mut peer = lab.spawn(ns, ztpeer, &args);
    let started = peer
        .wait_line(Duration::from_secs(60), |l| {
            json_line(l).is_some_and(|v| v["event"] == json!("node_started"))
        })
        .unwrap_or_else(|| panic!("ztpeer did not start: {}", peer.report()));
    let address = json_line(&started).unwrap()["node_id"]
        .as_str()
        .map(|id| format!("{:0>10}", id.to_ascii_lowercase()))
        .unwrap_or_default();
    (peer, address)
}

/// The next status line of ztpeer about network `nwid` that satisfies `pred`.
pub fn wait_network(
    peer: &mut NsProcess,
    limit: Duration,
    nwid: &str,
    mut pred: impl FnMut(&Value) -> bool,
) -> Option<Value> {
    let line = peer.wait_line(limit, |line| {
        json_line(line).is_some_and(|v| {
            let ours = v["net_id"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(nwid));
            ours && (v["event"] == json!("network")
                || v["event"] == json!("NETWORK_UPDATE")
                || v["event"] == json!("NETWORK_OK")
                || v["event"] == json!("NETWORK_READY_IP4")
                || v["event"] == json!("NETWORK_READY_IP6"))
                && pred(&v)
        })
    })?;
    json_line(&line)
}

/// python3's path (the tests' traffic generators and receivers), or why not (for
/// `skip_unless!`).
pub fn python3() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("python3"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| "python3 not found".to_string())
}

/// Ok if `ping` (iputils) is there, or why not (for `skip_unless!`).
pub fn ping_available() -> Result<(), &'static str> {
    Path::new("/usr/bin/ping")
        .is_file()
        .then_some(())
        .ok_or("ping not found (apt-get install iputils-ping)")
}

/// One ping from namespace `ns` to `target`, waiting `wait_seconds` for the reply.
pub fn ping_once(lab: &Lab, ns: usize, target: &str, wait_seconds: u32) -> bool {
    let wait = wait_seconds.to_string();
    lab.run(
        ns,
        Path::new("/usr/bin/ping"),
        &["-c", "1", "-W", &wait, target],
        Duration::from_secs(u64::from(wait_seconds) + 3),
    )
    .status
    .success()
}

/// `ip -j ARGS` run against namespace `ns`, parsed (Null when it fails).
pub fn ip_json_in(lab: &Lab, ns: usize, args: &[&str]) -> Value {
    std::process::Command::new("ip")
        .args(["-n", lab.ns(ns), "-j"])
        .args(args)
        .output()
        .ok()
        .and_then(|out| serde_json::from_slice(&out.stdout).ok())
        .unwrap_or(Value::Null)
}

/// A REST string field (`""` when absent).
pub fn rest_field(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap_or_default().to_string()
}

/// Authorize (or deauthorize) `address` on the controller behind `controller`, once its
/// request shows up in the member list.
pub fn set_authorized(controller: &Api, address: &str, yes: bool) {
    let member = poll(Duration::from_secs(30), || {
        controller
            .call("GET", "/rest/zerotier/controller/member", None)?
            .as_array()?
            .iter()
            .find(|m| m["zt-address"] == json!(address))
            .cloned()
    })
    .unwrap_or_else(|| panic!("member {address} never asked to join"));
    let body = json!({
        ".id": rest_field(&member, ".id"),
        "authorized": if yes { "yes" } else { "no" },
    });
    controller
        .call(
            "POST",
            "/rest/zerotier/controller/member/set",
            Some(&body.to_string()),
        )
        .expect("member set");
}

/// `multicastSubscriptions` of ztd's `/network/<nwid>` as `(mac, adi)` pairs.
pub fn multicast_subscriptions(api: &Api, nwid: &str) -> Vec<(String, u64)> {
    let network = api.call("GET", &format!("/network/{nwid}"), None);
    network
        .as_ref()
        .and_then(|n| n["multicastSubscriptions"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|g| Some((g["mac"].as_str()?.to_string(), g["adi"].as_u64()?)))
        .collect()
}
