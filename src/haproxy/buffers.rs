//! Buffers: the two byte pipes of a session (`s->req` and `s->rep`) and their flags.
//!
//! Reproduces `buffers.c` and `include/types/buffers.h` (1.5-dev8). In dev8 one
//! `struct buffer` holds both the bytes and the state of one direction of a session:
//! `BF_*` flags (what happened: `BF_READ_NULL`, `BF_SHUTR`...; what is wanted:
//! `BF_SHUTW_NOW`, `BF_AUTO_CONNECT`...), the analysers still to run (`AN_REQ_*` /
//! `AN_RES_*` bits), the read/write timeouts and `to_forward`, the number of bytes that
//! may pass without being looked at. The producer stream interface fills it, the
//! consumer empties it.
//!
//! The bytes live in a `Chunk` taken from `pool2_buffer` (`tune.bufsize` bytes), split as
//! in 1.5.0 into *output* (`o`: already analysed, may be sent) followed by *input* (`i`:
//! received, not yet analysed or forwarded). Forwarding means moving bytes from input to
//! output (`b_adv`). haflow releases the chunk of an idle keep-alive session back to the
//! pool and takes one again on the next read, as HAProxy does since 1.6, so an idle
//! connection costs no buffer memory.

use std::fmt;

use crate::haproxy::memory::Pool;
use crate::haproxy::pipe::{Pipe, PipePool};
use crate::haproxy::time::Expire;

bitflags::bitflags! {
    /// `buffer->flags` (`BF_*`, 1.5-dev8 values).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct BufFlags: u32 {
        /// A read returned 0: the producer closed (end of stream).
        const BF_READ_NULL      = 0x000001;
        /// Some bytes were read.
        const BF_READ_PARTIAL   = 0x000002;
        /// The read timeout expired.
        const BF_READ_TIMEOUT   = 0x000004;
        /// A read error happened.
        const BF_READ_ERROR     = 0x000008;
        /// The buffer is full (no room to read more).
        const BF_FULL           = 0x000010;
        /// Reading was shut: no more data will enter.
        const BF_SHUTR          = 0x000020;
        /// A read shutdown is requested (done at the next opportunity).
        const BF_SHUTR_NOW      = 0x000040;
        /// Do not arm the read timeout.
        const BF_READ_NOEXP     = 0x000080;
        /// A write made the connect complete (nothing was written yet).
        const BF_WRITE_NULL     = 0x000100;
        /// Some bytes were written.
        const BF_WRITE_PARTIAL  = 0x000200;
        /// The write timeout expired.
        const BF_WRITE_TIMEOUT  = 0x000400;
        /// A write error happened.
        const BF_WRITE_ERROR    = 0x000800;
        /// Nothing is left to send.
        const BF_OUT_EMPTY      = 0x001000;
        /// Writing was shut: the consumer got a FIN.
        const BF_SHUTW          = 0x002000;
        /// A write shutdown is requested once the buffer is empty.
        const BF_SHUTW_NOW      = 0x004000;
        /// A read shutdown automatically requests a write shutdown on the other side.
        const BF_AUTO_CLOSE     = 0x008000;
        /// The producer sends large amounts of data.
        const BF_STREAMER       = 0x010000;
        /// The producer sends large amounts of data quickly.
        const BF_STREAMER_FAST  = 0x020000;
        /// An analyser's own timeout expired.
        const BF_ANA_TIMEOUT    = 0x080000;
        /// Kernel splicing is wanted for this buffer: bytes covered by `to_forward` go
        /// through `pipe` instead of the buffer (`option splice-*`, set by `process_session`).
        const BF_KERN_SPLICING  = 0x200000;
        /// The producer was just attached (first run of the analysers).
        const BF_READ_ATTACHED  = 0x100000;
        /// Return after one read instead of trying to fill the buffer.
        const BF_READ_DONTWAIT  = 0x400000;
        /// Pending data may trigger the connection to the server.
        const BF_AUTO_CONNECT   = 0x800000;
        /// Do not read for now.
        const BF_DONT_READ      = 0x1000000;
        /// More data will follow (send with MSG_MORE).
        const BF_EXPECT_MORE    = 0x2000000;
        /// Never wait to send (`option http-no-delay`): no `MSG_MORE`, whatever follows.
        const BF_NEVER_WAIT     = 0x8000000;
        /// Wake the analysers once more even if nothing changed.
        const BF_WAKE_ONCE      = 0x10000000;
    }
}

