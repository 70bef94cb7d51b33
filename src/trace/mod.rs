//! Observability of the call flow: span names and their consumers.
//!
//! `names` holds the HAProxy function names every span uses.

pub mod names;
