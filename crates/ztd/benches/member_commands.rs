//! RouterOS member commands at scale: a controller whose database holds `ZT_MEMBERS` members
//! (default 100,000, in one big network, plus a small network of 10), driven through ztd's
//! RouterOS REST router in process (no sockets: what is timed is the command, from request to
//! response body) and through the `zt` console's command language over the same router.
//! Prints p50/p99 per command, and the latency of `/zerotier/interface` print idle and while
//! two clients send member commands back to back.
//!
//! ```text
//! cargo bench -p ztd --bench member_commands                        # SQLite, 100,000 members
//! ZT_BENCH_DB=postgresql cargo bench -p ztd --bench member_commands # a throw-away cluster
//! ZT_MEMBERS=2000 ZT_ROUNDS=50 cargo bench -p ztd --bench member_commands
//! ZT_CONSOLE_ROUNDS=10 cargo bench -p ztd --bench member_commands   # fewer console rounds
//! ```
//! The members are stored directly through the storage API (fast path: made-up addresses, no
//! identities), before the daemon reads anything; instances are not started, so nothing is
//! sent on any network.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use zt_console::{BackendError, Console, RestBackend, RestRequest, RestResponse, Transport};
use zt_controller::model::Member;
use zt_controller::{PostgresStorage, SqliteStorage, Storage};
use zt_crypto::Address;
use ztd::controller::{ControllerDb, DB_FILE};
use ztd::daemon::Daemon;
use ztd::rest::MenuRegistry;
use ztd::runtime::engine::NoProtocolFactory;
use ztd::state_dir::StateDir;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The router of one daemon, called in process.
#[derive(Clone)]
struct Api {
    router: axum::Router,
    token: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-zt1-auth", &self.token)
            .header("content-type", "application/json")
            .body(match body {
                Some(v) => Body::from(v.to_string()),
                None => Body::empty(),
            })
            .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("router");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }
}

/// The console's transport: each request through the router, on the bench's runtime.
struct InProcess {
    api: Api,
    runtime: tokio::runtime::Handle,
}

impl Transport for InProcess {
    fn send(&mut self, request: &RestRequest) -> Result<RestResponse, BackendError> {
        let (status, body) = self.runtime.block_on(self.api.call(
            request.method,
            &request.path,
            request.body.clone(),
        ));
        Ok(RestResponse {
            status: status.as_u16(),
            body: if body.is_null() {
                String::new()
            } else {
                body.to_string()
            },
        })
    }
}

/// p50 and p99 of `samples`, in ms.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

fn report(what: &str, samples: Vec<Duration>) {
    let n = samples.len();
    let (p50, p99) = percentiles(samples);
    println!("| {what} | {n} | {p50:.2} | {p99:.2} |");
}

/// Member addresses of the big network: made up, distinct, valid.
fn address(i: u64) -> Address {
    Address::new(0x10_0000_0000 + i).expect("address")
}

