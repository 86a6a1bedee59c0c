//! An in-memory [`Backend`]: the REST model of the menus kept in maps, honouring the schema's
//! defaults, required properties, references and name uniqueness. Used by tests and labs.
//!
//! Properties the router itself maintains (peers, addresses, routes, `running`, `status` ...)
//! are not settable over REST; [`MemoryBackend::insert`] and [`MemoryBackend::publish`] let
//! the owner of the model put them in.

use std::collections::BTreeMap;

use crate::backend::{count_ids_below, retain_equal, Backend, BackendError, Item};
use crate::schema::{self, Command, Menu};
use crate::values::{unset_value, validate};

#[derive(Debug, Clone, Default)]
struct Table {
    items: Vec<Item>,
    next_id: u64,
}

/// The menus' items in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    tables: BTreeMap<&'static str, Table>,
    /// How often each menu was listed whole through [`Backend::list`].
    whole_lists: BTreeMap<&'static str, usize>,
}

/// The comment RouterOS gives its default instance.
pub const DEFAULT_INSTANCE_COMMENT: &str = "ZeroTier Central controller - https://my.zerotier.com/";

fn item_menu(path: &str) -> Result<&'static Menu, BackendError> {
    schema::menu(path)
        .filter(|m| m.has_items())
        .ok_or_else(|| BackendError::bad_request("no such command or directory"))
}

fn id_list(arguments: &[(String, String)]) -> Option<&str> {
    arguments
        .iter()
        .find(|(k, _)| k == ".id" || k == "numbers")
        .map(|(_, v)| v.as_str())
}

impl MemoryBackend {
    /// No items at all.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    /// The state of a fresh RouterOS with the zerotier package: the default instance `zt1`,
    /// disabled, with its comment. Its identity appears once the owner publishes one.
    pub fn with_default_instance() -> Self {
        let mut backend = MemoryBackend::new();
        let zerotier = schema::menu("/zerotier")
            .map(|m| m.path)
            .unwrap_or("/zerotier");
        let table = backend.tables.entry(zerotier).or_default();
        table.next_id = 1;
        let mut item = Item::new("*1");
        item.set("name", "zt1");
        item.set("port", "9993");
        item.set("interfaces", "all");
        item.set("route-distance", "1");
        item.set("disabled", "true");
        item.set("comment", DEFAULT_INSTANCE_COMMENT);
        table.items.push(item);
        let identity = backend.tables.entry("/system/identity").or_default();
        let mut item = Item::new("*0");
        item.set("name", "MikroTik");
        identity.items.push(item);
        backend
    }

    fn table(&mut self, menu: &'static Menu) -> &mut Table {
        self.tables.entry(menu.path).or_default()
    }

    fn next_id(&mut self, menu: &'static Menu) -> String {
        let table = self.table(menu);
        table.next_id += 1;
        format!("*{:X}", table.next_id)
    }

    /// Add an item exactly as given (no checks but the menu): state the router maintains.
    pub fn insert(
        &mut self,
        path: &str,
        properties: &[(&str, &str)],
    ) -> Result<String, BackendError> {
        let menu = item_menu(path)?;
        let id = self.next_id(menu);
        let mut item = Item::new(id.clone());
        for (k, v) in properties {
            item.set(k, *v);
        }
        self.table(menu).items.push(item);
        Ok(id)
    }

    /// Change properties of an item without checks, read-only ones included.
    pub fn publish(
        &mut self,
        path: &str,
        id: &str,
        properties: &[(&str, &str)],
    ) -> Result<(), BackendError> {
        let menu = item_menu(path)?;
        let item = self
            .table(menu)
            .items
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(BackendError::not_found)?;
        for (k, v) in properties {
            item.set(k, *v);
        }
        Ok(())
    }

    /// How often the menu at `path` was listed whole through the [`Backend`] trait (its
    /// look-ups by key, by id and its counts do not list it), so tests can check that the
    /// console leaves a large menu unlisted.
    pub fn whole_lists(&self, path: &str) -> usize {
        self.whole_lists.get(path).copied().unwrap_or(0)
    }

    /// The items of a menu, without going through the [`Backend`] trait.
    pub fn items(&self, path: &str) -> &[Item] {
        self.tables.get(path).map_or(&[], |t| t.items.as_slice())
    }

    fn names(&self, path: &str) -> Vec<String> {
        self.items(path)
            .iter()
            .filter_map(|i| i.get("name").map(str::to_string))
            .collect()
    }

