//! The file-descriptor table: who owns each fd and which function handles its events.
//!
//! Reproduces `fd.c` and `include/types/fd.h` (1.5-dev8, with the "fd cache" of 1.5.0).
//! `fdtab[fd]` holds the fd's `owner` (a listener or a stream interface) and one callback
//! per direction, `cb[DIR_RD]` and `cb[DIR_WR]`: `stream_sock_accept` for a listening
//! socket, `stream_sock_read` / `stream_sock_write` for a connection. The poller never
//! knows what an fd is for; it only calls the callback.
//!
//! Each direction also carries two bits, as in 1.5.0: ACTIVE (someone wants to read or
//! write) and READY (the last attempt did not hit `EAGAIN`, or the poller said the fd is
//! ready since). An fd that is both ACTIVE and READY sits in the *fd cache* and its
//! callback is called without asking the poller: this is HAProxy's speculative I/O, which
//! saves a poll round trip after `accept()` and after `connect()`. haflow registers every
//! fd once, edge-triggered (mio's model), so READY is exactly "no `EAGAIN` since the last
//! edge" and no `epoll_ctl` is ever needed to change what is wanted.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::Interest;
use mio::unix::SourceFd;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};

use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::stream_interface::Side;
use crate::ids::{Fd, Index, ListenerId, SessionId};

/// Index of the read callback in `cb[]`.
pub const DIR_RD: usize = 0;
/// Index of the write callback in `cb[]`.
pub const DIR_WR: usize = 1;

/// An fd callback: `fdtab[fd].cb[dir].f(fd)`.
pub type IoCb = fn(&mut Haproxy, Fd);

/// What an fd belongs to (`fdtab[fd].owner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdOwner {
    /// A listening socket.
    Listener(ListenerId),
    /// One side of a session (`&s->si[0]` or `&s->si[1]`).
    Si(SessionId, Side),
    /// An idle connection in a server's idle lists (2.6's `http-reuse`).
    SrvIdle(crate::ids::ServerId),
    /// A health-check or agent-check connection of a server.
    Check(crate::haproxy::checks::CheckId),
    /// A stats socket client connection (index in the CLI's connection table).
    Cli(Index),
    /// A stats socket's listening socket (index in the CLI's listener list).
    CliListener(u32),
    /// The pipe the signal handlers write to.
    Signals,
}

/// `fdtab[fd].state` in 1.5-dev8.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdState {
    /// A listening socket.
    FD_STLISTEN,
    /// A connection whose `connect()` is in progress.
    FD_STCONN,
    /// A connected socket.
    FD_STREADY,
    /// A socket on which an error was seen.
    FD_STERROR,
}

bitflags::bitflags! {
    /// Per-direction polling state (1.5.0's `FD_EV_*`, one pair per direction).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct FdEv: u8 {
        /// Reading is wanted.
        const FD_EV_ACTIVE_R = 0x01;
        /// Reading may not block (no EAGAIN since the last readiness edge).
        const FD_EV_READY_R  = 0x02;
        /// Writing is wanted.
        const FD_EV_ACTIVE_W = 0x10;
        /// Writing may not block.
        const FD_EV_READY_W  = 0x20;
    }
}

bitflags::bitflags! {
    /// What the poller reported last (`fdtab[fd].ev`, `FD_POLL_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct FdPoll: u8 {
        /// Data to read.
        const FD_POLL_IN  = 0x01;
        /// Room to write.
        const FD_POLL_OUT = 0x04;
        /// An error is pending.
        const FD_POLL_ERR = 0x08;
        /// The peer hung up.
        const FD_POLL_HUP = 0x10;
    }
}

/// The socket behind an fd. Dropping it closes the fd.
#[derive(Debug)]
pub enum Sock {
    /// A listening TCP socket.
    TcpListener(mio::net::TcpListener),
    /// A listening UNIX socket.
    UnixListener(mio::net::UnixListener),
    /// A TCP connection.
    Tcp(mio::net::TcpStream),
    /// A UNIX-socket connection (stats socket clients, the signal pipe).
    Unix(mio::net::UnixStream),
}

impl Sock {
    /// The raw fd number.
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Sock::TcpListener(s) => s.as_raw_fd(),
            Sock::UnixListener(s) => s.as_raw_fd(),
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Gives the fd up without closing it (an inherited fd that is not ours to close).
    pub fn into_raw_fd(self) -> RawFd {
        match self {
            Sock::TcpListener(s) => s.into_raw_fd(),
            Sock::UnixListener(s) => s.into_raw_fd(),
            Sock::Tcp(s) => s.into_raw_fd(),
            Sock::Unix(s) => s.into_raw_fd(),
        }
    }

