//! The operating-system edge for virtual networks: TAP devices ([`tap`], the only `unsafe`
//! in ztd) and their link, address and route configuration ([`iproute`]).
pub mod iproute;
pub mod tap;
