//! End-to-end tests of the `zt` console against a real `ztd`: each test starts the daemon on a
//! temporary home, a free loopback TCP port for its API and free UDP ports for its instance,
//! then runs `zt` as a user would. Only loopback traffic; every wait has a deadline.
//!
//! `ztd` is found (or built once) by [`console_support::ztd_binary`].
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use zt_testnet::skip_unless;

mod console_support;
use console_support::ztd_binary;

const START_DEADLINE: Duration = Duration::from_secs(30);
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// One `zt` run; enabling an instance may generate its identity first.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port free on loopback whose TCP twin is free too (ztd binds both for an instance).
fn free_udp_port() -> u16 {
    loop {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running daemon, stopped (SIGTERM, then SIGKILL) when dropped.
struct Ztd {
    child: Option<Child>,
    home: PathBuf,
    api: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Ztd {
    fn start() -> Ztd {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let api = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let log = fs::File::create(dir.path().join("ztd.log")).unwrap();
        let child = Command::new(ztd_binary())
            .env("ZTD_NO_DEFAULT_PLANET", "1")
            .arg("--home")
            .arg(&home)
            .arg("--api-listen")
            .arg(api.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ztd");
        let mut ztd = Ztd {
            child: Some(child),
            home,
            api,
            _dir: dir,
        };
        let deadline = Instant::now() + START_DEADLINE;
        while TcpStream::connect(api).is_err() {
            if let Some(status) = ztd.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ztd exited early with {status}: {}", ztd.log());
            }
            assert!(
                Instant::now() < deadline,
                "ztd did not listen: {}",
                ztd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ztd
    }

    fn token(&self) -> String {
        fs::read_to_string(self.home.join("authtoken.secret")).expect("ztd wrote its token")
    }

    fn log(&self) -> String {
        fs::read_to_string(self._dir.path().join("ztd.log")).unwrap_or_default()
    }

    /// `zt` with this daemon's home and API, and HOME in the temp dir (history file).
    fn zt(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_zt"));
        command
            .arg("--home")
            .arg(&self.home)
            .arg("--api")
            .arg(self.api.to_string())
            .env("HOME", self._dir.path())
            .env_remove("ZT_HOME")
            .env_remove("ZT_API");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_deadline(self.zt().args(args), None)
    }
}

impl Drop for Ztd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signalling our own child process by its pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Run to completion, feeding `stdin` if given; killed and failed after [`RUN_DEADLINE`].
fn run_with_deadline(command: &mut Command, stdin: Option<&str>) -> Output {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn zt");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done_tx.send(());
        output
    });
    if done_rx.recv_timeout(RUN_DEADLINE).is_err() {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: killing our own child process that overran its deadline.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        panic!("zt did not finish within {RUN_DEADLINE:?}");
    }
    waiter.join().unwrap().expect("wait for zt")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "zt failed with {}: stdout {:?} stderr {:?}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[track_caller]
fn assert_fails(output: &Output, code: i32) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout {:?} stderr {:?}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stderr)
}

#[test]
fn print_set_enable_and_print_the_identity() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    let before = assert_ok(&ztd.run(&["/zerotier/print"]));
    assert!(before.starts_with("Flags: X - DISABLED"), "{before}");
    assert!(before.contains("Columns: NAME, PORT"), "{before}");
    let row = before.lines().find(|l| l.contains("zt1")).expect(&before);
    assert!(
        row.starts_with("0 X"),
        "the default instance is disabled: {before}"
    );
    assert!(row.contains("9993"), "{before}");

    let port = free_udp_port();
    let set = ztd.run(&["/zerotier/set", "zt1", &format!("port={port}")]);
    assert_eq!(assert_ok(&set), "");
    let enable = ztd.run(&["/zerotier/enable", "zt1"]);
    assert_eq!(assert_ok(&enable), "", "{}", ztd.log());

    let after = assert_ok(&ztd.run(&["/zerotier/print"]));
    let public = fs::read_to_string(ztd.home.join("zt1/identity.public"))
        .expect("enable generated the identity");
    let public = public.trim();
    let row = after.lines().find(|l| l.contains("zt1")).expect(&after);
    assert!(row.starts_with("0 "), "{after}");
    assert!(!row.starts_with("0 X"), "enabled now: {after}");
    assert!(row.contains(&port.to_string()), "{after}");
    // The table cuts long values; the identity's address and key start are shown.
    assert!(row.contains(&public[..20]), "{public} in {after}");
    assert_eq!(
        assert_ok(&ztd.run(&[":put", "[/zerotier/get", "zt1", "identity.public]"])).trim(),
        public
    );
    // zerotier-cli's `info` answers for the default instance.
    let address = &public[..10];
    let info = assert_ok(&ztd.run(&["info"]));
    let words: Vec<&str> = info.split_whitespace().collect();
    assert_eq!(words[..3], ["200", "info", address], "{info}");
    assert!(["ONLINE", "OFFLINE"].contains(&words[4]), "{info}");
    let json: serde_json::Value =
        serde_json::from_slice(&assert_ok(&ztd.run(&["info", "-j"])).into_bytes()).unwrap();
    assert_eq!(json["address"], address);
    assert_eq!(json["publicIdentity"], public);
    // The instance really listens on the port that was set.
    assert!(
        UdpSocket::bind(("127.0.0.1", port)).is_err()
            || UdpSocket::bind(("0.0.0.0", port)).is_err(),
        "nothing bound UDP {port}"
    );
}

#[test]
fn refused_commands_print_routeros_errors_and_exit_1() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    let stderr = assert_fails(&ztd.run(&["/zerotier/nosuch"]), 1);
    assert_eq!(stderr, "bad command name nosuch (line 1 column 11)\n");
    let stderr = assert_fails(&ztd.run(&["/zerotier/enable", "zt9"]), 1);
    assert_eq!(stderr, "no such item\n");
    let stderr = assert_fails(&ztd.run(&["/zerotier/set", "zt1", "port=70000"]), 1);
    assert!(stderr.contains("port"), "{stderr}");
    // Usage errors are 2.
    assert_fails(&ztd.run(&["-f", "x", "/zerotier/print"]), 2);
    assert_fails(&ztd.run(&["join", "not-a-network"]), 2);
}

