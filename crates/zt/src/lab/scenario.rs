//! The manual's Home/Office example, step by step, through the real `zt` console.
//!
//! Each node is a `ztd` in its own namespace with its own home; each step is one `zt`
//! command line typed at `/zerotier` and printed with its prompt and output. A step that has
//! to wait for the network (a status, an address) repeats its command every half second
//! until the output shows what the manual shows, and prints that final output; when its
//! deadline passes the lab fails naming the step and showing the last output.
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::netns::{self, Namespaces};
use super::process::{self, interrupted, Background};
use super::{in_namespace, work_dir_for, Tools, UpOptions};

/// The controller example's network, as the manual types it.
const NETWORK_NAME: &str = "ZT-private";
const IP_RANGE: &str = "172.27.27.10-172.27.27.20";
const ROUTE: &str = "172.27.27.0/24";
const ZT_PREFIX: &str = "172.27.27.";
/// The instance every node enables (RouterOS's default) and its UDP port.
const INSTANCE: &str = "zt1";
const ZT_PORT: u16 = 9993;
/// How long one console command may take (it is one HTTP request to a local ztd).
const COMMAND_LIMIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(500);
const PING_COUNT: u32 = 3;

/// One lab node: a namespace, a ztd home and (once started) its daemon.
struct Node {
    /// As the prompt shows it (`[admin@Home]`).
    label: &'static str,
    ns: String,
    home: PathBuf,
    underlay: Ipv4Addr,
    daemon: Option<Background>,
}

impl Node {
    fn instance_dir(&self) -> PathBuf {
        self.home.join(INSTANCE)
    }

    /// The ZeroTier address, from the identity ztd (or idtool) stored.
    fn address(&self) -> Option<String> {
        let public = std::fs::read_to_string(self.instance_dir().join("identity.public")).ok()?;
        let address = public.split(':').next()?.trim();
        (address.len() == 10).then(|| address.to_string())
    }
}

/// Everything the lab built; fields drop in order (processes, then namespaces, then files).
struct Lab<'t> {
    tools: &'t Tools,
    step_limit: Duration,
    nodes: Vec<Node>,
    laptop: Option<Background>,
    namespaces: Namespaces,
    work: WorkDir,
}

/// The lab's state directory, removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
    /// The run failed: the daemons' logs stay for reading (the rest goes).
    keep_logs: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if !self.keep_logs {
            let _ = std::fs::remove_dir_all(&self.path);
            return;
        }
        for entry in std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else if path.extension().is_none_or(|e| e != "log") {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

const ROOT: usize = 0;
const HOME: usize = 1;
const OFFICE: usize = 2;

pub(crate) fn run(tools: &Tools, options: &UpOptions, step_limit: Duration) -> Result<(), String> {
    let pid = std::process::id();
    let prefix = Namespaces::prefix_for(pid);
    let work = WorkDir {
        path: work_dir_for(pid),
        keep: options.keep,
        keep_logs: false,
    };
    make_private_dir(&work.path)?;
    let mut names = vec!["root", "home", "office"];
    if tools.ztpeer.is_some() {
        names.push("laptop");
    }
    progress(&format!(
        "building namespaces {prefix}{{hub,{}}} on 10.99.0.0/24 (no default route)",
        names.join(",")
    ));
    let mut namespaces = Namespaces::create(&prefix, &names)?;
    if options.keep {
        namespaces.keep();
    }
    let labels = ["Root", "Home", "office"];
    let nodes = labels
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(i, (label, name))| Node {
            label,
            ns: namespaces.ns(name).unwrap_or_default().to_string(),
            home: work.path.join(name),
            underlay: netns::node_address(i),
            daemon: None,
        })
        .collect();
    let mut lab = Lab {
        tools,
        step_limit,
        nodes,
        laptop: None,
        namespaces,
        work,
    };
    let result = lab.play();
    if options.keep {
        lab.keep_running();
        return result;
    }
    match result {
        Ok(()) => {
            progress("removing the lab (daemons, namespaces, state)");
            Ok(())
        }
        Err(message) if process::interrupted() => {
            progress("removing the lab (daemons, namespaces, state)");
            Err(message)
        }
        Err(message) => {
            // The daemons' and the laptop's logs are what explains a failure: they stay.
            lab.work.keep_logs = true;
            progress("removing the lab (daemons, namespaces, state; the logs stay)");
            Err(format!(
                "{message}\nzt lab: the logs are kept in {} (`zt lab down` removes them)",
                lab.work.path.display()
            ))
        }
    }
}

