//! The zerotier-one controller API (PROTOCOL.md §9.2) for the default instance's controller,
//! as ztncui and zero-ui use it:
//!
//! | method | path | result |
//! | --- | --- | --- |
//! | GET | `/controller` | `{controller:true, apiVersion:4, clock, databaseReady}` |
//! | GET | `/controller/network` | array of 16-hex ids |
//! | POST | `/controller/network`, `/controller/network/<10hex>______` | create with a random number |
//! | GET/POST/DELETE | `/controller/network/<nwid>` | read / create-or-update / delete (returns the record) |
//! | GET | `/controller/network/<nwid>/member` | `{"<addr>": revision, …}` |
//! | GET/POST/DELETE | `/controller/network/<nwid>/member/<addr>` | member record |
//!
//! Records and bodies use zt-controller's [`zt_controller::json`] (the reference's field
//! names), read as zerotier-one reads them (`"true"` and `1` are booleans, unusable array
//! entries are left out with a warning in the log). A body the controller still refuses (a
//! rule it cannot read, single sign-on) gives 400 `{"message": <why>}` and changes nothing;
//! unknown network or member: 404 `{}`; no token: 401 `{}`. Changes go through the
//! controller service, which pushes configs and revocations to online members exactly as for
//! the console (deleting a network revokes its members). The daemon lock is held only to find
//! the default instance's controller, never across database work.
//!
//! zerotier-one 1.12+'s listing forms are served too:
//!
//! | method | path | result |
//! | --- | --- | --- |
//! | GET | `/unstable/controller/network` | `{data: [<network records>], meta: {networkCount}}` |
//! | GET | `/unstable/controller/network/<nwid>/member` | `{data: [<member records>], meta: {totalCount, authorizedCount}}` |
//!
//! `GET /controller` also reports the service's request queue and counters
//! ([`crate::controller::service::ServiceStatus`]) under `"service"`.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{json, Value};
use zt_controller::json::{
    member_patch_from_json, member_revisions, member_to_json, network_list,
    network_patch_from_json, network_to_json,
};
use zt_controller::model::parse_network_id;
use zt_controller::{ControllerError, Member, MemberPatch, NetworkId, NetworkPatch};
use zt_crypto::Address;

use crate::controller::service::{ControllerService, Face, ServiceError};
use crate::daemon::Daemon;
use crate::menu::CommandError;

/// The API version zerotier-one's controller reports.
const API_VERSION: u32 = 4;

/// The controller routes, to merge into the service router.
pub fn routes(daemon: Arc<Daemon>) -> axum::Router {
    axum::Router::new()
        .route("/controller", any(controller_status))
        .route("/controller/network", any(network_collection))
        .route("/controller/network/{nwid}", any(network_item))
        .route("/controller/network/{nwid}/member", any(member_collection))
        .route(
            "/controller/network/{nwid}/member/{address}",
            any(member_item),
        )
        .route("/unstable/controller/network", get(unstable_networks))
        .route(
            "/unstable/controller/network/{nwid}/member",
            get(unstable_members),
        )
        .with_state(daemon)
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_found() -> Response {
    reply(StatusCode::NOT_FOUND, json!({}))
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        json!({ "message": message.to_string() }),
    )
}

fn internal(message: impl std::fmt::Display) -> Response {
    reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({ "message": message.to_string() }),
    )
}

fn command_error(e: CommandError) -> Response {
    match e {
        CommandError::NoSuchItem => not_found(),
        CommandError::Refused(text) => bad_request(text),
        CommandError::Internal(text) => internal(text),
    }
}

fn service_error(e: ServiceError) -> Response {
    match e {
        ServiceError::Controller(e) => match e {
            ControllerError::Invalid(m) => bad_request(m),
            ControllerError::NoSuchNetwork(_) | ControllerError::NoSuchMember { .. } => not_found(),
            ControllerError::NetworkExists(_) => bad_request(e),
            ControllerError::Storage(_) | ControllerError::NoFreeNetworkId => internal(e),
        },
        ServiceError::Unavailable(_) | ServiceError::Stopped => internal(e),
    }
}

