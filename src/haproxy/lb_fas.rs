//! `balance first`: fill the first server up to its `maxconn`, then the next one.
//!
//! Reproduces the role of `lb_fas.c` ("first available server", 1.5-dev8). Useful to
//! let extra servers sleep until they are needed.

use crate::haproxy::proxy::Proxy;

/// lb_fas.c:fas_get_next_server() in 1.5-dev8: the first candidate in configuration order
/// (candidates are already the servers below their `maxconn`).
/// Divergence: a server below its `maxconn` is a candidate even while sessions wait in
/// its queue; dev8 skips it (`!s->nbpend`).
pub fn fas_get_next_server(be: &mut Proxy, candidates: &[usize]) -> Option<usize> {
    candidates.iter().copied().min_by_key(|&i| be.servers[i].puid)
}
