//! The RouterOS REST API (`/rest/<menu path>`, ROUTEROS.md §7) over the menus of
//! [`crate::menus`].
//!
//! | method | URL | meaning |
//! | --- | --- | --- |
//! | GET | `/rest/zerotier[?prop=value&.proplist=a,b]` | print (array) |
//! | GET | `/rest/zerotier/<*id or name>` | one item (object) |
//! | PUT | `/rest/zerotier` | add → 201, the new item |
//! | PATCH | `/rest/zerotier/<id>` | set → the updated item |
//! | DELETE | `/rest/zerotier/<id>` | remove → 204 |
//! | POST | `/rest/zerotier/<command>` | `print`, `get`, `add`, `set`, `remove`, `enable`, `disable`, … |
//! | POST | `/rest/file/add` | `{"name":"x.rsc","contents":"…"}` → `<home>/files/x.rsc` (0600) |
//! | POST | `/rest/ping` | `{"address":"10.0.0.1","count":"3"}` → one object per sequence number |
//!
//! Sensitive values (an instance's secret `identity`) are left out of every reply except
//! `POST …/print {"show-sensitive":""}`, as RouterOS hides them unless asked.
//! `POST …/print {"count-only":""}` answers `{"ret":"<number of matching items>"}`.
//!
//! Every value is a JSON string; errors are `{"error":<code>,"message":<reason>,"detail":<console text>}`.
//! Authentication: the zerotier-one token (`authtoken.secret`) as `X-ZT1-Auth: <token>` or
//! `Authorization: Bearer <token>`, or HTTP Basic `admin:<token>` as RouterOS REST clients send.
//!
//! ```text
//! T=$(cat /var/lib/zt/authtoken.secret)
//! curl -u admin:$T http://127.0.0.1:9993/rest/zerotier
//! curl -u admin:$T -X PATCH -H 'Content-Type: application/json' \
//!      -d '{"port":"19993"}' http://127.0.0.1:9993/rest/zerotier/zt1
//! curl -u admin:$T -X POST -H 'Content-Type: application/json' \
//!      -d '{".id":"zt1"}' http://127.0.0.1:9993/rest/zerotier/enable
//! ```
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::daemon::Daemon;
use crate::menu::{
    no_more_arguments, schema_of, unset_value, Args, CommandError, Menu, RawArgs, Record, COPY_FROM,
};
use crate::model::ItemId;

pub mod query;

/// The user name RouterOS REST clients send with HTTP Basic; the password is the token.
pub const BASIC_USER: &str = "admin";

/// The menus served, found by the longest path prefix of a URL.
pub struct MenuRegistry {
    menus: Vec<(Vec<&'static str>, Arc<dyn Menu>)>,
}

impl MenuRegistry {
    pub fn new() -> MenuRegistry {
        MenuRegistry { menus: Vec::new() }
    }
    /// Every menu of [`crate::menus::all`].
    pub fn standard() -> MenuRegistry {
        let mut registry = MenuRegistry::new();
        for menu in crate::menus::all() {
            registry.register(menu);
        }
        registry
    }
    pub fn register(&mut self, menu: Arc<dyn Menu>) {
        self.menus.push((menu.path().split('/').collect(), menu));
    }
    /// The menu whose path is the longest prefix of `segments`, and the remaining segments;
    /// otherwise the first word that leads nowhere.
    fn find<'a>(&self, segments: &'a [String]) -> Result<(&Arc<dyn Menu>, &'a [String]), String> {
        let mut best: Option<(usize, &Arc<dyn Menu>)> = None;
        let mut deepest_word = 0;
        for (words, menu) in &self.menus {
            let common = words
                .iter()
                .zip(segments)
                .take_while(|(w, s)| *w == s)
                .count();
            deepest_word = deepest_word.max(common);
            if common == words.len() && !matches!(best, Some((len, _)) if len >= common) {
                best = Some((common, menu));
            }
        }
        match best {
            Some((len, menu)) => Ok((menu, &segments[len..])),
            None => Err(segments.get(deepest_word).cloned().unwrap_or_default()),
        }
    }
}

impl Default for MenuRegistry {
    fn default() -> Self {
        MenuRegistry::standard()
    }
}