    /// Check REST properties for `add`/`set`; returns them in REST form.
    fn checked(
        &self,
        menu: &Menu,
        properties: &[(String, String)],
    ) -> Result<Vec<(String, String)>, BackendError> {
        let mut checked = Vec::new();
        for (name, value) in properties {
            let property = menu
                .property(name)
                .filter(|p| !p.read_only)
                .ok_or_else(|| BackendError::bad_request(format!("unknown parameter {name}")))?;
            let rest = validate(property, value, &mut |path| Ok(self.names(path)))
                .map_err(|e| BackendError::bad_request(e.to_string()))?;
            checked.push((name.clone(), rest));
        }
        Ok(checked)
    }

    /// Whether another item already holds this identity (same name, or same member).
    fn duplicate(&self, menu: &Menu, candidate: &Item, except: Option<&str>) -> bool {
        self.items(menu.path)
            .iter()
            .filter(|i| Some(i.id.as_str()) != except)
            .any(|other| {
                let same_name = menu.has_names()
                    && candidate.get("name").is_some_and(|n| !n.is_empty())
                    && other.get("name") == candidate.get("name");
                let same_member = menu.path == "/zerotier/controller/member"
                    && other.get("network") == candidate.get("network")
                    && other.get("zt-address") == candidate.get("zt-address");
                same_name || same_member
            })
    }

    /// A default name like `zerotier1` that is taken becomes `zerotier2`, `zerotier3`, ...
    fn free_name(&self, menu: &Menu, default: &str) -> String {
        let taken = self.names(menu.path);
        if !taken.iter().any(|n| n == default) {
            return default.to_string();
        }
        let stem = default.trim_end_matches(|c: char| c.is_ascii_digit());
        (2..)
            .map(|n| format!("{stem}{n}"))
            .find(|name| !taken.contains(name))
            .unwrap_or_else(|| default.to_string())
    }

    /// A controller's network id: the instance's 10-hex address and the lowest free 6-hex number.
    fn new_network_id(&self, instance: &str) -> Result<String, BackendError> {
        let address = self
            .items("/zerotier")
            .iter()
            .find(|i| i.get("name") == Some(instance))
            .and_then(|i| i.get("identity.public"))
            .and_then(|public| public.get(..10))
            .map(str::to_string)
            .ok_or_else(|| BackendError::bad_request("failure: instance has no identity"))?;
        let used: Vec<&str> = self
            .items("/zerotier/controller")
            .iter()
            .filter_map(|i| i.get("network"))
            .collect();
        (1..=0xff_ffffu32)
            .map(|n| format!("{address}{n:06x}"))
            .find(|id| !used.contains(&id.as_str()))
            .ok_or_else(|| BackendError::bad_request("failure: no free network id"))
    }

    fn apply_toggle(
        &mut self,
        menu: &'static Menu,
        selector: &str,
        disabled: bool,
    ) -> Result<(), BackendError> {
        let ids = self.select(menu, selector)?;
        for item in self.table(menu).items.iter_mut() {
            if ids.contains(&item.id) {
                item.set("disabled", if disabled { "true" } else { "false" });
            }
        }
        Ok(())
    }

    /// Ids for a REST selector: comma-joined ids or names.
    fn select(&self, menu: &Menu, selector: &str) -> Result<Vec<String>, BackendError> {
        selector
            .split(',')
            .map(|part| {
                self.items(menu.path)
                    .iter()
                    .find(|i| i.id == part || i.get("name") == Some(part))
                    .map(|i| i.id.clone())
                    .ok_or_else(|| BackendError::bad_request("no such item"))
            })
            .collect()
    }
}

impl Backend for MemoryBackend {
    fn list(&mut self, path: &str) -> Result<Vec<Item>, BackendError> {
        let menu = item_menu(path)?;
        *self.whole_lists.entry(menu.path).or_default() += 1;
        Ok(self.items(menu.path).to_vec())
    }

    fn list_where(
        &mut self,
        path: &str,
        equal: &[(String, String)],
    ) -> Result<Vec<Item>, BackendError> {
        let menu = item_menu(path)?;
        let mut items = self.items(menu.path).to_vec();
        retain_equal(&mut items, equal);
        Ok(items)
    }

    fn count_below(&mut self, path: &str, id: &str) -> Result<usize, BackendError> {
        let menu = item_menu(path)?;
        count_ids_below(self.items(menu.path), id)
    }

    fn item(&mut self, path: &str, id: &str) -> Result<Option<Item>, BackendError> {
        let menu = item_menu(path)?;
        Ok(self.items(menu.path).iter().find(|i| i.id == id).cloned())
    }

