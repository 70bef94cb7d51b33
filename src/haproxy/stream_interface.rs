//! Stream interfaces: the two ends of a session, `si[0]` (client) and `si[1]` (server).
//!
//! Reproduces `stream_interface.c` and `include/types/stream_interface.h` (1.5-dev8).
//! A stream interface is where a buffer meets a socket: `si[0]` produces into `req` and
//! consumes from `rep`; `si[1]` produces into `rep` and consumes from `req`. Its `state`
//! tells how far the connection has gone: the client side is born `SI_ST_EST`, the
//! server side starts at `SI_ST_INI` and walks `REQ -> ASS -> CON -> EST` (with `QUE`,
//! `TAR`, `CER` on the way when queueing or retrying) and ends `DIS -> CLO`. Illegal
//! transitions assert in debug builds.
//!
//! `stream_int_shutr`/`stream_int_shutw` close a stream interface that has no socket yet
//! (the server side before its connection exists); `si_shutr`/`si_shutw` pick the socket
//! versions from `stream_sock.rs` when there is one.

use std::fmt;

use crate::haproxy::buffers::BufFlags;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::session::Session;
use crate::haproxy::stream_sock::{stream_sock_shutr, stream_sock_shutw};
use crate::haproxy::time::Expire;
use crate::haproxy::time::TICK_ETERNITY;
use crate::ids::Fd;

/// Which stream interface: `si[0]` faces the client, `si[1]` the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// `si[0]`: the client connection, accepted by a listener.
    Cli = 0,
    /// `si[1]`: the server connection, opened by `connect_server`.
    Srv = 1,
}

impl Side {
    /// The stream interface on the other end of the session.
    pub fn peer(self) -> Side {
        match self {
            Side::Cli => Side::Srv,
            Side::Srv => Side::Cli,
        }
    }

    /// `cli` or `srv`, the spelling used in span fields and logs.
    pub fn name(self) -> &'static str {
        match self {
            Side::Cli => "cli",
            Side::Srv => "srv",
        }
    }
}

/// `enum si_state`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SiState {
    /// Not solicited yet.
    SI_ST_INI = 0,
    /// Connection wanted, not started (transient).
    SI_ST_REQ,
    /// Waiting in a server or backend queue.
    SI_ST_QUE,
    /// Turn-around: waiting before retrying a failed connect.
    SI_ST_TAR,
    /// Server assigned, `connect()` not attempted yet.
    SI_ST_ASS,
    /// `connect()` issued, waiting for completion.
    SI_ST_CON,
    /// The connect attempt failed; resources released (transient).
    SI_ST_CER,
    /// Connection established.
    SI_ST_EST,
    /// Disconnected, cleanup pending (transient).
    SI_ST_DIS,
    /// Closed.
    SI_ST_CLO,
}

impl fmt::Display for SiState {
    /// HAProxy's name (`SI_ST_EST`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl SiState {
    /// Every state, in order (`ALL[s as usize] == s`).
    pub const ALL: [SiState; 10] = [
        SiState::SI_ST_INI,
        SiState::SI_ST_REQ,
        SiState::SI_ST_QUE,
        SiState::SI_ST_TAR,
        SiState::SI_ST_ASS,
        SiState::SI_ST_CON,
        SiState::SI_ST_CER,
        SiState::SI_ST_EST,
        SiState::SI_ST_DIS,
        SiState::SI_ST_CLO,
    ];

