//! Backends: choosing a server for a session and connecting to it.
//!
//! Reproduces `backend.c` (1.5-dev8). `sess_prepare_conn_req` calls
//! `srv_redispatch_connect`, which calls `assign_server_and_queue`, which calls
//! `assign_server`: the backend's load-balancing algorithm picks a usable server (active
//! servers first, the first usable `backup` when none is left). If the chosen server is at
//! its `maxconn`, or every server is, the session is queued instead (`pendconn_add`).
//! `connect_server` then opens the connection through the protocol (`tcp_connect_server`).

use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::lb_fas::fas_get_next_server;
use crate::haproxy::lb_fwlc::fwlc_get_next_server;
use crate::haproxy::lb_fwrr::fwrr_get_next_server;
use crate::haproxy::lb_map::{map_get_server_hash, map_get_server_rr};
use crate::haproxy::proto_tcp::tcp_connect_server;
use crate::haproxy::proxy::BalanceAlgo;
use crate::haproxy::queue::pendconn_add;
use crate::haproxy::session::{SessFlags, Session, SnErr, sess_change_server};
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
            let Some(srv_id) = s.srv else { return SrvStatus::Internal };
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

/// `MAX_SRV_LIST` (2.6's session.h): idle server connections a session keeps aside.
pub const MAX_SRV_LIST: usize = 5;

/// backend.c:connect_server() in 1.5-dev8: connect to the assigned server through its
/// protocol (`tcp_connect_server`) and count the connection on the server.
pub fn connect_server(w: &mut Haproxy, s: &mut Session) -> SnErr {
    let Some(srv_id) = s.srv else { return SnErr::SN_ERR_INTERNAL };
    let addr = w.server(srv_id).addr;
    let span = tracing::debug_span!(names::CONNECT_SERVER, sess = s.uniq_id, server = w.server(srv_id).name.as_str(), addr = %addr, reused = tracing::field::Empty);
    let _g = span.enter();
    s.flags.insert(SessFlags::SN_ADDR_SET);
    match (s.idle_srv.take(), s.si[1].fd.take()) {
        (Some(idle), Some(fd)) if idle == srv_id => s.si[1].fd = Some(fd),
        (Some(idle), Some(fd)) if s.srv_list.len() < MAX_SRV_LIST => {
            // An idle connection to another server waits aside, for a later request
            // (2.6's session_add_conn()).
            w.fdtab.fd_stop_recv(fd);
            w.fdtab.fd_stop_send(fd);
            s.srv_list.push((idle, fd));
        }
        (_, Some(fd)) => {
            w.fdtab.fd_delete(fd);
        }
        (_, None) => {}
    }
    if s.si[1].fd.is_none()
        && let Some(i) = s.srv_list.iter().position(|&(srv, _)| srv == srv_id)
    {
        // A connection this session left idle on this server earlier; one the server
        // closed meanwhile is dropped.
        let (_, fd) = s.srv_list.swap_remove(i);
        if idle_conn_alive(w, fd) {
            s.si[1].fd = Some(fd);
        } else {
            w.fdtab.fd_delete(fd);
        }
    }
    let err = if s.si[1].fd.is_some() {
        // Keep-alive: reuse the idle connection to this server; it is connected.
        s.si[1].set_state(crate::haproxy::stream_interface::SiState::SI_ST_CON);
        s.req.flags.insert(crate::haproxy::buffers::BufFlags::BF_WRITE_NULL);
        span.record("reused", true);
        SnErr::SN_ERR_NONE
    } else {
        tcp_connect_server(w, s, addr)
    };
    if err == SnErr::SN_ERR_NONE {
        s.flags.insert(SessFlags::SN_CURR_SESS);
        let srv = w.server_mut(srv_id);
        srv.cur_sess += 1;
        srv.cur_sess_max = srv.cur_sess_max.max(srv.cur_sess);
        srv.counters.cum_sess += 1;
    }
    err
}