    fn add(&mut self, path: &str, properties: &[(String, String)]) -> Result<String, BackendError> {
        let menu = item_menu(path)?;
        if !menu.allows(Command::Add) {
            return Err(BackendError::bad_request(
                "no such command or directory (add)",
            ));
        }
        let given = self.checked(menu, properties)?;
        if let Some(refusal) = menu.missing_required(|name| given.iter().any(|(k, _)| k == name)) {
            return Err(BackendError::bad_request(refusal));
        }
        let mut given = given;
        if menu.path == "/zerotier/controller" && !given.iter().any(|(k, _)| k == "network") {
            let instance = given
                .iter()
                .find(|(k, _)| k == "instance")
                .map_or("zt1", |(_, v)| v.as_str());
            let network = self.new_network_id(instance)?;
            given.push(("network".into(), network));
        }
        let mut item = Item::default();
        for property in menu.properties {
            if let Some((_, value)) = given.iter().find(|(k, _)| k == property.name) {
                item.set(property.name, value.clone());
            } else if let Some(default) = property.default.filter(|_| !property.read_only) {
                let value = if property.name == "name" {
                    self.free_name(menu, default)
                } else {
                    default.to_string()
                };
                item.set(property.name, value);
            }
        }
        if self.duplicate(menu, &item, None) {
            return Err(BackendError::bad_request(
                "failure: already have such entry",
            ));
        }
        let id = self.next_id(menu);
        item.id = id.clone();
        self.table(menu).items.push(item);
        Ok(id)
    }

    fn set(
        &mut self,
        path: &str,
        id: &str,
        properties: &[(String, String)],
    ) -> Result<(), BackendError> {
        let menu = item_menu(path)?;
        if let Some(fixed) = properties
            .iter()
            .find_map(|(name, _)| menu.property(name).filter(|p| p.create_only))
        {
            return Err(BackendError::bad_request(fixed.change_refusal()));
        }
        let checked = self.checked(menu, properties)?;
        let mut changed = self
            .items(menu.path)
            .iter()
            .find(|i| i.id == id)
            .cloned()
            .ok_or_else(BackendError::not_found)?;
        for (name, value) in checked {
            changed.set(&name, value);
        }
        if self.duplicate(menu, &changed, Some(id)) {
            return Err(BackendError::bad_request(
                "failure: already have such entry",
            ));
        }
        if let Some(slot) = self.table(menu).items.iter_mut().find(|i| i.id == id) {
            *slot = changed;
        }
        Ok(())
    }

    fn remove(&mut self, path: &str, id: &str) -> Result<(), BackendError> {
        let menu = item_menu(path)?;
        if !menu.allows(Command::Remove) {
            return Err(BackendError::bad_request(
                "no such command or directory (remove)",
            ));
        }
        let table = self.table(menu);
        let before = table.items.len();
        table.items.retain(|i| i.id != id);
        if table.items.len() == before {
            return Err(BackendError::not_found());
        }
        Ok(())
    }

