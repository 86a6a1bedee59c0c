//! `zt info`, `listnetworks`, `listpeers`, `join`, `leave`: the zerotier-cli commands, over the
//! zerotier-one service API (`/status`, `/network`, `/peer`) that `ztd` serves beside `/rest`.
//!
//! Output follows zerotier-cli 1.x line for line (`200 info <address> <version> ONLINE`), so
//! scripts written for it keep working; `-j` prints the service's JSON instead. A refused
//! request prints `<status> <command> <body>` on stdout and exits 1, as zerotier-cli does.

use std::process::ExitCode;

use serde_json::Value;
use zt_console::{BackendError, RestRequest, Transport};

/// The zerotier-cli commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServiceCommand {
    /// Node address, version and ONLINE/OFFLINE/TUNNELED (zerotier-cli info).
    #[command(alias = "status")]
    Info,
    /// Joined networks (zerotier-cli listnetworks).
    Listnetworks,
    /// Known peers with their preferred path (zerotier-cli listpeers).
    Listpeers,
    /// Join a network (zerotier-cli join).
    Join {
        /// 16 hex digits.
        #[arg(value_parser = parse_network_id)]
        network: String,
    },
    /// Leave a network (zerotier-cli leave).
    Leave {
        /// 16 hex digits.
        #[arg(value_parser = parse_network_id)]
        network: String,
    },
}

fn parse_network_id(text: &str) -> Result<String, String> {
    if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err("a network id is 16 hex digits".into())
    }
}

impl ServiceCommand {
    /// The word zerotier-cli prints after the status code.
    fn name(&self) -> &'static str {
        match self {
            ServiceCommand::Info => "info",
            ServiceCommand::Listnetworks => "listnetworks",
            ServiceCommand::Listpeers => "listpeers",
            ServiceCommand::Join { .. } => "join",
            ServiceCommand::Leave { .. } => "leave",
        }
    }

    fn request(&self) -> RestRequest {
        let (method, path, body) = match self {
            ServiceCommand::Info => ("GET", "/status".to_string(), None),
            ServiceCommand::Listnetworks => ("GET", "/network".to_string(), None),
            ServiceCommand::Listpeers => ("GET", "/peer".to_string(), None),
            ServiceCommand::Join { network } => (
                "POST",
                format!("/network/{network}"),
                Some(Value::Object(Default::default())),
            ),
            ServiceCommand::Leave { network } => ("DELETE", format!("/network/{network}"), None),
        };
        RestRequest { method, path, body }
    }
}

/// What a service command prints and how it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOutput {
    pub stdout: String,
    pub success: bool,
}

/// Run one command; `Err` only when no reply came (the daemon is not reachable).
pub fn run(
    transport: &mut dyn Transport,
    command: &ServiceCommand,
    json: bool,
    now_ms: u64,
) -> Result<ServiceOutput, BackendError> {
    let response = transport.send(&command.request())?;
    Ok(render(
        command,
        json,
        response.status,
        &response.body,
        now_ms,
    ))
}

/// Turn a reply into zerotier-cli's output. `now_ms` dates the path ages of `listpeers`.
pub fn render(
    command: &ServiceCommand,
    json: bool,
    status: u16,
    body: &str,
    now_ms: u64,
) -> ServiceOutput {
    let name = command.name();
    let failed = |text: String| ServiceOutput {
        stdout: text,
        success: false,
    };
    if status != 200 {
        return failed(format!("{status} {name} {}\n", body.trim_end()));
    }
    let ok = |stdout: String| ServiceOutput {
        stdout,
        success: true,
    };
    if let ServiceCommand::Join { .. } | ServiceCommand::Leave { .. } = command {
        return ok(if json {
            with_newline(body)
        } else {
            format!("200 {name} OK\n")
        });
    }
    let value: Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(e) => return failed(format!("{status} {name} invalid JSON response ({e})\n")),
    };
    if json {
        return ok(with_newline(
            &serde_json::to_string_pretty(&value).unwrap_or_default(),
        ));
    }
    ok(match command {
        ServiceCommand::Info => info_line(&value),
        ServiceCommand::Listnetworks => network_lines(&value),
        ServiceCommand::Listpeers => peer_lines(&value, now_ms),
        ServiceCommand::Join { .. } | ServiceCommand::Leave { .. } => String::new(),
    })
}

fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

/// A string field, or `-` when absent or empty (zerotier-cli's placeholder).
fn text<'a>(object: &'a Value, key: &str) -> &'a str {
    match object.get(key).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s,
        _ => "-",
    }
}

fn info_line(status: &Value) -> String {
    if !status.is_object() {
        return String::new();
    }
    let truthy = |key: &str| status.get(key).and_then(Value::as_bool).unwrap_or(false);
    let state = if truthy("tcpFallbackActive") {
        "TUNNELED"
    } else if truthy("online") {
        "ONLINE"
    } else {
        "OFFLINE"
    };
    format!(
        "200 info {} {} {state}\n",
        text(status, "address"),
        text(status, "version")
    )
}

fn network_lines(networks: &Value) -> String {
    let mut out = String::from(
        "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>\n",
    );
    for network in networks.as_array().into_iter().flatten() {
        if !network.is_object() {
            continue;
        }
        let addresses: Vec<&str> = network
            .get("assignedAddresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let addresses = if addresses.is_empty() {
            "-".to_string()
        } else {
            addresses.join(",")
        };
        out.push_str(&format!(
            "200 listnetworks {} {} {} {} {} {} {addresses}\n",
            text(network, "nwid"),
            text(network, "name"),
            text(network, "mac"),
            text(network, "status"),
            text(network, "type"),
            text(network, "portDeviceName"),
        ));
    }
    out
}

