//! ZeroTier network controller: networks, members, authorization, IP assignment, config issuance
#![deny(unsafe_code)]
