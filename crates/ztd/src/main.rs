//! `ztd`: the zt daemon. Serves the RouterOS REST API on a loopback TCP port and runs the
//! configured ZeroTier instances; stops gracefully on SIGTERM/SIGINT.
use std::future::IntoFuture;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use std::str::FromStr;

use ztd::controller::ControllerDb;
use ztd::daemon::Daemon;
use ztd::local_conf::{LocalConf, ManagementAccess};
use ztd::logging::{self, LogControl, LogFormat, LogLevel, DEFAULT_LEVEL};
use ztd::rest::{self, MenuRegistry};
use ztd::runtime::interfaces::ExcludedInterfaces;
use ztd::runtime::node_engine::NodeEngineFactory;
use ztd::runtime::sockets::ipv6_unavailable;
use ztd::state_dir::{write_atomic, StateDir};

#[derive(Debug, Parser)]
#[command(
    name = "ztd",
    about = "zt daemon: ZeroTier instances managed like RouterOS",
    long_about = "zt daemon: runs the ZeroTier instances of /zerotier (UDP, TAP interfaces, the \
built-in controller) and serves the management API (RouterOS REST under /rest, the \
zerotier-one JSON API for zerotier-cli, ztncui, zero-ui and ZTNet, /metrics). Needs \
CAP_NET_ADMIN (root) for TAP devices, addresses and routes.\n\n\
Settings come from the command line, then the environment, then <home>/local.conf \
(zerotier-one's file: settings.primaryPort, allowManagementFrom, tcpFallbackRelay and \
allowTcpFallbackRelay, and ztd's apiListen, logLevel, logFormat and controllerDb), then the defaults. SIGHUP re-reads local.conf: the \
log level and allowManagementFrom change at once, the rest at the next start."
)]
struct Cli {
    /// State directory (identities, configuration, authtoken.secret, local.conf). Under
    /// systemd, StateDirectory= sets it through STATE_DIRECTORY.
    #[arg(long, env = "STATE_DIRECTORY", default_value = "/var/lib/zt")]
    home: PathBuf,
    /// The settings file [default: <home>/local.conf].
    #[arg(long, env = "ZTD_CONFIG")]
    config: Option<PathBuf>,
    /// TCP address of the management API [default: 127.0.0.1:9993, and [::1] on the same
    /// port; with allowManagementFrom in local.conf: every address].
    #[arg(long, env = "ZTD_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// The controllers' database: a PostgreSQL URL (postgresql://USER@HOST/DB) shared by
    /// several ztd, or "sqlite" for controller.db in each instance directory [default: sqlite].
    #[arg(long, env = "ZTD_CONTROLLER_DB", value_parser = ControllerDb::parse)]
    controller_db: Option<ControllerDb>,
    /// What to log: a level (off, error, warn, info, debug, trace) or a tracing filter such
    /// as info,ztd::controller=debug [default: info].
    #[arg(long, env = "RUST_LOG")]
    log_level: Option<LogLevel>,
    /// How log lines look on stderr [default: text; colour only on a terminal].
    #[arg(long, env = "ZTD_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

/// The daemon's settings once the command line, the environment and `local.conf` are merged.
struct Settings {
    home: PathBuf,
    config_path: PathBuf,
    conf: LocalConf,
    /// The API addresses; `None`: the default loopback pair.
    api_listen: Option<Vec<SocketAddr>>,
    api_port: u16,
    controller_db: ControllerDb,
    /// Given on the command line or in the environment: local.conf's level does not apply.
    log_level_pinned: bool,
    log_level: LogLevel,
    log_format: LogFormat,
}

/// The API port when neither `--api-listen` nor `local.conf` names one (zerotier-one's).
const DEFAULT_API_PORT: u16 = 9993;

impl Settings {
    fn resolve(cli: Cli) -> Result<Settings, String> {
        let config_path = cli
            .config
            .clone()
            .unwrap_or_else(|| LocalConf::default_path(&cli.home));
        let conf = LocalConf::load(&config_path).map_err(|e| e.to_string())?;
        let api_port = conf.primary_port.unwrap_or(DEFAULT_API_PORT);
        let api_listen = match (cli.api_listen, &conf.api_listen) {
            (Some(address), _) => Some(vec![address]),
            (None, Some(addresses)) if !addresses.is_empty() => Some(addresses.clone()),
            // zerotier-one opens its API to every address when a remote source is allowed.
            (None, _) if !conf.allow_management_from.is_empty() => {
                Some(vec![SocketAddr::from((Ipv6Addr::UNSPECIFIED, api_port))])
            }
            (None, _) => None,
        };
        Ok(Settings {
            controller_db: cli
                .controller_db
                .or_else(|| conf.controller_db.clone())
                .unwrap_or_default(),
            log_level_pinned: cli.log_level.is_some(),
            log_level: cli
                .log_level
                .or_else(|| conf.log_level.clone())
                .unwrap_or_else(|| LogLevel::from_str(DEFAULT_LEVEL).expect("default level")),
            log_format: cli.log_format.or(conf.log_format).unwrap_or_default(),
            home: cli.home,
            config_path,
            conf,
            api_listen,
            api_port,
        })
    }
}

fn main() -> ExitCode {
    let version = zt_wire::header::version_text(env!("CARGO_PKG_VERSION"));
    let cli = match Cli::command()
        .version(version.clone())
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let settings = match Settings::resolve(cli) {
        Ok(settings) => settings,
        Err(message) => {
            // No logger yet: the reason goes to stderr as it is.
            eprintln!("ztd: {message}");
            return ExitCode::FAILURE;
        }
    };
    let logs = logging::init(settings.log_format, &settings.log_level);
    tracing::info!(version = %version, "ztd starting");
    for key in &settings.conf.not_used {
        tracing::info!(file = %settings.config_path.display(), "settings.{key} is a zerotier-one setting ztd does not use");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings, logs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings, logs: LogControl) -> Result<(), String> {
    let state = StateDir::open(&settings.home).map_err(|e| format!("state directory: {e}"))?;
    // Held until exit: a second ztd on the same home would fight over identities and ports.
    let _home_lock = lock_home(&state)?;
    // Each enabled instance runs a zt-node `Node`. Subsystems that need node events (TAP,
    // controller) register with `engines.subsystems()` before instances start.
    let engines = NodeEngineFactory::new();
    engines
        .excluded_interfaces()
        .set(settings.conf.interface_prefix_blacklist.clone());
    let daemon = Arc::new(
        Daemon::open_with(
            state,
            Arc::new(engines.clone()),
            settings.controller_db.clone(),
        )
        .map_err(|e| e.to_string())?,
    );
    // The network controller answers config requests for the networks each instance owns.
    engines
        .subsystems()
        .add(daemon.controller_subsystem().await);
    let listeners = bind_api(settings.api_listen.as_deref(), settings.api_port).await?;
    let port = listeners[0]
        .local_addr()
        .map_err(|e| format!("API socket: {e}"))?
        .port();
    // zerotier-cli (and tools built on it) read the API port from here.
    let port_file = daemon.state_dir().file(PORT_FILE);
    write_atomic(&port_file, port.to_string().as_bytes(), 0o644)
        .map_err(|e| format!("{}: {e}", port_file.display()))?;
    let addresses: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    tracing::info!(home = %settings.home.display(), api = ?addresses, controller_db = %settings.controller_db, "ztd started");
    daemon.set_tcp_fallback(settings.conf.tcp_fallback());
    daemon.start_enabled_instances().await;
    // An engine that panics is logged, shown in `/zerotier/print` and restarted.
    tokio::spawn(daemon.clone().supervise_instances());

    let access = ManagementAccess::new(&settings.conf);
    let app = access.guard(rest::router(daemon.clone(), MenuRegistry::standard()));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    tokio::spawn(reload_on_hangup(
        settings,
        logs,
        access,
        engines.excluded_interfaces(),
    ));
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let mut stopping = stopping.clone();
            let shutdown = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            tokio::spawn(
                axum::serve(
                    listener,
                    app.clone()
                        .into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .into_future(),
            )
        })
        .collect();
    // Under systemd (Type=notify): the API answers and the enabled instances run.
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    let mut served = Ok(());
    for server in servers {
        let result = match server.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        served = served.and(result);
    }
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    daemon.shutdown().await;
    tracing::info!("ztd stopped");
    served.map_err(|e| format!("API server failed: {e}"))
}

/// Tells systemd about a state change when it started us with `NOTIFY_SOCKET`; a no-op
/// elsewhere.
fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// SIGHUP: read `local.conf` again. The log level (unless the command line or the
/// environment set it) and `allowManagementFrom` change at once; the other settings are
/// bound at start, so a change to them is logged as waiting for a restart. A file that no
/// longer parses changes nothing.
async fn reload_on_hangup(
    mut running: Settings,
    logs: LogControl,
    access: ManagementAccess,
    excluded_interfaces: ExcludedInterfaces,
) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler: local.conf is read at start only");
        return;
    };
    while hangups.recv().await.is_some() {
        let conf = match LocalConf::load(&running.config_path) {
            Ok(conf) => conf,
            Err(error) => {
                tracing::error!(%error, "SIGHUP: local.conf refused; the running settings stay");
                continue;
            }
        };
        if !running.log_level_pinned {
            let level = conf
                .log_level
                .clone()
                .unwrap_or_else(|| LogLevel::from_str(DEFAULT_LEVEL).expect("default level"));
            if level != running.log_level {
                match logs.set_level(&level) {
                    Ok(()) => tracing::info!(level = level.as_str(), "SIGHUP: log level changed"),
                    Err(error) => tracing::error!(%error, "SIGHUP"),
                }
                running.log_level = level;
            }
        }
        access.replace(&conf);
        // Running instances use it at their next interface scan (within a minute).
        excluded_interfaces.set(conf.interface_prefix_blacklist.clone());
        let at_restart = [
            (
                "primaryPort",
                conf.primary_port != running.conf.primary_port,
            ),
            ("apiListen", conf.api_listen != running.conf.api_listen),
            (
                "controllerDb",
                conf.controller_db != running.conf.controller_db,
            ),
            ("logFormat", conf.log_format != running.conf.log_format),
            (
                "tcpFallbackRelay or allowTcpFallbackRelay",
                conf.tcp_fallback() != running.conf.tcp_fallback(),
            ),
            (
                "allowManagementFrom (the API's addresses)",
                conf.allow_management_from.is_empty()
                    != running.conf.allow_management_from.is_empty(),
            ),
        ];
        for (key, _) in at_restart.iter().filter(|(_, changed)| *changed) {
            tracing::warn!("SIGHUP: settings.{key} changed; it takes effect when ztd restarts");
        }
        tracing::info!(
            file = %running.config_path.display(),
            allow_management_from = ?conf.allow_management_from.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "SIGHUP: local.conf read again"
        );
        running.conf.allow_management_from = conf.allow_management_from;
        running.conf.log_level = conf.log_level;
    }
}

