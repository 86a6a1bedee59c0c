//! See PROTOCOL.md.
