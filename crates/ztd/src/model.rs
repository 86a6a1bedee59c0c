//! The daemon's configuration model: tables of RouterOS-style items with stable internal
//! ids (`*1`, `*1A`), persisted one table per JSON file in the state directory.
//!
//! Every menu's configuration lives in one [`Table`] inside [`crate::daemon::Model`], which
//! the daemon guards with a single lock, so a command sees and changes a consistent state
//! (RouterOS also runs one user's commands serially).
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::state_dir::{read_optional, write_atomic, StateError, PUBLIC_MODE};

/// A RouterOS internal item id: shown as `*` + upper-case hex (`*1`, `*1A`), stable while the
/// item exists, never reused within a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ItemId(pub u32);

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "*{:X}", self.0)
    }
}

impl FromStr for ItemId {
    type Err = ();
    fn from_str(s: &str) -> Result<ItemId, ()> {
        let hex = s.strip_prefix('*').ok_or(())?;
        if hex.is_empty() || hex.len() > 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        u32::from_str_radix(hex, 16).map(ItemId).map_err(|_| ())
    }
}

/// One stored item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row<T> {
    pub id: ItemId,
    #[serde(flatten)]
    pub value: T,
}

/// An ordered list of items with internal ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table<T> {
    next_id: u32,
    rows: Vec<Row<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            next_id: 1,
            rows: Vec::new(),
        }
    }
}

/// A table file exists but cannot be understood: fatal, the operator must look at it.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
}

impl<T: Serialize + DeserializeOwned> Table<T> {
    /// Load from `path`; `Ok(None)` if the file does not exist yet.
    pub fn load(path: &Path) -> Result<Option<Table<T>>, TableError> {
        let Some(bytes) = read_optional(path)? else {
            return Ok(None);
        };
        let table: Table<T> = serde_json::from_slice(&bytes).map_err(|e| TableError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if table.rows.iter().any(|r| r.id.0 >= table.next_id) {
            return Err(TableError::Corrupt {
                path: path.display().to_string(),
                message: "item id not below next_id".into(),
            });
        }
        Ok(Some(table))
    }

    /// Write atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        self.save_with_mode(path, PUBLIC_MODE)
    }

    /// Write atomically to `path`, readable by the owner only (a table that lists members).
    pub fn save_private(&self, path: &Path) -> Result<(), StateError> {
        self.save_with_mode(path, crate::state_dir::SECRET_MODE)
    }

    fn save_with_mode(&self, path: &Path, mode: u32) -> Result<(), StateError> {
        let mut json = serde_json::to_vec_pretty(self).expect("table serializes");
        json.push(b'\n');
        write_atomic(path, &json, mode)
    }
}

impl<T> Table<T> {
    /// Append an item, returning its new id.
    pub fn insert(&mut self, value: T) -> ItemId {
        let id = ItemId(self.next_id);
        self.next_id += 1;
        self.rows.push(Row { id, value });
        id
    }
    pub fn get(&self, id: ItemId) -> Option<&T> {
        self.rows.iter().find(|r| r.id == id).map(|r| &r.value)
    }
    pub fn get_mut(&mut self, id: ItemId) -> Option<&mut T> {
        self.rows
            .iter_mut()
            .find(|r| r.id == id)
            .map(|r| &mut r.value)
    }
    pub fn remove(&mut self, id: ItemId) -> Option<T> {
        let index = self.rows.iter().position(|r| r.id == id)?;
        Some(self.rows.remove(index).value)
    }
    pub fn iter(&self) -> impl Iterator<Item = (ItemId, &T)> {
        self.rows.iter().map(|r| (r.id, &r.value))
    }
    pub fn ids(&self) -> Vec<ItemId> {
        self.rows.iter().map(|r| r.id).collect()
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Item {
        v: String,
    }
    fn item(v: &str) -> Item {
        Item { v: v.into() }
    }

    #[test]
    fn item_ids_print_and_parse_like_routeros() {
        assert_eq!(ItemId(1).to_string(), "*1");
        assert_eq!(ItemId(0x1a).to_string(), "*1A");
        assert_eq!("*1A".parse::<ItemId>(), Ok(ItemId(0x1a)));
        assert_eq!("*1a".parse::<ItemId>(), Ok(ItemId(0x1a)));
        assert!("1".parse::<ItemId>().is_err());
        assert!("*".parse::<ItemId>().is_err());
        assert!("*xyz".parse::<ItemId>().is_err());
        assert!("*123456789".parse::<ItemId>().is_err());
    }

    #[test]
    fn ids_are_never_reused_and_survive_a_save() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.json");
        let mut t: Table<Item> = Table::default();
        let a = t.insert(item("a"));
        let b = t.insert(item("b"));
        assert_eq!(t.remove(a), Some(item("a")));
        t.save(&path).unwrap();
        let mut t2: Table<Item> = Table::load(&path).unwrap().unwrap();
        assert_eq!(t2.get(b), Some(&item("b")));
        let c = t2.insert(item("c"));
        assert_eq!(c, ItemId(3));
    }

    #[test]
    fn corrupt_table_is_an_error_not_a_reset() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            Table::<Item>::load(&path),
            Err(TableError::Corrupt { .. })
        ));
        assert!(Table::<Item>::load(&tmp.path().join("missing.json"))
            .unwrap()
            .is_none());
    }
}
