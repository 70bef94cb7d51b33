//! Socket I/O of stream interfaces: accept, read, write and the two shutdowns.
//!
//! Reproduces `stream_sock.c` (1.5-dev8). These are the `fdtab[]` callbacks:
//! - `stream_sock_accept` (`cb[DIR_RD]` of a listening socket) accepts up to
//!   `tune.maxaccept` connections and calls the listener's `accept`, `session_accept`;
//! - `stream_sock_read` (`cb[DIR_RD]` of a connection) `recv()`s into the stream
//!   interface's input buffer `si->ib`; a 0-byte read means the peer closed
//!   (`stream_sock_shutr`);
//! - `stream_sock_write` (`cb[DIR_WR]`) `send()`s the output of `si->ob`; it also sees a
//!   pending `connect()` complete; once everything is sent and a close is due it calls
//!   `stream_sock_shutw`.
//!
//! Both only *wake* the session's task (`task_wakeup(TASK_WOKEN_IO)`) when something the
//! analysers care about happened; plain forwarding (TCP mode, message bodies) flows from
//! one socket to the other without running `process_session` at all: a read that produced
//! forwardable bytes calls the other side's `stream_sock_chk_snd`, and a write that made
//! room calls the other side's `stream_sock_chk_rcv`.

use std::io;
use std::net::Shutdown;

use crate::haproxy::buffers::{BUF_INFINITE_FORWARD, BufFlags};
use crate::haproxy::fd::{FdOwner, FdState, Sock};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::listener::{
    ListenerQueue, ListenerState, limit_listener, limit_listener_for_a_while, listener_full,
};
use crate::haproxy::raw_sock::{FromPipeEnd, ToPipeEnd, raw_sock_from_pipe, raw_sock_to_pipe};
use crate::haproxy::session::{AcceptResult, Session};
use crate::haproxy::stream_interface::{SiFlags, SiState, Side};
use crate::haproxy::task::TaskState;
use crate::haproxy::time::{TICK_ETERNITY, tick_add_ifset};
use crate::ids::{Fd, ListenerId};
use crate::trace::fields::Coded;
use crate::trace::names;

/// A client's address as the session span shows it (formatted only when recorded).
struct ClientAddr(Option<std::net::SocketAddr>);

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("unix"),
        }
    }
}

/// Reads attempted per callback before yielding to other fds (`MAX_READ_POLL_LOOPS`).
const MAX_READ_POLL_LOOPS: usize = 4;

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

/// stream_sock.c:stream_sock_accept() in 1.5-dev8: the read callback of a listening
/// socket. Accepts connections until `EAGAIN`, `tune.maxaccept` or a limit, and hands
/// each to `l->accept` (`session_accept`).
/// Divergence: a stop on the global `maxconn` schedules no 1 s retry (a session's end
/// resumes the listener); any accept() error other than `EAGAIN`, `EINTR` and
/// `ECONNABORTED` pauses the listener for 100 ms (dev8: the resource errors only) and
/// none is logged at `LOG_EMERG`; `EINTR` and `ECONNABORTED` go on with the next
/// accept, as in 1.5.0 (dev8 stops there).
pub fn stream_sock_accept(w: &mut Haproxy, fd: Fd) {
    let Some(FdOwner::Listener(lid)) = w.fdtab.get(fd).map(|e| e.owner) else { return };
    let l = &w.listeners[lid.idx()];
    let fe = l.frontend;
    if l.nbconn >= l.maxconn {
        listener_full(w, lid);
        return;
    }
    let mut max_accept = l.maxaccept.max(1);
    while max_accept > 0 {
        max_accept -= 1;
        if w.actconn >= w.global.maxconn {
            // Process-wide limit: pause until a session ends (HAProxy's global queue).
            limit_listener(w, lid, ListenerQueue::Global);
            return;
        }
        let p = &w.proxies[fe.idx()];
        if p.maxconn > 0 && p.feconn >= p.maxconn {
            limit_listener(w, lid, ListenerQueue::Frontend);
            return;
        }
        let accepted = match w.fdtab.sock(fd) {
            Some(Sock::TcpListener(l)) => l.accept().map(|(s, a)| (Sock::Tcp(s), Some(a))),
            Some(Sock::UnixListener(l)) => l.accept().map(|(s, _)| (Sock::Unix(s), None)),
            _ => return,
        };
        let (sock, addr) = match accepted {
            Ok(x) => x,
            Err(e) if would_block(&e) => {
                // Drained: with edge-triggered polling the next connection raises a new edge.
                w.fdtab.fd_cant_recv(fd);
                return;
            }
            Err(e) if interrupted(&e) || e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
            Err(e) => {
                tracing::error!("accept() on listener {} failed: {e}", lid.0);
                // ENFILE/EMFILE/ENOBUFS/ENOMEM: pause this listener rather than spin, and
                // look again in a while.
                limit_listener_for_a_while(w, lid);
                return;
            }
        };
        // ANCHOR: accept_call
        w.actconn += 1;
        w.jobs += 1;
        w.totalconn += 1;
        let l = &mut w.listeners[lid.idx()];
        l.nbconn += 1;
        l.cum_conn += 1;
        let cfd = sock.raw_fd();
        let uniq_id = w.next_uniq_id();
        let fe_name = &w.proxies[fe.idx()].name;
        // One tree per session: the root span lives until session_free. The source is
        // formatted only if someone records it.
        let src = tracing::field::display(ClientAddr(addr));
        let root = tracing::info_span!(parent: None, names::SESSION, sess = uniq_id, fe = %fe_name, src);
        let span =
            tracing::info_span!(parent: &root, names::STREAM_SOCK_ACCEPT, listener = lid.0, fd = fd.0, cfd);
        let g = span.enter();
        let accept = w.listeners[lid.idx()].accept.expect("check_config_validity sets l->accept");
        let ret = accept(w, lid, sock, addr, uniq_id, root);
        // ANCHOR_END: accept_call
        drop(g);
        if ret != AcceptResult::Accepted {
            w.actconn -= 1;
            w.jobs -= 1;
            w.listeners[lid.idx()].nbconn -= 1;
            if ret == AcceptResult::Failed {
                limit_listener_for_a_while(w, lid);
                return;
            }
            continue;
        }
        let l = &w.listeners[lid.idx()];
        if l.nbconn >= l.maxconn {
            listener_full(w, lid);
            return;
        }
    }
}

