//! Observability of the call flow: span names and their consumers.
//!
//! - `names`: the HAProxy function names every span uses.
//! - `capture`: the capture layer, a bounded, never-blocking feed of span records.
//! - `tree`: span trees rebuilt from records, and the call-flow listing.

pub mod capture;
pub mod export;
pub mod names;
pub mod tree;
