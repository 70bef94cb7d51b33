//! Observability of the call flow: span names, the subscriber that records spans, and
//! the outputs fed from it.
//!
//! - `names`: the HAProxy function names every span uses.
//! - `subscriber`: the `tracing` subscriber: cheap records, batched per thread.
//! - `fields`: HAProxy states and flags recorded as numbers, named when read.
//! - `capture`: records and the bounded, never-blocking feed live consumers read.
//! - `keeper`: in the subscriber, for the live UI's feed: keeps whole sessions under load,
//!   and mutes the rest at the source.
//! - `chrome`: the Chrome/Perfetto trace file writer.
//! - `export`: the command-line options that choose the outputs.
//! - `tree`: span trees rebuilt from records, and the call-flow listing.
//! - `replay`: trace files read back into records (`haflow replay`).
//! - `runtime`: HAProxy's runtime `trace` facility (sources, levels, lock-on, `buf0`),
//!   driven from the stats socket.

pub mod capture;
pub mod chrome;
pub mod export;
pub mod fields;
pub mod keeper;
pub mod names;
pub mod replay;
pub mod runtime;
pub mod subscriber;
pub mod tree;

/// Hashes span ids: they are unique numbers, so a multiply spreads them as well as
/// SipHash does, at a fraction of the cost (SipHash was a tenth of the trace writer's time).
#[derive(Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by span id.
pub type IdMap<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;
