//! `balance leastconn`: the server with the fewest connections per unit of weight.
//!
//! Reproduces the role of `lb_fwlc.c` (1.5-dev8). HAProxy keeps servers in a tree keyed by
//! `served / weight`; haflow scans the (short) candidate list for the smallest ratio,
//! breaking ties in round-robin order so equal servers share the load.

use crate::haproxy::proxy::Proxy;

/// lb_fwlc.c:fwlc_get_next_server() in 1.5-dev8: the candidate with the lowest
/// `served / weight`; among equals, the first after the last one picked.
pub fn fwlc_get_next_server(be: &mut Proxy, candidates: &[usize]) -> Option<usize> {
    let n = be.servers.slots().max(1);
    let start = be.lbprm.map_pos;
    let key = |i: usize| {
        let s = &be.servers[i];
        // Compare served/weight as fractions: scale by a common large factor.
        (u64::from(s.served) * 1_000_000) / u64::from(s.uweight.max(1))
    };
    let best = candidates.iter().copied().min_by_key(|&i| (key(i), (i + n - start % n) % n))?;
    be.lbprm.map_pos = best + 1;
    Some(best)
}