impl BufFlags {
    /// `BF_READ_ACTIVITY`: something happened on the read side.
    pub const BF_READ_ACTIVITY: BufFlags =
        BufFlags::BF_READ_NULL.union(BufFlags::BF_READ_PARTIAL).union(BufFlags::BF_READ_ERROR);
    /// `BF_WRITE_ACTIVITY`: something happened on the write side.
    pub const BF_WRITE_ACTIVITY: BufFlags =
        BufFlags::BF_WRITE_NULL.union(BufFlags::BF_WRITE_PARTIAL).union(BufFlags::BF_WRITE_ERROR);
    /// `BF_MASK_ANALYSER`: flags whose change must wake the analysers.
    pub const BF_MASK_ANALYSER: BufFlags = BufFlags::BF_READ_ATTACHED
        .union(BufFlags::BF_READ_ACTIVITY)
        .union(BufFlags::BF_READ_TIMEOUT)
        .union(BufFlags::BF_ANA_TIMEOUT)
        .union(BufFlags::BF_WRITE_ACTIVITY)
        .union(BufFlags::BF_WAKE_ONCE);
    /// `BF_MASK_STATIC`: flags describing the buffer's lasting state.
    pub const BF_MASK_STATIC: BufFlags = BufFlags::BF_OUT_EMPTY
        .union(BufFlags::BF_FULL)
        .union(BufFlags::BF_SHUTR)
        .union(BufFlags::BF_SHUTW)
        .union(BufFlags::BF_SHUTR_NOW)
        .union(BufFlags::BF_SHUTW_NOW);
    /// Flags cleared at the end of each `process_session` run (one-shot events).
    pub const BF_ONE_SHOT: BufFlags = BufFlags::BF_READ_NULL
        .union(BufFlags::BF_READ_PARTIAL)
        .union(BufFlags::BF_WRITE_NULL)
        .union(BufFlags::BF_WRITE_PARTIAL)
        .union(BufFlags::BF_READ_ATTACHED)
        .union(BufFlags::BF_WAKE_ONCE);
}

bitflags::bitflags! {
    /// `buffer->analysers`: the analysers still to run on this buffer (1.5-dev8 bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct Analysers: u32 {
        /// Decode a PROXY protocol line (`accept-proxy`).
        const AN_REQ_DECODE_PROXY     = 0x00000001;
        /// `tcp-request content` rules of the frontend.
        const AN_REQ_INSPECT_FE       = 0x00000002;
        /// `http_wait_for_request`: wait for and parse a complete request head.
        const AN_REQ_WAIT_HTTP        = 0x00000004;
        /// `http_process_req_common` with the frontend's rules.
        const AN_REQ_HTTP_PROCESS_FE  = 0x00000008;
        /// `process_switching_rules`: pick the backend.
        const AN_REQ_SWITCHING_RULES  = 0x00000010;
        /// `tcp-request content` rules of the backend.
        const AN_REQ_INSPECT_BE       = 0x00000020;
        /// `http_process_req_common` with the backend's rules.
        const AN_REQ_HTTP_PROCESS_BE  = 0x00000040;
        /// `http_process_request`: last changes before the request leaves.
        const AN_REQ_HTTP_INNER       = 0x00000080;
        /// `http_process_tarpit`.
        const AN_REQ_HTTP_TARPIT      = 0x00000100;
        /// `http_process_request_body`: wait for the body.
        const AN_REQ_HTTP_BODY        = 0x00000200;
        /// `process_sticking_rules`.
        const AN_REQ_STICKING_RULES   = 0x00000400;
        /// `tcp_persist_rdp_cookie`.
        const AN_REQ_PRST_RDP_COOKIE  = 0x00000800;
        /// `http_request_forward_body`: forward the request body.
        const AN_REQ_HTTP_XFER_BODY   = 0x00001000;
        /// `process_server_rules`: the `use-server` rules (1.5.0, where it is 0x00000080 and
        /// the later bits moved up; haflow keeps 1.5-dev8's values and takes a free bit).
        const AN_REQ_SRV_RULES        = 0x00002000;
        /// `tcp-response content` rules.
        const AN_RES_INSPECT          = 0x00010000;
        /// `http_wait_for_response`: wait for and parse the response head.
        const AN_RES_WAIT_HTTP        = 0x00020000;
        /// `http_process_res_common`: `http-response` rules.
        const AN_RES_HTTP_PROCESS_BE  = 0x00040000;
        /// `process_store_rules`.
        const AN_RES_STORE_RULES      = 0x00080000;
        /// `http_response_forward_body`: forward the response body.
        const AN_RES_HTTP_XFER_BODY   = 0x00100000;
    }
}

