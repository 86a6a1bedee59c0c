//! The command model: RouterOS menus (`/zerotier`, `/zerotier/interface`, …) as
//! print/add/set/remove plus extra commands, independent of the transport (REST today, the
//! zerotier-one JSON API reuses the same daemon calls).
//!
//! A menu is one module implementing [`Menu`]; it is registered in
//! [`crate::rest::MenuRegistry::standard`]. Arguments arrive as text ([`RawArgs`]), are
//! checked once against the menu's declaration in `zt_console::schema` (the one the console
//! and its memory model use) and reach the menu as typed [`Args`]; items leave as [`Record`]s
//! (property name → text, the way RouterOS REST shows every value as a string). Errors carry
//! the RouterOS console text.
use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;
use zt_console::schema;
use zt_console::values::{self, IpRange, RouteSpec, Value};
use zt_crypto::Address;
use zt_wire::network_id::NetworkId;

use crate::daemon::Daemon;
use crate::model::ItemId;

/// One item as shown by `print` / REST: property name → value text. `.id` is included.
pub type Record = BTreeMap<String, String>;

/// A command failed; the text is what RouterOS would print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command was refused (REST 400, `detail` = this text).
    #[error("{0}")]
    Refused(String),
    /// The addressed item does not exist (REST 404 for item URLs, `no such item` otherwise).
    #[error("no such item")]
    NoSuchItem,
    /// The daemon failed (state directory unwritable, …) (REST 500).
    #[error("{0}")]
    Internal(String),
}

impl CommandError {
    pub fn refused(text: impl Into<String>) -> CommandError {
        CommandError::Refused(text.into())
    }
    pub fn unknown_parameter(name: &str) -> CommandError {
        CommandError::Refused(format!("unknown parameter {name}"))
    }
    pub fn invalid_value(name: &str) -> CommandError {
        CommandError::Refused(format!("invalid value for argument {name}"))
    }
    pub fn out_of_range(
        name: &str,
        min: impl std::fmt::Display,
        max: impl std::fmt::Display,
    ) -> CommandError {
        CommandError::Refused(format!("value of {name} is out of range ({min} .. {max})"))
    }
    pub fn failure(text: impl std::fmt::Display) -> CommandError {
        CommandError::Refused(format!("failure: {text}"))
    }
    pub fn no_such_command() -> CommandError {
        CommandError::Refused("no such command".into())
    }
}

/// Command arguments as they arrive over RouterOS REST: property name → text.
pub type RawArgs = BTreeMap<String, String>;

/// Command arguments checked against the menu's schema ([`zt_console::schema`]): property
/// name → typed [`Value`]. Faces check text once with [`Args::check`] (or build typed
/// values directly, as the zerotier JSON API does); menus take typed values with the `take_*`
/// accessors, which remove what they read, so [`Args::finish`] can reject whatever the menu
/// did not use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    values: BTreeMap<String, Value>,
}

/// `copy-from=<item>` of `add`: not a property, the item whose settings the new one starts
/// from.
pub const COPY_FROM: &str = "copy-from";

impl Args {
    pub fn new() -> Args {
        Args::default()
    }

    /// Check text arguments for a command on `menu`: each must be a settable property of the
    /// menu (or one of `extras`, kept as text) with a value of its type. `reference_names`
    /// answers the item names a reference property may take (the names of `/zerotier` for
    /// `instance`).
    pub fn check(
        menu: &schema::Menu,
        raw: RawArgs,
        extras: &[&str],
        reference_names: &mut dyn FnMut(&'static str) -> Vec<String>,
    ) -> Result<Args, CommandError> {
        let mut args = Args::new();
        for (name, text) in raw {
            if extras.contains(&name.as_str()) {
                args.values.insert(name, Value::Text(text));
                continue;
            }
            let Some(property) = menu.property(&name).filter(|p| !p.read_only) else {
                return Err(CommandError::unknown_parameter(&name));
            };
            let value = values::parse(property, &text, &mut |path| Ok(reference_names(path)))
                .map_err(|e| CommandError::Refused(e.to_string()))?;
            args.values.insert(name, value);
        }
        Ok(args)
    }

    /// [`Args::check`] of `name=value` pairs for the menu at `path` (`zerotier/interface`),
    /// without references to other menus' items: for the daemon's own commands and tests.
    pub fn check_pairs(path: &str, pairs: &[(&str, &str)]) -> Result<Args, CommandError> {
        let menu = schema_of(path)?;
        let raw = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Args::check(menu, raw, &[COPY_FROM], &mut |_| Vec::new())
    }

    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.values.insert(name.into(), value);
    }
    /// Add `other`'s arguments; where both have one, `other`'s wins.
    pub fn extend(&mut self, other: Args) {
        self.values.extend(other.values);
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
    /// The value of `name`, removed from the arguments.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.values.remove(name)
    }

    /// Take `name` as `T`; a value of another type is the daemon's error (its menu and the
    /// schema disagree), not the user's.
    fn take_as<T>(
        &mut self,
        name: &str,
        typed: impl FnOnce(Value) -> Option<T>,
    ) -> Result<Option<T>, CommandError> {
        match self.values.remove(name) {
            None => Ok(None),
            Some(value) => {
                let shown = value.to_string();
                typed(value).map(Some).ok_or_else(|| {
                    CommandError::Internal(format!(
                        "{name}={shown}: not of the type the menu takes"
                    ))
                })
            }
        }
    }

