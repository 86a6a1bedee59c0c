//! `<home>/local.conf`: zerotier-one's local configuration file, so a home moved over from
//! zerotier-one keeps working and its tools find the file where they expect it.
//!
//! ztd reads the `settings` object: zerotier-one's keys where they apply to ztd, and ztd's own
//! keys beside them (zerotier-one ignores keys it does not know, so one file can serve both):
//!
//! ```json
//! { "settings": {
//!     "primaryPort": 9993,                       // TCP port of the management API
//!     "allowManagementFrom": ["192.168.88.0/24"], // API also on every address, for these
//!     "apiListen": ["127.0.0.1:9993"],            // ztd: exact API addresses instead
//!     "logLevel": "info",                         // ztd: off|error|warn|info|debug|trace
//!     "logFormat": "text",                        // ztd: text | json
//!     "controllerDb": "sqlite",                   // ztd: or postgresql://USER@HOST/DB
//!     "tcpFallbackRelay": "204.80.128.1/443",     // TCP relay used when UDP is blocked
//!     "allowTcpFallbackRelay": true               // false: never use one
//! } }
//! ```
//!
//! The command line and the environment win over the file. A file that does not parse, or a
//! key of the wrong type, stops ztd at start with the line, column and reason; on SIGHUP the
//! running settings stay and the error is logged. Other zerotier-one keys are named in the
//! log as not used.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use zt_controller::model::IpPrefix;

use crate::controller::ControllerDb;
use crate::logging::{LogFormat, LogLevel};
use crate::runtime::tcp_fallback::TcpFallbackSettings;

/// The file's name in the home directory, as zerotier-one names it.
pub const FILE_NAME: &str = "local.conf";

/// The settings ztd takes from `local.conf` (all optional: absent means "not set here").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalConf {
    pub primary_port: Option<u16>,
    pub allow_management_from: Vec<IpPrefix>,
    pub api_listen: Option<Vec<SocketAddr>>,
    pub log_level: Option<LogLevel>,
    pub log_format: Option<LogFormat>,
    pub controller_db: Option<ControllerDb>,
    /// zerotier-one's `interfacePrefixBlacklist`: addresses of interfaces whose name starts
    /// with one of these are never offered to peers as paths.
    pub interface_prefix_blacklist: Vec<String>,
    /// zerotier-one's `tcpFallbackRelay`: the TCP relay used when UDP is blocked.
    pub tcp_fallback_relay: Option<SocketAddr>,
    /// zerotier-one's `allowTcpFallbackRelay` (unset: allowed).
    pub allow_tcp_fallback_relay: Option<bool>,
    /// zerotier-one's `forceTcpRelay` (unset: no): the relay for everything, no UDP.
    pub force_tcp_relay: Option<bool>,
    /// zerotier-one keys of `settings` that ztd does not use (named in the log once).
    pub not_used: Vec<String>,
}

/// Why `local.conf` was refused: the path, the position and the reason, ready to print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LocalConfError(String);

#[derive(Deserialize, Default)]
struct FileShape {
    #[serde(default)]
    settings: Option<SettingsShape>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SettingsShape {
    #[serde(default, deserialize_with = "port")]
    primary_port: Option<u16>,
    #[serde(default, deserialize_with = "prefixes")]
    allow_management_from: Vec<IpPrefix>,
    #[serde(default)]
    api_listen: Option<Vec<SocketAddr>>,
    #[serde(default)]
    log_level: Option<LogLevel>,
    #[serde(default)]
    log_format: Option<LogFormat>,
    #[serde(default, deserialize_with = "controller_db")]
    controller_db: Option<ControllerDb>,
    #[serde(default, deserialize_with = "interface_prefixes")]
    interface_prefix_blacklist: Vec<String>,
    #[serde(default, deserialize_with = "relay_address")]
    tcp_fallback_relay: Option<SocketAddr>,
    #[serde(default)]
    allow_tcp_fallback_relay: Option<bool>,
    #[serde(default)]
    force_tcp_relay: Option<bool>,
    #[serde(flatten)]
    other: BTreeMap<String, serde::de::IgnoredAny>,
}

fn port<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    match u16::deserialize(deserializer)? {
        0 => Err(serde::de::Error::custom(
            "primaryPort 0: expected a TCP port 1-65535",
        )),
        port => Ok(Some(port)),
    }
}

fn prefixes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<IpPrefix>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| parse_management_prefix(text).map_err(serde::de::Error::custom))
        .collect()
}

