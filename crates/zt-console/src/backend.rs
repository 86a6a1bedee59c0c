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

/// The number an internal id stands for (`*1A` → 26); `None` for anything else.
pub fn id_number(id: &str) -> Option<u64> {
    let hex = id.strip_prefix('*')?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Keep the items whose properties have exactly the values `equal` gives.
pub(crate) fn retain_equal(items: &mut Vec<Item>, equal: &[(String, String)]) {
    items.retain(|item| equal.iter().all(|(k, v)| item.get(k) == Some(v.as_str())));
}

/// How many of `items` have an id below `id` (by number).
pub(crate) fn count_ids_below(items: &[Item], id: &str) -> Result<usize, BackendError> {
    let below = id_number(id).ok_or_else(|| BackendError::bad_request("invalid query"))?;
    Ok(items
        .iter()
        .filter(|item| id_number(&item.id).is_some_and(|n| n < below))
        .count())
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
    /// `GET /rest<path>/<id>`: one item, `None` if there is no item with that id. Backends
    /// that can fetch one item override it; the default lists the menu.
    fn item(&mut self, path: &str, id: &str) -> Result<Option<Item>, BackendError> {
        Ok(self.list(path)?.into_iter().find(|i| i.id == id))
    }
    /// `POST /rest<path>/print {".query":["name=value",...]}`: the items whose properties
    /// have exactly these values, in menu order, so a router that indexes them reads only
    /// those. The default filters the whole list.
    fn list_where(
        &mut self,
        path: &str,
        equal: &[(String, String)],
    ) -> Result<Vec<Item>, BackendError> {
        let mut items = self.list(path)?;
        retain_equal(&mut items, equal);
        Ok(items)
    }
    /// `POST /rest<path>/print {"count-only":"",".query":["<.id=*N"]}`: how many items have
    /// an id below `id` (by number), which in a menu listed in id order is the print number
    /// of the item `id`. The default counts in the whole list.
    fn count_below(&mut self, path: &str, id: &str) -> Result<usize, BackendError> {
        count_ids_below(&self.list(path)?, id)
    }
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

/// Implement [`Backend`] for a pointer type by calling the backend it points to.
macro_rules! forward_backend {
    ($($pointer:ty),*) => {$(
        impl<B: Backend + ?Sized> Backend for $pointer {
            fn list(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
                (**self).list(path)
            }
            fn item(&mut self, path: &str, id: &str) -> Result<Option<Item>, BackendError> {
                (**self).item(path, id)
            }
            fn list_sensitive(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
                (**self).list_sensitive(path)
            }
            fn list_where(
                &mut self,
                path: &str,
                equal: &[(String, String)],
            ) -> Result<Vec<Item>, BackendError> {
                (**self).list_where(path, equal)
            }
            fn count_below(&mut self, path: &str, id: &str) -> Result<usize, BackendError> {
                (**self).count_below(path, id)
            }
            fn add(
                &mut self,
                path: &str,
                properties: &[(String, String)],
            ) -> Result<String, BackendError> {
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
    )*};
}

forward_backend!(Box<B>, &mut B);
