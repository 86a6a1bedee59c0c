//! The RouterOS menus the daemon serves, one module each. To add a menu: implement
//! [`crate::menu::Menu`] in a new module here and add it to [`all`].
use std::sync::Arc;

use crate::menu::Menu;

pub mod zerotier;

/// Every menu, in registration order.
pub fn all() -> Vec<Arc<dyn Menu>> {
    vec![Arc::new(zerotier::ZerotierMenu)]
}
