//! Backends: choosing a server for a session and connecting to it.
//!
//! Reproduces `backend.c` (1.5-dev8). `sess_prepare_conn_req` calls
//! `srv_redispatch_connect`, which calls `assign_server_and_queue`, which calls
//! `assign_server`: the backend's load-balancing algorithm picks a usable server (active
//! servers first, the first usable `backup` when none is left). If the chosen server is at
//! its `maxconn`, or every server is, the session is queued instead (`pendconn_add`).
//! `connect_server` then opens the connection through the protocol (`tcp_connect_server`).

use std::net::SocketAddr;

use crate::haproxy::buffers::BufFlags;
use crate::haproxy::fd::FdOwner;
use crate::haproxy::frontend::{
    PP2_TYPE_AUTHORITY, PP2_TYPE_SSL, PP2_TYPE_UNIQUE_ID, make_proxy_line, make_proxy_line_v2,
};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::lb_fas::fas_get_next_server;
use crate::haproxy::lb_fwlc::fwlc_get_next_server;
use crate::haproxy::lb_fwrr::fwrr_get_next_server;
use crate::haproxy::lb_map::{map_get_server_hash, map_get_server_rr};
use crate::haproxy::proto_tcp::{PROTO_TCPV4, PROTO_TCPV6, tcp_connect_server};
use crate::haproxy::proxy::{BalanceAlgo, ProxyMode, ProxyOptions, ReuseMode};
use crate::haproxy::queue::pendconn_add;
use crate::haproxy::server::{SrvPpOpts, conn_backend_get};
use crate::haproxy::session::{SessFlags, Session, SnErr, sess_change_server};
use crate::haproxy::stream_interface::{SiState, Side};
use crate::haproxy::stream_sock::idle_conn_alive;
use crate::ids::ServerId;
use crate::trace::names;

/// `SRV_STATUS_*`: the outcome of choosing a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrvStatus {
    /// A server was assigned and has room.
    Ok,
    /// No usable server in the backend.
    NoSrv,
    /// The session was put in a queue.
    Queued,
    /// Every server is full and the queue cannot take it (`maxqueue`).
    Full,
    /// Something unexpected.
    Internal,
}

