//! `/system/identity`: the router's name (`print`, `set name=`), `MikroTik` until set, as on
//! RouterOS. The console shows it in its prompt (`[admin@NAME] >`). Kept in
//! `<home>/system-identity.json`.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::daemon::Daemon;
use crate::menu::{Args, CommandError, Menu, Record};
use crate::model::ItemId;
use crate::state_dir::{read_optional, write_atomic, PUBLIC_MODE};

/// RouterOS's factory identity.
pub const DEFAULT_IDENTITY: &str = "MikroTik";
const IDENTITY_FILE: &str = "system-identity.json";
/// Longest name accepted (RouterOS's limit is not documented; a prompt needs no more).
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
struct SystemIdentity {
    name: String,
}

pub struct IdentityMenu;

impl IdentityMenu {
    fn read(daemon: &Daemon) -> Result<String, CommandError> {
        let path = daemon.state_dir().root().join(IDENTITY_FILE);
        let Some(bytes) =
            read_optional(&path).map_err(|e| CommandError::Internal(e.to_string()))?
        else {
            return Ok(DEFAULT_IDENTITY.to_string());
        };
        serde_json::from_slice::<SystemIdentity>(&bytes)
            .map(|identity| identity.name)
            .map_err(|e| CommandError::Internal(format!("{}: {e}", path.display())))
    }
}

/// A name RouterOS would take and a prompt can show: 1 to 64 characters, no control ones.
fn checked_name(name: String) -> Result<String, CommandError> {
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(CommandError::refused(format!(
            "invalid value for argument name: 1 to {MAX_NAME_CHARS} characters, no control characters"
        )));
    }
    Ok(name)
}

#[async_trait]
impl Menu for IdentityMenu {
    fn path(&self) -> &'static str {
        "system/identity"
    }
    fn singleton(&self) -> bool {
        true
    }
    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        let mut record = Record::new();
        record.insert(".id".into(), ItemId(0).to_string());
        record.insert("name".into(), Self::read(daemon)?);
        Ok(vec![record])
    }
    async fn set(&self, daemon: &Daemon, _id: ItemId, mut args: Args) -> Result<(), CommandError> {
        let name = args.take("name").map(checked_name).transpose()?;
        args.finish()?;
        let Some(name) = name else {
            return Ok(());
        };
        // One writer at a time: the daemon's lock orders changes.
        let _model = daemon.lock().await;
        let bytes = serde_json::to_vec(&SystemIdentity { name })
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        write_atomic(
            &daemon.state_dir().root().join(IDENTITY_FILE),
            &bytes,
            PUBLIC_MODE,
        )
        .map_err(|e| CommandError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(checked_name("Home".into()).unwrap(), "Home");
        assert_eq!(checked_name("Büro 2".into()).unwrap(), "Büro 2");
        for bad in ["", "a\nb", &"x".repeat(65)] {
            assert!(checked_name(bad.to_string()).is_err(), "{bad:?}");
        }
    }
}
