//! Interoperability with the real ZeroTier node (`ztpeer`, ZeroTier 1.8.4's core via libzt):
//! identities, planets and a captured HELLO must mean the same thing to both implementations.
//!
//! Tests 1–2 run `ztpeer` subcommands that do no networking. Tests 3–4 run real nodes, always
//! inside namespaces built by the harness (no default route, our own planet via `--roots`).
//! Each test prints `SKIPPED …` and passes when it cannot run here (no ztpeer, not root).
mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{event_of, idtool, json_line, Lab};
use serde_json::Value;
use zt_crypto::armor::{self, CipherSuite, PeerKey};
use zt_crypto::Identity;
use zt_testnet::skip_unless;
use zt_wire::header::{PacketHeader, Verb};
use zt_wire::verbs::hello::{self, Hello};
use zt_wire::world::{World, WorldType};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Run a ztpeer subcommand that does no networking; its stdout as JSON.
fn ztpeer_json(args: &[&str]) -> Result<Value, String> {
    let cmd = common::ztpeer(args)?;
    let out = common::run_with_deadline(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "ztpeer {args:?}: {}",
        text(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout).expect("ztpeer prints JSON"))
}

/// `zt idtool generate` into `dir/name.secret` and `dir/name.public`; the parsed identity.
fn generate(dir: &Path, name: &str) -> Identity {
    let secret = format!("{name}.secret");
    let public = format!("{name}.public");
    let out = idtool(dir, &["generate", &secret, &public]);
    assert!(out.status.success(), "generate: {}", text(&out.stderr));
    Identity::from_string(fs::read_to_string(dir.join(&secret)).unwrap().trim())
        .expect("our identity parses")
}

#[test]
fn our_identities_pass_ztpeer_idcheck_and_theirs_pass_our_validate() {
    skip_unless!(common::ztpeer_path());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Ours → theirs.
    for i in 0..3 {
        let id = generate(d, &format!("ours{i}"));
        let secret = id.to_secret_string().unwrap();
        let verdict = ztpeer_json(&["idcheck", &secret]).unwrap();
        assert_eq!(
            verdict["valid"],
            Value::Bool(true),
            "ztpeer idcheck rejects our {secret}"
        );

        // A flipped public-key digit must be refused by both.
        let mut broken = secret.clone().into_bytes();
        let at = 10 + 3 + 5; // inside the public key
        broken[at] = if broken[at] == b'0' { b'1' } else { b'0' };
        let broken = String::from_utf8(broken).unwrap();
        let out = common::run_with_deadline(
            common::ztpeer(&["idcheck", &broken]).unwrap(),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(1), "ztpeer must refuse {broken}");
        let out = idtool(d, &["validate", &broken]);
        assert_eq!(out.status.code(), Some(1), "we must refuse {broken}");
    }

    // Theirs → ours.
    let theirs = ztpeer_json(&["idgen", "--count", "3"]).unwrap();
    for id in theirs.as_array().expect("a list for --count 3") {
        let (public, secret) = (
            id["public"].as_str().unwrap(),
            id["secret"].as_str().unwrap(),
        );
        for form in [public, secret] {
            let out = idtool(d, &["validate", form]);
            assert!(
                out.status.success(),
                "our validate rejects ztpeer's {form}: {}",
                text(&out.stderr)
            );
        }
        let out = idtool(d, &["getpublic", secret]);
        assert_eq!(text(&out.stdout), public);
        assert_eq!(&public[..10], id["address"].as_str().unwrap());
    }
}

