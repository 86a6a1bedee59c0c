//! Replays the packet fuzz targets' seed corpora (`fuzz/seeds/`, real datagrams and
//! plaintexts from the captures) and any local `fuzz/corpus/` through the same checks the
//! fuzz targets run, so a regression shows up in `cargo test` without libFuzzer.

#[path = "../../../fuzz/src/packet.rs"]
mod packet_checks;

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
        for e in entries {
            let path = e.unwrap().path();
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
