//! Replays what two self-hosted controller UIs sent to zerotier-one 1.14.1 (ztncui 0.8.14 and
//! zero-ui 1.5.8, recorded in `tests/data/controller-clients/`, see `shared/interop/
//! controller-clients/README.md`) against the `ztd` binary, and checks that every request gets
//! the status zerotier-one gave it, and that what each POST set reads back.
//!
//! The daemon runs on a temporary home with a pre-seeded identity, its API on a loopback port,
//! its instance enabled without any planet (`ZTD_NO_DEFAULT_PLANET`): it knows no root and sends
//! nothing. Every wait has a deadline; nothing is timed.
//!
//! The two sessions overlapped in time: ztncui, from its line 112 on, reads member `abcdef0123`,
//! which zero-ui added (zerotier-one answers 404 for a member that does not exist), while
//! zero-ui's network was created after ztncui's second one (line 102, deleted at line 111). The
//! replay order consistent with both is ztncui up to line 111, all of zero-ui, then the rest of
//! ztncui.
//!
//! Substitutions, as the recordings' README asks: our controller address for `2d28f96244`, our
//! member addresses for the recorded ones, and the network IDs our daemon creates for the
//! recorded ones, in creation order (ztncui creates two networks, zero-ui a third, and zero-ui
//! goes on to use ztncui's first one).
//!
//! The recorded members `fdf3cac7e6` and `493f87c985` were nodes that had joined: the UIs read
//! their records before setting anything, and zerotier-one re-created the record of one after
//! ztncui deleted it, because the node asked for its config again. No node joins here, so the
//! test stands in for those requests by creating the member record through the API
//! (`POST .../member/<address>` with `{}`, which creates an unauthorized member like a first
//! config request does) right after the network is created and right after such a delete.
//! `abcdef0123` was added by hand in the UI and never joined; it gets no stand-in.
mod loopback;

use loopback::{Ztd, KNOWN_ADDRESS};
use serde_json::{json, Value};
use zt_testnet::skip_unless;

const ZTNCUI: &str = include_str!("data/controller-clients/ztncui-0.8.14.jsonl");
const ZERO_UI: &str = include_str!("data/controller-clients/zero-ui-1.5.8.jsonl");

/// The recording's controller address.
const RECORDED_CONTROLLER: &str = "2d28f96244";
/// The networks the recorded sessions created, in creation order.
const RECORDED_NETWORKS: [&str; 3] = ["2d28f96244cc24bd", "2d28f962440fe294", "2d28f9624438bd09"];
/// ztncui's last line before zero-ui's session (see the module comment).
const ZTNCUI_BEFORE_ZERO_UI: usize = 111;
/// Recorded member address → ours, and whether its node was online (asking for config).
const MEMBERS: [(&str, &str, bool); 3] = [
    ("fdf3cac7e6", "0a11111111", true),
    ("493f87c985", "0a22222222", true),
    ("abcdef0123", "0a33333333", false),
];

/// One recorded request.
struct Recorded {
    line: usize,
    client: String,
    method: String,
    path: String,
    content_type: Option<String>,
    body: String,
    status: u16,
}

fn recordings(text: &str) -> Vec<Recorded> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l).unwrap();
            Recorded {
                line: i + 1,
                client: v["client"].as_str().unwrap().to_string(),
                method: v["method"].as_str().unwrap().to_string(),
                path: v["path"].as_str().unwrap().to_string(),
                content_type: v["content_type"].as_str().map(str::to_string),
                body: v["body"].as_str().unwrap().to_string(),
                status: u16::try_from(v["zerotier_one_1_14_1_status"].as_u64().unwrap()).unwrap(),
            }
        })
        .collect()
}

/// The recorded → ours replacements, growing as networks are created.
struct Substitutions {
    networks: Vec<(String, String)>,
}

impl Substitutions {
    fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (recorded, ours) in &self.networks {
            out = out.replace(recorded, ours);
        }
        for (recorded, ours, _) in MEMBERS {
            out = out.replace(recorded, ours);
        }
        // Last: what is left of the controller address is the create-with-random-id form.
        out.replace(RECORDED_CONTROLLER, KNOWN_ADDRESS)
    }
}

/// zerotier-one's reading of a boolean (`OSUtils::jsonBool`), written out independently of
/// the code under test: true, a number other than 0, a string starting with t, T or 1.
fn zerotier_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => s.starts_with(['t', 'T', '1']),
        _ => false,
    }
}

