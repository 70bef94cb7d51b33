//! `balance roundrobin`: weighted round-robin whose weights may change at run time.
//!
//! Reproduces the role of `lb_fwrr.c` (1.5-dev8, "fast weighted round-robin"). HAProxy
//! spreads each server's turns evenly over a cycle of `sum(weights)` picks using two
//! trees; haflow gets the same smooth sequence (server A with weight 3 and B with weight 1
//! give A A B A, never A A A B in bursts) with the "smooth weighted round-robin" rule:
//! every candidate gains its weight, the richest is picked and pays the total. Weight
//! changes (`set weight`) take effect on the next pick, as in HAProxy.

use crate::haproxy::proxy::Proxy;

/// lb_fwrr.c:fwrr_get_next_server() in 1.5-dev8: the next server in weighted turn among
/// `candidates` (indexes of usable, non-full servers).
pub fn fwrr_get_next_server(be: &mut Proxy, candidates: &[usize]) -> Option<usize> {
    let total: i64 = candidates.iter().map(|&i| i64::from(be.servers[i].uweight)).sum();
    if total == 0 {
        return None;
    }
    for &i in candidates {
        let srv = &mut be.servers[i];
        srv.rr_current += i64::from(srv.uweight);
    }
    // The richest wins; on a tie, the first in configuration order.
    let best =
        candidates.iter().copied().max_by_key(|&i| (be.servers[i].rr_current, std::cmp::Reverse(i)))?;
    be.servers[best].rr_current -= total;
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::proxy::ProxyCap;
    use crate::haproxy::server::Server;
    use crate::ids::ProxyId;

    fn backend(weights: &[u32]) -> Proxy {
        let mut p = Proxy::new(ProxyId(0), "be", ProxyCap::PR_CAP_BE, "t", 1);
        for (i, &w) in weights.iter().enumerate() {
            let mut s = Server::new(i as u32 + 1, &format!("s{i}"), "127.0.0.1:1".parse().unwrap(), 1);
            s.uweight = w;
            p.servers.push(s);
        }
        p
    }

    #[test]
    fn equal_weights_take_turns() {
        let mut be = backend(&[1, 1, 1]);
        let picks: Vec<_> = (0..6).map(|_| fwrr_get_next_server(&mut be, &[0, 1, 2]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weights_are_spread_smoothly() {
        let mut be = backend(&[3, 1]);
        let picks: Vec<_> = (0..8).map(|_| fwrr_get_next_server(&mut be, &[0, 1]).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 6);
        assert_eq!(picks[..4], [0, 0, 1, 0], "B gets its turn inside the cycle, not at the end");
    }
}
