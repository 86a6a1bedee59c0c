//! Checks run by the fuzz targets: each takes arbitrary bytes, must not panic, and asserts
//! the parse → emit → parse properties of its codec. The same functions replay the committed
//! corpora in the main workspace's tests.
pub mod controller;
pub mod node;
pub mod packet;
pub mod structs;
