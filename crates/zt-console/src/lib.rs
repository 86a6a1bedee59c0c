//! The RouterOS command language for zt: parsing, menus, print tables
#![deny(unsafe_code)]