#[test]
fn missing_or_wrong_token_and_absent_daemon_are_explained() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    let elsewhere = tempfile::tempdir().unwrap();

    let no_token = Command::new(env!("CARGO_BIN_EXE_zt"))
        .env_remove("ZT_HOME")
        .env_remove("ZT_API")
        .arg("--home")
        .arg(elsewhere.path())
        .arg("--api")
        .arg(ztd.api.to_string())
        .arg("/zerotier/print")
        .output()
        .unwrap();
    let stderr = assert_fails(&no_token, 1);
    assert_eq!(
        stderr,
        format!(
            "zt: cannot read the API token {}/authtoken.secret: No such file or directory; \
             give ztd's home with --home or ZT_HOME\n",
            elsewhere.path().display()
        )
    );

    fs::write(elsewhere.path().join("authtoken.secret"), "wrongtoken\n").unwrap();
    let wrong = Command::new(env!("CARGO_BIN_EXE_zt"))
        .env("ZT_HOME", elsewhere.path())
        .env("ZT_API", ztd.api.to_string())
        .arg("/zerotier/print")
        .output()
        .unwrap();
    assert_eq!(
        assert_fails(&wrong, 1),
        format!(
            "zt: ztd at {} refused the API token from {}/authtoken.secret (401 Unauthorized)\n",
            ztd.api,
            elsewhere.path().display()
        )
    );

    // Without --api or ZT_API, the port recorded in the home's zerotier-one.port is used
    // (on loopback), as zerotier-cli finds zerotier-one.
    fs::write(elsewhere.path().join("authtoken.secret"), ztd.token()).unwrap();
    fs::write(
        elsewhere.path().join("zerotier-one.port"),
        format!("{}\n", ztd.api.port()),
    )
    .unwrap();
    let by_port_file = Command::new(env!("CARGO_BIN_EXE_zt"))
        .env("ZT_HOME", elsewhere.path())
        .env_remove("ZT_API")
        .args(["/zerotier/print", "count-only"])
        .output()
        .unwrap();
    assert_eq!(assert_ok(&by_port_file), "1\n");
    fs::write(elsewhere.path().join("zerotier-one.port"), "ninety\n").unwrap();
    let bad_port_file = Command::new(env!("CARGO_BIN_EXE_zt"))
        .env("ZT_HOME", elsewhere.path())
        .env_remove("ZT_API")
        .arg("info")
        .output()
        .unwrap();
    assert_eq!(
        assert_fails(&bad_port_file, 1),
        format!(
            "zt: {}/zerotier-one.port does not hold a port number\n",
            elsewhere.path().display()
        )
    );

    let closed = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    for args in [&["/zerotier/print"][..], &["info"][..], &[][..]] {
        let output = run_with_deadline(
            Command::new(env!("CARGO_BIN_EXE_zt"))
                .arg("--home")
                .arg(&ztd.home)
                .arg("--api")
                .arg(closed.to_string())
                .args(args),
            Some(""),
        );
        assert_eq!(
            assert_fails(&output, 1),
            format!("zt: cannot reach ztd at {closed}: connection refused\n"),
            "zt {args:?}"
        );
    }
}