macro_rules! display_flags {
    ($t:ty, $empty:expr) => {
        impl fmt::Display for $t {
            /// HAProxy's names joined by `|`, or the hex value when empty.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut first = true;
                for (name, _) in self.iter_names() {
                    if !first {
                        f.write_str("|")?;
                    }
                    f.write_str(name)?;
                    first = false;
                }
                if first {
                    f.write_str($empty)?;
                }
                Ok(())
            }
        }
    };
}
display_flags!(BufFlags, "0");
display_flags!(Analysers, "0");

/// `to_forward` value meaning "forward everything, forever" (`BUF_INFINITE_FORWARD`).
pub const BUF_INFINITE_FORWARD: u64 = u64::MAX;

/// The storage of a buffer: `tune.bufsize` bytes holding output then input.
#[derive(Debug)]
pub struct Chunk {
    area: Box<[u8]>,
    head: usize,
    o: usize,
    i: usize,
}

impl Chunk {
    /// A chunk of `size` bytes (allocated by `pool2_buffer`).
    pub fn new(size: usize) -> Chunk {
        Chunk { area: vec![0; size].into_boxed_slice(), head: 0, o: 0, i: 0 }
    }

    /// Forget the content (a recycled chunk keeps its memory).
    pub fn reset(&mut self) {
        self.head = 0;
        self.o = 0;
        self.i = 0;
    }
}

/// `struct buffer` (1.5-dev8): one direction of a session.
#[derive(Debug, Default)]
pub struct Buffer {
    /// `BF_*` flags.
    pub flags: BufFlags,
    /// Analysers still to run (`AN_REQ_*` for `req`, `AN_RES_*` for `rep`).
    pub analysers: Analysers,
    /// Read expiry date (the producer's timeout armed).
    pub rex: Expire,
    /// Write expiry date (the consumer's timeout armed).
    pub wex: Expire,
    /// Read timeout in ms (`timeout client` for `req`, `timeout server` for `rep`).
    pub rto: Option<u64>,
    /// Write timeout in ms.
    pub wto: Option<u64>,
    /// Deadline of the current analyser (e.g. `timeout http-request`).
    pub analyse_exp: Expire,
    /// Bytes that may still be forwarded without analysis.
    pub to_forward: u64,
    /// Total bytes that entered this buffer.
    pub total: u64,
    /// Bytes that left this buffer (sent to the consumer).
    pub sent: u64,
    /// Capacity in bytes (`tune.bufsize`).
    pub size: usize,
    /// Space kept free for header rewriting while analysing (`tune.maxrewrite`).
    pub maxrewrite: usize,
    /// Bytes spliced from the producer's socket and not yet into the consumer's
    /// (`buffer->pipe`): they come before the buffer's output. Held only while splicing.
    pub pipe: Option<Box<Pipe>>,
    /// Consecutive reads that filled the buffer at once (`xfer_large`, 1.5.0), and
    /// that did not (`xfer_small`): what makes the producer a fast streamer.
    pub xfer_large: u8,
    /// See `xfer_large`.
    pub xfer_small: u8,
    data: Option<Box<Chunk>>,
}

