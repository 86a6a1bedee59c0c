//! `ztd`: the zt daemon. Serves the RouterOS REST API on a loopback TCP port and runs the
//! configured ZeroTier instances; stops gracefully on SIGTERM/SIGINT.
use std::future::IntoFuture;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use ztd::controller::ControllerDb;
use ztd::daemon::Daemon;
use ztd::rest::{self, MenuRegistry};
use ztd::runtime::node_engine::NodeEngineFactory;
use ztd::runtime::sockets::ipv6_unavailable;
use ztd::state_dir::{write_atomic, StateDir};

#[derive(Debug, Parser)]
#[command(
    name = "ztd",
    about = "zt daemon: ZeroTier instances managed like RouterOS"
)]
struct Cli {
    /// State directory (identities, configuration, authtoken.secret).
    #[arg(long, default_value = "/var/lib/zt")]
    home: PathBuf,
    /// TCP address of the management API (RouterOS REST under /rest).
    #[arg(long, default_value = "127.0.0.1:9993")]
    api_listen: SocketAddr,
    /// The controllers' database: a PostgreSQL URL (postgresql://USER@HOST/DB) shared by
    /// several ztd, or "sqlite" (the default) for controller.db in each instance directory.
    #[arg(long, env = "ZTD_CONTROLLER_DB", default_value = "sqlite", value_parser = parse_controller_db)]
    controller_db: ControllerDb,
}

fn parse_controller_db(value: &str) -> Result<ControllerDb, String> {
    if value == "sqlite" {
        Ok(ControllerDb::Sqlite)
    } else if value.starts_with("postgresql://") || value.starts_with("postgres://") {
        Ok(ControllerDb::Postgres(value.to_string()))
    } else {
        Err("expected sqlite or a postgresql://USER@HOST/DB URL".into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let state = StateDir::open(&cli.home).map_err(|e| format!("state directory: {e}"))?;
    // Held until exit: a second ztd on the same home would fight over identities and ports.
    let _home_lock = lock_home(&state)?;
    // Each enabled instance runs a zt-node `Node`. Subsystems that need node events (TAP,
    // controller) register with `engines.subsystems()` before instances start.
    let engines = NodeEngineFactory::new();
    let daemon = Arc::new(
        Daemon::open_with(state, Arc::new(engines.clone()), cli.controller_db.clone())
            .map_err(|e| e.to_string())?,
    );
    // The network controller answers config requests for the networks each instance owns.
    engines
        .subsystems()
        .add(daemon.controller_subsystem().await);
    let listeners = bind_api(cli.api_listen).await?;
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
    tracing::info!(home = %cli.home.display(), api = ?addresses, "ztd started");
    daemon.start_enabled_instances().await;
    // An engine that panics is logged, shown in `/zerotier/print` and restarted.
    tokio::spawn(daemon.clone().supervise_instances());

    let app = rest::router(daemon.clone(), MenuRegistry::standard());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let mut stopping = stopping.clone();
            let shutdown = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            tokio::spawn(
                axum::serve(listener, app.clone())
                    .with_graceful_shutdown(shutdown)
                    .into_future(),
            )
        })
        .collect();
    let mut served = Ok(());
    for server in servers {
        let result = match server.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        served = served.and(result);
    }
    daemon.shutdown().await;
    tracing::info!("ztd stopped");
    served.map_err(|e| format!("API server failed: {e}"))
}

/// `<home>/zerotier-one.port`: the API's TCP port as decimal text, as zerotier-one writes it.
const PORT_FILE: &str = "zerotier-one.port";

/// The API's listening sockets: `address`, and for the default `127.0.0.1` also `[::1]` on
/// the same port (as zerotier-one listens on both loopbacks), left out when the host has no
/// IPv6 loopback.
async fn bind_api(address: SocketAddr) -> Result<Vec<TcpListener>, String> {
    let first = TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let mut listeners = vec![first];
    if !address.ip().is_loopback() {
        // Plain HTTP with a bearer token: fine on loopback, not across a network.
        tracing::warn!(
            api = %address,
            "the management API listens beyond loopback over plain HTTP: anyone who reaches it can read its traffic and try tokens; keep it on loopback, or put it behind a TLS proxy and a firewall that admits only management hosts"
        );
    }
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
        assert_eq!(parse_controller_db("sqlite"), Ok(ControllerDb::Sqlite));
        for url in [
            "postgresql://zt@db.example/zt",
            "postgres://zt@%2Frun%2Fpostgresql/zt",
        ] {
            assert_eq!(
                parse_controller_db(url),
                Ok(ControllerDb::Postgres(url.to_string()))
            );
        }
        for bad in ["", "mysql://zt@db/zt", "controller.db"] {
            assert!(parse_controller_db(bad).is_err(), "{bad}");
        }
    }
}