    /// `recv()` into `buf`.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
            _ => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }

    /// `send()` from `buf` (never raises SIGPIPE: std uses `MSG_NOSIGNAL`).
    pub fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
            _ => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }

    /// `send(MSG_MORE)` from `buf`: more bytes follow at once, so the kernel may hold a
    /// partial segment back instead of pushing it (and waking the peer) now.
    pub fn send_more(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => {
                socket2::SockRef::from(&*s).send_with_flags(buf, libc::MSG_MORE | libc::MSG_NOSIGNAL)
            }
            _ => self.send(buf),
        }
    }

    /// `shutdown(fd, how)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.shutdown(how),
            Sock::Unix(s) => s.shutdown(how),
            _ => Ok(()),
        }
    }

    /// connection.h:conn_sock_drain() in 2.6: reads and discards what the peer already sent,
    /// so that closing the socket sends a FIN, not the RST the kernel sends when unread
    /// data is left (which can destroy an error answer still on its way to the peer).
    /// Bounded: at most 64 KiB, and never waits.
    pub fn drain(&mut self) {
        let mut scratch = [0u8; 16 * 1024];
        for _ in 0..4 {
            match self.recv(&mut scratch) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    /// `SO_LINGER {1, 0}`: the next close sends a RST instead of a FIN (HAProxy's `NOLINGER`).
    pub fn set_nolinger(&self) {
        if let Sock::Tcp(s) = self {
            let _ = socket2::SockRef::from(s).set_linger(Some(std::time::Duration::ZERO));
        }
    }

    /// `getsockopt(SO_ERROR)`: the pending error of a connect in progress, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Sock::Tcp(s) => s.take_error(),
            _ => Ok(None),
        }
    }
}

/// One `fdtab[]` entry.
#[derive(Debug)]
pub struct FdEntry {
    /// Who the fd belongs to.
    pub owner: FdOwner,
    /// `cb[DIR_RD]` and `cb[DIR_WR]`: called when the fd is ready in that direction.
    pub cb: [Option<IoCb>; 2],
    /// `FD_ST*`.
    pub state: FdState,
    /// What the poller reported last.
    pub ev: FdPoll,
    /// ACTIVE/READY bits per direction.
    pub spec: FdEv,
    /// The socket itself.
    pub sock: Sock,
    in_cache: bool,
}

/// `fdtab[]` plus the fd cache (fds whose callback can run without polling).
#[derive(Debug, Default)]
pub struct FdTab {
    entries: Vec<Option<FdEntry>>,
    cache: Vec<Fd>,
    /// Number of fds in use.
    pub nbfd: usize,
}

fn wants_cb(spec: FdEv) -> bool {
    spec.contains(FdEv::FD_EV_ACTIVE_R | FdEv::FD_EV_READY_R)
        || spec.contains(FdEv::FD_EV_ACTIVE_W | FdEv::FD_EV_READY_W)
}