    /// Short name as `show sess` prints it (`EST`, `CLO`...).
    pub fn short(self) -> &'static str {
        match self {
            SiState::SI_ST_INI => "INI",
            SiState::SI_ST_REQ => "REQ",
            SiState::SI_ST_QUE => "QUE",
            SiState::SI_ST_TAR => "TAR",
            SiState::SI_ST_ASS => "ASS",
            SiState::SI_ST_CON => "CON",
            SiState::SI_ST_CER => "CER",
            SiState::SI_ST_EST => "EST",
            SiState::SI_ST_DIS => "DIS",
            SiState::SI_ST_CLO => "CLO",
        }
    }

    // ANCHOR: si_transitions
    /// The transitions HAProxy's stream interfaces can take (1.5-dev8's session.c,
    /// stream_sock.c and stream_interface.c). Only an established connection is closed
    /// in two steps (`DIS`, then `CLO`); every other state gives up straight to `CLO`.
    pub fn may_become(self, to: SiState) -> bool {
        use SiState::*;
        if self == to {
            return true;
        }
        match self {
            // An applet (the stats page) is established at once; shutw before any
            // connection request aborts.
            SI_ST_INI => matches!(to, SI_ST_REQ | SI_ST_EST | SI_ST_CLO),
            SI_ST_REQ => matches!(to, SI_ST_QUE | SI_ST_ASS | SI_ST_EST | SI_ST_CLO),
            SI_ST_QUE => matches!(to, SI_ST_ASS | SI_ST_REQ | SI_ST_CLO),
            SI_ST_TAR => matches!(to, SI_ST_ASS | SI_ST_REQ | SI_ST_CLO),
            SI_ST_ASS => matches!(to, SI_ST_CON | SI_ST_CER | SI_ST_QUE | SI_ST_CLO),
            SI_ST_CON => matches!(to, SI_ST_EST | SI_ST_CER | SI_ST_CLO),
            SI_ST_CER => matches!(to, SI_ST_REQ | SI_ST_ASS | SI_ST_TAR | SI_ST_CLO),
            // Keep-alive recycles the server side of a session for the next request.
            SI_ST_EST => matches!(to, SI_ST_DIS | SI_ST_INI),
            SI_ST_DIS => to == SI_ST_CLO,
            SI_ST_CLO => to == SI_ST_INI,
        }
    }
    // ANCHOR_END: si_transitions
}

bitflags::bitflags! {
    /// `si->flags` (`SI_FL_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct SiFlags: u32 {
        /// The stream interface's timer (`exp`) expired.
        const SI_FL_EXP       = 0x0001;
        /// A socket error was reported.
        const SI_FL_ERR       = 0x0002;
        /// Waiting for room in the input buffer.
        const SI_FL_WAIT_ROOM = 0x0004;
        /// Waiting for data in the output buffer.
        const SI_FL_WAIT_DATA = 0x0008;
        /// Do not wake the task (it is running and will look by itself).
        const SI_FL_DONT_WAKE = 0x0020;
        /// Read and write timeouts are independent (`option independent-streams`).
        const SI_FL_INDEP_STR = 0x0040;
        /// Close with a RST rather than a FIN.
        const SI_FL_NOLINGER  = 0x0080;
        /// Do not half-close: close both ways at once.
        const SI_FL_NOHALF    = 0x0100;
    }
}

bitflags::bitflags! {
    /// `si->err_type` (`SI_ET_*`): what went wrong with the connection.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct SiErrType: u32 {
        /// Queue timeout.
        const SI_ET_QUEUE_TO    = 0x0001;
        /// Queue error (full, or no server).
        const SI_ET_QUEUE_ERR   = 0x0002;
        /// Aborted in queue by the client.
        const SI_ET_QUEUE_ABRT  = 0x0004;
        /// Connect timeout.
        const SI_ET_CONN_TO     = 0x0008;
        /// Connect error (refused, unreachable, no server).
        const SI_ET_CONN_ERR    = 0x0010;
        /// Connect aborted by the client.
        const SI_ET_CONN_ABRT   = 0x0020;
        /// Connect failed for lack of a resource.
        const SI_ET_CONN_RES    = 0x0040;
        /// Connect failed for another reason.
        const SI_ET_CONN_OTHER  = 0x0080;
        /// Timeout during data transfer.
        const SI_ET_DATA_TO     = 0x0100;
        /// Error during data transfer.
        const SI_ET_DATA_ERR    = 0x0200;
        /// Data transfer aborted.
        const SI_ET_DATA_ABRT   = 0x0400;
    }
}

/// `struct stream_interface`.
#[derive(Debug, Clone)]
pub struct StreamInterface {
    /// Where the connection stands.
    pub state: SiState,
    /// State at the end of the previous `process_session` run (to detect changes).
    pub prev_state: SiState,
    /// `SI_FL_*`.
    pub flags: SiFlags,
    /// Timer of this side (connect timeout, queue timeout, turn-around delay).
    pub exp: Expire,
    /// What went wrong, if anything.
    pub err_type: SiErrType,
    /// Connection attempts left (`retries`).
    pub conn_retries: i32,
    /// The socket, once one exists.
    pub fd: Option<Fd>,
    /// The PROXY protocol header still to send before any data on this connection
    /// (1.5-dev8's `send_proxy_ofs`, with the header kept rather than rebuilt).
    pub send_proxy: Vec<u8>,
    /// The applet standing for the server (1.5.0's `si->end` as an `appctx`): the cache
    /// answering a request (`s->target = &http_cache_applet`). No socket then.
    pub appctx: Option<Box<crate::haproxy::cache::CacheAppCtx>>,
}

