//! The console's view of the router model: the RouterOS REST API, as a trait.
//!
//! Paths are menu paths in slash form (`/zerotier/interface`); the REST URL is `/rest` + path.
//! Values are REST strings: booleans `"true"`/`"false"`, numbers in decimal, lists comma-joined.

use std::fmt;

/// One item of a menu: its internal id (`*1`) and its properties in the backend's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub properties: Vec<(String, String)>,
}

impl Item {
    pub fn new(id: impl Into<String>) -> Self {
        Item {
            id: id.into(),
            properties: Vec::new(),
        }
    }

    /// The value of a property; `.id` answers the id. Absent means unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        if name == ".id" {
            return Some(&self.id);
        }
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a boolean property is `true`.
    pub fn is_true(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true") | Some("yes"))
    }

    /// Set or replace a property, keeping the position of an existing one.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.properties.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.properties.push((name.to_string(), value)),
        }
    }

    pub fn unset(&mut self, name: &str) {
        self.properties.retain(|(k, _)| k != name);
    }

    /// The REST JSON object (`{".id":"*1","name":"zt1",...}`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert(".id".into(), self.id.clone().into());
        for (k, v) in &self.properties {
            map.insert(k.clone(), v.clone().into());
        }
        serde_json::Value::Object(map)
    }

    /// Parse a REST JSON object; non-string values are turned into their REST string form.
    pub fn from_json(value: &serde_json::Value) -> Option<Item> {
        let object = value.as_object()?;
        let mut item = Item::default();
        for (k, v) in object {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            if k == ".id" {
                item.id = text;
            } else {
                item.properties.push((k.clone(), text));
            }
        }
        Some(item)
    }
}

/// An error reply of the REST API: `{"error":400,"message":"Bad Request","detail":"..."}`.
/// The console shows `detail` when present (it is the console's own message), else `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendError {
    pub status: u16,
    pub message: String,
    pub detail: Option<String>,
}

impl BackendError {
    /// A `400 Bad Request` carrying a console message, the common refusal.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        BackendError {
            status: 400,
            message: "Bad Request".into(),
            detail: Some(detail.into()),
        }
    }

    /// `404 Not Found`: no item with that id.
    pub fn not_found() -> Self {
        BackendError {
            status: 404,
            message: "Not Found".into(),
            detail: None,
        }
    }

    /// The text the console prints for this error.
    pub fn console_text(&self) -> &str {
        self.detail.as_deref().unwrap_or(&self.message)
    }

    /// The REST error body.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Some(detail) = &self.detail {
            map.insert("detail".into(), detail.clone().into());
        }
        map.insert("error".into(), self.status.into());
        map.insert("message".into(), self.message.clone().into());
        serde_json::Value::Object(map)
    }

    /// Parse a REST error body (`error` is numeric there).
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        let status = u16::try_from(value.get("error")?.as_u64()?).ok()?;
        Some(BackendError {
            status,
            message: value.get("message")?.as_str()?.to_string(),
            detail: value
                .get("detail")
                .and_then(|d| d.as_str())
                .map(str::to_string),
        })
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.console_text())
    }
}

impl std::error::Error for BackendError {}

/// The router model as the REST API exposes it. Object-safe; one call = one REST request.
pub trait Backend {
    /// `GET /rest<path>`: all items of a menu, in the router's order.
    fn list(&mut self, path: &str) -> Result<Vec<Item>, BackendError>;
    /// `POST /rest<path>/print {"show-sensitive":""}`: the items with their sensitive values
    /// (an instance's secret identity), which a plain list leaves out. For `print
    /// show-sensitive` and `export show-sensitive`.
    fn list_sensitive(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
        self.list(path)
    }
    /// `PUT /rest<path>`: create an item; returns its `.id`.
    fn add(&mut self, path: &str, properties: &[(String, String)]) -> Result<String, BackendError>;
    /// `PATCH /rest<path>/<id>`: change properties of one item.
    fn set(
        &mut self,
        path: &str,
        id: &str,
        properties: &[(String, String)],
    ) -> Result<(), BackendError>;
    /// `DELETE /rest<path>/<id>`.
    fn remove(&mut self, path: &str, id: &str) -> Result<(), BackendError>;
    /// `POST /rest<path>/<command>` with a JSON object of arguments (`.id` selects items,
    /// comma-joined for several). The console uses `enable`, `disable` and `unset`
    /// (`{".id":"*1","value-name":"port"}`).
    fn command(
        &mut self,
        path: &str,
        command: &str,
        arguments: &[(String, String)],
    ) -> Result<serde_json::Value, BackendError>;
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn list(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
        (**self).list(path)
    }
    fn list_sensitive(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
        (**self).list_sensitive(path)
    }
    fn add(&mut self, path: &str, properties: &[(String, String)]) -> Result<String, BackendError> {
        (**self).add(path, properties)
    }
    fn set(
        &mut self,
        path: &str,
        id: &str,
        properties: &[(String, String)],
    ) -> Result<(), BackendError> {
        (**self).set(path, id, properties)
    }
    fn remove(&mut self, path: &str, id: &str) -> Result<(), BackendError> {
        (**self).remove(path, id)
    }
    fn command(
        &mut self,
        path: &str,
        command: &str,
        arguments: &[(String, String)],
    ) -> Result<serde_json::Value, BackendError> {
        (**self).command(path, command, arguments)
    }
}

impl<B: Backend + ?Sized> Backend for &mut B {
    fn list(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
        (**self).list(path)
    }
    fn list_sensitive(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
        (**self).list_sensitive(path)
    }
    fn add(&mut self, path: &str, properties: &[(String, String)]) -> Result<String, BackendError> {
        (**self).add(path, properties)
    }
    fn set(
        &mut self,
        path: &str,
        id: &str,
        properties: &[(String, String)],
    ) -> Result<(), BackendError> {
        (**self).set(path, id, properties)
    }
    fn remove(&mut self, path: &str, id: &str) -> Result<(), BackendError> {
        (**self).remove(path, id)
    }
    fn command(
        &mut self,
        path: &str,
        command: &str,
        arguments: &[(String, String)],
    ) -> Result<serde_json::Value, BackendError> {
        (**self).command(path, command, arguments)
    }
}
