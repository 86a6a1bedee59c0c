//! Signing, verification, round trips and truncation of every credential type, with the
//! capture lab's real identities (controller 51479cea31 and its members).

use serde_json::Value;
use std::net::{Ipv4Addr, Ipv6Addr};
use zt_crypto::{Address, Identity};
use zt_wire::capability::Capability;
use zt_wire::com::CertificateOfMembership;
use zt_wire::coo::{CertificateOfOwnership, Thing};
use zt_wire::credential::{CredentialType, Verification};
use zt_wire::cursor::Reader;
use zt_wire::mac::Mac;
use zt_wire::network_id::NetworkId;
use zt_wire::revocation::{Revocation, FLAG_FAST_PROPAGATE};
use zt_wire::rules::{Rule, RuleKind};
use zt_wire::tag::Tag;
use zt_wire::verbs::network::NetworkCredentials;
use zt_wire::WireError;

const NWID: NetworkId = NetworkId(0x51479cea31ccae5c);

fn identity(role: &str) -> Identity {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/interop/captures/identities.json"
    );
    let ids: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let node = ids["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == role)
        .unwrap();
    Identity::from_string(node["secret"].as_str().unwrap()).unwrap()
}

/// Every strict prefix of a serialized credential fails to parse.
fn assert_prefixes_fail<T: std::fmt::Debug>(
    bytes: &[u8],
    read: impl Fn(&mut Reader<'_>) -> Result<T, WireError>,
) {
    for len in 0..bytes.len() {
        assert!(
            read(&mut Reader::new(&bytes[..len])).is_err(),
            "prefix of {len} of {}",
            bytes.len()
        );
    }
}

#[test]
fn tag_sign_verify_round_trip() {
    let (controller, member) = (identity("controller"), identity("member"));
    let mut tag = Tag::new(NWID, 1_795_619_900_000, 7, 42, member.address());
    tag.sign(&controller).unwrap();
    assert_eq!(tag.verify(&controller.to_public()), Verification::Valid);
    assert_eq!(
        tag.verify(&member),
        Verification::NeedIdentity(controller.address())
    );
    let mut bytes = Vec::new();
    tag.write(&mut bytes);
    assert_eq!(bytes.len(), 34 + 3 + 96 + 2);
    assert_eq!(Tag::read(&mut Reader::new(&bytes)).unwrap(), tag);
    assert_prefixes_fail(&bytes, Tag::read);
    let mut changed = tag.clone();
    changed.value = 43;
    assert_eq!(changed.verify(&controller), Verification::Invalid);
    // Signed by a member instead of the controller: invalid whatever the signature.
    let mut by_member = Tag::new(NWID, 1, 7, 42, member.address());
    by_member.sign(&member).unwrap();
    assert_eq!(by_member.verify(&member), Verification::Invalid);
}

#[test]
fn capability_custody_chain() {
    let (controller, member, libzt) = (
        identity("controller"),
        identity("member"),
        identity("libzt"),
    );
    let rules = vec![
        Rule::new(RuleKind::Ethertype(0x0800)).negated(),
        Rule::new(RuleKind::Ipv4Dest {
            ip: Ipv4Addr::new(172, 27, 27, 0),
            bits: 24,
        }),
        Rule::accept(),
    ];
    let mut cap = Capability::new(NWID, 1000, 3, rules, 2).unwrap();
    cap.sign(&controller, member.address()).unwrap();
    cap.sign(&member, libzt.address()).unwrap();
    assert!(
        cap.sign(&libzt, controller.address()).is_err(),
        "chain is full"
    );
    assert_eq!(cap.issued_to(), Some(libzt.address()));
    let known = [controller.to_public(), member.to_public()];
    let lookup = |a: Address| known.iter().find(|i| i.address() == a).cloned();
    assert_eq!(cap.verify(lookup), Verification::Valid);
    assert_eq!(
        cap.verify(|_| None),
        Verification::NeedIdentity(controller.address())
    );

    let mut bytes = Vec::new();
    cap.write(&mut bytes);
    let back = Capability::read(&mut Reader::new(&bytes)).unwrap();
    assert_eq!(back, cap);
    assert_prefixes_fail(&bytes, Capability::read);

    // A chain that does not start at the controller, or skips a link, is invalid.
    let mut rogue = Capability::new(NWID, 1000, 3, vec![Rule::accept()], 1).unwrap();
    rogue.sign(&member, libzt.address()).unwrap();
    assert_eq!(
        rogue.verify(|a| (a == member.address()).then(|| member.clone())),
        Verification::Invalid
    );
    let mut broken = cap.clone();
    broken.custody[1].from = libzt.address();
    assert_eq!(broken.verify(lookup), Verification::Invalid);
    let mut more_rules = cap.clone();
    more_rules.rules.push(Rule::drop());
    assert_eq!(more_rules.verify(lookup), Verification::Invalid);

    // Limits: 64 rules, chain length 1..=7, custody beyond the declared maximum.
    assert!(Capability::new(NWID, 0, 0, vec![Rule::accept(); 65], 1).is_err());
    assert!(Capability::new(NWID, 0, 0, vec![], 0).is_err());
    assert!(Capability::new(NWID, 0, 0, vec![], 8).is_err());
    let mut one_link = cap.clone();
    one_link.max_custody_chain_length = 1;
    let mut bytes = Vec::new();
    Capability::write(&one_link, &mut bytes);
    // The writer stops at the maximum, so the second link is not emitted and the chain reads back shorter.
    assert_eq!(
        Capability::read(&mut Reader::new(&bytes))
            .unwrap()
            .custody
            .len(),
        1
    );
}

#[test]
fn coo_round_trip_and_verify() {
    let (controller, member) = (identity("controller"), identity("member"));
    let things = vec![
        Thing::Ipv4(Ipv4Addr::new(172, 27, 27, 16)),
        Thing::Ipv6(NWID.rfc4193_address(member.address())),
        Thing::Mac(Mac::from_address(member.address(), NWID)),
        Thing::Ipv6(Ipv6Addr::LOCALHOST),
    ];
    let mut coo = CertificateOfOwnership::new(NWID, 5, 1, things, member.address()).unwrap();
    coo.sign(&controller).unwrap();
    assert_eq!(coo.verify(&controller), Verification::Valid);
    let mut bytes = Vec::new();
    coo.write(&mut bytes);
    assert_eq!(
        CertificateOfOwnership::read(&mut Reader::new(&bytes)).unwrap(),
        coo
    );
    assert_prefixes_fail(&bytes, CertificateOfOwnership::read);
    assert!(CertificateOfOwnership::new(
        NWID,
        0,
        1,
        vec![Thing::Ipv6(Ipv6Addr::LOCALHOST); 17],
        member.address()
    )
    .is_err());
    let mut too_many = bytes.clone();
    too_many[28..30].copy_from_slice(&17u16.to_be_bytes());
    assert_eq!(
        CertificateOfOwnership::read(&mut Reader::new(&too_many)),
        Err(WireError::TooLarge("COO things"))
    );
}

#[test]
fn revocation_and_the_controllers_deauthorization_packet() {
    let (controller, member) = (identity("controller"), identity("member"));
    let mut rev = Revocation::new(
        0xdeadbeef,
        NWID,
        0,
        1_795_619_999_000,
        FLAG_FAST_PROPAGATE,
        member.address(),
        CredentialType::CertificateOfMembership,
    );
    rev.sign(&controller).unwrap();
    assert!(rev.fast_propagate());
    assert_eq!(rev.verify(&controller), Verification::Valid);
    let mut bytes = Vec::new();
    rev.write(&mut bytes);
    assert_eq!(Revocation::read(&mut Reader::new(&bytes)).unwrap(), rev);
    assert_prefixes_fail(&bytes, Revocation::read);

    // §6.6: the deauthorization push is `00 | 0000 | 0000 | 0001 <revocation> | 0000`.
    let creds = NetworkCredentials {
        revocations: vec![rev.clone()],
        ..Default::default()
    };
    let payload = creds.to_bytes().unwrap();
    let mut expected = vec![0, 0, 0, 0, 0, 0, 1];
    expected.extend_from_slice(&bytes);
    expected.extend_from_slice(&[0, 0]);
    assert_eq!(payload, expected);
    assert_eq!(NetworkCredentials::parse(&payload).unwrap(), creds);
}

#[test]
fn com_limits_and_unsigned_form() {
    let member = identity("member");
    let com = CertificateOfMembership::new(1000, 1_800_000, NWID, &member);
    assert_eq!(com.qualifiers.len(), 7);
    let bytes = com.to_bytes();
    assert_eq!(bytes.len(), 3 + 7 * 24 + 5, "no signature when unsigned");
    assert_eq!(CertificateOfMembership::parse(&bytes).unwrap(), com);
    assert_eq!(com.verify(&identity("controller")), Verification::Invalid);
    let mut nine = bytes.clone();
    nine[1..3].copy_from_slice(&9u16.to_be_bytes());
    assert_eq!(
        CertificateOfMembership::parse(&nine),
        Err(WireError::TooLarge("COM qualifiers"))
    );
    let mut unordered = com.clone();
    unordered.qualifiers.swap(0, 1);
    assert!(CertificateOfMembership::parse(&unordered.to_bytes()).is_err());
    let mut wrong_version = bytes.clone();
    wrong_version[0] = 2;
    assert!(CertificateOfMembership::parse(&wrong_version).is_err());
    // An old-style COM without identity-hash qualifiers agrees on network and time only.
    let mut old = com.clone();
    old.qualifiers.truncate(3);
    assert!(old.agrees_with(&com, &identity("libzt")));
    assert!(
        !com.agrees_with(&old, &member),
        "ours has hashes, theirs must too"
    );
}
