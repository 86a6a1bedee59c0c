//! Replays the `node_receive` fuzz target's seeds (`fuzz/seeds/node_receive/`) and any local
//! corpus through the same check the fuzzer runs, so the receive path's invariants are
//! checked by `cargo test` without libFuzzer.

#[path = "../../../fuzz/src/node.rs"]
mod node_checks;

use std::path::Path;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

#[test]
fn node_receive_corpus() {
    let mut n = 0;
    for dir in ["seeds", "corpus"] {
        let Ok(entries) = std::fs::read_dir(Path::new(FUZZ_DIR).join(dir).join("node_receive"))
        else {
            continue;
        };
        for entry in entries {
            node_checks::receive(&std::fs::read(entry.unwrap().path()).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no node_receive inputs");
}