impl FdTab {
    /// Takes over a listening socket inherited from the parent (`fd@N`): TCP or UNIX. An
    /// fd that is not open, is already in this table, or is not a listening socket is
    /// refused and left as it was (not closed: it may not be ours to close).
    pub fn adopt_inherited(&self, fd: RawFd) -> io::Result<Sock> {
        if self.get(Fd(fd)).is_some() {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "fd already in use"));
        }
        // Refuse anything but a listening socket before taking ownership: a closed fd
        // (EBADF), a file (ENOTSOCK), a connection (SO_ACCEPTCONN is 0).
        let mut listening: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `listening`, a c_int we own.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                (&raw mut listening).cast::<libc::c_void>(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if listening == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a listening socket"));
        }
        // SAFETY: `fd@N` promises an open listening socket handed to us by the parent; from
        // here on this process owns it (and on failure gives it back with `into_raw_fd`).
        let tcp = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        if tcp.local_addr().is_ok() {
            return match tcp.set_nonblocking(true) {
                Ok(()) => Ok(Sock::TcpListener(mio::net::TcpListener::from_std(tcp))),
                Err(e) => {
                    let _ = tcp.into_raw_fd();
                    Err(e)
                }
            };
        }
        // Not an inet socket: hand the same fd to a UNIX listener (ownership moves along).
        // SAFETY: the fd was just released by `into_raw_fd`, so exactly one owner remains.
        let unix = unsafe { std::os::unix::net::UnixListener::from_raw_fd(tcp.into_raw_fd()) };
        match unix.local_addr().and_then(|_| unix.set_nonblocking(true)) {
            Ok(()) => Ok(Sock::UnixListener(mio::net::UnixListener::from_std(unix))),
            Err(e) => {
                let _ = unix.into_raw_fd();
                Err(e)
            }
        }
    }

    /// fd.h:fd_insert() in 1.5-dev8: record the fd in `fdtab[]` and register it with the
    /// poller, once, for both directions (edge-triggered). Starts with nothing wanted and,
    /// speculatively, both directions READY.
    /// Divergence: dev8 only records the fd; the registration and the READY bits are what
    /// 1.5.0's `conn_ctrl_init()` adds (`fd_may_recv`, `fd_may_send`), here done once.
    pub fn fd_insert(
        &mut self,
        registry: &mio::Registry,
        sock: Sock,
        owner: FdOwner,
        cb: [Option<IoCb>; 2],
        state: FdState,
    ) -> io::Result<Fd> {
        let raw = sock.raw_fd();
        registry.register(
            &mut SourceFd(&raw),
            mio::Token(raw as usize),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let i = raw as usize;
        if self.entries.len() <= i {
            self.entries.resize_with(i + 1, || None);
        }
        debug_assert!(self.entries[i].is_none(), "fd_insert: fd {raw} already in fdtab");
        self.entries[i] = Some(FdEntry {
            owner,
            cb,
            state,
            ev: FdPoll::empty(),
            spec: FdEv::FD_EV_READY_R | FdEv::FD_EV_READY_W,
            sock,
            in_cache: false,
        });
        self.nbfd += 1;
        Ok(Fd(raw))
    }

    /// fd.c:fd_delete() in 1.5-dev8: forget the fd and close it. The kernel drops it from
    /// the epoll set on close, so no `epoll_ctl(DEL)` is needed.
    pub fn fd_delete(&mut self, fd: Fd) -> Option<Sock> {
        let e = self.entries.get_mut(fd.0 as usize)?.take()?;
        self.nbfd -= 1;
        Some(e.sock)
    }

    /// The local address of a TCP connection's socket (`getsockname`).
    pub fn local_addr(&self, fd: Fd) -> Option<std::net::SocketAddr> {
        match &self.get(fd)?.sock {
            Sock::Tcp(t) => t.local_addr().ok(),
            _ => None,
        }
    }

    /// The entry for `fd`, if the fd is open.
    pub fn get(&self, fd: Fd) -> Option<&FdEntry> {
        self.entries.get(fd.0 as usize)?.as_ref()
    }

    /// The entry for `fd`, mutably.
    pub fn get_mut(&mut self, fd: Fd) -> Option<&mut FdEntry> {
        self.entries.get_mut(fd.0 as usize)?.as_mut()
    }

    /// The socket behind `fd`.
    pub fn sock(&mut self, fd: Fd) -> Option<&mut Sock> {
        self.get_mut(fd).map(|e| &mut e.sock)
    }

    /// Every open fd with its entry.
    pub fn iter(&self) -> impl Iterator<Item = (Fd, &FdEntry)> {
        self.iter_from(0)
    }

    /// Every open fd numbered `from` or more, with its entry (`show fd` resuming its dump).
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = (Fd, &FdEntry)> {
        let tail = self.entries.get(from..).unwrap_or_default();
        tail.iter().enumerate().filter_map(move |(i, e)| e.as_ref().map(|e| (Fd((from + i) as i32), e)))
    }

    /// What 1.5.0's `updt_fd()` and the poller's pass over the updates
    /// (`fd_alloc_or_release_cache_entry()`) do, done at once: an fd that becomes both
    /// ACTIVE and READY joins the cache now; one that stops being so stays listed until
    /// `fd_process_cached_events` drops it. No `epoll_ctl` is needed (edge-triggered).
    fn update(&mut self, fd: Fd, set: FdEv, clear: FdEv) {
        let Some(e) = self.get_mut(fd) else { return };
        e.spec.remove(clear);
        e.spec.insert(set);
        if !e.in_cache && wants_cb(e.spec) {
            e.in_cache = true;
            self.cache.push(fd);
        }
    }

    /// fd.h:fd_want_recv() in 1.5.0: we want to read from this fd.
    /// Divergence (this and the eight below): no update list; the cache changes at once,
    /// see `update`.
    pub fn fd_want_recv(&mut self, fd: Fd) {
        self.update(fd, FdEv::FD_EV_ACTIVE_R, FdEv::empty())
    }
    /// fd.h:fd_stop_recv() in 1.5.0: we no longer want to read.
    pub fn fd_stop_recv(&mut self, fd: Fd) {
        self.update(fd, FdEv::empty(), FdEv::FD_EV_ACTIVE_R)
    }
    /// fd.h:fd_cant_recv() in 1.5.0: a read hit EAGAIN; wait for the poller.
    pub fn fd_cant_recv(&mut self, fd: Fd) {
        self.update(fd, FdEv::empty(), FdEv::FD_EV_READY_R)
    }
    /// fd.h:fd_may_recv() in 1.5.0: the poller says reading will not block.
    pub fn fd_may_recv(&mut self, fd: Fd) {
        self.update(fd, FdEv::FD_EV_READY_R, FdEv::empty())
    }
    /// fd.h:fd_want_send() in 1.5.0: we want to write to this fd.
    pub fn fd_want_send(&mut self, fd: Fd) {
        self.update(fd, FdEv::FD_EV_ACTIVE_W, FdEv::empty())
    }
    /// fd.h:fd_stop_send() in 1.5.0: nothing more to write.
    pub fn fd_stop_send(&mut self, fd: Fd) {
        self.update(fd, FdEv::empty(), FdEv::FD_EV_ACTIVE_W)
    }
    /// fd.h:fd_cant_send() in 1.5.0: a write hit EAGAIN; wait for the poller.
    pub fn fd_cant_send(&mut self, fd: Fd) {
        self.update(fd, FdEv::empty(), FdEv::FD_EV_READY_W)
    }
    /// fd.h:fd_may_send() in 1.5.0: the poller says writing will not block.
    pub fn fd_may_send(&mut self, fd: Fd) {
        self.update(fd, FdEv::FD_EV_READY_W, FdEv::empty())
    }
    /// fd.h:fd_stop_both() in 1.5.0: neither read nor write is wanted.
    pub fn fd_stop_both(&mut self, fd: Fd) {
        self.update(fd, FdEv::empty(), FdEv::FD_EV_ACTIVE_R | FdEv::FD_EV_ACTIVE_W)
    }

    /// True when `fd` is open and READY for reading.
    pub fn recv_ready(&self, fd: Fd) -> bool {
        self.get(fd).is_some_and(|e| e.spec.contains(FdEv::FD_EV_READY_R))
    }

    /// True when `fd` is open and READY for writing.
    pub fn send_ready(&self, fd: Fd) -> bool {
        self.get(fd).is_some_and(|e| e.spec.contains(FdEv::FD_EV_READY_W))
    }

    /// Number of fds waiting in the cache (the poller must not sleep while it is non-empty).
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }
}

