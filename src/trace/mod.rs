//! Observability of the call flow: span names, the subscriber that records spans, and
//! the outputs fed from it.
//!
//! - `names`: the HAProxy function names every span uses.
//! - `subscriber`: the `tracing` subscriber: cheap records, batched per thread.
//! - `fields`: HAProxy states and flags recorded as numbers, named when read.
//! - `capture`: records and the bounded, never-blocking feed live consumers read.
//! - `chrome`: the Chrome/Perfetto trace file writer.
//! - `export`: the command-line options that choose the outputs.
//! - `tree`: span trees rebuilt from records, and the call-flow listing.
//! - `runtime`: HAProxy's runtime `trace` facility (sources, levels, lock-on, `buf0`),
//!   driven from the stats socket.

pub mod capture;
pub mod chrome;
pub mod export;
pub mod fields;
pub mod names;
pub mod runtime;
pub mod subscriber;
pub mod tree;
