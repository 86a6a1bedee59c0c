//! ZeroTier 1.x wire codecs: zero-copy views and typed representations, no I/O
#![deny(unsafe_code)]
