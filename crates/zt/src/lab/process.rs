//! Child processes of the lab: short commands run to completion within a deadline, and the
//! long-running nodes (`ztd`, `ztpeer`), stopped when the lab ends. Every wait also ends
//! early on Ctrl-C / SIGTERM, so the lab can tear down instead of dying half-built.
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: the one thing a signal handler may safely do here.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP: they set a flag that every wait checks, so the lab
/// stops at the next poll and removes what it built.
pub fn catch_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Whether Ctrl-C (or SIGTERM/SIGHUP) arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub const INTERRUPTED_TEXT: &str = "interrupted (Ctrl-C)";

/// What a finished command printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cmd` to completion within `limit`; killed and reported when the deadline passes or
/// the lab is interrupted.
pub fn run(mut cmd: Command, limit: Duration) -> Result<Finished, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for {}: {e}", describe(&cmd))),
        }
        let late = Instant::now() >= deadline;
        if late || interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(if late {
                format!("{} did not finish within {limit:?}", describe(&cmd))
            } else {
                INTERRUPTED_TEXT.to_string()
            });
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok(Finished {
        status,
        stdout: String::from_utf8_lossy(&joined(stdout)).into_owned(),
        stderr: String::from_utf8_lossy(&joined(stderr)).into_owned(),
    })
}

fn drain<R: Read + Send + 'static>(reader: Option<R>) -> Option<thread::JoinHandle<Vec<u8>>> {
    reader.map(|mut reader| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = reader.read_to_end(&mut buf);
            buf
        })
    })
}

fn joined(handle: Option<thread::JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// `program arg…`, for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A node process in a namespace (`ip netns exec NS program …`, which execs the program, so
/// the child's id is the program's). It runs in its own process group, so a Ctrl-C at the
/// terminal reaches only the lab, which then stops it with SIGTERM. Stopped on drop unless
/// [`Background::keep`] was called.
pub struct Background {
    name: String,
    child: Option<Child>,
    lines: Option<Receiver<String>>,
}

impl Background {
    /// Start `cmd`; stderr goes to `log`. With `read_lines`, stdout lines are collected for
    /// [`Background::next_line`], else stdout also goes to `log`.
    pub fn start(
        name: &str,
        mut cmd: Command,
        log: &Path,
        read_lines: bool,
    ) -> Result<Background, String> {
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let stdout = if read_lines {
            Stdio::piped()
        } else {
            Stdio::from(
                log_file
                    .try_clone()
                    .map_err(|e| format!("{}: {e}", log.display()))?,
            )
        };
        cmd.stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(log_file))
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
        let mut copy = std::fs::OpenOptions::new()
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let lines = child.stdout.take().map(|stdout| {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // The log keeps every line too, for a failure's post-mortem.
                    let _ = writeln!(copy, "{line}");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        Ok(Background {
            name: name.to_string(),
            child: Some(child),
            lines,
        })
    }

    /// Whether the process has exited (and so will never answer).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The next stdout line, waiting at most `limit` (None at the deadline, on interrupt or
    /// when the process closed its stdout).
    pub fn next_line(&mut self, limit: Duration) -> Option<String> {
        let lines = self.lines.as_ref()?;
        let deadline = Instant::now() + limit;
        while !interrupted() {
            let left = deadline.checked_duration_since(Instant::now())?;
            match lines.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => return Some(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    /// Leave the process running when this handle is dropped.
    pub fn keep(&mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }

    /// SIGTERM, then SIGKILL if it has not exited after a grace period.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        terminate(child.id() as i32);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!("zt lab: {} did not stop on SIGTERM; killing it", self.name);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Send SIGTERM to process `pid`.
pub fn terminate(pid: i32) {
    signal_process(pid, libc::SIGTERM);
}

/// Send SIGKILL to process `pid`.
pub fn kill(pid: i32) {
    signal_process(pid, libc::SIGKILL);
}

fn signal_process(pid: i32, signal: libc::c_int) {
    if pid <= 0 {
        return; // 0 and negative ids address groups; the lab only ever signals one process.
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Whether process `pid` still exists.
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