    /// Text, names, references and enum words.
    pub fn take_text(&mut self, name: &str) -> Result<Option<String>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Text(text) => Some(text),
            _ => None,
        })
    }
    pub fn take_bool(&mut self, name: &str) -> Result<Option<bool>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Bool(b) => Some(b),
            _ => None,
        })
    }
    /// A number; the schema's range is checked already, `T` must hold it.
    pub fn take_number<T: TryFrom<i64>>(&mut self, name: &str) -> Result<Option<T>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Number(n) => T::try_from(n).ok(),
            _ => None,
        })
    }
    /// A number of an optional property: `Some(None)` when it was given empty (cleared).
    pub fn take_optional_number<T: TryFrom<i64>>(
        &mut self,
        name: &str,
    ) -> Result<Option<Option<T>>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Number(n) => T::try_from(n).ok().map(Some),
            Value::Unset => Some(None),
            _ => None,
        })
    }
    pub fn take_words(&mut self, name: &str) -> Result<Option<Vec<String>>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Words(words) => Some(words),
            _ => None,
        })
    }
    /// A network ID; `Some(None)` when an optional one was given empty.
    pub fn take_network_id(
        &mut self,
        name: &str,
    ) -> Result<Option<Option<NetworkId>>, CommandError> {
        self.take_as(name, |v| match v {
            Value::NetworkId(id) => Some(Some(id)),
            Value::Unset => Some(None),
            _ => None,
        })
    }
    pub fn take_zt_address(&mut self, name: &str) -> Result<Option<Address>, CommandError> {
        self.take_as(name, |v| match v {
            Value::ZtAddress(address) => Some(address),
            _ => None,
        })
    }
    /// `auto` (`Some(None)`) or a time in milliseconds.
    pub fn take_auto_or_duration(
        &mut self,
        name: &str,
    ) -> Result<Option<Option<u64>>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Auto => Some(None),
            Value::Duration(ms) => Some(Some(ms)),
            _ => None,
        })
    }
    pub fn take_ranges(&mut self, name: &str) -> Result<Option<Vec<IpRange>>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Ranges(ranges) => Some(ranges),
            _ => None,
        })
    }
    pub fn take_routes(&mut self, name: &str) -> Result<Option<Vec<RouteSpec>>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Routes(routes) => Some(routes),
            _ => None,
        })
    }
    pub fn take_addresses(&mut self, name: &str) -> Result<Option<Vec<IpAddr>>, CommandError> {
        self.take_as(name, |v| match v {
            Value::Addresses(addresses) => Some(addresses),
            _ => None,
        })
    }

    /// Refuse leftover arguments: the first (alphabetically) is reported, as RouterOS REST
    /// reports `unknown parameter X`.
    pub fn finish(self) -> Result<(), CommandError> {
        match self.values.keys().next() {
            Some(name) => Err(CommandError::unknown_parameter(name)),
            None => Ok(()),
        }
    }
}

/// Refuse arguments a command does not take, as RouterOS does.
pub fn no_more_arguments(raw: &RawArgs) -> Result<(), CommandError> {
    match raw.keys().next() {
        Some(name) => Err(CommandError::unknown_parameter(name)),
        None => Ok(()),
    }
}

/// The schema of the menu at `path` (`zerotier/interface`, no leading slash).
pub fn schema_of(path: &str) -> Result<&'static schema::Menu, CommandError> {
    schema::menu(&format!("/{path}"))
        .ok_or_else(|| CommandError::Internal(format!("menu {path} has no schema")))
}

/// What `unset` gives a property (see [`values::unset_value`]).
pub fn unset_value(property: &schema::Property) -> Result<Value, CommandError> {
    values::unset_value(property).map_err(|e| CommandError::Refused(e.to_string()))
}

/// How REST shows a boolean.
pub fn bool_text(v: bool) -> String {
    if v { "true" } else { "false" }.to_string()
}

