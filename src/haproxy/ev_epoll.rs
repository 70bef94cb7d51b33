//! The poller: waits for readiness and hands it to `fdtab[]`.
//!
//! Reproduces the `_do_poll()` of `ev_epoll.c` in 1.5.0, whose fd cache replaced the
//! speculative list of 1.5-dev8's `ev_sepoll.c`, on top of mio (epoll on Linux).
//! Readiness reported by the kernel only sets the fd's READY bits; the callbacks
//! themselves run from the fd cache (`fd_process_cached_events`), the same place
//! speculative I/O runs from, so there is one way an fd callback gets called.
//! mio is edge-triggered, like HAProxy's later `tune.fd.edge-triggered`: every socket is
//! registered once and an event means "something changed since you last hit EAGAIN".
//! See mio's `Poll` documentation on draining readiness and spurious events.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

use crate::haproxy::fd::{FdPoll, fd_process_cached_events};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::time::{Expire, ms_until};
use crate::ids::Fd;
use crate::trace::names;

/// The token of the waker other threads use to hand commands to the proxy thread.
pub const WAKER_TOKEN: Token = Token(usize::MAX - 1);

/// Longest sleep in one poll, like HAProxy's `MAX_DELAY_MS`, so time-based work such as
/// statistics refresh never waits long even with no timer set.
const MAX_DELAY_MS: u64 = 1000;

/// `cur_poller`: the epoll instance and its event array (`maxpollevents`).
pub struct Poller {
    poll: Poll,
    events: Events,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").finish_non_exhaustive()
    }
}

impl Poller {
    /// ev_epoll.c:_do_init() in 1.5.0: create the epoll fd and the event array.
    pub fn new(maxpollevents: usize) -> io::Result<Poller> {
        Ok(Poller { poll: Poll::new()?, events: Events::with_capacity(maxpollevents) })
    }

    /// The registry to register fds with (`fd_insert`).
    pub fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// A waker other threads can use to interrupt `_do_poll`.
    pub fn waker(&self) -> io::Result<Waker> {
        Waker::new(self.poll.registry(), WAKER_TOKEN)
    }
}

/// What one call to `_do_poll` saw, for the loop's span and the activity counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct PollReport {
    /// Number of events epoll returned.
    pub events: usize,
    /// True when another thread woke the loop up (commands are waiting).
    pub woken: bool,
}

/// ev_epoll.c:_do_poll() in 1.5.0: sleep until an fd is ready or the next timer (`exp`)
/// is due, mark the ready fds, then run the callbacks of the fd cache.
/// Divergence: every fd is registered once, edge-triggered, so there is no update list
/// and no `epoll_ctl`; a reported event only marks the fd READY (a hang-up both ways) and
/// its callback runs from the cache, which this function drains itself. 1.5.0 calls the
/// callback from the poller (`fd_process_polled_events()`) and leaves the cache to
/// `run_poll_loop`.
/// Divergence: no immediate pass over the fds a callback created: dev8's `_do_poll`
/// loops once more over them (`fd_created`), 1.5.0's `fd_process_polled_events()` runs
/// them at once. A freshly accepted fd, wanted and READY, is read from the cache on the
/// next loop turn, after its session has run once with an empty buffer.
pub fn _do_poll(w: &mut Haproxy, exp: Expire) -> PollReport {
    // Never sleep while something can run right away.
    let busy = w.fdtab.cache_len() > 0 || w.sched.run_queue() > 0 || w.stopping_now();
    let wait_ms =
        if busy { 0 } else { ms_until(exp, w.clock.now_ms).unwrap_or(MAX_DELAY_MS).min(MAX_DELAY_MS) };

    let mut report = PollReport::default();
    let res = w.poller.poll.poll(&mut w.poller.events, Some(Duration::from_millis(wait_ms)));
    w.clock.tv_update_date();
    if let Err(e) = res
        && e.kind() != io::ErrorKind::Interrupted
    {
        tracing::warn!("epoll_wait failed: {e}");
    }
    let span = tracing::trace_span!(names::DO_POLL, wait_ms, events = tracing::field::Empty);
    let _g = span.enter();
    for ev in w.poller.events.iter() {
        report.events += 1;
        if ev.token() == WAKER_TOKEN {
            report.woken = true;
            continue;
        }
        let fd = Fd(ev.token().0 as i32);
        let Some(e) = w.fdtab.get_mut(fd) else { continue };
        let mut pev = FdPoll::empty();
        if ev.is_readable() {
            pev |= FdPoll::FD_POLL_IN;
        }
        if ev.is_writable() {
            pev |= FdPoll::FD_POLL_OUT;
        }
        if ev.is_error() {
            pev |= FdPoll::FD_POLL_ERR;
        }
        if ev.is_read_closed() || ev.is_write_closed() {
            pev |= FdPoll::FD_POLL_HUP;
        }
        e.ev = pev;
        // An error or hang-up makes both directions "ready": the next recv()/send() reports it.
        let err = pev.intersects(FdPoll::FD_POLL_ERR | FdPoll::FD_POLL_HUP);
        if ev.is_readable() || err {
            w.fdtab.fd_may_recv(fd);
        }
        if ev.is_writable() || err {
            w.fdtab.fd_may_send(fd);
        }
    }
    span.record("events", report.events);
    w.activity.poll_events += report.events as u64;
    fd_process_cached_events(w);
    report
}