fn owner_of(w: &Haproxy, fd: Fd) -> Option<(crate::ids::SessionId, Side)> {
    match w.fdtab.get(fd)?.owner {
        FdOwner::Si(sid, side) => Some((sid, side)),
        _ => None,
    }
}

/// stream_sock.c:stream_sock_read() in 1.5-dev8: the read callback of a connection.
/// Divergence: a short read ends the loop (`fd_cant_recv`: with edge-triggered polling
/// the next edge brings more) instead of dev8's `tune.recv_enough` heuristics, and then
/// leaves `BF_READ_DONTWAIT` set, which dev8 clears after any read. The streamer flags
/// follow 1.5.0's `si_conn_recv_cb`. The wake-up test is `si_wake`.
pub fn stream_sock_read(w: &mut Haproxy, fd: Fd) {
    let Some((sid, side)) = owner_of(w, fd) else { return };
    let Some(mut s) = w.sessions.take(sid.idx()) else { return };
    stream_sock_read_si(w, &mut s, side);
    w.sessions.put_back(sid.idx(), s);
}

/// How the reading of one callback ended.
#[derive(Default)]
struct ReadOutcome {
    /// Bytes read, spliced ones included.
    total: usize,
    /// The peer closed (a read of 0).
    closed: bool,
    /// A socket error.
    error: bool,
}