#[test]
fn scripts_run_with_comments_and_continuations() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("setup.rsc");
    fs::write(
        &script,
        "# set up zt1\n/zerotier\nset zt1 \\\n    comment=\"from a script\"\n\
         :put [get zt1 comment]\nprint count-only\n",
    )
    .unwrap();
    let output = ztd.run(&["-f", script.to_str().unwrap()]);
    assert_eq!(assert_ok(&output), "from a script\n1\n");

    // The first failing command stops the script and names its line; what ran before it
    // keeps its output and is named.
    fs::write(&script, "/zerotier/print count-only\n\n/zerotier/bogus\n").unwrap();
    let output = ztd.run(&["-f", script.to_str().unwrap()]);
    assert_eq!(text(&output.stdout), "1\n");
    let stderr = assert_fails(&output, 1);
    assert_eq!(
        stderr,
        "bad command name bogus (line 3 column 11)\n\
         zt: the script stopped at line 3; the commands of line 1 ran before it and took \
         effect; nothing after it ran\n"
    );
    // A runtime refusal gets its line too.
    fs::write(
        &script,
        "/zerotier\nset zt1 comment=first\n:put [get zt1 comment]\nset zt9 comment=x\nset zt1 comment=never\n",
    )
    .unwrap();
    let output = ztd.run(&["-f", script.to_str().unwrap()]);
    assert_eq!(text(&output.stdout), "first\n");
    let stderr = assert_fails(&output, 1);
    assert_eq!(
        stderr,
        "no such item (line 4)\n\
         zt: the script stopped at line 4; the commands of lines 1-3 ran before it and took \
         effect; nothing after it ran\n"
    );
    assert_eq!(
        assert_ok(&ztd.run(&[":put", "[/zerotier/get", "zt1", "comment]"])),
        "first\n"
    );
    fs::write(&script, "/zerotier\nset zt1 comment=\"from a script\"\n").unwrap();
    assert_ok(&ztd.run(&["-f", script.to_str().unwrap()]));

    // `-f -` reads the script from standard input.
    let output = run_with_deadline(
        ztd.zt().args(["-f", "-"]),
        Some(":put [/zerotier/get zt1 comment]\n"),
    );
    assert_eq!(assert_ok(&output), "from a script\n");
}

#[test]
fn interactive_session_reads_piped_lines_without_prompt_or_history() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    let input = "zerotier\n\
                 print count-only\n\
                 nosuch\n\
                 set zt1 \\\n    comment=\"typed in\"\n\
                 :put [get zt1 comment]\n\
                 /quit\n\
                 :put \"not reached\"\n";
    let output = run_with_deadline(&mut ztd.zt(), Some(input));
    // Errors are shown and the session goes on; rustyline prints no prompt on a pipe.
    assert_eq!(assert_ok(&output), "1\ntyped in\n");
    assert_eq!(
        text(&output.stderr),
        "bad command name nosuch (line 1 column 1)\n"
    );
    assert!(
        !ztd._dir.path().join(".zt_history").exists(),
        "piped input is not history"
    );
}

