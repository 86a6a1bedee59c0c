//! Replays the `rules_language` fuzz target's seeds (`fuzz/seeds/rules_language/`) and any
//! local corpus through the same check the fuzzer runs, so a regression shows up in
//! `cargo test` without libFuzzer.

#[path = "../../../fuzz/src/controller.rs"]
mod controller_checks;

use std::path::Path;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

#[test]
fn rules_language_corpus() {
    let target = "rules_language";
    let mut n = 0;
    for dir in ["seeds", "corpus"] {
        let Ok(entries) = std::fs::read_dir(Path::new(FUZZ_DIR).join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            controller_checks::rules_language(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no inputs for {target}");
}

/// The recorded cases, good and bad, through the fuzz check too.
#[test]
fn rules_language_test_cases() {
    let text = include_str!("data/rules_language.json");
    let cases: serde_json::Value = serde_json::from_str(text).unwrap();
    for case in cases.as_array().unwrap() {
        let source = case["source"].as_str().unwrap();
        controller_checks::rules_language(source.as_bytes());
    }
}
