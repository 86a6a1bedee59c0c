//! ztd: the zt daemon — the only part of zt that touches the OS (see `DESIGN.md`).
//!
//! ```text
//!   HTTP (RouterOS REST /rest/...) ──> rest ──> menus (command model) ──> Daemon (one lock)
//!                                                                          │
//!                         instances: identity files, UDP sockets ──> runtime::driver task
//!                                                                          │
//!                                   sans-I/O engine (zt-node) <── runtime::engine::Engine
//! ```
//! - [`state_dir`]: the home directory and atomic writes; [`identity_store`]: identities.
//! - [`model`]: tables of items with RouterOS internal ids, persisted as JSON.
//! - [`controller`]: the instances' network controllers, each a service thread off the
//!   packet path (config requests, pushes);
//! - [`daemon`]: the shared state; [`instances`]: the `/zerotier` logic.
//! - [`menu`] / [`menus`]: the command model; [`rest`]: its HTTP transport.
//! - [`service_api`]: the zerotier-one service API (`/status`, `/health`).
//! - [`runtime`]: sockets and the driver loop around an [`runtime::engine::Engine`].
#![deny(unsafe_code)]

pub mod controller;
pub mod daemon;
pub mod identity_store;
pub mod instances;
pub mod local_conf;
pub mod logging;
pub mod menu;
pub mod menus;
pub mod model;
pub mod networks;
pub mod os;
pub mod rest;
pub mod runtime;
pub mod service_api;
pub mod state_dir;