/// One RouterOS menu. `print` is required; the other verbs default to `no such command`
/// (read-only menus such as `/zerotier/peer` implement only `print`).
///
/// Item selectors (`.id`, `numbers`, URL segments) are resolved by the transport against the
/// `.id` and `name` of the printed records, so menus only deal with [`ItemId`]s.
#[async_trait]
pub trait Menu: Send + Sync {
    /// The menu path without leading slash, words separated by `/` (`zerotier/interface`).
    fn path(&self) -> &'static str;
    /// A menu of one unnamed item (`/system/identity`): REST GET answers the bare object
    /// without `.id`, and `set` needs no item selector.
    fn singleton(&self) -> bool {
        false
    }
    /// All items, in menu order.
    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError>;
    /// The items whose properties have exactly these values (`print where a=x b=y`), in
    /// menu order. Menus with many items override it to look the items up by key.
    async fn print_where(
        &self,
        daemon: &Daemon,
        equal: &[(String, String)],
    ) -> Result<Vec<Record>, CommandError> {
        let mut records = self.print(daemon).await?;
        records.retain(|r| equal.iter().all(|(k, v)| r.get(k) == Some(v)));
        Ok(records)
    }
    /// The item with this id, if it exists.
    async fn item(&self, daemon: &Daemon, id: ItemId) -> Result<Option<Record>, CommandError> {
        let equal = [(".id".to_string(), id.to_string())];
        Ok(self.print_where(daemon, &equal).await?.into_iter().next())
    }
    /// How many items `print` lists before where an item with id `below` stands: the
    /// console's print number of that item (`print count-only` with the `.query` word
    /// `<.id=*N`). Only meaningful for menus listed in `.id` order (the schema's
    /// `listed_by_id`); menus with many items override it to count without listing.
    async fn count_below(&self, daemon: &Daemon, below: ItemId) -> Result<usize, CommandError> {
        Ok(self
            .print(daemon)
            .await?
            .iter()
            .filter_map(|r| r.get(".id")?.parse::<ItemId>().ok())
            .filter(|id| *id < below)
            .count())
    }
    /// `print show-sensitive`: the items with their sensitive values (an instance's secret
    /// identity), which `print` leaves out as RouterOS hides them by default.
    async fn print_sensitive(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        self.print(daemon).await
    }
    /// Create an item; returns its id.
    async fn add(&self, _daemon: &Daemon, _args: Args) -> Result<ItemId, CommandError> {
        Err(CommandError::no_such_command())
    }
    /// Change properties of one item.
    async fn set(&self, _daemon: &Daemon, _id: ItemId, _args: Args) -> Result<(), CommandError> {
        Err(CommandError::no_such_command())
    }
    /// Remove one item.
    async fn remove(&self, _daemon: &Daemon, _id: ItemId) -> Result<(), CommandError> {
        Err(CommandError::no_such_command())
    }
    /// Any other command (`enable`, `disable`, menu-specific ones) on the selected items.
    /// The default implements `enable`/`disable` as `set disabled=no|yes`.
    async fn command(
        &self,
        daemon: &Daemon,
        name: &str,
        items: Vec<ItemId>,
        args: RawArgs,
    ) -> Result<serde_json::Value, CommandError> {
        let disabled = match name {
            "enable" => false,
            "disable" => true,
            _ => return Err(CommandError::no_such_command()),
        };
        no_more_arguments(&args)?;
        if items.is_empty() {
            return Err(CommandError::refused(
                "missing value(s) of argument(s) numbers",
            ));
        }
        for id in items {
            let mut set = Args::new();
            set.insert("disabled", Value::Bool(disabled));
            self.set(daemon, id, set).await?;
        }
        Ok(serde_json::Value::Array(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_by_the_schema_with_routeros_texts() {
        let refused = |pairs: &[(&str, &str)]| Args::check_pairs("zerotier", pairs).unwrap_err();
        assert_eq!(
            refused(&[("port", "70000")]),
            CommandError::Refused("value of port is out of range (1 .. 65535)".into())
        );
        assert_eq!(
            refused(&[("port", "abc")]),
            CommandError::Refused("invalid value for argument port".into())
        );
        assert_eq!(
            refused(&[("route-distance", "0")]),
            CommandError::Refused("value of route-distance is out of range (1 .. 255)".into())
        );
        assert_eq!(
            refused(&[("online", "yes")]),
            CommandError::unknown_parameter("online")
        );
        let mut args = Args::check_pairs("zerotier", &[("port", "0x2709")]).unwrap();
        assert_eq!(args.take_number::<u16>("port"), Ok(Some(9993)));
        let mut args = Args::check_pairs("zerotier", &[("tcp-relay", "")]).unwrap();
        assert_eq!(
            args.take_optional_number::<u16>("tcp-relay"),
            Ok(Some(None))
        );
    }

    #[test]
    fn leftover_arguments_are_unknown_parameters() {
        let mut a = Args::check_pairs(
            "zerotier/interface",
            &[("name", "x"), ("copy-from", "zerotier1")],
        )
        .unwrap();
        assert_eq!(a.take_text("name"), Ok(Some("x".into())));
        assert_eq!(
            a.finish(),
            Err(CommandError::Refused("unknown parameter copy-from".into()))
        );
    }

    #[test]
    fn a_value_of_another_type_is_the_daemons_error() {
        let mut a = Args::check_pairs("zerotier", &[("port", "9993")]).unwrap();
        assert!(matches!(
            a.take_bool("port"),
            Err(CommandError::Internal(_))
        ));
    }

    #[test]
    fn unset_gives_the_default_or_the_empty_value() {
        let zerotier = schema::menu("/zerotier").unwrap();
        let value = |name| unset_value(zerotier.property(name).unwrap());
        assert_eq!(value("port"), Ok(Value::Number(9993)));
        assert_eq!(value("tcp-relay"), Ok(Value::Unset));
        assert_eq!(value("comment"), Ok(Value::Text(String::new())));
        let interface = schema::menu("/zerotier/interface").unwrap();
        assert!(unset_value(interface.property("network").unwrap()).is_err());
    }
}
