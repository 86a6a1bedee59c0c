//! ztd: the zt daemon (instances, sockets, TAP, netlink, state, HTTP APIs)
fn main() {}