/// fd.c:fd_process_cached_events() in 1.5.0: run the callbacks of every fd that is both
/// wanted and ready, without polling. An fd leaves the cache once its callbacks have made
/// it not ready (EAGAIN) or not wanted; one pass per loop turn bounds the work.
/// Divergence: calls `cb[DIR_RD]` then `cb[DIR_WR]` (dev8's two callbacks) where 1.5.0
/// calls one `iocb`, and an fd that joins the cache during the pass waits for the next
/// loop turn (1.5.0's pass also runs the entries added behind it).
pub fn fd_process_cached_events(w: &mut Haproxy) {
    let batch = std::mem::take(&mut w.fdtab.cache);
    for &fd in &batch {
        for dir in [DIR_RD, DIR_WR] {
            let (active, ready) = if dir == DIR_RD {
                (FdEv::FD_EV_ACTIVE_R, FdEv::FD_EV_READY_R)
            } else {
                (FdEv::FD_EV_ACTIVE_W, FdEv::FD_EV_READY_W)
            };
            let cb = match w.fdtab.get(fd) {
                Some(e) if e.spec.contains(active | ready) => e.cb[dir],
                _ => None,
            };
            if let Some(f) = cb {
                f(w, fd);
            }
        }
    }
    for fd in batch {
        if let Some(e) = w.fdtab.get_mut(fd) {
            if wants_cb(e.spec) {
                // Still wanted and ready (e.g. maxaccept reached): keep it for the next turn.
                w.fdtab.cache.push(fd);
            } else {
                e.in_cache = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: fcntl(F_GETFD) only queries the descriptor table.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    #[test]
    fn an_inherited_fd_that_is_not_a_listener_is_refused_and_left_open() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = file.as_raw_fd();
        assert!(FdTab::default().adopt_inherited(fd).is_err());
        assert!(is_open(fd), "a refused fd is not closed: it may not be ours");
        let conn = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(conn.local_addr().unwrap()).unwrap();
        assert!(
            FdTab::default().adopt_inherited(client.as_raw_fd()).is_err(),
            "a connection is not a listener"
        );
        assert!(is_open(client.as_raw_fd()));
    }

    #[test]
    fn an_inherited_listener_is_adopted() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = l.into_raw_fd();
        assert!(matches!(FdTab::default().adopt_inherited(fd), Ok(Sock::TcpListener(_))));
    }
}