const BOOLEAN_FIELDS: [&str; 5] = [
    "authorized",
    "activeBridge",
    "noAutoAssignIps",
    "private",
    "enableBroadcast",
];

/// Checks that every field a POST set reads back from `record` as zerotier-one would store it.
fn assert_reads_back(what: &str, posted: &Value, record: &Value) {
    let Some(posted) = posted.as_object() else {
        return;
    };
    for (key, value) in posted {
        let got = &record[key];
        match key.as_str() {
            k if BOOLEAN_FIELDS.contains(&k) => {
                assert_eq!(got, &json!(zerotier_bool(value)), "{what}: {key}={value}")
            }
            "v4AssignMode" | "v6AssignMode" => {
                for (mode, on) in value.as_object().unwrap() {
                    assert_eq!(
                        got[mode],
                        json!(zerotier_bool(on)),
                        "{what}: {key}.{mode}={on}"
                    );
                }
            }
            // Only target and via are kept (zerotier-one drops zero-ui's flags and metric).
            "routes" => {
                let expected: Vec<Value> = value
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| json!({"target": r["target"], "via": r["via"]}))
                    .collect();
                assert_eq!(got, &json!(expected), "{what}: routes");
            }
            _ => assert_eq!(got, value, "{what}: {key}"),
        }
    }
}

#[test]
fn ztncui_and_zero_ui_sessions_replay_with_zerotier_one_statuses() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let ztd = Ztd::seeded(&tmp.path().join("home"));
    ztd.enable_zt1();

    let mut subs = Substitutions {
        networks: Vec::new(),
    };
    let mut replayed = 0;
    let mut posts_checked = 0;
    let (ztncui_first, ztncui_rest): (Vec<_>, Vec<_>) = recordings(ZTNCUI)
        .into_iter()
        .partition(|r| r.line <= ZTNCUI_BEFORE_ZERO_UI);
    for r in ztncui_first
        .into_iter()
        .chain(recordings(ZERO_UI))
        .chain(ztncui_rest)
    {
        let what = format!("{} line {}: {} {}", r.client, r.line, r.method, r.path);
        let path = subs.apply(&r.path);
        let body = subs.apply(&r.body);
        let (status, reply) = ztd.send(&r.method, &path, r.content_type.as_deref(), &body);
        assert_eq!(status, r.status, "{what} {body}: {reply}");
        replayed += 1;

        let creates = r.method == "POST" && r.path.ends_with("______");
        if creates {
            let recorded = RECORDED_NETWORKS[subs.networks.len()];
            let ours = reply["id"].as_str().expect("the created network's id");
            assert!(ours.starts_with(KNOWN_ADDRESS), "{what}: {ours}");
            subs.networks.push((recorded.to_string(), ours.to_string()));
            // The nodes that had joined ask for config once the network exists.
            if subs.networks.len() == 1 {
                for (_, member, online) in MEMBERS {
                    if online {
                        join(&ztd, ours, member);
                    }
                }
            }
        }
        if r.method == "DELETE" && r.path.contains("/member/") {
            // An online node asks again and is back, unauthorized.
            let (nwid, member) = path
                .trim_start_matches("/controller/network/")
                .split_once("/member/")
                .unwrap();
            if MEMBERS.iter().any(|(_, m, online)| *m == member && *online) {
                join(&ztd, nwid, member);
            }
        }
        if r.method == "POST" && !r.body.is_empty() {
            let posted: Value = serde_json::from_str(&body).unwrap();
            let resource = if creates {
                format!("/controller/network/{}", reply["id"].as_str().unwrap())
            } else {
                path.clone()
            };
            assert_reads_back(&what, &posted, &ztd.get(&resource));
            posts_checked += 1;
        }
    }
    assert_eq!(replayed, 144 + 214);
    assert_eq!(subs.networks.len(), RECORDED_NETWORKS.len());
    // Every recorded POST has a body: 18 from ztncui, 21 from zero-ui.
    assert_eq!(posts_checked, 18 + 21);

    // The end state: ztncui's network with zero-ui's last rules, the members as the UIs left
    // them (ztncui deauthorized the second one last).
    let (nwid, member) = (&subs.networks[0].1, MEMBERS[0].1);
    let network = ztd.get(&format!("/controller/network/{nwid}"));
    assert_eq!(network["rules"], json!([{"type": "ACTION_ACCEPT"}]));
    assert_eq!(network["private"], json!(true));
    assert_eq!(network["multicastLimit"], json!(64));
    let first = ztd.get(&format!("/controller/network/{nwid}/member/{member}"));
    assert_eq!(first["authorized"], json!(true), "{first}");
    assert_eq!(first["activeBridge"], json!(true), "{first}");
    let second = ztd.get(&format!(
        "/controller/network/{nwid}/member/{}",
        MEMBERS[1].1
    ));
    assert_eq!(second["authorized"], json!(false), "{second}");
    assert_eq!(
        second["ipAssignments"],
        json!(["172.27.28.47", "172.27.28.60"])
    );
    assert_eq!(
        ztd.get("/controller/network"),
        json!([nwid]),
        "the other two networks were deleted"
    );
}

