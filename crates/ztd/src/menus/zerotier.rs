//! `/zerotier`: the instance list (see [`crate::instances`] for the properties).
use async_trait::async_trait;

use crate::daemon::Daemon;
use crate::menu::{Args, CommandError, Menu, Record};
use crate::model::ItemId;

pub struct ZerotierMenu;

#[async_trait]
impl Menu for ZerotierMenu {
    fn path(&self) -> &'static str {
        "zerotier"
    }
    async fn print(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        Ok(daemon.instance_records().await)
    }
    async fn print_sensitive(&self, daemon: &Daemon) -> Result<Vec<Record>, CommandError> {
        daemon.instance_records_with_secrets().await
    }
    async fn add(&self, daemon: &Daemon, args: Args) -> Result<ItemId, CommandError> {
        daemon.instance_add(args).await
    }
    async fn set(&self, daemon: &Daemon, id: ItemId, args: Args) -> Result<(), CommandError> {
        daemon.instance_set(id, args).await
    }
    async fn remove(&self, daemon: &Daemon, id: ItemId) -> Result<(), CommandError> {
        daemon.instance_remove(id).await
    }
}