impl Lab<'_> {
    fn play(&mut self) -> Result<(), String> {
        self.make_planet()?;
        for i in [ROOT, HOME, OFFICE] {
            self.start_daemon(i)?;
        }

        heading("Root (the planet's only root server, a ztd of its own)");
        self.typed(ROOT, &format!("enable {INSTANCE}"))?;
        self.typed(ROOT, "print")?;

        heading("RouterOS Home");
        self.typed(HOME, &format!("enable {INSTANCE}"))?;
        self.typed_until(HOME, "print", "Home comes online through the root", online)?;
        self.typed(
            HOME,
            &format!(
                "controller/add name={NETWORK_NAME} instance={INSTANCE} ip-range={IP_RANGE} private=yes routes={ROUTE}"
            ),
        )?;
        let controllers = self.typed(HOME, "controller/print")?;
        let network = network_id(&controllers, NETWORK_NAME).ok_or_else(|| {
            format!("step \"controller/print\": no network id in the row of {NETWORK_NAME}")
        })?;
        self.typed(
            HOME,
            &format!("interface/add network={network} name=myZeroTier instance={INSTANCE}"),
        )?;
        self.typed_until(
            HOME,
            "interface/print",
            "Home's interface shows ACCESS_DENIED",
            |out| out.contains("ACCESS_DENIED"),
        )?;
        let home_address = self.address_of(HOME)?;
        self.authorize(&home_address)?;
        let home_addresses = self.typed_until(
            HOME,
            "/ip/address/print where interface~\"Zero\"",
            "Home gets its ZeroTier address",
            |out| zerotier_ip(out).is_some(),
        )?;
        let home_ip = zerotier_ip(&home_addresses).unwrap_or_default();
        self.typed_until(
            HOME,
            "/ip/route/print where gateway~\"Zero\"",
            "Home gets the route",
            |out| out.contains(ROUTE),
        )?;

        heading("RouterOS Office");
        self.typed(OFFICE, &format!("enable {INSTANCE}"))?;
        self.typed_until(
            OFFICE,
            "print",
            "Office comes online through the root",
            online,
        )?;
        self.typed(
            OFFICE,
            &format!("interface/add network={network} instance={INSTANCE} name=ZT-interface"),
        )?;
        self.typed_until(
            OFFICE,
            "interface/print",
            "Office's interface shows ACCESS_DENIED",
            |out| out.contains("ACCESS_DENIED"),
        )?;
        let office_address = self.address_of(OFFICE)?;
        self.authorize(&office_address)?;
        self.typed(HOME, "controller/member/print")?;
        self.typed_until(
            OFFICE,
            "/ip/address/print where interface~\"ZT\"",
            "Office gets its ZeroTier address",
            |out| zerotier_ip(out).is_some(),
        )?;
        self.typed_until(
            OFFICE,
            "/ip/route/print where gateway~\"ZT\"",
            "Office gets the route",
            |out| out.contains(ROUTE),
        )?;
        self.ping(OFFICE, &home_ip)?;

        if self.tools.ztpeer.is_some() {
            self.laptop(&network)?;
        }
        Ok(())
    }

    /// The planet: the root's identity made with `zt idtool generate` in the root's instance
    /// directory (ztd uses an identity it finds there), then `initplanet`/`genplanet`; the
    /// result is installed as every node's `<home>/planet` (where zerotier-one keeps it, and
    /// the default instance reads it) before the instance starts.
    fn make_planet(&mut self) -> Result<(), String> {
        progress("making the lab's planet with zt idtool (one root: the Root node)");
        for node in &self.nodes {
            make_private_dir(&node.home)?;
            make_private_dir(&node.instance_dir())?;
        }
        let root_dir = self.nodes[ROOT].instance_dir();
        let secret = root_dir.join("identity.secret");
        let public = root_dir.join("identity.public");
        self.idtool(&["generate".as_ref(), secret.as_os_str(), public.as_os_str()])?;
        let planet_dir = self.work.path.join("planet");
        let root_spec = format!(
            "{}@{}/{ZT_PORT}",
            public.display(),
            self.nodes[ROOT].underlay
        );
        self.idtool(&[
            "initplanet".as_ref(),
            "--dir".as_ref(),
            planet_dir.as_os_str(),
            root_spec.as_ref(),
        ])?;
        self.idtool(&[
            "genplanet".as_ref(),
            planet_dir.join("planet.json").as_os_str(),
        ])?;
        let planet = planet_dir.join("planet");
        for node in &self.nodes {
            let target = node.home.join("planet");
            std::fs::copy(&planet, &target)
                .map_err(|e| format!("cannot install the planet as {}: {e}", target.display()))?;
        }
        Ok(())
    }

    /// `zt idtool ARGS…` (no networking, so it runs where zt runs).
    fn idtool(&self, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let mut cmd = Command::new(&self.tools.zt);
        cmd.arg("idtool").args(args);
        let what = process::describe(&cmd);
        let done = process::run(cmd, COMMAND_LIMIT)?;
        if done.status.success() {
            Ok(())
        } else {
            Err(format!("{what} failed: {}", done.stderr.trim()))
        }
    }

    /// Start node `i`'s ztd and wait until its console answers.
    fn start_daemon(&mut self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        progress(&format!("starting ztd for {} in {}", node.label, node.ns));
        let mut cmd = in_namespace(&node.ns, &self.tools.ztd);
        cmd.arg("--home").arg(&node.home);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let log = self
            .work
            .path
            .join(format!("ztd-{}.log", node.label.to_lowercase()));
        let daemon = Background::start(&format!("ztd of {}", node.label), cmd, &log, false)?;
        self.nodes[i].daemon = Some(daemon);
        let step = format!("ztd of {} answers the console", self.nodes[i].label);
        let deadline = Instant::now() + self.step_limit;
        loop {
            let done = self.console(i, "print")?;
            if done.status.success() {
                return Ok(());
            }
            if let Some(status) = self.nodes[i].daemon.as_mut().and_then(Background::exited) {
                return Err(format!(
                    "step \"{step}\": ztd exited ({status}); its log:\n{}",
                    tail(&log)
                ));
            }
            self.wait_or_fail(&step, deadline, &done.stderr)?;
        }
    }

    /// Run one console command line on node `i` without showing it. Menu-relative lines
    /// (`controller/print`) are typed at `/zerotier`, as in the manual.
    fn console(&self, i: usize, line: &str) -> Result<process::Finished, String> {
        let node = &self.nodes[i];
        let absolute = if line.starts_with('/') {
            line.to_string()
        } else {
            format!("/zerotier/{line}")
        };
        let mut cmd = in_namespace(&node.ns, &self.tools.zt);
        // The node's ztd listens on its namespace's loopback at the default port; a ZT_API
        // from the user's shell would send the command elsewhere.
        cmd.env_remove("ZT_API").arg("--home").arg(&node.home);
        cmd.args(absolute.split_whitespace());
        process::run(cmd, COMMAND_LIMIT)
    }

    /// Type `line` on node `i`: print the prompt and what the console answered; a refused
    /// command fails the lab.
    fn typed(&self, i: usize, line: &str) -> Result<String, String> {
        let done = self.console(i, line)?;
        show(&self.nodes[i], line, &done);
        if done.status.success() {
            Ok(done.stdout)
        } else {
            Err(format!(
                "step \"{line}\" on {} failed: {}",
                self.nodes[i].label,
                done.stderr.trim()
            ))
        }
    }

    /// Repeat `line` on node `i` until `ready` holds for its output, then show that output.
    fn typed_until(
        &self,
        i: usize,
        line: &str,
        step: &str,
        ready: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + self.step_limit;
        loop {
            let done = self.console(i, line)?;
            if done.status.success() && ready(&done.stdout) {
                show(&self.nodes[i], line, &done);
                return Ok(done.stdout);
            }
            if Instant::now() >= deadline {
                show(&self.nodes[i], line, &done);
            }
            let last = format!("{}{}", done.stdout, done.stderr);
            self.wait_or_fail(step, deadline, &last)?;
        }
    }

    /// Sleep one poll interval, or fail when the deadline passed or the lab was interrupted.
    fn wait_or_fail(&self, step: &str, deadline: Instant, last: &str) -> Result<(), String> {
        if interrupted() {
            return Err(process::INTERRUPTED_TEXT.to_string());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "step \"{step}\" timed out after {}s; last output:\n{}",
                self.step_limit.as_secs(),
                last.trim_end()
            ));
        }
        std::thread::sleep(POLL);
        Ok(())
    }

    fn address_of(&self, i: usize) -> Result<String, String> {
        self.nodes[i].address().ok_or_else(|| {
            format!(
                "{} has no identity in {}",
                self.nodes[i].label,
                self.nodes[i].instance_dir().display()
            )
        })
    }

    /// On Home: wait for `address` to ask to join, authorize it by its row number, as the
    /// manual does (`controller/member/set N authorized=yes`).
    fn authorize(&self, address: &str) -> Result<(), String> {
        let members = self.typed_until(
            HOME,
            "controller/member/print",
            &format!("member {address} asks the controller to join"),
            |out| row_of(out, address).is_some(),
        )?;
        let row = row_of(&members, address).unwrap_or_default();
        self.typed(HOME, &format!("controller/member/set {row} authorized=yes"))?;
        Ok(())
    }

    /// The manual's `/ping target count=3` on node `i`, run by its ztd. Waits first
    /// (bounded) until one echo gets through, since the first packets between two members
    /// wait for the peers to find each other.
    fn ping(&self, i: usize, target: &str) -> Result<(), String> {
        let step = format!("{} reaches {target} over ZeroTier", self.nodes[i].label);
        progress(&format!("waiting until {step}"));
        let deadline = Instant::now() + self.step_limit;
        loop {
            let done = self.console(i, &format!("/ping {target} count=1"))?;
            if done.status.success() && done.stdout.contains(" received=1 ") {
                break;
            }
            let last = format!("{}{}", done.stdout, done.stderr);
            self.wait_or_fail(&step, deadline, &last)?;
        }
        let out = self.typed(i, &format!("/ping {target} count={PING_COUNT}"))?;
        if out.contains(&format!(" received={PING_COUNT} ")) {
            Ok(())
        } else {
            Err(format!(
                "step \"ping {target}\": fewer than {PING_COUNT} replies:\n{}",
                out.trim_end()
            ))
        }
    }

    /// The manual's laptop: a real ZeroTier One node (ztpeer) joins; Home authorizes it and
    /// pings it. Its lines are ztpeer's own JSON events.
    fn laptop(&mut self, network: &str) -> Result<(), String> {
        let Some(ztpeer) = self.tools.ztpeer.clone() else {
            return Ok(());
        };
        heading("Laptop (ZeroTier One 1.8.4 in libzt, driven by ztpeer)");
        let ns = self
            .namespaces
            .ns("laptop")
            .ok_or("no laptop namespace")?
            .to_string();
        let home = self.work.path.join("laptop");
        make_private_dir(&home)?;
        let planet = self.work.path.join("planet/planet");
        let seconds = (self.step_limit.as_secs() * 4).to_string();
        let mut cmd = in_namespace(&ns, &ztpeer);
        cmd.arg("run").arg("--home").arg(&home);
        cmd.args(["--port", &ZT_PORT.to_string(), "--roots"])
            .arg(&planet);
        cmd.args(["--join", network, "--for", &seconds]);
        println!("laptop$ ztpeer run --home laptop --roots planet --join {network}");
        let log = self.work.path.join("ztpeer-laptop.log");
        self.laptop = Some(Background::start("ztpeer (laptop)", cmd, &log, true)?);
        let started = self.laptop_event("the laptop starts", |event| {
            event["event"] == "node_started"
        })?;
        let address = started["node_id"].as_str().unwrap_or_default().to_string();
        println!("laptop: node {address} started, joining {network}");
        // libzt 1.8.4 does not always show a refusal as ACCESS_DENIED (it may stay at
        // REQUESTING_CONFIGURATION), so the laptop's request is seen on the controller: it
        // appears unauthorized in Home's member list.
        self.authorize(&address)?;
        let ok = self.laptop_event("the laptop's network gets an address", |event| {
            event["event"] == "network"
                && event["status"] == "OK"
                && event["ip4"].to_string().contains(ZT_PREFIX)
        })?;
        println!(
            "laptop: network {} status={} ip4={} mac={} type={}",
            network,
            text_field(&ok, "status"),
            text_field(&ok, "ip4"),
            text_field(&ok, "mac"),
            text_field(&ok, "type")
        );
        let laptop_ip = ok["ip4"]
            .as_array()
            .and_then(|ips| {
                ips.iter()
                    .filter_map(|ip| ip.as_str())
                    .find(|ip| ip.starts_with(ZT_PREFIX))
            })
            .or_else(|| ok["ip4"].as_str())
            .map(|ip| ip.split('/').next().unwrap_or(ip).to_string())
            .ok_or("the laptop's network event has no IPv4 address")?;
        self.ping(HOME, &laptop_ip)
    }

    /// Wait for the laptop's next JSON event for which `wanted` holds.
    fn laptop_event(
        &mut self,
        step: &str,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, String> {
        let deadline = Instant::now() + self.step_limit;
        let laptop = self.laptop.as_mut().ok_or("the laptop is not running")?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = laptop.next_line(left) else {
                if interrupted() {
                    return Err(process::INTERRUPTED_TEXT.to_string());
                }
                return Err(format!(
                    "step \"{step}\" timed out after {}s (ztpeer's log: {})",
                    self.step_limit.as_secs(),
                    self.work.path.join("ztpeer-laptop.log").display()
                ));
            };
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                if wanted(&event) {
                    return Ok(event);
                }
            }
        }
    }

    /// `--keep`: leave everything running and say how to reach it.
    fn keep_running(&mut self) {
        for node in &mut self.nodes {
            if let Some(daemon) = node.daemon.as_mut() {
                daemon.keep();
            }
        }
        if let Some(laptop) = self.laptop.as_mut() {
            laptop.keep();
        }
        eprintln!("zt lab: kept running (remove with `zt lab down`):");
        if let Some(laptop) = self.namespaces.ns("laptop") {
            eprintln!("  laptop: ztpeer in {laptop}");
        }
        for node in &self.nodes {
            eprintln!(
                "  {}: ip netns exec {} {} --home {} /zerotier/print",
                node.label,
                node.ns,
                self.tools.zt.display(),
                node.home.display()
            );
        }
    }
}