impl Buffer {
    /// buffers.h:buffer_init() in 1.5-dev8: an empty buffer of `size` bytes (storage taken
    /// lazily).
    pub fn new(size: usize, maxrewrite: usize) -> Buffer {
        Buffer { size, maxrewrite, flags: BufFlags::BF_OUT_EMPTY, ..Default::default() }
    }

    /// True when storage is attached.
    pub fn has_storage(&self) -> bool {
        self.data.is_some()
    }

    /// Takes storage from `pool2_buffer` if none is attached. `false` when the pool is exhausted.
    pub fn b_alloc(&mut self, pool: &mut Pool<Chunk>) -> bool {
        if self.data.is_none() {
            let size = self.size;
            self.data = pool.pool_alloc2_with(|| Chunk::new(size), Chunk::reset);
        }
        self.data.is_some()
    }

    /// Gives the storage back to `pool2_buffer` (only when empty, or when the session dies).
    pub fn b_free(&mut self, pool: &mut Pool<Chunk>) {
        if let Some(c) = self.data.take() {
            pool.pool_free2(c);
        }
    }

    /// Releases the storage if it holds no byte (idle keep-alive sessions, and a buffer
    /// whose bytes go through a pipe).
    pub fn b_release_if_empty(&mut self, pool: &mut Pool<Chunk>) {
        if self.buffer_empty() {
            self.b_free(pool);
        }
    }

    /// buffer.h:buffer_empty() in 1.5.0: the buffer holds no byte (its pipe may).
    pub fn buffer_empty(&self) -> bool {
        self.i() == 0 && self.o() == 0
    }

    /// Bytes waiting in the pipe (`pipe->data`; 0 without a pipe).
    pub fn pipe_data(&self) -> usize {
        self.pipe.as_ref().map_or(0, |p| p.data)
    }

    /// True when bytes are waiting to leave: the buffer's output or the pipe.
    pub fn has_output(&self) -> bool {
        self.o() > 0 || self.pipe.is_some()
    }

    /// Bytes forwarded so far: sent, or allowed to leave (output and pipe).
    pub fn forwarded(&self) -> u64 {
        self.sent + self.o() as u64 + self.pipe_data() as u64
    }

    /// Gives the pipe back to the pool (closed if it still holds bytes, as when a session
    /// dies mid-transfer).
    pub fn release_pipe(&mut self, pipes: &mut PipePool) {
        if let Some(p) = self.pipe.take() {
            pipes.put_pipe(p);
        }
    }

    /// Input bytes: received, not yet forwarded.
    pub fn input(&self) -> &[u8] {
        match &self.data {
            Some(c) => &c.area[c.head + c.o..c.head + c.o + c.i],
            None => &[],
        }
    }

    /// Output bytes: ready to be sent to the consumer.
    pub fn output(&self) -> &[u8] {
        match &self.data {
            Some(c) => &c.area[c.head..c.head + c.o],
            None => &[],
        }
    }

    /// Number of input bytes (`buf->i`).
    pub fn i(&self) -> usize {
        self.data.as_ref().map_or(0, |c| c.i)
    }

    /// Number of output bytes (`buf->o`).
    pub fn o(&self) -> usize {
        self.data.as_ref().map_or(0, |c| c.o)
    }

    /// Total bytes held.
    pub fn len(&self) -> usize {
        self.i() + self.o()
    }

