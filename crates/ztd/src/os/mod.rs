//! The operating-system edge for virtual networks: TAP devices ([`tap`], the only `unsafe`
//! in ztd), their link, address and route configuration ([`iproute`]) and the multicast
//! groups the kernel has them listen to ([`multicast`]), and a network's pushed DNS on its
//! interface ([`dns`]).
pub mod dns;
pub mod iproute;
pub mod multicast;
pub mod offload;
pub mod tap;