/// zerotier-one's token forms: `X-ZT1-Auth`, `Authorization: Bearer`, `?auth=`.
fn authorized(daemon: &Daemon, headers: &HeaderMap, query: Option<&str>) -> bool {
    let token = daemon.authtoken();
    crate::rest::authorized(headers, token)
        || query
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.strip_prefix("auth="))
            .any(|given| crate::rest::constant_time_eq(given, token))
}

/// A JSON body (an empty one is `{}`).
fn body_json(body: &Bytes) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON: {e}")))
}

/// A network POST body as a patch. Entries zerotier-one would silently leave out are left out
/// here too, with a warning in the log naming each (the answer stays 200, as zerotier-one's).
fn network_patch(body: &Value) -> Result<NetworkPatch, Response> {
    let input = network_patch_from_json(body).map_err(bad_request)?;
    warn_ignored("network", &input.ignored);
    Ok(input.patch)
}

/// A member POST body as a patch, like [`network_patch`].
fn member_patch(body: &Value) -> Result<MemberPatch, Response> {
    let input = member_patch_from_json(body).map_err(bad_request)?;
    warn_ignored("member", &input.ignored);
    Ok(input.patch)
}

fn warn_ignored(what: &str, ignored: &[String]) {
    for entry in ignored {
        tracing::warn!("controller API: {what} update: left out {entry}");
    }
}

/// The default instance's controller (the API answers for it, like `/status`). The daemon
/// lock is released before the caller uses it.
pub(crate) async fn default_controller(daemon: &Daemon) -> Result<ControllerService, Response> {
    let mut model = daemon.lock().await;
    let id = model
        .instances
        .iter()
        .find(|(_, c)| c.default)
        .map(|(id, _)| id)
        .ok_or_else(not_found)?;
    daemon
        .controller_for(&mut model, id)
        .await
        .map_err(command_error)
}

fn parse_nwid(text: &str) -> Result<NetworkId, Response> {
    parse_network_id(text).map_err(|_| not_found())
}

fn parse_address(text: &str) -> Result<Address, Response> {
    text.parse().map_err(|_| not_found())
}

macro_rules! guard {
    ($daemon:expr, $headers:expr, $query:expr) => {
        if !authorized(&$daemon, &$headers, $query.as_deref()) {
            return reply(StatusCode::UNAUTHORIZED, json!({}));
        }
    };
}

macro_rules! attempt {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

async fn controller_status(
    State(daemon): State<Arc<Daemon>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    guard!(daemon, headers, query);
    if method != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, json!({}));
    }
    let service = default_controller(&daemon).await.ok();
    let ready = match &service {
        Some(service) => service.read(|_| ()).await.is_ok(),
        None => false,
    };
    let body = json!({
        "controller": true,
        "apiVersion": API_VERSION,
        "clock": daemon.clock.now(),
        "databaseReady": ready,
        "service": service.map(|s| s.status()),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    reply(status, body)
}

async fn network_collection(
    State(daemon): State<Arc<Daemon>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    guard!(daemon, headers, query);
    let controller = attempt!(default_controller(&daemon).await);
    match method {
        Method::GET => match controller.read(|ctl| ctl.network_ids()).await {
            Ok(Ok(ids)) => reply(StatusCode::OK, network_list(&ids)),
            Ok(Err(e)) => internal(e),
            Err(e) => service_error(e),
        },
        Method::POST | Method::PUT => create_random(&controller, &body).await,
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, json!({})),
    }
}

async fn create_random(controller: &ControllerService, body: &Bytes) -> Response {
    let body = attempt!(body_json(body));
    let patch = attempt!(network_patch(&body));
    match controller.create_network(None, patch).await {
        Ok(network) => reply(StatusCode::OK, network_to_json(&network)),
        Err(e) => service_error(e),
    }
}

