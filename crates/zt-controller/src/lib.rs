//! zt-controller: the ZeroTier network controller's records, storage and decisions.
#![deny(unsafe_code)]

pub mod assign;
pub mod controller;
pub mod error;
pub mod issue;
pub mod json;
pub mod model;
pub mod patch;
pub mod props;
pub mod storage;

pub use controller::{Controller, Decision, NetworkConfigData, Pushes, RequestMetadata};
pub use error::{ControllerError, ModelError, StorageError};
pub use model::{Member, Network, NetworkId};
pub use patch::{MemberPatch, NetworkPatch};
pub use storage::{MemoryStorage, SqliteStorage, Storage};