/// `<home>/zerotier-one.port`: the API's TCP port as decimal text, as zerotier-one writes it.
const PORT_FILE: &str = "zerotier-one.port";

/// The API's listening sockets: the given addresses, or by default `127.0.0.1:port` and
/// `[::1]:port` (as zerotier-one listens on both loopbacks), the latter left out when the
/// host has no IPv6 loopback. A single `127.0.0.1` address also gets its `[::1]` twin.
async fn bind_api(addresses: Option<&[SocketAddr]>, port: u16) -> Result<Vec<TcpListener>, String> {
    let default = [SocketAddr::from((Ipv4Addr::LOCALHOST, port))];
    let addresses = addresses.unwrap_or(&default);
    let mut listeners = Vec::new();
    for address in addresses {
        listeners.push(
            TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on {address}: {e}"))?,
        );
        if !address.ip().is_loopback() {
            // Plain HTTP with a bearer token: fine on loopback, not across a network.
            tracing::warn!(
                api = %address,
                "the management API listens beyond loopback over plain HTTP: anyone who reaches it can read its traffic and try tokens; keep it on loopback, or put it behind a TLS proxy and a firewall that admits only management hosts (allowManagementFrom in local.conf)"
            );
        }
    }
    if let [address] = addresses {
        if address.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) {
            let port = listeners[0]
                .local_addr()
                .map_err(|e| format!("API socket: {e}"))?
                .port();
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            match TcpListener::bind(v6).await {
                Ok(listener) => listeners.push(listener),
                Err(e) if ipv6_unavailable(&e) => {
                    tracing::info!(error = %e, "no IPv6 loopback: the API listens on 127.0.0.1 only")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen on {v6}; the API listens on {address} only")
                }
            }
        }
    }
    Ok(listeners)
}

