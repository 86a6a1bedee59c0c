//! The RouterOS command language for zt: parsing, menus, print tables.
//!
//! The console is a client of the router model. It parses a command line against the static
//! menu tree ([`schema`]), resolves item selectors against the last `print` of each menu, checks
//! values, calls a [`Backend`] (the daemon's RouterOS-style REST API, or [`MemoryBackend`]) and
//! formats the answer the way RouterOS v7 prints it ([`format`](mod@format)).
//!
//! ```
//! use zt_console::{Console, MemoryBackend};
//!
//! let mut console = Console::new(MemoryBackend::with_default_instance());
//! console.execute("/zerotier/enable zt1").unwrap();
//! console.execute("/zerotier/interface/add network=1d71939404912b40").unwrap();
//! assert_eq!(
//!     console.execute("/zerotier/interface/print").unwrap(),
//!     "Columns: NAME, NETWORK\n# NAME       NETWORK\n0 zerotier1  1d71939404912b40\n"
//! );
//! let error = console.execute("/zerotier/interface/set 0 allow-global=maybe").unwrap_err();
//! assert_eq!(error.to_string(), "input does not match any value of allow-global");
//! ```
//!
//! Modules, in the order a command line meets them:
//! - [`parser`]: paths, commands, arguments, quoting, `where` expressions, completion contexts;
//! - [`schema`]: the menus, their properties (type, default, read-only), commands, columns, flags;
//! - [`values`]: checking a typed value and converting `yes`/`no` ⇄ `true`/`false`;
//! - [`session`]: [`Console`], print numbers per menu, running commands, scripts, completion;
//! - [`backend`]: the [`Backend`] trait (one call = one REST request), [`Item`], [`BackendError`];
//! - [`memory`] and [`rest`]: an in-memory model, and a REST client over any [`Transport`];
//! - [`format`](mod@format) and [`duration`]: print tables, `detail`, `terse`, `as-value`, `export`, times.
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
pub use duration::{format_duration_ms, format_duration_us, parse_duration_ms};
pub use error::ConsoleError;
pub use memory::MemoryBackend;
pub use rest::{RestBackend, RestRequest, RestResponse, Transport};
pub use session::{Console, Reply, ScriptFailure, ScriptRun, ScriptValue};
