//! The RouterOS menus the daemon serves, one module each. To add a menu:
//!
//! 1. keep its configuration (if any) as a [`crate::model::Table`] field of
//!    [`crate::daemon::Model`], loaded in [`crate::daemon::Daemon::open`] and saved with
//!    `Table::save` after each change (one JSON file per table in the home directory);
//! 2. implement [`crate::menu::Menu`] in a module here: `path()` (`"zerotier/interface"`),
//!    `print` (records with `.id` and RouterOS property names, values as text), and for
//!    writable menus `add`/`set`/`remove`, taking arguments with the `Args::take_*` helpers
//!    and ending with `Args::finish()` so unknown properties are refused;
//! 3. add it to [`all`]. The REST layer then serves GET/PUT/PATCH/DELETE and
//!    `POST …/print|get|add|set|remove|enable|disable` for it; other commands go to
//!    `Menu::command`.
//!
//! Runtime state comes from the instance's engine: `model.runtime(id)?.with_engine(|engine,
//! now| …)` runs a closure inside the instance's driver task; find an instance by name with
//! `Model::instance_by_name`.
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
