//! Listeners: one listening address of a frontend, and its life-cycle states.
//!
//! Reproduces the listener part of `protocols.c` (1.5-dev8; `listener.c` from 1.5-dev13)
//! and `include/types/protocols.h`. A `bind` line creates a listener in `LI_INIT`;
//! attaching it to its protocol makes it `LI_ASSIGNED`; binding the socket makes it
//! `LI_LISTEN`; handing the fd to the poller makes it `LI_READY`. When the frontend or the
//! listener reaches its `maxconn` it goes `LI_FULL` (the fd stops being polled, the kernel
//! queues new connections in the backlog) and `resume_listener` makes it `LI_READY` again
//! when a session ends. `LI_LIMITED` is the same pause for the process-wide `maxconn`.
//! `LI_PAUSED` is the state of a process asked to let a new one take its ports (`SIGTTOU`
//! from a process started with `-sf`/`-st`): `pause_listener` stops the socket listening
//! without closing it, and `resume_listener` (`SIGTTIN`) makes it listen again.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::haproxy::buffers::Analysers;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::protocols::{ProtoList, Protocol};
use crate::haproxy::session::AcceptFn;
use crate::haproxy::task::{TaskProcess, TaskRun};
use crate::haproxy::time::TICK_ETERNITY;
use crate::ids::{Fd, ListenerId, ProxyId, TaskId};
use crate::trace::names;

/// `l->state`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ListenerState {
    /// Not initialised.
    LI_NEW = 0,
    /// Created by `str2listener`, no protocol yet.
    LI_INIT,
    /// Attached to its protocol's listener list.
    LI_ASSIGNED,
    /// Bound but not listening: `pause_listener` (on `SIGTTOU`, sent by a new process that
    /// could not bind) stopped the socket listening so that the port is free; the fd
    /// stays, and `resume_listener` (on `SIGTTIN`) listens again. A soft stop never pauses:
    /// it unbinds.
    LI_PAUSED,
    /// Bound and listening, not yet polled.
    LI_LISTEN,
    /// Polled: connections are accepted.
    LI_READY,
    /// `maxconn` reached: not polled until a session ends.
    LI_FULL,
    /// Process-wide limit reached: waiting in a listener queue.
    LI_LIMITED,
}

impl fmt::Display for ListenerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Where a listener listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A UNIX socket path (`bind /path` or `bind unix@/path`).
    Unix(PathBuf),
    /// An already-listening socket inherited from the parent (`bind fd@N`).
    InheritedFd(i32),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Inet(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix@{}", p.display()),
            ListenAddr::InheritedFd(n) => write!(f, "fd@{n}"),
        }
    }
}

bitflags::bitflags! {
    /// `l->options` (`LI_O_*`), as far as haflow implements them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct ListenerOptions: u32 {
        /// `accept-proxy`: the connection starts with a PROXY protocol header giving the
        /// real client's addresses.
        const LI_O_ACC_PROXY = 0x0040;
        /// `proto none`: the pass-through multiplexer was forced; 2.6 cannot upgrade it
        /// to HTTP (`MX_FL_NO_UPG`), so `switch-mode http` aborts the connection.
        const LI_O_NO_UPG    = 0x0080;
    }
}

/// `struct listener`.
#[derive(Debug)]
pub struct Listener {
    /// Index in `Haproxy::listeners`.
    pub id: ListenerId,
    /// `luid`: numeric id within the frontend, 1-based.
    pub luid: u32,
    /// Life-cycle state.
    pub state: ListenerState,
    /// The protocol's method table (`proto_tcpv4`...).
    pub proto: &'static Protocol,
    /// The address to listen on.
    pub addr: ListenAddr,
    /// The listening socket once bound.
    pub fd: Option<Fd>,
    /// The frontend this listener belongs to.
    pub frontend: ProxyId,
    /// `l->accept`: creates the session (`session_accept`), set by `check_config_validity`.
    pub accept: Option<AcceptFn>,
    /// `l->handler`: the new session task's `process` (`process_session`).
    pub handler: Option<TaskProcess>,
    /// Request analysers of new sessions (the frontend's `fe_req_ana`).
    pub analysers: Analysers,
    /// `LI_O_*` options of the `bind` line.
    pub options: ListenerOptions,
    /// Concurrent connections allowed on this listener.
    pub maxconn: u32,
    /// Connections open on this listener now.
    pub nbconn: u32,
    /// Connections accepted per wake-up (`tune.maxaccept`).
    pub maxaccept: u32,
    /// `listen()` backlog.
    pub backlog: u32,
    /// File and line of the `bind` keyword.
    pub conf: (String, usize),
    /// Connections accepted so far.
    pub cum_conn: u64,
    /// `name` of the `bind` line (the `so_name` fetch, `show stat` socket rows).
    pub name: Option<String>,
    /// `proto NAME`: the multiplexer forced on its connections (`bind_conf->mux_proto`,
    /// 1.9+), checked against the frontend's mode once the section is read.
    pub mux_proto: Option<String>,
}