async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Take an exclusive advisory lock on `<home>/ztd.lock` (released by the kernel when the
/// process exits, so a crash never leaves a stale lock).
fn lock_home(state: &StateDir) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let path = state.file("ztd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock(2) on a descriptor we own; no memory is shared with the kernel.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(format!(
            "{} is in use by another ztd ({})",
            state.root().display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_database_is_sqlite_or_a_postgresql_url() {
        assert_eq!(ControllerDb::parse("sqlite"), Ok(ControllerDb::Sqlite));
        for url in [
            "postgresql://zt@db.example/zt",
            "postgres://zt@%2Frun%2Fpostgresql/zt",
        ] {
            assert_eq!(
                ControllerDb::parse(url),
                Ok(ControllerDb::Postgres(url.to_string()))
            );
        }
        for bad in ["", "mysql://zt@db/zt", "controller.db"] {
            assert!(ControllerDb::parse(bad).is_err(), "{bad}");
        }
    }

    fn settings(args: &[&str], conf: &str) -> Result<Settings, String> {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("local.conf"), conf).unwrap();
        let mut argv = vec!["ztd", "--home", home.path().to_str().unwrap()];
        argv.extend_from_slice(args);
        Settings::resolve(Cli::try_parse_from(argv).unwrap())
    }

    #[test]
    fn the_command_line_wins_over_local_conf_which_wins_over_defaults() {
        let defaults = settings(&[], "").unwrap();
        assert_eq!(defaults.api_listen, None);
        assert_eq!(defaults.api_port, 9993);
        assert_eq!(defaults.controller_db, ControllerDb::Sqlite);
        assert_eq!(defaults.log_format, LogFormat::Text);

        let conf = r#"{"settings": {"primaryPort": 9994, "logFormat": "json", "controllerDb": "postgresql://zt@db/zt"}}"#;
        let from_file = settings(&[], conf).unwrap();
        assert_eq!(from_file.api_port, 9994);
        assert_eq!(from_file.log_format, LogFormat::Json);
        assert_eq!(
            from_file.controller_db,
            ControllerDb::Postgres("postgresql://zt@db/zt".into())
        );

        let from_cli = settings(
            &[
                "--api-listen",
                "127.0.0.1:7000",
                "--log-format",
                "text",
                "--controller-db",
                "sqlite",
            ],
            conf,
        )
        .unwrap();
        assert_eq!(
            from_cli.api_listen,
            Some(vec!["127.0.0.1:7000".parse().unwrap()])
        );
        assert_eq!(from_cli.log_format, LogFormat::Text);
        assert_eq!(from_cli.controller_db, ControllerDb::Sqlite);

        // A remote management source opens the API on every address of the primary port.
        let open = settings(
            &[],
            r#"{"settings": {"allowManagementFrom": ["10.1.0.0/16"]}}"#,
        )
        .unwrap();
        assert_eq!(open.api_listen, Some(vec!["[::]:9993".parse().unwrap()]));
    }

    #[test]
    fn a_bad_local_conf_stops_the_start_with_its_line() {
        let error = settings(&[], "{\n\"settings\": {\"primaryPort\": -1}}")
            .err()
            .unwrap();
        assert!(error.contains("local.conf: line 2"), "{error}");
    }
}