    fn command(
        &mut self,
        path: &str,
        command: &str,
        arguments: &[(String, String)],
    ) -> Result<serde_json::Value, BackendError> {
        let menu = item_menu(path)?;
        let no_such_command = || BackendError::bad_request("no such command");
        let selector = id_list(arguments);
        match command {
            "set" if menu.is_singleton() => {
                let id = self
                    .table(menu)
                    .items
                    .first()
                    .map(|i| i.id.clone())
                    .ok_or_else(no_such_command)?;
                self.set(path, &id, arguments)?;
                Ok(serde_json::Value::Array(Vec::new()))
            }
            "enable" | "disable" if menu.allows(Command::Enable) => {
                let selector = selector.ok_or_else(|| {
                    BackendError::bad_request("missing value(s) of argument(s) numbers")
                })?;
                self.apply_toggle(menu, selector, command == "disable")?;
                Ok(serde_json::Value::Array(Vec::new()))
            }
            "unset" if menu.allows(Command::Unset) => {
                let selector = selector.ok_or_else(|| {
                    BackendError::bad_request("missing value(s) of argument(s) numbers")
                })?;
                let name = arguments
                    .iter()
                    .find(|(k, _)| k == "value-name")
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| {
                        BackendError::bad_request("missing value(s) of argument(s) value-name")
                    })?;
                let property = menu
                    .property(name)
                    .filter(|p| !p.read_only)
                    .ok_or_else(|| {
                        BackendError::bad_request("input does not match any value of value-name")
                    })?;
                let value =
                    unset_value(property).map_err(|e| BackendError::bad_request(e.to_string()))?;
                let ids = self.select(menu, selector)?;
                for item in self
                    .table(menu)
                    .items
                    .iter_mut()
                    .filter(|i| ids.contains(&i.id))
                {
                    match value.to_string() {
                        empty if empty.is_empty() => item.unset(name),
                        text => item.set(name, text),
                    }
                }
                Ok(serde_json::Value::Array(Vec::new()))
            }
            "print" => {
                let items = self.items(menu.path).iter().map(Item::to_json).collect();
                Ok(serde_json::Value::Array(items))
            }
            _ => Err(no_such_command()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn add_fills_defaults_and_checks() {
        let mut backend = MemoryBackend::with_default_instance();
        let id = backend
            .add(
                "/zerotier/interface",
                &pairs(&[("network", "1d71939404912b40")]),
            )
            .unwrap();
        let items = backend.list("/zerotier/interface").unwrap();
        assert_eq!(items[0].id, id);
        assert_eq!(items[0].get("name"), Some("zerotier1"));
        assert_eq!(items[0].get("instance"), Some("zt1"));
        assert_eq!(items[0].get("allow-default"), Some("false"));
        backend
            .add(
                "/zerotier/interface",
                &pairs(&[("network", "1d71939404912b41")]),
            )
            .unwrap();
        assert_eq!(
            backend.list("/zerotier/interface").unwrap()[1].get("name"),
            Some("zerotier2")
        );
        let error = backend
            .add(
                "/zerotier/interface",
                &pairs(&[("network", "1d71939404912b40"), ("name", "zerotier1")]),
            )
            .unwrap_err();
        assert_eq!(error.console_text(), "failure: already have such entry");
        let error = backend
            .add(
                "/zerotier/interface",
                &pairs(&[("mtu", "1500"), ("network", "1d71939404912b40")]),
            )
            .unwrap_err();
        assert_eq!(
            error.to_json(),
            serde_json::json!({"detail":"unknown parameter mtu","error":400,"message":"Bad Request"})
        );
        let error = backend.add("/zerotier/interface", &[]).unwrap_err();
        assert_eq!(
            error.console_text(),
            "missing value(s) of argument(s) network"
        );
        let error = backend
            .add(
                "/zerotier/interface",
                &pairs(&[("network", "1d71939404912b40"), ("instance", "zt9")]),
            )
            .unwrap_err();
        assert_eq!(
            error.console_text(),
            "input does not match any value of instance"
        );
        assert_eq!(
            backend.remove("/zerotier/interface", "*99"),
            Err(BackendError::not_found())
        );
        assert!(backend.add("/zerotier/peer", &[]).is_err());
    }

    #[test]
    fn controller_network_id_comes_from_the_instance_address() {
        let mut backend = MemoryBackend::with_default_instance();
        let error = backend
            .add("/zerotier/controller", &pairs(&[("name", "a")]))
            .unwrap_err();
        assert_eq!(error.console_text(), "failure: instance has no identity");
        backend
            .publish(
                "/zerotier",
                "*1",
                &[("identity.public", "879c0b5265:0:d5fd2d17")],
            )
            .unwrap();
        backend
            .add("/zerotier/controller", &pairs(&[("name", "a")]))
            .unwrap();
        backend
            .add("/zerotier/controller", &pairs(&[("name", "b")]))
            .unwrap();
        let networks: Vec<String> = backend
            .list("/zerotier/controller")
            .unwrap()
            .iter()
            .map(|i| i.get("network").unwrap().to_string())
            .collect();
        assert_eq!(networks, ["879c0b5265000001", "879c0b5265000002"]);
    }

    #[test]
    fn commands() {
        let mut backend = MemoryBackend::with_default_instance();
        backend
            .command("/zerotier", "enable", &pairs(&[(".id", "zt1")]))
            .unwrap();
        assert_eq!(
            backend.list("/zerotier").unwrap()[0].get("disabled"),
            Some("false")
        );
        backend
            .set("/zerotier", "*1", &pairs(&[("port", "9994")]))
            .unwrap();
        backend
            .command(
                "/zerotier",
                "unset",
                &pairs(&[(".id", "*1"), ("value-name", "port")]),
            )
            .unwrap();
        assert_eq!(
            backend.list("/zerotier").unwrap()[0].get("port"),
            Some("9993")
        );
        assert!(backend.command("/zerotier", "reboot", &[]).is_err());
        assert!(backend
            .command("/zerotier/peer", "enable", &pairs(&[(".id", "*1")]))
            .is_err());
    }
}
