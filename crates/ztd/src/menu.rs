//! The command model: RouterOS menus (`/zerotier`, `/zerotier/interface`, …) as
//! print/add/set/remove plus extra commands, independent of the transport (REST today, the
//! zerotier-one JSON API reuses the same daemon calls).
//!
//! A menu is one module implementing [`Menu`]; it is registered in
//! [`crate::rest::MenuRegistry::standard`]. Arguments arrive as [`Args`] (property name →
//! text, as RouterOS takes them) and items leave as [`Record`]s (property name → text, the
//! way RouterOS REST shows every value as a string). Errors carry the RouterOS console text.
use std::collections::BTreeMap;

use async_trait::async_trait;

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

/// Command arguments. Typed `take_*` accessors remove what they read, so [`Args::finish`]
/// can reject whatever the menu did not understand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    values: BTreeMap<String, String>,
}

impl Args {
    pub fn new() -> Args {
        Args::default()
    }
    /// Arguments from `(name, value)` pairs, as tests write them.
    #[cfg(test)]
    pub fn of(pairs: &[(&str, &str)]) -> Args {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
    /// The raw text of `name`, left in place.
    pub fn peek(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
    /// The raw text of `name`, removed from the arguments.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }
    /// A boolean given as `yes`/`no`/`true`/`false`.
    pub fn take_bool(&mut self, name: &str) -> Result<Option<bool>, CommandError> {
        self.take(name)
            .map(|v| parse_bool(&v).ok_or_else(|| CommandError::invalid_value(name)))
            .transpose()
    }
    /// An integer within `min..=max` (decimal, or hexadecimal with `0x`).
    pub fn take_u32_in(
        &mut self,
        name: &str,
        min: u32,
        max: u32,
    ) -> Result<Option<u32>, CommandError> {
        let Some(text) = self.take(name) else {
            return Ok(None);
        };
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse::<u64>(),
        };
        match parsed {
            Ok(v) if v >= min as u64 && v <= max as u64 => Ok(Some(v as u32)),
            Ok(_) => Err(CommandError::out_of_range(name, min, max)),
            // A negative number is a number out of range, anything else is not a number.
            Err(_) if text.starts_with('-') && text[1..].parse::<u64>().is_ok() => {
                Err(CommandError::out_of_range(name, min, max))
            }
            Err(_) => Err(CommandError::invalid_value(name)),
        }
    }
    /// A comma-separated list (empty items dropped).
    pub fn take_list(&mut self, name: &str) -> Option<Vec<String>> {
        self.take(name).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
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

impl FromIterator<(String, String)> for Args {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Args {
        Args {
            values: iter.into_iter().collect(),
        }
    }
}

/// RouterOS booleans: `yes`/`no` (console), `true`/`false` (scripting, REST).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
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
        args: Args,
    ) -> Result<serde_json::Value, CommandError> {
        let disabled = match name {
            "enable" => "no",
            "disable" => "yes",
            _ => return Err(CommandError::no_such_command()),
        };
        args.finish()?;
        if items.is_empty() {
            return Err(CommandError::refused(
                "missing value(s) of argument(s) numbers",
            ));
        }
        for id in items {
            let mut set = Args::new();
            set.insert("disabled", disabled);
            self.set(daemon, id, set).await?;
        }
        Ok(serde_json::Value::Array(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_range_checked_with_routeros_texts() {
        let mut a: Args = [("port".to_string(), "70000".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            a.take_u32_in("port", 1, 65535),
            Err(CommandError::Refused(
                "value of port is out of range (1 .. 65535)".into()
            ))
        );
        let mut a: Args = [("port".to_string(), "abc".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            a.take_u32_in("port", 1, 65535),
            Err(CommandError::Refused(
                "invalid value for argument port".into()
            ))
        );
        let mut a: Args = [("port".to_string(), "-1".to_string())]
            .into_iter()
            .collect();
        assert!(
            matches!(a.take_u32_in("port", 1, 65535), Err(CommandError::Refused(t)) if t.contains("out of range"))
        );
        let mut a: Args = [("port".to_string(), "0x2709".to_string())]
            .into_iter()
            .collect();
        assert_eq!(a.take_u32_in("port", 1, 65535), Ok(Some(9993)));
    }

    #[test]
    fn leftover_arguments_are_unknown_parameters() {
        let mut a: Args = [
            ("name".to_string(), "x".to_string()),
            ("bogus".to_string(), "1".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(a.take("name").as_deref(), Some("x"));
        assert_eq!(
            a.finish(),
            Err(CommandError::Refused("unknown parameter bogus".into()))
        );
    }

    #[test]
    fn booleans_accept_console_and_rest_forms() {
        for (t, v) in [
            ("yes", true),
            ("true", true),
            ("no", false),
            ("false", false),
        ] {
            assert_eq!(parse_bool(t), Some(v));
        }
        assert_eq!(parse_bool("1"), None);
    }
}