#[test]
fn print_interval_repeats_until_ctrl_c() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    let mut child = ztd
        .zt()
        .args(["/zerotier/print", "count-only", "interval=200ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    for round in 0..3 {
        let line = line_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("round {round} of the repeating print did not come"));
        assert_eq!(line.unwrap(), "1");
    }
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: interrupting our own child process, as Ctrl-C would.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + STOP_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("zt did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "Ctrl-C ends a repeating print normally: {status}"
    );
}

#[test]
fn zerotier_cli_commands_speak_the_service_api() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    // With the default instance stopped, the service API refuses with zerotier-cli's refusal
    // shape `<status> <command> <body>` and exit 1.
    let refused = ztd.run(&["listpeers"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stdout).starts_with("503 listpeers "),
        "{}",
        text(&refused.stdout)
    );

    // Running (with no planet, so it sends nothing), every command answers like zerotier-cli.
    let port = free_udp_port();
    assert_ok(&ztd.run(&["/zerotier/set", "zt1", &format!("port={port}")]));
    assert_ok(&ztd.run(&["/zerotier/enable", "zt1"]));
    for (args, success) in [
        (
            &["listnetworks"][..],
            "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>\n",
        ),
        (
            &["listpeers"][..],
            "200 listpeers <ztaddr> <path> <latency> <version> <role>\n",
        ),
        (&["join", "51479cea31ccae5c"][..], "200 join OK\n"),
        (&["leave", "51479cea31ccae5c"][..], "200 leave OK\n"),
    ] {
        let output = ztd.run(args);
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "zt {args:?}: {stdout}{}",
            ztd.log()
        );
        assert!(stdout.starts_with(success), "zt {args:?}: {stdout}");
    }
    let output = ztd.run(&["-j", "listpeers"]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json.is_array(), "{json}");
}

#[test]
fn export_show_sensitive_restores_the_same_node_on_a_wiped_daemon() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let original = Ztd::start();
    let port = free_udp_port();
    assert_ok(&original.run(&["/zerotier/set", "zt1", &format!("port={port}")]));
    assert_ok(&original.run(&["/zerotier/enable", "zt1"]));
    assert_ok(&original.run(&[
        "/zerotier/controller/add",
        "name=office",
        "instance=zt1",
        "ip-range=172.27.27.10-172.27.27.20",
        "routes=172.27.27.0/24",
    ]));
    let secret = fs::read_to_string(original.home.join("zt1/identity.secret")).unwrap();
    let secret = secret.trim();

    // A plain export and print keep the secret to themselves.
    let plain = assert_ok(&original.run(&["/export"]));
    assert!(!plain.contains(&secret[11..40]), "{plain}");
    assert!(!plain.contains("identity="), "{plain}");
    let backup = assert_ok(&original.run(&["/export", "show-sensitive"]));
    let joined = backup.replace("\\\n    ", "");
    assert!(
        joined.contains(&format!("identity={secret} ")),
        "the export carries the secret identity: {backup}"
    );
    drop(original);

    let restored = Ztd::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("backup.rsc");
    fs::write(&script, &backup).unwrap();
    assert_ok(&restored.run(&["-f", script.to_str().unwrap()]));
    assert_eq!(
        fs::read_to_string(restored.home.join("zt1/identity.secret"))
            .unwrap()
            .trim(),
        secret,
        "the same node: same identity"
    );
    let again = assert_ok(&restored.run(&["/export", "show-sensitive"]));
    let body = |export: &str| -> String {
        export
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        body(&again),
        body(&backup),
        "same instance, same controller network IDs"
    );
    assert!(
        joined.contains(&format!("network={}", &secret[..10])),
        "the network ID carries the restored address: {backup}"
    );

    // An identity whose private key is not the public key's is refused, and says why.
    let mut foreign = secret.to_string();
    let last = foreign.pop().unwrap();
    foreign.push(if last == '0' { '1' } else { '0' });
    let stderr = assert_fails(
        &restored.run(&["/zerotier/set", "zt1", &format!("identity={foreign}")]),
        1,
    );
    assert_eq!(
        stderr,
        "invalid value for argument identity: the private key does not belong to the public key\n"
    );
    assert!(
        !restored.log().contains(&secret[11..]),
        "ztd never logs the key"
    );
}

