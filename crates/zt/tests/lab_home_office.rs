//! `zt lab` end to end: the manual's Home/Office controller example on this host, driven only
//! through `zt` commands (the lab types every step with the real console against a real ztd
//! per namespace), checked on the transcript it prints: Office's interface shows
//! ACCESS_DENIED, Home authorizes it, Office gets a 172.27.27.x/24 address and the route
//! 172.27.27.0/24, and a ping from Office to Home over ZeroTier gets 3 of 3 replies. Also:
//! Ctrl-C removes a half-built lab, and `zt lab down` removes leftovers.
//!
//! Needs root (network namespaces); otherwise each test says it is skipped.
mod common;
mod console_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One typed command of the transcript: the prompt's host, the line typed, the output.
#[derive(Debug)]
struct Step {
    host: String,
    line: String,
    output: String,
}

/// Split a transcript at its prompts `[admin@HOST] /zerotier> LINE`.
fn steps(transcript: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for text in transcript.lines() {
        let prompt = text
            .strip_prefix("[admin@")
            .and_then(|rest| rest.split_once("] /zerotier> "));
        match (prompt, steps.last_mut()) {
            (Some((host, line)), _) => steps.push(Step {
                host: host.to_string(),
                line: line.to_string(),
                output: String::new(),
            }),
            (None, Some(step)) if !text.starts_with("### ") => {
                step.output.push_str(text);
                step.output.push('\n');
            }
            _ => {}
        }
    }
    steps
}

fn find<'s>(steps: &'s [Step], host: &str, line_start: &str) -> Vec<&'s Step> {
    steps
        .iter()
        .filter(|s| s.host == host && s.line.starts_with(line_start))
        .collect()
}