impl StreamInterface {
    /// A stream interface in `state`, with no socket.
    pub fn new(state: SiState) -> StreamInterface {
        StreamInterface {
            state,
            prev_state: state,
            flags: SiFlags::empty(),
            exp: None,
            err_type: SiErrType::empty(),
            conn_retries: 0,
            fd: None,
            send_proxy: Vec::new(),
            appctx: None,
        }
    }

    /// Moves to `to`, asserting in debug builds that HAProxy could take that transition.
    pub fn set_state(&mut self, to: SiState) {
        debug_assert!(
            self.state.may_become(to),
            "illegal stream interface transition {} -> {}",
            self.state,
            to
        );
        self.state = to;
    }
}

/// stream_interface.c:stream_int_shutr() in 1.5-dev8: shut the input of a stream
/// interface that has no socket.
pub fn stream_int_shutr(s: &mut Session, side: Side) {
    let ib = s.ib_mut(side);
    ib.flags.insert(BufFlags::BF_SHUTR);
    ib.rex = TICK_ETERNITY;
    let shutw = s.ob(side).flags.contains(BufFlags::BF_SHUTW);
    let si = &mut s.si[side as usize];
    si.flags.remove(SiFlags::SI_FL_WAIT_ROOM);
    if matches!(si.state, SiState::SI_ST_EST | SiState::SI_ST_CON) && shutw {
        si.set_state(SiState::SI_ST_DIS);
        si.exp = TICK_ETERNITY;
    }
}

/// stream_interface.c:stream_int_shutw() in 1.5-dev8: shut the output of a stream
/// interface that has no socket; one waiting for a connection (`QUE`, `TAR`, `ASS`,
/// `CER`) is abandoned (`SI_ST_DIS`), one not yet solicited (`INI`) stays as is, and an
/// applet's (`EST` without a socket) closes, its input being shut here too.
pub fn stream_int_shutw(s: &mut Session, side: Side) {
    let ob = s.ob_mut(side);
    ob.flags.insert(BufFlags::BF_SHUTW);
    ob.wex = TICK_ETERNITY;
    let si = &mut s.si[side as usize];
    si.flags.remove(SiFlags::SI_FL_WAIT_DATA);
    if matches!(
        si.state,
        SiState::SI_ST_QUE
            | SiState::SI_ST_TAR
            | SiState::SI_ST_ASS
            | SiState::SI_ST_CER
            | SiState::SI_ST_REQ
            | SiState::SI_ST_EST
    ) {
        si.set_state(SiState::SI_ST_DIS);
    }
    si.exp = TICK_ETERNITY;
    let ib = s.ib_mut(side);
    ib.flags.insert(BufFlags::BF_SHUTR);
    ib.rex = TICK_ETERNITY;
}

/// `si_shutr(si)`: `si->shutr(si)`, the socket version when the SI has a socket.
pub fn si_shutr(w: &mut Haproxy, s: &mut Session, side: Side) {
    if s.si[side as usize].fd.is_some() {
        stream_sock_shutr(w, s, side);
    } else {
        stream_int_shutr(s, side);
    }
}

/// `si_shutw(si)`: `si->shutw(si)`, the socket version when the SI has a socket.
pub fn si_shutw(w: &mut Haproxy, s: &mut Session, side: Side) {
    if s.si[side as usize].fd.is_some() {
        stream_sock_shutw(w, s, side);
    } else {
        stream_int_shutw(s, side);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_side_walks_the_documented_path() {
        let mut si = StreamInterface::new(SiState::SI_ST_INI);
        for s in [
            SiState::SI_ST_REQ,
            SiState::SI_ST_ASS,
            SiState::SI_ST_CON,
            SiState::SI_ST_EST,
            SiState::SI_ST_DIS,
        ] {
            si.set_state(s);
        }
        si.set_state(SiState::SI_ST_CLO);
        assert_eq!(si.state.to_string(), "SI_ST_CLO");
    }

    #[test]
    fn connect_cannot_skip_assignment() {
        assert!(!SiState::SI_ST_INI.may_become(SiState::SI_ST_CON));
        assert!(!SiState::SI_ST_REQ.may_become(SiState::SI_ST_CON));
        assert!(SiState::SI_ST_CER.may_become(SiState::SI_ST_TAR));
    }
}