/// The body of `stream_sock_read`, for one stream interface of a session at hand.
pub fn stream_sock_read_si(w: &mut Haproxy, s: &mut Session, side: Side) {
    let Some(fd) = s.si[side as usize].fd else { return };
    if s.si[side as usize].state == SiState::SI_ST_INI && s.idle_conn.is_some() {
        idle_conn_read(w, s, fd);
        return;
    }
    if s.si[side as usize].state != SiState::SI_ST_EST {
        return;
    }
    if s.ib(side).flags.contains(BufFlags::BF_SHUTR) {
        w.fdtab.fd_stop_recv(fd);
        return;
    }
    let now = w.clock.now_ms;
    let mut out = ReadOutcome::default();
    // Kernel splicing first, when wanted and the buffer holds nothing that should leave
    // before the spliced bytes (1.5.0's si_conn_recv_cb(); dev8's stream_sock_splice_in()).
    let ib = s.ib(side);
    let mut recv_too = true;
    if ib.flags.contains(BufFlags::BF_KERN_SPLICING)
        && (ib.pipe.is_some() || ib.to_forward >= MIN_SPLICE_FORWARD)
        && ib.buffer_empty()
    {
        recv_too = stream_sock_splice_in(w, s, side, fd, &mut out);
    }
    if recv_too && !out.closed && !out.error {
        let ib = s.ib_mut(side);
        if !ib.b_alloc(&mut w.pool2_buffer) {
            s.si[side as usize].flags.insert(SiFlags::SI_FL_WAIT_ROOM);
            w.fdtab.fd_stop_recv(fd);
        } else if let Some(entry) = w.fdtab.get_mut(fd) {
            let peer_closing = entry.ev.contains(crate::haproxy::fd::FdPoll::FD_POLL_HUP);
            let sock = &mut entry.sock;
            let mut cur_read = 0usize;
            let mut loops = MAX_READ_POLL_LOOPS;
            while loops > 0 {
                loops -= 1;
                let space = ib.recv_space();
                if space.is_empty() {
                    break;
                }
                let want = space.len();
                match sock.recv(space) {
                    Ok(0) => {
                        out.closed = true;
                        break;
                    }
                    Ok(n) => {
                        ib.commit_recv(n);
                        ib.flags.insert(BufFlags::BF_READ_PARTIAL);
                        cur_read += n;
                        if n < want && !peer_closing {
                            // A short read emptied the socket: wait for the next edge. (If the
                            // poller already reported the peer's FIN, no new edge will come:
                            // keep reading to see the 0.)
                            w.fdtab.fd_cant_recv(fd);
                            break;
                        }
                        if ib.flags.contains(BufFlags::BF_READ_DONTWAIT) {
                            ib.flags.remove(BufFlags::BF_READ_DONTWAIT);
                            break;
                        }
                    }
                    Err(e) if would_block(&e) => {
                        w.fdtab.fd_cant_recv(fd);
                        break;
                    }
                    Err(e) if interrupted(&e) => {}
                    Err(_) => {
                        out.error = true;
                        break;
                    }
                }
            }
            if cur_read > 0 {
                update_streamer(ib, cur_read);
            }
            out.total += cur_read;
            if ib.room() == 0 {
                s.si[side as usize].flags.insert(SiFlags::SI_FL_WAIT_ROOM);
                w.fdtab.fd_stop_recv(fd);
            }
        }
    }
    let ReadOutcome { total, closed, error } = out;
    if total == 0 && !closed && !error {
        // A speculative read that found nothing (EAGAIN): not an event worth a span.
        return;
    }
    let span = tracing::debug_span!(parent: &s.span, names::STREAM_SOCK_READ, sess = s.uniq_id, fd = fd.0, side = side.name(), bytes = total, flags = tracing::field::Empty);
    let _g = span.enter();
    crate::haproxy::step_point(names::STREAM_SOCK_READ, || crate::haproxy::View::Session(w, &*s));
    if total > 0 {
        let ib = s.ib_mut(side);
        if !ib.flags.contains(BufFlags::BF_READ_NOEXP) {
            ib.rex = tick_add_ifset(now, ib.rto);
        }
        s.count_bytes_in(side, total);
    }
    if error {
        s.si[side as usize].flags.insert(SiFlags::SI_FL_ERR);
        s.ib_mut(side).flags.insert(BufFlags::BF_READ_ERROR);
        if let Some(e) = w.fdtab.get_mut(fd) {
            e.state = FdState::FD_STERROR;
        }
        w.fdtab.fd_stop_both(fd);
    } else if closed {
        let ib = s.ib_mut(side);
        ib.flags.insert(BufFlags::BF_READ_NULL);
        if ib.flags.contains(BufFlags::BF_AUTO_CLOSE) {
            ib.buffer_shutw_now();
        }
        stream_sock_shutr(w, s, side);
    }
    span.record("flags", s.ib(side).flags.coded());
    // Fast-forward: what may leave goes to the other side right away (spliced bytes
    // always do).
    if s.ib(side).has_output() {
        stream_sock_chk_snd(w, s, side.peer());
    }
    si_wake(w, s, side);
}

/// The least `to_forward` worth a pipe: below 4 kB, copying costs less
/// (`MIN_SPLICE_FORWARD`).
const MIN_SPLICE_FORWARD: u64 = 4096;

/// stream_sock.c:stream_sock_splice_in() in 1.5-dev8 (1.5.0: the splice half of
/// si_conn_recv_cb()): splice what `to_forward` allows from the socket into the input
/// buffer's pipe, taking one from the pool if needed, and account for it as a read.
/// Returns whether a `recv()` into the buffer should follow: when splicing is not
/// possible (no pipe left, a socket `splice()` refuses: `BF_KERN_SPLICING` goes), or
/// when `to_forward` ran out and the bytes after belong to the next message.
fn stream_sock_splice_in(
    w: &mut Haproxy,
    s: &mut Session,
    side: Side,
    fd: Fd,
    out: &mut ReadOutcome,
) -> bool {
    let Some(raw) = w.fdtab.sock(fd).map(|sock| sock.raw_fd()) else { return false };
    let ib = s.ib_mut(side);
    if ib.pipe.is_none() {
        match w.pipes.get_pipe() {
            Some(p) => ib.pipe = Some(p),
            None => {
                ib.flags.remove(BufFlags::BF_KERN_SPLICING);
                return true;
            }
        }
    }
    let count = ib.to_forward;
    let Some(pipe) = ib.pipe.as_deref_mut() else { return true };
    let (n, end) = raw_sock_to_pipe(raw, pipe, count);
    if end == ToPipeEnd::Unsupported {
        ib.flags.remove(BufFlags::BF_KERN_SPLICING);
        ib.release_pipe(&mut w.pipes);
        return true;
    }
    if n > 0 {
        if ib.to_forward != BUF_INFINITE_FORWARD {
            ib.to_forward -= n as u64;
        }
        ib.total += n as u64;
        ib.flags.insert(BufFlags::BF_READ_PARTIAL);
        ib.flags.remove(BufFlags::BF_OUT_EMPTY);
    }
    if ib.pipe_data() == 0 {
        ib.release_pipe(&mut w.pipes);
    }
    if n > 0 || matches!(end, ToPipeEnd::Read0 | ToPipeEnd::Error) {
        let _sp = tracing::debug_span!(parent: &s.span, names::RAW_SOCK_TO_PIPE, sess = s.uniq_id, fd = fd.0, side = side.name(), bytes = n, end = ?end).entered();
    }
    if n > 0 {
        h1_counters(w, s, side).spliced_bytes_in += n as u64;
    }
    out.total += n;
    match end {
        ToPipeEnd::Read0 => out.closed = true,
        ToPipeEnd::Error => out.error = true,
        ToPipeEnd::WaitRoom => {
            // The pipe is (nearly) full: read again once the consumer drained it.
            s.si[side as usize].flags.insert(SiFlags::SI_FL_WAIT_ROOM);
            w.fdtab.fd_stop_recv(fd);
        }
        ToPipeEnd::Drained => w.fdtab.fd_cant_recv(fd),
        ToPipeEnd::CountDone | ToPipeEnd::Unsupported => return true,
    }
    false
}