struct Api {
    daemon: Arc<Daemon>,
    registry: MenuRegistry,
}

/// The daemon's HTTP API: the zerotier-one service paths ([`crate::service_api`]) and the
/// RouterOS REST API under `/rest`.
pub fn router(daemon: Arc<Daemon>, registry: MenuRegistry) -> axum::Router {
    let service = crate::service_api::router(daemon.clone());
    let rest = axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(Api { daemon, registry }));
    service.merge(rest)
}

/// An HTTP error in RouterOS's shape.
struct RestError {
    status: StatusCode,
    detail: Option<String>,
}

impl RestError {
    fn bad_request(detail: impl Into<String>) -> RestError {
        RestError {
            status: StatusCode::BAD_REQUEST,
            detail: Some(detail.into()),
        }
    }
    fn status(status: StatusCode) -> RestError {
        RestError {
            status,
            detail: None,
        }
    }
}

impl From<CommandError> for RestError {
    fn from(e: CommandError) -> RestError {
        match e {
            CommandError::Refused(text) => RestError::bad_request(text),
            CommandError::NoSuchItem => RestError::bad_request("no such item"),
            CommandError::Internal(text) => {
                tracing::error!(error = %text, "command failed inside the daemon");
                RestError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    detail: Some(text),
                }
            }
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        if let Some(detail) = self.detail {
            body.insert("detail".into(), Value::String(detail));
        }
        body.insert("error".into(), json!(self.status.as_u16()));
        body.insert(
            "message".into(),
            Value::String(self.status.canonical_reason().unwrap_or("Error").into()),
        );
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"zt\""),
            );
        }
        response
    }
}

async fn handle(
    State(api): State<Arc<Api>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, api.daemon.authtoken()) {
        return RestError::status(StatusCode::UNAUTHORIZED).into_response();
    }
    let response = match serve(&api, &method, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, path = uri.path(), status = response.status().as_u16(), "REST");
    response
}

async fn serve(
    api: &Api,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, RestError> {
    let Some(path) = uri.path().strip_prefix("/rest") else {
        return Err(RestError::status(StatusCode::NOT_FOUND));
    };
    if !path.is_empty() && !path.starts_with('/') {
        return Err(RestError::status(StatusCode::NOT_FOUND));
    }
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    // `export file=NAME` stores its text among the router's files.
    if let [menu, command] = segments.as_slice() {
        if menu == "file" && command == "add" && method == Method::POST {
            let body = RequestBody::parse(headers, body)?;
            crate::menus::file::add(&api.daemon, body.args).await?;
            return Ok(axum::Json(Value::Array(Vec::new())).into_response());
        }
    }
    // Commands of the root menu (`/ping`) are not menus: `POST /rest/ping`.
    if let [word] = segments.as_slice() {
        if word == "ping" {
            if method != Method::POST {
                return Err(RestError::status(StatusCode::METHOD_NOT_ALLOWED));
            }
            let body = RequestBody::parse(headers, body)?;
            let reply = crate::menus::ping::run(body.args).await?;
            return Ok(axum::Json(reply).into_response());
        }
    }
    let (menu, tail) = api
        .registry
        .find(&segments)
        .map_err(|word| RestError::bad_request(format!("no such command or directory ({word})")))?;
    let body = RequestBody::parse(headers, body)?;
    let daemon = api.daemon.as_ref();
    match (method.clone(), tail) {
        (Method::GET, []) if menu.singleton() => {
            let filters = QueryParams::parse(uri.query());
            let mut record = menu
                .print(daemon)
                .await?
                .into_iter()
                .next()
                .unwrap_or_default();
            record.remove(".id");
            Ok(
                axum::Json(to_json(project(record, filters.proplist.as_deref(), false)))
                    .into_response(),
            )
        }
        (Method::GET, []) => {
            let filters = QueryParams::parse(uri.query());
            let records = menu.print_where(daemon, &filters.equal).await?;
            let list: Vec<Value> = records
                .into_iter()
                .map(|r| to_json(project(r, filters.proplist.as_deref(), true)))
                .collect();
            Ok(axum::Json(Value::Array(list)).into_response())
        }
        (Method::GET, [selector]) => {
            let filters = QueryParams::parse(uri.query());
            let record = find_one(menu.as_ref(), daemon, selector).await?;
            Ok(
                axum::Json(to_json(project(record, filters.proplist.as_deref(), false)))
                    .into_response(),
            )
        }
        (Method::PUT, []) => {
            let mut raw = body.args;
            raw.remove(".id");
            let args = api.checked_args(menu.as_ref(), raw, Verb::Add).await?;
            let id = menu.add(daemon, args).await?;
            let record = record_by_id(menu.as_ref(), daemon, id).await?;
            let location = format!("/rest/{}/{}", menu.path(), id);
            let mut response = (StatusCode::CREATED, axum::Json(to_json(record))).into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Ok(response)
        }
        (Method::PATCH, [selector]) => {
            let id = resolve_item_url(menu.as_ref(), daemon, selector).await?;
            let mut raw = body.args;
            raw.remove(".id");
            let args = api.checked_args(menu.as_ref(), raw, Verb::Set).await?;
            menu.set(daemon, id, args).await.map_err(not_found_is_404)?;
            let record = record_by_id(menu.as_ref(), daemon, id).await?;
            Ok(axum::Json(to_json(record)).into_response())
        }
        (Method::DELETE, [selector]) => {
            let id = resolve_item_url(menu.as_ref(), daemon, selector).await?;
            menu.remove(daemon, id).await.map_err(not_found_is_404)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Method::PATCH | Method::DELETE, []) => Err(RestError::bad_request(
            "missing or invalid resource identifier",
        )),
        (Method::POST, [command]) => post_command(api, menu.as_ref(), command, body).await,
        (Method::GET | Method::PUT | Method::PATCH | Method::DELETE | Method::POST, [word, ..]) => {
            Err(RestError::bad_request(format!(
                "no such command or directory ({word})"
            )))
        }
        (Method::POST, []) => Err(RestError::bad_request("no such command")),
        _ => Err(RestError::status(StatusCode::METHOD_NOT_ALLOWED)),
    }
}

/// `POST /rest/<menu>/<command>`.
/// Which command arguments are checked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Add,
    Set,
}

