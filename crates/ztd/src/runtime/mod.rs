//! The OS edge of an instance: UDP sockets and the task that drives the protocol engine.
pub mod driver;
pub mod engine;
pub mod sockets;
