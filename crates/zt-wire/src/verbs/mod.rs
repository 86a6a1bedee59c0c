//! Verb payloads (PROTOCOL.md §4).
