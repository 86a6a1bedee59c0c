//! The interactive `zt` prompt on a real terminal: the test opens a pseudo-terminal, makes it
//! the controlling terminal of a `zt` session against a real `ztd`, and types into it: Tab
//! completion, menu navigation in the prompt, a repeating print stopped by Ctrl-C, Ctrl-C at
//! the prompt, Ctrl-D to leave, and the history file. Loopback only; every wait has a deadline.
//!
//! `ztd` is found (or built once) by [`console_support::ztd_binary`].
#![allow(unsafe_code)]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zt_testnet::skip_unless;

mod console_support;
use console_support::ztd_binary;

const DEADLINE: Duration = Duration::from_secs(30);

/// Stops the child (SIGTERM, then SIGKILL) however the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
                // SAFETY: signalling our own child process.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_ztd(home: &Path, log: &Path) -> (Reaped, SocketAddr) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = SocketAddr::from(([127, 0, 0, 1], port));
    let child = Command::new(ztd_binary())
        .env("ZTD_NO_DEFAULT_PLANET", "1")
        .arg("--home")
        .arg(home)
        .arg("--api-listen")
        .arg(api.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .expect("spawn ztd");
    let mut ztd = Reaped(child);
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(api).is_err() {
        if let Some(status) = ztd.0.try_wait().unwrap() {
            panic!(
                "ztd exited with {status}: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "ztd did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (ztd, api)
}

/// The terminal side the test types into, and everything `zt` wrote to it.
struct Terminal {
    master: File,
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of `screen` earlier waits consumed.
    seen: usize,
}

impl Terminal {
    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Wait until `wanted` appears after what earlier waits consumed; consume up to its end.
    #[track_caller]
    fn expect(&mut self, wanted: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            {
                let screen = self.screen.lock().unwrap();
                let fresh = String::from_utf8_lossy(&screen[self.seen..]).into_owned();
                if let Some(at) = fresh.find(wanted) {
                    let upto = at + wanted.len();
                    self.seen += fresh[..upto].len();
                    return fresh[..upto].to_string();
                }
                assert!(
                    Instant::now() < deadline,
                    "{wanted:?} did not appear; the terminal shows {fresh:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Open a pseudo-terminal of 120x40: (master, slave).
fn open_pty() -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fds into the given ints; no name buffer, default termios.
    let result = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(result, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened by openpty and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn prompt_completion_history_and_ctrl_c_on_a_terminal() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (_ztd, api) = start_ztd(&home, &dir.path().join("ztd.log"));

    let (master, slave) = open_pty();
    let slave = File::from(slave);
    let mut command = Command::new(env!("CARGO_BIN_EXE_zt"));
    command
        .env("HOME", dir.path())
        .env("ZT_HOME", &home)
        .env("ZT_API", api.to_string())
        .env("TERM", "xterm")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    // SAFETY: between fork and exec only async-signal-safe calls: a new session whose
    // controlling terminal is the pty on stdin, so Ctrl-C there sends SIGINT to `zt`.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut zt = Reaped(command.spawn().expect("spawn zt"));
    // Our copies of the slave side are gone with `command`; EOF/EIO comes when zt exits.
    drop(command);

    let master = File::from(master);
    let screen = Arc::new(Mutex::new(Vec::new()));
    {
        let mut reader = master.try_clone().unwrap();
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
    }
    let mut terminal = Terminal {
        master,
        screen,
        seen: 0,
    };

    // The prompt names the router by its /system/identity: MikroTik until set, as RouterOS.
    terminal.expect("[admin@MikroTik] > ");
    terminal.type_keys("/system/identity/set name=Office\r");
    let root_prompt = "[admin@Office] > ".to_string();
    let menu_prompt = "[admin@Office] /zerotier> ".to_string();
    terminal.expect(&root_prompt);
    terminal.type_keys("/system/identity/print\r");
    terminal.expect("  name: Office\r\n");
    terminal.expect(&root_prompt);

    // Tab completes the menu, then the command (with a trailing space).
    terminal.type_keys("/zer\t");
    terminal.expect("/zerotier/");
    terminal.type_keys("pri\t");
    terminal.expect("/zerotier/print ");
    terminal.type_keys("\r");
    terminal.expect("Columns: NAME, PORT");
    terminal.expect("zt1");
    terminal.expect(&root_prompt);

    // A second Tab lists the candidates: submenus and commands; Ctrl-U clears the line.
    terminal.type_keys("/zerotier/\t\t");
    let listing = terminal.expect("print");
    assert!(listing.contains("interface/"), "{listing:?}");
    terminal.expect(&format!("{root_prompt}/zerotier/"));
    terminal.type_keys("\x15");

    // A menu path alone moves the prompt into it; argument names complete too.
    terminal.type_keys("zerotier\r");
    terminal.expect(&menu_prompt);
    terminal.type_keys("set zt1 comm\t");
    terminal.expect("set zt1 comment=");
    terminal.type_keys("typed\r");
    terminal.expect(&menu_prompt);
    terminal.type_keys(":put [get zt1 comment]\r");
    terminal.expect("typed\r\n");
    terminal.expect(&menu_prompt);

    // A refused command shows RouterOS's error and the session goes on.
    terminal.type_keys("nosuch\r");
    terminal.expect("bad command name nosuch (line 1 column 1)");
    terminal.expect(&menu_prompt);

    // Ctrl-C stops a repeating print and returns to the prompt.
    terminal.type_keys("print count-only interval=100ms\r");
    terminal.expect("1\r\n");
    terminal.expect("1\r\n");
    terminal.type_keys("\x03");
    terminal.expect(&menu_prompt);
    // Ctrl-C at the prompt drops the typed line.
    terminal.type_keys("half a line\x03");
    terminal.expect(&menu_prompt);
    terminal.type_keys(":put done\r");
    terminal.expect("done\r\n");
    terminal.expect(&menu_prompt);

    // A line ending in `\` goes on on the next one.
    terminal.type_keys("print \\\r");
    terminal.type_keys("  count-only\r");
    terminal.expect("1\r\n");
    terminal.expect(&menu_prompt);

    // Ctrl-D on an empty line leaves; the history keeps the typed commands.
    terminal.type_keys("\x04");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = zt.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "zt did not leave on Ctrl-D");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let history = fs::read_to_string(dir.path().join(".zt_history")).unwrap();
    let lines: Vec<&str> = history.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "/system/identity/set name=Office",
            "/system/identity/print",
            "/zerotier/print",
            "zerotier",
            "set zt1 comment=typed",
            ":put [get zt1 comment]",
            "nosuch",
            "print count-only interval=100ms",
            ":put done",
            // rustyline's file format escapes the backslash and the newline.
            r"print \\\n  count-only",
        ]
    );
}