/// An `allowManagementFrom` entry: `ADDRESS/BITS`, or a bare address (one host), as
/// zerotier-one takes them.
fn parse_management_prefix(text: &str) -> Result<IpPrefix, String> {
    let prefix = if text.contains('/') {
        text.parse::<IpPrefix>().ok()
    } else {
        text.parse::<IpAddr>().ok().and_then(|ip| {
            format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
                .parse()
                .ok()
        })
    };
    prefix.ok_or_else(|| format!("allowManagementFrom: {text:?} is not an address or ADDRESS/BITS"))
}

fn interface_prefixes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    let prefixes = Vec::<String>::deserialize(deserializer)?;
    // An empty prefix would match every interface and silently end direct paths.
    if prefixes.iter().any(|p| p.trim().is_empty()) {
        return Err(serde::de::Error::custom(
            "interfacePrefixBlacklist: an empty prefix would exclude every interface",
        ));
    }
    Ok(prefixes)
}

/// `tcpFallbackRelay`: zerotier-one writes `IP/PORT`; `IP:PORT` (`[IPv6]:PORT`) is taken too.
fn relay_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let slash_form = text
        .rsplit_once('/')
        .and_then(|(ip, port)| Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?)));
    slash_form
        .or_else(|| text.parse().ok())
        .filter(|address| address.port() != 0)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "tcpFallbackRelay: {text:?} is not IP/PORT (zerotier-one's form) or IP:PORT"
            ))
        })
}

fn controller_db<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ControllerDb>, D::Error> {
    let text = String::deserialize(deserializer)?;
    ControllerDb::parse(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("controllerDb: {e}")))
}

impl LocalConf {
    /// Parses the file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<LocalConf, LocalConfError> {
        if text.trim().is_empty() {
            // zerotier-one treats an empty file as no settings; so do we.
            return Ok(LocalConf::default());
        }
        let shape: FileShape = serde_json::from_str(text).map_err(|e| {
            LocalConfError(format!(
                "{}: line {} column {}: {}",
                origin.display(),
                e.line(),
                e.column(),
                reason_without_position(&e)
            ))
        })?;
        let settings = shape.settings.unwrap_or_default();
        Ok(LocalConf {
            primary_port: settings.primary_port,
            allow_management_from: settings.allow_management_from,
            api_listen: settings.api_listen,
            log_level: settings.log_level,
            log_format: settings.log_format,
            controller_db: settings.controller_db,
            interface_prefix_blacklist: settings.interface_prefix_blacklist,
            tcp_fallback_relay: settings.tcp_fallback_relay,
            allow_tcp_fallback_relay: settings.allow_tcp_fallback_relay,
            force_tcp_relay: settings.force_tcp_relay,
            not_used: settings.other.into_keys().collect(),
        })
    }

    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<LocalConf, LocalConfError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| LocalConfError(format!("{}: not UTF-8 text", path.display())))?;
                LocalConf::parse(&text, path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LocalConf::default()),
            Err(e) => Err(LocalConfError(format!("{}: {e}", path.display()))),
        }
    }

    /// The default place: `<home>/local.conf`.
    pub fn default_path(home: &Path) -> PathBuf {
        home.join(FILE_NAME)
    }

    /// The TCP fallback these settings ask for (zerotier-one's defaults where unset).
    pub fn tcp_fallback(&self) -> TcpFallbackSettings {
        let defaults = TcpFallbackSettings::default();
        TcpFallbackSettings {
            allowed: self.allow_tcp_fallback_relay.unwrap_or(defaults.allowed),
            relay: self.tcp_fallback_relay.unwrap_or(defaults.relay),
            forced: self.force_tcp_relay.unwrap_or(defaults.forced),
        }
    }

    /// True if a management request from `source` is admitted: loopback always, others only
    /// when `allowManagementFrom` lists them.
    pub fn admits(&self, source: IpAddr) -> bool {
        admitted(&self.allow_management_from, source)
    }
}

fn admitted(allowed: &[IpPrefix], source: IpAddr) -> bool {
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
    let source = source.to_canonical();
    source.is_loopback() || allowed.iter().any(|p| p.contains(source))
}

/// `allowManagementFrom` enforced on the API: a request from elsewhere gets 403 before any
/// handler (or token check) runs. Shared with the SIGHUP reload, which replaces the list.
///
/// `/metrics` is exempt, as in zerotier-one: a Prometheus server scrapes from wherever it runs,
/// and its `metricstoken.secret` opens nothing else.
#[derive(Clone, Default)]
pub struct ManagementAccess {
    allowed: Arc<RwLock<Vec<IpPrefix>>>,
}

