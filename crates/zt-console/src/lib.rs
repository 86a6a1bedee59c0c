//! The RouterOS command language for zt: parsing, menus, print tables.
//!
//! The console is a client of the router model. It parses a command line against the static
//! menu tree ([`schema`]), resolves item selectors against the last `print` of each menu, checks
//! values, calls a [`Backend`] (the daemon's RouterOS-style REST API, or [`MemoryBackend`]) and
//! formats the answer the way RouterOS v7 prints it ([`format`]).
#![deny(unsafe_code)]

pub mod backend;
pub mod duration;
pub mod error;
pub mod expr;
pub mod format;
pub mod memory;
pub mod parser;
pub mod rest;
pub mod schema;
pub mod session;
pub mod values;

pub use backend::{Backend, BackendError, Item};
pub use duration::{format_duration_ms, parse_duration_ms};
pub use error::ConsoleError;
pub use memory::MemoryBackend;
pub use rest::{RestBackend, RestRequest, RestResponse, Transport};
pub use session::{Console, Reply, ScriptValue};