/// backend.c:assign_server() in 1.5-dev8: let the backend's algorithm pick a server.
/// Returns `NoSrv` when no server is usable and `Full` when all usable ones are full.
pub fn assign_server(w: &mut Haproxy, s: &mut Session) -> SrvStatus {
    let be_id = s.be;
    let span = tracing::debug_span!(names::ASSIGN_SERVER, sess = s.uniq_id, backend = w.proxies[be_id.idx()].name.as_str(), algo = %w.proxies[be_id.idx()].lbprm.algo, server = tracing::field::Empty);
    let _g = span.enter();
    if s.flags.contains(SessFlags::SN_ASSIGNED) && s.srv.is_some() {
        return SrvStatus::Ok;
    }
    let be = &mut w.proxies[be_id.idx()];
    // `option prefer-last-server`, or a server that authenticated the connection: back to
    // the server of the connection this session kept, if it may still take traffic (not
    // with a hashing algorithm, which picks the same server anyway).
    let prefer_last =
        s.flags.contains(SessFlags::SN_PREFER_LAST) || be.options.contains(ProxyOptions::PR_O_PREF_LAST);
    if prefer_last
        && !matches!(be.lbprm.algo, BalanceAlgo::Source)
        && let Some(last) = s.idle_conn.and_then(|k| k.srv).filter(|l| l.px == be_id)
        && be.servers.get(last.idx as usize).is_some_and(|sv| sv.is_usable())
    {
        span.record("server", be.servers[last.idx as usize].name.as_str());
        s.srv = Some(last);
        s.flags.insert(SessFlags::SN_ASSIGNED);
        return SrvStatus::Ok;
    }
    if !be.lbprm.kind_set && be.options.intersects(ProxyOptions::PR_O_DISPATCH | ProxyOptions::PR_O_TRANSP) {
        // No load balancing: the connection goes to the `dispatch` address, or where the
        // client was going (`assign_server_address`).
        s.srv = None;
        s.flags.insert(SessFlags::SN_ASSIGNED);
        return SrvStatus::Ok;
    }
    // Active servers first; backups only when no active one is usable.
    let active: Vec<usize> =
        be.servers.enumerate().filter(|(_, sv)| sv.is_usable() && !sv.is_backup()).map(|(i, _)| i).collect();
    let class = if active.is_empty() {
        be.servers
            .enumerate()
            .find(|(_, sv)| sv.is_usable() && sv.is_backup())
            .map(|(i, _)| i)
            .into_iter()
            .collect()
    } else {
        active
    };
    if class.is_empty() {
        return SrvStatus::NoSrv;
    }
    let hashing = matches!(be.lbprm.algo, BalanceAlgo::Source);
    let mut candidates: Vec<usize> =
        if hashing { class } else { class.into_iter().filter(|&i| !be.servers[i].is_full()).collect() };
    // A redispatched session avoids the server that just failed, when there is another.
    if let Some(prev) = s.prev_srv.filter(|p| p.px == be_id && !hashing)
        && candidates.len() > 1
    {
        candidates.retain(|&i| i != prev.idx as usize);
    }
    if candidates.is_empty() {
        return SrvStatus::Full;
    }
    let src = s.cli_addr.map(|a| a.ip());
    // ANCHOR: lb_dispatch
    let pick = match be.lbprm.algo {
        BalanceAlgo::RoundRobin => fwrr_get_next_server(be, &candidates),
        BalanceAlgo::StaticRr => map_get_server_rr(be, &candidates),
        BalanceAlgo::LeastConn => fwlc_get_next_server(be, &candidates),
        BalanceAlgo::First => fas_get_next_server(be, &candidates),
        BalanceAlgo::Source => map_get_server_hash(be, &candidates, src),
    };
    // ANCHOR_END: lb_dispatch
    let Some(idx) = pick else { return SrvStatus::Full };
    be.servers[idx].counters.lbconn += 1;
    span.record("server", be.servers[idx].name.as_str());
    s.srv = Some(ServerId { px: be_id, idx: idx as u32 });
    s.flags.insert(SessFlags::SN_ASSIGNED);
    SrvStatus::Ok
}

/// backend.c:assign_server_and_queue() in 1.5-dev8: assign a server and take a slot on it,
/// or queue the session on that server (it is full, or others already wait) or on the
/// backend (all servers are full).
pub fn assign_server_and_queue(w: &mut Haproxy, s: &mut Session) -> SrvStatus {
    match assign_server(w, s) {
        SrvStatus::Ok => {
            // No server (`dispatch`, `option transparent`): no slot to take, no queue.
            let Some(srv_id) = s.srv else { return SrvStatus::Ok };
            let srv = w.server(srv_id);
            if srv.maxconn > 0 && (!srv.pendconns.is_empty() || srv.served >= srv.maxconn) {
                if srv.maxqueue > 0 && srv.pendconns.len() as u32 >= srv.maxqueue {
                    s.flags.remove(SessFlags::SN_ASSIGNED);
                    s.srv = None;
                    return SrvStatus::Full;
                }
                pendconn_add(w, s);
                return SrvStatus::Queued;
            }
            sess_change_server(w, s, Some(srv_id));
            SrvStatus::Ok
        }
        SrvStatus::Full => {
            pendconn_add(w, s);
            SrvStatus::Queued
        }
        other => other,
    }
}

/// backend.c:srv_redispatch_connect() in 1.5-dev8: make sure the session has a server
/// to connect to, counting the failures.
pub fn srv_redispatch_connect(w: &mut Haproxy, s: &mut Session) -> SrvStatus {
    if s.flags.contains(SessFlags::SN_ASSIGNED) && s.srv.is_some() && s.srv_conn.is_some() {
        return SrvStatus::Ok;
    }
    let status = assign_server_and_queue(w, s);
    if matches!(status, SrvStatus::NoSrv | SrvStatus::Full | SrvStatus::Internal) {
        w.proxies[s.be.idx()].counters.failed_conns += 1;
    }
    status
}

