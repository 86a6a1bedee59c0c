//! The `zt` console front end: RouterOS commands against a running `ztd`.
//!
//! - `zt /zerotier/print`, `zt /zerotier/enable zt1`: one command line; the words are joined
//!   with spaces (as `ssh router /zerotier/print` does), see [`command_line`].
//! - `zt`: an interactive prompt `[admin@HOST] > ` with history, line editing and completion.
//! - `zt -f FILE`: a script (`-` reads standard input), as RouterOS `/import` runs one.
//! - `zt info|listnetworks|listpeers|join|leave`: the zerotier-cli commands ([`service`]).
//!
//! Finding the daemon: its API address is `--api` / `ZT_API`, else `127.0.0.1:<port>` from
//! `<home>/zerotier-one.port` (zerotier-one's convention, which zerotier-cli follows), else
//! `127.0.0.1:9993` (ztd's default `--api-listen`); the token is `authtoken.secret` in
//! `--home` / `ZT_HOME` (default `/var/lib/zt`, ztd's default `--home`).
//!
//! Output goes to stdout; errors go to stderr, worded as RouterOS words them. Exit codes: 0
//! success, 1 a command failed or the daemon could not be used, 2 usage error.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zt_console::{BackendError, Console, ConsoleError, RestBackend};

mod http;
mod interactive;
pub mod service;

pub use http::HttpTransport;
pub use service::ServiceCommand;

/// ztd's defaults: `--home` and `--api-listen`.
const DEFAULT_HOME: &str = "/var/lib/zt";
const DEFAULT_API: &str = "127.0.0.1:9993";
const TOKEN_FILE: &str = "authtoken.secret";
/// zerotier-one's record of its API port in its home; read when no address is given.
const PORT_FILE: &str = "zerotier-one.port";

/// Options shared by every console mode.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleOptions {
    /// ztd's state directory, for its API token [env: ZT_HOME] [default: /var/lib/zt]
    #[arg(long, value_name = "DIR", global = true)]
    home: Option<PathBuf>,
    /// ztd's API address [env: ZT_API] [default: port in HOME/zerotier-one.port, else 127.0.0.1:9993]
    #[arg(long, value_name = "HOST:PORT", global = true)]
    api: Option<String>,
    /// Run the commands of a script file (`-` for standard input).
    #[arg(short = 'f', value_name = "FILE")]
    script: Option<PathBuf>,
    /// zerotier-cli commands: print the service's JSON.
    #[arg(short = 'j', global = true)]
    json: bool,
}

/// The console wired to the daemon: a session, and where its token came from (for messages).
pub struct Connection {
    pub console: Console<RestBackend<HttpTransport>>,
    api: String,
    token_path: PathBuf,
}

/// Why the console could not be used at all (as opposed to a refused command).
#[derive(Debug)]
pub struct FrontEndError(String);

impl std::fmt::Display for FrontEndError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zt: {}", self.0)
    }
}