/// A JSON event's field as plain text (empty when absent).
fn text_field(event: &serde_json::Value, name: &str) -> String {
    match &event[name] {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Create `dir` (and parents) with mode 0700.
fn make_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

pub(crate) fn progress(text: &str) {
    eprintln!("zt lab: {text}");
}

fn heading(text: &str) {
    println!("\n### {text}\n");
}

fn prompt(node: &Node, line: &str) {
    println!("[admin@{}] /zerotier> {line}", node.label);
}

/// The prompt, then the console's answer (stdout, then any error text, as the user sees it).
fn show(node: &Node, line: &str, done: &process::Finished) {
    prompt(node, line);
    print_out(&done.stdout);
    print_out(&done.stderr);
}

fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.is_empty() && !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// The last lines of a log file, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Whether `/zerotier/print` flags the instance `R` (online: it has heard from a root). The
/// lab joins networks only then, as someone following the manual would after `print`.
fn online(print: &str) -> bool {
    print.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.len() >= 3
            && words[0].parse::<u32>().is_ok()
            && words[1].contains('R')
            && words[2] == INSTANCE
    })
}

/// The 16-hex-digit network id in the `controller/print` row that names `name`.
fn network_id(print: &str, name: &str) -> Option<String> {
    print
        .lines()
        .filter(|line| line.split_whitespace().any(|word| word == name))
        .flat_map(str::split_whitespace)
        .find(|word| word.len() == 16 && word.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
}

/// The item number (`#` column) of the `print` row that holds `word`.
fn row_of(print: &str, word: &str) -> Option<u32> {
    print
        .lines()
        .find(|line| line.split_whitespace().any(|w| w == word))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// The first `172.27.27.N/24` address in an `/ip/address/print`, without its prefix length.
fn zerotier_ip(print: &str) -> Option<String> {
    print
        .split_whitespace()
        .filter_map(|word| word.strip_suffix("/24"))
        .find(|ip| ip.starts_with(ZT_PREFIX) && ip.parse::<Ipv4Addr>().is_ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The manual's own outputs (seed: RouterOS Home / Office).
    const CONTROLLER_PRINT: &str = "\
Columns: INSTANCE, NAME, NETWORK, PRIVATE
# INSTANCE  NAME        NETWORK           PRIVATE
0 zt1       ZT-private  879c0b5265a99e4b  yes
";
    const MEMBER_PRINT: &str = "\
Flags: A - AUTHORIZED
Columns: NETWORK, ZT-ADDRESS, IP-ADDRESS, LAST-SEEN
#    NETWORK     ZT-ADDRESS  IP-ADDRESS    LAST-SEEN
0 A  ZT-private  879a0b5265  172.27.27.15          
1 A  ZT-private  554a914c7f  172.27.27.17          
2 A  ZT-private  a83ac6032a  172.27.27.10          
3    ZT-private  deba5dc5b1  172.27.27.13  3s348ms 
";
    const ADDRESS_PRINT: &str = "\
Flags: D - DYNAMIC
Columns: ADDRESS, NETWORK, INTERFACE
#   ADDRESS          NETWORK      INTERFACE  
0 D 172.27.27.13/24  172.27.27.0  ZT-interface
";

    #[test]
    fn the_manuals_outputs_are_read() {
        assert_eq!(
            network_id(CONTROLLER_PRINT, "ZT-private").as_deref(),
            Some("879c0b5265a99e4b")
        );
        assert_eq!(network_id(CONTROLLER_PRINT, "other"), None);
        assert_eq!(row_of(MEMBER_PRINT, "deba5dc5b1"), Some(3));
        assert_eq!(row_of(MEMBER_PRINT, "0000000000"), None);
        assert_eq!(zerotier_ip(ADDRESS_PRINT).as_deref(), Some("172.27.27.13"));
        assert_eq!(zerotier_ip("0 D 10.0.0.1/24 10.0.0.0 ether1"), None);
        assert!(online(
            "Flags: R - ONLINE\n#   NAME  PORT\n0 R zt1   9993  5ea7eca745:0:26\n"
        ));
        assert!(!online(
            "Columns: NAME\n# NAME  PORT\n0 zt1   9993  5ea7eca745:0:26\n"
        ));
    }
}