impl Listener {
    /// Moves to `to`, recording the transition in a span field and checking it in debug builds.
    pub fn set_state(&mut self, to: ListenerState) {
        use ListenerState::*;
        debug_assert!(
            matches!(
                (self.state, to),
                (LI_NEW, LI_INIT)
                    | (LI_INIT, LI_ASSIGNED)
                    | (LI_ASSIGNED, LI_INIT)
                    | (LI_ASSIGNED, LI_LISTEN)
                    | (LI_LISTEN, LI_READY | LI_FULL | LI_PAUSED | LI_ASSIGNED)
                    | (LI_READY, LI_FULL | LI_LIMITED | LI_PAUSED | LI_LISTEN | LI_ASSIGNED)
                    | (LI_FULL | LI_LIMITED, LI_READY | LI_PAUSED | LI_FULL | LI_LIMITED | LI_ASSIGNED)
                    | (LI_PAUSED, LI_READY | LI_FULL | LI_ASSIGNED)
            ) || self.state == to,
            "illegal listener transition {} -> {}",
            self.state,
            to
        );
        self.state = to;
    }
}

// ANCHOR: enable_listener
/// protocols.c:enable_listener() in 1.5-dev8: a `LI_LISTEN` listener starts being polled
/// (`LI_READY`), or goes `LI_FULL` right away if it is already at `maxconn`.
pub fn enable_listener(w: &mut Haproxy, lid: ListenerId) {
    let l = &mut w.listeners[lid.idx()];
    let span = tracing::info_span!(names::ENABLE_LISTENER, listener = lid.0, fd = l.fd.map(|f| f.0), from = %l.state, to = tracing::field::Empty);
    let _g = span.enter();
    crate::haproxy::step_point(names::ENABLE_LISTENER, || crate::haproxy::View::Listener(&*l));
    if l.state != ListenerState::LI_LISTEN {
        return;
    }
    if l.nbconn < l.maxconn {
        if let Some(fd) = l.fd {
            w.fdtab.fd_want_recv(fd);
        }
        l.set_state(ListenerState::LI_READY);
    } else {
        l.set_state(ListenerState::LI_FULL);
    }
    span.record("to", tracing::field::display(l.state));
}
// ANCHOR_END: enable_listener

/// protocols.c:listener_full() in 1.5-dev8: stop polling the listener (`LI_FULL`).
pub fn listener_full(w: &mut Haproxy, lid: ListenerId) {
    let l = &mut w.listeners[lid.idx()];
    if l.state >= ListenerState::LI_READY {
        let _s = tracing::debug_span!(names::LISTENER_FULL, listener = lid.0, from = %l.state).entered();
        if let Some(fd) = l.fd {
            w.fdtab.fd_stop_recv(fd);
        }
        l.set_state(ListenerState::LI_FULL);
    }
}

/// The queue a limited listener waits in (1.5.0's `limit_listener(l, list)` argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerQueue {
    /// Its frontend is at `maxconn`: resumed when one of that frontend's sessions ends.
    Frontend,
    /// A process-wide resource ran out (global `maxconn`, fds, memory): resumed when any
    /// session ends, or by `manage_global_listener_queue`'s retry.
    Global,
}

/// protocols.c:limit_listener() in 1.5-dev8: stop polling the listener (`LI_LIMITED`) and
/// remember it in `queue`, whose owner resumes it.
pub fn limit_listener(w: &mut Haproxy, lid: ListenerId, queue: ListenerQueue) {
    let l = &mut w.listeners[lid.idx()];
    if l.state == ListenerState::LI_READY {
        let _s = tracing::debug_span!(names::LIMIT_LISTENER, listener = lid.0).entered();
        if let Some(fd) = l.fd {
            w.fdtab.fd_stop_recv(fd);
        }
        l.set_state(ListenerState::LI_LIMITED);
        match queue {
            ListenerQueue::Frontend => {
                let fe = l.frontend;
                w.proxies[fe.idx()].listener_queue.push_back(lid);
            }
            ListenerQueue::Global => w.global_listener_queue.push_back(lid),
        }
    }
}