/// Namespaces whose name starts with `prefix`.
fn namespaces_with(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// `zt lab ARGS…` with its output in files under `dir`.
fn start_lab(dir: &Path, args: &[&str]) -> Child {
    let stdout = std::fs::File::create(dir.join("stdout")).expect("stdout file");
    let stderr = std::fs::File::create(dir.join("stderr")).expect("stderr file");
    zt().arg("lab")
        .args(args)
        .env("ZTD", console_support::ztd_binary())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start zt lab")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[test]
fn home_authorizes_office_and_they_ping_over_zerotier() {
    skip_unless!(netns_available());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lab = start_lab(dir.path(), &["--step-timeout", "60"]);
    let pid = lab.id();
    let status = wait_deadline(&mut lab, Duration::from_secs(600));
    if status.is_none() {
        let _ = lab.kill();
        let _ = lab.wait();
    }
    let transcript = read(dir.path(), "stdout");
    let log = read(dir.path(), "stderr");
    let context = format!("transcript:\n{transcript}\nstderr:\n{log}");
    assert!(
        status.is_some_and(|s| s.success()),
        "zt lab failed ({status:?})\n{context}"
    );
    let steps = steps(&transcript);

    let denied = find(&steps, "office", "interface/print");
    assert!(
        denied.iter().any(|s| s.output.contains("ACCESS_DENIED")),
        "Office's interface never showed ACCESS_DENIED\n{context}"
    );
    // Home authorizes itself, then Office, by row number, as the manual does.
    let authorizations = find(&steps, "Home", "controller/member/set ");
    assert_eq!(authorizations.len(), 2, "{context}");
    assert!(authorizations
        .iter()
        .all(|s| s.line.ends_with(" authorized=yes")));
    let members = find(&steps, "Home", "controller/member/print");
    let last_members = members.last().expect("member print");
    assert!(
        last_members
            .output
            .lines()
            .filter(|l| l.contains("ZT-private"))
            .count()
            >= 2,
        "{context}"
    );

    let addresses = find(&steps, "office", "/ip/address/print");
    let office_address = addresses
        .last()
        .and_then(|s| {
            s.output
                .split_whitespace()
                .find(|w| w.starts_with("172.27.27.") && w.ends_with("/24"))
        })
        .unwrap_or_else(|| panic!("Office has no 172.27.27.x/24 address\n{context}"));
    let host: u8 = office_address
        .trim_start_matches("172.27.27.")
        .trim_end_matches("/24")
        .parse()
        .expect("address");
    assert!(
        (10..=20).contains(&host),
        "{office_address} is outside ip-range 172.27.27.10-172.27.27.20"
    );
    let routes = find(&steps, "office", "/ip/route/print");
    assert!(
        routes
            .last()
            .is_some_and(|s| s.output.contains("172.27.27.0/24")),
        "Office has no route 172.27.27.0/24\n{context}"
    );

    let pings = find(&steps, "office", "/ping 172.27.27.");
    assert_eq!(pings.len(), 1, "{context}");
    assert!(
        pings[0].output.contains("sent=3 received=3 packet-loss=0%"),
        "{context}"
    );

    assert!(
        namespaces_with(&format!("ztlab-{pid}-")).is_empty(),
        "the lab left namespaces behind"
    );
}

#[test]
fn a_real_zerotier_laptop_joins_and_answers_home() {
    skip_unless!(netns_available());
    let ztpeer = skip_unless!(ztpeer_path());
    let dir = tempfile::tempdir().expect("tempdir");
    let ztpeer = ztpeer.to_string_lossy().into_owned();
    let mut lab = start_lab(
        dir.path(),
        &["--with-ztpeer", "--ztpeer", &ztpeer, "--step-timeout", "60"],
    );
    let status = wait_deadline(&mut lab, Duration::from_secs(900));
    if status.is_none() {
        let _ = lab.kill();
        let _ = lab.wait();
    }
    let transcript = read(dir.path(), "stdout");
    let context = format!(
        "transcript:\n{transcript}\nstderr:\n{}",
        read(dir.path(), "stderr")
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "zt lab --with-ztpeer failed ({status:?})\n{context}"
    );
    let laptop = transcript
        .split("### Laptop")
        .nth(1)
        .unwrap_or_else(|| panic!("no laptop section\n{context}"));
    assert!(laptop.contains("status=OK ip4=172.27.27."), "{context}");
    // Home authorized three members: itself, Office and the laptop.
    let steps = steps(&transcript);
    assert_eq!(
        find(&steps, "Home", "controller/member/set ").len(),
        3,
        "{context}"
    );
    let pings = find(&steps, "Home", "/ping 172.27.27.");
    assert_eq!(pings.len(), 1, "{context}");
    assert!(
        pings[0].output.contains("sent=3 received=3 packet-loss=0%"),
        "{context}"
    );
}

#[test]
fn ctrl_c_removes_a_half_built_lab() {
    skip_unless!(netns_available());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lab = start_lab(dir.path(), &["--step-timeout", "120"]);
    let prefix = format!("ztlab-{}-", lab.id());
    // Wait until the namespaces and the first daemon exist, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !read(dir.path(), "stderr").contains("starting ztd") {
        assert!(
            Instant::now() < deadline && lab.try_wait().ok().flatten().is_none(),
            "zt lab did not start its daemons: {}",
            read(dir.path(), "stderr")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!namespaces_with(&prefix).is_empty());
    let pid = lab.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = wait_deadline(&mut lab, Duration::from_secs(60));
    if status.is_none() {
        let _ = lab.kill();
    }
    let log = read(dir.path(), "stderr");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{log}");
    assert!(log.contains("interrupted (Ctrl-C)"), "{log}");
    assert!(namespaces_with(&prefix).is_empty(), "{log}");
    assert!(!std::env::temp_dir().join(format!("ztlab-{pid}")).exists());
}

#[test]
fn down_removes_leftover_labs() {
    skip_unless!(netns_available());
    // A lab whose zt is gone: no process has this id (above the kernel's pid_max limit).
    let leftover = "ztlab-4194305-home";
    let state = std::env::temp_dir().join("ztlab-4194305");
    let _cleanup = Leftover {
        ns: leftover,
        state: state.clone(),
    };
    std::fs::create_dir_all(&state).expect("state dir");
    let made = Command::new("ip")
        .args(["netns", "add", leftover])
        .status()
        .expect("ip");
    assert!(made.success());
    let out = run_with_deadline(
        {
            let mut cmd = zt();
            cmd.args(["lab", "down"]);
            cmd
        },
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("removed namespace {leftover}")),
        "{text}"
    );
    assert!(namespaces_with(leftover).is_empty());
    assert!(!state.exists());
}

/// Removes the fake leftover even when the test fails.
struct Leftover {
    ns: &'static str,
    state: std::path::PathBuf,
}

impl Drop for Leftover {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", self.ns])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