    /// True when nothing is held, in the buffer or in its pipe (1.5.0's
    /// `channel_is_empty()`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.pipe.is_none()
    }

    /// How many bytes a read may add now: the whole buffer when forwarding blindly, else
    /// `maxrewrite` bytes stay free for the analysers' header rewrites (buffer_max_len()).
    pub fn recv_limit(&self) -> usize {
        if self.to_forward == BUF_INFINITE_FORWARD {
            return self.size;
        }
        let forwarded = self.o() + self.to_forward.min(self.size as u64) as usize;
        self.size - self.maxrewrite.saturating_sub(forwarded).min(self.size)
    }

    /// Room left for reading under `recv_limit`.
    pub fn room(&self) -> usize {
        self.recv_limit().saturating_sub(self.len())
    }

    /// The free space after the data, moving the data to the start first if that helps
    /// (buffer_realign()). Empty when the buffer is full or has no storage.
    pub fn recv_space(&mut self) -> &mut [u8] {
        let room = self.room();
        let Some(c) = self.data.as_deref_mut() else { return &mut [] };
        let end = c.head + c.o + c.i;
        if c.area.len() - end < room && c.head > 0 {
            c.area.copy_within(c.head..end, 0);
            c.head = 0;
        }
        let start = c.head + c.o + c.i;
        let avail = room.min(c.area.len() - start);
        &mut c.area[start..start + avail]
    }

    /// Accounts `n` bytes just read into `recv_space()`; bytes already allowed by
    /// `to_forward` go straight to output.
    pub fn commit_recv(&mut self, n: usize) {
        if let Some(c) = self.data.as_deref_mut() {
            c.i += n;
        }
        self.total += n as u64;
        if self.to_forward > 0 {
            let fwd = (self.i() as u64).min(self.to_forward) as usize;
            self.b_adv(fwd);
            if self.to_forward != BUF_INFINITE_FORWARD {
                self.to_forward -= fwd as u64;
            }
        }
        self.update_full();
    }

    /// Moves `n` input bytes to output (buffer.h:b_adv()): they are now allowed to leave.
    pub fn b_adv(&mut self, n: usize) {
        if let Some(c) = self.data.as_deref_mut() {
            let n = n.min(c.i);
            c.i -= n;
            c.o += n;
            if n > 0 {
                self.flags.remove(BufFlags::BF_OUT_EMPTY);
            }
        }
    }

    /// buffers.c:buffer_forward() in 1.5-dev8: let `bytes` more input bytes pass without
    /// analysis, including those already waiting in the buffer.
    pub fn buffer_forward(&mut self, bytes: u64) {
        let now = (self.i() as u64).min(bytes) as usize;
        self.b_adv(now);
        if bytes == BUF_INFINITE_FORWARD {
            self.to_forward = BUF_INFINITE_FORWARD;
        } else if self.to_forward != BUF_INFINITE_FORWARD {
            self.to_forward += bytes - now as u64;
        }
    }

    /// Whether a send should carry `MSG_MORE` (`CO_SFL_MSG_MORE` in 1.5's
    /// `si_conn_send()`): bytes announced by `to_forward` (the rest of a body of known
    /// length) have not arrived yet, so the kernel may wait for them to fill a segment.
    /// If they are slow to come, Linux sends what it holds after about 200 ms, which is
    /// why `option http-no-delay` (`BF_NEVER_WAIT`) turns this off.
    pub fn expects_more(&self) -> bool {
        self.to_forward != 0
            && self.to_forward != BUF_INFINITE_FORWARD
            && !self.flags.contains(BufFlags::BF_NEVER_WAIT)
    }

    /// Removes `n` bytes from the start of the output once they were sent.
    pub fn bo_skip(&mut self, n: usize) {
        if let Some(c) = self.data.as_deref_mut() {
            let n = n.min(c.o);
            c.o -= n;
            c.head += n;
            if c.o + c.i == 0 {
                c.head = 0;
            }
            if c.o == 0 {
                self.flags.insert(BufFlags::BF_OUT_EMPTY);
            }
        }
        self.sent += n as u64;
        self.update_full();
    }

    /// Drops `n` bytes from the start of the input (consumed by an analyser, e.g. a request
    /// that is answered locally).
    pub fn bi_skip(&mut self, n: usize) {
        if let Some(c) = self.data.as_deref_mut() {
            let n = n.min(c.i);
            // Input follows output: close the gap by moving the remaining input down.
            let start = c.head + c.o;
            c.area.copy_within(start + n..start + c.i, start);
            c.i -= n;
            if c.o + c.i == 0 {
                c.head = 0;
            }
        }
        self.update_full();
    }

    /// Drops the output without sending it (a reply replaces what was going to the server).
    pub fn bo_erase(&mut self) {
        if let Some(c) = self.data.as_deref_mut() {
            c.head += c.o;
            c.o = 0;
            if c.i == 0 {
                c.head = 0;
            }
        }
        self.flags.insert(BufFlags::BF_OUT_EMPTY);
        self.update_full();
    }

    /// buffers.h:buffer_cut_tail() in 1.5-dev8: drops the input (bytes not yet allowed to
    /// leave) and stops forwarding; the output still goes. An aborted message must not
    /// leave unparsed bytes behind, or the buffer never becomes empty and the shutdown
    /// waiting for it never comes.
    pub fn buffer_cut_tail(&mut self) {
        let i = self.i();
        self.bi_skip(i);
        self.to_forward = 0;
    }

    /// Keeps only the first `keep` output bytes, dropping the rest of the output and all
    /// input (a response whose head has not left yet is replaced by an error).
    pub fn bo_truncate(&mut self, keep: usize) {
        self.buffer_cut_tail();
        if let Some(c) = self.data.as_deref_mut() {
            c.o = c.o.min(keep);
            if c.o == 0 {
                c.head = 0;
                self.flags.insert(BufFlags::BF_OUT_EMPTY);
            }
        }
        self.update_full();
    }

    /// buffers.h:buffer_erase() in 1.5-dev8: drops everything, input and output.
    pub fn buffer_erase(&mut self) {
        if let Some(c) = self.data.as_deref_mut() {
            c.reset();
        }
        self.to_forward = 0;
        self.flags.insert(BufFlags::BF_OUT_EMPTY);
        self.flags.remove(BufFlags::BF_FULL);
    }

    /// channel.c:bo_inject() in 1.5.0: appends `msg` to the output (HAProxy's own answers,
    /// such as error pages). Fails when it does not fit.
    /// Divergence: also fails when input is pending, which 1.5.0 assumes never happens
    /// (it would write over it).
    pub fn bo_inject(&mut self, pool: &mut Pool<Chunk>, msg: &[u8]) -> bool {
        if !self.b_alloc(pool) {
            return false;
        }
        let c = self.data.as_deref_mut().expect("storage was just allocated");
        if c.i != 0 || c.area.len() - c.o < msg.len() {
            return false;
        }
        if c.area.len() - c.head - c.o < msg.len() {
            c.area.copy_within(c.head..c.head + c.o, 0);
            c.head = 0;
        }
        let at = c.head + c.o;
        c.area[at..at + msg.len()].copy_from_slice(msg);
        c.o += msg.len();
        self.flags.remove(BufFlags::BF_OUT_EMPTY);
        self.update_full();
        true
    }

    /// buffer.c:buffer_replace2() in 1.5.0: replaces input bytes `start..end` with `with`,
    /// moving what follows. Fails (nothing changed) when the result would not fit.
    /// Divergence: when the result would pass the end of the storage, the data are first
    /// moved to its start; 1.5.0 fails there ("no space left").
    pub fn replace_input(&mut self, start: usize, end: usize, with: &[u8]) -> bool {
        let Some(c) = self.data.as_deref_mut() else { return with.is_empty() && start == end };
        let base = c.head + c.o;
        let delta = with.len() as isize - (end - start) as isize;
        let new_end = (base + c.i) as isize + delta;
        if new_end as usize > c.area.len() {
            if c.head == 0 || (c.o + c.i) as isize + delta > c.area.len() as isize {
                return false;
            }
            c.area.copy_within(c.head..c.head + c.o + c.i, 0);
            c.head = 0;
        }
        let base = c.head + c.o;
        c.area.copy_within(base + end..base + c.i, (base as isize + end as isize + delta) as usize);
        c.area[base + start..base + start + with.len()].copy_from_slice(with);
        c.i = (c.i as isize + delta) as usize;
        self.update_full();
        true
    }

    fn update_full(&mut self) {
        if self.room() == 0 {
            self.flags.insert(BufFlags::BF_FULL);
        } else {
            self.flags.remove(BufFlags::BF_FULL);
        }
    }

    /// buffers.h:buffer_shutr_now() in 1.5-dev8: ask for the read side to be shut.
    pub fn buffer_shutr_now(&mut self) {
        self.flags.insert(BufFlags::BF_SHUTR_NOW);
    }

    /// buffers.h:buffer_shutw_now() in 1.5-dev8: ask for the write side to be shut once empty.
    pub fn buffer_shutw_now(&mut self) {
        self.flags.insert(BufFlags::BF_SHUTW_NOW);
    }

    /// buffers.h:buffer_abort() in 1.5-dev8: shut both ways now and stop forwarding.
    pub fn buffer_abort(&mut self) {
        self.flags.insert(BufFlags::BF_SHUTR_NOW | BufFlags::BF_SHUTW_NOW);
        self.flags.remove(BufFlags::BF_AUTO_CONNECT);
    }

    /// buffers.h:buffer_auto_connect() in 1.5-dev8: pending data may open the server connection.
    pub fn buffer_auto_connect(&mut self) {
        self.flags.insert(BufFlags::BF_AUTO_CONNECT);
    }

    /// buffers.h:buffer_dont_connect() in 1.5-dev8: do not open the server connection yet.
    /// Divergence: leaves `BF_AUTO_CLOSE` alone, which dev8 (and 1.5.0) clear too; its
    /// callers, an HTTP request still awaited, never have it set.
    pub fn buffer_dont_connect(&mut self) {
        self.flags.remove(BufFlags::BF_AUTO_CONNECT);
    }

    /// buffers.h:buffer_auto_close() in 1.5-dev8: a read shutdown propagates as a write shutdown.
    pub fn buffer_auto_close(&mut self) {
        self.flags.insert(BufFlags::BF_AUTO_CLOSE);
    }

    /// buffers.h:buffer_dont_close() in 1.5-dev8: keep the other side open after a read shutdown.
    pub fn buffer_dont_close(&mut self) {
        self.flags.remove(BufFlags::BF_AUTO_CLOSE);
    }

    /// buffers.h:buffer_auto_read() in 1.5-dev8: reading is allowed.
    pub fn buffer_auto_read(&mut self) {
        self.flags.remove(BufFlags::BF_DONT_READ);
    }

    /// buffers.h:buffer_dont_read() in 1.5-dev8: stop reading for now.
    pub fn buffer_dont_read(&mut self) {
        self.flags.insert(BufFlags::BF_DONT_READ);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(size: usize, maxrewrite: usize) -> (Buffer, Pool<Chunk>) {
        let mut pool = Pool::create_pool("buffer", size);
        let mut b = Buffer::new(size, maxrewrite);
        assert!(b.b_alloc(&mut pool));
        (b, pool)
    }

    fn read(b: &mut Buffer, bytes: &[u8]) -> usize {
        let space = b.recv_space();
        let n = bytes.len().min(space.len());
        space[..n].copy_from_slice(&bytes[..n]);
        b.commit_recv(n);
        n
    }

    #[test]
    fn cut_tail_drops_input_and_forwarding_but_keeps_output() {
        let (mut b, _p) = buf(64, 0);
        read(&mut b, b"okXYZ");
        b.b_adv(2);
        b.to_forward = 7;
        b.buffer_cut_tail();
        assert_eq!((b.input(), b.output(), b.to_forward), (&b""[..], &b"ok"[..], 0));
        b.bo_skip(2);
        assert!(b.is_empty(), "nothing is left to hold a shutdown back");
    }

    #[test]
    fn truncated_output_keeps_only_its_first_bytes() {
        let (mut b, _p) = buf(64, 0);
        read(&mut b, b"prevHEADzz");
        b.b_adv(8);
        b.bo_truncate(4);
        assert_eq!((b.input(), b.output()), (&b""[..], &b"prev"[..]));
        b.bo_truncate(0);
        assert!(b.is_empty() && b.flags.contains(BufFlags::BF_OUT_EMPTY));
    }

    #[test]
    fn input_becomes_output_only_when_forwarded() {
        let (mut b, _p) = buf(64, 0);
        read(&mut b, b"hello");
        assert_eq!((b.input(), b.output()), (&b"hello"[..], &b""[..]));
        b.b_adv(2);
        assert_eq!((b.input(), b.output()), (&b"llo"[..], &b"he"[..]));
        b.bo_skip(2);
        assert_eq!(b.output(), b"");
        assert!(b.flags.contains(BufFlags::BF_OUT_EMPTY));
        assert_eq!(b.sent, 2);
    }

    #[test]
    fn to_forward_passes_new_bytes_straight_to_output() {
        let (mut b, _p) = buf(64, 0);
        b.buffer_forward(3);
        read(&mut b, b"abcdef");
        assert_eq!((b.output(), b.input()), (&b"abc"[..], &b"def"[..]));
        assert_eq!(b.to_forward, 0);
        b.buffer_forward(BUF_INFINITE_FORWARD);
        assert_eq!(b.output(), b"abcdef");
    }

    #[test]
    fn only_a_body_still_arriving_asks_for_msg_more() {
        let (mut b, _p) = buf(64, 0);
        b.buffer_forward(10);
        read(&mut b, b"abcd");
        assert!(b.expects_more(), "6 announced bytes have not arrived");
        read(&mut b, b"efghij");
        assert!(!b.expects_more(), "the last bytes of the body must be pushed");
        b.buffer_forward(BUF_INFINITE_FORWARD);
        assert!(!b.expects_more(), "a stream of unknown length never waits for more");
        let (mut b, _p) = buf(64, 0);
        b.flags.insert(BufFlags::BF_NEVER_WAIT);
        b.buffer_forward(10);
        read(&mut b, b"abcd");
        assert!(!b.expects_more(), "http-no-delay never waits");
    }

    #[test]
    fn maxrewrite_is_reserved_while_analysing() {
        let (mut b, _p) = buf(32, 8);
        assert_eq!(read(&mut b, &[b'x'; 40]), 24, "8 bytes stay free for rewrites");
        assert!(b.flags.contains(BufFlags::BF_FULL));
    }

    #[test]
    fn realign_reuses_space_freed_by_sending() {
        let (mut b, _p) = buf(16, 0);
        b.buffer_forward(BUF_INFINITE_FORWARD);
        assert_eq!(read(&mut b, &[1; 16]), 16);
        b.bo_skip(10);
        assert_eq!(read(&mut b, &[2; 16]), 10, "the 10 sent bytes are free again");
        assert_eq!(b.output().len(), 16);
    }

    #[test]
    fn replace_input_grows_and_shrinks_in_place() {
        let (mut b, _p) = buf(64, 0);
        read(&mut b, b"GET / HTTP/1.1\r\nA: 1\r\n\r\n");
        assert!(b.replace_input(16, 22, b"A: long value\r\n"));
        assert_eq!(b.input(), b"GET / HTTP/1.1\r\nA: long value\r\n\r\n");
        assert!(b.replace_input(16, 31, b""));
        assert_eq!(b.input(), b"GET / HTTP/1.1\r\n\r\n");
        assert!(!b.replace_input(0, 0, &[b'x'; 60]), "too big: refused, unchanged");
        assert_eq!(b.input(), b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn injected_message_is_output_and_recycled_storage_is_empty() {
        let (mut b, mut p) = buf(64, 0);
        assert!(b.bo_inject(&mut p, b"HTTP/1.1 503\r\n\r\n"));
        assert_eq!(b.output(), b"HTTP/1.1 503\r\n\r\n");
        b.buffer_erase();
        b.b_free(&mut p);
        assert!(b.b_alloc(&mut p));
        assert!(b.is_empty());
        assert_eq!(p.stats().allocated, 1);
    }

    #[test]
    fn flags_print_with_haproxy_names() {
        let f = BufFlags::BF_SHUTR | BufFlags::BF_READ_NULL;
        assert_eq!(f.to_string(), "BF_READ_NULL|BF_SHUTR");
        assert_eq!(Analysers::AN_REQ_WAIT_HTTP.to_string(), "AN_REQ_WAIT_HTTP");
    }
}
