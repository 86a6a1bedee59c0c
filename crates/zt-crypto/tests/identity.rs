//! Identities, signatures and key agreement against real data:
//! - `data/libzt_vectors.json`: a copy of `interop/vectors.json`, identities generated and
//!   judged by libzt 1.8.4 (ZeroTier's own core) through `ztpeer vectors`;
//! - `data/selftest_vectors.json`: `KNOWN_GOOD_IDENTITY`, `KNOWN_BAD_IDENTITY` and the 32
//!   `C25519_TEST_VECTORS` from ZeroTierOne's `selftest.cpp`.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use zt_crypto::identity::{PUBLIC_BINARY_LEN, SIGNATURE_LEN};
use zt_crypto::{c25519, Identity, IdentityError};

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("valid json")
}

fn bytes<const N: usize>(v: &Value) -> [u8; N] {
    let raw = hex::decode(v.as_str().expect("hex string")).expect("hex");
    raw.try_into().expect("length")
}

/// What libzt's `zts_id_pair_is_valid` answers: `Identity::fromString` then
/// `locallyValidate()`, which checks the public half only (no private/public match check).
fn libzt_verdict(secret: &str) -> bool {
    Identity::from_string(secret).is_ok_and(|id| id.to_public().locally_validate())
}

#[test]
fn libzt_identities_parse_validate_and_round_trip() {
    let v = data("libzt_vectors.json");
    let ids = v["identities"].as_array().expect("identities");
    assert!(!ids.is_empty());
    for case in ids {
        let secret = case["secret"].as_str().unwrap();
        let public = case["public"].as_str().unwrap();
        let id = Identity::from_string(secret).expect("secret parses");
        assert_eq!(id.address().to_string(), case["address"].as_str().unwrap());
        assert_eq!(case["valid"], Value::Bool(true));
        assert!(id.locally_validate(), "{public}");
        assert_eq!(id.to_secret_string().as_deref(), Some(secret));
        assert_eq!(id.to_public_string(), public);

        let public_only = Identity::from_string(public).expect("public parses");
        assert!(!public_only.has_private());
        assert!(public_only.locally_validate());
        assert_eq!(public_only, id);

        let mut wire = Vec::new();
        id.write_binary(&mut wire, false);
        assert_eq!(wire.len(), PUBLIC_BINARY_LEN);
        let (back, used) = Identity::read_binary(&wire).unwrap();
        assert_eq!(
            (back.to_public_string(), used),
            (public.to_string(), PUBLIC_BINARY_LEN)
        );
        let mut with_private = Vec::new();
        id.write_binary(&mut with_private, true);
        assert_eq!(with_private.len(), PUBLIC_BINARY_LEN + 64);
        let (back, used) = Identity::read_binary(&with_private).unwrap();
        assert_eq!(used, with_private.len());
        assert_eq!(back.to_secret_string().as_deref(), Some(secret));
    }
}

/// The negatives are mutations of `identities[0]` judged by libzt, which never compares the
/// private key with the public key. Our `locally_validate` does; both verdicts are checked.
#[test]
fn libzt_identity_negatives() {
    let v = data("libzt_vectors.json");
    let negatives = v["identity_negatives"].as_array().expect("negatives");
    let mut seen_private_mismatch = 0;
    for case in negatives {
        let name = case["case"].as_str().unwrap();
        let secret = case["secret"].as_str().unwrap();
        let libzt_valid = case["valid"].as_bool().unwrap();
        assert_eq!(
            libzt_verdict(secret),
            libzt_valid,
            "libzt verdict for {name}"
        );
        let ours = Identity::from_string(secret).is_ok_and(|id| id.locally_validate());
        if name.contains("private") && name.starts_with("flipped") {
            // libzt accepts these; the private half no longer matches, so we refuse.
            assert!(libzt_valid, "{name}");
            assert!(!ours, "{name}: private key does not match the public key");
            seen_private_mismatch += 1;
        } else {
            assert_eq!(ours, libzt_valid, "our verdict for {name}");
        }
    }
    assert_eq!(seen_private_mismatch, 2);
}