impl Api {
    /// Check a command's text arguments against the menu's schema, once, for every face that
    /// comes in over REST (the console included). Reference properties (`instance`, a member's
    /// `network`) are checked against the current names of the menu they refer to. `add`
    /// also takes `copy-from` and needs the menu's mandatory properties unless it copies.
    async fn checked_args(
        &self,
        menu: &dyn Menu,
        raw: RawArgs,
        verb: Verb,
    ) -> Result<Args, RestError> {
        let schema = schema_of(menu.path())?;
        if verb == Verb::Set {
            if let Some(fixed) = raw
                .keys()
                .find_map(|name| schema.property(name).filter(|p| p.create_only))
            {
                return Err(CommandError::refused(fixed.change_refusal()).into());
            }
        }
        let mut names: Vec<(&'static str, Vec<String>)> = Vec::new();
        for name in raw.keys() {
            let Some(zt_console::schema::ValueType::Reference(path)) =
                schema.property(name).map(|p| p.kind)
            else {
                continue;
            };
            if names.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let words: Vec<String> = path
                .trim_start_matches('/')
                .split('/')
                .map(String::from)
                .collect();
            let list = match self.registry.find(&words) {
                Ok((referenced, [])) => referenced
                    .print(&self.daemon)
                    .await?
                    .into_iter()
                    .filter_map(|mut r| r.remove("name"))
                    .collect(),
                _ => Vec::new(),
            };
            names.push((path, list));
        }
        let extras: &[&str] = match verb {
            Verb::Add => &[COPY_FROM],
            Verb::Set => &[],
        };
        let args = Args::check(schema, raw, extras, &mut |path| {
            names
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, list)| list.clone())
                .unwrap_or_default()
        })?;
        if verb == Verb::Add && !args.contains(COPY_FROM) {
            if let Some(refusal) = schema.missing_required(|name| args.contains(name)) {
                return Err(CommandError::refused(refusal).into());
            }
        }
        Ok(args)
    }
}

