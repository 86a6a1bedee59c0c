//! `zt lab`: the seed manual's controller example ("RouterOS Home" runs a private network,
//! "RouterOS Office" joins it), played for real on this host and printed as the console
//! transcript a RouterOS user would see.
//!
//! `zt lab [up] [--keep] [--with-ztpeer]` builds network namespaces (`ztlab-<pid>-…`: a hub
//! bridge and one namespace per node on 10.99.0.0/24, no default route, so nothing leaves
//! the host), makes a private planet with `zt idtool initplanet/genplanet` whose one root is
//! a `ztd` of its own, installs it as every node's `<home>/planet`, starts a `ztd` per
//! node and then types every step with the real console, `ip netns exec NS zt --home HOME
//! …`: enable, print, controller/add, interface/add, ACCESS_DENIED, member authorization,
//! the addresses and routes the controller pushed, and a `ping` between Home and Office
//! over ZeroTier (`/ping … count=3`, run by the node's ztd). `--with-ztpeer` adds
//! a real ZeroTier One node (`ztpeer`, libzt 1.8.4) as the manual's laptop. Every wait has a
//! deadline and a timeout names its step; everything is removed at the end, also on error
//! or Ctrl-C, unless `--keep`. `zt lab down` removes leftovers of labs whose `zt` has ended.
//!
//! The transcript goes to stdout, progress and errors to stderr. Exit status 0 when every
//! step did what the manual shows, 1 otherwise.
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

mod netns;
mod process;
mod scenario;

use process::interrupted;

/// `zt lab` arguments: a subcommand, or the options of `up` directly.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabArgs {
    #[command(subcommand)]
    command: Option<LabCommand>,
    #[command(flatten)]
    up: UpOptions,
}

#[derive(Debug, clap::Subcommand)]
enum LabCommand {
    /// Build the lab, run the Home/Office example, remove the lab (the default).
    Up(UpOptions),
    /// Remove leftover lab namespaces, their processes and their state directories.
    Down,
}

#[derive(Debug, Clone, clap::Args)]
struct UpOptions {
    /// Leave the namespaces and daemons running at the end (remove them with `zt lab down`).
    #[arg(long)]
    keep: bool,
    /// Add a real ZeroTier One node (ztpeer, libzt 1.8.4) as the manual's laptop.
    #[arg(long)]
    with_ztpeer: bool,
    /// The ztd binary [env: ZTD] [default: ztd beside this zt].
    #[arg(long, value_name = "PATH")]
    ztd: Option<PathBuf>,
    /// The ztpeer script [env: ZTPEER] [default: ../shared/interop/ztpeer above this zt].
    #[arg(long, value_name = "PATH")]
    ztpeer: Option<PathBuf>,
    /// The longest wait for any one step, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    step_timeout: u64,
}

