//! The operating-system edge for virtual networks: TAP devices ([`tap`]), their link,
//! address and route configuration ([`iproute`]) and the multicast groups the kernel has
//! them listen to ([`multicast`]), a network's pushed DNS on its interface ([`dns`]), and
//! ICMP echo for `/ping` ([`ping`]); and the TAP offloads' byte work ([`offload`]: cutting
//! TCP super-frames, completing checksums, coalescing received segments); and the UDP
//! socket calls the socket crates lack ([`udp`]). `tap`, `ping` and `udp` hold ztd's only
//! `unsafe` code (besides the unit tests' counting allocator, [`test_allocations`]).
pub mod dns;
pub mod iproute;
pub mod multicast;
pub mod offload;
pub mod ping;
pub mod tap;
#[cfg(test)]
pub(crate) mod test_allocations;
pub mod udp;