impl ManagementAccess {
    pub fn new(conf: &LocalConf) -> ManagementAccess {
        let access = ManagementAccess::default();
        access.replace(conf);
        access
    }

    pub fn replace(&self, conf: &LocalConf) {
        *self.allowed.write().unwrap_or_else(|e| e.into_inner()) =
            conf.allow_management_from.clone();
    }

    pub fn admits(&self, source: IpAddr) -> bool {
        admitted(
            &self.allowed.read().unwrap_or_else(|e| e.into_inner()),
            source,
        )
    }

    /// `router` behind the check. The peer address comes from the server's connect info
    /// (`into_make_service_with_connect_info`); a request without one was made in-process.
    pub fn guard(&self, router: axum::Router) -> axum::Router {
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            check_source,
        ))
    }
}

const METRICS_PATH: &str = "/metrics";

async fn check_source(
    axum::extract::State(access): axum::extract::State<ManagementAccess>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::ConnectInfo;
    use axum::response::IntoResponse;
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    match source {
        Some(ip) if !access.admits(ip) && request.uri().path() != METRICS_PATH => {
            tracing::debug!(source = %ip, "management request refused: not in allowManagementFrom");
            (
                axum::http::StatusCode::FORBIDDEN,
                axum::Json(
                    serde_json::json!({"error": "management is not allowed from this address"}),
                ),
            )
                .into_response()
        }
        _ => next.run(request).await,
    }
}

