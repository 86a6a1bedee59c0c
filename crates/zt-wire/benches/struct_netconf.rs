//! Costs of the structure codecs on the captured 1.14.1 network config: Dictionary parse,
//! NetworkConfig parse and serialize, chunk signature check, and world parse.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::Value;
use zt_crypto::Identity;
use zt_wire::dictionary::Dictionary;
use zt_wire::netconf::NetworkConfig;
use zt_wire::verbs::network::{ConfigPayload, NetworkCredentials};
use zt_wire::world::World;

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/interop/captures"
);

fn payload_of_frame(number: u64) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{CAPTURES}/zt114-join.decoded.jsonl")).unwrap();
    let record = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["frame"].as_u64() == Some(number))
        .unwrap();
    let plain = hex::decode(record["plaintext_hex"].as_str().unwrap()).unwrap();
    if plain[0] == 0x03 {
        plain[10..].to_vec()
    } else {
        plain[1..].to_vec()
    }
}

fn controller() -> Identity {
    let ids: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{CAPTURES}/identities.json")).unwrap(),
    )
    .unwrap();
    let node = ids["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "controller")
        .unwrap();
    Identity::from_string(node["public"].as_str().unwrap()).unwrap()
}

fn benches(c: &mut Criterion) {
    let chunk_payload = payload_of_frame(67);
    let ConfigPayload::Chunk(chunk) = ConfigPayload::parse(&chunk_payload).unwrap() else {
        panic!("frame 67 is a signed chunk")
    };
    let dict_text = chunk.data.clone();
    let config = NetworkConfig::parse(&dict_text).unwrap();
    let controller = controller();
    let credentials = payload_of_frame(72);
    let planet = std::fs::read(format!("{CAPTURES}/planet.bin")).unwrap();

    c.bench_function("struct/dictionary_parse_1226B", |b| {
        b.iter(|| Dictionary::parse(black_box(&dict_text)))
    });
    c.bench_function("struct/netconf_parse_1226B", |b| {
        b.iter(|| NetworkConfig::parse(black_box(&dict_text)).unwrap())
    });
    c.bench_function("struct/netconf_serialize", |b| {
        b.iter(|| black_box(&config).to_bytes().unwrap())
    });
    c.bench_function("struct/config_chunk_parse_and_verify", |b| {
        b.iter(
            || match ConfigPayload::parse(black_box(&chunk_payload)).unwrap() {
                ConfigPayload::Chunk(c) => c.verify(&controller),
                ConfigPayload::Legacy { .. } => unreachable!(),
            },
        )
    });
    c.bench_function("struct/credentials_parse", |b| {
        b.iter(|| NetworkCredentials::parse(black_box(&credentials)).unwrap())
    });
    c.bench_function("struct/world_parse", |b| {
        b.iter(|| World::parse(black_box(&planet)).unwrap())
    });
}

criterion_group!(struct_benches, benches);
criterion_main!(struct_benches);