fn peer_lines(peers: &Value, now_ms: u64) -> String {
    let mut out = String::from("200 listpeers <ztaddr> <path> <latency> <version> <role>\n");
    for peer in peers.as_array().into_iter().flatten() {
        if !peer.is_object() {
            continue;
        }
        // The preferred path, with how long ago it last sent and received (ms).
        let age = |path: &Value, key: &str| match path.get(key).and_then(Value::as_u64) {
            Some(at) if at > 0 => now_ms.saturating_sub(at).to_string(),
            _ => "-1".to_string(),
        };
        let best_path = peer
            .get("paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|path| path.get("preferred").and_then(Value::as_bool) == Some(true))
            .map(|path| {
                format!(
                    "{};{};{}",
                    text(path, "address"),
                    age(path, "lastSend"),
                    age(path, "lastReceive")
                )
            })
            .unwrap_or_else(|| "-".to_string());
        let version_part = |key: &str| peer.get(key).and_then(Value::as_i64).unwrap_or(-1);
        let version = if version_part("versionMajor") >= 0 {
            format!(
                "{}.{}.{}",
                version_part("versionMajor"),
                version_part("versionMinor"),
                version_part("versionRev")
            )
        } else {
            "-".to_string()
        };
        let latency = peer.get("latency").and_then(Value::as_i64).unwrap_or(-1);
        out.push_str(&format!(
            "200 listpeers {} {best_path} {latency} {version} {}\n",
            text(peer, "address"),
            text(peer, "role"),
        ));
    }
    out
}

/// Print a service command's result and choose the exit code.
pub fn finish(output: ServiceOutput) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    // Network names and the like come from controllers: nothing of theirs may steer the terminal.
    let text = zt_console::format::terminal_safe(&output.stdout);
    if stdout.write_all(text.as_bytes()).is_err() || stdout.flush().is_err() {
        return ExitCode::FAILURE;
    }
    if output.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real `/status`, `/network` and `/peer` of three zerotier-one 1.14.1 nodes.
    fn captured() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/interop/captures/nodes-api.json"
        );
        let text = std::fs::read_to_string(path).expect("testdata/interop/captures/nodes-api.json");
        serde_json::from_str(&text).expect("nodes-api.json is JSON")
    }

    fn render_ok(command: ServiceCommand, value: &Value, now_ms: u64) -> String {
        let output = render(&command, false, 200, &value.to_string(), now_ms);
        assert!(output.success);
        output.stdout
    }

    #[test]
    fn info_from_a_real_status() {
        let nodes = captured();
        let status = &nodes["root"]["status"];
        assert_eq!(
            render_ok(ServiceCommand::Info, status, 0),
            "200 info ae2436cf84 1.14.1 ONLINE\n"
        );
        let mut offline = status.clone();
        offline["online"] = Value::Bool(false);
        assert_eq!(
            render_ok(ServiceCommand::Info, &offline, 0),
            "200 info ae2436cf84 1.14.1 OFFLINE\n"
        );
        offline["tcpFallbackActive"] = Value::Bool(true);
        assert!(render_ok(ServiceCommand::Info, &offline, 0).ends_with(" TUNNELED\n"));
    }

    #[test]
    fn listnetworks_from_a_real_network_list() {
        let nodes = captured();
        assert_eq!(
            render_ok(
                ServiceCommand::Listnetworks,
                &nodes["member"]["networks"],
                0
            ),
            "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>\n\
             200 listnetworks 51479cea31ccae5c zt-capture-lab 5e:08:09:57:a1:f3 OK PRIVATE \
             ztxn3fardn fd51:479c:ea31:ccae:5c99:93a6:c566:4b6f/88,\
             fc60:8b32:b6a6:c566:4b6f::1/40,172.27.27.16/24\n"
        );
        assert_eq!(
            render_ok(ServiceCommand::Listnetworks, &nodes["root"]["networks"], 0),
            "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>\n"
        );
    }

    #[test]
    fn listpeers_from_a_real_peer_list_ages_paths_from_now() {
        let nodes = captured();
        let now = nodes["root"]["status"]["clock"].as_u64().unwrap();
        assert_eq!(now, 1795619932222);
        assert_eq!(
            render_ok(ServiceCommand::Listpeers, &nodes["root"]["peers"], now),
            "200 listpeers <ztaddr> <path> <latency> <version> <role>\n\
             200 listpeers 51479cea31 10.77.0.2/9993;308;308 17 1.14.1 LEAF\n\
             200 listpeers 6ebff17e20 10.77.0.4/9993;5868;5868 17 1.8.4 LEAF\n\
             200 listpeers a6c5664b6f 10.77.0.3/9993;289;289 18 1.14.1 LEAF\n"
        );
        let unknown = serde_json::json!([{
            "address": "0123456789", "latency": -1, "paths": [], "role": "PLANET",
            "versionMajor": -1, "versionMinor": -1, "versionRev": -1
        }]);
        assert!(render_ok(ServiceCommand::Listpeers, &unknown, now)
            .ends_with("200 listpeers 0123456789 - -1 - PLANET\n"));
    }

    #[test]
    fn json_output_and_refusals() {
        let nodes = captured();
        let status = &nodes["root"]["status"];
        let output = render(&ServiceCommand::Info, true, 200, &status.to_string(), 0);
        let reparsed: Value = serde_json::from_str(&output.stdout).unwrap();
        assert_eq!(&reparsed, status);

        let join = ServiceCommand::Join {
            network: "51479cea31ccae5c".into(),
        };
        assert_eq!(render(&join, false, 200, "{}", 0).stdout, "200 join OK\n");
        let refused = render(
            &join,
            false,
            404,
            "{\"error\":404,\"message\":\"Not Found\"}",
            0,
        );
        assert!(!refused.success);
        assert_eq!(
            refused.stdout,
            "404 join {\"error\":404,\"message\":\"Not Found\"}\n"
        );
        let garbage = render(&ServiceCommand::Listpeers, false, 200, "<html>", 0);
        assert!(!garbage.success);
        assert!(garbage
            .stdout
            .starts_with("200 listpeers invalid JSON response"));
    }

    #[test]
    fn requests_follow_the_service_api() {
        let join = ServiceCommand::Join {
            network: "51479cea31ccae5c".into(),
        };
        let request = join.request();
        assert_eq!(
            (request.method, request.path.as_str()),
            ("POST", "/network/51479cea31ccae5c")
        );
        assert_eq!(request.body, Some(serde_json::json!({})));
        let leave = ServiceCommand::Leave {
            network: "51479cea31ccae5c".into(),
        }
        .request();
        assert_eq!((leave.method, leave.body), ("DELETE", None));
        assert_eq!(
            parse_network_id("51479CEA31CCAE5C").unwrap(),
            "51479cea31ccae5c"
        );
        assert!(parse_network_id("51479cea31ccae5").is_err());
        assert!(parse_network_id("51479cea31ccae5g").is_err());
    }
}
