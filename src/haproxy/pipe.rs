//! Kernel pipes for splicing, and the pool that recycles them.
//!
//! Reproduces `pipe.c` and `include/types/pipe.h` (1.5.0; the same in 1.5-dev8). Kernel
//! splicing (`option splice-*`) moves a channel's bytes from one socket to the other
//! through a pipe, without copying them to user space: `splice()` from the producer's
//! socket into the pipe (`raw_sock_to_pipe`), then from the pipe into the consumer's
//! socket (`raw_sock_from_pipe`). A channel takes a pipe only while it splices and gives
//! it back as soon as it is empty, so pipes are far fewer than sessions. An empty pipe
//! goes to the pool's live list for the next channel (`put_pipe`); one still holding
//! bytes (a session that died mid-transfer) is closed (`kill_pipe`), as its bytes belong
//! to no one. `maxpipes` caps the pipes in use: past it, a channel forwards through its
//! buffer as usual. `pipes_used` and `pipes_free` are what `show info` prints as
//! `PipesUsed` and `PipesFree`; once the traffic stops `pipes_used` is back to zero,
//! which is how the tests prove that every error path returned its pipe.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::trace::names;

/// `struct pipe`: a kernel pipe and how many bytes it holds.
#[derive(Debug)]
pub struct Pipe {
    /// Bytes spliced in and not yet spliced out (`pipe->data`).
    pub data: usize,
    /// The write end, fed from the producer's socket (`pipe->prod`).
    prod: OwnedFd,
    /// The read end, drained into the consumer's socket (`pipe->cons`).
    cons: OwnedFd,
}

impl Pipe {
    /// The write end's fd, for `splice()`.
    pub fn prod(&self) -> RawFd {
        self.prod.as_raw_fd()
    }

    /// The read end's fd, for `splice()`.
    pub fn cons(&self) -> RawFd {
        self.cons.as_raw_fd()
    }
}

/// The pipe pool: `pipes_live` and its counters (globals in `pipe.c`), with the limits
/// of `global` that bound it.
#[derive(Debug, Default)]
pub struct PipePool {
    /// Empty pipes ready for use (`pipes_live`). Boxed as `pool2_pipe` hands them out: a
    /// buffer holds a pointer, and a recycled pipe is not allocated again.
    #[allow(clippy::vec_box)]
    live: Vec<Box<Pipe>>,
    /// Pipes held by channels (`pipes_used`).
    pub pipes_used: u32,
    /// Pipes on the live list (`pipes_free`).
    pub pipes_free: u32,
    /// `maxpipes`: the most pipes in use at once.
    pub maxpipes: u32,
    /// `tune.pipesize`: the size asked of each new pipe (`F_SETPIPE_SZ`); 0 keeps the
    /// kernel's (64 kB).
    pub pipesize: usize,
}

impl PipePool {
    /// pipe.c:init_pipe() in 1.5.0: an empty pool under these limits.
    pub fn new(maxpipes: u32, pipesize: usize) -> PipePool {
        PipePool { maxpipes, pipesize, ..Default::default() }
    }

    /// pipe.c:get_pipe() in 1.5.0: an empty pipe from the live list, or a new one while
    /// fewer than `maxpipes` are in use. `None` when the limit is reached or `pipe()`
    /// fails (out of fds): the caller then forwards through its buffer.
    pub fn get_pipe(&mut self) -> Option<Box<Pipe>> {
        if let Some(p) = self.live.pop() {
            self.pipes_free -= 1;
            self.pipes_used += 1;
            return Some(p);
        }
        if self.pipes_used >= self.maxpipes {
            return None;
        }
        let _sp = tracing::trace_span!(names::GET_PIPE, used = self.pipes_used).entered();
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two fds into the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return None;
        }
        // SAFETY: pipe2 succeeded: both fds are open and ours alone.
        let (cons, prod) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        if self.pipesize > 0 {
            let size = libc::c_int::try_from(self.pipesize).unwrap_or(libc::c_int::MAX);
            // A refused size (above /proc/sys/fs/pipe-max-size) leaves the kernel's default,
            // as in HAProxy, which ignores the result too.
            // SAFETY: fcntl on an fd we own; F_SETPIPE_SZ takes an int.
            unsafe { libc::fcntl(cons.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
        }
        self.pipes_used += 1;
        Some(Box::new(Pipe { data: 0, prod, cons }))
    }

    /// pipe.c:put_pipe() in 1.5.0: an empty pipe goes back to the live list; one still
    /// holding bytes is closed (`kill_pipe`).
    pub fn put_pipe(&mut self, p: Box<Pipe>) {
        if p.data > 0 {
            self.kill_pipe(p);
            return;
        }
        self.live.push(p);
        self.pipes_free += 1;
        self.pipes_used -= 1;
    }

    /// pipe.c:kill_pipe() in 1.5.0: close both ends (the bytes in it are lost).
    pub fn kill_pipe(&mut self, p: Box<Pipe>) {
        let _sp = tracing::trace_span!(names::KILL_PIPE, data = p.data).entered();
        drop(p);
        self.pipes_used -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_pipe_is_recycled_and_a_full_one_is_closed() {
        let mut pool = PipePool::new(2, 0);
        let a = pool.get_pipe().expect("a first pipe");
        let a_fd = a.prod();
        let mut b = pool.get_pipe().expect("a second pipe");
        assert!(pool.get_pipe().is_none(), "maxpipes is reached");
        assert_eq!((pool.pipes_used, pool.pipes_free), (2, 0));
        pool.put_pipe(a);
        assert_eq!((pool.pipes_used, pool.pipes_free), (1, 1));
        let again = pool.get_pipe().expect("the recycled pipe");
        assert_eq!(again.prod(), a_fd, "the live list gives the same pipe back");
        b.data = 10;
        pool.put_pipe(b);
        assert_eq!((pool.pipes_used, pool.pipes_free), (1, 0), "a pipe with bytes is killed");
        pool.put_pipe(again);
        assert_eq!((pool.pipes_used, pool.pipes_free), (0, 1));
    }
}