async fn post_command(
    api: &Api,
    menu: &dyn Menu,
    command: &str,
    body: RequestBody,
) -> Result<Response, RestError> {
    let daemon = api.daemon.as_ref();
    let RequestBody {
        args: mut raw,
        proplist,
        query,
    } = body;
    let mut selector = raw.remove(".id").or_else(|| raw.remove("numbers"));
    if menu.singleton() && selector.is_none() {
        // The one item of a singleton menu needs no selector (`/system/identity/set`).
        selector = menu
            .print(daemon)
            .await?
            .first()
            .and_then(|r| r.get(".id").cloned());
    }
    let reply = match command {
        "print" => {
            // A flag: RouterOS REST takes flags as empty strings (`{"show-sensitive":""}`).
            let show_sensitive = raw.remove("show-sensitive").is_some();
            let count_only = raw.remove("count-only").is_some();
            no_more_arguments(&raw)?;
            let words = query.unwrap_or_default();
            if count_only && !show_sensitive {
                if let Some(below) = query::only_ids_below(&words) {
                    let count = menu.count_below(daemon, below).await?;
                    return Ok(axum::Json(json!({ "ret": count.to_string() })).into_response());
                }
            }
            // Sensitive values come only from a full print (a handful of instances); the
            // keyed lookup serves everything else, members included.
            let records = if show_sensitive {
                menu.print_sensitive(daemon).await?
            } else {
                menu.print_where(daemon, &query::required_equalities(&words))
                    .await?
            };
            let mut list = Vec::new();
            for r in records {
                if query::matches(&words, &r)? {
                    list.push(to_json(project(r, proplist.as_deref(), true)));
                }
            }
            if count_only {
                // RouterOS answers the number as a string in `ret`.
                json!({ "ret": list.len().to_string() })
            } else {
                Value::Array(list)
            }
        }
        "get" => {
            let selector = selector
                .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) number"))?;
            let name = raw.remove("value-name");
            no_more_arguments(&raw)?;
            let record = find_one(menu, daemon, &selector).await?;
            match name {
                Some(name) => {
                    let value = record.get(&name).ok_or_else(|| {
                        CommandError::refused("input does not match any value of value-name")
                    })?;
                    json!({ "ret": value })
                }
                None => to_json(record),
            }
        }
        "add" => {
            let args = api.checked_args(menu, raw, Verb::Add).await?;
            let id = menu.add(daemon, args).await?;
            json!({ "ret": id.to_string() })
        }
        "set" | "unset" | "remove" | "enable" | "disable" => {
            let selector = selector
                .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) numbers"))?;
            let ids = resolve_selector(menu, daemon, &selector).await?;
            match command {
                "set" => {
                    let args = api.checked_args(menu, raw, Verb::Set).await?;
                    for id in ids {
                        menu.set(daemon, id, args.clone()).await?;
                    }
                }
                "unset" => {
                    let args = unset_args(menu, raw)?;
                    for id in ids {
                        menu.set(daemon, id, args.clone()).await?;
                    }
                }
                "remove" => {
                    no_more_arguments(&raw)?;
                    for id in ids {
                        menu.remove(daemon, id).await?;
                    }
                }
                _ => {
                    menu.command(daemon, command, ids, raw).await?;
                }
            }
            Value::Array(Vec::new())
        }
        other => {
            let ids = match selector {
                Some(selector) => resolve_selector(menu, daemon, &selector).await?,
                None => Vec::new(),
            };
            menu.command(daemon, other, ids, raw).await?
        }
    };
    Ok(axum::Json(reply).into_response())
}

/// `unset value-name=<property>`: a `set` of the property's default (or empty) value.
fn unset_args(menu: &dyn Menu, mut raw: RawArgs) -> Result<Args, CommandError> {
    let name = raw
        .remove("value-name")
        .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) value-name"))?;
    no_more_arguments(&raw)?;
    let property = schema_of(menu.path())?
        .property(&name)
        .filter(|p| !p.read_only)
        .ok_or_else(|| CommandError::refused("input does not match any value of value-name"))?;
    let mut args = Args::new();
    args.insert(name, unset_value(property)?);
    Ok(args)
}

fn not_found_is_404(e: CommandError) -> RestError {
    match e {
        CommandError::NoSuchItem => RestError::status(StatusCode::NOT_FOUND),
        other => other.into(),
    }
}