#[test]
fn string_form_rejections() {
    let v = data("libzt_vectors.json");
    let secret = v["identities"][0]["secret"].as_str().unwrap().to_string();
    let fields: Vec<&str> = secret.split(':').collect();
    let join = |f: &[&str]| f.join(":");
    let (addr, pubk, privk) = (fields[0], fields[2], fields[3]);

    assert!(matches!(
        Identity::from_string(&join(&[addr, "0"])),
        Err(IdentityError::Malformed(_))
    ));
    assert_eq!(
        Identity::from_string(&join(&["0000000000", "0", pubk])),
        Err(IdentityError::ReservedAddress)
    );
    assert_eq!(
        Identity::from_string(&join(&["ff12345678", "0", pubk])),
        Err(IdentityError::ReservedAddress)
    );
    assert_eq!(
        Identity::from_string(&join(&[addr, "1", pubk])),
        Err(IdentityError::UnsupportedType(1))
    );
    assert!(Identity::from_string(&join(&[addr, "00", pubk])).is_err());
    assert!(Identity::from_string(&join(&[&addr[1..], "0", pubk])).is_err());
    assert!(Identity::from_string(&join(&[addr, "0", &pubk[2..]])).is_err());
    assert!(Identity::from_string(&join(&[addr, "0", &format!("{pubk}00")])).is_err());
    assert!(Identity::from_string(&join(&[addr, "0", pubk, &privk[2..]])).is_err());
    assert!(Identity::from_string(&join(&[addr, "0", pubk, privk, "00"])).is_err());
    assert!(Identity::from_string(&join(&[addr, "0", &pubk.replacen('b', "g", 1)])).is_err());
    assert!(Identity::from_string(&secret).is_ok());
}

#[test]
fn binary_form_rejections() {
    let v = data("libzt_vectors.json");
    let id = Identity::from_string(v["identities"][0]["secret"].as_str().unwrap()).unwrap();
    let mut wire = Vec::new();
    id.write_binary(&mut wire, true);

    assert_eq!(
        Identity::read_binary(&wire[..70]).unwrap_err(),
        IdentityError::Truncated
    );
    assert_eq!(
        Identity::read_binary(&wire[..100]).unwrap_err(),
        IdentityError::Truncated
    );
    let mut bad_type = wire.clone();
    bad_type[5] = 1;
    assert_eq!(
        Identity::read_binary(&bad_type).unwrap_err(),
        IdentityError::UnsupportedType(1)
    );
    let mut bad_len = wire.clone();
    bad_len[70] = 32;
    assert!(matches!(
        Identity::read_binary(&bad_len),
        Err(IdentityError::Malformed(_))
    ));
    let mut reserved = wire.clone();
    reserved[0] = 0xff;
    assert_eq!(
        Identity::read_binary(&reserved).unwrap_err(),
        IdentityError::ReservedAddress
    );
    // Trailing bytes are left for the caller.
    let mut longer = Vec::new();
    id.write_binary(&mut longer, false);
    longer.extend_from_slice(b"tail");
    assert_eq!(Identity::read_binary(&longer).unwrap().1, PUBLIC_BINARY_LEN);
}

#[test]
fn selftest_known_good_and_bad_identity() {
    let v = data("selftest_vectors.json");
    let good = Identity::from_string(v["known_good_identity"].as_str().unwrap()).unwrap();
    assert!(good.locally_validate());
    assert_eq!(good.address().to_string(), "8e4df28b72");
    let bad = Identity::from_string(v["known_bad_identity"].as_str().unwrap()).unwrap();
    assert!(!bad.locally_validate());
    assert!(!bad.to_public().locally_validate());
}

