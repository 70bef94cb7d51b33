//! Observability of the call flow: span names and their consumers.
//!
//! - `names`: the HAProxy function names every span uses.
//! - `capture`: the capture layer, a bounded, never-blocking feed of span records.
//! - `tree`: span trees rebuilt from records, and the call-flow listing.
//! - `runtime`: HAProxy's runtime `trace` facility (sources, levels, lock-on, `buf0`),
//!   driven from the stats socket.

pub mod capture;
pub mod names;
pub mod runtime;
pub mod tree;