#[test]
fn ping_is_run_by_ztd_and_printed_as_routeros_prints_it() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    for (address, count) in [("127.0.0.1", 3), ("::1", 2)] {
        let out = assert_ok(&ztd.run(&[
            "/ping",
            address,
            &format!("count={count}"),
            "interval=100ms",
        ]));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0], "  SEQ HOST                                     SIZE TTL TIME       STATUS",
            "{out}"
        );
        assert_eq!(lines.len(), count + 2, "{out}");
        for (seq, row) in lines[1..=count].iter().enumerate() {
            let words: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(words[..4], [&seq.to_string(), address, "56", "64"], "{out}");
            assert_eq!(words.len(), 5, "no STATUS on a reply: {out}");
        }
        assert!(
            lines[count + 1].starts_with(&format!(
                "    sent={count} received={count} packet-loss=0% min-rtt="
            )),
            "{out}"
        );
    }
    // No route to it inside the test's namespace: every request times out.
    let out = assert_ok(&ztd.run(&["/ping", "10.255.255.1", "count=2", "interval=100ms"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].starts_with("    0 10.255.255.1 ") && lines[1].ends_with(" timeout"),
        "{out}"
    );
    assert!(lines[2].ends_with(" timeout"), "{out}");
    assert_eq!(lines[3], "    sent=2 received=0 packet-loss=100%", "{out}");
    // RouterOS's argument checks.
    let stderr = assert_fails(&ztd.run(&["/ping", "127.0.0.1", "count=0"]), 1);
    assert_eq!(stderr, "value of count is out of range (1 .. 100)\n");
}

#[test]
fn system_identity_names_the_router_and_export_carries_it() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    assert_eq!(
        assert_ok(&ztd.run(&["/system/identity/print"])),
        "  name: MikroTik\n"
    );
    assert_ok(&ztd.run(&["/system/identity/set", "name=Home"]));
    assert_eq!(
        assert_ok(&ztd.run(&["/system/identity/print"])),
        "  name: Home\n"
    );
    assert!(
        ztd.home.join("system-identity.json").is_file(),
        "kept in the state directory"
    );
    let export = assert_ok(&ztd.run(&["/export"]));
    let first = export.lines().next().unwrap_or_default();
    let words: Vec<&str> = first.split(' ').collect();
    assert_eq!(words.len(), 7, "{first}");
    assert_eq!(words[0], "#");
    assert_eq!(words[1].len(), "2026-12-06".len(), "{first}");
    assert_eq!(words[2].len(), "23:01:02".len(), "{first}");
    assert_eq!(words[3..6], ["by", "RouterOS-compatible", "zt"], "{first}");
    assert!(
        export.contains("\n/system identity\nset name=Home\n"),
        "{export}"
    );
    let stderr = assert_fails(&ztd.run(&["/system/identity/set", "name="]), 1);
    assert!(
        stderr.starts_with("invalid value for argument name"),
        "{stderr}"
    );
}

#[test]
fn export_file_writes_the_script_among_the_routers_files() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let ztd = Ztd::start();
    assert_ok(&ztd.run(&["/zerotier/set", "zt1", "comment=backed up"]));
    assert_eq!(assert_ok(&ztd.run(&["/export", "file=backup"])), "");
    let path = ztd.home.join("files/backup.rsc");
    let written = fs::read_to_string(&path).expect("export file= wrote <home>/files/backup.rsc");
    assert!(written.starts_with("# "), "{written}");
    assert!(written.contains("comment=\"backed up\""), "{written}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stderr = assert_fails(&ztd.run(&["/export", "file=../escape"]), 1);
    assert_eq!(stderr, "invalid value for argument name\n");
}
