//! Checks for the controller's text inputs: the rules language takes whatever a UI or an
//! operator typed, so it must never panic, and what it compiles must be usable as stored.
use zt_controller::rules_json::{rules_from_json, rules_to_json};
use zt_controller::rules_language::compile;
use zt_wire::rules::{MAX_CAPABILITY_RULES, MAX_NETWORK_RULES};

pub fn rules_language(data: &[u8]) {
    let source = String::from_utf8_lossy(data);
    match compile(&source) {
        Ok(compiled) => {
            assert!(compiled.rules.len() <= MAX_NETWORK_RULES);
            // Compiled rules survive the JSON they are stored and served as.
            let json = rules_to_json(&compiled.rules);
            let list = json.as_array().expect("rules render as a list");
            assert_eq!(rules_from_json(list, "rules").as_ref(), Ok(&compiled.rules));
            for cap in &compiled.capabilities {
                assert!(cap.rules.len() <= MAX_CAPABILITY_RULES);
                let json = rules_to_json(&cap.rules);
                let list = json.as_array().expect("rules render as a list");
                assert_eq!(rules_from_json(list, "capability").as_ref(), Ok(&cap.rules));
            }
        }
        Err(e) => {
            // The position is inside the text: a line it has, a column on that line.
            let lines = source.split('\n').count();
            assert!((1..=lines).contains(&e.line), "{e}");
            let line = source.split('\n').nth(e.line - 1).unwrap_or_default();
            assert!((1..=line.chars().count()).contains(&e.column), "{e}");
        }
    }
}