/// The splicing counters of the connection on `side`: the frontend's for the client's,
/// the backend's for the server's (2.6's mux_h1 counters of each proxy).
fn h1_counters<'a>(w: &'a mut Haproxy, s: &Session, side: Side) -> &'a mut crate::haproxy::proxy::H1Counters {
    match side {
        Side::Cli => &mut w.proxies[s.fe.idx()].counters.h1_fe,
        Side::Srv => &mut w.proxies[s.be.idx()].counters.h1_be,
    }
}

/// The streamer detection of 1.5.0's si_conn_recv_cb(): a producer that fills the
/// buffer in one pass three times in a row streams fast (`BF_STREAMER_FAST`, what
/// `option splice-auto` waits for); one that reads less than half of it in a pass stops
/// being a fast streamer the second time, and a streamer at all the third.
fn update_streamer(ib: &mut crate::haproxy::buffers::Buffer, cur_read: usize) {
    let streamer = BufFlags::BF_STREAMER | BufFlags::BF_STREAMER_FAST;
    if ib.flags.intersects(streamer) && cur_read <= ib.size / 2 {
        ib.xfer_large = 0;
        ib.xfer_small = ib.xfer_small.saturating_add(1);
        if ib.xfer_small >= 3 {
            ib.flags.remove(streamer);
        } else if ib.xfer_small >= 2 {
            ib.flags.remove(BufFlags::BF_STREAMER_FAST);
        }
    } else if !ib.flags.contains(BufFlags::BF_STREAMER_FAST) && cur_read >= ib.size - ib.maxrewrite {
        ib.xfer_small = 0;
        ib.xfer_large = ib.xfer_large.saturating_add(1);
        if ib.xfer_large >= 3 {
            ib.flags.insert(streamer);
        }
    } else {
        ib.xfer_small = 0;
        ib.xfer_large = 0;
    }
}

/// An idle server connection is still usable when reading it would block: the server
/// neither closed it nor sent anything (what it might have sent belongs to no request).
pub fn idle_conn_alive(w: &mut Haproxy, fd: Fd) -> bool {
    let mut probe = [0u8; 1];
    matches!(w.fdtab.sock(fd).map(|sock| sock.recv(&mut probe)), Some(Err(e)) if would_block(&e))
}

/// An idle kept-alive server connection became readable: the server closed it (or sent
/// something it should not have). Either way it cannot be reused: close it.
fn idle_conn_read(w: &mut Haproxy, s: &mut Session, fd: Fd) {
    if !idle_conn_alive(w, fd) {
        w.fdtab.fd_delete(fd);
        s.si[Side::Srv as usize].fd = None;
        s.idle_conn = None;
    } else {
        w.fdtab.fd_cant_recv(fd);
    }
}

/// stream_sock.c:stream_sock_write() in 1.5-dev8: the write callback of a connection.
/// Divergence: a pending `connect()` is checked with `SO_ERROR` and `getpeername()`
/// where dev8 calls `connect()` again; the wake-up test is `si_wake`.
pub fn stream_sock_write(w: &mut Haproxy, fd: Fd) {
    let Some((sid, side)) = owner_of(w, fd) else { return };
    let Some(mut s) = w.sessions.take(sid.idx()) else { return };
    stream_sock_write_si(w, &mut s, side);
    w.sessions.put_back(sid.idx(), s);
}