/// How long a listener limited by a resource shortage waits before it tries again.
const GLOBAL_LISTENER_RETRY_MS: u64 = 100;

/// listener.c:listener_accept() in 1.5.0, on `accept()` failing for lack of a resource
/// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) or `session_accept` failing: limit the
/// listener globally and try again in 100 ms. Without the retry, a listener whose
/// frontend has no session to end would stay `LI_LIMITED` for ever.
pub fn limit_listener_for_a_while(w: &mut Haproxy, lid: ListenerId) {
    limit_listener(w, lid, ListenerQueue::Global);
    let when = crate::haproxy::time::tick_add(w.clock.now_ms, GLOBAL_LISTENER_RETRY_MS);
    if let Some(t) = w.global_listener_queue_task {
        w.sched.task_schedule(t, when);
    }
}

/// haproxy.c:manage_global_listener_queue() in 1.5.0 (`global_listener_queue_task`): once
/// the process is below its `maxconn`, resume the listeners a shortage limited; the
/// shortage itself (fds, memory) may be over by now, and nothing else would look.
pub fn manage_global_listener_queue(w: &mut Haproxy, t: TaskId) -> TaskRun {
    let _s = tracing::debug_span!(
        names::MANAGE_GLOBAL_LISTENER_QUEUE,
        queued = w.global_listener_queue.len(),
        actconn = w.actconn
    )
    .entered();
    if !w.global_listener_queue.is_empty() && w.actconn < w.global.maxconn {
        dequeue_global_listeners(w);
    }
    if let Some(task) = w.sched.get_mut(t) {
        task.expire = TICK_ETERNITY;
    }
    TaskRun::Alive
}

/// protocols.c:dequeue_all_listeners(&global_listener_queue) in 1.5-dev8: resume every
/// listener a process-wide limit paused.
pub fn dequeue_global_listeners(w: &mut Haproxy) {
    while let Some(lid) = w.global_listener_queue.pop_front() {
        resume_listener(w, lid);
    }
}

// ANCHOR: pause_listener
/// protocols.c:pause_listener() in 1.5-dev8: stop a listening TCP socket from listening
/// without closing it, so that another process may bind its port: `shutdown(SHUT_WR)`,
/// `listen()`, `shutdown(SHUT_RD)`. On Linux the last call takes the socket out of the
/// listening table (the kernel refuses new connections to it, and resets those still in
/// its accept queue); the fd keeps the address. The fd is no longer polled: `LI_PAUSED`.
/// Returns false when the system refuses (1.5's Solaris and OpenBSD case).
/// Divergence: as 1.5.0 does, a UNIX listener is only taken out of the poller (dev8
/// calls `shutdown()` on it too, which fails there).
pub fn pause_listener(w: &mut Haproxy, lid: ListenerId) -> bool {
    let l = &w.listeners[lid.idx()];
    if l.state <= ListenerState::LI_PAUSED {
        return true;
    }
    let span = tracing::debug_span!(names::PAUSE_LISTENER, listener = lid.0, fd = l.fd.map(|f| f.0), from = %l.state, to = tracing::field::Empty);
    let _g = span.enter();
    let Some(fd) = l.fd else { return false };
    if l.proto.sock_prot == libc::IPPROTO_TCP {
        let Some(raw) = w.fdtab.sock(fd).map(|s| s.raw_fd()) else { return false };
        let backlog = listen_backlog(l);
        // SAFETY: `raw` is the listener's open socket, owned by `fdtab[]`.
        let ok = unsafe {
            libc::shutdown(raw, libc::SHUT_WR) == 0
                && libc::listen(raw, backlog) == 0
                && libc::shutdown(raw, libc::SHUT_RD) == 0
        };
        if !ok {
            return false;
        }
    }
    unqueue_listener(w, lid);
    w.fdtab.fd_stop_recv(fd);
    let l = &mut w.listeners[lid.idx()];
    l.set_state(ListenerState::LI_PAUSED);
    span.record("to", tracing::field::display(l.state));
    true
}
// ANCHOR_END: pause_listener

