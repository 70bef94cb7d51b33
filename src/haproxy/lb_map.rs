//! Static maps: `balance static-rr` and `balance source`.
//!
//! Reproduces `lb_map.c` (1.5-dev8). HAProxy lays servers out in a table where each appears
//! as many times as its weight; `static-rr` walks that table in turn, `source` indexes it
//! with a hash of the client address so a client keeps landing on the same server while
//! the set of servers does not change.

use std::net::IpAddr;

use crate::haproxy::proxy::Proxy;

/// lb_map.c:map_get_server_rr() in 1.5-dev8: the next slot of the weighted table, skipping
/// servers that are not candidates.
pub fn map_get_server_rr(be: &mut Proxy, candidates: &[usize]) -> Option<usize> {
    let total: usize = candidates.iter().map(|&i| be.servers[i].uweight as usize).sum();
    if total == 0 {
        return None;
    }
    let mut pos = be.lbprm.map_pos % total;
    be.lbprm.map_pos = be.lbprm.map_pos.wrapping_add(1);
    for &i in candidates {
        let w = be.servers[i].uweight as usize;
        if pos < w {
            return Some(i);
        }
        pos -= w;
    }
    None
}

/// HAProxy's `full_hash()` (a 32-bit integer mix), used to spread source addresses.
fn full_hash(mut a: u32) -> u32 {
    a = a.wrapping_add(0x7ed55d16).wrapping_add(a << 12);
    a = (a ^ 0xc761c23c) ^ (a >> 19);
    a = a.wrapping_add(0x165667b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2646c) ^ (a << 9);
    a = a.wrapping_add(0xfd7046c5).wrapping_add(a << 3);
    (a ^ 0xb55a4f09) ^ (a >> 16)
}

/// lb_map.c:map_get_server_hash() with backend.c:get_server_sh() in 1.5-dev8: hash the
/// client address into the weighted table.
pub fn map_get_server_hash(be: &mut Proxy, candidates: &[usize], src: Option<IpAddr>) -> Option<usize> {
    let total: u32 = candidates.iter().map(|&i| be.servers[i].uweight).sum();
    if total == 0 {
        return None;
    }
    let key = match src {
        Some(IpAddr::V4(a)) => u32::from(a),
        Some(IpAddr::V6(a)) => {
            a.octets().chunks(4).fold(0u32, |h, c| h ^ u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        }
        None => 0,
    };
    let mut pos = full_hash(key) % total;
    for &i in candidates {
        let w = be.servers[i].uweight;
        if pos < w {
            return Some(i);
        }
        pos -= w;
    }
    None
}