async fn network_item(
    State(daemon): State<Arc<Daemon>>,
    Path(nwid_text): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    guard!(daemon, headers, query);
    let controller = attempt!(default_controller(&daemon).await);
    // `<controller address>______`: create with a random number (the reference's form).
    if let Some(prefix) = nwid_text.strip_suffix("______") {
        if !matches!(method, Method::POST | Method::PUT) {
            return not_found();
        }
        if prefix.eq_ignore_ascii_case(&controller.address().to_string()) {
            return create_random(&controller, &body).await;
        }
        // zerotier-one answers 400 for another controller's address.
        return bad_request(format!(
            "{prefix} is not this controller's address ({})",
            controller.address()
        ));
    }
    let nwid = attempt!(parse_nwid(&nwid_text));
    match method {
        Method::GET => match controller.read(move |ctl| ctl.network(nwid)).await {
            Ok(Ok(Some(n))) => reply(StatusCode::OK, network_to_json(&n)),
            Ok(Ok(None)) => not_found(),
            Ok(Err(e)) => internal(e),
            Err(e) => service_error(e),
        },
        Method::POST | Method::PUT => {
            let body = attempt!(body_json(&body));
            let patch = attempt!(network_patch(&body));
            match controller.put_network(nwid, patch).await {
                Ok(network) => reply(StatusCode::OK, network_to_json(&network)),
                Err(e) => service_error(e),
            }
        }
        // Its members are revoked, as when the console removes it.
        Method::DELETE => match controller.delete_network(nwid).await {
            Ok(Some(n)) => reply(StatusCode::OK, network_to_json(&n)),
            Ok(None) => not_found(),
            Err(e) => service_error(e),
        },
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, json!({})),
    }
}

async fn member_collection(
    State(daemon): State<Arc<Daemon>>,
    Path(nwid_text): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    guard!(daemon, headers, query);
    if method != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, json!({}));
    }
    let members = attempt!(network_members(&daemon, &nwid_text).await);
    reply(StatusCode::OK, member_revisions(&members))
}

/// The members of the default controller's network `nwid_text` (404 if there is no such
/// network).
async fn network_members(daemon: &Daemon, nwid_text: &str) -> Result<Vec<Member>, Response> {
    let controller = default_controller(daemon).await?;
    let nwid = parse_nwid(nwid_text)?;
    let members = controller
        .read(move |ctl| match ctl.network(nwid)? {
            Some(_) => ctl.members(nwid).map(Some),
            None => Ok(None),
        })
        .await;
    match members {
        Ok(Ok(Some(members))) => Ok(members),
        Ok(Ok(None)) => Err(not_found()),
        Ok(Err(e)) => Err(internal(e)),
        Err(e) => Err(service_error(e)),
    }
}

/// `GET /unstable/controller/network`: every network's record, in id order.
async fn unstable_networks(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    guard!(daemon, headers, query);
    let controller = attempt!(default_controller(&daemon).await);
    let networks = controller
        .read(|ctl| {
            let mut networks = Vec::new();
            for nwid in ctl.network_ids()? {
                networks.extend(ctl.network(nwid)?);
            }
            Ok::<_, zt_controller::StorageError>(networks)
        })
        .await;
    match networks {
        Ok(Ok(networks)) => reply(
            StatusCode::OK,
            json!({
                "data": networks.iter().map(network_to_json).collect::<Vec<_>>(),
                "meta": {"networkCount": networks.len()},
            }),
        ),
        Ok(Err(e)) => internal(e),
        Err(e) => service_error(e),
    }
}

/// `GET /unstable/controller/network/<nwid>/member`: every member's record, with counts.
async fn unstable_members(
    State(daemon): State<Arc<Daemon>>,
    Path(nwid_text): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    guard!(daemon, headers, query);
    let members = attempt!(network_members(&daemon, &nwid_text).await);
    let authorized = members.iter().filter(|m| m.authorized).count();
    reply(
        StatusCode::OK,
        json!({
            "data": members.iter().map(member_to_json).collect::<Vec<_>>(),
            "meta": {"totalCount": members.len(), "authorizedCount": authorized},
        }),
    )
}