/// The backlog `listen()` is given: the `bind` line's, else the listener's `maxconn`.
pub fn listen_backlog(l: &Listener) -> i32 {
    let b = if l.backlog > 0 { l.backlog } else { l.maxconn };
    b.clamp(1, i32::MAX as u32) as i32
}

/// Takes a `LI_LIMITED` listener out of the queue it waits in (`LIST_DEL(&l->wait_queue)`).
fn unqueue_listener(w: &mut Haproxy, lid: ListenerId) {
    if w.listeners[lid.idx()].state == ListenerState::LI_LIMITED {
        let fe = w.listeners[lid.idx()].frontend;
        w.proxies[fe.idx()].listener_queue.retain(|&q| q != lid);
        w.global_listener_queue.retain(|&q| q != lid);
    }
}

// ANCHOR: resume_listener
/// protocols.c:resume_listener() in 1.5-dev8: a `LI_PAUSED` listener listens again
/// (`listen()`), and a paused, `LI_FULL` or `LI_LIMITED` one is polled again
/// (`LI_READY`), or goes `LI_FULL` if it has no room. Returns false when the listener
/// was never bound or `listen()` fails (another process took the port meanwhile).
pub fn resume_listener(w: &mut Haproxy, lid: ListenerId) -> bool {
    let l = &w.listeners[lid.idx()];
    if l.state < ListenerState::LI_PAUSED {
        return false;
    }
    if l.state == ListenerState::LI_READY {
        return true;
    }
    let _s = tracing::debug_span!(names::RESUME_LISTENER, listener = lid.0, from = %l.state).entered();
    if l.state == ListenerState::LI_PAUSED && l.proto.sock_prot == libc::IPPROTO_TCP {
        let raw = l.fd.and_then(|fd| w.fdtab.sock(fd).map(|s| s.raw_fd()));
        let backlog = listen_backlog(l);
        // SAFETY: `raw` is the listener's open socket, owned by `fdtab[]`.
        if raw.is_none_or(|raw| unsafe { libc::listen(raw, backlog) } != 0) {
            return false;
        }
    }
    unqueue_listener(w, lid);
    let l = &mut w.listeners[lid.idx()];
    if l.nbconn >= l.maxconn {
        l.set_state(ListenerState::LI_FULL);
        return true;
    }
    if let Some(fd) = l.fd {
        w.fdtab.fd_want_recv(fd);
    }
    l.set_state(ListenerState::LI_READY);
    true
}
// ANCHOR_END: resume_listener

/// protocols.c:dequeue_all_listeners() in 1.5-dev8: resume every listener waiting in a
/// frontend's `listener_queue` (called when a session of that frontend ends).
pub fn dequeue_all_listeners(w: &mut Haproxy, fe: ProxyId) {
    while let Some(lid) = w.proxies[fe.idx()].listener_queue.pop_front() {
        resume_listener(w, lid);
    }
}

/// protocols.c:unbind_listener() in 1.5-dev8: close the listening socket; the listener
/// goes back to `LI_ASSIGNED` (soft stop, shutdown, a failed start).
/// Divergence: also removes a UNIX socket's file unless another process listens on it
/// (dev8's `uxst_unbind_listener()` does that), and a `LI_LIMITED` listener stays listed in its queue, where
/// `resume_listener` ignores it.
pub fn unbind_listener(w: &mut Haproxy, lid: ListenerId) {
    let l = &mut w.listeners[lid.idx()];
    if l.state >= ListenerState::LI_PAUSED {
        if let Some(fd) = l.fd.take() {
            w.fdtab.fd_delete(fd);
        }
        if let ListenAddr::Unix(path) = &l.addr {
            crate::haproxy::proto_uxst::destroy_uxst_socket(path);
        }
        l.set_state(ListenerState::LI_ASSIGNED);
    }
}

/// protocols.c:delete_listener() in 1.5-dev8: a listener that was never bound
/// (`LI_ASSIGNED`) leaves its protocol's list and goes back to `LI_INIT`: nothing will
/// bind it (a `disabled` proxy's listeners, by `stop_proxy`).
pub fn delete_listener(l: &mut Listener, protocols: &mut ProtoList) {
    if l.state != ListenerState::LI_ASSIGNED {
        return;
    }
    l.set_state(ListenerState::LI_INIT);
    protocols.detach(l.proto, l.id);
}