/// The body of `stream_sock_write` (and of `stream_sock_chk_snd`'s direct attempt).
pub fn stream_sock_write_si(w: &mut Haproxy, s: &mut Session, side: Side) {
    let Some(fd) = s.si[side as usize].fd else { return };
    let new_span = |s: &Session, bytes: Option<usize>| tracing::debug_span!(parent: &s.span, names::STREAM_SOCK_WRITE, sess = s.uniq_id, fd = fd.0, side = side.name(), bytes, flags = tracing::field::Empty);
    let now = w.clock.now_ms;
    let connecting = match s.si[side as usize].state {
        SiState::SI_ST_CON => true,
        SiState::SI_ST_EST => false,
        _ => return,
    };
    // As 1.5-dev8 does, write first: bytes the kernel takes prove a pending connect() is
    // done (and a refused one fails the send). The connection's status is only asked
    // for when there was nothing to write, which then sets `BF_WRITE_NULL`.
    let mut total = 0usize;
    let mut error = false;
    let mut in_progress = false;
    // `send-proxy`: the PROXY header leaves before any byte of the buffer.
    let mut header_pending = false;
    if !s.si[side as usize].send_proxy.is_empty() {
        let Some(sock) = w.fdtab.sock(fd) else { return };
        let pending = &mut s.si[side as usize].send_proxy;
        match sock.send(pending) {
            Ok(n) => {
                pending.drain(..n);
                total += n;
                header_pending = !pending.is_empty();
            }
            Err(e) if would_block(&e) || (connecting && e.kind() == io::ErrorKind::NotConnected) => {
                in_progress = connecting;
                header_pending = true;
            }
            Err(e) if interrupted(&e) => header_pending = true,
            Err(_) => error = true,
        }
        if header_pending {
            w.fdtab.fd_cant_send(fd);
        } else if total > 0 {
            // The connection is proven up even if the buffer has nothing to send.
            s.ob_mut(side).flags.insert(BufFlags::BF_WRITE_NULL);
        }
    }
    // Spliced bytes came first: they leave before the buffer's output.
    let mut pipe_pending = false;
    if !header_pending && !error && s.ob(side).pipe.is_some() {
        let (n, ended) = stream_sock_splice_out(w, s, side, fd);
        total += n;
        match ended {
            FromPipeEnd::Empty => {}
            FromPipeEnd::WouldBlock => pipe_pending = true,
            FromPipeEnd::Error => error = true,
        }
    }
    if !header_pending && !error && !pipe_pending {
        let ob = s.ob_mut(side);
        let Some(sock) = w.fdtab.sock(fd) else { return };
        loop {
            let out = ob.output();
            if out.is_empty() {
                break;
            }
            let want = out.len();
            let sent = if ob.expects_more() { sock.send_more(out) } else { sock.send(out) };
            match sent {
                Ok(n) => {
                    ob.bo_skip(n);
                    ob.flags.insert(BufFlags::BF_WRITE_PARTIAL);
                    total += n;
                    if n < want {
                        w.fdtab.fd_cant_send(fd);
                        break;
                    }
                }
                Err(e) if would_block(&e) || (connecting && e.kind() == io::ErrorKind::NotConnected) => {
                    w.fdtab.fd_cant_send(fd);
                    in_progress = connecting && total == 0;
                    break;
                }
                Err(e) if interrupted(&e) => {}
                Err(_) => {
                    error = true;
                    break;
                }
            }
        }
    }
    let mut connected = connecting && total > 0;
    if connecting && total == 0 {
        if in_progress {
            return;
        }
        // Nothing written: is the connect() done? An error is pending, or the peer
        // address is known.
        let Some(sock) = w.fdtab.sock(fd) else { return };
        let done = match sock.take_error() {
            Ok(Some(_)) | Err(_) => Err(()),
            // The failed send took the socket's error.
            Ok(None) if error => Err(()),
            Ok(None) => match sock {
                Sock::Tcp(t) => match t.peer_addr() {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected || would_block(&e) => Ok(false),
                    Err(_) => Err(()),
                },
                _ => Ok(true),
            },
        };
        match done {
            Ok(false) => {
                w.fdtab.fd_cant_send(fd);
                return;
            }
            Err(()) => {
                // The connection failed: the request stays in the buffer for a retry.
                let span = new_span(s, None);
                let _g = span.enter();
                s.si[side as usize].flags.insert(SiFlags::SI_FL_ERR);
                if let Some(e) = w.fdtab.get_mut(fd) {
                    e.state = FdState::FD_STERROR;
                }
                w.fdtab.fd_stop_both(fd);
                span.record("flags", "SI_FL_ERR");
                wake_task(w, s);
                return;
            }
            Ok(true) => {
                s.ob_mut(side).flags.insert(BufFlags::BF_WRITE_NULL);
                connected = true;
            }
        }
    }
    if connected && let Some(e) = w.fdtab.get_mut(fd) {
        // The connection is up: process_session moves the SI to SI_ST_EST.
        e.state = FdState::FD_STREADY;
    }
    let ob = s.ob(side);
    let will_shutw = !ob.has_output()
        && (ob.flags & (BufFlags::BF_SHUTW | BufFlags::BF_SHUTW_NOW)) == BufFlags::BF_SHUTW_NOW
        && ob.i() == 0
        && s.si[side as usize].state == SiState::SI_ST_EST;
    // Only real events get a span: bytes sent, a connect completed, an error, a shutdown.
    let span = if total > 0 || connected || error || will_shutw {
        new_span(s, Some(total))
    } else {
        tracing::Span::none()
    };
    let _g = span.enter();
    crate::haproxy::step_point(names::STREAM_SOCK_WRITE, || crate::haproxy::View::Session(w, &*s));
    if error {
        s.si[side as usize].flags.insert(SiFlags::SI_FL_ERR);
        s.ob_mut(side).flags.insert(BufFlags::BF_WRITE_ERROR);
        if let Some(e) = w.fdtab.get_mut(fd) {
            e.state = FdState::FD_STERROR;
        }
        w.fdtab.fd_stop_both(fd);
        span.record("flags", s.ob(side).flags.coded());
        wake_task(w, s);
        return;
    }
    if total > 0 {
        s.count_bytes_out(side, total);
        let indep = s.si[side as usize].flags.contains(SiFlags::SI_FL_INDEP_STR);
        let ob = s.ob_mut(side);
        ob.wex = if ob.has_output() { tick_add_ifset(now, ob.wto) } else { TICK_ETERNITY };
        // Writing proves the peer is alive: refresh our read timeout too, unless the
        // directions are independent (a long download must not trip `timeout client`).
        if !indep {
            let ib = s.ib_mut(side);
            if ib.rex.is_some() && !ib.flags.contains(BufFlags::BF_SHUTR) {
                ib.rex = tick_add_ifset(now, ib.rto);
            }
        }
    }
    if !s.ob(side).has_output() && s.si[side as usize].send_proxy.is_empty() {
        w.fdtab.fd_stop_send(fd);
        s.si[side as usize].flags.insert(SiFlags::SI_FL_WAIT_DATA);
        // An idle connection keeps no buffer memory (HAProxy 1.6+'s dynamic buffers).
        s.ob_mut(side).b_release_if_empty(&mut w.pool2_buffer);
        let ob = s.ob(side);
        // A connection still in SI_ST_CON is promoted by process_session first.
        if (ob.flags & (BufFlags::BF_SHUTW | BufFlags::BF_SHUTW_NOW)) == BufFlags::BF_SHUTW_NOW
            && ob.i() == 0
            && s.si[side as usize].state == SiState::SI_ST_EST
        {
            stream_sock_shutw(w, s, side);
        }
    }
    span.record("flags", s.ob(side).flags.coded());
    // Room was made: the producer of this buffer may read again.
    if total > 0 && s.si[side.peer() as usize].flags.contains(SiFlags::SI_FL_WAIT_ROOM) {
        stream_sock_chk_rcv(w, s, side.peer());
    }
    si_wake(w, s, side);
}

