//! The rules language compiler against ZeroTier's own.
//!
//! How `data/rules_language.json` was made: each case's source text was written by hand to
//! cover one keyword, form or error of the language (every action and match, tags with enums
//! and flags, capabilities, macros with parameters, comments, line ends, and the odd corners of
//! how blocks open and close). The sources were then compiled, outside this repository, by
//! ZeroTier's JavaScript rule compiler (`rule-compiler/rule-compiler.js` in ZeroTierOne) under
//! Node.js, and what it returned was recorded as is: for a source it accepts, the rules, each
//! capability (by name: id, default, rules) and each tag (by name: id, default) in the JSON form
//! it produces; for a source it refuses, the line and column it reported. Neither that compiler
//! nor the script that ran it is part of this repository; only its answers are.
//!
//! How they are compared: the expected rules are read by [`rules_from_json`] and rendered back,
//! as zerotier-one does with rules a UI posts, so both sides are in the canonical form (an IP as
//! `10.0.0.0/8`, a MAC in lower case, a tee with `flags`). Errors must be at the same line and
//! column, with one allowance: the JS compiler counts columns from 0 on the first line and from
//! 1 on the others, while we count from 1 everywhere. A JS error at line 0 is its internal
//! exception (a crash inside the compiler), where only the fact of the error is compared.
//!
//! [`DIFFERENCES`] lists the cases where we deliberately answer otherwise, with the reason.
//! Other differences not covered by a case: names are checked with Rust's notion of a letter
//! rather than the JS compiler's table of Unicode letters; `constructor`, `toString` and other
//! JavaScript object property names are not taken as already defined names; and a literal
//! number over 2^53 in a tag default is read exactly rather than rounded as a JS double.
use serde_json::{json, Map, Value};
use zt_controller::rules_json::{rules_from_json, rules_to_json};
use zt_controller::rules_language::{compile, Compiled};

/// Cases we answer differently on purpose, and why.
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "vlan_too_wide_for_wire",
        "a VLAN id over 65535 passes the JS compiler but not the 16-bit rule field; zerotier-one \
         would store a different VLAN, we refuse it",
    ),
    (
        "ipprotocol_too_wide",
        "an IP protocol over 255 passes the JS compiler but not the 8-bit rule field; we refuse it",
    ),
    (
        "ipsrc_v4_garbage_around",
        "the JS compiler looks for an IP address anywhere in the text (`x10.0.0.1y`); zerotier-one \
         then reads the unparsable text as 0.0.0.0/0, which matches everything; we refuse it",
    ),
    (
        "ipsrc_bits_too_large",
        "the JS compiler passes /33 on an IPv4 address; we refuse a netmask longer than the address",
    ),
    (
        "ipsrc_zone_v6",
        "the JS compiler passes an IPv6 address with a zone (`fe80::1%eth0`), which zerotier-one \
         cannot read as an address; we refuse it",
    ),
    (
        "chr_high_bits_combined",
        "the JS compiler computes the mask of bits 63 and 62 together as bit 62 alone (32-bit signed \
         arithmetic); we set both bits",
    ),
    (
        "chr_numbers",
        "the JS compiler computes the mask of bit 31 with bits 0 and 5 as 0x7fffffdf (32-bit signed \
         arithmetic); we set exactly the bits named",
    ),
    (
        "tag_flag_bit31",
        "the JS compiler makes flag bit 31 a negative value and then refuses it where the flag is \
         used; we take bit 31 like any other bit",
    ),
    (
        "tee_bad_length",
        "the JS compiler reports this error at the line of the length and the column of the \
         address; we point at the length",
    ),
    (
        "tee_non_hex_target",
        "the JS compiler only counts the 10 characters of a tee/watch/redirect address; zerotier-one \
         cannot read `zzzzzzzzzz` as an address, so we refuse it",
    ),
    (
        "tee_word_length",
        "the JS compiler takes a length that is not a number as -1 (no limit); we refuse it, a \
         misspelt length is more likely a mistake than a wish",
    ),
    (
        "crlf_after_comment",
        "after a comment, the JS compiler counts CR LF as two line ends, so its line numbers drift; \
         we count one",
    ),
    (
        "cap_over_64_rules",
        "a capability carries at most 64 rules in a network config; the JS compiler has no limit, \
         we refuse more (as we refuse more than 1024 network rules)",
    ),
];

fn cases() -> Vec<Value> {
    let text = include_str!("data/rules_language.json");
    let Value::Array(cases) = serde_json::from_str(text).expect("test data is JSON") else {
        panic!("test data is a list of cases");
    };
    cases
}

