//! End-to-end tests of the `ztd` binary: start it on a temporary home and a free loopback
//! TCP port, talk RouterOS REST to it over raw HTTP/1.1, and check files, sockets and
//! restarts. Only loopback traffic; every wait has a deadline.
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const START_DEADLINE: Duration = Duration::from_secs(30);
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// Identity generation (memory-hard hash) can take a while in a debug build.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

struct Ztd {
    child: Option<Child>,
    home: PathBuf,
    api: SocketAddr,
    token: String,
}

impl Ztd {
    /// Start ztd on a fresh port; retried on another port if the daemon could not listen
    /// (another process took the port between our probe and its bind).
    fn start(home: &Path) -> Ztd {
        for _ in 0..3 {
            if let Some(ztd) = Ztd::try_start(home) {
                return ztd;
            }
        }
        panic!("ztd did not start");
    }

    fn try_start(home: &Path) -> Option<Ztd> {
        let api = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.with_extension("log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ztd"))
            .arg("--home")
            .arg(home)
            .arg("--api-listen")
            .arg(api.to_string())
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ztd");
        let mut ztd = Ztd {
            child: Some(child),
            home: home.to_path_buf(),
            api,
            token: String::new(),
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = ztd.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("ztd exited early with {status}: {}", ztd.log());
                ztd.child = None;
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "ztd did not listen in time: {}",
                ztd.log()
            );
            // Ready when our own daemon answers: its token file exists and is accepted.
            if let Ok(token) = fs::read_to_string(home.join("authtoken.secret")) {
                ztd.token = token.trim().to_string();
                if TcpStream::connect(api).is_ok()
                    && ztd.request("GET", "/rest/zerotier", None).status == 200
                {
                    return Some(ztd);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.home.with_extension("log")).unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on the child we spawned.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "ztd exit status {status}: {}", self.log());
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ztd did not stop on SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("X-ZT1-Auth: {}\r\n", self.token);
        http(self.api, method, path, &auth, body)
    }
}

impl Drop for Ztd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: String,
    body: Value,
}

impl Reply {
    fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }
}

/// One HTTP/1.1 request with `Connection: close`; the reply body parsed as JSON (Null if empty).
fn http(
    api: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &str,
    body: Option<&Value>,
) -> Reply {
    let text = body.map(|b| b.to_string());
    http_raw(
        api,
        method,
        path,
        extra_headers,
        text.as_deref().map(|t| ("application/json", t)),
    )
}

/// A request with a body of any content type: `(content type, text)`.
fn http_raw(
    api: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &str,
    body: Option<(&str, &str)>,
) -> Reply {
    let mut stream = TcpStream::connect(api).unwrap();
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let body_text = body.map(|(_, t)| t).unwrap_or_default();
    let content_type = body
        .map(|(ct, _)| format!("Content-Type: {ct}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n{extra_headers}{content_type}Content-Length: {}\r\n\r\n{body_text}",
        body_text.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP reply");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).expect("JSON body")
    };
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body,
    }
}

/// Ports handed out in this test process, so parallel tests never get the same one.
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn claim(port: u16) -> bool {
    let mut ports = HANDED_OUT.lock().unwrap();
    if ports.contains(&port) {
        return false;
    }
    ports.push(port);
    true
}

fn free_tcp_port() -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if claim(port) {
            return port;
        }
    }
    panic!("no free TCP port");
}

/// A UDP port free on both 0.0.0.0 and [::] right now.
fn free_udp_port() -> u16 {
    for _ in 0..50 {
        let port = UdpSocket::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if udp_port_free(port) && claim(port) {
            return port;
        }
    }
    panic!("no free UDP port");
}

fn udp_port_free(port: u16) -> bool {
    UdpSocket::bind(("0.0.0.0", port)).is_ok()
}