pub fn main(args: LabArgs) -> ExitCode {
    let result = match args.command {
        Some(LabCommand::Down) => down(),
        Some(LabCommand::Up(options)) => up(&options),
        None => up(&args.up),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("zt lab: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Namespaces need CAP_SYS_ADMIN; say so before touching anything.
fn require_root(what: &str) -> Result<(), String> {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        Ok(())
    } else {
        Err(format!(
            "{what} needs root (network namespaces); run it as root, e.g. with sudo"
        ))
    }
}

fn up(options: &UpOptions) -> Result<(), String> {
    require_root("the lab")?;
    let tools = Tools::locate(options)?;
    process::catch_signals();
    let step_limit = Duration::from_secs(options.step_timeout.max(1));
    let result = scenario::run(&tools, options, step_limit);
    if interrupted() {
        return Err(format!(
            "{}; the lab was removed",
            process::INTERRUPTED_TEXT
        ));
    }
    result
}

/// The programs the lab runs.
pub(crate) struct Tools {
    zt: PathBuf,
    ztd: PathBuf,
    ztpeer: Option<PathBuf>,
}

impl Tools {
    fn locate(options: &UpOptions) -> Result<Tools, String> {
        let zt = std::env::current_exe().map_err(|e| format!("cannot find this zt binary: {e}"))?;
        let ztd = options
            .ztd
            .clone()
            .or_else(|| std::env::var_os("ZTD").map(PathBuf::from))
            .unwrap_or_else(|| zt.with_file_name("ztd"));
        if !ztd.is_file() {
            return Err(format!(
                "ztd not found at {}; build it beside zt (cargo build --release --bin zt --bin ztd) or give --ztd PATH / ZTD",
                ztd.display()
            ));
        }
        let ztpeer = if options.with_ztpeer {
            let path = options
                .ztpeer
                .clone()
                .or_else(|| std::env::var_os("ZTPEER").map(PathBuf::from))
                .or_else(|| shared_ztpeer(&zt))
                .ok_or("--with-ztpeer: ztpeer not found (../shared/interop/ztpeer above this zt); give --ztpeer PATH / ZTPEER")?;
            if !path.is_file() {
                return Err(format!("--with-ztpeer: {} does not exist", path.display()));
            }
            prepare_ztpeer(&path)?;
            Some(path)
        } else {
            None
        };
        Ok(Tools { zt, ztd, ztpeer })
    }
}

/// `ztpeer setup`: fetches libzt 1.8.4 from PyPI and builds its shim with gcc the first
/// time, then returns at once. Done before any namespace exists, so a machine without PyPI
/// or gcc hears why at once instead of a laptop that never starts.
fn prepare_ztpeer(ztpeer: &Path) -> Result<(), String> {
    scenario::progress(
        "preparing ztpeer (the first time: libzt 1.8.4 from PyPI, a shim built with gcc)",
    );
    let mut cmd = Command::new(ztpeer);
    cmd.arg("setup");
    let finished = process::run(cmd, ZTPEER_SETUP_LIMIT)
        .map_err(|e| format!("--with-ztpeer: `{} setup`: {e}", ztpeer.display()))?;
    if finished.status.success() {
        return Ok(());
    }
    let said: Vec<&str> = finished.stderr.lines().rev().take(5).collect();
    let said: Vec<&str> = said.into_iter().rev().collect();
    let said = if said.is_empty() {
        "(it printed nothing)".to_string()
    } else {
        said.join("\n")
    };
    Err(format!(
        "--with-ztpeer: `{} setup` failed ({}); it needs python3 with pip, access to PyPI and gcc. Its last words:\n{said}",
        ztpeer.display(),
        finished.status,
    ))
}

/// A first `ztpeer setup` downloads a wheel of a few MB.
const ZTPEER_SETUP_LIMIT: Duration = Duration::from_secs(600);

/// `<dir>/shared/interop/ztpeer` for the nearest ancestor `dir` of the zt binary holding one
/// (the project's checkout sits beside `shared/`).
fn shared_ztpeer(zt: &Path) -> Option<PathBuf> {
    zt.ancestors()
        .map(|dir| dir.join("shared/interop/ztpeer"))
        .find(|path| path.is_file())
}

/// The state directory of the lab run by process `pid`.
fn work_dir_for(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("{}{pid}", netns::PREFIX))
}

/// `zt lab down`: for every lab whose `zt lab` process has ended (kept or crashed), stop the
/// processes in its namespaces, delete the namespaces and its state directory. A lab whose
/// owner still runs is left alone (it removes itself).
fn down() -> Result<(), String> {
    require_root("`zt lab down`")?;
    let mut removed = 0;
    for ns in netns::existing()? {
        let owner = owner_pid(&ns);
        if let Some(pid) = owner.filter(|pid| *pid != std::process::id() && zt_is_running(*pid)) {
            eprintln!(
                "zt lab down: {ns} belongs to the running zt lab (process {pid}); left alone"
            );
            continue;
        }
        stop_processes_in(&ns);
        netns::ip(&["netns", "del", &ns])?;
        println!("removed namespace {ns}");
        removed += 1;
    }
    // State directories of labs whose owner has ended (kept labs, and any crash leftovers).
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(netns::PREFIX)
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if zt_is_running(pid) {
                continue;
            }
            let path = entry.path();
            std::fs::remove_dir_all(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            println!("removed {}", path.display());
            removed += 1;
        }
    }
    if removed == 0 {
        println!("no lab left over");
    }
    Ok(())
}

/// The owning process id in `ztlab-<pid>-<node>`.
fn owner_pid(ns: &str) -> Option<u32> {
    ns.strip_prefix(netns::PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Whether `pid` is a running `zt` (a reused id of another program does not count).
fn zt_is_running(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        // A binary replaced since it started reads as "zt (deleted)".
        .is_some_and(|name| name == "zt" || name.starts_with("zt "))
}

/// SIGTERM every process in `ns`, then SIGKILL what is left after a grace period.
fn stop_processes_in(ns: &str) {
    let pids = netns::pids_in(ns);
    for pid in &pids {
        process::terminate(*pid);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && pids.iter().any(|pid| process::alive(*pid)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in pids.iter().filter(|pid| process::alive(**pid)) {
        eprintln!("zt lab down: process {pid} in {ns} ignored SIGTERM; killing it");
        process::kill(*pid);
    }
}

/// `ip netns exec NS program`: a command that runs inside namespace `ns`.
fn in_namespace(ns: &str, program: &Path) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_read_from_the_namespace_name() {
        assert_eq!(owner_pid("ztlab-4242-home"), Some(4242));
        assert_eq!(owner_pid("ztlab-x-home"), None);
        assert_eq!(owner_pid("other"), None);
    }
}