/// The splice half of stream_sock.c:stream_sock_write_loop() in 1.5-dev8 (1.5.0's
/// si_conn_send()): splice the output buffer's pipe into the socket, account for it as
/// written bytes, and give the pipe back once empty.
fn stream_sock_splice_out(w: &mut Haproxy, s: &mut Session, side: Side, fd: Fd) -> (usize, FromPipeEnd) {
    let Some(raw) = w.fdtab.sock(fd).map(|sock| sock.raw_fd()) else { return (0, FromPipeEnd::Error) };
    let ob = s.ob_mut(side);
    let Some(pipe) = ob.pipe.as_deref_mut() else { return (0, FromPipeEnd::Empty) };
    let (n, end) = raw_sock_from_pipe(raw, pipe);
    if n > 0 {
        ob.sent += n as u64;
        ob.flags.insert(BufFlags::BF_WRITE_PARTIAL);
    }
    if ob.pipe_data() == 0 {
        ob.release_pipe(&mut w.pipes);
        if ob.o() == 0 {
            ob.flags.insert(BufFlags::BF_OUT_EMPTY);
        }
    }
    match end {
        FromPipeEnd::WouldBlock => w.fdtab.fd_cant_send(fd),
        FromPipeEnd::Error | FromPipeEnd::Empty => {}
    }
    if n > 0 || end == FromPipeEnd::Error {
        let _sp = tracing::debug_span!(parent: &s.span, names::RAW_SOCK_FROM_PIPE, sess = s.uniq_id, fd = fd.0, side = side.name(), bytes = n, end = ?end).entered();
    }
    if n > 0 {
        h1_counters(w, s, side).spliced_bytes_out += n as u64;
    }
    (n, end)
}

// ANCHOR: stream_sock_shutr
/// stream_sock.c:stream_sock_shutr() in 1.5-dev8: the input side is closed (`BF_SHUTR`).
/// If the output was already shut, the socket is closed and the SI goes `SI_ST_DIS`.
pub fn stream_sock_shutr(w: &mut Haproxy, s: &mut Session, side: Side) {
    let _sp = tracing::debug_span!(names::STREAM_SOCK_SHUTR, sess = s.uniq_id, side = side.name()).entered();
    let ib = s.ib_mut(side);
    if ib.flags.contains(BufFlags::BF_SHUTR) {
        return;
    }
    ib.flags.insert(BufFlags::BF_SHUTR);
    ib.rex = TICK_ETERNITY;
    let si = &mut s.si[side as usize];
    si.flags.remove(SiFlags::SI_FL_WAIT_ROOM);
    if !matches!(si.state, SiState::SI_ST_EST | SiState::SI_ST_CON) {
        return;
    }
    let nohalf = si.flags.contains(SiFlags::SI_FL_NOHALF);
    let fd = si.fd;
    if s.ob(side).flags.contains(BufFlags::BF_SHUTW) {
        close_si(w, s, side);
    } else if nohalf {
        // No half-close wanted: forward this close to the write side at once.
        stream_sock_shutw(w, s, side);
    } else if let Some(fd) = fd {
        w.fdtab.fd_stop_recv(fd);
    }
}
// ANCHOR_END: stream_sock_shutr