#[test]
fn selftest_c25519_agreement_and_signatures() {
    let v = data("selftest_vectors.json");
    let vectors = v["c25519_vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 32);
    for (k, t) in vectors.iter().enumerate() {
        let (pub1, priv1) = (bytes::<64>(&t["pub1"]), bytes::<64>(&t["priv1"]));
        let (pub2, priv2) = (bytes::<64>(&t["pub2"]), bytes::<64>(&t["priv2"]));
        let agreement = bytes::<64>(&t["agreement"]);
        assert_eq!(c25519::public_from_private(&priv1), pub1, "vector {k} pub1");
        assert_eq!(c25519::public_from_private(&priv2), pub2, "vector {k} pub2");
        assert_eq!(
            c25519::agree(&priv1, &pub2),
            agreement,
            "vector {k} agree 1->2"
        );
        assert_eq!(
            c25519::agree(&priv2, &pub1),
            agreement,
            "vector {k} agree 2->1"
        );

        let sig1 = c25519::sign(&priv1, &agreement);
        let sig2 = c25519::sign(&priv2, &agreement);
        assert_eq!(
            sig1.to_vec(),
            hex::decode(t["agreement_signed_by_1"].as_str().unwrap()).unwrap()
        );
        assert_eq!(
            sig2.to_vec(),
            hex::decode(t["agreement_signed_by_2"].as_str().unwrap()).unwrap()
        );
        assert!(c25519::verify(&pub1, &agreement, &sig1));
        assert!(c25519::verify(&pub2, &agreement, &sig2));
        assert!(
            !c25519::verify(&pub2, &agreement, &sig1),
            "vector {k}: wrong key"
        );
        let mut tampered = sig1;
        tampered[10] ^= 1;
        assert!(!c25519::verify(&pub1, &agreement, &tampered));
        let mut tampered_digest = sig1;
        tampered_digest[90] ^= 1;
        assert!(!c25519::verify(&pub1, &agreement, &tampered_digest));
        assert!(!c25519::verify(&pub1, &agreement, &sig1[..95]));

        // The same keys used as identities give the first 48 bytes as the peer key.
        let to_identity = |public: &[u8; 64], private: &[u8; 64]| {
            let fake_address = "0102030405";
            Identity::from_string(&format!(
                "{fake_address}:0:{}:{}",
                hex::encode(public),
                hex::encode(private)
            ))
            .unwrap()
        };
        let (id1, id2) = (to_identity(&pub1, &priv1), to_identity(&pub2, &priv2));
        assert_eq!(id1.agree(&id2).unwrap()[..], agreement[..48]);
        assert_eq!(id1.sign(&agreement).unwrap(), sig1);
        assert!(id2.verify(&agreement, &sig2));
    }
}

#[test]
fn signing_and_agreement_need_a_private_key() {
    let v = data("libzt_vectors.json");
    let a = Identity::from_string(v["identities"][0]["public"].as_str().unwrap()).unwrap();
    let b = Identity::from_string(v["identities"][1]["secret"].as_str().unwrap()).unwrap();
    assert_eq!(a.sign(b"x"), Err(IdentityError::NoPrivateKey));
    assert_eq!(a.agree(&b), Err(IdentityError::NoPrivateKey));
    let sig = b.sign(b"hello").unwrap();
    assert_eq!(sig.len(), SIGNATURE_LEN);
    assert!(b.to_public().verify(b"hello", &sig));
    assert!(!b.verify(b"hellp", &sig));
}

#[test]
fn libzt_world_signing_key_pair_loads_and_signs() {
    let v = data("libzt_vectors.json");
    let world = &v["worlds"][0];
    let raw = hex::decode(world["signing_keypair_hex"].as_str().unwrap()).unwrap();
    let pair = c25519::KeyPair::from_bytes(&raw).expect("consistent key pair");
    assert_eq!(
        hex::encode(pair.public),
        world["signing_public_key_hex"].as_str().unwrap()
    );
    assert_eq!(pair.to_bytes().to_vec(), raw);
    let sig = pair.sign(b"planet");
    assert!(c25519::verify(&pair.public, b"planet", &sig));
    let mut mismatched = raw.clone();
    mismatched[100] ^= 1;
    assert!(c25519::KeyPair::from_bytes(&mismatched).is_none());
    assert!(c25519::KeyPair::from_bytes(&raw[..127]).is_none());
}

#[test]
fn generated_identities_validate_and_agree() {
    let mut rng = StdRng::seed_from_u64(7);
    let a = Identity::generate(&mut rng);
    let b = Identity::generate(&mut rng);
    assert!(a.locally_validate() && b.locally_validate());
    assert!(!a.address().is_reserved());
    assert_eq!(a.agree(&b).unwrap(), b.agree(&a.to_public()).unwrap());
    let again = Identity::from_string(&a.to_secret_string().unwrap()).unwrap();
    assert!(again.locally_validate());
    let kp = c25519::KeyPair::generate(&mut rng);
    assert!(c25519::KeyPair::from_bytes(&kp.to_bytes()).is_some());
}

#[test]
fn public_key_hash_is_sha384_of_address_and_key() {
    use sha2::{Digest, Sha384};
    let v = data("libzt_vectors.json");
    let id = Identity::from_string(v["identities"][0]["public"].as_str().unwrap()).unwrap();
    let mut input = id.address().to_bytes().to_vec();
    input.extend_from_slice(id.public_key());
    assert_eq!(
        id.public_key_hash().to_vec(),
        Sha384::digest(&input).to_vec()
    );
}