/// serde_json appends " at line L column C" to its messages; the position is printed first.
fn reason_without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LocalConf, LocalConfError> {
        LocalConf::parse(text, Path::new("/var/lib/zt/local.conf"))
    }

    #[test]
    fn zerotier_one_and_ztd_settings_are_read() {
        let conf = parse(
            r#"{
  "physical": { "10.0.0.0/8": { "blacklist": true } },
  "settings": {
    "primaryPort": 9994,
    "allowManagementFrom": ["192.168.88.0/24", "2001:db8::1"],
    "portMappingEnabled": false,
    "logLevel": "info,ztd::controller=debug",
    "logFormat": "json",
    "apiListen": ["127.0.0.1:9994", "[::1]:9994"],
    "controllerDb": "postgresql://zt@%2Frun%2Fpostgresql/zt",
    "interfacePrefixBlacklist": ["docker", "veth"],
    "tcpFallbackRelay": "198.51.100.7/8443",
    "allowTcpFallbackRelay": false,
    "forceTcpRelay": true
  }
}"#,
        )
        .unwrap();
        assert_eq!(conf.primary_port, Some(9994));
        assert_eq!(conf.log_format, Some(LogFormat::Json));
        assert_eq!(
            conf.log_level.as_ref().map(LogLevel::as_str),
            Some("info,ztd::controller=debug")
        );
        assert_eq!(conf.api_listen.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            conf.controller_db,
            Some(ControllerDb::Postgres(
                "postgresql://zt@%2Frun%2Fpostgresql/zt".into()
            ))
        );
        assert_eq!(conf.not_used, vec!["portMappingEnabled".to_string()]);
        assert_eq!(conf.interface_prefix_blacklist, vec!["docker", "veth"]);
        assert_eq!(
            conf.tcp_fallback(),
            TcpFallbackSettings {
                allowed: false,
                relay: "198.51.100.7:8443".parse().unwrap(),
                forced: true,
            }
        );
        let colon_form = parse(r#"{"settings": {"tcpFallbackRelay": "[2001:db8::1]:443"}}"#);
        assert_eq!(
            colon_form.unwrap().tcp_fallback().relay,
            "[2001:db8::1]:443".parse().unwrap()
        );
        // zerotier-one's own form with an IPv6 relay.
        let slash_v6 = parse(r#"{"settings": {"tcpFallbackRelay": "2001:db8::1/443"}}"#);
        assert_eq!(
            slash_v6.unwrap().tcp_fallback().relay,
            "[2001:db8::1]:443".parse().unwrap()
        );
        assert!(conf.admits("192.168.88.7".parse().unwrap()));
        assert!(conf.admits("::ffff:192.168.88.7".parse().unwrap()));
        assert!(conf.admits("2001:db8::1".parse().unwrap()));
        assert!(conf.admits("127.0.0.1".parse().unwrap()));
        assert!(conf.admits("::1".parse().unwrap()));
        assert!(!conf.admits("192.168.89.7".parse().unwrap()));
        assert!(!conf.admits("2001:db8::2".parse().unwrap()));
    }

    #[test]
    fn an_empty_or_settingless_file_sets_nothing() {
        for text in ["", "  \n", "{}", r#"{"settings": {}}"#] {
            let conf = parse(text).unwrap();
            assert_eq!(conf, LocalConf::default(), "{text:?}");
            assert_eq!(conf.tcp_fallback(), TcpFallbackSettings::default());
            assert!(!conf.admits("10.0.0.1".parse().unwrap()));
        }
    }

    #[test]
    fn bad_files_are_refused_with_line_column_and_reason() {
        let cases = [
            (
                "{\n  \"settings\": {\n    \"primaryPort\": \"x\"\n  }\n}",
                "line 3",
                "invalid type",
            ),
            (
                "{\n  \"settings\": {\n    \"primaryPort\": 70000\n  }\n}",
                "line 3",
                "invalid value",
            ),
            ("{\"settings\": {\"primaryPort\": 0}}", "line 1", "1-65535"),
            (
                "{\n\"settings\": {\n\"allowManagementFrom\": [\"10.0.0.0/33\"]}}",
                "line 3",
                "allowManagementFrom",
            ),
            (
                "{\"settings\": {\"logLevel\": \"loud\"}}",
                "line 1",
                "invalid log level",
            ),
            (
                "{\"settings\": {\"logFormat\": \"xml\"}}",
                "line 1",
                "unknown variant",
            ),
            (
                "{\"settings\": {\"controllerDb\": \"mysql://x\"}}",
                "line 1",
                "controllerDb",
            ),
            (
                "{\"settings\": {\"interfacePrefixBlacklist\": [\"docker\", \"\"]}}",
                "line 1",
                "every interface",
            ),
            (
                "{\"settings\": {\"apiListen\": [\"localhost\"]}}",
                "line 1",
                "invalid",
            ),
            (
                "{\n  \"settings\": {\n    \"primaryPort\": 9993,\n  }\n}",
                "line 4",
                "trailing comma",
            ),
            ("[1, 2]", "line 1", "invalid type"),
            (
                "{\"settings\": {\"tcpFallbackRelay\": \"relay.example.com/443\"}}",
                "line 1",
                "tcpFallbackRelay",
            ),
            (
                "{\"settings\": {\"tcpFallbackRelay\": \"10.0.0.1/0\"}}",
                "line 1",
                "tcpFallbackRelay",
            ),
        ];
        for (text, line, reason) in cases {
            let error = parse(text).unwrap_err().to_string();
            assert!(
                error.starts_with("/var/lib/zt/local.conf: ")
                    && error.contains(line)
                    && error.contains(reason),
                "{text:?} → {error}"
            );
        }
    }

    #[tokio::test]
    async fn the_guard_refuses_sources_outside_allow_management_from() {
        use axum::extract::ConnectInfo;
        use tower::ServiceExt;
        let conf = parse(r#"{"settings": {"allowManagementFrom": ["192.168.88.0/24"]}}"#).unwrap();
        let access = ManagementAccess::new(&conf);
        let app = access.guard(
            axum::Router::new()
                .route("/status", axum::routing::get(|| async { "ok" }))
                .route("/metrics", axum::routing::get(|| async { "ok" })),
        );
        let call_path = |path: &str, source: &str| {
            let mut request = axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(source.parse::<SocketAddr>().unwrap()));
            let app = app.clone();
            async move { app.oneshot(request).await.unwrap().status().as_u16() }
        };
        let call = |source: &str| call_path("/status", source);
        assert_eq!(call_path("/metrics", "10.0.0.1:5000").await, 200);
        assert_eq!(call("192.168.88.20:5000").await, 200);
        assert_eq!(call("[::ffff:192.168.88.20]:5000").await, 200);
        assert_eq!(call("127.0.0.1:5000").await, 200);
        assert_eq!(call("10.0.0.1:5000").await, 403);
        access.replace(&parse(r#"{"settings": {"allowManagementFrom": ["10.0.0.0/8"]}}"#).unwrap());
        assert_eq!(call("10.0.0.1:5000").await, 200);
        assert_eq!(call("192.168.88.20:5000").await, 403);
    }

    #[test]
    fn a_missing_file_is_empty_and_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = LocalConf::default_path(dir.path());
        assert_eq!(LocalConf::load(&path).unwrap(), LocalConf::default());
        std::fs::write(&path, [0xff, 0xfe, b'{']).unwrap();
        assert!(LocalConf::load(&path)
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        std::fs::create_dir(dir.path().join("dir")).unwrap();
        assert!(LocalConf::load(&dir.path().join("dir")).is_err());
    }
}