/// stream_sock.c:stream_sock_shutw() in 1.5-dev8: the output side is closed
/// (`BF_SHUTW`): `shutdown(SHUT_WR)` if we still read (half-close), otherwise the socket is
/// closed (with a RST when `SI_FL_NOLINGER`) and the SI goes `SI_ST_DIS`.
pub fn stream_sock_shutw(w: &mut Haproxy, s: &mut Session, side: Side) {
    let _sp = tracing::debug_span!(names::STREAM_SOCK_SHUTW, sess = s.uniq_id, side = side.name()).entered();
    let ob = s.ob_mut(side);
    if ob.flags.contains(BufFlags::BF_SHUTW) {
        return;
    }
    ob.flags.insert(BufFlags::BF_SHUTW);
    ob.wex = TICK_ETERNITY;
    let si = &mut s.si[side as usize];
    si.flags.remove(SiFlags::SI_FL_WAIT_DATA);
    match si.state {
        SiState::SI_ST_EST => {
            let fd = si.fd;
            let nolinger = si.flags.contains(SiFlags::SI_FL_NOLINGER);
            let nohalf = si.flags.contains(SiFlags::SI_FL_NOHALF);
            let reading = !s.ib(side).flags.contains(BufFlags::BF_SHUTR);
            if let Some(fd) = fd {
                if nolinger {
                    if let Some(sock) = w.fdtab.sock(fd) {
                        sock.set_nolinger();
                    }
                } else if reading && !nohalf {
                    // Half-close: the peer gets a FIN, we keep reading its data.
                    if let Some(sock) = w.fdtab.sock(fd) {
                        let _ = sock.shutdown(Shutdown::Write);
                    }
                    w.fdtab.fd_stop_send(fd);
                    return;
                }
            }
            close_si(w, s, side);
        }
        SiState::SI_ST_CON => close_si(w, s, side),
        _ => crate::haproxy::stream_interface::stream_int_shutw(s, side),
    }
}

/// Closes the socket of a stream interface (`fd_delete`) and moves it to `SI_ST_DIS`.
fn close_si(w: &mut Haproxy, s: &mut Session, side: Side) {
    let si = &mut s.si[side as usize];
    if let Some(fd) = si.fd.take()
        && let Some(mut sock) = w.fdtab.fd_delete(fd)
        && !si.flags.contains(SiFlags::SI_FL_NOLINGER)
    {
        // A FIN, not an RST: what the peer sent and we will never read goes first.
        sock.drain();
    }
    si.set_state(SiState::SI_ST_DIS);
    si.exp = TICK_ETERNITY;
    let ib = s.ib_mut(side);
    ib.flags.insert(BufFlags::BF_SHUTR);
    ib.rex = TICK_ETERNITY;
    let ob = s.ob_mut(side);
    ob.flags.insert(BufFlags::BF_SHUTW);
    ob.wex = TICK_ETERNITY;
}

/// stream_sock.c:stream_sock_chk_rcv() in 1.5-dev8: the input buffer has room again;
/// resume reading (the fd cache reads right away if the socket was left ready).
/// Divergence: only resumes. When the buffer is full or reading is not wanted it returns,
/// leaving the polling and `SI_FL_WAIT_ROOM` to `stream_sock_data_finish`; dev8 stops
/// reading here.
pub fn stream_sock_chk_rcv(w: &mut Haproxy, s: &mut Session, side: Side) {
    let si = &s.si[side as usize];
    let Some(fd) = si.fd else {
        // An applet waiting for room (1.5.0's stream_int_chk_rcv()): wake its session.
        if si.appctx.is_some() {
            s.si[side as usize].flags.remove(SiFlags::SI_FL_WAIT_ROOM);
            wake_task(w, s);
        }
        return;
    };
    if si.state != SiState::SI_ST_EST {
        return;
    }
    let ib = s.ib(side);
    if ib.flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_DONT_READ) || ib.room() == 0 {
        return;
    }
    s.si[side as usize].flags.remove(SiFlags::SI_FL_WAIT_ROOM);
    w.fdtab.fd_want_recv(fd);
}

/// stream_sock.c:stream_sock_chk_snd() in 1.5-dev8: the output buffer has data; try to
/// send it now if the socket is ready, else ask the poller.
/// Divergence: also when the consumer was not waiting for data (dev8 returns unless
/// `SI_FL_WAIT_DATA`); what follows the send (shutdown, timeouts, wake-up) is
/// `stream_sock_write`'s.
pub fn stream_sock_chk_snd(w: &mut Haproxy, s: &mut Session, side: Side) {
    let si = &s.si[side as usize];
    let Some(fd) = si.fd else { return };
    if si.state != SiState::SI_ST_EST || s.ob(side).flags.contains(BufFlags::BF_SHUTW) {
        return;
    }
    if !s.ob(side).has_output() && s.si[side as usize].send_proxy.is_empty() {
        return;
    }
    s.si[side as usize].flags.remove(SiFlags::SI_FL_WAIT_DATA);
    w.fdtab.fd_want_send(fd);
    if w.fdtab.send_ready(fd) {
        stream_sock_write_si(w, s, side);
    }
}

