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
//! unknown network or member: 404 `{}`; no token: 401 `{}`. Changes reach online members at
//! once, as from the console.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{json, Value};
use zt_controller::json::{
    member_patch_from_json, member_revisions, member_to_json, network_list,
    network_patch_from_json, network_to_json,
};
use zt_controller::model::parse_network_id;
use zt_controller::{ControllerError, MemberPatch, NetworkId, NetworkPatch};
use zt_crypto::Address;

use crate::controller::InstanceController;
use crate::daemon::Daemon;
use crate::menu::CommandError;
use crate::model::ItemId;

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

fn controller_error(e: ControllerError) -> Response {
    match e {
        ControllerError::Invalid(m) => bad_request(m),
        ControllerError::NoSuchNetwork(_) | ControllerError::NoSuchMember { .. } => not_found(),
        ControllerError::NetworkExists(_) => bad_request(e),
        ControllerError::Storage(_) | ControllerError::NoFreeNetworkId => internal(e),
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

/// The default instance and its controller (the API answers for it, like `/status`).
async fn default_controller(
    daemon: &Daemon,
) -> Result<(ItemId, Arc<InstanceController>), Response> {
    let mut model = daemon.lock().await;
    let id = model
        .instances
        .iter()
        .find(|(_, c)| c.default)
        .map(|(id, _)| id)
        .ok_or_else(not_found)?;
    let controller = daemon
        .controller_for(&mut model, id)
        .await
        .map_err(command_error)?;
    Ok((id, controller))
}

fn parse_nwid(text: &str) -> Result<NetworkId, Response> {
    parse_network_id(&text.to_ascii_lowercase()).map_err(|_| not_found())
}

fn parse_address(text: &str) -> Result<Address, Response> {
    if text.len() != 10 {
        return Err(not_found());
    }
    u64::from_str_radix(text, 16)
        .ok()
        .and_then(Address::new)
        .ok_or_else(not_found)
}

/// Send pushes through the default instance's node, if it runs.
async fn push(
    daemon: &Daemon,
    id: ItemId,
    controller: Arc<InstanceController>,
    nwid: NetworkId,
    pushes: zt_controller::Pushes,
) {
    let model = daemon.lock().await;
    daemon
        .send_pushes(&model, id, controller, nwid, pushes)
        .await;
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
    let ready = default_controller(&daemon).await.is_ok();
    let body = json!({
        "controller": true,
        "apiVersion": API_VERSION,
        "clock": daemon.clock.now(),
        "databaseReady": ready,
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
    let (id, controller) = attempt!(default_controller(&daemon).await);
    match method {
        Method::GET => match controller.lock().network_ids() {
            Ok(ids) => reply(StatusCode::OK, network_list(&ids)),
            Err(e) => internal(e),
        },
        Method::POST | Method::PUT => create_random(&daemon, id, controller, &body).await,
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, json!({})),
    }
}

async fn create_random(
    daemon: &Daemon,
    _id: ItemId,
    controller: Arc<InstanceController>,
    body: &Bytes,
) -> Response {
    let body = attempt!(body_json(body));
    let patch = attempt!(network_patch(&body));
    let now = daemon.clock.now() as i64;
    let created = controller
        .lock()
        .create_network_with_random_id(now, &patch, rand::random::<u32>);
    match created {
        Ok(network) => reply(StatusCode::OK, network_to_json(&network)),
        Err(e) => controller_error(e),
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
    let (id, controller) = attempt!(default_controller(&daemon).await);
    // `<controller address>______`: create with a random number (the reference's form).
    if let Some(prefix) = nwid_text.strip_suffix("______") {
        if !matches!(method, Method::POST | Method::PUT) {
            return not_found();
        }
        if prefix.eq_ignore_ascii_case(&controller.address().to_string()) {
            return create_random(&daemon, id, controller, &body).await;
        }
        // zerotier-one answers 400 for another controller's address.
        return bad_request(format!(
            "{prefix} is not this controller's address ({})",
            controller.address()
        ));
    }
    let nwid = attempt!(parse_nwid(&nwid_text));
    let now = daemon.clock.now() as i64;
    match method {
        Method::GET => match controller.lock().network(nwid) {
            Ok(Some(n)) => reply(StatusCode::OK, network_to_json(&n)),
            Ok(None) => not_found(),
            Err(e) => internal(e),
        },
        Method::POST | Method::PUT => {
            let body = attempt!(body_json(&body));
            let patch = attempt!(network_patch(&body));
            let result = {
                let mut ctl = controller.lock();
                match ctl.network(nwid) {
                    Ok(Some(_)) => ctl.update_network(now, nwid, &patch),
                    Ok(None) => ctl
                        .create_network(now, nwid, &patch)
                        .map(|n| (n, zt_controller::Pushes::default())),
                    Err(e) => Err(e.into()),
                }
            };
            match result {
                Ok((network, pushes)) => {
                    push(&daemon, id, controller, nwid, pushes).await;
                    reply(StatusCode::OK, network_to_json(&network))
                }
                Err(e) => controller_error(e),
            }
        }
        Method::DELETE => match controller.lock().delete_network(nwid) {
            Ok(Some(n)) => reply(StatusCode::OK, network_to_json(&n)),
            Ok(None) => not_found(),
            Err(e) => internal(e),
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
    let (_, controller) = attempt!(default_controller(&daemon).await);
    let nwid = attempt!(parse_nwid(&nwid_text));
    let ctl = controller.lock();
    match ctl.network(nwid) {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(),
        Err(e) => return internal(e),
    }
    match ctl.members(nwid) {
        Ok(members) => reply(StatusCode::OK, member_revisions(&members)),
        Err(e) => internal(e),
    }
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
    let (id, controller) = attempt!(default_controller(&daemon).await);
    let nwid = attempt!(parse_nwid(&nwid_text));
    let address = attempt!(parse_address(&address_text.to_ascii_lowercase()));
    let now = daemon.clock.now() as i64;
    match method {
        Method::GET => match controller.lock().member(nwid, address) {
            Ok(Some(m)) => reply(StatusCode::OK, member_to_json(&m)),
            Ok(None) => not_found(),
            Err(e) => internal(e),
        },
        Method::POST | Method::PUT => {
            let body = attempt!(body_json(&body));
            let patch = attempt!(member_patch(&body));
            let result = controller.lock().update_member(now, nwid, address, &patch);
            match result {
                Ok((member, pushes)) => {
                    push(&daemon, id, controller, nwid, pushes).await;
                    reply(StatusCode::OK, member_to_json(&member))
                }
                Err(e) => controller_error(e),
            }
        }
        Method::DELETE => {
            let result = controller.lock().delete_member(now, nwid, address);
            match result {
                Ok((Some(member), pushes)) => {
                    push(&daemon, id, controller, nwid, pushes).await;
                    reply(StatusCode::OK, member_to_json(&member))
                }
                Ok((None, _)) => not_found(),
                Err(e) => internal(e),
            }
        }
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, json!({})),
    }
}
