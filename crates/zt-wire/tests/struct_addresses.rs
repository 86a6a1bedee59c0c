//! Network-ID derived values against the real implementation's vectors
//! (`interop/vectors.json`: `addresses`, `adhoc_networks`, produced by libzt 1.8.4).

use serde_json::Value;
use std::net::Ipv6Addr;
use zt_wire::network_id::{AdHoc, NetworkId};
use zt_wire::Address;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/interop/vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors.json")).expect("json")
}

#[test]
fn sixplane_and_rfc4193_match_libzt() {
    let v = vectors();
    let cases = v["addresses"].as_array().expect("addresses");
    assert!(!cases.is_empty());
    for case in cases {
        let nwid: NetworkId = case["network_id"].as_str().unwrap().parse().unwrap();
        let node: Address = case["node_id"].as_str().unwrap().parse().unwrap();
        let sixplane: Ipv6Addr = case["6plane"].as_str().unwrap().parse().unwrap();
        let rfc4193: Ipv6Addr = case["rfc4193"].as_str().unwrap().parse().unwrap();
        assert_eq!(nwid.sixplane_address(node), sixplane, "{case}");
        assert_eq!(nwid.rfc4193_address(node), rfc4193, "{case}");
        assert_eq!(nwid.sixplane_member(&sixplane), Some(node));
        assert_eq!(nwid.rfc4193_member(&rfc4193), Some(node));
    }
}

#[test]
fn adhoc_ids_match_libzt() {
    let v = vectors();
    let cases = v["adhoc_networks"].as_array().expect("adhoc_networks");
    assert!(!cases.is_empty());
    for case in cases {
        let start = case["start_port"].as_u64().unwrap() as u16;
        let end = case["end_port"].as_u64().unwrap() as u16;
        let nwid: NetworkId = case["network_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(NetworkId::adhoc_port_range(start, end), nwid, "{case}");
        assert_eq!(nwid.adhoc(), Some(AdHoc::PortRange { start, end }));
    }
}
