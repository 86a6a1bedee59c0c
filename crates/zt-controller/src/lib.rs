//! zt-controller: the ZeroTier network controller — networks, members, authorization, IP
//! assignment and config issuance (PROTOCOL.md §7), with no I/O of its own.
//!
//! Where it sits (see `DESIGN.md`): `zt-node` receives a NETWORK_CONFIG_REQUEST and hands the
//! requester's identity, the network ID and the metadata to [`Controller::answer`], which
//! decides ([`Controller::handle_config_request`] gives the bare [`Decision`]) and returns the
//! [`Reply`]: nothing, ERROR (not found, access denied), or the config signed by
//! [`issue::build_config`] into the zt-wire [`NetworkConfig`](zt_wire::netconf::NetworkConfig)
//! (with COM and COO). Administrative changes (console, RouterOS REST, the zerotier JSON API in
//! `ztd`) go through [`Controller::update_network`], [`Controller::delete_network`],
//! [`Controller::update_member`] and [`Controller::delete_member`], which return the [`Pushes`]
//! owed: configs for members that asked recently and COM revocations for members that lost
//! access; [`Controller::outgoing`] turns them into signed packets. The daemon only carries the
//! bytes, so every face behaves alike.
//!
//! ```text
//!   RouterOS props ──> props ──┐                        ┌──> Decision ──> issue::build_config ──> NetworkConfig
//!   zerotier JSON  ──> json  ──┴> NetworkPatch/MemberPatch ──> Controller ──┤
//!                                  (validated, all or nothing)   │          └──> Pushes ──> push_config / build_revocation
//!                                                              Storage: MemoryStorage | SqliteStorage (| PostgreSQL later)
//!   Controller::answer ──> Reply (signed)        Controller::outgoing(Pushes) ──> [Outgoing] (signed)
//! ```
//!
//! Modules: [`model`] (records and their rules), [`props`] and [`json`] (the two text forms),
//! [`patch`] (partial updates), [`assign`] (addresses), [`storage`], [`controller`] (decisions),
//! [`issue`] (wire output), [`answer`] (requests and pushes to signed packets).
//!
//! Time (`now_ms`) and randomness (network numbers, revocation IDs) are parameters; the only
//! effect is on the injected storage.
//!
//! ```
//! use zt_controller::controller::{Decision, RequestMetadata};
//! use zt_controller::props::{member_patch_from_properties, network_patch_from_properties};
//! use zt_controller::{model::network_id_for, Controller, MemoryStorage};
//! use zt_crypto::{Address, Identity};
//!
//! let mut ctl = Controller::new(Address::new(0x879c0b5265).unwrap(), MemoryStorage::new());
//! // /zerotier/controller/add name=ZT-private ip-range=172.27.27.10-172.27.27.20 routes=172.27.27.0/24
//! let nwid = network_id_for(ctl.address(), 0xa99e4b);
//! let props = [("name", "ZT-private"), ("ip-range", "172.27.27.10-172.27.27.20"), ("routes", "172.27.27.0/24")];
//! ctl.create_network(0, nwid, &network_patch_from_properties(&props)?)?;
//!
//! let laptop = Identity::from_string(&format!("deba5dc5b1:0:{}", "11".repeat(64)))?;
//! let ask = |ctl: &mut Controller<MemoryStorage>, now| {
//!     ctl.handle_config_request(now, &laptop, nwid, &RequestMetadata::default())
//! };
//! assert_eq!(ask(&mut ctl, 1_000)?, Decision::AccessDenied);
//! // /zerotier/controller/member/set [find zt-address=deba5dc5b1] authorized=yes
//! let patch = member_patch_from_properties(&[("authorized", "yes")])?;
//! let (_, pushes) = ctl.update_member(2_000, nwid, laptop.address(), &patch)?;
//! assert_eq!(pushes.config_to, [laptop.address()]);
//! let Decision::Config(config) = ask(&mut ctl, 3_000)? else { panic!() };
//! assert_eq!(config.static_ips[0].to_string(), "172.27.27.13/24");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]

pub mod answer;
pub mod assign;
pub mod controller;
pub mod error;
pub mod issue;
pub mod json;
pub mod lenient;
pub mod model;
pub mod patch;
pub mod props;
pub mod rules_json;
pub mod rules_language;
pub mod storage;

pub use answer::{AnswerError, Outgoing, Reply};
pub use controller::{
    Controller, ControllerOptions, Decision, NetworkConfigData, Pushes, RequestMetadata,
};
pub use error::{ControllerError, ModelError, StorageError};
pub use model::{Member, Network, NetworkId};
pub use patch::{MemberPatch, NetworkPatch};
pub use storage::{MemoryStorage, PostgresStorage, SqliteStorage, Storage};
