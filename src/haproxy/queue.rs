//! Queues: sessions waiting for a server slot.
//!
//! Reproduces `queue.c` (1.5-dev8). A session whose server is at `maxconn` waits in that
//! server's queue; one that found every server full waits in the backend's queue. When a
//! session leaves a server (`sess_change_server`), `process_srv_queue` gives the freed
//! slot to the oldest waiting session and wakes its task with `TASK_WOKEN_RES`; its server
//! side then goes `SI_ST_QUE -> SI_ST_ASS`.

use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::session::{SessFlags, Session, sess_change_server};
use crate::haproxy::task::TaskState;
use crate::ids::ServerId;
use crate::trace::names;

/// queue.c:pendconn_add() in 1.5-dev8: queue the session on its assigned server, or on
/// its backend when no server was assigned.
pub fn pendconn_add(w: &mut Haproxy, s: &mut Session) {
    let _sp =
        tracing::debug_span!(names::PENDCONN_ADD, sess = s.uniq_id, server = %w.server_name(s.srv)).entered();
    if let (true, Some(srv)) = (s.flags.contains(SessFlags::SN_ASSIGNED), s.srv) {
        let sv = w.server_mut(srv);
        sv.pendconns.push_back(s.id);
        sv.nbpend_max = sv.nbpend_max.max(sv.pendconns.len() as u32);
        s.logs.srv_queue_size = sv.pendconns.len() as u32;
    } else {
        let be = &mut w.proxies[s.be.idx()];
        be.pendconns.push_back(s.id);
        be.nbpend_max = be.nbpend_max.max(be.pendconns.len() as u32);
        s.logs.prx_queue_size = be.pendconns.len() as u32;
    }
    s.pend_pos = true;
}

/// queue.c:pendconn_free() in 1.5-dev8: take the session out of whichever queue holds it.
pub fn pendconn_free(w: &mut Haproxy, s: &mut Session) {
    if !s.pend_pos {
        return;
    }
    let id = s.id;
    let be = &mut w.proxies[s.be.idx()];
    be.pendconns.retain(|&x| x != id);
    for srv in &mut be.servers {
        srv.pendconns.retain(|&x| x != id);
    }
    s.pend_pos = false;
}

/// queue.c:process_srv_queue() in 1.5-dev8: while the server has free slots, hand them to
/// the oldest sessions waiting on it or on its backend, and wake them. Returns how many
/// sessions were handed a slot (a server coming UP reports it as "requeued").
pub fn process_srv_queue(w: &mut Haproxy, srv_id: ServerId) -> usize {
    let mut xferred = 0;
    loop {
        let srv = w.server(srv_id);
        if !srv.is_usable() || (srv.maxconn > 0 && srv.served >= srv.maxconn) {
            return xferred;
        }
        let from_server = w.server_mut(srv_id).pendconns.pop_front();
        let next = from_server.or_else(|| w.proxies[srv_id.px.idx()].pendconns.pop_front());
        let Some(sid) = next else { return xferred };
        let Some(mut p) = w.sessions.take(sid.idx()) else {
            // That session is the one running right now: leave it at the head of its
            // queue; it will be served at the next slot.
            match from_server {
                Some(_) => w.server_mut(srv_id).pendconns.push_front(sid),
                None => w.proxies[srv_id.px.idx()].pendconns.push_front(sid),
            }
            return xferred;
        };
        let _sp = tracing::debug_span!(parent: &p.span, names::PROCESS_SRV_QUEUE, sess = p.uniq_id, server = w.server(srv_id).name.as_str()).entered();
        p.pend_pos = false;
        p.srv = Some(srv_id);
        p.flags.insert(SessFlags::SN_ASSIGNED);
        sess_change_server(w, &mut p, Some(srv_id));
        w.sched.task_wakeup(p.task, TaskState::TASK_WOKEN_RES);
        w.sessions.put_back(sid.idx(), p);
        xferred += 1;
    }
}
