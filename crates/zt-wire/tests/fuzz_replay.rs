//! Replays every fuzz target's seed corpus (`fuzz/seeds/`: real datagrams, plaintexts, config
//! requests and chunks, dictionaries, credentials and worlds from the captures and vectors,
//! plus inputs that once failed) and any local `fuzz/corpus/` through the same checks the fuzz
//! targets run, so a regression shows up in `cargo test` without libFuzzer.

#[path = "../../../fuzz/src/packet.rs"]
mod packet_checks;
#[path = "../../../fuzz/src/structs.rs"]
mod struct_checks;

use std::path::Path;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

fn replay(target: &str, check: fn(&[u8])) {
    let seeds = Path::new(FUZZ_DIR).join("seeds").join(target);
    let mut n = 0;
    for dir in [
        seeds.clone(),
        Path::new(FUZZ_DIR).join("corpus").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            check(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no inputs for {target} in {}", seeds.display());
}

#[test]
fn packet_header_corpus() {
    replay("packet_header", packet_checks::packet_header);
}

#[test]
fn fragment_corpus() {
    replay("fragment", packet_checks::fragment);
}

#[test]
fn verbs_corpus() {
    replay("verbs", packet_checks::verbs);
}

#[test]
fn dictionary_corpus() {
    replay("dictionary", struct_checks::dictionary);
}

#[test]
fn world_corpus() {
    replay("world", struct_checks::world);
}

#[test]
fn netconf_corpus() {
    replay("netconf", struct_checks::netconf);
}

#[test]
fn credentials_corpus() {
    replay("credentials", struct_checks::credentials);
}
