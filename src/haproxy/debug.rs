//! Invariant checks of a running proxy: what must hold at the end of every loop turn for
//! sessions, fds and tasks, however the traffic behaved.
//!
//! HAProxy 2.x keeps such checks in `debug.c` and its `BUG_ON()`s; 1.5 had none, and the
//! faults they catch here are the ones a long-running proxy cannot afford: an fd left in
//! `fdtab[]` with no owner to close it (it spins the poller and leaks), and a session that
//! nothing will ever wake (it holds its fds, buffers and `maxconn` slot for ever). The
//! loop checks both on every turn in debug builds; the tests check them once idle.

use crate::haproxy::fd::{FdEv, FdOwner};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::session::Session;

/// An fd whose owner does not know it (nobody would ever close it).
pub fn orphan_fds(w: &Haproxy) -> Vec<String> {
    let mut out = Vec::new();
    for (fd, e) in w.fdtab.iter() {
        let owned = match e.owner {
            FdOwner::Si(sid, side) => w.sessions.get(sid.idx()).is_some_and(|s| s.holds_fd(side, fd)),
            FdOwner::Listener(lid) => w.listeners.get(lid.idx()).is_some_and(|l| l.fd == Some(fd)),
            FdOwner::Check(cid) => w
                .proxies
                .get(cid.srv.px.idx())
                .and_then(|p| p.servers.get(cid.srv.idx as usize))
                .and_then(|srv| crate::haproxy::checks::srv_check(srv, cid.kind))
                .and_then(|c| c.conn.as_ref())
                .is_some_and(|k| k.fd == Some(fd)),
            FdOwner::Cli(idx) => w.cli.conns.get(idx).is_some_and(|a| a.fd == fd),
            FdOwner::SrvIdle(sid) => w
                .proxies
                .get(sid.px.idx())
                .and_then(|p| p.servers.get(sid.idx as usize))
                .is_some_and(|srv| srv.idle_conns.iter().chain(&srv.safe_conns).any(|c| c.fd == fd)),
            FdOwner::CliListener(_) | FdOwner::Signals => true,
        };
        if !owned {
            out.push(format!("fd {fd} owned by {:?}, which does not hold it", e.owner));
        }
    }
    out
}

/// True when something will wake the session again: it is in the run queue, its task has
/// a timer, one of its fds is polled for an event, or it waits in a server queue (the
/// queue wakes it when a slot frees).
pub fn session_can_wake(w: &Haproxy, s: &Session) -> bool {
    let Some(task) = w.sched.get(s.task) else { return false };
    if task.in_run_queue() || task.expire.is_some() || s.pend_pos {
        return true;
    }
    s.si.iter().filter_map(|si| si.fd).any(|fd| {
        w.fdtab.get(fd).is_some_and(|e| e.spec.intersects(FdEv::FD_EV_ACTIVE_R | FdEv::FD_EV_ACTIVE_W))
    })
}

/// Sessions that nothing will ever wake, as `show sess` would name them.
pub fn stuck_sessions(w: &Haproxy) -> Vec<String> {
    w.sessions
        .iter()
        .filter(|(_, s)| !session_can_wake(w, s))
        .map(|(_, s)| {
            format!(
                "session {} (si[0]={} si[1]={} req={:?} rep={:?} an={:?}/{:?}) has no timer and no polled fd",
                s.uniq_id,
                s.si[0].state,
                s.si[1].state,
                s.req.flags,
                s.rep.flags,
                s.req.analysers,
                s.rep.analysers
            )
        })
        .collect()
}

/// Both checks; empty when the proxy is sound.
pub fn invariant_violations(w: &Haproxy) -> Vec<String> {
    let mut v = orphan_fds(w);
    v.extend(stuck_sessions(w));
    v
}

/// `TCP_CLOSE_WAIT` (linux/tcp_states.h): the peer closed, and we have not.
const TCP_CLOSE_WAIT: u8 = 8;

/// The kernel's TCP state of a socket (`tcpi_state`), `None` if it is not TCP.
fn tcp_state(fd: std::os::fd::RawFd) -> Option<u8> {
    // SAFETY: tcp_info is plain integers; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, a tcp_info we own.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast::<libc::c_void>(),
            &mut len,
        )
    };
    (r == 0).then_some(info.tcpi_state)
}

/// Sockets the peer closed and the proxy still holds open (what a leak looks like from
/// `ss`: CLOSE-WAIT for ever).
pub fn close_wait_fds(w: &Haproxy) -> Vec<String> {
    w.fdtab
        .iter()
        .filter(|(_, e)| tcp_state(e.sock.raw_fd()) == Some(TCP_CLOSE_WAIT))
        .map(|(fd, e)| format!("fd {fd} ({:?}) is in CLOSE-WAIT", e.owner))
        .collect()
}

/// What must hold once the traffic is over: no session, no pool object or pipe in use, no fd but
/// the process's own (listeners, checks, stats sockets and their clients), none of them in
/// CLOSE-WAIT, and the loop invariants.
pub fn idle_violations(w: &Haproxy) -> Vec<String> {
    let mut v = invariant_violations(w);
    if !w.sessions.is_empty() {
        v.push(format!("{} sessions alive", w.sessions.len()));
    }
    if w.pools_in_use() != 0 {
        v.push(format!("pool objects in use: {:?}", w.pool_stats()));
    }
    if w.pipes.pipes_used != 0 {
        v.push(format!("{} splicing pipes in use", w.pipes.pipes_used));
    }
    v.extend(
        w.fdtab
            .iter()
            .filter(|(_, e)| matches!(e.owner, FdOwner::Si(..)))
            .map(|(fd, e)| format!("fd {fd} still belongs to a session ({:?})", e.owner)),
    );
    v.extend(close_wait_fds(w));
    v
}