/// Stands in for a member's node asking for config: the member record appears, unauthorized.
fn join(ztd: &Ztd, nwid: &str, member: &str) {
    let path = format!("/controller/network/{nwid}/member/{member}");
    let (status, reply) = ztd.send("POST", &path, Some("application/json"), "{}");
    assert_eq!(status, 200, "join {path}: {reply}");
    assert_eq!(reply["authorized"], json!(false), "{reply}");
}

/// Every flow-rule form zero-ui and ztncui post reads back exactly, and one that cannot be read
/// is refused without changing anything.
#[test]
fn zero_ui_flow_rules_read_back_exactly() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let ztd = Ztd::seeded(&tmp.path().join("home"));
    let json_type = Some("application/json");
    let (status, created) = ztd.send(
        "POST",
        &format!("/controller/network/{KNOWN_ADDRESS}______"),
        json_type,
        "{}",
    );
    assert_eq!(status, 200, "{created}");
    // Creating on another controller's address: 400, as zerotier-one answers.
    let (status, reply) = ztd.send(
        "POST",
        "/controller/network/0123456789______",
        json_type,
        "{}",
    );
    assert_eq!(status, 400, "{reply}");
    assert_eq!(ztd.get("/controller/network").as_array().unwrap().len(), 1);
    let path = format!("/controller/network/{}", created["id"].as_str().unwrap());
    let posted = ZERO_UI
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| {
            let body: Value = serde_json::from_str(v["body"].as_str()?).ok()?;
            (body["rules"].as_array()?.len() == 5).then_some(body)
        })
        .expect("zero-ui's default rules in the recording");
    let (status, reply) = ztd.send("POST", &path, json_type, &posted.to_string());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rules"], posted["rules"]);
    assert_eq!(ztd.get(&path)["rules"], posted["rules"]);

    let bad = json!({"rules": [{"type": "MATCH_IPV4_DEST", "ip": "not an address"}]});
    let (status, reply) = ztd.send("POST", &path, json_type, &bad.to_string());
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("rules[0]: ip: \"not an address\" is not an address/bits"),
        "{reply}"
    );
    assert_eq!(ztd.get(&path)["rules"], posted["rules"], "nothing changed");
}

/// An entry zerotier-one would silently leave out (a route with host bits set, an address that
/// does not parse) is left out here too, and the daemon's log says which one; the rest of the
/// body applies and the answer is 200.
#[test]
fn unusable_entries_are_left_out_with_a_warning() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let ztd = Ztd::seeded(&tmp.path().join("home"));
    let body = json!({
        "name": "partly",
        "routes": [{"target": "10.9.0.0/24", "via": null}, {"target": "10.9.1.7/24", "via": null}],
        "mtu": "1400"
    });
    let (status, created) = ztd.request(
        "POST",
        &format!("/controller/network/{KNOWN_ADDRESS}______"),
        Some(&body),
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["name"], json!("partly"));
    assert_eq!(created["mtu"], json!(1400));
    assert_eq!(
        created["routes"],
        json!([{"target": "10.9.0.0/24", "via": null}])
    );
    let line = ztd
        .log_line("left out routes[1]")
        .expect("a warning naming the route left out");
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("10.9.1.7/24 has host bits set; the network address is 10.9.1.0/24"),
        "{line}"
    );

    let nwid = created["id"].as_str().unwrap();
    let (status, member) = ztd.request(
        "POST",
        &format!("/controller/network/{nwid}/member/0a44444444"),
        Some(&json!({"authorized": 1, "ipAssignments": ["10.9.0.5", "10.9.0.300"]})),
    );
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["authorized"], json!(true));
    assert_eq!(member["ipAssignments"], json!(["10.9.0.5"]));
    assert!(ztd.log_line("left out ipAssignments[1]").is_some());
}