impl ConsoleOptions {
    fn home(&self) -> PathBuf {
        self.home
            .clone()
            .or_else(|| std::env::var_os("ZT_HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME))
    }

    /// `--api`, else `ZT_API`, else the port in `<home>/zerotier-one.port` on loopback (where
    /// zerotier-one records its API port and zerotier-cli looks for it), else ztd's default.
    fn api(&self) -> Result<String, FrontEndError> {
        if let Some(api) = self
            .api
            .clone()
            .or_else(|| std::env::var("ZT_API").ok().filter(|a| !a.is_empty()))
        {
            return Ok(api);
        }
        let port_path = self.home().join(PORT_FILE);
        match std::fs::read_to_string(&port_path) {
            Ok(text) => match text.trim().parse::<u16>() {
                Ok(port) if port > 0 => Ok(format!("127.0.0.1:{port}")),
                _ => Err(FrontEndError(format!(
                    "{} does not hold a port number",
                    port_path.display()
                ))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DEFAULT_API.to_string()),
            Err(e) => Err(FrontEndError(format!(
                "cannot read {}: {}",
                port_path.display(),
                io_text(&e)
            ))),
        }
    }

    /// Read the token and build the transport.
    fn transport(&self) -> Result<(HttpTransport, PathBuf), FrontEndError> {
        let token_path = self.home().join(TOKEN_FILE);
        let token = std::fs::read_to_string(&token_path).map_err(|e| {
            FrontEndError(format!(
                "cannot read the API token {}: {}; give ztd's home with --home or ZT_HOME",
                token_path.display(),
                io_text(&e)
            ))
        })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(FrontEndError(format!(
                "the API token {} is empty",
                token_path.display()
            )));
        }
        Ok((HttpTransport::new(self.api()?, token), token_path))
    }

    pub fn connect(&self) -> Result<Connection, FrontEndError> {
        let (transport, token_path) = self.transport()?;
        let api = transport.address().to_string();
        let console = Console::new(RestBackend::new(transport));
        let mut connection = Connection {
            console,
            api,
            token_path,
        };
        if let Some(width) = terminal_width() {
            connection.console.width = width;
        }
        Ok(connection)
    }
}

/// The width of the terminal on stdout, which `print detail` wraps to; none when not a terminal.
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ only writes a `winsize` into the struct we pass.
    let result = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (result == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Shown after `zt --help`.
pub const USAGE: &str = "\
Console:
  zt /zerotier/print               run one RouterOS command line (words joined by spaces)
  zt /zerotier/enable zt1          exit 0 on success, 1 when refused (error on stderr)
  zt                               interactive prompt (Tab completes, history in ~/.zt_history)
  zt -f setup.rsc                  run a script, as /import does (`-` reads stdin)
The daemon is found at --api / ZT_API, or on loopback at the port in <home>/zerotier-one.port;
its token is authtoken.secret in --home / ZT_HOME.";

/// `No such file or directory` without std's `(os error 2)` suffix.
fn io_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// The first line of `export`, RouterOS's `# <date> <time> by RouterOS <version>` said
/// honestly: the local time now, and this console's name and version.
fn export_header() -> String {
    format!(
        "# {} by RouterOS-compatible zt {}",
        local_time_text(),
        env!("CARGO_PKG_VERSION")
    )
}

/// `YYYY-MM-DD HH:MM:SS` in local time, as RouterOS dates its exports.
fn local_time_text() -> String {
    // SAFETY: time(NULL) only returns the clock; localtime_r writes into the `tm` we pass.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

impl Connection {
    /// How a failed command is reported: RouterOS's text for refusals; a `zt:` sentence when
    /// the daemon could not be reached or refused the token.
    pub fn error_text(&self, error: &ConsoleError) -> String {
        match error {
            ConsoleError::Backend(BackendError {
                status: 0, message, ..
            }) => {
                format!("zt: {message}")
            }
            ConsoleError::Backend(BackendError { status: 401, .. }) => format!(
                "zt: ztd at {} refused the API token from {} (401 Unauthorized)",
                self.api,
                self.token_path.display()
            ),
            other => other.to_string(),
        }
    }

    /// Check the daemon answers and accepts the token, before an interactive session starts.
    pub fn probe(&mut self) -> Result<(), String> {
        use zt_console::Backend;
        match self.console.backend_mut().list("/zerotier") {
            Ok(_) => Ok(()),
            Err(e) if e.status == 0 || e.status == 401 => {
                Err(self.error_text(&ConsoleError::Backend(e)))
            }
            // Any other answer means the daemon is there and talking.
            Err(_) => Ok(()),
        }
    }
}

/// Set by SIGINT while a repeating print runs; the loop polls it between rounds.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// While alive, Ctrl-C (SIGINT) is noted in [`INTERRUPTED`] instead of ending the process;
/// dropping it restores the handler it replaced.
pub struct CatchInterrupts(libc::sighandler_t);

impl CatchInterrupts {
    pub fn start() -> CatchInterrupts {
        // SAFETY: installs a handler that only stores to an atomic, which is async-signal-safe;
        // the function pointer has the C ABI `signal` expects.
        let previous = unsafe {
            libc::signal(
                libc::SIGINT,
                note_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
        CatchInterrupts(previous)
    }
}

impl Drop for CatchInterrupts {
    fn drop(&mut self) {
        if self.0 != libc::SIG_ERR {
            // SAFETY: puts back the disposition `signal` returned when this guard started.
            unsafe { libc::signal(libc::SIGINT, self.0) };
        }
    }
}

/// Sleep up to `duration`, waking early (and answering `true`) when interrupted.
fn sleep_unless_interrupted(duration: Duration) -> bool {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < duration {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return true;
        }
        let nap = step.min(duration - slept);
        std::thread::sleep(nap);
        slept += nap;
    }
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Run one command line and print its output; a `print interval=...` repeats until Ctrl-C
/// (on a terminal each round redraws the previous one in place).
pub fn run_line(connection: &mut Connection, line: &str) -> Result<(), ConsoleError> {
    connection.console.export_header = Some(export_header());
    let reply = connection.console.execute_reply(line)?;
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(reply.output.as_bytes()).is_err() || stdout.flush().is_err() {
        return Ok(());
    }
    let Some(interval_ms) = reply.interval_ms else {
        return Ok(());
    };
    drop(stdout);
    let _catching = CatchInterrupts::start();
    INTERRUPTED.store(false, Ordering::SeqCst);
    let redraw = std::io::stdout().is_terminal();
    let mut shown_lines = reply.output.lines().count();
    while !sleep_unless_interrupted(Duration::from_millis(interval_ms)) {
        let output = connection.console.execute_reply(line)?.output;
        let mut stdout = std::io::stdout().lock();
        let mut text = String::new();
        if redraw && shown_lines > 0 {
            // Cursor up to the first line of the last round, then clear to the end of screen.
            text.push_str(&format!("\x1b[{shown_lines}F\x1b[J"));
        }
        text.push_str(&output);
        if stdout.write_all(text.as_bytes()).is_err() || stdout.flush().is_err() {
            break;
        }
        shown_lines = output.lines().count();
    }
    INTERRUPTED.store(false, Ordering::SeqCst);
    Ok(())
}

/// Join command-line words into one console line. Words pass unchanged, except a
/// `name=value` word whose value holds spaces or `;` (the shell took its quotes away):
/// its value is quoted again, so `zt /zerotier/set zt1 comment="a b"` means what it says.
/// A whole line given as one word (`zt '/zerotier/set zt1 comment="a b"'`) is not touched.
pub fn command_line(words: &[String]) -> String {
    words
        .iter()
        .map(|word| requote(word))
        .collect::<Vec<_>>()
        .join(" ")
}

fn requote(word: &str) -> String {
    let Some((name, value)) = word.split_once('=') else {
        return word.to_string();
    };
    let plain_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '!'));
    let needs_quotes = value.chars().any(|c| c.is_whitespace() || c == ';');
    if !plain_name || !needs_quotes || value.contains('"') {
        return word.to_string();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '$' => quoted.push_str("\\$"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            other => quoted.push(other),
        }
    }
    format!("{name}=\"{quoted}\"")
}

/// `zt COMMAND...`
pub fn one_command(options: &ConsoleOptions, words: &[String]) -> ExitCode {
    if options.script.is_some() {
        eprintln!("zt: give either -f FILE or a command, not both");
        return ExitCode::from(2);
    }
    let mut connection = match options.connect() {
        Ok(connection) => connection,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match run_line(&mut connection, &command_line(words)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", connection.error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// `zt` alone, or `zt -f FILE`.
pub fn session(options: &ConsoleOptions) -> ExitCode {
    let mut connection = match options.connect() {
        Ok(connection) => connection,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match &options.script {
        Some(path) => run_script_file(&mut connection, path),
        None => interactive::run(connection),
    }
}

fn run_script_file(connection: &mut Connection, path: &Path) -> ExitCode {
    let script = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    let script = match script {
        Ok(script) => script,
        Err(e) => {
            eprintln!("zt: cannot read {}: {}", path.display(), io_text(&e));
            return ExitCode::FAILURE;
        }
    };
    connection.console.export_header = Some(export_header());
    let run = connection.console.run_script_report(&script);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(run.output.as_bytes());
    let _ = stdout.flush();
    let Some(failure) = run.failure else {
        return ExitCode::SUCCESS;
    };
    eprintln!("{}", failure.text(&connection.error_text(&failure.error)));
    let took_effect = match run.ran.as_slice() {
        [] => "no command before it ran".to_string(),
        lines => format!(
            "the commands of line{} {} ran before it and took effect",
            if lines.len() == 1 { "" } else { "s" },
            line_ranges(lines)
        ),
    };
    eprintln!(
        "zt: the script stopped at line {}; {took_effect}; nothing after it ran",
        failure.line
    );
    ExitCode::FAILURE
}

/// Line numbers as ranges: `1-3, 6, 8-9`.
fn line_ranges(lines: &[usize]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &line in lines {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == line => *end = line,
            _ => ranges.push((line, line)),
        }
    }
    ranges
        .iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `zt info`, `zt listnetworks`, ...
pub fn service_command(options: &ConsoleOptions, command: &ServiceCommand) -> ExitCode {
    let (mut transport, _) = match options.transport() {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    match service::run(&mut transport, command, options.json, now_ms) {
        Ok(output) => service::finish(output),
        Err(e) => {
            eprintln!("zt: {}", e.message);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn script_lines_are_named_as_ranges() {
        assert_eq!(line_ranges(&[2]), "2");
        assert_eq!(line_ranges(&[1, 2, 3, 6, 8, 9]), "1-3, 6, 8-9");
    }

    #[test]
    fn words_join_into_one_line_requoting_spaced_values() {
        assert_eq!(
            command_line(&words(&["/zerotier/set", "zt1", "port=9994"])),
            "/zerotier/set zt1 port=9994"
        );
        assert_eq!(
            command_line(&words(&["/zerotier/set", "zt1", "comment=a b; c\\$"])),
            "/zerotier/set zt1 comment=\"a b; c\\\\\\$\""
        );
        // A whole line in one word, or a value already quoted for RouterOS, is left alone.
        assert_eq!(
            command_line(&words(&["/zerotier/set zt1 comment=\"a b\""])),
            "/zerotier/set zt1 comment=\"a b\""
        );
        assert_eq!(
            command_line(&words(&["print", "where", "name=zt1"])),
            "print where name=zt1"
        );
    }
}
