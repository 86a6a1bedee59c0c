//! Worlds against real data: the libzt-signed planet pair in `interop/vectors.json` and the
//! planet every node of the captures used (`captures/planet.bin`).

use serde_json::Value;
use zt_crypto::c25519::KeyPair;
use zt_crypto::Identity;
use zt_wire::inet::InetAddress;
use zt_wire::world::{Root, World, WorldType};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/interop");

fn json(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{SHARED}/{path}")).expect(path);
    serde_json::from_str(&text).expect("json")
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn roots_from(v: &Value, endpoints_key: &str) -> Vec<Root> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| Root {
            identity: Identity::from_string(r["identity"].as_str().unwrap()).unwrap(),
            stable_endpoints: r[endpoints_key]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap().parse::<InetAddress>().unwrap())
                .collect(),
        })
        .collect()
}

#[test]
fn libzt_planet_decodes_verifies_and_reencodes() {
    let v = json("vectors.json");
    let cases = v["worlds"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let bytes = hex(&case["world_hex"]);
        let world = World::parse(&bytes).unwrap();
        assert_eq!(world.world_type, WorldType::Planet);
        assert_eq!(world.id, case["world_id"].as_u64().unwrap());
        assert_eq!(world.timestamp, case["timestamp"].as_u64().unwrap());
        let public: [u8; 64] = hex(&case["signing_public_key_hex"]).try_into().unwrap();
        assert_eq!(world.updates_must_be_signed_by, public);
        assert_eq!(world.roots, roots_from(&case["roots"], "endpoints"));
        assert!(world.verify_signed_by(&public));
        assert_eq!(world.to_bytes(), bytes);

        // world_next: same key, timestamp + 1: a valid update, and not the other way round.
        let next = World::parse(&hex(&case["world_next_hex"])).unwrap();
        assert_eq!(next.timestamp, world.timestamp + 1);
        assert!(world.should_be_replaced_by(&next));
        assert!(!next.should_be_replaced_by(&world), "older revision");
        assert!(!world.should_be_replaced_by(&world), "same revision");
        let mut forged = next.clone();
        forged.signature[5] ^= 1;
        assert!(!world.should_be_replaced_by(&forged), "bad signature");
        let mut other_id = next.clone();
        other_id.id += 1;
        assert!(!world.should_be_replaced_by(&other_id), "other world id");

        // Building and signing with the same key pair reproduces libzt's bytes exactly
        // (C25519 signatures are deterministic).
        let pair = KeyPair::from_bytes(&hex(&case["signing_keypair_hex"])).unwrap();
        let rebuilt = World::new_signed(
            WorldType::Planet,
            world.id,
            world.timestamp,
            pair.public,
            world.roots.clone(),
            &pair,
        )
        .unwrap();
        assert_eq!(rebuilt.to_bytes(), bytes);
    }
}

#[test]
fn capture_planet_decodes_and_verifies() {
    let bytes = std::fs::read(format!("{SHARED}/captures/planet.bin")).unwrap();
    let hex_text = std::fs::read_to_string(format!("{SHARED}/captures/planet.hex")).unwrap();
    let from_hex: String = hex_text.split_whitespace().collect();
    assert_eq!(hex::decode(from_hex).unwrap(), bytes);
    let ids = json("captures/identities.json");
    let planet = &ids["planet"];
    let world = World::parse(&bytes).unwrap();
    assert_eq!(world.world_type, WorldType::Planet);
    assert_eq!(world.id, planet["world_id"].as_u64().unwrap());
    assert_eq!(world.timestamp, planet["timestamp_ms"].as_u64().unwrap());
    assert_eq!(
        world.roots,
        roots_from(&planet["roots"], "stable_endpoints")
    );
    let pair = KeyPair::from_bytes(&hex(&planet["signing_keypair_c25519_hex"])).unwrap();
    assert_eq!(world.updates_must_be_signed_by, pair.public);
    assert!(world.verify_signed_by(&pair.public));
    assert_eq!(world.to_bytes(), bytes);
    // The mkworld-style tool's output is reproduced exactly from its inputs.
    let rebuilt = World::new_signed(
        WorldType::Planet,
        planet["world_id"].as_u64().unwrap(),
        planet["timestamp_ms"].as_u64().unwrap(),
        pair.public,
        roots_from(&planet["roots"], "stable_endpoints"),
        &pair,
    )
    .unwrap();
    assert_eq!(rebuilt.to_bytes(), bytes);

    // A signed update with a new signing key: accepted; the one after must use the new key.
    let other_key = &json("vectors.json")["worlds"][0]["signing_keypair_hex"];
    let next_pair = KeyPair::from_bytes(&hex(other_key)).unwrap();
    assert_ne!(next_pair.public, pair.public);
    let update = World::new_signed(
        WorldType::Planet,
        world.id,
        world.timestamp + 1000,
        next_pair.public,
        world.roots.clone(),
        &pair,
    )
    .unwrap();
    assert!(world.should_be_replaced_by(&update));
    let after = World::new_signed(
        WorldType::Planet,
        world.id,
        world.timestamp + 2000,
        next_pair.public,
        world.roots.clone(),
        &pair,
    )
    .unwrap();
    assert!(
        !update.should_be_replaced_by(&after),
        "signed by the retired key"
    );
    let proper = World::new_signed(
        WorldType::Planet,
        world.id,
        world.timestamp + 2000,
        next_pair.public,
        world.roots.clone(),
        &next_pair,
    )
    .unwrap();
    assert!(update.should_be_replaced_by(&proper));
}

#[test]
fn every_truncation_of_a_world_is_an_error() {
    let bytes = std::fs::read(format!("{SHARED}/captures/planet.bin")).unwrap();
    for len in 0..bytes.len() {
        assert!(
            World::parse(&bytes[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(World::parse(&longer).is_err());
}

#[test]
fn moon_round_trip_with_extension_section() {
    let v = json("vectors.json");
    let case = &v["worlds"][0];
    let pair = KeyPair::from_bytes(&hex(&case["signing_keypair_hex"])).unwrap();
    let roots = roots_from(&case["roots"], "endpoints");
    let moon_id = roots[0].identity.address().to_u64();
    let moon = World::new_signed(WorldType::Moon, moon_id, 5, pair.public, roots, &pair).unwrap();
    let bytes = moon.to_bytes();
    assert_eq!(
        &bytes[bytes.len() - 2..],
        &[0, 0],
        "moons end with an empty extension length"
    );
    let signed = moon.signed_form();
    assert_eq!(&signed[..8], &[0x7f; 8]);
    assert_eq!(
        &signed[signed.len() - 10..],
        &[0, 0, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7]
    );
    let back = World::parse(&bytes).unwrap();
    assert_eq!(back, moon);
    assert!(back.verify_signed_by(&pair.public));
    // A moon with a non-empty extension is still readable (the reference skips it).
    let mut extended = bytes[..bytes.len() - 2].to_vec();
    extended.extend_from_slice(&[0, 3, 1, 2, 3]);
    assert_eq!(World::parse(&extended).unwrap(), moon);
}