/// ZTNet's calls, in the order its client (`src/utils/ztApi.ts` of sinamics/ztnet) makes them
/// for a local controller: controller and node status, create (private, a pool, a route),
/// list, flow rules with tags and capabilities as its rule compiler posts them (with
/// `rulesSource`), a member's list entry and record, authorization with a tag value and a
/// capability, peers, then the deletes. Every answer is zerotier-one's status, and what was
/// posted reads back.
#[test]
fn ztnet_calls_work_as_its_client_makes_them() {
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let ztd = Ztd::seeded(&tmp.path().join("home"));
    // The node runs (no planet, no root): ZTNet also lists its peers.
    ztd.enable_zt1();
    let json_type = Some("application/json");
    let post = |path: &str, body: &Value| {
        let (status, reply) = ztd.send("POST", path, json_type, &body.to_string());
        assert_eq!(status, 200, "POST {path} {body}: {reply}");
        reply
    };
    assert_eq!(ztd.get("/controller")["controller"], json!(true));
    let address = ztd.get("/status")["address"].as_str().unwrap().to_string();
    let created = post(
        &format!("/controller/network/{address}______"),
        &json!({
            "name": "ztnet-net",
            "private": true,
            "ipAssignmentPools": [{"ipRangeStart": "10.121.15.1", "ipRangeEnd": "10.121.15.254"}],
            "routes": [{"target": "10.121.15.0/24", "via": null}],
            "v4AssignMode": {"zt": true},
        }),
    );
    let nwid = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "ztnet-net");
    assert!(ztd
        .get("/controller/network")
        .as_array()
        .unwrap()
        .contains(&json!(nwid)));
    let network_path = format!("/controller/network/{nwid}");

    let flow = json!({
        "rulesSource": "tag department id 1000 default 100 enum 100 sales enum 200 hr;\ncap ssh id 1 accept ipprotocol tcp and dport 22;;\ndrop not tdiff department 0;\naccept;\n",
        "rules": [
            {"type": "MATCH_TAGS_DIFFERENCE", "id": 1000, "value": 0, "not": true, "or": false},
            {"type": "ACTION_DROP"},
            {"type": "ACTION_ACCEPT"}
        ],
        "capabilities": [{"id": 1, "default": false, "rules": [
            {"type": "MATCH_IP_PROTOCOL", "ipProtocol": 6, "not": false, "or": false},
            {"type": "MATCH_IP_DEST_PORT_RANGE", "start": 22, "end": 22, "not": false, "or": false},
            {"type": "ACTION_ACCEPT"}
        ]}],
        "tags": [{"id": 1000, "default": 100}]
    });
    let updated = post(&network_path, &flow);
    for key in ["rulesSource", "capabilities", "tags"] {
        assert_eq!(updated[key], flow[key], "{key}: {updated}");
        assert_eq!(ztd.get(&network_path)[key], flow[key], "{key} read back");
    }
    assert_eq!(
        updated["rules"].as_array().map(Vec::len),
        Some(3),
        "{updated}"
    );

    // A node asks (its record appears), ZTNet lists the members, reads each, authorizes one.
    let member = "0a44444444";
    join(&ztd, &nwid, member);
    let listed = ztd.get(&format!("{network_path}/member"));
    assert!(listed.as_object().unwrap().contains_key(member), "{listed}");
    let member_path = format!("{network_path}/member/{member}");
    assert_eq!(ztd.get(&member_path)["id"], member);
    let authorized = post(
        &member_path,
        &json!({"authorized": true, "name": "laptop", "tags": [[1000, 200]], "capabilities": [1]}),
    );
    assert_eq!(authorized["authorized"], true, "{authorized}");
    assert_eq!(authorized["tags"], json!([[1000, 200]]));
    assert_eq!(authorized["capabilities"], json!([1]));

    let (status, peers) = ztd.send("GET", "/peer", None, "");
    assert_eq!(status, 200, "{peers}");
    assert!(peers.is_array(), "{peers}");
    // A member that never connected is no peer: zerotier-one answers 200 with `{}`.
    let (status, peer) = ztd.send("GET", &format!("/peer/{member}"), None, "");
    assert_eq!((status, peer), (200, json!({})));

    let (status, _) = ztd.send("DELETE", &member_path, None, "");
    assert_eq!(status, 200);
    let (status, _) = ztd.send("DELETE", &network_path, None, "");
    assert_eq!(status, 200);
    assert!(ztd
        .get("/controller/network")
        .as_array()
        .unwrap()
        .is_empty());
}