/// backend.c:assign_server_address() in 1.5-dev8: where the connection goes. The
/// assigned server's address; without a server, the backend's `dispatch` address, or
/// with `option transparent` the address the client reached (`set-dst` and
/// `set-dst-port` may have changed it).
pub fn assign_server_address(w: &Haproxy, s: &Session) -> Option<SocketAddr> {
    if let Some(sid) = s.srv {
        return Some(w.server(sid).addr);
    }
    let be = &w.proxies[s.be.idx()];
    if be.options.contains(ProxyOptions::PR_O_DISPATCH) {
        be.dispatch_addr
    } else if be.options.contains(ProxyOptions::PR_O_TRANSP) {
        s.frt_addr.or_else(|| s.si[Side::Cli as usize].fd.and_then(|fd| w.fdtab.local_addr(fd)))
    } else {
        None
    }
}

/// connection.c:make_proxy_line() in 2.6: the PROXY header a new connection to server
/// `sid` opens with (`send-proxy`, `send-proxy-v2` and its `proxy-v2-options`), carrying
/// the client's address and the one it reached; empty when the server wants none.
pub fn make_srv_proxy_line(w: &Haproxy, s: &Session, sid: ServerId) -> Vec<u8> {
    let pp = w.server(sid).pp_opts;
    if !pp.intersects(SrvPpOpts::SRV_PP_V1 | SrvPpOpts::SRV_PP_V2) {
        return Vec::new();
    }
    let dst = s.frt_addr.or_else(|| s.si[Side::Cli as usize].fd.and_then(|fd| w.fdtab.local_addr(fd)));
    if pp.contains(SrvPpOpts::SRV_PP_V1) {
        return make_proxy_line(s.cli_addr, dst);
    }
    let mut tlvs: Vec<(u8, &[u8])> = Vec::new();
    if pp.contains(SrvPpOpts::SRV_PP_V2_AUTHORITY)
        && let Some(a) = s.pp_tlvs.as_ref().and_then(|t| t.authority.as_deref())
    {
        tlvs.push((PP2_TYPE_AUTHORITY, a));
    }
    if pp.contains(SrvPpOpts::SRV_PP_V2_UNIQUE_ID) {
        // Sent even when empty (no `unique-id-format`), as 2.6 does.
        tlvs.push((PP2_TYPE_UNIQUE_ID, s.unique_id.as_deref().unwrap_or_default()));
    }
    if pp.contains(SrvPpOpts::SRV_PP_V2_SSL) {
        // `struct tlv_ssl` of a client not on TLS: no `client` bit, `verify` 0.
        tlvs.push((PP2_TYPE_SSL, &[0; 5]));
    }
    make_proxy_line_v2(s.cli_addr, dst, pp.contains(SrvPpOpts::SRV_PP_V2_CRC32C), &tlvs)
}

/// connection.c:conn_calculate_hash() in 2.6, over what haflow's connections differ by:
/// the target address and the PROXY header sent first. Two requests may share a server
/// connection only when their hashes are equal.
pub fn conn_calculate_hash(target: SocketAddr, proxy_line: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    target.hash(&mut h);
    proxy_line.hash(&mut h);
    h.finish()
}

/// `MAX_SRV_LIST` (2.6's session.h): idle server connections a session keeps aside.
pub const MAX_SRV_LIST: usize = 5;

