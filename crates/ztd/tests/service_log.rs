//! ztd as a real host runs it: the Debian package's files and unit, the packaged ztd started
//! the way `ztd.service` starts it (inside a throw-away namespace, with the unit's command
//! line and environment, `STATE_DIRECTORY` as systemd sets it, readiness through
//! `NOTIFY_SOCKET`), and the INFO log of a join → authorize → leave cycle.
//!
//! In each run the node is its own planet's only root (a planet made here) and its own
//! network controller, so nothing leaves the namespace.
//!
//! The package tests need the .deb that `.ci/test` builds (`cargo deb -p ztd --no-build`,
//! found in `target/debian/` or at `$ZT_DEB`); without it they say so and skip. Every test
//! needs root and `ip netns`, and `curl` (the API is called inside the namespace).
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use zt_crypto::Identity;
use zt_testnet::{run_with_deadline, skip_unless, Lab, NsProcess};
use zt_wire::world::WorldType;

mod common;
use common::{poll, Api};

const ZT_PORT: u16 = 9993;
/// The API address `ztd` uses without settings (the unit gives none).
const DEFAULT_API: &str = "127.0.0.1:9993";

/// The .deb to check: `$ZT_DEB`, or the newest `target/debian/zt_*.deb`.
fn find_deb() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ZT_DEB") {
        return Ok(PathBuf::from(path));
    }
    let dir = zt_testnet::workspace_root().join("target/debian");
    let newest = std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("zt_") && n.ends_with(".deb"))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    newest.ok_or_else(|| {
        format!(
            "no package in {} (build it with `cargo deb -p ztd --no-build`, as .ci/test does)",
            dir.display()
        )
    })
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A home whose `zt1` has an identity and a planet naming it as root at `lab`'s node 0.
fn prepared_home(lab: &Lab, home: &Path) -> Identity {
    let identity = common::identity();
    common::write_identity(&home.join("zt1"), &identity);
    let endpoint = std::net::SocketAddr::from((lab.ip(0), ZT_PORT));
    let planet = common::world_with_root(WorldType::Planet, 0x7a7a_7a7a, &identity, endpoint);
    std::fs::write(home.join("zt1/planet"), planet.to_bytes()).unwrap();
    identity
}

/// The API of a ztd whose home is `home`, once it answers at `address`.
fn api_of<'a>(lab: &'a Lab, home: &Path, address: &str, ztd: &mut NsProcess) -> Api<'a> {
    let token = poll(Duration::from_secs(20), || {
        std::fs::read_to_string(home.join("authtoken.secret")).ok()
    })
    .unwrap_or_else(|| panic!("ztd wrote no token: {}", ztd.report()));
    let api = Api {
        lab,
        ns: 0,
        token: token.trim().to_string(),
        address: address.to_string(),
    };
    poll(Duration::from_secs(20), || api.call("GET", "/health", None))
        .unwrap_or_else(|| panic!("ztd API did not answer: {}", ztd.report()));
    api
}

fn text(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap_or_default().to_string()
}

/// The interface row of network `nwid`.
fn interface(api: &Api, nwid: &str) -> Option<Value> {
    api.call("GET", "/rest/zerotier/interface", None)?
        .as_array()?
        .iter()
        .find(|row| text(row, "network") == nwid)
        .cloned()
}