/// The item named by a URL segment (`*1` or a name), 404 if none.
async fn resolve_item_url(
    menu: &dyn Menu,
    daemon: &Daemon,
    selector: &str,
) -> Result<ItemId, RestError> {
    match resolve_selector(menu, daemon, selector).await {
        Ok(ids) if ids.len() == 1 => Ok(ids[0]),
        _ => Err(RestError::status(StatusCode::NOT_FOUND)),
    }
}

async fn find_one(menu: &dyn Menu, daemon: &Daemon, selector: &str) -> Result<Record, RestError> {
    let id = resolve_item_url(menu, daemon, selector).await?;
    record_by_id(menu, daemon, id).await
}

async fn record_by_id(menu: &dyn Menu, daemon: &Daemon, id: ItemId) -> Result<Record, RestError> {
    menu.item(daemon, id)
        .await?
        .ok_or_else(|| RestError::status(StatusCode::NOT_FOUND))
}

/// Resolve a selector: ids alone are looked up one by one ([`Menu::item`]), so naming an
/// item never lists the menu; a selector with names is resolved against the printed items.
async fn resolve_selector(
    menu: &dyn Menu,
    daemon: &Daemon,
    selector: &str,
) -> Result<Vec<ItemId>, CommandError> {
    let parts = selector.split(',').map(str::trim).filter(|p| !p.is_empty());
    let ids: Option<Vec<ItemId>> = parts.map(|p| p.parse().ok()).collect();
    match ids {
        Some(ids) if !ids.is_empty() => {
            for id in &ids {
                if menu.item(daemon, *id).await?.is_none() {
                    return Err(CommandError::NoSuchItem);
                }
            }
            Ok(ids)
        }
        _ => resolve(&menu.print(daemon).await?, selector),
    }
}

/// Resolve a selector: a comma list of internal ids (`*1`) or names.
pub fn resolve(records: &[Record], selector: &str) -> Result<Vec<ItemId>, CommandError> {
    let mut ids = Vec::new();
    for part in selector.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let by_id = part.parse::<ItemId>().ok();
        let found = records.iter().find_map(|r| {
            let id: ItemId = r.get(".id")?.parse().ok()?;
            (Some(id) == by_id || r.get("name").map(String::as_str) == Some(part)).then_some(id)
        });
        ids.push(found.ok_or(CommandError::NoSuchItem)?);
    }
    if ids.is_empty() {
        return Err(CommandError::NoSuchItem);
    }
    Ok(ids)
}

/// Keep only the properties in `proplist` (a list GET always keeps `.id`).
fn project(mut record: Record, proplist: Option<&[String]>, keep_id: bool) -> Record {
    if let Some(props) = proplist {
        record.retain(|k, _| props.iter().any(|p| p == k) || (keep_id && k == ".id"));
    }
    record
}

