//! Sans-I/O ZeroTier engine: VL1 peers, paths, roots, relay; VL2 networks and switching
#![deny(unsafe_code)]
