//! Kernel splicing between a socket and a pipe.
//!
//! Reproduces the splice half of `raw_sock.c` (1.5.0; in 1.5-dev8 the same loops sat
//! inside `stream_sock_splice_in` and `stream_sock_write_loop`): `raw_sock_to_pipe`
//! moves bytes from a socket into a pipe, `raw_sock_from_pipe` from a pipe into a
//! socket, both with `splice(SPLICE_F_MOVE|SPLICE_F_NONBLOCK)`, so that the bytes never
//! reach user space. They only move bytes and say how it ended; the stream interface
//! (`stream_sock.rs`) does the accounting, the polling and the wake-ups, exactly as for
//! bytes read into and written from a buffer.

use std::io;
use std::os::fd::RawFd;

use crate::haproxy::pipe::Pipe;

/// A pipe holds 16 segments, often of 1448 bytes (timestamps on): past this the pipe is
/// nearly full, so stop rather than be told `EAGAIN` (`SPLICE_FULL_HINT`).
pub const SPLICE_FULL_HINT: usize = 16 * 1448;

/// The most bytes asked of one `splice()` when forwarding forever (`MAX_SPLICE_AT_ONCE`).
const MAX_SPLICE_AT_ONCE: usize = 1 << 30;

/// One splice large enough that the next read may wait for the next pass
/// (`global.tune.recv_enough`, 10240 by default in 2.6).
const RECV_ENOUGH: usize = 10240;

/// How `raw_sock_to_pipe` stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToPipeEnd {
    /// `splice()` refuses this socket (`ENOSYS`, `EINVAL`, `EBADF`): nothing was moved;
    /// forward through the buffer instead (1.5.0 returns -1).
    Unsupported,
    /// The peer closed: `splice()` returned 0 (`conn_sock_read0`).
    Read0,
    /// A socket error (`CO_FL_ERROR`).
    Error,
    /// The pipe is full, or nearly (`CO_FL_WAIT_ROOM`): stop reading until it drains.
    /// The socket may still hold bytes: it stays ready.
    WaitRoom,
    /// The socket is empty (`EAGAIN` on an empty pipe): wait for the next edge
    /// (`fd_cant_recv`).
    Drained,
    /// `count` bytes were moved: what follows is not for the pipe.
    CountDone,
}

/// raw_sock.c:raw_sock_to_pipe() in 1.5.0: splices up to `count` bytes from socket `fd`
/// into `pipe` (`pipe.data` grows). Returns the bytes moved and why it stopped.
/// Divergence: splice is assumed to report a close by returning 0 (Linux 2.6.27.13 and
/// later, HAProxy's `ASSUME_SPLICE_WORKS`), so an `EAGAIN` on an empty pipe is taken as
/// an empty socket without the recv() that 1.5.0 makes to check.
pub fn raw_sock_to_pipe(fd: RawFd, pipe: &mut Pipe, mut count: u64) -> (usize, ToPipeEnd) {
    let mut moved = 0usize;
    while count > 0 {
        let want = usize::try_from(count).unwrap_or(MAX_SPLICE_AT_ONCE).min(MAX_SPLICE_AT_ONCE);
        // SAFETY: splice between two fds we own, with no offsets; the kernel checks them.
        let ret = unsafe {
            libc::splice(
                fd,
                std::ptr::null_mut(),
                pipe.prod(),
                std::ptr::null_mut(),
                want,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if ret == 0 {
            return (moved, ToPipeEnd::Read0);
        }
        if ret < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                // A full pipe says EAGAIN too: with bytes in it, wait for it to drain.
                Some(libc::EAGAIN) if pipe.data > 0 => (moved, ToPipeEnd::WaitRoom),
                Some(libc::EAGAIN) => (moved, ToPipeEnd::Drained),
                Some(libc::ENOSYS | libc::EINVAL | libc::EBADF) if moved == 0 => (0, ToPipeEnd::Unsupported),
                Some(libc::EINTR) => continue,
                _ => (moved, ToPipeEnd::Error),
            };
        }
        let n = ret as usize;
        moved += n;
        pipe.data += n;
        count -= n as u64;
        if pipe.data >= SPLICE_FULL_HINT || n >= RECV_ENOUGH {
            // Read enough for this pass: stop before being told to poll.
            return (moved, ToPipeEnd::WaitRoom);
        }
    }
    (moved, ToPipeEnd::CountDone)
}

/// How `raw_sock_from_pipe` stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromPipeEnd {
    /// The pipe is empty.
    Empty,
    /// The socket takes no more for now (`EAGAIN`: `fd_cant_send`).
    WouldBlock,
    /// A socket error (`CO_FL_ERROR`).
    Error,
}

/// raw_sock.c:raw_sock_from_pipe() in 1.5.0: splices what `pipe` holds into socket `fd`
/// (`pipe.data` shrinks). Returns the bytes moved and why it stopped.
pub fn raw_sock_from_pipe(fd: RawFd, pipe: &mut Pipe) -> (usize, FromPipeEnd) {
    let mut done = 0usize;
    while pipe.data > 0 {
        // SAFETY: splice between two fds we own, with no offsets; the kernel checks them.
        let ret = unsafe {
            libc::splice(
                pipe.cons(),
                std::ptr::null_mut(),
                fd,
                std::ptr::null_mut(),
                pipe.data,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if ret <= 0 {
            let errno = if ret == 0 { Some(libc::EAGAIN) } else { io::Error::last_os_error().raw_os_error() };
            match errno {
                Some(libc::EAGAIN) => return (done, FromPipeEnd::WouldBlock),
                Some(libc::EINTR) => continue,
                _ => return (done, FromPipeEnd::Error),
            }
        }
        let n = ret as usize;
        done += n;
        pipe.data -= n;
    }
    (done, FromPipeEnd::Empty)
}