fn to_json(record: Record) -> Value {
    Value::Object(
        record
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// A parsed JSON request body: plain arguments plus the special `.proplist` / `.query`.
struct RequestBody {
    args: RawArgs,
    proplist: Option<Vec<String>>,
    query: Option<Vec<String>>,
}

impl RequestBody {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<RequestBody, RestError> {
        let mut parsed = RequestBody {
            args: RawArgs::new(),
            proplist: None,
            query: None,
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(parsed);
        }
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !is_json {
            return Err(RestError::status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let failed = || RestError::bad_request("Failed to parse json");
        let Value::Object(map) = serde_json::from_slice::<Value>(body).map_err(|_| failed())?
        else {
            return Err(failed());
        };
        for (key, value) in map {
            match (key.as_str(), value) {
                (".proplist", Value::String(s)) => parsed.proplist = Some(split_list(&s)),
                (".proplist", Value::Array(items)) => {
                    parsed.proplist = Some(strings(items).ok_or_else(failed)?)
                }
                (".query", Value::Array(items)) => {
                    parsed.query = Some(strings(items).ok_or_else(failed)?)
                }
                (_, Value::String(s)) => {
                    parsed.args.insert(key, s);
                }
                (_, Value::Bool(b)) => {
                    parsed.args.insert(key, b.to_string());
                }
                (_, Value::Number(n)) if n.is_i64() || n.is_u64() => {
                    parsed.args.insert(key, n.to_string());
                }
                _ => return Err(failed()),
            }
        }
        Ok(parsed)
    }
}

fn strings(items: Vec<Value>) -> Option<Vec<String>> {
    items
        .into_iter()
        .map(|v| {
            if let Value::String(s) = v {
                Some(s)
            } else {
                None
            }
        })
        .collect()
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// GET query parameters: `.proplist` and exact-equality filters.
struct QueryParams {
    proplist: Option<Vec<String>>,
    equal: Vec<(String, String)>,
}

impl QueryParams {
    fn parse(query: Option<&str>) -> QueryParams {
        let mut params = QueryParams {
            proplist: None,
            equal: Vec::new(),
        };
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            );
            if k == ".proplist" {
                params.proplist = Some(split_list(&v));
            } else {
                params.equal.push((k, v));
            }
        }
        params
    }
}

/// Decode `%XX` escapes (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the request carries the token (zerotier-one headers or RouterOS Basic auth).
pub(crate) fn authorized(headers: &HeaderMap, token: &str) -> bool {
    if let Some(v) = headers.get("x-zt1-auth") {
        return v.to_str().is_ok_and(|v| constant_time_eq(v.trim(), token));
    }
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, credentials) = auth.trim().split_once(' ').unwrap_or((auth, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return constant_time_eq(credentials.trim(), token);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials.trim())
        else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        return match decoded.split_once(':') {
            Some((user, password)) => user == BASIC_USER && constant_time_eq(password, token),
            None => false,
        };
    }
    false
}

/// Comparison whose time does not depend on where the strings differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn auth_accepts_the_three_forms_and_nothing_else() {
        let t = "abcdefghijklmnopqrstuvwx";
        assert!(authorized(&headers(&[("x-zt1-auth", t)]), t));
        assert!(authorized(
            &headers(&[("authorization", &format!("Bearer {t}"))]),
            t
        ));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{t}"));
        assert!(authorized(
            &headers(&[("authorization", &format!("Basic {basic}"))]),
            t
        ));
        let wrong_user = base64::engine::general_purpose::STANDARD.encode(format!("root:{t}"));
        assert!(!authorized(
            &headers(&[("authorization", &format!("Basic {wrong_user}"))]),
            t
        ));
        assert!(!authorized(&headers(&[("x-zt1-auth", "nope")]), t));
        assert!(!authorized(&headers(&[]), t));
    }

    #[test]
    fn selectors_resolve_ids_and_names() {
        let records: Vec<Record> = vec![
            [(".id", "*1"), ("name", "zt1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            [(".id", "*A"), ("name", "zt2")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ];
        assert_eq!(resolve(&records, "zt1").unwrap(), vec![ItemId(1)]);
        assert_eq!(
            resolve(&records, "*a,zt1").unwrap(),
            vec![ItemId(10), ItemId(1)]
        );
        assert_eq!(resolve(&records, "zt3"), Err(CommandError::NoSuchItem));
        assert_eq!(resolve(&records, ""), Err(CommandError::NoSuchItem));
    }

    struct Named(&'static str);

    #[async_trait::async_trait]
    impl Menu for Named {
        fn path(&self) -> &'static str {
            self.0
        }
        async fn print(&self, _daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn the_longest_menu_path_wins_and_unknown_words_are_named() {
        let mut registry = MenuRegistry::new();
        registry.register(Arc::new(Named("zerotier")));
        registry.register(Arc::new(Named("zerotier/interface")));
        let words = |p: &str| p.split('/').map(String::from).collect::<Vec<_>>();
        let w = words("zerotier/interface/*1");
        let (menu, rest) = registry.find(&w).unwrap();
        assert_eq!((menu.path(), rest), ("zerotier/interface", &w[2..]));
        let w = words("zerotier/zt1");
        let (menu, rest) = registry.find(&w).unwrap();
        assert_eq!((menu.path(), rest), ("zerotier", &w[1..]));
        assert_eq!(
            registry.find(&words("ip/route")).err().as_deref(),
            Some("ip")
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("%2A1"), "*1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