fn fill(storage: &mut dyn Storage, nwid: u64, small: u64, members: u64) {
    let started = Instant::now();
    for i in 0..members {
        storage
            .put_member(&Member::new(nwid, address(i), 1000))
            .expect("member stored");
    }
    for i in 0..10 {
        storage
            .put_member(&Member::new(small, address(members + i), 1000))
            .expect("member stored");
    }
    eprintln!(
        "stored {} members in {:.1} s",
        members + 10,
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let members: u64 = env_or("ZT_MEMBERS", 100_000);
    let rounds: usize = env_or("ZT_ROUNDS", 200);
    let console_rounds: usize = env_or("ZT_CONSOLE_ROUNDS", rounds).clamp(1, rounds);
    let backend: String = env_or("ZT_BENCH_DB", "sqlite".to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let cluster = (backend == "postgresql")
        .then(|| zt_testnet::postgres::TestCluster::start().unwrap_or_else(|why| panic!("{why}")));
    let db = match &cluster {
        Some(c) => ControllerDb::Postgres(c.uri()),
        None => ControllerDb::Sqlite,
    };
    let state = StateDir::open(&home).expect("state");
    let daemon =
        Arc::new(Daemon::open_with(state, Arc::new(NoProtocolFactory), db).expect("daemon"));
    let api = Api {
        router: ztd::rest::router(daemon.clone(), MenuRegistry::standard()),
        token: daemon.authtoken().to_string(),
    };
    let path = "/rest/zerotier/controller/member";

    // The networks, through the menu (this gives zt1 its identity).
    let (big, small) = runtime.block_on(async {
        let big = api
            .ok(
                "PUT",
                "/rest/zerotier/controller",
                Some(json!({"name": "big"})),
            )
            .await;
        let small = api
            .ok(
                "PUT",
                "/rest/zerotier/controller",
                Some(json!({"name": "small"})),
            )
            .await;
        let nwid = |v: &Value| u64::from_str_radix(v["network"].as_str().unwrap(), 16).unwrap();
        (nwid(&big), nwid(&small))
    });
    // The members, straight into the database (the blocking PostgreSQL client runs its own
    // runtime, so outside ours).
    match &cluster {
        Some(c) => fill(
            &mut PostgresStorage::connect(&c.url(), None).expect("postgres"),
            big,
            small,
            members,
        ),
        None => fill(
            &mut SqliteStorage::open(home.join("zt1").join(DB_FILE)).expect("sqlite"),
            big,
            small,
            members,
        ),
    }

    println!("\n{members} members + 10 ({backend}), {rounds} rounds each\n");
    println!("| command | n | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
    let ids: Vec<String> = runtime.block_on(async {
        // Ids of members spread over the big network, by address.
        let mut ids = Vec::new();
        for k in 0..rounds as u64 {
            let query =
                json!({".query": [format!("zt-address={}", address(k * members / rounds as u64))]});
            let found = api.ok("POST", &format!("{path}/print"), Some(query)).await;
            ids.push(found[0][".id"].as_str().expect("found").to_string());
        }
        let mut samples = Vec::new();
        for k in 0..rounds as u64 {
            let query =
                json!({".query": [format!("zt-address={}", address((k * 7919) % members))]});
            let started = Instant::now();
            let found = api.ok("POST", &format!("{path}/print"), Some(query)).await;
            samples.push(started.elapsed());
            assert_eq!(found.as_array().map(Vec::len), Some(1));
        }
        report("REST print where zt-address=X", samples);
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            let found = api.ok("GET", &format!("{path}?network=small"), None).await;
            samples.push(started.elapsed());
            assert_eq!(found.as_array().map(Vec::len), Some(10));
        }
        report("REST print where network=small (10 of them)", samples);
        let mut samples = Vec::new();
        for id in &ids {
            let started = Instant::now();
            api.ok("GET", &format!("{path}/{id}"), None).await;
            samples.push(started.elapsed());
        }
        report("REST get *N", samples);
        let mut samples = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            let body = json!({"comment": format!("set {k}")});
            let started = Instant::now();
            api.ok("PATCH", &format!("{path}/{id}"), Some(body)).await;
            samples.push(started.elapsed());
        }
        report("REST set *N comment=…", samples);
        let mut samples = Vec::new();
        let mut added = Vec::new();
        for k in 0..rounds as u64 {
            let body =
                json!({"network": "big", "zt-address": address(members + 100 + k).to_string()});
            let started = Instant::now();
            let item = api.ok("PUT", path, Some(body)).await;
            samples.push(started.elapsed());
            added.push(item[".id"].as_str().expect("id").to_string());
        }
        report("REST add", samples);
        let mut samples = Vec::new();
        for id in &added {
            let started = Instant::now();
            let (status, _) = api.call("DELETE", &format!("{path}/{id}"), None).await;
            samples.push(started.elapsed());
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        report("REST remove *N", samples);
        ids
    });

    // The console on its own thread (its transport blocks on the runtime). Members of the
    // big network were stored first, so address(i) is print number i.
    let console_api = api.clone();
    let handle = runtime.handle().clone();
    std::thread::spawn(move || {
        let session = || {
            Console::new(RestBackend::new(InProcess {
                api: console_api.clone(),
                runtime: handle.clone(),
            }))
        };
        let mut console = session();
        let run = |console: &mut Console<_>, line: &str| {
            console
                .execute(line)
                .unwrap_or_else(|e| panic!("{line}: {e}"))
        };
        let timed = |console: &mut Console<_>, line: String| {
            let started = Instant::now();
            run(console, &line);
            started.elapsed()
        };
        let menu = "/zerotier/controller/member";
        let spread = |k: u64| (k * 7919) % members;
        let samples = (0..console_rounds as u64)
            .map(|k| {
                let line = format!("{menu}/print where zt-address={}", address(spread(k)));
                timed(&mut console, line)
            })
            .collect();
        report("console print where zt-address=X", samples);
        // The number a `print where` showed, then `set` by that number (the set is timed).
        let samples = (0..console_rounds as u64)
            .map(|k| {
                let n = spread(k + 1);
                let shown = run(
                    &mut console,
                    &format!("{menu}/print where zt-address={}", address(n)),
                );
                let row = format!("\n{n:<3}");
                assert!(shown.contains(&row), "print number {n}: {shown}");
                timed(&mut console, format!("{menu}/set {n} comment=number{k}"))
            })
            .collect();
        report("console set N after print where", samples);
        // A number with no print before, in a new session each time.
        let samples = (0..console_rounds as u64)
            .map(|k| {
                let n = spread(k + 2);
                let mut fresh = session();
                timed(&mut fresh, format!("{menu}/set {n} comment=fresh{k}"))
            })
            .collect();
        report("console set N, no print before (new session)", samples);
        let samples = ids
            .iter()
            .take(console_rounds)
            .enumerate()
            .map(|(k, id)| timed(&mut console, format!("{menu}/set {id} comment=console{k}")))
            .collect();
        report("console set *N comment=…", samples);
        let samples = (0..console_rounds as u64)
            .map(|k| {
                let line = format!(
                    "{menu}/add network=big zt-address={}",
                    address(members + 5000 + k)
                );
                timed(&mut console, line)
            })
            .collect();
        report("console add", samples);
        // The numbers reached the members they stand for.
        let n = spread(console_rounds as u64 + 1);
        let shown = run(
            &mut console,
            &format!(":put [{menu}/get [find zt-address={}] comment]", address(n)),
        );
        assert_eq!(shown.trim(), format!("fresh{}", console_rounds - 1));
    })
    .join()
    .expect("console thread");

    // Other API calls while member commands run back to back.
    runtime.block_on(async {
        let interface = "/rest/zerotier/interface";
        let mut idle = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            api.ok("GET", interface, None).await;
            idle.push(started.elapsed());
        }
        // Two clients send member commands back to back; the interface prints are timed
        // once they are under way, spaced so the burst runs all along.
        let busy = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(AtomicU64::new(0));
        let burst: Vec<_> = (0..2u64)
            .map(|client| {
                let (api, busy, sent) = (api.clone(), busy.clone(), sent.clone());
                tokio::spawn(async move {
                    let mut k = client;
                    while busy.load(Ordering::Relaxed) {
                        let query = json!({".query": [format!("zt-address={}", address((k * 31) % members))]});
                        api.ok("POST", &format!("{path}/print"), Some(query)).await;
                        let body = json!({"comment": format!("burst {k}")});
                        let id = format!("{path}/*{:X}", 1 + (k * 13) % members);
                        api.ok("PATCH", &id, Some(body)).await;
                        sent.fetch_add(2, Ordering::Relaxed);
                        k += 2;
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent.load(Ordering::Relaxed) < 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let before = sent.load(Ordering::Relaxed);
        let mut loaded = Vec::new();
        for _ in 0..rounds {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let started = Instant::now();
            api.ok("GET", interface, None).await;
            loaded.push(started.elapsed());
        }
        let commands = sent.load(Ordering::Relaxed) - before;
        busy.store(false, Ordering::Relaxed);
        for task in burst {
            task.await.expect("burst");
        }
        report("REST /zerotier/interface print, idle", idle);
        report(
            &format!("REST /zerotier/interface print, during {commands} member commands"),
            loaded,
        );
    });
}