#[test]
fn a_planet_from_ztpeer_mkroots_decodes_verifies_and_matches_genplanet() {
    skip_unless!(common::ztpeer_path());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = generate(d, "a");
    let b = generate(d, "b");
    let out_path = d.join("roots.bin");
    let made = ztpeer_json(&[
        "mkroots",
        "--identity",
        &a.to_public_string(),
        "--endpoint",
        "10.77.0.1/9993",
        "--endpoint",
        "fd00:77::1/9993",
        "--identity",
        &b.to_public_string(),
        "--endpoint",
        "10.77.0.2/19993",
        "--world-id",
        "1234567",
        "--timestamp",
        "1760000000000",
        "--out",
        out_path.to_str().unwrap(),
    ])
    .unwrap();

    let bytes = fs::read(&out_path).unwrap();
    assert_eq!(hex::encode(&bytes), made["hex"].as_str().unwrap());
    let world = World::parse(&bytes).expect("our codec decodes ztpeer's planet");
    assert_eq!(world.world_type, WorldType::Planet);
    assert_eq!(world.id, 1234567);
    assert_eq!(world.timestamp, 1760000000000);
    let signer: [u8; 64] = hex::decode(made["signing_public_key_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(world.updates_must_be_signed_by, signer);
    assert!(
        world.verify_signed_by(&signer),
        "signature made by libzt verifies in our codec"
    );
    assert_eq!(world.roots.len(), 2);
    assert_eq!(world.roots[0].identity, a);
    assert_eq!(world.roots[1].identity, b);
    let endpoints = |i: usize| -> Vec<String> {
        world.roots[i]
            .stable_endpoints
            .iter()
            .map(|e| e.socket_addr().unwrap().to_string())
            .collect()
    };
    assert_eq!(endpoints(0), ["10.77.0.1:9993", "[fd00:77::1]:9993"]);
    assert_eq!(endpoints(1), ["10.77.0.2:19993"]);
    // Our re-encoding is byte-identical.
    assert_eq!(world.to_bytes(), bytes);

    // A tampered byte (a root's endpoint port) breaks the signature.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let tampered = World::parse(&tampered).expect("still decodes");
    assert!(!tampered.verify_signed_by(&signer));

    // Our genplanet, given the same roots, key and timestamp, writes the same bytes.
    let key_path = d.join("roots.bin.key");
    assert!(
        key_path.exists(),
        "mkroots saves its new signing key as OUT.key"
    );
    let out = idtool(
        d,
        &[
            "initplanet",
            "--dir",
            "p",
            "--world-id",
            &format!("{:x}", 1234567),
            "a.public@10.77.0.1/9993,fd00:77::1/9993",
            "b.public@10.77.0.2/19993",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    fs::copy(&key_path, d.join("p/planet.c25519")).unwrap();
    let mut json: Value =
        serde_json::from_str(&fs::read_to_string(d.join("p/planet.json")).unwrap()).unwrap();
    json["updatesMustBeSignedBy"] = Value::String(hex::encode(signer));
    fs::write(d.join("p/planet.json"), json.to_string()).unwrap();
    let out = idtool(
        d,
        &["genplanet", "p/planet.json", "--timestamp", "1760000000000"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fs::read(d.join("p/planet")).unwrap(), bytes);
}

/// Write an identity made by our idtool into a ztpeer home directory.
fn home_with_identity(dir: &Path, home: &str, id_name: &str) -> std::path::PathBuf {
    let home = dir.join(home);
    fs::create_dir_all(&home).unwrap();
    fs::copy(
        dir.join(format!("{id_name}.secret")),
        home.join("identity.secret"),
    )
    .unwrap();
    fs::copy(
        dir.join(format!("{id_name}.public")),
        home.join("identity.public"),
    )
    .unwrap();
    home
}

/// Our planet, from `initplanet` + `genplanet`, listing `root` at `endpoint`.
fn make_planet(dir: &Path, root_name: &str, endpoint: &str) -> std::path::PathBuf {
    let spec = format!("{root_name}.public@{endpoint}");
    let out = idtool(dir, &["initplanet", "--dir", "planet", &spec]);
    assert!(out.status.success(), "initplanet: {}", text(&out.stderr));
    let out = idtool(dir, &["genplanet", "planet/planet.json"]);
    assert!(out.status.success(), "genplanet: {}", text(&out.stderr));
    dir.join("planet/planet")
}

/// What a root + leaf run left: each node's cached planet (`<home>/roots`, written by the
/// node when it accepts a planet) and the leaf's event lines.
struct RootAndLeaf {
    root_cached_planet: Vec<u8>,
    leaf_cached_planet: Vec<u8>,
    leaf_lines: Vec<String>,
}

/// Run a real root (node 0, identity `root`, planet `root_planet`) and a real leaf (node 1,
/// identity `leaf`, planet `leaf_planet`). Asserts both start with our identities, the root
/// is online at once (it is its own root) and the leaf comes online, which needs a HELLO/OK
/// exchange with the root our planet names, and both exit cleanly.
fn run_root_and_leaf(
    lab: &Lab,
    ztpeer: &Path,
    d: &Path,
    (root, leaf): (&Identity, &Identity),
    (root_planet, leaf_planet): (&Path, &Path),
) -> RootAndLeaf {
    let root_home = home_with_identity(d, "root-home", "root");
    let leaf_home = home_with_identity(d, "leaf-home", "leaf");
    let node = |i: usize, home: &Path, planet: &Path, seconds: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--home",
            home.to_str().unwrap(),
            "--port",
            "9993",
            "--roots",
            planet.to_str().unwrap(),
            "--for",
            seconds,
        ];
        args.extend_from_slice(extra);
        lab.spawn(i, ztpeer, &args)
    };
    let mut root_node = node(0, &root_home, root_planet, "30", &[]);
    let mut leaf_node = node(1, &leaf_home, leaf_planet, "25", &["--require-online"]);

    let started = root_node
        .wait_line(Duration::from_secs(30), |l| {
            event_of(l).as_deref() == Some("node_started")
        })
        .unwrap_or_else(|| panic!("root did not start: {}", root_node.report()));
    let started = json_line(&started).unwrap();
    assert_eq!(
        started["node_id"].as_str().map(str::to_lowercase),
        Some(root.address().to_string())
    );

    let online = leaf_node.wait_line(Duration::from_secs(30), |l| {
        event_of(l).as_deref() == Some("online")
    });
    assert!(
        online.is_some(),
        "leaf never came online; {}",
        leaf_node.report()
    );
    let exit = leaf_node
        .wait(Duration::from_secs(30))
        .expect("leaf stops after --for");
    assert!(
        exit.success(),
        "leaf exit {exit:?}; seen {:?}",
        leaf_node.seen()
    );
    let last = leaf_node
        .seen()
        .last()
        .and_then(|l| json_line(l))
        .expect("an exit line");
    assert_eq!(last["event"], "exit");
    assert_eq!(last["ok"], Value::Bool(true), "{last}");
    let leaf_id = leaf.address().to_string();
    assert!(
        leaf_node.seen().iter().any(|l| l
            .to_lowercase()
            .contains(&format!("\"node_id\": \"{leaf_id}\""))),
        "leaf runs with our identity {leaf_id}: {:?}",
        leaf_node.seen()
    );

    // The root stayed up the whole time and exits cleanly.
    let exit = root_node
        .wait(Duration::from_secs(30))
        .expect("root stops after --for");
    assert!(
        exit.success(),
        "root exit {exit:?}; seen {:?}",
        root_node.seen()
    );
    assert!(root_node
        .seen()
        .iter()
        .any(|l| event_of(l).as_deref() == Some("roots_set")));
    assert!(
        root_node
            .seen()
            .iter()
            .any(|l| event_of(l).as_deref() == Some("online")),
        "{:?}",
        root_node.seen()
    );
    let cached = |home: &Path| fs::read(home.join("roots")).unwrap_or_default();
    RootAndLeaf {
        root_cached_planet: cached(&root_home),
        leaf_cached_planet: cached(&leaf_home),
        leaf_lines: leaf_node.seen().to_vec(),
    }
}

#[test]
fn real_nodes_accept_our_planet_and_its_signed_update() {
    let ztpeer = skip_unless!(common::ztpeer_path());
    skip_unless!(common::netns_available());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = generate(d, "root");
    let leaf = generate(d, "leaf");
    let lab = Lab::new(2);
    let planet = make_planet(d, "root", &format!("{}/9993", lab.ip(0)));
    // The root runs the next revision (same key, later timestamp): it must push it to the
    // leaf in OK(HELLO), and the leaf must accept it, which checks our update signing chain.
    let first = World::parse(&fs::read(&planet).unwrap()).unwrap();
    let next_ts = (first.timestamp + 1000).to_string();
    let out = idtool(
        d,
        &[
            "genplanet",
            "planet/planet.json",
            "--timestamp",
            &next_ts,
            "--out",
            "planet/planet.next",
        ],
    );
    assert!(out.status.success(), "genplanet: {}", text(&out.stderr));
    let next = d.join("planet/planet.next");

    let run = run_root_and_leaf(&lab, &ztpeer, d, (&root, &leaf), (&next, &planet));
    let next = fs::read(&next).unwrap();
    assert_eq!(run.root_cached_planet, next, "root took our planet");
    assert_eq!(
        run.leaf_cached_planet, next,
        "leaf did not take the root's newer planet; events {:?}",
        run.leaf_lines
    );
}

/// The counterpart of the test above: the same update signed with another key is refused,
/// so the acceptance above really rests on our signature chain.
#[test]
fn real_nodes_refuse_a_planet_update_signed_by_another_key() {
    let ztpeer = skip_unless!(common::ztpeer_path());
    skip_unless!(common::netns_available());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = generate(d, "root");
    let leaf = generate(d, "leaf");
    let lab = Lab::new(2);
    let endpoint = format!("root.public@{}/9993", lab.ip(0));
    let planet = make_planet(d, "root", &format!("{}/9993", lab.ip(0)));
    let first = World::parse(&fs::read(&planet).unwrap()).unwrap();
    // Same world ID, roots and a later timestamp, but initplanet makes a fresh key.
    let world_id = format!("{:x}", first.id);
    let out = idtool(
        d,
        &[
            "initplanet",
            "--dir",
            "forged",
            "--world-id",
            &world_id,
            &endpoint,
        ],
    );
    assert!(out.status.success(), "initplanet: {}", text(&out.stderr));
    let next_ts = (first.timestamp + 1000).to_string();
    let out = idtool(
        d,
        &["genplanet", "forged/planet.json", "--timestamp", &next_ts],
    );
    assert!(out.status.success(), "genplanet: {}", text(&out.stderr));
    let forged = d.join("forged/planet");
    let forged_world = World::parse(&fs::read(&forged).unwrap()).unwrap();
    assert_eq!(
        (forged_world.id, forged_world.roots.clone()),
        (first.id, first.roots.clone())
    );
    assert!(!forged_world.verify_signed_by(&first.updates_must_be_signed_by));

    let run = run_root_and_leaf(&lab, &ztpeer, d, (&root, &leaf), (&forged, &planet));
    assert_eq!(
        run.root_cached_planet,
        fs::read(&forged).unwrap(),
        "the root runs the forged planet"
    );
    assert_eq!(
        run.leaf_cached_planet,
        fs::read(&planet).unwrap(),
        "leaf must keep its planet and refuse an update not signed by the key it names; events {:?}",
        run.leaf_lines
    );
}

#[test]
fn a_captured_hello_parses_and_its_mac_verifies_with_our_key_agreement() {
    let ztpeer = skip_unless!(common::ztpeer_path());
    skip_unless!(common::netns_available());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The "root" is only a listening socket; we hold its secret, so we can derive the key.
    let root = generate(d, "root");
    let leaf = generate(d, "leaf");
    let lab = Lab::new(2);
    let planet = make_planet(d, "root", &format!("{}/9993", lab.ip(0)));
    let planet_bytes = fs::read(&planet).unwrap();
    let planet_world = World::parse(&planet_bytes).unwrap();
    let leaf_home = home_with_identity(d, "leaf-home", "leaf");

    let listen = format!("{}:9993", lab.ip(0));
    let mut sniffer = lab.spawn(
        0,
        &ztpeer,
        &["sniff", "--listen", &listen, "--for", "30", "--count", "1"],
    );
    // Let the sniffer bind before the node sends (the node retries every ~5 s anyway).
    std::thread::sleep(Duration::from_millis(500));
    let _node = lab.spawn(
        1,
        &ztpeer,
        &[
            "run",
            "--home",
            leaf_home.to_str().unwrap(),
            "--roots",
            planet.to_str().unwrap(),
            "--for",
            "30",
        ],
    );

    let line = sniffer
        .wait_line(Duration::from_secs(30), |l| {
            json_line(l).is_some_and(|v| v.get("hex").is_some())
        })
        .unwrap_or_else(|| panic!("no packet captured; {}", sniffer.report()));
    let seen = json_line(&line).unwrap();
    let mut packet = hex::decode(seen["hex"].as_str().unwrap()).unwrap();
    assert_eq!(
        seen["src"].as_str().unwrap().split('/').next(),
        Some(lab.ip(1).to_string().as_str())
    );

    // Header, as our codec reads it.
    let header = PacketHeader::new_checked(&packet[..]).expect("header parses");
    assert_eq!(header.destination(), root.address());
    assert_eq!(header.source(), leaf.address());
    assert_eq!(header.hops(), 0);
    assert_eq!(
        header.cipher_suite(),
        Some(CipherSuite::Poly1305None),
        "HELLO is sent with suite 0"
    );
    assert_eq!(header.verb(), Verb::Hello);
    // ztpeer's own decoder agrees on the fields.
    assert_eq!(
        seen["source"].as_str().unwrap().to_lowercase(),
        leaf.address().to_string()
    );
    assert_eq!(
        seen["dest"].as_str().unwrap().to_lowercase(),
        root.address().to_string()
    );

    // The MAC verifies with the key our agreement derives on the root's side…
    let key = PeerKey::new(root.agree(&leaf.to_public()).expect("root has its secret"));
    let mut tampered = packet.clone();
    assert_eq!(
        armor::dearmor(&mut packet, &key),
        Ok(CipherSuite::Poly1305None)
    );
    // …and the leaf's side derives the same key.
    assert_eq!(leaf.agree(&root.to_public()).unwrap(), *key.raw());
    // A flipped payload bit is caught.
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(armor::dearmor(&mut tampered, &key).is_err());

    // Reveal the moon list and parse the HELLO.
    hello::crypt_moon_section(&mut packet, &key).expect("moon section");
    let header = PacketHeader::new_checked(&packet[..]).unwrap();
    let hello = Hello::read(header.payload()).expect("HELLO parses");
    assert_eq!(hello.protocol_version, 12);
    assert_eq!((hello.major, hello.minor, hello.revision), (1, 8, 4));
    assert_eq!(hello.identity, leaf.to_public());
    assert!(hello.identity.locally_validate());
    let dest = hello
        .physical_destination
        .expect("physical destination present");
    assert_eq!(
        dest.socket_addr().map(|s| s.to_string()),
        Some(listen.clone())
    );
    let planet_ref = hello.planet.expect("planet reference present");
    assert_eq!(
        (planet_ref.id, planet_ref.timestamp),
        (planet_world.id, planet_world.timestamp)
    );
    assert_eq!(hello.moons.as_deref(), Some(&[][..]), "no moons orbited");
    if let Some(h) = seen.get("hello") {
        assert_eq!(h["protocol_version"], 12);
        assert_eq!(h["timestamp"].as_u64(), Some(hello.timestamp));
    }
}
