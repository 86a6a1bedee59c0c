//! A throw-away PostgreSQL cluster for one test: `initdb` into a new directory under the
//! system temp dir, a server listening only on a Unix socket in that directory (no TCP), torn
//! down (`pg_ctl stop -m immediate`, directory removed) in `Drop`, also on panic.
//!
//! PostgreSQL refuses to run as root: as root (CI), the cluster belongs to the `postgres`
//! user of Debian's package and its commands run through `runuser`. Without PostgreSQL
//! installed, [`TestCluster::start`] says so and the test skips itself (`skip_unless!`).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::run_with_deadline;

static CLUSTER_COUNTER: AtomicU32 = AtomicU32::new(0);
/// The user that owns the cluster when the tests run as root.
const SERVER_USER: &str = "postgres";
/// The database role the tests connect as (the cluster's superuser, trust authentication).
pub const TEST_ROLE: &str = "zt";

/// A running throw-away cluster.
pub struct TestCluster {
    dir: PathBuf,
    bin: PathBuf,
    as_root: bool,
}

impl TestCluster {
    /// Creates and starts a cluster, or says why it cannot (not installed, no server user).
    pub fn start() -> Result<TestCluster, String> {
        let bin = server_bin()?;
        let as_root = is_root();
        if as_root && !user_exists(SERVER_USER) {
            return Err(format!(
                "running as root and there is no {SERVER_USER} user to run PostgreSQL as \
                 (apt-get install postgresql creates it)"
            ));
        }
        let dir = std::env::temp_dir().join(format!(
            "zt-pg-{}-{}",
            std::process::id(),
            CLUSTER_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cluster = TestCluster { dir, bin, as_root };
        if as_root {
            let out = run_with_deadline(
                with_args(
                    Command::new("chown"),
                    &[SERVER_USER, path_str(&cluster.dir)],
                ),
                Duration::from_secs(10),
            );
            if !out.status.success() {
                return Err(format!(
                    "chown {}: {}",
                    cluster.dir.display(),
                    output_text(&out)
                ));
            }
        }
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                TEST_ROLE,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            Duration::from_secs(120),
        )?;
        // Unix socket only; durability off (the cluster lives for one test).
        let options = format!(
            "-k {} -c listen_addresses= -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=50",
            path_str(&cluster.dir)
        );
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&cluster.dir.join("server.log")),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            Duration::from_secs(90),
        )?;
        Ok(cluster)
    }

    /// A connection string for database `postgres` (libpq key=value form).
    pub fn url(&self) -> String {
        format!(
            "host={} user={TEST_ROLE} dbname=postgres",
            path_str(&self.dir)
        )
    }

    /// The same as a `postgresql://` URL (the form `ztd --controller-db` documents).
    pub fn uri(&self) -> String {
        let host: String = path_str(&self.dir)
            .bytes()
            .map(|b| match b {
                b'/' => "%2F".to_string(),
                b => (b as char).to_string(),
            })
            .collect();
        format!("postgresql://{TEST_ROLE}@{host}/postgres")
    }

    /// The server's log so far (for failure reports).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, program: &str, args: &[&str], limit: Duration) -> Result<(), String> {
        let binary = self.bin.join(program);
        let cmd = if self.as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", SERVER_USER, "--"]).arg(&binary).args(args);
            cmd
        } else {
            with_args(Command::new(&binary), args)
        };
        let out = run_with_deadline(cmd, limit);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}\n{}",
                output_text(&out),
                self.log()
            ))
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
            Duration::from_secs(30),
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn with_args(mut cmd: Command, args: &[&str]) -> Command {
    cmd.args(args).stdin(Stdio::null());
    cmd
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Where `initdb`, `pg_ctl` and `postgres` are: `ZT_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian keeps them off the PATH).
fn server_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("ZT_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "PostgreSQL is not installed (apt-get install postgresql)".to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "PostgreSQL server is not installed (apt-get install postgresql)".into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