/// Rules in the JS compiler's JSON, in the canonical form zerotier-one would store.
fn canonical(rules: &Value, what: &str) -> Value {
    let list = rules.as_array().expect("rules are a list");
    rules_to_json(&rules_from_json(list, what).expect("expected rules are readable"))
}

/// What we compiled, in the shape the test data records.
fn ours(c: &Compiled) -> Value {
    let capabilities: Map<String, Value> = c
        .capabilities
        .iter()
        .map(|cap| {
            (
                cap.name.clone(),
                json!({"id": cap.id, "default": cap.default, "rules": rules_to_json(&cap.rules)}),
            )
        })
        .collect();
    let tags: Map<String, Value> = c
        .tags
        .iter()
        .map(|t| (t.name.clone(), json!({"id": t.id, "default": t.default})))
        .collect();
    json!({"rules": rules_to_json(&c.rules), "capabilities": capabilities, "tags": tags})
}

/// The recorded answer in the same shape, canonical.
fn expected(e: &Value) -> Value {
    let capabilities: Map<String, Value> = e["capabilities"]
        .as_object()
        .expect("capabilities by name")
        .iter()
        .map(|(name, cap)| {
            let rules = canonical(&cap["rules"], name);
            (
                name.clone(),
                json!({"id": cap["id"], "default": cap["default"], "rules": rules}),
            )
        })
        .collect();
    let tags: Map<String, Value> = e["tags"]
        .as_object()
        .expect("tags by name")
        .iter()
        .map(|(name, t)| {
            // The JS compiler keeps a default over 2^31 as a negative 32-bit number.
            let default = t["default"].as_i64().map(|d| d as u32);
            (name.clone(), json!({"id": t["id"], "default": default}))
        })
        .collect();
    json!({"rules": canonical(&e["rules"], "rules"), "capabilities": capabilities, "tags": tags})
}

#[test]
fn every_case_compiles_as_zerotier_compiles_it() {
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("case name");
        let source = case["source"].as_str().expect("case source");
        if let Some((_, why)) = DIFFERENCES.iter().find(|(n, _)| *n == name) {
            eprintln!("skipped {name}: {why}");
            continue;
        }
        let result = compile(source);
        match (&case["error"], result) {
            (Value::Null, Ok(compiled)) => {
                let want = expected(&case["expected"]);
                let got = ours(&compiled);
                if want != got {
                    failures.push(format!("{name}: expected {want}\n  got {got}"));
                }
            }
            (Value::Null, Err(e)) => failures.push(format!("{name}: expected success, got {e}")),
            (error, Ok(compiled)) => failures.push(format!(
                "{name}: expected an error at {error}, got {}",
                ours(&compiled)
            )),
            (error, Err(e)) => {
                let line = error["line"].as_u64().expect("error line") as usize;
                let column = error["column"].as_u64().expect("error column") as usize;
                // Line 0 is the JS compiler's own exception: no position to compare.
                let column = if line == 1 { column + 1 } else { column };
                if line != 0 && (line, column) != (e.line, e.column) {
                    failures.push(format!(
                        "{name}: expected an error at line {line}, column {column}, got {e}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_listed_difference_is_a_case() {
    let cases = cases();
    for (name, _) in DIFFERENCES {
        assert!(
            cases.iter().any(|c| c["name"] == *name),
            "{name} is listed as a difference but is not a case"
        );
    }
}

/// The differences behave as documented: each is refused here, except those that compute the
/// right value where the JS compiler computes a wrong one, or only report elsewhere.
#[test]
fn deliberate_differences_are_refusals_or_better_values() {
    let source = |name: &str| {
        cases()
            .into_iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["source"].as_str().map(str::to_string))
            .expect("case exists")
    };
    for (name, _) in DIFFERENCES {
        let result = compile(&source(name));
        match *name {
            "chr_high_bits_combined" => {
                let rules = rules_to_json(&result.expect("compiles").rules);
                assert_eq!(rules[0]["mask"], "c000000000000000");
            }
            "chr_numbers" => {
                let rules = rules_to_json(&result.expect("compiles").rules);
                assert_eq!(rules[0]["mask"], "0000010180000021");
            }
            "tag_flag_bit31" => {
                let rules = rules_to_json(&result.expect("compiles").rules);
                assert_eq!(rules[0]["value"], 0x8000_0000u32);
            }
            "crlf_after_comment" => assert_eq!(result.expect_err(name).line, 2),
            _ => {
                result.expect_err(name);
            }
        }
    }
}