/// stream_sock.c:stream_sock_data_finish() in 1.5-dev8 (`si->update`): after
/// `process_session`, decide what to poll for on this side and arm its timeouts.
pub fn stream_sock_data_finish(w: &mut Haproxy, s: &mut Session, side: Side) {
    let now = w.clock.now_ms;
    let si = &s.si[side as usize];
    let Some(fd) = si.fd else { return };
    if si.state == SiState::SI_ST_INI && s.idle_conn.is_some() {
        // Watch the idle server connection for a close.
        w.fdtab.fd_want_recv(fd);
        w.fdtab.fd_stop_send(fd);
        return;
    }
    if si.state != SiState::SI_ST_EST {
        return;
    }
    // Read side.
    let ib = s.ib_mut(side);
    ib.b_release_if_empty(&mut w.pool2_buffer);
    if !ib.flags.contains(BufFlags::BF_SHUTR) {
        if ib.flags.contains(BufFlags::BF_DONT_READ) || ib.room() == 0 {
            ib.rex = TICK_ETERNITY;
            w.fdtab.fd_stop_recv(fd);
            s.si[side as usize].flags.insert(SiFlags::SI_FL_WAIT_ROOM);
        } else {
            if !ib.flags.contains(BufFlags::BF_READ_NOEXP) && ib.rex.is_none() {
                ib.rex = tick_add_ifset(now, ib.rto);
            }
            s.si[side as usize].flags.remove(SiFlags::SI_FL_WAIT_ROOM);
            w.fdtab.fd_want_recv(fd);
        }
    }
    // Write side (a PROXY header still to send counts as output).
    let header_pending = !s.si[side as usize].send_proxy.is_empty();
    let ob = s.ob_mut(side);
    ob.b_release_if_empty(&mut w.pool2_buffer);
    if !ob.flags.contains(BufFlags::BF_SHUTW) {
        if !ob.has_output() && !header_pending {
            ob.wex = TICK_ETERNITY;
            w.fdtab.fd_stop_send(fd);
            s.si[side as usize].flags.insert(SiFlags::SI_FL_WAIT_DATA);
        } else {
            if ob.wex.is_none() {
                ob.wex = tick_add_ifset(now, ob.wto);
            }
            s.si[side as usize].flags.remove(SiFlags::SI_FL_WAIT_DATA);
            w.fdtab.fd_want_send(fd);
        }
    }
}

/// Wakes the session's task unless it is the one running (`SI_FL_DONT_WAKE`).
fn wake_task(w: &mut Haproxy, s: &Session) {
    if !s.si[0].flags.contains(SiFlags::SI_FL_DONT_WAKE) {
        w.sched.task_wakeup(s.task, TaskState::TASK_WOKEN_IO);
    }
}

// ANCHOR: si_wake
/// The wake-up decision after I/O on `side` (the test at the end of 1.5.0's
/// `si_conn_wake_cb`, whose read half is dev8's `stream_sock_read` test; HAProxy has no
/// function of this name): wake the task only for events the analysers or the state
/// machine need to see. Bytes read while `to_forward` still covers them are already on
/// their way out, so a body of known length wakes the session once, when `to_forward`
/// reaches zero, not at every read.
/// Divergence: 1.5.0 wakes on a write only when an analyser asked for it
/// (`CF_WAKE_WRITE`); haflow wakes when the output has drained with nothing left to
/// forward, the one moment its analysers wait for (a local reply queued behind an
/// earlier pipelined response).
/// Divergence: a write never wakes the task because the other side is not established
/// (1.5.0's `prod->state != SI_ST_EST` under `CF_WAKE_WRITE`, which dev8's
/// `stream_sock_write` tests after any write).
fn si_wake(w: &mut Haproxy, s: &mut Session, side: Side) {
    let si = &s.si[side as usize];
    let ib = s.ib(side);
    let ob = s.ob(side);
    let peer_est = s.si[side.peer() as usize].state == SiState::SI_ST_EST;
    let wake = ib.flags.intersects(BufFlags::BF_READ_NULL | BufFlags::BF_READ_ERROR)
        || si.state != SiState::SI_ST_EST
        || si.flags.contains(SiFlags::SI_FL_ERR)
        || (ib.flags.contains(BufFlags::BF_READ_PARTIAL) && (ib.to_forward == 0 || !peer_est))
        || ob.flags.intersects(BufFlags::BF_WRITE_NULL | BufFlags::BF_WRITE_ERROR)
        || (ob.flags.contains(BufFlags::BF_WRITE_PARTIAL)
            && (ob.flags.contains(BufFlags::BF_SHUTW) || (!ob.has_output() && ob.to_forward == 0)));
    if wake {
        wake_task(w, s);
    }
}
// ANCHOR_END: si_wake

/// True when the listener can take connections right now.
pub fn listener_is_ready(w: &Haproxy, lid: ListenerId) -> bool {
    w.listeners[lid.idx()].state == ListenerState::LI_READY
}