/// Enable zt1, create a network on its own controller, join it, authorize ourselves, see
/// the interface get an address, leave. Returns the network ID.
fn join_authorize_leave(api: &Api, lab: &Lab) -> String {
    let reply = api.call("PATCH", "/rest/zerotier/zt1", Some(r#"{"disabled": "no"}"#));
    assert!(reply.is_some(), "enable zt1");
    let created = api
        .call(
            "PUT",
            "/rest/zerotier/controller",
            Some(
                &json!({"name": "hostnet", "instance": "zt1", "ip-range": "10.147.20.10-10.147.20.20", "routes": "10.147.20.0/24"})
                    .to_string(),
            ),
        )
        .expect("controller/add");
    let nwid = text(&created, "network");
    assert_eq!(nwid.len(), 16, "{created}");
    let added = api.call(
        "PUT",
        "/rest/zerotier/interface",
        Some(&json!({"network": nwid, "instance": "zt1", "name": "zthost"}).to_string()),
    );
    assert!(added.is_some(), "interface/add");
    let denied = poll(Duration::from_secs(30), || {
        interface(api, &nwid).filter(|row| text(row, "status") == "ACCESS_DENIED")
    });
    assert!(denied.is_some(), "{:?}", interface(api, &nwid));
    let member = poll(Duration::from_secs(30), || {
        api.call("GET", "/rest/zerotier/controller/member", None)?
            .as_array()?
            .first()
            .cloned()
    })
    .expect("our join shows up as a member");
    let set = api.call(
        "PATCH",
        &format!("/rest/zerotier/controller/member/{}", text(&member, ".id")),
        Some(r#"{"authorized": "yes"}"#),
    );
    assert!(set.is_some(), "member/set authorized=yes");
    let ok = poll(Duration::from_secs(30), || {
        interface(api, &nwid).filter(|row| text(row, "status") == "OK")
    });
    assert!(ok.is_some(), "{:?}", interface(api, &nwid));
    let has_address = poll(Duration::from_secs(30), || {
        let out = lab.run(
            0,
            Path::new("ip"),
            &["-4", "-o", "addr", "show", "dev", "zthost"],
            Duration::from_secs(10),
        );
        String::from_utf8_lossy(&out.stdout)
            .contains("10.147.20.")
            .then_some(())
    });
    assert!(has_address.is_some(), "zthost got no address of the range");
    let row = interface(api, &nwid).unwrap();
    // RouterOS answers a removal with an empty body: the row going away is the check.
    api.call(
        "DELETE",
        &format!("/rest/zerotier/interface/{}", text(&row, ".id")),
        None,
    );
    assert!(
        poll(Duration::from_secs(20), || interface(api, &nwid)
            .is_none()
            .then_some(()))
        .is_some(),
        "the interface stayed"
    );
    nwid
}

/// The log lines a join → authorize → leave cycle must leave at INFO, each naming the
/// network, in order; no terminal colour codes in a redirected log.
fn check_story(log: &str, nwid: &str) {
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a redirected log:\n{log}"
    );
    assert!(log.contains("instance enabled"), "{log}");
    // The controller is this node: its "member authorized" line and the member's status OK
    // come from two tasks within microseconds, in either order.
    assert!(
        log.lines().any(|line| line.contains(" INFO ")
            && line.contains("member authorized")
            && line.contains(nwid)
            && line.contains("face=routeros")),
        "no INFO line \"member authorized\" with the face for {nwid}:\n{log}"
    );
    let expected = [
        ("joining network", ""),
        ("network status", "ACCESS_DENIED"),
        ("network status", "status=\"OK\""),
        ("network config applied", "10.147.20."),
        ("left network", ""),
    ];
    let mut lines = log.lines();
    for (message, detail) in expected {
        let found = lines.by_ref().any(|line| {
            line.contains(" INFO ")
                && line.contains(message)
                && line.contains(nwid)
                && line.contains(detail)
        });
        assert!(
            found,
            "no INFO line {message:?} with {detail:?} for {nwid} (in order):\n{log}"
        );
    }
}

/// The cargo-built ztd in namespace 0 of `lab`, its stderr appended to `log` (a file, as
/// when redirected by a service manager).
fn spawn_logging_to(lab: &Lab, home: &Path, args: &[&str], log: &Path) -> NsProcess {
    let script = format!(
        "exec '{}' --home '{}' {} 2>>'{}'",
        env!("CARGO_BIN_EXE_ztd"),
        home.display(),
        args.join(" "),
        log.display()
    );
    let mut command = lab.command(0, Path::new("/bin/sh"), &["-c", &script]);
    command
        .env("ZTD_NO_DEFAULT_PLANET", "1")
        .env_remove("RUST_LOG");
    NsProcess::spawn(command)
}

#[test]
fn a_join_authorize_leave_cycle_is_told_at_info() {
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(1);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    prepared_home(&lab, &home);
    let log = tmp.path().join("ztd.log");
    let mut ztd = spawn_logging_to(&lab, &home, &["--api-listen", common::API], &log);
    let api = api_of(&lab, &home, common::API, &mut ztd);
    let nwid = join_authorize_leave(&api, &lab);
    check_story(&std::fs::read_to_string(&log).unwrap(), &nwid);
}

/// `Key=value` lines of the unit's `[Service]` section.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_package_holds_both_programs_and_a_hardened_unit() {
    let deb = skip_unless!(find_deb());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    run(
        "dpkg-deb",
        &["-x", deb.to_str().unwrap(), root.to_str().unwrap()],
    );
    for program in ["usr/bin/ztd", "usr/bin/zt"] {
        let out = run(root.join(program).to_str().unwrap(), &["--version"]);
        let version = String::from_utf8_lossy(&out.stdout);
        assert!(
            version.contains("ZeroTier protocol 12"),
            "{program}: {version}"
        );
    }
    let unit_path = root.join("usr/lib/systemd/system/ztd.service");
    let unit = std::fs::read_to_string(&unit_path).expect("ztd.service in the package");
    for (key, value) in [
        ("Type", "notify"),
        ("ExecStart", "/usr/bin/ztd"),
        ("StateDirectory", "zt"),
        ("Restart", "on-failure"),
        ("CapabilityBoundingSet", "CAP_NET_ADMIN CAP_NET_RAW"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("DeviceAllow", "/dev/net/tun rw"),
    ] {
        assert_eq!(unit_values(&unit, key), [value], "{key} in\n{unit}");
    }
    // The maintainer scripts never touch the state (identities) in /var/lib/zt.
    let control = tmp.path().join("control");
    run(
        "dpkg-deb",
        &["-e", deb.to_str().unwrap(), control.to_str().unwrap()],
    );
    for script in ["postinst", "prerm", "postrm"] {
        let text = std::fs::read_to_string(control.join(script)).unwrap();
        assert!(
            !text
                .lines()
                .any(|l| l.contains("/var/lib/zt") && (l.contains("rm ") || l.contains("mv "))),
            "{script} touches /var/lib/zt:\n{text}"
        );
    }
    // systemd's own check, where this machine has it (the binary path made absolute to
    // the unpacked tree, since the package is not installed).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let checked = tmp.path().join("ztd.service");
        let ztd = root.join("usr/bin/ztd");
        std::fs::write(
            &checked,
            unit.replace(
                "ExecStart=/usr/bin/ztd",
                &format!("ExecStart={}", ztd.display()),
            ),
        )
        .unwrap();
        run(
            "systemd-analyze",
            &["verify", "--man=no", checked.to_str().unwrap()],
        );
    } else {
        eprintln!("systemd-analyze not installed: the unit's syntax was not checked by systemd");
    }
}

#[test]
fn the_packaged_ztd_runs_as_its_unit_starts_it() {
    let deb = skip_unless!(find_deb());
    skip_unless!(zt_testnet::netns_available());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    run(
        "dpkg-deb",
        &["-x", deb.to_str().unwrap(), root.to_str().unwrap()],
    );
    let unit = std::fs::read_to_string(root.join("usr/lib/systemd/system/ztd.service")).unwrap();
    let exec = unit_values(&unit, "ExecStart");
    let mut words = exec.first().expect("ExecStart").split_whitespace();
    let program = words.next().unwrap();
    let program = root.join(program.trim_start_matches('/'));
    let args: Vec<&str> = words.collect();

    let lab = Lab::new(1);
    let home = tmp.path().join("state");
    prepared_home(&lab, &home);
    let notify_path = tmp.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut command = lab.command(0, &program, &args);
    for assignment in unit_values(&unit, "Environment") {
        if let Some((key, value)) = assignment.split_once('=') {
            command.env(key, value);
        }
    }
    // What systemd adds for this unit: the state directory and the notification socket.
    command
        .env("STATE_DIRECTORY", &home)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("ZTD_NO_DEFAULT_PLANET", "1")
        .env_remove("RUST_LOG");
    let mut ztd = NsProcess::spawn(command);
    let mut message = [0u8; 512];
    let ready = notify
        .recv(&mut message)
        .map(|n| String::from_utf8_lossy(&message[..n]).into_owned());
    assert!(
        ready
            .as_deref()
            .is_ok_and(|m| m.lines().any(|l| l == "READY=1")),
        "no READY=1 from ztd: {ready:?}; {}",
        ztd.report()
    );
    let api = api_of(&lab, &home, DEFAULT_API, &mut ztd);
    // The packaged console talks to the packaged daemon the way an admin types it.
    let console = root.join("usr/bin/zt");
    let out = lab.run(
        0,
        &console,
        &["--home", home.to_str().unwrap(), "/zerotier/print"],
        Duration::from_secs(20),
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && printed.contains("zt1"), "{printed}");
    join_authorize_leave(&api, &lab);
    // SIGTERM (systemctl stop): STOPPING=1, then a clean exit.
    let pid = ztd.pid().expect("running");
    run("kill", &["-TERM", &pid.to_string()]);
    let stopping = notify
        .recv(&mut message)
        .map(|n| String::from_utf8_lossy(&message[..n]).into_owned());
    assert!(
        stopping.as_deref().is_ok_and(|m| m.contains("STOPPING=1")),
        "{stopping:?}"
    );
    let status = ztd.wait(Duration::from_secs(30)).expect("ztd exited");
    assert!(status.success(), "{status:?}");
}

/// HTTP status of `GET path` on `url` from namespace `ns` of `lab`, with the token.
fn status_from(lab: &Lab, ns: usize, url: &str, token: &str) -> String {
    let auth = format!("X-ZT1-Auth: {token}");
    let out = lab.run(
        ns,
        Path::new("/usr/bin/curl"),
        &[
            "-s",
            "-m",
            "8",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &auth,
            url,
        ],
        Duration::from_secs(12),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn local_conf_sets_the_api_and_logs_and_sighup_applies_changes() {
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(2);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let conf = home.join("local.conf");
    // Management from the namespace's own subnet only, on port 19994; JSON logs at WARN.
    let write_conf = |allow: &str, level: &str| {
        let text = format!(
            r#"{{"settings": {{"primaryPort": 19994, "allowManagementFrom": ["{allow}"], "logLevel": "{level}", "logFormat": "json", "portMappingEnabled": true}}}}"#
        );
        std::fs::write(&conf, text).unwrap();
    };
    write_conf("10.77.9.0/24", "warn");
    let log = tmp.path().join("ztd.log");
    let mut ztd = spawn_logging_to(&lab, &home, &[], &log);
    let api = api_of(&lab, &home, "127.0.0.1:19994", &mut ztd);
    let remote = format!("http://{}:19994/status", lab.ip(0));
    // Loopback is always admitted; namespace 1 (10.77.0.2) is not in the list.
    assert_eq!(
        status_from(&lab, 0, "http://127.0.0.1:19994/status", &api.token),
        "200"
    );
    assert_eq!(status_from(&lab, 1, &remote, &api.token), "403");

    // SIGHUP: the new list and level apply at once.
    write_conf(&format!("{}/32", lab.ip(1)), "info");
    let pid = ztd.pid().expect("running").to_string();
    run("kill", &["-HUP", &pid]);
    let admitted = poll(Duration::from_secs(20), || {
        (status_from(&lab, 1, &remote, &api.token) == "200").then_some(())
    });
    assert!(
        admitted.is_some(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // A file that no longer parses changes nothing and is reported with its line.
    std::fs::write(&conf, "{\n  \"settings\": {\"primaryPort\": \"x\"}\n}").unwrap();
    run("kill", &["-HUP", &pid]);
    let refused = poll(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap();
        text.contains("local.conf refused").then_some(text)
    })
    .expect("the refusal is logged");
    assert!(refused.contains("line 2"), "{refused}");
    assert_eq!(status_from(&lab, 1, &remote, &api.token), "200");

    // Every line is a JSON object; WARN and up before the reload, INFO after it.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let message = |v: &Value| {
        v["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let not_used = lines
        .iter()
        .position(|v| message(v).contains("settings.portMappingEnabled"));
    assert!(
        not_used.is_none(),
        "an INFO line was written at WARN: {text}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["level"] == json!("INFO")
                && message(v).contains("SIGHUP: local.conf read again")),
        "{text}"
    );
    assert!(
        !lines
            .iter()
            .any(|v| v["level"] == json!("INFO") && message(v) == "ztd started"),
        "{text}"
    );
}
