//! The RouterOS menus the daemon serves, one module each. To add a menu:
//!
//! 1. keep its configuration (if any) as a [`crate::model::Table`] field of
//!    [`crate::daemon::Model`], loaded in [`crate::daemon::Daemon::open`] and saved with
//!    `Table::save` after each change (one JSON file per table in the home directory);
//! 2. declare the menu in `zt_console::schema` (properties, types, defaults, ranges, flags):
//!    the console, the memory model and this daemon check values through it, so the REST
//!    layer hands the menu [`crate::menu::Args`] already checked and typed;
//! 3. implement [`crate::menu::Menu`] in a module here: `path()` (`"zerotier/interface"`),
//!    `print` (records with `.id` and RouterOS property names, values as text), and for
//!    writable menus `add`/`set`/`remove`, taking typed values with the `Args::take_*`
//!    helpers and ending with `Args::finish()` so properties the menu ignores are refused
//!    (`unset` arrives as a `set` of the property's default or empty value);
//! 4. add it to [`all`]. The REST layer then serves GET/PUT/PATCH/DELETE and
//!    `POST …/print|get|add|set|remove|enable|disable` for it; other commands go to
//!    `Menu::command`.
//!
//! Runtime state comes from the instance's engine: `model.runtime(id)?.handle().peers()` (and
//! the other typed commands of [`crate::runtime::commands`]) asks the instance's driver task;
//! find an instance by name with `Model::instance_by_name`.
use std::sync::Arc;

use crate::menu::Menu;

pub mod controller;
pub mod file;
pub mod interface;
pub mod ip;
pub mod member;
pub mod peer;
pub mod ping;
pub mod system;
pub mod zerotier;

/// Every menu, in registration order.
pub fn all() -> Vec<Arc<dyn Menu>> {
    vec![
        Arc::new(zerotier::ZerotierMenu),
        Arc::new(controller::ControllerMenu),
        Arc::new(member::MemberMenu),
        Arc::new(peer::PeerMenu),
        Arc::new(interface::InterfaceMenu),
        Arc::new(ip::AddressMenu),
        Arc::new(ip::RouteMenu),
        Arc::new(system::IdentityMenu),
    ]
}