async fn member_item(
    State(daemon): State<Arc<Daemon>>,
    Path((nwid_text, address_text)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    guard!(daemon, headers, query);
    let controller = attempt!(default_controller(&daemon).await);
    let nwid = attempt!(parse_nwid(&nwid_text));
    let address = attempt!(parse_address(&address_text.to_ascii_lowercase()));
    match method {
        Method::GET => match controller.read(move |ctl| ctl.member(nwid, address)).await {
            Ok(Ok(Some(m))) => reply(StatusCode::OK, member_to_json(&m)),
            Ok(Ok(None)) => not_found(),
            Ok(Err(e)) => internal(e),
            Err(e) => service_error(e),
        },
        Method::POST | Method::PUT => {
            let body = attempt!(body_json(&body));
            let patch = attempt!(member_patch(&body));
            match controller
                .update_member(nwid, address, patch, Face::ZerotierApi)
                .await
            {
                Ok(member) => reply(StatusCode::OK, member_to_json(&member)),
                Err(e) => service_error(e),
            }
        }
        Method::DELETE => match controller
            .delete_member(nwid, address, Face::ZerotierApi)
            .await
        {
            Ok(Some(member)) => reply(StatusCode::OK, member_to_json(&member)),
            Ok(None) => not_found(),
            Err(e) => service_error(e),
        },
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, json!({})),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::controller::service::ConfigRequest;
    use crate::controller::service::NodeRoute;
    use crate::controller::testing::{
        controller_identity, eventually, member_identity, Gate, GatedStorage, CONTROLLER_SECRET,
        WAIT,
    };
    use crate::menu::Menu;
    use crate::menus::controller::ControllerMenu;
    use crate::menus::member::MemberMenu;
    use crate::runtime::engine::{EngineClock, NoProtocolFactory};
    use crate::state_dir::StateDir;
    use zt_controller::model::{format_network_id, network_id_for};
    use zt_controller::props::{member_patch_from_properties, network_patch_from_properties};
    use zt_wire::dictionary::Dictionary;

    /// Network `number` of `service` with one authorized member that asked for its config
    /// just now (so it is online and gets revocations).
    pub(crate) async fn network_with_online_member(
        service: &ControllerService,
        number: u32,
    ) -> NetworkId {
        let nwid = network_id_for(service.address(), number);
        let patch = network_patch_from_properties(&[("name", &format!("net{number}"))]).unwrap();
        service.create_network(Some(nwid), patch).await.unwrap();
        let member = member_identity();
        let authorize = member_patch_from_properties(&[("authorized", "yes")]).unwrap();
        service
            .update_member(nwid, member.address(), authorize, Face::ZerotierApi)
            .await
            .unwrap();
        let answered = service.status().requests_answered;
        assert!(service.submit(ConfigRequest {
            received_at: EngineClock::new().now(),
            requester: member.to_public(),
            nwid,
            metadata: Dictionary::new(),
            request_packet_id: 1,
        }));
        assert!(eventually(|| service.status().requests_answered > answered).await);
        nwid
    }

    /// A daemon (no protocol engine) on a fresh `home` whose zt1 has the known controller
    /// identity.
    pub(crate) fn daemon_with_zt1(home: &std::path::Path) -> Arc<Daemon> {
        std::fs::create_dir_all(home.join("zt1")).unwrap();
        std::fs::write(home.join("zt1/identity.secret"), CONTROLLER_SECRET).unwrap();
        let state = StateDir::open(home).unwrap();
        Arc::new(Daemon::open(state, Arc::new(NoProtocolFactory)).unwrap())
    }

    /// `$method` with the token and no body through the JSON API handler `$handler` at
    /// `$path`: the response future.
    macro_rules! json_call {
        ($handler:ident, $daemon:expr, $method:expr, $path:expr) => {
            $handler(
                State($daemon.clone()),
                Path($path),
                $method,
                HeaderMap::new(),
                RawQuery(Some(format!("auth={}", $daemon.authtoken()))),
                Bytes::new(),
            )
        };
    }

    /// DELETE through the JSON API handler `$handler` at `$path`: true if it answered 200.
    macro_rules! json_delete {
        ($handler:ident, $daemon:expr, $path:expr) => {
            async {
                let response = json_call!($handler, $daemon, Method::DELETE, $path).await;
                response.status() == StatusCode::OK
            }
        };
    }

    /// The revocations `service` issued while `delete` ran (which must succeed).
    async fn revoked_by(
        service: &ControllerService,
        delete: impl std::future::Future<Output = bool>,
    ) -> u64 {
        let before = service.status().revocations_issued;
        assert!(delete.await, "the deletion failed");
        service.status().revocations_issued - before
    }

    /// The JSON API and the console (which RouterOS REST runs too) revoke alike: the members
    /// of a deleted network, and a deleted member.
    #[tokio::test]
    async fn deletions_revoke_alike_through_every_face() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let daemon = daemon_with_zt1(&home);
        let Ok(service) = default_controller(&daemon).await else {
            panic!("no controller for zt1");
        };

        // zerotier JSON API: DELETE /controller/network/<nwid>.
        let nwid = network_with_online_member(&service, 1).await;
        let path = format_network_id(nwid);
        let revoked = revoked_by(&service, json_delete!(network_item, daemon, path)).await;
        assert_eq!(revoked, 1);

        // Console / RouterOS REST: /zerotier/controller/remove.
        let nwid = network_with_online_member(&service, 2).await;
        let rows = ControllerMenu.print(&daemon).await.unwrap();
        let row = rows
            .iter()
            .find(|r| r.get("network") == Some(&format_network_id(nwid)))
            .expect("the network is listed");
        let id = row[".id"].parse().unwrap();
        let removed = async { ControllerMenu.remove(&daemon, id).await.is_ok() };
        assert_eq!(revoked_by(&service, removed).await, 1);
        let left = service
            .read(|ctl| ctl.network_ids())
            .await
            .unwrap()
            .unwrap();
        assert!(left.is_empty(), "{left:?}");

        // A member: DELETE /controller/network/<nwid>/member/<address> …
        let member = member_identity().address();
        let nwid = network_with_online_member(&service, 3).await;
        let path = (format_network_id(nwid), member.to_string());
        let revoked = revoked_by(&service, json_delete!(member_item, daemon, path)).await;
        assert_eq!(revoked, 1);

        // … and /zerotier/controller/member/remove.
        let nwid = network_with_online_member(&service, 4).await;
        let rows = MemberMenu.print(&daemon).await.unwrap();
        let row = rows
            .iter()
            .find(|r| {
                r.get("network").map(String::as_str) == Some("net4")
                    && r.get("zt-address") == Some(&member.to_string())
            })
            .expect("the member is listed");
        let id = row[".id"].parse().unwrap();
        let removed = async { MemberMenu.remove(&daemon, id).await.is_ok() };
        assert_eq!(revoked_by(&service, removed).await, 1);
        let left = service
            .read(move |ctl| ctl.members(nwid))
            .await
            .unwrap()
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
    }

    /// A handler's answer as (status, JSON body).
    async fn json_of(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// A network POST with `rulesSource` alone: compiled into rules, or refused with 400 and
    /// the line and column of the mistake (the network is left as it was).
    #[tokio::test]
    async fn rules_source_alone_is_compiled_or_refused_with_its_position() {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = daemon_with_zt1(&tmp.path().join("home"));
        let Ok(service) = default_controller(&daemon).await else {
            panic!("no controller for zt1");
        };
        let path = format_network_id(network_id_for(service.address(), 1));
        let post = |body: Value| {
            network_item(
                State(daemon.clone()),
                Path(path.clone()),
                Method::POST,
                HeaderMap::new(),
                RawQuery(Some(format!("auth={}", daemon.authtoken()))),
                Bytes::from(body.to_string()),
            )
        };
        let source = "drop not ethertype ipv4 and not ethertype arp; accept;";
        let (status, record) = json_of(post(json!({ "rulesSource": source })).await).await;
        assert_eq!(status, StatusCode::OK, "{record}");
        assert_eq!(record["rulesSource"], source);
        assert_eq!(record["rules"].as_array().map(Vec::len), Some(4));
        assert_eq!(record["rules"][2], json!({"type": "ACTION_DROP"}));

        let (status, answer) =
            json_of(post(json!({"rulesSource": "drop ethertype banana;"})).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("rulesSource: line 1, column 16: "),
            "{answer}"
        );
        let (_, unchanged) =
            json_of(json_call!(network_item, daemon, Method::GET, path.clone()).await).await;
        assert_eq!(unchanged["rulesSource"], source);
    }

    /// zerotier-one 1.12+'s listings: each record as the single-record GET gives it, and
    /// the counts.
    #[tokio::test]
    async fn unstable_listings_hold_the_records_and_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = daemon_with_zt1(&tmp.path().join("home"));
        let Ok(service) = default_controller(&daemon).await else {
            panic!("no controller for zt1");
        };
        let auth = || RawQuery(Some(format!("auth={}", daemon.authtoken())));
        let networks = || unstable_networks(State(daemon.clone()), HeaderMap::new(), auth());
        assert_eq!(
            json_of(networks().await).await,
            (
                StatusCode::OK,
                json!({"data": [], "meta": {"networkCount": 0}})
            )
        );

        let nwid = network_with_online_member(&service, 1).await;
        let other = Address::new(0x0a22222222).unwrap();
        let unauthorized = member_patch_from_properties(&[("authorized", "no")]).unwrap();
        service
            .update_member(nwid, other, unauthorized, Face::ZerotierApi)
            .await
            .unwrap();
        let path = format_network_id(nwid);
        let (_, record) =
            json_of(json_call!(network_item, daemon, Method::GET, path.clone()).await).await;
        assert_eq!(
            json_of(networks().await).await,
            (
                StatusCode::OK,
                json!({"data": [record], "meta": {"networkCount": 1}})
            )
        );

        let members = |nwid_text: String, query: RawQuery| {
            unstable_members(
                State(daemon.clone()),
                Path(nwid_text),
                HeaderMap::new(),
                query,
            )
        };
        let (status, list) = json_of(members(path.clone(), auth()).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["meta"], json!({"totalCount": 2, "authorizedCount": 1}));
        let data = list["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        for member in data {
            let address = member["address"].as_str().unwrap().to_string();
            let item = (path.clone(), address);
            let (_, one) = json_of(json_call!(member_item, daemon, Method::GET, item).await).await;
            assert_eq!(member, &one);
        }

        let unknown = format_network_id(network_id_for(service.address(), 9));
        assert_eq!(
            members(unknown, auth()).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            members(path, RawQuery(None)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }

    /// While zt1's controller database is stuck, its menu and JSON API calls wait, but the
    /// daemon's model lock (every other command) stays free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_controller_database_holds_up_no_other_command() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let daemon = daemon_with_zt1(&home);
        assert!(default_controller(&daemon).await.is_ok());
        let gate = Arc::new(Gate::default());
        let stuck = ControllerService::start(
            controller_identity(),
            GatedStorage::opener(gate.clone()),
            Arc::new(NodeRoute::default()),
            EngineClock::new(),
        );
        daemon
            .controller_registry
            .install(&home.join("zt1"), stuck.clone());
        gate.close();

        let print = tokio::spawn({
            let daemon = daemon.clone();
            async move { ControllerMenu.print(&daemon).await.map(|rows| rows.len()) }
        });
        let list = tokio::spawn(network_collection(
            State(daemon.clone()),
            Method::GET,
            HeaderMap::new(),
            RawQuery(Some(format!("auth={}", daemon.authtoken()))),
            Bytes::new(),
        ));
        assert!(
            eventually(|| gate.held() > 0).await,
            "nothing reached the database"
        );
        // Both wait on the database; the model lock is free all the same.
        let model = tokio::time::timeout(WAIT, daemon.lock()).await;
        assert!(model.is_ok(), "the model lock is held across database work");
        drop(model);
        assert!(!print.is_finished() && !list.is_finished());

        gate.open();
        let printed = tokio::time::timeout(WAIT, print).await.unwrap().unwrap();
        assert_eq!(printed.unwrap(), 0);
        let listed = tokio::time::timeout(WAIT, list).await.unwrap().unwrap();
        assert_eq!(listed.status(), StatusCode::OK);
    }
}