#[test]
fn requests_without_the_token_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ztd = Ztd::start(&tmp.path().join("home"));
    let reply = http(ztd.api, "GET", "/rest/zerotier", "", None);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, json!({"error": 401, "message": "Unauthorized"}));
    assert!(
        reply.headers.contains("www-authenticate: basic"),
        "{}",
        reply.headers
    );
    let wrong = http(
        ztd.api,
        "GET",
        "/rest/zerotier",
        "X-ZT1-Auth: wrongtoken\r\n",
        None,
    );
    assert_eq!(wrong.status, 401);
    // The three accepted forms.
    let bearer = http(
        ztd.api,
        "GET",
        "/rest/zerotier",
        &format!("Authorization: Bearer {}\r\n", ztd.token),
        None,
    );
    assert_eq!(bearer.status, 200);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", ztd.token));
    let basic = http(
        ztd.api,
        "GET",
        "/rest/zerotier",
        &format!("Authorization: Basic {basic}\r\n"),
        None,
    );
    assert_eq!(basic.status, 200);
    assert_eq!(ztd.request("GET", "/rest/zerotier", None).status, 200);
    // The token file is a 24-character a-z0-9 secret readable only by its owner.
    let mode = fs::metadata(tmp.path().join("home/authtoken.secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(ztd.token.len(), 24);
    assert!(ztd
        .token
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    ztd.stop();
}

#[test]
fn default_instance_exists_disabled_and_bad_requests_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ztd = Ztd::start(&tmp.path().join("home"));
    let list = ztd.request("GET", "/rest/zerotier", None);
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body,
        json!([{
            ".id": "*1",
            "name": "zt1",
            "port": "9993",
            "disabled": "true",
            "interfaces": "all",
            "route-distance": "1",
            "comment": "ZeroTier Central controller - https://my.zerotier.com/",
            "online": "false",
        }])
    );
    let before = list.body.clone();

    let unknown = ztd.request("PATCH", "/rest/zerotier/zt1", Some(&json!({"bogus": "1"})));
    assert_eq!(
        (unknown.status, unknown.detail()),
        (400, "unknown parameter bogus")
    );
    assert_eq!(unknown.body["message"], "Bad Request");
    assert_eq!(unknown.body["error"], 400);
    let range = ztd.request(
        "PATCH",
        "/rest/zerotier/*1",
        Some(&json!({"port": "70000", "comment": "x"})),
    );
    assert_eq!(
        (range.status, range.detail()),
        (400, "value of port is out of range (1 .. 65535)")
    );
    let not_a_number = ztd.request(
        "PATCH",
        "/rest/zerotier/zt1",
        Some(&json!({"port": "ninety"})),
    );
    assert_eq!(
        (not_a_number.status, not_a_number.detail()),
        (400, "invalid value for argument port")
    );
    let read_only = ztd.request(
        "PATCH",
        "/rest/zerotier/zt1",
        Some(&json!({"online": "true"})),
    );
    assert_eq!(
        (read_only.status, read_only.detail()),
        (400, "unknown parameter online")
    );
    let clash = ztd.request(
        "PUT",
        "/rest/zerotier",
        Some(&json!({"name": "zt2", "disabled": "yes"})),
    );
    assert_eq!(
        (clash.status, clash.detail()),
        (400, "failure: port 9993 already used by instance zt1")
    );
    let default_remove = ztd.request("DELETE", "/rest/zerotier/zt1", None);
    assert_eq!(
        (default_remove.status, default_remove.detail()),
        (400, "failure: default instance can not be removed")
    );
    let auth = format!("X-ZT1-Auth: {}\r\n", ztd.token);
    let empty = http(ztd.api, "PATCH", "/rest/zerotier/zt1", &auth, None);
    assert_eq!(empty.status, 200, "an empty body is an empty set");
    let bad_json = http_raw(
        ztd.api,
        "PATCH",
        "/rest/zerotier/zt1",
        &auth,
        Some(("application/json", "{not json")),
    );
    assert_eq!(
        (bad_json.status, bad_json.detail()),
        (400, "Failed to parse json")
    );
    let not_json = http_raw(
        ztd.api,
        "PATCH",
        "/rest/zerotier/zt1",
        &auth,
        Some(("text/plain", "port=1")),
    );
    assert_eq!(not_json.status, 415);
    assert_eq!(
        ztd.request("GET", "/rest/zerotier", None).body,
        before,
        "refused commands changed nothing"
    );
    assert_eq!(
        ztd.request("GET", "/rest/nosuchmenu", None).detail(),
        "no such command or directory (nosuchmenu)"
    );
    assert_eq!(ztd.request("GET", "/rest/zerotier/zt9", None).status, 404);
    assert_eq!(ztd.request("DELETE", "/rest/zerotier/*9", None).status, 404);
    let no_cmd = ztd.request("POST", "/rest/zerotier/frobnicate", Some(&json!({})));
    assert_eq!((no_cmd.status, no_cmd.detail()), (400, "no such command"));

    // A second instance with its own port, created disabled: 201 + Location, then listed.
    let port = free_udp_port();
    let added = ztd.request(
        "PUT",
        "/rest/zerotier",
        Some(&json!({"name": "zt2", "port": port, "disabled": true})),
    );
    assert_eq!(added.status, 201, "{:?}", added.body);
    assert_eq!(added.body[".id"], "*2");
    assert_eq!(added.body["port"], port.to_string());
    assert!(
        added.headers.contains("location: /rest/zerotier/*2"),
        "{}",
        added.headers
    );
    let dup = ztd.request(
        "PUT",
        "/rest/zerotier",
        Some(&json!({"name": "zt2", "port": port + 1, "disabled": true})),
    );
    assert_eq!(
        (dup.status, dup.detail()),
        (400, "failure: instance with name zt2 already exists")
    );
    // Filters and .proplist.
    let filtered = ztd.request("GET", "/rest/zerotier?name=zt2&.proplist=name,port", None);
    assert_eq!(
        filtered.body,
        json!([{".id": "*2", "name": "zt2", "port": port.to_string()}])
    );
    let printed = ztd.request(
        "POST",
        "/rest/zerotier/print",
        Some(&json!({".proplist": "name", ".query": ["name=zt1", "name=zt2", "#|", "disabled=true"]})),
    );
    assert_eq!(
        printed.body,
        json!([{".id": "*1", "name": "zt1"}, {".id": "*2", "name": "zt2"}])
    );
    let got = ztd.request(
        "POST",
        "/rest/zerotier/get",
        Some(&json!({".id": "zt2", "value-name": "port"})),
    );
    assert_eq!(got.body, json!({"ret": port.to_string()}));
    let removed = ztd.request("DELETE", "/rest/zerotier/zt2", None);
    assert_eq!(removed.status, 204);
    assert_eq!(
        ztd.request("DELETE", "/rest/zerotier/zt2", None).status,
        404
    );
    assert_eq!(ztd.request("GET", "/rest/zerotier", None).body, before);

    // The configuration survives a restart.
    ztd.stop();
    let mut again = Ztd::start(&tmp.path().join("home"));
    assert_eq!(again.request("GET", "/rest/zerotier", None).body, before);
    again.stop();
}

