//! zt-testnet: the test harness for anything that needs real networking — throw-away network
//! namespace labs, the real ZeroTier node (`ztpeer`, see `../shared/interop/README.md`), and
//! child processes with deadlines. Used only by tests (a dev-dependency); never by the product.
//!
//! Network rules it enforces: every node runs in a namespace the test created, named uniquely
//! (`zt-<pid>-<n>-…`), attached to a private bridge namespace with no default route, and torn
//! down in `Drop` (also on panic). Every wait has a deadline. A test that cannot run here
//! (not root, no `ip netns`, no `ztpeer`) prints why and returns without failing.
//!
//! ```no_run
//! use std::time::Duration;
//! use zt_testnet::{event_of, skip_unless, Lab};
//!
//! fn a_real_node_starts() {
//!     let ztpeer = skip_unless!(zt_testnet::ztpeer_path());
//!     skip_unless!(zt_testnet::netns_available());
//!     let lab = Lab::new(2); // node i is 10.77.0.(i+1)/24 in namespace lab.ns(i)
//!     let mut node = lab.spawn(0, &ztpeer, &["run", "--home", "/tmp/h", "--roots", "planet"]);
//!     let up = node.wait_line(Duration::from_secs(20), |l| event_of(l).as_deref() == Some("online"));
//!     assert!(up.is_some(), "{}", node.report());
//! } // the node is killed, then the namespaces are deleted
//! ```
#![deny(unsafe_code)]

pub mod nat;
pub mod postgres;

pub use nat::{NatKind, NatLab};

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// `skip_unless!(check)`: the `Ok` value of `check`, or else return from the test early,
/// printing `SKIPPED <test>: <reason>`. `check` is a `Result<T, String>` such as
/// [`netns_available`] or [`ztpeer_path`].
#[macro_export]
macro_rules! skip_unless {
    ($check:expr) => {
        match $check {
            Ok(v) => v,
            Err(reason) => {
                // Straight to the process's stderr, past libtest's output capture, so the skip
                // shows in a normal run. libtest names each test's thread after the test.
                let thread = std::thread::current();
                let name = thread.name().unwrap_or(module_path!());
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("SKIPPED {name}: {reason}\n").as_bytes(),
                );
                return;
            }
        }
    };
}

/// The workspace root (two levels above this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/interop`, where `vectors.json` and the captures are.
pub fn interop_dir() -> PathBuf {
    workspace_root().join("../shared/interop")
}

/// Path of `ztpeer`: `$ZTPEER`, else `<workspace>/../shared/interop/ztpeer`; Err if absent.
pub fn ztpeer_path() -> Result<PathBuf, String> {
    let path = std::env::var_os("ZTPEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| interop_dir().join("ztpeer"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "ztpeer not found at {} (set ZTPEER)",
            path.display()
        ))
    }
}

/// A `ztpeer` command (run in the root namespace: only for subcommands that do no networking).
pub fn ztpeer(args: &[&str]) -> Result<Command, String> {
    let mut cmd = Command::new(ztpeer_path()?);
    cmd.args(args);
    Ok(cmd)
}

/// Spawn `cmd` with piped output and wait at most `limit`; kills it if the deadline passes.
pub fn run_with_deadline(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut child = KillOnDrop(Some(child));
    let stdout = drain(child.0.as_mut().and_then(|c| c.stdout.take()));
    let stderr = drain(child.0.as_mut().and_then(|c| c.stderr.take()));
    let status = wait_deadline(child.0.as_mut().expect("child"), limit)
        .unwrap_or_else(|| panic!("{cmd:?} did not finish within {limit:?}"));
    child.0 = None;
    Output {
        status,
        stdout: join_drain(stdout),
        stderr: join_drain(stderr),
    }
}

fn drain<R: std::io::Read + Send + 'static>(r: Option<R>) -> Option<thread::JoinHandle<Vec<u8>>> {
    r.map(|mut r| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    })
}