/// backend.c:connect_server() in 1.5-dev8, with the connection reuse of 2.6: connect to
/// the assigned server (or the `dispatch` or transparent address) through its protocol
/// (`tcp_connect_server`) and count the connection on the server. Before connecting, a
/// connection opened the same way (`conn_calculate_hash`) is looked for: first the one
/// this session kept from its previous request, then, per `http-reuse`, one of the
/// server's idle ones: a client's first request may only take a safe one (`aggressive`),
/// or any (`always`); its next ones any (`safe` too).
pub fn connect_server(w: &mut Haproxy, s: &mut Session) -> SnErr {
    let Some(addr) = assign_server_address(w, s) else { return SnErr::SN_ERR_INTERNAL };
    let srv_id = s.srv;
    let span = tracing::debug_span!(names::CONNECT_SERVER, sess = s.uniq_id, server = %w.server_name(srv_id), addr = %addr, reused = tracing::field::Empty);
    let _g = span.enter();
    s.flags.insert(SessFlags::SN_ADDR_SET);
    let pp = srv_id.map_or_else(Vec::new, |sid| make_srv_proxy_line(w, s, sid));
    let hash = conn_calculate_hash(addr, &pp);
    let mut kept = None;
    match (s.idle_conn.take(), s.si[1].fd.take()) {
        (Some(k), Some(fd)) if k.srv == srv_id && k.hash == hash => kept = Some(fd),
        (Some(k), Some(fd)) if s.srv_list.len() < MAX_SRV_LIST => {
            // A private connection to another target waits aside, for a later request
            // (2.6's session_add_conn()).
            w.fdtab.fd_stop_recv(fd);
            w.fdtab.fd_stop_send(fd);
            s.srv_list.push((k, fd));
        }
        (_, Some(fd)) => {
            w.fdtab.fd_delete(fd);
        }
        (_, None) => {}
    }
    if kept.is_none()
        && let Some(i) = s.srv_list.iter().position(|(k, _)| k.srv == srv_id && k.hash == hash)
    {
        // One this session left aside earlier; one the server closed meanwhile is dropped.
        let (_, fd) = s.srv_list.swap_remove(i);
        if idle_conn_alive(w, fd) {
            kept = Some(fd);
        } else {
            w.fdtab.fd_delete(fd);
        }
    }
    let be = &w.proxies[s.be.idx()];
    let (reuse, http) = (be.reuse, be.mode == ProxyMode::PR_MODE_HTTP);
    let pooled = match (kept, srv_id) {
        (None, Some(sid)) if reuse != ReuseMode::Never && http => {
            let srv = w.server(sid);
            let (idle, safe) = (!srv.idle_conns.is_empty(), !srv.safe_conns.is_empty());
            if s.txn.not_first {
                if idle || safe { conn_backend_get(w, sid, false, hash) } else { None }
            } else if reuse >= ReuseMode::Aggressive {
                let c = if safe { conn_backend_get(w, sid, true, hash) } else { None };
                if c.is_none() && reuse == ReuseMode::Always && idle {
                    conn_backend_get(w, sid, false, hash)
                } else {
                    c
                }
            } else {
                None
            }
        }
        _ => None,
    };
    if kept.is_none() {
        // A new connection, or another client's: not private (yet).
        s.flags.remove(SessFlags::SN_SRV_PRIVATE);
    }
    let err = match kept.or(pooled) {
        Some(fd) => {
            // Reuse: the connection is up already, owned by this session again.
            if let Some(e) = w.fdtab.get_mut(fd) {
                let proto = if addr.is_ipv6() { &PROTO_TCPV6 } else { &PROTO_TCPV4 };
                e.owner = FdOwner::Si(s.id, Side::Srv);
                e.cb = [Some(proto.read), Some(proto.write)];
            }
            s.si[1].fd = Some(fd);
            s.si[1].send_proxy.clear();
            s.si[1].set_state(SiState::SI_ST_CON);
            s.req.flags.insert(BufFlags::BF_WRITE_NULL);
            s.flags.insert(SessFlags::SN_SRV_REUSED);
            span.record("reused", true);
            SnErr::SN_ERR_NONE
        }
        None => {
            let err = tcp_connect_server(w, s, addr);
            // `send-proxy`: the header goes first, once the connection is up (1.5-dev8
            // sets `send_proxy_ofs` here). A retry builds it anew for its own server.
            s.si[1].send_proxy = pp;
            err
        }
    };
    s.srv_conn_hash = hash;
    if err == SnErr::SN_ERR_NONE
        && let Some(srv_id) = srv_id
    {
        s.flags.insert(SessFlags::SN_CURR_SESS);
        let reused = s.flags.contains(SessFlags::SN_SRV_REUSED);
        let srv = w.server_mut(srv_id);
        srv.cur_sess += 1;
        srv.cur_sess_max = srv.cur_sess_max.max(srv.cur_sess);
        srv.counters.cum_sess += 1;
        if reused {
            srv.counters.reuse += 1
        } else {
            srv.counters.connect += 1
        }
        // server.h:srv_inc_used_conns() in 2.6: what the idle-connection purge estimates from.
        srv.max_used_conns = srv.max_used_conns.max(srv.cur_sess);
        srv.est_need_conns = srv.est_need_conns.max(srv.cur_sess);
    }
    err
}
