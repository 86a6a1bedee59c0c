//! [`Backend`] over the RouterOS REST API, independent of any HTTP library: a [`Transport`]
//! sends one request and returns the status and body; [`RestBackend`] builds the requests and
//! reads the replies (ROUTEROS.md §7).

use crate::backend::{Backend, BackendError, Item};

/// One REST request: `method` and the URL path (`/rest/zerotier/interface/*1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestRequest {
    pub method: &'static str,
    pub path: String,
    /// A JSON object for PUT, PATCH and POST.
    pub body: Option<serde_json::Value>,
}

/// The HTTP status and body of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestResponse {
    pub status: u16,
    pub body: String,
}

/// Sends requests to a router (HTTP, a test double, an in-process server ...).
pub trait Transport {
    /// Fails only when no reply was received (connection refused, timeout ...).
    fn send(&mut self, request: &RestRequest) -> Result<RestResponse, BackendError>;
}

/// The console's backend speaking REST through a transport.
pub struct RestBackend<T> {
    transport: T,
}

fn object(pairs: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

fn malformed(what: &str) -> BackendError {
    BackendError {
        status: 0,
        message: format!("malformed reply: {what}"),
        detail: None,
    }
}

impl<T: Transport> RestBackend<T> {
    pub fn new(transport: T) -> Self {
        RestBackend { transport }
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Send and turn an error status into a [`BackendError`]; an empty body reads as `null`.
    fn call(
        &mut self,
        method: &'static str,
        path: String,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, BackendError> {
        let request = RestRequest { method, path, body };
        let response = self.transport.send(&request)?;
        let json: serde_json::Value = if response.body.trim().is_empty() {
            serde_json::Value::Null
        } else {
            match serde_json::from_str(&response.body) {
                Ok(json) => json,
                Err(_) if response.status >= 400 => {
                    return Err(BackendError {
                        status: response.status,
                        message: response.body.trim().to_string(),
                        detail: None,
                    })
                }
                Err(_) => return Err(malformed("not JSON")),
            }
        };
        if response.status >= 400 {
            return Err(BackendError::from_json(&json).unwrap_or(BackendError {
                status: response.status,
                message: response.body.trim().to_string(),
                detail: None,
            }));
        }
        Ok(json)
    }
}

fn rest_path(path: &str) -> String {
    format!("/rest{}", path.trim_end_matches('/'))
}

/// The items of a print reply.
fn items_of(reply: serde_json::Value) -> Result<Vec<Item>, BackendError> {
    match reply {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| Item::from_json(i).ok_or_else(|| malformed("item is not an object")))
            .collect(),
        // Menus without records answer with a bare object.
        object @ serde_json::Value::Object(_) => Ok(Item::from_json(&object).into_iter().collect()),
        _ => Err(malformed("list is not an array")),
    }
}

impl<T: Transport> Backend for RestBackend<T> {
    fn list(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
        items_of(self.call("GET", rest_path(path), None)?)
    }

    fn list_sensitive(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
        let url = format!("{}/print", rest_path(path));
        let arguments = [("show-sensitive".to_string(), String::new())];
        items_of(self.call("POST", url, Some(object(&arguments)))?)
    }

    fn list_where(
        &mut self,
        path: &str,
        equal: &[(String, String)],
    ) -> Result<Vec<Item>, BackendError> {
        let url = format!("{}/print", rest_path(path));
        let words: Vec<String> = equal.iter().map(|(k, v)| format!("{k}={v}")).collect();
        items_of(self.call("POST", url, Some(serde_json::json!({ ".query": words })))?)
    }

    fn count_below(&mut self, path: &str, id: &str) -> Result<usize, BackendError> {
        let url = format!("{}/print", rest_path(path));
        let body = serde_json::json!({ "count-only": "", ".query": [format!("<.id={id}")] });
        let reply = self.call("POST", url, Some(body))?;
        // RouterOS answers `{"ret":"<count>"}`.
        reply
            .get("ret")
            .and_then(|ret| ret.as_str())
            .and_then(|ret| ret.parse().ok())
            .ok_or_else(|| malformed("count has no number"))
    }

    fn item(&mut self, path: &str, id: &str) -> Result<Option<Item>, BackendError> {
        let url = format!("{}/{id}", rest_path(path));
        match self.call("GET", url, None) {
            Ok(item) => Item::from_json(&item)
                .map(Some)
                .ok_or_else(|| malformed("item is not an object")),
            Err(e) if e.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn add(&mut self, path: &str, properties: &[(String, String)]) -> Result<String, BackendError> {
        let reply = self.call("PUT", rest_path(path), Some(object(properties)))?;
        // The current API answers with the new object, older builds with `{"ret":"*5"}`.
        reply
            .get(".id")
            .or_else(|| reply.get("ret"))
            .and_then(|id| id.as_str())
            .map(str::to_string)
            .ok_or_else(|| malformed("add reply has no id"))
    }

    fn set(
        &mut self,
        path: &str,
        id: &str,
        properties: &[(String, String)],
    ) -> Result<(), BackendError> {
        let url = format!("{}/{id}", rest_path(path));
        self.call("PATCH", url, Some(object(properties)))
            .map(|_| ())
    }

    fn remove(&mut self, path: &str, id: &str) -> Result<(), BackendError> {
        let url = format!("{}/{id}", rest_path(path));
        self.call("DELETE", url, None).map(|_| ())
    }

    fn command(
        &mut self,
        path: &str,
        command: &str,
        arguments: &[(String, String)],
    ) -> Result<serde_json::Value, BackendError> {
        let url = format!("{}/{command}", rest_path(path));
        self.call("POST", url, Some(object(arguments)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies from a script and records the requests.
    struct Scripted {
        replies: Vec<RestResponse>,
        requests: Vec<RestRequest>,
    }

    impl Transport for Scripted {
        fn send(&mut self, request: &RestRequest) -> Result<RestResponse, BackendError> {
            self.requests.push(request.clone());
            if self.replies.is_empty() {
                return Err(BackendError {
                    status: 0,
                    message: "connection refused".into(),
                    detail: None,
                });
            }
            Ok(self.replies.remove(0))
        }
    }

    fn reply(status: u16, body: &str) -> RestResponse {
        RestResponse {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn one_item_is_fetched_by_its_url() {
        let mut backend = RestBackend::new(Scripted {
            replies: vec![
                reply(200, r#"{".id":"*1A","zt-address":"0a00000001"}"#),
                reply(404, r#"{"error":404,"message":"Not Found"}"#),
                reply(
                    400,
                    r#"{"error":400,"message":"Bad Request","detail":"no"}"#,
                ),
            ],
            requests: Vec::new(),
        });
        let menu = "/zerotier/controller/member";
        let item = backend.item(menu, "*1A").unwrap().unwrap();
        assert_eq!(item.get("zt-address"), Some("0a00000001"));
        assert_eq!(backend.item(menu, "*2"), Ok(None));
        assert_eq!(backend.item(menu, "*3").unwrap_err().status, 400);
        let sent: Vec<&str> = backend
            .transport_mut()
            .requests
            .iter()
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(
            sent,
            [
                "/rest/zerotier/controller/member/*1A",
                "/rest/zerotier/controller/member/*2",
                "/rest/zerotier/controller/member/*3"
            ]
        );
    }

    #[test]
    fn requests_and_replies_follow_the_rest_api() {
        let mut backend = RestBackend::new(Scripted {
            replies: vec![
                reply(
                    200,
                    r#"[{".id":"*1","name":"zt1","port":"9993","disabled":"false"}]"#,
                ),
                reply(201, r#"{".id":"*2","name":"zerotier1"}"#),
                reply(200, r#"{"ret":"*3"}"#),
                reply(200, r#"{".id":"*2"}"#),
                reply(204, ""),
                reply(200, "[]"),
                reply(
                    400,
                    r#"{"detail":"input does not match any value of instance","error":400,"message":"Bad Request"}"#,
                ),
                reply(404, r#"{"error":404,"message":"Not Found"}"#),
                reply(500, "Internal Server Error"),
            ],
            requests: Vec::new(),
        });
        let items = backend.list("/zerotier").unwrap();
        assert_eq!(items[0].id, "*1");
        assert_eq!(items[0].get("port"), Some("9993"));
        let props = vec![("network".to_string(), "1d71939404912b40".to_string())];
        assert_eq!(backend.add("/zerotier/interface", &props).unwrap(), "*2");
        assert_eq!(backend.add("/zerotier/interface", &props).unwrap(), "*3");
        backend.set("/zerotier/interface", "*2", &props).unwrap();
        backend.remove("/zerotier/interface", "*2").unwrap();
        let args = vec![(".id".to_string(), "zt1".to_string())];
        assert_eq!(
            backend.command("/zerotier", "enable", &args).unwrap(),
            serde_json::json!([])
        );
        let error = backend.add("/zerotier/interface", &props).unwrap_err();
        assert_eq!(
            error.to_string(),
            "input does not match any value of instance"
        );
        assert_eq!(
            backend.remove("/zerotier/interface", "*9"),
            Err(BackendError::not_found())
        );
        assert_eq!(backend.list("/zerotier").unwrap_err().status, 500);
        assert_eq!(backend.list("/zerotier").unwrap_err().status, 0);

        let sent: Vec<(&str, &str)> = backend
            .transport_mut()
            .requests
            .iter()
            .map(|r| (r.method, r.path.as_str()))
            .collect();
        assert_eq!(
            sent[..6],
            [
                ("GET", "/rest/zerotier"),
                ("PUT", "/rest/zerotier/interface"),
                ("PUT", "/rest/zerotier/interface"),
                ("PATCH", "/rest/zerotier/interface/*2"),
                ("DELETE", "/rest/zerotier/interface/*2"),
                ("POST", "/rest/zerotier/enable"),
            ]
        );
        assert_eq!(
            backend.transport_mut().requests[5].body,
            Some(serde_json::json!({".id":"zt1"}))
        );
    }
}