fn join_drain(h: Option<thread::JoinHandle<Vec<u8>>>) -> Vec<u8> {
    h.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Poll `child` until it exits or `limit` passes.
pub fn wait_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

struct KillOnDrop(Option<Child>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether this machine can build namespace labs; Err says why not.
pub fn netns_available() -> Result<(), String> {
    if !is_root() {
        return Err("needs root for network namespaces".into());
    }
    let probe = Command::new("ip").args(["netns", "list"]).output();
    match probe {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`ip netns` unavailable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("`ip` (iproute2) unavailable: {e}")),
    }
}

fn is_root() -> bool {
    // The effective uid, from /proc rather than libc so the crate needs no unsafe code.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

thread_local! {
    static ISOLATED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Moves the calling thread into a network namespace of its own that has only a loopback
/// interface (up) and no route anywhere; every process and thread it starts afterwards is
/// in there too, so a daemon the test starts listens on that loopback and nowhere else. The
/// other tests' threads are not affected. Idempotent per thread; the namespace goes away
/// with the last thread and process in it. Err (to skip the test) without root.
pub fn isolate_this_thread() -> Result<(), String> {
    if ISOLATED.get() {
        return Ok(());
    }
    netns_available()?;
    // SAFETY: unshare(2) takes a flag and touches no memory of ours; with CLONE_NEWNET it
    // only changes which network namespace this thread belongs to.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!(
            "cannot make a network namespace: {}",
            std::io::Error::last_os_error()
        ));
    }
    // `ip`, started from this thread, runs in the new namespace.
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output();
    match up {
        Ok(out) if out.status.success() => {
            ISOLATED.set(true);
            Ok(())
        }
        Ok(out) => Err(format!(
            "ip link set lo up: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("ip: {e}")),
    }
}

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A namespace lab: one bridge namespace and `n` node namespaces on 10.77.0.0/24
/// (node i has 10.77.0.(i+1)), no default route anywhere, removed on drop.
pub struct Lab {
    pub(crate) prefix: String,
    pub(crate) bridge: String,
    nodes: Vec<String>,
    /// Each node's IPv4 address (on the bridge, or behind a NAT in a [`NatLab`]).
    addresses: Vec<Ipv4Addr>,
    /// Namespaces that run no node (a [`NatLab`]'s gateways), deleted with the rest.
    pub(crate) helpers: Vec<String>,
}

impl Lab {
    /// A lab with its bridge namespace and no node yet; the bridge's ports are added later.
    pub(crate) fn bridge_only() -> Lab {
        let prefix = format!(
            "zt-{}-{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab {
            bridge: format!("{prefix}-br"),
            prefix,
            nodes: Vec::new(),
            addresses: Vec::new(),
            helpers: Vec::new(),
        };
        // From here on, Drop removes whatever was created even if a step below panics.
        ip(&["netns", "add", &lab.bridge]);
        ip(&["-n", &lab.bridge, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lab.bridge, "link", "set", "br0", "up"]);
        lab
    }

    /// Creates (and records, for Drop) the namespace of the next node, which has `address`.
    pub(crate) fn add_node_namespace(&mut self, address: Ipv4Addr) -> String {
        let ns = format!("{}-n{}", self.prefix, self.nodes.len());
        ip(&["netns", "add", &ns]);
        self.nodes.push(ns.clone());
        self.addresses.push(address);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// Build a lab of `n` node namespaces (n ≤ 200).
    pub fn new(n: usize) -> Lab {
        assert!((1..=200).contains(&n));
        let mut lab = Lab::bridge_only();
        for i in 0..n {
            let ns = lab.add_node_namespace(Ipv4Addr::new(10, 77, 0, (i + 1) as u8));
            let port = format!("v{i}");
            ip(&[
                "-n",
                &lab.bridge,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
            ]);
            ip(&[
                "-n",
                &lab.bridge,
                "link",
                "set",
                &port,
                "master",
                "br0",
                "up",
            ]);
            let addr = format!("{}/24", lab.ip(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    pub fn ns(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    /// Node `i`'s own IPv4 address (in a [`NatLab`], the one behind its NAT).
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        self.addresses[i]
    }

    /// A command that runs `program args…` inside node `i`'s namespace.
    pub fn command(&self, i: usize, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(i)])
            .arg(program)
            .args(args);
        cmd
    }

    /// Run `program args…` in node `i`'s namespace to completion, within `limit`.
    pub fn run(&self, i: usize, program: &Path, args: &[&str], limit: Duration) -> Output {
        run_with_deadline(self.command(i, program, args), limit)
    }

    /// Moves the calling thread into node `i`'s namespace, so the sockets it opens afterwards
    /// are that node's (a traffic generator in the test process itself). Use a thread of its
    /// own: the move is for good.
    pub fn enter(&self, i: usize) -> Result<(), String> {
        let path = format!("/run/netns/{}", self.ns(i));
        let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        // SAFETY: setns(2) reads the namespace file descriptor we hold open for the call and
        // changes only which network namespace this thread belongs to.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Start a process in node `i`'s namespace; its stdout arrives line by line.
    pub fn spawn(&self, i: usize, program: &Path, args: &[&str]) -> NsProcess {
        NsProcess::spawn(self.command(i, program, args))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and with it the peer in the bridge.
        let helpers = self.helpers.iter();
        for ns in self
            .nodes
            .iter()
            .chain(helpers)
            .chain(std::iter::once(&self.bridge))
        {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Run `ip ARGS…` (iproute2); Err says which command failed and what `ip` printed.
pub fn try_ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Run `ip ARGS…` in a lab being built; a failure panics with [`try_ip`]'s reason (the lab's
/// `Drop` removes what was created).
pub fn ip(args: &[&str]) {
    if let Err(why) = try_ip(args) {
        panic!("{why}");
    }
}

/// A process started in a namespace; killed on drop. Its stdout is read by a thread into a
/// channel of lines, its stderr kept for failure messages.
pub struct NsProcess {
    child: Option<Child>,
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
    seen: Vec<String>,
}

impl NsProcess {
    pub fn spawn(mut cmd: Command) -> NsProcess {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr = drain(child.stderr.take());
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NsProcess {
            child: Some(child),
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The process id while it runs (`ip netns exec` execs the program: the same process).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The next stdout line for which `pred` holds, waiting at most `limit`.
    pub fn wait_line(
        &mut self,
        limit: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Wait for exit within `limit`; then collect the remaining stdout lines.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = wait_deadline(self.child.as_mut()?, limit)?;
        self.child = None;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        Some(status)
    }

    /// Every stdout line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Kill the process (if running) and describe what it printed, for failure messages.
    pub fn report(&mut self) -> String {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
            self.child = None;
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        let stderr = String::from_utf8_lossy(&join_drain(self.stderr.take())).into_owned();
        format!("stdout:\n{}\nstderr:\n{}", self.seen.join("\n"), stderr)
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parse a JSON line; None if it is not JSON.
pub fn json_line(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str(line).ok()
}

/// A JSON line's `event` field.
pub fn event_of(line: &str) -> Option<String> {
    json_line(line).and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_string))
}

#[cfg(test)]
mod isolation_tests {
    use super::*;

    fn namespace_of(path: &str) -> String {
        std::fs::read_link(path)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn an_isolated_thread_and_its_children_share_a_new_namespace() {
        if let Err(why) = netns_available() {
            eprintln!("skipped: {why}");
            return;
        }
        let before = namespace_of("/proc/thread-self/ns/net");
        isolate_this_thread().unwrap();
        let after = namespace_of("/proc/thread-self/ns/net");
        assert!(!after.is_empty() && after != before, "{before} → {after}");
        isolate_this_thread().unwrap();
        assert_eq!(
            namespace_of("/proc/thread-self/ns/net"),
            after,
            "idempotent"
        );
        let child = Command::new("readlink")
            .arg("/proc/self/ns/net")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&child.stdout).trim(), after);
        // Only loopback, up; no route anywhere.
        let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
        let links = String::from_utf8_lossy(&links.stdout).into_owned();
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.contains("lo:") && links.contains("UP"), "{links}");
        let routes = Command::new("ip")
            .args(["-4", "route", "get", "192.0.2.1"])
            .output()
            .unwrap();
        assert!(!routes.status.success(), "a route out: {routes:?}");
        // Another thread of the process is not moved.
        let other = thread::spawn(|| namespace_of("/proc/self/ns/net"))
            .join()
            .unwrap();
        assert_eq!(other, namespace_of("/proc/self/ns/net"));
    }
}