#[test]
fn enable_creates_identity_binds_port_and_restart_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let mut ztd = Ztd::start(&home);
    let port = free_udp_port();
    let set = ztd.request(
        "PATCH",
        "/rest/zerotier/zt1",
        Some(&json!({"port": port.to_string()})),
    );
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["port"], port.to_string());
    assert!(udp_port_free(port), "a disabled instance binds nothing");

    let enabled = ztd.request(
        "POST",
        "/rest/zerotier/enable",
        Some(&json!({".id": "zt1"})),
    );
    assert_eq!(enabled.status, 200, "{:?} {}", enabled.body, ztd.log());
    assert_eq!(enabled.body, json!([]));
    assert!(
        !udp_port_free(port),
        "the primary port is bound after enable"
    );

    let secret_path = home.join("zt1/identity.secret");
    let public_path = home.join("zt1/identity.public");
    let secret = fs::read_to_string(&secret_path).unwrap();
    let public = fs::read_to_string(&public_path).unwrap();
    assert_eq!(
        fs::metadata(&secret_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        secret.starts_with(public.trim()),
        "secret {secret:?} extends public {public:?}"
    );
    let address = public.split(':').next().unwrap().to_string();
    assert_eq!(address.len(), 10);
    // A real ZeroTier identity: parses, has its private key, passes the address derivation.
    let identity = zt_crypto::Identity::from_string(secret.trim()).expect("identity.secret parses");
    assert!(identity.has_private());
    assert!(identity.locally_validate(), "generated identity validates");
    assert_eq!(identity.address().to_string(), address);
    assert_eq!(identity.to_public_string(), public.trim());

    let zt1 = ztd.request("GET", "/rest/zerotier/zt1", None).body;
    assert_eq!(zt1["disabled"], "false");
    assert_eq!(zt1["identity"], address.as_str());
    assert_eq!(zt1["identity.public"], public.trim());
    assert_eq!(zt1["state"], "running");
    assert_eq!(
        zt1["online"], "false",
        "no protocol engine yet, so never online"
    );

    // Another instance may not take a port zt1 uses.
    let clash = ztd.request(
        "PUT",
        "/rest/zerotier",
        Some(&json!({"name": "zt2", "port": port})),
    );
    assert_eq!(clash.status, 400);
    assert_eq!(
        clash.detail(),
        format!("failure: port {port} already used by instance zt1")
    );

    // Restart: same identity, still enabled, port bound again.
    ztd.stop();
    assert!(udp_port_free(port), "sockets are closed on shutdown");
    let mut ztd = Ztd::start(&home);
    let after = ztd.request("GET", "/rest/zerotier/zt1", None).body;
    assert_eq!(after["identity.public"], public.trim());
    assert_eq!(after["state"], "running");
    assert_eq!(fs::read_to_string(&secret_path).unwrap(), secret);
    assert!(!udp_port_free(port));

    // Moving a running instance to another port rebinds it.
    let port2 = free_udp_port();
    let moved = ztd.request("PATCH", "/rest/zerotier/zt1", Some(&json!({"port": port2})));
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert!(udp_port_free(port));
    assert!(!udp_port_free(port2));

    // A port held by someone else: the change is refused and the instance keeps running.
    let squatter = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let refused = ztd.request("PATCH", "/rest/zerotier/zt1", Some(&json!({"port": taken})));
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .detail()
            .starts_with(&format!("failure: cannot bind UDP port {taken}")),
        "{}",
        refused.detail()
    );
    let still = ztd.request("GET", "/rest/zerotier/zt1", None).body;
    assert_eq!(still["port"], port2.to_string());
    assert_eq!(still["state"], "running");
    assert!(!udp_port_free(port2));

    // Disable closes the sockets.
    let disabled = ztd.request(
        "POST",
        "/rest/zerotier/disable",
        Some(&json!({"numbers": "zt1"})),
    );
    assert_eq!(disabled.status, 200);
    assert!(udp_port_free(port2));
    assert_eq!(
        ztd.request("GET", "/rest/zerotier/zt1", None).body["disabled"],
        "true"
    );
    ztd.stop();
}
