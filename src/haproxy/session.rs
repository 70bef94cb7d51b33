//! Sessions: one accepted client connection, its server connection, and `process_session`.
//!
//! Reproduces `session.c` and `include/types/session.h` (1.5-dev8; keep-alive from 1.5.0).
//! `session_accept` (the listener's `accept`) allocates a `Session` from `pool2_session`, a
//! task whose `process` is `process_session`, and the two buffers; it registers the client
//! fd with `stream_sock_read`/`stream_sock_write` and calls the frontend's `accept`
//! (`frontend_accept`). From then on everything happens in `process_session`, run each
//! time the task is woken: it checks timeouts and errors, runs the request and response
//! analysers, forwards data, propagates shutdowns from one side to the other, and drives
//! the server side through `SI_ST_INI -> REQ -> ASS -> CON -> EST` (`sess_prepare_conn_req`,
//! `sess_update_stream_int`, `sess_update_st_con_tcp`, `sess_update_st_cer`,
//! `sess_establish`). When both sides are closed it logs and calls `session_free`.

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::haproxy::backend::{SrvStatus, connect_server, srv_redispatch_connect};
use crate::haproxy::buffers::{Analysers, BUF_INFINITE_FORWARD, BufFlags, Buffer};
use crate::haproxy::fd::{FdOwner, FdState, FdTab, Sock};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::listener::{
    ListenerState, dequeue_all_listeners, dequeue_global_listeners, resume_listener,
};
use crate::haproxy::log::sess_log;
use crate::haproxy::proto_http::{self, HttpTxn};
use crate::haproxy::proxy::{ProxyMode, ProxyOptions};
use crate::haproxy::queue::{pendconn_free, process_srv_queue};
use crate::haproxy::server::SrvFlags;
use crate::haproxy::stream_interface::{
    SiErrType, SiFlags, SiState, Side, StreamInterface, si_shutr, si_shutw,
};
use crate::haproxy::stream_sock::stream_sock_data_finish;
use crate::haproxy::task::{TaskContext, TaskRun, TaskState};
use crate::haproxy::time::{TICK_ETERNITY, Tick, tick_add_ifset, tick_first, tick_is_expired};
use crate::ids::{Fd, ListenerId, ProxyId, ServerId, SessionId, TaskId};
use crate::trace::fields::Coded;
use crate::trace::names;

/// `SN_ERR_*`: why the session ended (first character of the termination state).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SnErr {
    /// Normal end.
    #[default]
    SN_ERR_NONE,
    /// HAProxy answered locally (`L`).
    SN_ERR_LOCAL,
    /// Client timeout (`c`).
    SN_ERR_CLITO,
    /// Client closed or reset (`C`).
    SN_ERR_CLICL,
    /// Server timeout (`s`).
    SN_ERR_SRVTO,
    /// Server closed, reset or refused (`S`).
    SN_ERR_SRVCL,
    /// A proxy condition: rule, limit or protocol error (`P`).
    SN_ERR_PRXCOND,
    /// A local resource was exhausted (`R`).
    SN_ERR_RESOURCE,
    /// An internal error (`I`).
    SN_ERR_INTERNAL,
    /// The server went down (`D`).
    SN_ERR_DOWN,
    /// Killed by an administrator (`K`).
    SN_ERR_KILLED,
    /// A backup server was killed because an active one came up (`U`).
    SN_ERR_UP,
}

impl SnErr {
    /// The log character (`sess_term_cond[]` = "-LcCsSPRIDKU").
    pub fn log_char(self) -> char {
        b"-LcCsSPRIDKU"[self as usize] as char
    }
}

impl fmt::Display for SnErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `SN_FINST_*`: where the session was when it ended (second character).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SnFinst {
    /// Not set (`-`).
    #[default]
    SN_FINST_NONE,
    /// Waiting for the request (`R`).
    SN_FINST_R,
    /// Connecting to the server (`C`).
    SN_FINST_C,
    /// Waiting for the response headers (`H`).
    SN_FINST_H,
    /// Transferring data (`D`).
    SN_FINST_D,
    /// Sending the last data to the client (`L`).
    SN_FINST_L,
    /// Queued (`Q`).
    SN_FINST_Q,
    /// Tarpitted (`T`).
    SN_FINST_T,
}

impl SnFinst {
    /// The log character (`sess_fin_state[]` = "-RCHDLQT").
    pub fn log_char(self) -> char {
        b"-RCHDLQT"[self as usize] as char
    }
}

bitflags::bitflags! {
    /// `s->flags` (`SN_*`), without the error and final-state fields kept apart above.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct SessFlags: u32 {
        /// Connection made on the server chosen by persistence.
        const SN_DIRECT      = 0x0001;
        /// A server was assigned (`s->srv` valid).
        const SN_ASSIGNED    = 0x0002;
        /// The server address was set.
        const SN_ADDR_SET    = 0x0004;
        /// A backend was assigned; `beconn` counts us.
        const SN_BE_ASSIGNED = 0x0008;
        /// The session counts in its server's `cur_sess`.
        const SN_CURR_SESS   = 0x0040;
        /// The session was fully initialised.
        const SN_INITIALIZED = 0x0080;
        /// The session was redispatched to another server.
        const SN_REDISP      = 0x0100;
        /// The frontend address (`si[0].addr.to`) is known: a PROXY protocol header gave it.
        const SN_FRT_ADDR_SET = 0x0400;
        /// The server connection of this transaction was reused: it already carried a
        /// request (2.6's `SF_SRV_REUSED`). Once idle, it goes to the safe list.
        const SN_SRV_REUSED  = 0x0800;
        /// The connection began with a PROXY protocol header (`CO_FL_RCVD_PROXY`).
        const SN_RCVD_PROXY  = 0x1000;
        /// The server connection is this session's alone (2.6's `CO_FL_PRIVATE`): the
        /// server authenticated it (NTLM, Negotiate). Kept for as long as the connection.
        const SN_SRV_PRIVATE = 0x2000;
        /// The next requests go to the server of the kept connection when it is still
        /// usable (2.6's `SESS_FL_PREFER_LAST`).
        const SN_PREFER_LAST = 0x4000;
        /// A TCP frontend's session became HTTP (2.6's `SF_HTX` on a stream whose
        /// frontend is not in HTTP mode): `tcp-request content switch-mode http`, or an
        /// HTTP backend. Kept across the connection's transactions.
        const SN_HTX         = 0x8000;
    }
}

/// A server connection a session keeps idle between two of its transactions: private to
/// it (`http-reuse never`, `dispatch`, `option transparent`, or refused by the server's
/// idle lists), reused only by its next request to the same target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptConn {
    /// The server it leads to (`None` for a `dispatch` or transparent target).
    pub srv: Option<ServerId>,
    /// What it was opened with (`conn_calculate_hash`): only a request that would open
    /// the same connection may use it.
    pub hash: u64,
}

/// What `session_accept` did with a connection (HAProxy returns 1, 0 or -1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptResult {
    /// A session was created.
    Accepted,
    /// The connection was closed on purpose (e.g. a rule); keep accepting.
    Dropped,
    /// Resources ran out; the listener should pause.
    Failed,
}

/// `l->accept`: builds a session from an accepted connection.
pub type AcceptFn =
    fn(&mut Haproxy, ListenerId, Sock, Option<SocketAddr>, u32, tracing::Span) -> AcceptResult;

/// `s->srv_error`: turns a server-side failure into termination flags (and in HTTP, an
/// error page).
pub type SrvErrorFn = fn(&mut Haproxy, &mut Session, Side);

/// `s->logs`: dates and counters for the log line. Times are ms since accept (`-1` in
/// HAProxy when never reached; `None` here).
#[derive(Clone, Debug)]
pub struct SessLogs {
    /// Wall-clock date of the accept (`%t`, `%tr` uses `request_date`).
    pub accept_date: SystemTime,
    /// Date the current request started (keep-alive: reset per request).
    pub request_date: SystemTime,
    /// `now_ms` at accept (or at the start of the current request).
    pub tv_accept: Tick,
    /// Idle time before the request started (`%Ti`).
    pub t_idle: Option<u64>,
    /// Time to receive the full request head (`%TR`).
    pub t_request: Option<u64>,
    /// Time spent in queues (`%Tw`).
    pub t_queue: Option<u64>,
    /// Time to connect to the server (`%Tc`).
    pub t_connect: Option<u64>,
    /// Time until the response headers arrived (`%Tr` is `t_data - t_connect`).
    pub t_data: Option<u64>,
    /// Total time (`%Tt`/`%Ta`).
    pub t_close: Option<u64>,
    /// Bytes from the client.
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
    /// `rep` bytes already accounted to earlier transactions of this connection.
    pub bytes_out_base: u64,
    /// Server queue length when we entered it.
    pub srv_queue_size: u32,
    /// Backend queue length when we entered it.
    pub prx_queue_size: u32,
    /// Connection retries done for the current request (`%rc`), counted up as HAProxy 2.6
    /// does: 0 for a request that never needed a server (denied, malformed, timed out while
    /// being read). 1.5 derived the field from the countdown `si[1].conn_retries` and so
    /// printed the backend's `retries` for such requests.
    pub retries: u32,
    /// True once the log line was emitted (it is emitted once).
    pub logged: bool,
    /// `set-log-level`: the level of this transaction's log line (8: `silent`).
    pub level: Option<u8>,
}

/// `struct session`.
#[derive(Debug)]
// ANCHOR: struct_session
pub struct Session {
    /// Our slot in the session table (`fdtab[].owner` and the task refer to it).
    pub id: SessionId,
    /// `uniq_id`: session number since start, printed in logs, spans and `show sess`.
    pub uniq_id: u32,
    /// `SN_*` flags.
    pub flags: SessFlags,
    /// Why the session ended (first termination character).
    pub err: SnErr,
    /// Where it was when it ended (second termination character).
    pub finst: SnFinst,
    /// The listener that accepted the client.
    pub listener: ListenerId,
    /// The frontend.
    pub fe: ProxyId,
    /// The backend (the frontend itself until switching rules pick one).
    pub be: ProxyId,
    /// The assigned server (`s->target`).
    pub srv: Option<ServerId>,
    /// `s->srv_conn`: the server whose `served` counts this session (holds a slot).
    pub srv_conn: Option<ServerId>,
    /// Keep-alive: the connection `si[1].fd` still holds, idle, for this session's next
    /// request.
    pub idle_conn: Option<KeptConn>,
    /// The TLVs of the client connection's PROXY v2 header that haflow keeps (2.6's
    /// `conn->proxy_authority`, `conn->proxy_unique_id`); boxed: rarely there.
    pub pp_tlvs: Option<Box<crate::haproxy::frontend::PpTlvs>>,
    /// `conn_calculate_hash()` of the server connection in `si[1]` (2.6): the target and
    /// the PROXY header it was opened with.
    pub srv_conn_hash: u64,
    /// 2.6's `sess->srv_list`: idle connections to servers this session used before
    /// and left for another (a switch of backend), kept unpolled for when it comes back
    /// to them (at most `MAX_SRV_LIST`). 1.5 closed them; HAProxy 2.6 keeps them, and
    /// a server expecting its next request on the same connection sees that.
    /// Divergence: 2.6 keeps watching them for a close; here they are probed when taken
    /// back (`idle_conn_alive`).
    pub srv_list: Vec<(KeptConn, Fd)>,
    /// The server of the previous attempt, when redispatched (for the log).
    pub prev_srv: Option<ServerId>,
    /// True while the session waits in a queue (`s->pend_pos`).
    pub pend_pos: bool,
    /// Our task (`s->task`), whose `process` is `process_session`.
    pub task: TaskId,
    /// `si[0]` faces the client (born `SI_ST_EST`), `si[1]` the server (born `SI_ST_INI`).
    pub si: [StreamInterface; 2],
    /// `s->req`: client to server. Produced by `si[0]`, consumed by `si[1]`.
    pub req: Buffer,
    /// `s->rep`: server to client. Produced by `si[1]`, consumed by `si[0]`.
    pub rep: Buffer,
    /// The client's address (`si[0].addr.from`); `None` for UNIX sockets. This is 2.6's
    /// stream level (`s->scf->src`), what `src` and everything else reads: the session
    /// level's, until `tcp-request content`/`http-request set-src` change it for the
    /// current transaction only.
    pub cli_addr: Option<SocketAddr>,
    /// The address the client connected to (`si[0].addr.to`), once a PROXY protocol
    /// header or a rule said it (`SN_FRT_ADDR_SET`); else the client socket's own address.
    /// The stream level, like `cli_addr`.
    pub frt_addr: Option<SocketAddr>,
    /// 2.6's connection and session address levels, boxed once a PROXY header or a
    /// `set-src`/`set-dst` rule is about to make a level differ; `None`: every level is
    /// the stream's (see `addr_levels`), as in most sessions, which so pay 8 bytes.
    pub addr_levels: Option<Box<AddrLevels>>,
    /// The HTTP transaction (HTTP mode only).
    pub txn: HttpTxn,
    /// `s->comp_algo`: the compression chosen from the request, until the response
    /// confirms or cancels it (`None` without `compression`).
    pub comp_algo: Option<crate::haproxy::compression::CompAlgo>,
    /// The statistics page being sent (1.5.0's stats applet standing for the server,
    /// `si->applet`), while it does not fit in `rep` at once; `None` otherwise.
    pub stats_ctx: Option<Box<crate::haproxy::stats::HttpStatsCtx>>,
    /// `s->comp_ctx`: the response being compressed (from `pool_comp_ctx`).
    pub comp_ctx: Option<Box<crate::haproxy::compression::CompCtx>>,
    /// `http-request set-timeout server`: this session's server timeout (ms).
    pub timeout_server: Option<u64>,
    /// `http-request set-timeout tunnel`: this session's tunnel timeout (ms).
    pub timeout_tunnel: Option<u64>,
    /// The session's variables (`sess.`, `txn.`, `req.`, `res.`); empty until a rule
    /// sets one.
    pub vars: crate::haproxy::vars::SessVars,
    /// Dates and counters for the log.
    pub logs: SessLogs,
    /// The rule that ended the last rule list with a final action (`s->last_rule_file`,
    /// `s->last_rule_line`, 2.6): `accept`, `reject`, `allow`, `deny`, `return`...
    pub last_rule: Option<crate::haproxy::http_act::RuleConf>,
    /// When the current `inspect-delay` ends (`s->rules_exp`, 2.6; 1.5 kept it in
    /// `analyse_exp`, which the HTTP keep-alive timer also uses).
    pub rules_exp: crate::haproxy::time::Expire,
    /// `s->unique_id`: this transaction's id from the frontend's `unique-id-format`
    /// (the `unique-id` fetch, `%ID`, `unique-id-header`).
    pub unique_id: Option<Box<[u8]>>,
    /// `s->stkctr[]` and `s->store[]`, allocated by the first rule that tracks or stores:
    /// a configuration without stick tables does not pay for them in every session.
    pub stick: Option<Box<crate::haproxy::stick_table::SessStick>>,
    /// Bytes from and to the client already credited to the proxies' and server's byte
    /// counters by `session_process_counters`.
    pub counted: ByteMarks,
    /// `s->srv_error`: `default_srv_error` in TCP mode, `http_return_srv_error` in HTTP.
    pub srv_error: SrvErrorFn,
    /// The root span of this session's call-flow tree (closed by `session_free`).
    pub span: tracing::Span,
}
// ANCHOR_END: struct_session

/// Byte totals of a session's buffers up to some point.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteMarks {
    /// `req.total`: bytes read from the client.
    pub bytes_in: u64,
    /// `rep.forwarded()`: bytes forwarded to the client.
    pub bytes_out: u64,
}

/// 2.6's three levels of client addresses, the one a `set-src`/`set-dst` action changes
/// (`rule->from` in tcp_act.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrLevel {
    /// `tcp-request connection`: `conn->src`/`conn->dst`.
    Conn,
    /// `tcp-request session` (and the PROXY header): `sess->src`/`sess->dst`.
    Sess,
    /// `tcp-request content`, `http-request`: the stream's, this transaction only.
    Strm,
}

/// Which of the client's two addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrDir {
    /// Where the client comes from (`src`).
    Src = 0,
    /// Where the client connected to (`dst`).
    Dst = 1,
}

/// 2.6's connection level (`conn->src`/`conn->dst`) and session level (`sess->src`/
/// `sess->dst`), indexed by `AddrDir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrLevels {
    /// What `fc_src`/`fc_dst` read: the socket's addresses as `tcp-request connection
    /// set-src/set-dst` left them (`None` for `dst`: the socket's own address).
    pub conn: [Option<SocketAddr>; 2],
    /// The PROXY header's or `tcp-request session set-src/set-dst`'s; `None`: the
    /// connection level's.
    pub sess: [Option<SocketAddr>; 2],
}

impl Session {
    /// 2.6's `IS_HTX_STRM()`: the stream is HTTP, from its frontend's mode or an upgrade.
    pub fn is_htx(&self, w: &Haproxy) -> bool {
        self.flags.contains(SessFlags::SN_HTX) || w.proxies[self.fe.idx()].mode == ProxyMode::PR_MODE_HTTP
    }

    /// The stream-level address (`cli_addr` or `frt_addr`) as stored.
    fn strm_addr(&mut self, dir: AddrDir) -> &mut Option<SocketAddr> {
        match dir {
            AddrDir::Src => &mut self.cli_addr,
            AddrDir::Dst => &mut self.frt_addr,
        }
    }

    /// The connection and session levels' addresses; without `addr_levels` they are the
    /// stream's own, as accepted.
    pub fn addr_levels(&self) -> AddrLevels {
        self.addr_levels
            .as_deref()
            .copied()
            .unwrap_or(AddrLevels { conn: [self.cli_addr, self.frt_addr], sess: [None, None] })
    }

    /// The address levels, boxed from the stream's before a level changes.
    pub fn addr_levels_mut(&mut self) -> &mut AddrLevels {
        let lv = self.addr_levels();
        self.addr_levels.get_or_insert_with(|| Box::new(lv))
    }

    /// tcp_act.c:tcp_action_req_set_src()/set_dst() in 2.6: replaces the IP (`ip`) and/or
    /// port (`port`) of the `dir` address at `level`, keeping the rest; the levels below
    /// it that still follow it (all of them: rules run connection, session, then stream)
    /// see the change. Without an address (a UNIX client's source), setting the IP gives
    /// port 0 and setting the port alone does nothing.
    pub fn set_addr(
        &mut self,
        fdtab: &FdTab,
        level: AddrLevel,
        dir: AddrDir,
        ip: Option<std::net::IpAddr>,
        port: Option<u16>,
    ) {
        let d = dir as usize;
        let lv = self.addr_levels();
        let cur = match level {
            AddrLevel::Conn => lv.conn[d],
            AddrLevel::Sess => lv.sess[d].or(lv.conn[d]),
            AddrLevel::Strm => *self.strm_addr(dir),
        };
        let local = || self.si[0].fd.and_then(|fd| fdtab.local_addr(fd));
        let cur = if dir == AddrDir::Dst { cur.or_else(local) } else { cur };
        let new = match (ip, cur) {
            (Some(ip), cur) => SocketAddr::new(ip, port.or(cur.map(|a| a.port())).unwrap_or(0)),
            (None, Some(cur)) => SocketAddr::new(cur.ip(), port.unwrap_or(cur.port())),
            (None, None) => return,
        };
        let lv = self.addr_levels_mut();
        let strm = match level {
            AddrLevel::Conn => {
                lv.conn[d] = Some(new);
                lv.sess[d].or(Some(new))
            }
            AddrLevel::Sess => {
                lv.sess[d] = Some(new);
                Some(new)
            }
            AddrLevel::Strm => Some(new),
        };
        *self.strm_addr(dir) = strm;
    }

    /// A new transaction's stream starts from the session-level addresses (2.6 allocates
    /// a stream per request; `set-src` on the previous one is forgotten).
    pub fn reset_strm_addrs(&mut self) {
        if let Some(lv) = self.addr_levels.as_deref() {
            self.cli_addr = lv.sess[0].or(lv.conn[0]);
            self.frt_addr = lv.sess[1].or(lv.conn[1]);
        }
    }

    /// True when `fd` is this session's on `side`: its stream interface's, or an idle
    /// server connection kept aside (by the cache applet, or in `srv_list`).
    pub fn holds_fd(&self, side: Side, fd: Fd) -> bool {
        self.si[side as usize].fd == Some(fd)
            || (side == Side::Srv
                && (self.srv_list.iter().any(|&(_, f)| f == fd)
                    || self.si[1].appctx.as_ref().is_some_and(|a| a.idle_fd == Some(fd))))
    }

    /// A session accepted on `listener` of `fe` from `addr`, at `date` (`now`): both
    /// buffers sized `(bufsize, maxrewrite)`, `si[0]` established, `si[1]` not yet
    /// asked to connect, and no task yet.
    fn new(
        uniq_id: u32,
        listener: ListenerId,
        fe: ProxyId,
        (bufsize, maxrewrite): (usize, usize),
        addr: Option<SocketAddr>,
        (date, now): (SystemTime, Tick),
        root: tracing::Span,
    ) -> Session {
        Session {
            id: SessionId::default(),
            uniq_id,
            flags: SessFlags::empty(),
            err: SnErr::SN_ERR_NONE,
            finst: SnFinst::SN_FINST_NONE,
            listener,
            fe,
            be: fe,
            srv: None,
            srv_conn: None,
            idle_conn: None,
            pp_tlvs: None,
            srv_conn_hash: 0,
            srv_list: Vec::new(),
            prev_srv: None,
            pend_pos: false,
            task: TaskId::default(),
            si: [StreamInterface::new(SiState::SI_ST_EST), StreamInterface::new(SiState::SI_ST_INI)],
            req: Buffer::new(bufsize, maxrewrite),
            rep: Buffer::new(bufsize, maxrewrite),
            cli_addr: addr,
            frt_addr: None,
            addr_levels: None,
            txn: HttpTxn::default(),
            comp_algo: None,
            stats_ctx: None,
            comp_ctx: None,
            vars: Default::default(),
            timeout_server: None,
            timeout_tunnel: None,
            last_rule: None,
            rules_exp: TICK_ETERNITY,
            unique_id: None,
            logs: SessLogs {
                accept_date: date,
                request_date: date,
                tv_accept: now,
                t_idle: None,
                t_request: None,
                t_queue: None,
                t_connect: None,
                t_data: None,
                t_close: None,
                bytes_in: 0,
                bytes_out: 0,
                bytes_out_base: 0,
                srv_queue_size: 0,
                prx_queue_size: 0,
                retries: 0,
                logged: false,
                level: None,
            },
            counted: ByteMarks::default(),
            stick: None,
            srv_error: default_srv_error,
            span: root,
        }
    }

    /// `option http-no-delay` on the frontend or the backend: both buffers send at once,
    /// for the whole session (`BF_NEVER_WAIT` is permanent).
    fn set_never_wait(&mut self) {
        self.req.flags.insert(BufFlags::BF_NEVER_WAIT);
        self.rep.flags.insert(BufFlags::BF_NEVER_WAIT);
    }

    /// The input buffer of `side` (`si->ib`): `req` for the client, `rep` for the server.
    pub fn ib(&self, side: Side) -> &Buffer {
        match side {
            Side::Cli => &self.req,
            Side::Srv => &self.rep,
        }
    }

    /// `si->ib`, mutably.
    pub fn ib_mut(&mut self, side: Side) -> &mut Buffer {
        match side {
            Side::Cli => &mut self.req,
            Side::Srv => &mut self.rep,
        }
    }

    /// The output buffer of `side` (`si->ob`): `rep` for the client, `req` for the server.
    pub fn ob(&self, side: Side) -> &Buffer {
        match side {
            Side::Cli => &self.rep,
            Side::Srv => &self.req,
        }
    }

    /// `si->ob`, mutably.
    pub fn ob_mut(&mut self, side: Side) -> &mut Buffer {
        match side {
            Side::Cli => &mut self.rep,
            Side::Srv => &mut self.req,
        }
    }

    /// Accounts bytes read on `side` to the transaction (`%U`); the proxies and the server
    /// are credited by `session_process_counters`, once the request knows its server.
    pub fn count_bytes_in(&mut self, side: Side, n: usize) {
        if side == Side::Cli {
            self.logs.bytes_in += n as u64;
        }
    }

    /// Accounts bytes written on `side` to the transaction.
    pub fn count_bytes_out(&mut self, side: Side, n: usize) {
        if side == Side::Cli {
            self.logs.bytes_out += n as u64;
        }
    }

    /// Milliseconds since the session (or the current request) started.
    pub fn elapsed(&self, now: Tick) -> u64 {
        now.0.saturating_sub(self.logs.tv_accept.0)
    }

    /// Sets the error cause unless one is already recorded.
    pub fn set_err(&mut self, err: SnErr) {
        if self.err == SnErr::SN_ERR_NONE {
            self.err = err;
        }
    }

    /// Sets the final state unless one is already recorded.
    pub fn set_finst(&mut self, finst: SnFinst) {
        if self.finst == SnFinst::SN_FINST_NONE {
            self.finst = finst;
        }
    }
}

/// session.c:session_accept() in 1.5-dev8 (`l->accept`): create the session for a
/// connection `stream_sock_accept` just accepted. Allocates the session, its task and
/// both buffers, sets `si[0]` to `SI_ST_EST` (the client is connected) and `si[1]` to
/// `SI_ST_INI`, registers the client fd in `fdtab[]` with `stream_sock_read` /
/// `stream_sock_write`, calls the frontend's `accept` (`frontend_accept`) and wakes the
/// task with `TASK_WOKEN_INIT`. On failure, everything taken is given back.
pub fn session_accept(
    w: &mut Haproxy,
    lid: ListenerId,
    sock: Sock,
    addr: Option<SocketAddr>,
    uniq_id: u32,
    root: tracing::Span,
) -> AcceptResult {
    let span =
        tracing::info_span!(names::SESSION_ACCEPT, sess = uniq_id, listener = lid.0, cfd = sock.raw_fd());
    let _g = span.enter();
    let l = &w.listeners[lid.idx()];
    let fe = l.frontend;
    let analysers = l.analysers;
    let handler = l.handler.expect("check_config_validity sets l->handler");
    let (bufsize, maxrewrite) = (w.global.tune.bufsize, w.global.tune.maxrewrite.unwrap_or(1024));
    let now = w.clock.now_ms;
    let date = w.clock.date;

    // pool_alloc2(pool2_session)
    let alloc = {
        let _p = tracing::trace_span!(names::POOL_ALLOC2, pool = "session").entered();
        w.pool2_session
            .pool_alloc2(|| Session::new(uniq_id, lid, fe, (bufsize, maxrewrite), addr, (date, now), root))
    };
    let Some(mut s) = alloc else {
        return AcceptResult::Failed;
    };
    // task_new(): t->process = l->handler (process_session), t->context = s.
    let Some(t) = w.sched.task_new(handler, TaskContext::Global) else {
        w.pool2_session.pool_free2(s);
        return AcceptResult::Failed;
    };
    s.task = t;
    // LIST_ADDQ(&sessions, &s->list)
    let sid = SessionId::from(w.sessions.insert(s));
    let mut s = w.sessions.take(sid.idx()).expect("just inserted");
    s.id = sid;
    if let Some(task) = w.sched.get_mut(t) {
        task.context = TaskContext::Session(sid);
    }
    if w.proxies[fe.idx()].options.contains(ProxyOptions::PR_O_INDEPSTR) {
        for si in &mut s.si {
            si.flags.insert(SiFlags::SI_FL_INDEP_STR);
        }
    }
    w.proxies[fe.idx()].feconn += 1;
    let p = &mut w.proxies[fe.idx()];
    p.counters.cum_conn += 1;
    p.counters.cum_sess += 1;
    p.counters.conn_max = p.counters.conn_max.max(u64::from(p.feconn));

    // s->req = pool_alloc2(pool2_buffer); s->rep = pool_alloc2(pool2_buffer)
    let bufs_ok = {
        let _p = tracing::trace_span!(names::POOL_ALLOC2, pool = "buffer", count = 2).entered();
        s.req.b_alloc(&mut w.pool2_buffer) && s.rep.b_alloc(&mut w.pool2_buffer)
    };
    s.req.flags.insert(BufFlags::BF_READ_ATTACHED);
    s.req.analysers = analysers;
    if w.proxies[fe.idx()].options.contains(ProxyOptions::PR_O_NODELAY) {
        s.set_never_wait();
    }

    // fd_insert(cfd): cb[DIR_RD] = proto->read, cb[DIR_WR] = proto->write.
    let proto = w.listeners[lid.idx()].proto;
    let fd = if bufs_ok {
        w.fdtab
            .fd_insert(
                w.poller.registry(),
                sock,
                FdOwner::Si(sid, Side::Cli),
                [Some(proto.read), Some(proto.write)],
                FdState::FD_STREADY,
            )
            .ok()
    } else {
        None
    };
    let Some(fd) = fd else {
        session_accept_unwind(w, s);
        return AcceptResult::Failed;
    };
    s.si[0].fd = Some(fd);
    w.fdtab.fd_want_recv(fd);

    // `tcp-request connection` rules, then (without a PROXY header to wait for)
    // `tcp-request session` rules: a reject closes with a RST, and no session is logged.
    let tcp_req = &w.proxies[fe.idx()].tcp_req;
    let (l4, l5) = (!tcp_req.l4_rules.is_empty(), !tcp_req.l5_rules.is_empty());
    let wait_proxy = analysers.contains(Analysers::AN_REQ_DECODE_PROXY);
    if (l4 && !crate::haproxy::tcp_rules::tcp_exec_req_rules(w, &mut s))
        || (l5 && !wait_proxy && !crate::haproxy::tcp_rules::tcp_exec_l5_rules(w, &mut s))
    {
        if let Some(fd) = s.si[0].fd.take() {
            if let Some(Sock::Tcp(t)) = w.fdtab.sock(fd) {
                let _ = socket2::SockRef::from(&*t).set_linger(Some(std::time::Duration::ZERO));
            }
            w.fdtab.fd_delete(fd);
        }
        session_accept_unwind(w, s);
        return AcceptResult::Dropped;
    }

    // p->accept(s) == frontend_accept()
    let accept = w.proxies[fe.idx()].accept;
    if let Some(f) = accept
        && !f(w, &mut s)
    {
        if let Some(fd) = s.si[0].fd.take() {
            w.fdtab.fd_delete(fd);
        }
        session_accept_unwind(w, s);
        return AcceptResult::Dropped;
    }
    w.sched.task_wakeup(t, TaskState::TASK_WOKEN_INIT);
    s.flags.insert(SessFlags::SN_INITIALIZED);
    w.sessions.put_back(sid.idx(), s);
    AcceptResult::Accepted
}

/// The error unwinding of `session_accept`: give back buffers, task and session.
fn session_accept_unwind(w: &mut Haproxy, mut s: Box<Session>) {
    s.req.b_free(&mut w.pool2_buffer);
    s.rep.b_free(&mut w.pool2_buffer);
    s.req.release_pipe(&mut w.pipes);
    s.rep.release_pipe(&mut w.pipes);
    w.proxies[s.fe.idx()].feconn -= 1;
    w.sched.task_free(s.task);
    w.sessions.release_taken(s.id.idx());
    w.pool2_session.pool_free2(s);
}

/// What an analyser tells `process_session` (HAProxy's return 1 or 0, with the two
/// reasons for 0 told apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnalyserResult {
    /// Done for this pass: the next analyser of the list may run.
    Continue,
    /// Missing data to decide: stop the chain until the next wake-up. `process_session`
    /// set `BF_AUTO_CONNECT` before the pass: an analyser that waits before a server may
    /// be connected clears it first (`buffer_dont_connect`), as dev8's analysers do.
    Wait,
    /// The analyser ended the transaction (answered an error, aborted): stop the chain.
    Abort,
}

/// A request or response analyser, called with its own bit.
pub type AnalyserFn = fn(&mut Haproxy, &mut Session, Analysers) -> AnalyserResult;

// ANCHOR: analyser_tables
/// Request analysers in the order `process_session` calls them.
const REQ_ANALYSERS: &[(Analysers, AnalyserFn)] = &[
    (Analysers::AN_REQ_DECODE_PROXY, crate::haproxy::frontend::frontend_decode_proxy_request),
    (Analysers::AN_REQ_INSPECT_FE, crate::haproxy::tcp_rules::tcp_inspect_request),
    (Analysers::AN_REQ_WAIT_HTTP, proto_http::http_wait_for_request),
    (Analysers::AN_REQ_HTTP_PROCESS_FE, proto_http::http_process_req_common),
    (Analysers::AN_REQ_SWITCHING_RULES, process_switching_rules),
    (Analysers::AN_REQ_INSPECT_BE, crate::haproxy::tcp_rules::tcp_inspect_request),
    (Analysers::AN_REQ_HTTP_PROCESS_BE, proto_http::http_process_req_common),
    (Analysers::AN_REQ_SRV_RULES, process_server_rules),
    (Analysers::AN_REQ_HTTP_INNER, proto_http::http_process_request),
    (Analysers::AN_REQ_STICKING_RULES, crate::haproxy::stick_table::process_sticking_rules),
    (Analysers::AN_REQ_HTTP_XFER_BODY, proto_http::http_request_forward_body),
];

/// Response analysers in the order `process_session` calls them.
const RES_ANALYSERS: &[(Analysers, AnalyserFn)] = &[
    (Analysers::AN_RES_INSPECT, crate::haproxy::tcp_rules::tcp_inspect_response),
    (Analysers::AN_RES_WAIT_HTTP, proto_http::http_wait_for_response),
    (Analysers::AN_RES_STORE_RULES, crate::haproxy::stick_table::process_store_rules),
    (Analysers::AN_RES_HTTP_PROCESS_BE, proto_http::http_process_res_common),
    (Analysers::AN_RES_HTTP_XFER_BODY, proto_http::http_response_forward_body),
];
// ANCHOR_END: analyser_tables

/// Bound on analyser passes in one `process_session` run (`tune.maxpollevents`).
const MAX_ANALYSER_LOOPS: usize = 200;

/// Runs the analysers of one buffer in order, re-checking bits that analysers add
/// (HAProxy's `ANALYZE`/`UPDATE_ANALYSERS` loop). Returns after the first analyser that
/// waits.
fn run_analysers(w: &mut Haproxy, s: &mut Session, table: &[(Analysers, AnalyserFn)], req: bool) {
    let get = |s: &Session| if req { s.req.analysers } else { s.rep.analysers };
    let mut ana_list = get(s);
    let mut ana_back = ana_list;
    let mut loops = MAX_ANALYSER_LOOPS;
    'pass: while !ana_list.is_empty() && loops > 0 {
        loops -= 1;
        for &(bit, f) in table {
            if ana_list.contains(bit) {
                if f(w, s, bit) != AnalyserResult::Continue {
                    return;
                }
                // UPDATE_ANALYSERS: drop the one that ran, add those it enabled; as in
                // 1.5.0, one enabled before it (an HTTP backend's `AN_REQ_WAIT_HTTP` in a
                // TCP frontend) restarts the pass, so the analysers keep their order.
                let real = get(s);
                ana_list = ((ana_list - bit) | (real - ana_back)) & real;
                ana_back = real;
                if ana_list.bits() & ana_list.bits().wrapping_neg() < bit.bits() {
                    continue 'pass;
                }
            }
        }
    }
}

/// session.c:process_session() in 1.5-dev8 (`t->process`): the session's state machine,
/// run each time its task is woken. From 1.5.0 it takes the one-shot `BF_READ_NOEXP`,
/// `SI_FL_NOHALF` on a read timeout, `timeout tunnel`, `client-fin` and `server-fin`.
/// Divergence: a keep-alive reset (`http_end_txn_clean_session`) sets `BF_WAKE_ONCE`, so
/// the request analysers run again in this same call, even right after their own pass.
/// The flag is HAProxy's, but neither dev8 nor 1.5.0 sets it there: it re-runs an
/// `AN_REQ_WAIT_HTTP` parked in `rep->analysers` (and in 1.5.0 follows a connect asked
/// with `CF_WAKE_CONNECT`). Here the next pipelined request may already be in the
/// buffer, and no read event will come to wake the session for it.
/// Divergence: the analysers also run on every `TASK_WOKEN_INIT`, `_TIMER` or `_MSG`
/// wake-up (response side: `_TIMER`, `_MSG`), any change of an analyser-visible flag
/// counts, set or cleared (dev8: newly set ones), and a response pass that changes
/// something loops back through the request side (dev8: to `resync_response`). Before
/// each request analyser pass it sets `BF_AUTO_CONNECT`, as dev8 does, and an analyser
/// that must see more before a server is chosen holds the connection back with
/// `buffer_dont_connect`. Divergence: dev8 re-enables `auto_read` and `auto_close` there
/// too; here those two stay as the analysers leave them.
pub fn process_session(w: &mut Haproxy, t: TaskId) -> TaskRun {
    let Some(task) = w.sched.get(t) else { return TaskRun::Freed };
    let TaskContext::Session(sid) = task.context else { return TaskRun::Alive };
    let woken = task.state;
    let Some(mut s) = w.sessions.take(sid.idx()) else { return TaskRun::Alive };
    let span = tracing::debug_span!(
        parent: &s.span,
        names::PROCESS_SESSION,
        sess = s.uniq_id,
        woken = woken.coded(),
        si0 = s.si[0].state.coded(),
        si1_from = s.si[1].state.coded(),
        si1_to = tracing::field::Empty,
        req = tracing::field::Empty,
        rep = tracing::field::Empty,
    );
    let g = span.enter();
    crate::haproxy::step_point(names::PROCESS_SESSION, || crate::haproxy::View::Session(w, &s));
    let alive = process_session_run(w, &mut s, woken);
    session_process_counters(w, &mut s);
    // One update for the three (each `record` call is a record of its own).
    tracing::record_all!(
        span,
        si1_to = s.si[1].state.coded(),
        req = s.req.flags.coded(),
        rep = s.rep.flags.coded()
    );
    if alive {
        drop(g);
        drop(span);
        w.sessions.put_back(sid.idx(), s);
        TaskRun::Alive
    } else {
        // As in HAProxy, the end of the session is the end of this call: its log and
        // `session_free` nest under this `process_session`. The tree's root closes last.
        let root = session_end(w, s, &span);
        drop(g);
        drop(span);
        drop(root);
        TaskRun::Freed
    }
}

/// session.c:session_process_counters() in 1.5-dev8: credit the bytes moved since the
/// last call to the frontend, the backend and the server. Running at the end of
/// `process_session` rather than at each read is what lets a request's bytes count for the
/// backend and server that the analysers chose after reading it.
pub fn session_process_counters(w: &mut Haproxy, s: &mut Session) {
    // Output counts once forwarded (as `%B` does), not once written; an aborted output
    // that is erased unsent can make the sum shrink, hence the saturation.
    let out_now = s.rep.forwarded();
    let bytes_in = s.req.total.saturating_sub(s.counted.bytes_in);
    let bytes_out = out_now.saturating_sub(s.counted.bytes_out);
    if bytes_in == 0 && bytes_out == 0 {
        return;
    }
    s.counted = ByteMarks {
        bytes_in: s.req.total.max(s.counted.bytes_in),
        bytes_out: out_now.max(s.counted.bytes_out),
    };
    let proxies = if s.be != s.fe { [Some(s.fe), Some(s.be)] } else { [Some(s.fe), None] };
    for px in proxies.into_iter().flatten() {
        let c = &mut w.proxies[px.idx()].counters;
        c.bytes_in += bytes_in;
        c.bytes_out += bytes_out;
    }
    if let Some(srv) = s.srv {
        let c = &mut w.server_mut(srv).counters;
        c.bytes_in += bytes_in;
        c.bytes_out += bytes_out;
    }
    if s.stkctr().iter().any(Option::is_some) {
        crate::haproxy::stick_table::stkctr_count_bytes(w, s, bytes_in, bytes_out);
    }
}

/// The body of `process_session`; returns whether the session lives on.
fn process_session_run(w: &mut Haproxy, s: &mut Session, woken: TaskState) -> bool {
    let now = w.clock.now_ms;
    // `BF_READ_NOEXP` is one-shot, as in 1.5.0: an analyser sets it (the request is
    // complete) or the trick at the end does (the server is awaited); it is dropped only
    // when the request analysers run again or nobody analyses the request any more, so a
    // run that does not call them (a connection retry) keeps `timeout client` suspended.
    let mut rq_oneshot = s.req.flags & BufFlags::BF_READ_NOEXP;
    // Analyser-visible events that happened since the last run count as changes.
    let mut rqf_last = s.req.flags & !BufFlags::BF_MASK_ANALYSER;
    let mut rpf_last = s.rep.flags & !BufFlags::BF_MASK_ANALYSER;
    s.si[0].flags.insert(SiFlags::SI_FL_DONT_WAKE);
    s.si[1].flags.insert(SiFlags::SI_FL_DONT_WAKE);

    // 1. Timeouts.
    if woken.contains(TaskState::TASK_WOKEN_TIMER) {
        for side in [Side::Cli, Side::Srv] {
            if tick_is_expired(s.si[side as usize].exp, now) {
                s.si[side as usize].flags.insert(SiFlags::SI_FL_EXP);
            }
        }
        buffer_check_timeouts(&mut s.req, now);
        buffer_check_timeouts(&mut s.rep, now);
        for (buf_is_req, cons, prod) in [(true, Side::Srv, Side::Cli), (false, Side::Cli, Side::Srv)] {
            let b = if buf_is_req { &s.req } else { &s.rep };
            let (wto, rto) = (
                (b.flags & (BufFlags::BF_SHUTW | BufFlags::BF_WRITE_TIMEOUT)) == BufFlags::BF_WRITE_TIMEOUT,
                (b.flags & (BufFlags::BF_SHUTR | BufFlags::BF_READ_TIMEOUT)) == BufFlags::BF_READ_TIMEOUT,
            );
            if wto {
                s.si[cons as usize].flags.insert(SiFlags::SI_FL_NOLINGER);
                si_shutw(w, s, cons);
            }
            if rto {
                if s.si[prod as usize].flags.contains(SiFlags::SI_FL_NOHALF) {
                    s.si[prod as usize].flags.insert(SiFlags::SI_FL_NOLINGER);
                }
                si_shutr(w, s, prod);
            }
        }
    }

    // 3. Low-level errors reported by the I/O callbacks.
    if s.si[0].flags.contains(SiFlags::SI_FL_ERR)
        && matches!(s.si[0].state, SiState::SI_ST_EST | SiState::SI_ST_DIS)
    {
        s.si[0].flags.remove(SiFlags::SI_FL_ERR);
        si_shutr(w, s, Side::Cli);
        si_shutw(w, s, Side::Cli);
        stream_int_report_error(s, Side::Cli);
        // While an analyser is pending, it sees the error flags and reports it itself.
        if s.req.analysers.is_empty() && s.rep.analysers.is_empty() {
            count_abort(w, s, Side::Cli);
            s.set_err(SnErr::SN_ERR_CLICL);
            s.set_finst(SnFinst::SN_FINST_D);
        }
    }
    if s.si[1].flags.contains(SiFlags::SI_FL_ERR)
        && matches!(s.si[1].state, SiState::SI_ST_EST | SiState::SI_ST_DIS)
    {
        s.si[1].flags.remove(SiFlags::SI_FL_ERR);
        si_shutr(w, s, Side::Srv);
        si_shutw(w, s, Side::Srv);
        stream_int_report_error(s, Side::Srv);
        w.proxies[s.be.idx()].counters.failed_resp += 1;
        if let Some(srv) = s.srv {
            w.server_mut(srv).counters.failed_resp += 1;
        }
        if s.req.analysers.is_empty() && s.rep.analysers.is_empty() {
            count_abort(w, s, Side::Srv);
            s.set_err(SnErr::SN_ERR_SRVCL);
            s.set_finst(SnFinst::SN_FINST_D);
        }
    }

    // 4. A connection in progress.
    if s.si[1].state == SiState::SI_ST_CON {
        if !sess_update_st_con_tcp(w, s) {
            sess_update_st_cer(w, s);
        } else if s.si[1].state == SiState::SI_ST_EST {
            sess_establish(w, s);
        }
    }

    let mut loops = 0;
    'resync_stream_interface: loop {
        loops += 1;
        if loops > MAX_ANALYSER_LOOPS {
            break;
        }
        // 5. SI_ST_DIS -> SI_ST_CLO on both sides.
        if s.si[0].state == SiState::SI_ST_DIS {
            s.si[0].set_state(SiState::SI_ST_CLO);
        }
        if s.si[1].state == SiState::SI_ST_DIS {
            s.si[1].set_state(SiState::SI_ST_CLO);
            srv_release_conn(w, s);
            sess_change_server(w, s, None);
        }

        // 6. Request analysers.
        let mut req_loops = 0;
        'resync_request: loop {
            req_loops += 1;
            if req_loops > MAX_ANALYSER_LOOPS {
                break;
            }
            let changed = (s.req.flags & (BufFlags::BF_MASK_ANALYSER | BufFlags::BF_MASK_STATIC))
                != (rqf_last & (BufFlags::BF_MASK_ANALYSER | BufFlags::BF_MASK_STATIC))
                || s.si[0].state != s.si[0].prev_state
                || s.si[1].state != s.si[1].prev_state
                || woken.intersects(
                    TaskState::TASK_WOKEN_INIT | TaskState::TASK_WOKEN_TIMER | TaskState::TASK_WOKEN_MSG,
                );
            if changed && s.si[0].state >= SiState::SI_ST_EST && !s.req.analysers.is_empty() {
                s.req.flags.remove(std::mem::take(&mut rq_oneshot));
                // It is up to the analysers to stop the connection (`buffer_dont_connect`).
                s.req.buffer_auto_connect();
                let flags_before = s.req.flags & BufFlags::BF_MASK_STATIC;
                s.req.flags.remove(BufFlags::BF_WAKE_ONCE);
                run_analysers(w, s, REQ_ANALYSERS, true);
                // A transaction that ended in there (a local answer) re-armed the analysers
                // with `BF_WAKE_ONCE`: a pipelined request may be waiting in the buffer.
                if (s.req.flags & BufFlags::BF_MASK_STATIC) != flags_before
                    || s.req.flags.contains(BufFlags::BF_WAKE_ONCE)
                {
                    rqf_last = s.req.flags - BufFlags::BF_WAKE_ONCE;
                    continue 'resync_request;
                }
            }
            rqf_last = s.req.flags;

            // 7. Response analysers.
            let changed = (s.rep.flags & (BufFlags::BF_MASK_ANALYSER | BufFlags::BF_MASK_STATIC))
                != (rpf_last & (BufFlags::BF_MASK_ANALYSER | BufFlags::BF_MASK_STATIC))
                || s.si[0].state != s.si[0].prev_state
                || s.si[1].state != s.si[1].prev_state
                || woken.intersects(TaskState::TASK_WOKEN_TIMER | TaskState::TASK_WOKEN_MSG);
            if changed && s.si[1].state >= SiState::SI_ST_EST && !s.rep.analysers.is_empty() {
                let req_ana = s.req.analysers;
                let flags_before = s.rep.flags & BufFlags::BF_MASK_STATIC;
                run_analysers(w, s, RES_ANALYSERS, false);
                if (s.rep.flags & BufFlags::BF_MASK_STATIC) != flags_before {
                    rpf_last = s.rep.flags;
                    continue 'resync_request;
                }
                // Keep-alive: the end of a transaction restarts the request analysers.
                if s.req.analysers != req_ana && !s.req.analysers.is_empty() {
                    rpf_last = s.rep.flags;
                    continue 'resync_request;
                }
            }
            rpf_last = s.rep.flags;
            break;
        }

        // 8. Report errors seen on the buffers as the session's termination cause.
        report_buffer_errors(w, s);

        // 9. Nobody analyses the request any more: forward everything.
        if s.req.analysers.is_empty() {
            s.req.flags.remove(std::mem::take(&mut rq_oneshot));
        }
        if s.req.analysers.is_empty()
            && !s.req.flags.intersects(BufFlags::BF_SHUTW | BufFlags::BF_SHUTR_NOW)
            && s.si[0].state >= SiState::SI_ST_EST
            && s.req.to_forward != BUF_INFINITE_FORWARD
        {
            s.req.buffer_auto_read();
            s.req.buffer_auto_connect();
            s.req.buffer_auto_close();
            s.req.buffer_forward(BUF_INFINITE_FORWARD);
        }

        // The request may go through a pipe from here (1.5-dev8's splicing test).
        if may_splice(w, s, Side::Cli) {
            s.req.flags.insert(BufFlags::BF_KERN_SPLICING);
        }

        // 10. Shutdown propagation, request side.
        let fe_timeout = w.proxies[s.fe.idx()].timeout;
        let be_timeout = w.proxies[s.be.idx()].timeout;
        if (s.req.flags
            & (BufFlags::BF_SHUTW | BufFlags::BF_SHUTW_NOW | BufFlags::BF_AUTO_CLOSE | BufFlags::BF_SHUTR))
            == (BufFlags::BF_AUTO_CLOSE | BufFlags::BF_SHUTR)
        {
            s.req.buffer_shutw_now();
        }
        if (s.req.flags & (BufFlags::BF_SHUTW | BufFlags::BF_SHUTW_NOW)) == BufFlags::BF_SHUTW_NOW
            && s.req.is_empty()
        {
            if s.req.flags.contains(BufFlags::BF_READ_ERROR) {
                s.si[1].flags.insert(SiFlags::SI_FL_NOLINGER);
            }
            si_shutw(w, s, Side::Srv);
            if be_timeout.server_fin.is_some() && !s.rep.flags.contains(BufFlags::BF_SHUTR) {
                s.rep.rto = be_timeout.server_fin;
                s.rep.rex = tick_add_ifset(now, s.rep.rto);
            }
        }
        if (s.req.flags & (BufFlags::BF_SHUTW | BufFlags::BF_SHUTR | BufFlags::BF_SHUTR_NOW))
            == BufFlags::BF_SHUTW
            && s.req.analysers.is_empty()
        {
            s.req.buffer_shutr_now();
        }
        if (s.req.flags & (BufFlags::BF_SHUTR | BufFlags::BF_SHUTR_NOW)) == BufFlags::BF_SHUTR_NOW {
            if s.si[0].flags.contains(SiFlags::SI_FL_NOHALF) {
                s.si[0].flags.insert(SiFlags::SI_FL_NOLINGER);
            }
            si_shutr(w, s, Side::Cli);
        }

        // ANCHOR: connect_loop
        // 11. Connection set-up: INI -> REQ once there is something to send.
        if s.si[1].state == SiState::SI_ST_INI {
            if !s.req.flags.contains(BufFlags::BF_SHUTW) {
                if s.req.flags.contains(BufFlags::BF_AUTO_CONNECT) || s.req.o() > 0 {
                    s.si[1].set_state(SiState::SI_ST_REQ);
                    s.si[1].conn_retries = w.proxies[s.be.idx()].conn_retries;
                }
            } else {
                // shutw + INI = abort: nothing will ever be connected.
                s.si[1].set_state(SiState::SI_ST_CLO);
                s.req.buffer_shutw_now();
                s.rep.buffer_shutr_now();
            }
        }
        while matches!(
            s.si[1].state,
            SiState::SI_ST_REQ | SiState::SI_ST_QUE | SiState::SI_ST_TAR | SiState::SI_ST_ASS
        ) {
            if s.si[1].state != SiState::SI_ST_REQ {
                sess_update_stream_int(w, s);
            }
            if s.si[1].state == SiState::SI_ST_REQ {
                sess_prepare_conn_req(w, s);
            }
            if s.si[1].state == SiState::SI_ST_CER {
                sess_update_st_cer(w, s);
            }
            if s.si[1].state != SiState::SI_ST_ASS {
                break;
            }
        }
        // ANCHOR_END: connect_loop
        if s.si[1].state == SiState::SI_ST_CON
            && s.req.flags.intersects(BufFlags::BF_WRITE_NULL | BufFlags::BF_WRITE_PARTIAL)
            && sess_update_st_con_tcp(w, s)
            && s.si[1].state == SiState::SI_ST_EST
        {
            // The connection is up already: a reused keep-alive one, or a connect() that
            // the first write found done.
            sess_establish(w, s);
        }

        // 12. Response side: forwarding and shutdown propagation.
        if s.rep.analysers.is_empty()
            && !s.rep.flags.intersects(BufFlags::BF_SHUTW | BufFlags::BF_SHUTR_NOW)
            && s.si[1].state >= SiState::SI_ST_EST
            && s.rep.to_forward != BUF_INFINITE_FORWARD
        {
            s.rep.buffer_auto_read();
            s.rep.buffer_auto_close();
            s.rep.buffer_forward(BUF_INFINITE_FORWARD);
            // Nobody analyses either direction any more: a tunnel (TCP mode, or HTTP
            // after a protocol switch), idle under `timeout tunnel` when it is set, with
            // the half-closed timeouts still winning on a closed side (1.5.0).
            if s.req.analysers.is_empty()
                && let Some(tunnel) = s.timeout_tunnel.or(be_timeout.tunnel)
            {
                s.req.rto = Some(tunnel);
                s.req.wto = Some(tunnel);
                s.rep.rto = Some(tunnel);
                s.rep.wto = Some(tunnel);
                if s.req.flags.contains(BufFlags::BF_SHUTR) && fe_timeout.client_fin.is_some() {
                    s.rep.wto = fe_timeout.client_fin;
                }
                if s.req.flags.contains(BufFlags::BF_SHUTW) && be_timeout.server_fin.is_some() {
                    s.rep.rto = be_timeout.server_fin;
                }
                if s.rep.flags.contains(BufFlags::BF_SHUTR) && be_timeout.server_fin.is_some() {
                    s.req.wto = be_timeout.server_fin;
                }
                if s.rep.flags.contains(BufFlags::BF_SHUTW) && fe_timeout.client_fin.is_some() {
                    s.req.rto = fe_timeout.client_fin;
                }
                s.req.rex = tick_add_ifset(now, s.req.rto);
                s.req.wex = tick_add_ifset(now, s.req.wto);
                s.rep.rex = tick_add_ifset(now, s.rep.rto);
                s.rep.wex = tick_add_ifset(now, s.rep.wto);
            }
        }
        if may_splice(w, s, Side::Srv) {
            s.rep.flags.insert(BufFlags::BF_KERN_SPLICING);
        }
        if (s.rep.flags
            & (BufFlags::BF_SHUTW | BufFlags::BF_SHUTW_NOW | BufFlags::BF_AUTO_CLOSE | BufFlags::BF_SHUTR))
            == (BufFlags::BF_AUTO_CLOSE | BufFlags::BF_SHUTR)
        {
            s.rep.buffer_shutw_now();
        }
        if (s.rep.flags & (BufFlags::BF_SHUTW | BufFlags::BF_SHUTW_NOW)) == BufFlags::BF_SHUTW_NOW
            && s.rep.is_empty()
        {
            si_shutw(w, s, Side::Cli);
            if fe_timeout.client_fin.is_some() && !s.req.flags.contains(BufFlags::BF_SHUTR) {
                s.req.rto = fe_timeout.client_fin;
                s.req.rex = tick_add_ifset(now, s.req.rto);
            }
        }
        if (s.rep.flags & (BufFlags::BF_SHUTW | BufFlags::BF_SHUTR | BufFlags::BF_SHUTR_NOW))
            == BufFlags::BF_SHUTW
            && s.rep.analysers.is_empty()
        {
            s.rep.buffer_shutr_now();
        }
        if (s.rep.flags & (BufFlags::BF_SHUTR | BufFlags::BF_SHUTR_NOW)) == BufFlags::BF_SHUTR_NOW {
            if s.si[1].flags.contains(SiFlags::SI_FL_NOHALF) {
                s.si[1].flags.insert(SiFlags::SI_FL_NOLINGER);
            }
            si_shutr(w, s, Side::Srv);
        }

        // 13. A stream interface just closed: resync everything once more.
        if s.si[0].state == SiState::SI_ST_DIS || s.si[1].state == SiState::SI_ST_DIS {
            continue 'resync_stream_interface;
        }
        if (s.req.flags ^ rqf_last).intersects(BufFlags::BF_MASK_STATIC)
            || (s.rep.flags ^ rpf_last).intersects(BufFlags::BF_MASK_STATIC)
        {
            rqf_last = s.req.flags & !BufFlags::BF_MASK_STATIC;
            rpf_last = s.rep.flags & !BufFlags::BF_MASK_STATIC;
            continue 'resync_stream_interface;
        }
        break;
    }

    // 15. Both sides closed: the session is over.
    let srv_done = matches!(s.si[1].state, SiState::SI_ST_INI | SiState::SI_ST_CLO);
    if s.si[0].state == SiState::SI_ST_CLO && srv_done {
        return false;
    }

    // 1.5.0's si_applet_call(): the stats applet writes what the client buffer takes of
    // the page; once it is all out, a pipelined request may be analysed.
    if s.stats_ctx.is_some() && crate::haproxy::stats::http_stats_io_handler(w, s) && s.req.i() > 0 {
        // The request analysers run again for the request waiting behind the page.
        s.req.flags.insert(BufFlags::BF_WAKE_ONCE);
        w.sched.task_wakeup(s.task, TaskState::TASK_WOKEN_MSG);
    }
    // 14. Leave: poll for what each side needs and arm the task's timer.
    stream_sock_data_finish(w, s, Side::Srv);
    stream_sock_data_finish(w, s, Side::Cli);
    // The "trick" of 1.5-dev8: while the server has a timeout running and its response
    // is still awaited, the client's read timeout is suspended, so that `timeout client`
    // cannot fire while the server thinks; request bytes still flow (a POST body).
    if !s.rep.flags.intersects(BufFlags::BF_AUTO_CLOSE | BufFlags::BF_SHUTR)
        && (s.req.wex.is_some() || s.rep.rex.is_some())
    {
        s.req.flags.insert(BufFlags::BF_READ_NOEXP);
        s.req.rex = TICK_ETERNITY;
    }
    s.req.flags.remove(BufFlags::BF_ONE_SHOT);
    s.rep.flags.remove(BufFlags::BF_ONE_SHOT);
    for si in &mut s.si {
        si.prev_state = si.state;
        si.flags.remove(SiFlags::SI_FL_DONT_WAKE | SiFlags::SI_FL_EXP | SiFlags::SI_FL_ERR);
    }
    // 1.5.0's si_applet_call(): an applet standing for the server writes what it can;
    // when it did something, the session runs again to analyse it.
    if s.si[1].state == SiState::SI_ST_EST && s.si[1].appctx.is_some() {
        let date = crate::haproxy::cache::unix_secs(w.clock.date);
        if crate::haproxy::cache::http_cache_io_handler(s, &mut w.pool2_buffer, date) {
            w.sched.task_wakeup(s.task, TaskState::TASK_WOKEN_IO);
        }
    }
    let mut exp = tick_first(s.req.rex, s.req.wex);
    exp = tick_first(exp, tick_first(s.rep.rex, s.rep.wex));
    // An analyser's deadline only matters while analysers remain (as in HAProxy).
    if !s.req.analysers.is_empty() {
        exp = tick_first(exp, s.req.analyse_exp);
    }
    if !s.rep.analysers.is_empty() {
        exp = tick_first(exp, s.rep.analyse_exp);
    }
    exp = tick_first(exp, tick_first(s.si[0].exp, s.si[1].exp));
    if let Some(task) = w.sched.get_mut(s.task) {
        task.expire = exp;
    }
    true
}

/// The test of session.c:process_session() in 1.5-dev8 ("check if it is wise to enable
/// kernel splicing") for the buffer `from` produces into (`req` for the client, `rep`
/// for the server): bytes are to be forwarded, splicing is allowed (`nosplice`, `-dS`),
/// both sides are TCP sockets (dev8's `SI_FL_CAP_SPLICE`), a pipe is left, and the
/// frontend or backend asks for it in that direction (`option splice-request`,
/// `splice-response`), or for any fast streamer (`splice-auto`).
/// Divergence: the server connection must be established, not merely assigned: bytes
/// in a pipe cannot be sent again to another server after a failed connect.
fn may_splice(w: &Haproxy, s: &Session, from: Side) -> bool {
    let buf = s.ib(from);
    if buf.flags.intersects(BufFlags::BF_KERN_SPLICING | BufFlags::BF_SHUTR)
        || buf.to_forward == 0
        || !w.global.tune.use_splice
        || w.pipes.pipes_used >= w.pipes.maxpipes
        || s.si[1].state != SiState::SI_ST_EST
    {
        return false;
    }
    let tcp = |side: Side| {
        s.si[side as usize].fd.and_then(|fd| w.fdtab.get(fd)).is_some_and(|e| matches!(e.sock, Sock::Tcp(_)))
    };
    if !tcp(Side::Cli) || !tcp(Side::Srv) {
        return false;
    }
    let opts = w.proxies[s.fe.idx()].options | w.proxies[s.be.idx()].options;
    let wanted =
        if from == Side::Cli { ProxyOptions::PR_O2_SPLIC_REQ } else { ProxyOptions::PR_O2_SPLIC_RTR };
    opts.intersects(wanted)
        || (opts.contains(ProxyOptions::PR_O2_SPLIC_AUT) && buf.flags.contains(BufFlags::BF_STREAMER_FAST))
}

/// buffers.h:buffer_check_timeouts() in 1.5-dev8: turn expired buffer timers into
/// `BF_*_TIMEOUT`.
fn buffer_check_timeouts(b: &mut Buffer, now: Tick) {
    if !b.flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_READ_TIMEOUT | BufFlags::BF_READ_NOEXP)
        && tick_is_expired(b.rex, now)
    {
        b.flags.insert(BufFlags::BF_READ_TIMEOUT);
    }
    if !b.flags.intersects(BufFlags::BF_SHUTW | BufFlags::BF_WRITE_TIMEOUT) && tick_is_expired(b.wex, now) {
        b.flags.insert(BufFlags::BF_WRITE_TIMEOUT);
    }
    if !b.flags.contains(BufFlags::BF_ANA_TIMEOUT) && tick_is_expired(b.analyse_exp, now) {
        b.flags.insert(BufFlags::BF_ANA_TIMEOUT);
    }
}

/// stream_interface.c:stream_int_report_error() in 1.5-dev8: a low-level error on a
/// stream interface becomes a read error on its input and a write error on its output.
fn stream_int_report_error(s: &mut Session, side: Side) {
    let si = &mut s.si[side as usize];
    if si.err_type.is_empty() {
        si.err_type = SiErrType::SI_ET_DATA_ERR;
    }
    s.ob_mut(side).flags.insert(BufFlags::BF_WRITE_ERROR);
    s.ib_mut(side).flags.insert(BufFlags::BF_READ_ERROR);
}

/// Counts an abort by the client (`Side::Cli`) or the server on the frontend, the
/// backend and the server, as every abort site of session.c does.
pub fn count_abort(w: &mut Haproxy, s: &Session, side: Side) {
    let bump = |c: &mut u64, v: &mut u64| if side == Side::Cli { *c += 1 } else { *v += 1 };
    // A `listen` section is its own frontend and backend, with one set of counters.
    let pxs = if s.fe == s.be { &[s.be][..] } else { &[s.fe, s.be][..] };
    for px in pxs {
        let c = &mut w.proxies[px.idx()].counters;
        bump(&mut c.cli_aborts, &mut c.srv_aborts);
    }
    if let Some(srv) = s.srv {
        let c = &mut w.server_mut(srv).counters;
        bump(&mut c.cli_aborts, &mut c.srv_aborts);
    }
}

/// Step 8 of `process_session` (the unnamed block after the analysers, 1.5-dev8 and
/// 1.5.0): an error or timeout no analyser reported becomes the session's `SN_ERR_*`
/// cause, the request side first, then the response side; the side's analysers stop.
fn report_buffer_errors(w: &mut Haproxy, s: &mut Session) {
    let err_mask = BufFlags::BF_READ_ERROR
        | BufFlags::BF_READ_TIMEOUT
        | BufFlags::BF_WRITE_ERROR
        | BufFlags::BF_WRITE_TIMEOUT;
    if s.err != SnErr::SN_ERR_NONE {
        return;
    }
    // Which side's fault each flag is depends on the buffer's direction: a read error on
    // the request is the client's, a write error on it the server's.
    let (f, producer, consumer) = if s.req.flags.intersects(err_mask) {
        s.req.analysers = Analysers::empty();
        (s.req.flags, Side::Cli, Side::Srv)
    } else if s.rep.flags.intersects(err_mask) {
        s.rep.analysers = Analysers::empty();
        (s.rep.flags, Side::Srv, Side::Cli)
    } else {
        return;
    };
    let (side, closed) = if f.contains(BufFlags::BF_READ_ERROR) {
        (producer, true)
    } else if f.contains(BufFlags::BF_READ_TIMEOUT) {
        (producer, false)
    } else if f.contains(BufFlags::BF_WRITE_ERROR) {
        (consumer, true)
    } else {
        (consumer, false)
    };
    count_abort(w, s, side);
    s.set_err(match (side, closed) {
        (Side::Cli, true) => SnErr::SN_ERR_CLICL,
        (Side::Cli, false) => SnErr::SN_ERR_CLITO,
        (Side::Srv, true) => SnErr::SN_ERR_SRVCL,
        (Side::Srv, false) => SnErr::SN_ERR_SRVTO,
    });
    sess_set_term_flags(w, s);
}

/// session.c:sess_set_term_flags() in 1.5-dev8: the final state from where the server
/// side stands, when no analyser set one; a session that never asked for a server is a
/// failed request.
fn sess_set_term_flags(w: &mut Haproxy, s: &mut Session) {
    if s.finst != SnFinst::SN_FINST_NONE {
        return;
    }
    let si = &s.si[1];
    s.finst = if si.state < SiState::SI_ST_REQ {
        w.proxies[s.fe.idx()].counters.failed_req += 1;
        SnFinst::SN_FINST_R
    } else if si.state == SiState::SI_ST_QUE {
        SnFinst::SN_FINST_Q
    } else if si.state < SiState::SI_ST_EST {
        SnFinst::SN_FINST_C
    } else if si.state == SiState::SI_ST_EST || si.prev_state == SiState::SI_ST_EST {
        SnFinst::SN_FINST_D
    } else {
        SnFinst::SN_FINST_L
    };
}

/// session.c:default_srv_error() in 1.5-dev8 (TCP mode `s->srv_error`): the server side
/// failed before exchanging data; record why in the termination flags.
pub fn default_srv_error(_w: &mut Haproxy, s: &mut Session, side: Side) {
    let et = s.si[side as usize].err_type;
    let (err, finst) = srv_error_flags(et);
    s.set_err(err);
    s.set_finst(finst);
}

// ANCHOR: srv_error_flags
/// The `SN_ERR_*`/`SN_FINST_*` pair for a server-side error type (shared by TCP and HTTP).
pub fn srv_error_flags(et: SiErrType) -> (SnErr, SnFinst) {
    if et.contains(SiErrType::SI_ET_QUEUE_ABRT) {
        (SnErr::SN_ERR_CLICL, SnFinst::SN_FINST_Q)
    } else if et.contains(SiErrType::SI_ET_CONN_ABRT) {
        (SnErr::SN_ERR_CLICL, SnFinst::SN_FINST_C)
    } else if et.contains(SiErrType::SI_ET_QUEUE_TO) {
        (SnErr::SN_ERR_SRVTO, SnFinst::SN_FINST_Q)
    } else if et.contains(SiErrType::SI_ET_QUEUE_ERR) {
        (SnErr::SN_ERR_SRVCL, SnFinst::SN_FINST_Q)
    } else if et.contains(SiErrType::SI_ET_CONN_TO) {
        (SnErr::SN_ERR_SRVTO, SnFinst::SN_FINST_C)
    } else if et.contains(SiErrType::SI_ET_CONN_ERR) {
        (SnErr::SN_ERR_SRVCL, SnFinst::SN_FINST_C)
    } else if et.contains(SiErrType::SI_ET_CONN_RES) {
        (SnErr::SN_ERR_RESOURCE, SnFinst::SN_FINST_C)
    } else {
        (SnErr::SN_ERR_INTERNAL, SnFinst::SN_FINST_C)
    }
}
// ANCHOR_END: srv_error_flags

/// session.c:sess_prepare_conn_req() in 1.5-dev8: `SI_ST_REQ` -> pick a server (or a
/// queue): `SI_ST_ASS`, `SI_ST_QUE`, or `SI_ST_CLO` with an error when none is available.
pub fn sess_prepare_conn_req(w: &mut Haproxy, s: &mut Session) {
    let span = tracing::debug_span!(
        names::SESS_PREPARE_CONN_REQ,
        sess = s.uniq_id,
        from = s.si[1].state.coded(),
        to = tracing::field::Empty,
        backend = w.proxies[s.be.idx()].name.as_str()
    );
    let _g = span.enter();
    if s.si[1].state != SiState::SI_ST_REQ {
        return;
    }
    let now = w.clock.now_ms;
    if s.si[1].appctx.is_some() {
        // 1.5.0: an applet (here the cache) directly goes to the EST state; the
        // connection is established at once (1.5.0 calls `sess_establish` right after).
        s.logs.t_queue = Some(s.elapsed(now));
        // An idle server connection of the previous transaction waits aside, untouched.
        let idle = s.si[1].fd.take();
        if let Some(a) = s.si[1].appctx.as_deref_mut() {
            a.idle_fd = idle;
        }
        s.si[1].set_state(SiState::SI_ST_EST);
        span.record("to", s.si[1].state.coded());
        sess_establish(w, s);
        return;
    }
    match srv_redispatch_connect(w, s) {
        SrvStatus::Ok => {
            // The server is assigned: the queue time (`%Tw`) ends here, and the connect
            // time (`%Tc`) counts from here, retries on this server included. A session
            // redispatched after failed attempts comes back here and starts both again.
            s.logs.t_queue = Some(s.elapsed(now));
            s.si[1].set_state(SiState::SI_ST_ASS)
        }
        SrvStatus::Queued => {
            s.si[1].exp = tick_add_ifset(now, w.proxies[s.be.idx()].queue_timeout());
            s.si[1].set_state(SiState::SI_ST_QUE);
        }
        status => {
            let et = match status {
                SrvStatus::Full => SiErrType::SI_ET_QUEUE_ERR,
                SrvStatus::Internal => SiErrType::SI_ET_CONN_OTHER,
                _ => SiErrType::SI_ET_CONN_ERR,
            };
            if s.si[1].err_type.is_empty() {
                s.si[1].err_type = et;
            }
            sess_abort_srv(w, s, SiErrType::empty());
        }
    }
    span.record("to", s.si[1].state.coded());
}

/// A connection that will never be made: counted on the server (if any) and the backend
/// (`failed_conns`, `econ` in `show stat`).
fn count_failed_conn(w: &mut Haproxy, s: &Session) {
    if let Some(srv) = s.srv {
        w.server_mut(srv).counters.failed_conns += 1;
    }
    w.proxies[s.be.idx()].counters.failed_conns += 1;
}

/// Gives up on the server side, as every failure site of `sess_prepare_conn_req`,
/// `sess_update_stream_int` and `sess_update_st_cer` does: record `et` (when not empty),
/// close `si[1]` (`SI_ST_CLO`), mark the request unsendable and the response unreadable,
/// and let `srv_error` say why (the 503/504 or the termination flags).
fn sess_abort_srv(w: &mut Haproxy, s: &mut Session, et: SiErrType) {
    s.si[1].err_type |= et;
    s.si[1].set_state(SiState::SI_ST_CLO);
    s.req.flags.insert(BufFlags::BF_SHUTW);
    s.rep.flags.insert(BufFlags::BF_SHUTR);
    let f = s.srv_error;
    f(w, s, Side::Srv);
}

/// session.c:sess_update_stream_int() in 1.5-dev8: move a server side that is assigned
/// (`ASS`: connect now), queued (`QUE`: still waiting? timed out?) or turning around
/// (`TAR`: retry delay over?) to its next state.
/// Divergence: the abort test is `client_aborted` (see there).
pub fn sess_update_stream_int(w: &mut Haproxy, s: &mut Session) {
    let now = w.clock.now_ms;
    let state = s.si[1].state;
    match state {
        SiState::SI_ST_ASS => {
            let span = tracing::debug_span!(
                names::SESS_UPDATE_STREAM_INT,
                sess = s.uniq_id,
                from = state.coded(),
                to = tracing::field::Empty
            );
            let _g = span.enter();
            let err = connect_server(w, s);
            match err {
                SnErr::SN_ERR_NONE => {
                    s.logs.t_queue.get_or_insert(s.elapsed(now));
                }
                SnErr::SN_ERR_INTERNAL => {
                    count_failed_conn(w, s);
                    sess_abort_srv(w, s, SiErrType::SI_ET_CONN_OTHER);
                }
                _ => {
                    // Resource or server error: the attempt failed at once.
                    if err == SnErr::SN_ERR_RESOURCE {
                        s.si[1].err_type |= SiErrType::SI_ET_CONN_RES;
                    } else {
                        s.si[1].err_type |= SiErrType::SI_ET_CONN_ERR;
                    }
                    s.si[1].set_state(SiState::SI_ST_CER);
                }
            }
            span.record("to", s.si[1].state.coded());
        }
        SiState::SI_ST_QUE => {
            if !s.pend_pos {
                // process_srv_queue() gave us a slot.
                s.si[1].exp = TICK_ETERNITY;
                s.logs.t_queue = Some(s.elapsed(now));
                let to = if s.flags.contains(SessFlags::SN_ASSIGNED) {
                    SiState::SI_ST_ASS
                } else {
                    SiState::SI_ST_REQ
                };
                s.si[1].set_state(to);
                return;
            }
            if s.si[1].flags.contains(SiFlags::SI_FL_EXP) || tick_is_expired(s.si[1].exp, now) {
                count_failed_conn(w, s);
                pendconn_free(w, s);
                s.logs.t_queue = Some(s.elapsed(now));
                s.si[1].exp = TICK_ETERNITY;
                sess_abort_srv(w, s, SiErrType::SI_ET_QUEUE_TO);
                return;
            }
            if client_aborted(w, s) {
                pendconn_free(w, s);
                s.logs.t_queue = Some(s.elapsed(now));
                sess_abort_srv(w, s, SiErrType::SI_ET_QUEUE_ABRT);
            }
        }
        SiState::SI_ST_TAR => {
            if client_aborted(w, s) {
                s.si[1].exp = TICK_ETERNITY;
                sess_abort_srv(w, s, SiErrType::SI_ET_CONN_ABRT);
                return;
            }
            if !tick_is_expired(s.si[1].exp, now) {
                return;
            }
            s.si[1].exp = TICK_ETERNITY;
            let to = if s.flags.contains(SessFlags::SN_ASSIGNED) {
                SiState::SI_ST_ASS
            } else {
                SiState::SI_ST_REQ
            };
            s.si[1].set_state(to);
        }
        _ => {}
    }
}

/// The client gave up while we were waiting for a server (`option abortonclose`, or the
/// client side is already closed for writing). HAProxy has no such function: the tests
/// are inline in `sess_update_stream_int` (QUE, TAR) and `sess_update_st_con_tcp`.
/// Divergence: dev8 looks at the client's close once it has reached the request
/// (`req` `BF_SHUTW_NOW`): without `abortonclose` it gives up only if nothing is left to
/// send (connecting: and nothing was written), with it at once; `rep` `BF_SHUTW` counts
/// when connecting, a read error on the request in QUE and TAR. haflow tests the close
/// itself (`req` `BF_SHUTR`), only with `abortonclose`, and `rep` `BF_SHUTW` in all three
/// states, which is how a client error reaches it (step 3 of `process_session` shuts the
/// client side).
fn client_aborted(w: &Haproxy, s: &Session) -> bool {
    s.rep.flags.contains(BufFlags::BF_SHUTW)
        || (s.req.flags.contains(BufFlags::BF_SHUTR)
            && w.proxies[s.be.idx()].options.contains(ProxyOptions::PR_O_ABRT_CLOSE))
}

/// session.c:sess_update_st_con_tcp() in 1.5-dev8: watch a connection in progress.
/// Returns `false` when it failed (the caller runs `sess_update_st_cer`).
/// Divergence: the abort test is `client_aborted` with an empty request buffer (see
/// there). A connect that completes in the turn its timeout expires counts as
/// established (dev8 gives up on `SI_FL_EXP` first); `err_type` left by a failed attempt
/// stays on success (dev8 clears it); the connect time is taken by `sess_establish`.
pub fn sess_update_st_con_tcp(w: &mut Haproxy, s: &mut Session) -> bool {
    let span = tracing::debug_span!(
        names::SESS_UPDATE_ST_CON_TCP,
        sess = s.uniq_id,
        from = s.si[1].state.coded(),
        to = tracing::field::Empty
    );
    let _g = span.enter();
    let now = w.clock.now_ms;
    let si = &s.si[1];
    let expired = si.flags.contains(SiFlags::SI_FL_EXP) || tick_is_expired(si.exp, now);
    if si.flags.contains(SiFlags::SI_FL_ERR)
        || (expired && !s.req.flags.intersects(BufFlags::BF_WRITE_ACTIVITY))
    {
        // Connection failed or timed out: release the socket, report, let CER decide.
        let timed_out = !si.flags.contains(SiFlags::SI_FL_ERR);
        let si = &mut s.si[1];
        if let Some(fd) = si.fd.take() {
            w.fdtab.fd_delete(fd);
        }
        si.err_type |= if timed_out { SiErrType::SI_ET_CONN_TO } else { SiErrType::SI_ET_CONN_ERR };
        if timed_out {
            si.flags.remove(SiFlags::SI_FL_ERR);
        }
        si.set_state(SiState::SI_ST_CER);
        span.record("to", SiState::SI_ST_CER.coded());
        return false;
    }
    if client_aborted(w, s) && s.req.is_empty() {
        si_shutw(w, s, Side::Srv);
        s.si[1].err_type |= SiErrType::SI_ET_CONN_ABRT;
        let f = s.srv_error;
        f(w, s, Side::Srv);
        span.record("to", s.si[1].state.coded());
        return true;
    }
    if s.req.flags.intersects(BufFlags::BF_WRITE_NULL | BufFlags::BF_WRITE_PARTIAL) {
        s.si[1].exp = TICK_ETERNITY;
        s.si[1].set_state(SiState::SI_ST_EST);
    }
    span.record("to", s.si[1].state.coded());
    true
}

/// session.c:sess_update_st_cer() in 1.5.0 (dev8 lacks the round-robin rule and always
/// waits 1 s): a connect attempt failed. Retry (on the same server, after a turn-around
/// delay of at most 1 s when the error was asynchronous), or elsewhere with `option
/// redispatch`: on the last retry, or at once under round robin with more than one
/// active server. Or give up with an error.
/// Divergence: a redispatch is counted when decided; 1.5.0 counts it in
/// `srv_redispatch_connect()` only if the server changed, else it counts a retry.
pub fn sess_update_st_cer(w: &mut Haproxy, s: &mut Session) {
    let span = tracing::debug_span!(
        names::SESS_UPDATE_ST_CER,
        sess = s.uniq_id,
        retries_left = s.si[1].conn_retries,
        to = tracing::field::Empty
    );
    let _g = span.enter();
    let now = w.clock.now_ms;
    srv_release_conn(w, s);
    s.si[1].conn_retries -= 1;
    if s.si[1].conn_retries < 0 {
        if s.si[1].err_type.is_empty() {
            s.si[1].err_type = SiErrType::SI_ET_CONN_ERR;
        }
        count_failed_conn(w, s);
        sess_change_server(w, s, None);
        s.si[1].exp = TICK_ETERNITY;
        s.req.flags.insert(BufFlags::BF_WRITE_ERROR);
        s.rep.flags.insert(BufFlags::BF_READ_ERROR);
        sess_abort_srv(w, s, SiErrType::empty());
        span.record("to", SiState::SI_ST_CLO.coded());
        return;
    }
    s.logs.retries += 1;
    let be = &w.proxies[s.be.idx()];
    let redispatch = be.options.contains(ProxyOptions::PR_O_REDISP);
    let connect_to = be.timeout.connect;
    // `BE_LB_KIND_RR`: roundrobin and static-rr.
    let rr = matches!(
        be.lbprm.algo,
        crate::haproxy::proxy::BalanceAlgo::RoundRobin | crate::haproxy::proxy::BalanceAlgo::StaticRr
    );
    let srv_act = be.srv_act();
    // 1.5.0: a non-persistent session under round robin with other active servers does not
    // care which server answers, so it is redispatched at once instead of on the last retry.
    let any_server = !s.flags.contains(SessFlags::SN_DIRECT) && rr && srv_act > 1;
    let next = if s.srv.is_some() && redispatch && (s.si[1].conn_retries == 0 || any_server) {
        // Last retry (or any server will do): let the load balancer pick another server.
        if let Some(srv) = s.srv {
            w.server_mut(srv).counters.redispatches += 1;
        }
        w.proxies[s.be.idx()].counters.redispatches += 1;
        s.prev_srv = s.srv;
        sess_change_server(w, s, None);
        s.srv = None;
        s.flags.remove(SessFlags::SN_DIRECT | SessFlags::SN_ASSIGNED | SessFlags::SN_ADDR_SET);
        s.flags.insert(SessFlags::SN_REDISP);
        SiState::SI_ST_REQ
    } else {
        if let Some(srv) = s.srv {
            w.server_mut(srv).counters.retries += 1;
        }
        w.proxies[s.be.idx()].counters.retries += 1;
        SiState::SI_ST_ASS
    };
    if s.si[1].flags.contains(SiFlags::SI_FL_ERR) {
        // An asynchronous error: retrying the same server at once would likely fail the
        // same way, so wait MIN(1s, timeout connect) first (SI_ST_TAR).
        if s.si[1].err_type.is_empty() {
            s.si[1].err_type = SiErrType::SI_ET_CONN_ERR;
        }
        let delay = connect_to.map_or(1000, |c| c.min(1000));
        if next == SiState::SI_ST_ASS || !rr || srv_act <= 1 {
            s.si[1].set_state(SiState::SI_ST_TAR);
            s.si[1].exp = Some(crate::haproxy::time::tick_add(now, delay));
        } else {
            s.si[1].set_state(next);
        }
    } else {
        s.si[1].set_state(next);
    }
    s.si[1].flags.remove(SiFlags::SI_FL_EXP | SiFlags::SI_FL_ERR);
    span.record("to", s.si[1].state.coded());
}

/// session.c:sess_establish() in 1.5-dev8: the server connection is up. Record the
/// connect time, attach the response analysers and switch the timeouts to `timeout server`.
pub fn sess_establish(w: &mut Haproxy, s: &mut Session) {
    let _sp = tracing::debug_span!(
        names::SESS_ESTABLISH,
        sess = s.uniq_id,
        server = tracing::field::display(w.server_name(s.srv))
    )
    .entered();
    crate::haproxy::step_point(names::SESS_ESTABLISH, || crate::haproxy::View::Session(w, &*s));
    let now = w.clock.now_ms;
    s.logs.t_connect = Some(s.elapsed(now));
    s.si[1].exp = TICK_ETERNITY;
    let fe = &w.proxies[s.fe.idx()];
    let be = &w.proxies[s.be.idx()];
    s.rep.analysers |= fe.fe_rsp_ana | be.be_rsp_ana;
    if s.flags.contains(SessFlags::SN_HTX) {
        s.rep.analysers |= Analysers::AN_RES_WAIT_HTTP | Analysers::AN_RES_HTTP_PROCESS_BE;
    }
    if be.mode == ProxyMode::PR_MODE_HTTP || s.flags.contains(SessFlags::SN_HTX) {
        s.rep.flags.insert(BufFlags::BF_READ_DONTWAIT);
        s.txn.rsp_begin();
    }
    s.rep.flags.insert(BufFlags::BF_READ_ATTACHED);
    // `http-request set-timeout server` wins over the backend's setting.
    let server_tmo = s.timeout_server.or(be.timeout.server);
    s.req.wto = server_tmo;
    s.rep.rto = server_tmo;
    s.req.wex = TICK_ETERNITY;
}

/// session.c:sess_change_server() in 1.5-dev8: move the session's slot (`served`) from
/// its current server to `new`; a freed slot goes to the next session queued on the old
/// server.
/// Divergence: the old server's queue is served here (`process_srv_queue`); dev8's
/// callers do it after the call, under `may_dequeue_tasks`. No `server_take_conn` or
/// `server_drop_conn` hooks: the load-balancing algorithms read `served` directly.
pub fn sess_change_server(w: &mut Haproxy, s: &mut Session, new: Option<ServerId>) {
    if s.srv_conn == new {
        return;
    }
    if let Some(old) = s.srv_conn.take() {
        let srv = w.server_mut(old);
        srv.served = srv.served.saturating_sub(1);
        process_srv_queue(w, old);
    }
    if let Some(n) = new {
        w.server_mut(n).served += 1;
        s.srv_conn = Some(n);
    }
}

/// The server connection is gone: leave the server's `cur_sess` (`SN_CURR_SESS`).
pub fn srv_release_conn(w: &mut Haproxy, s: &mut Session) {
    if s.flags.contains(SessFlags::SN_CURR_SESS) {
        s.flags.remove(SessFlags::SN_CURR_SESS);
        if let Some(srv) = s.srv {
            let srv = w.server_mut(srv);
            srv.cur_sess = srv.cur_sess.saturating_sub(1);
        }
    }
}

/// session.c:process_switching_rules() in 1.5-dev8 (`AN_REQ_SWITCHING_RULES`): pick the
/// backend from the `use_backend` rules, or `default_backend`, and add its analysers.
pub fn process_switching_rules(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let span = tracing::debug_span!(
        names::PROCESS_SWITCHING_RULES,
        sess = s.uniq_id,
        an = an_bit.coded(),
        backend = tracing::field::Empty
    );
    let _g = span.enter();
    if !s.flags.contains(SessFlags::SN_BE_ASSIGNED) {
        let fe_id = s.fe;
        let target = crate::haproxy::sample::with_smp_ctx(w, s, crate::haproxy::sample::SmpDir::Req, |ctx| {
            let w = ctx.strm?.0;
            let fe = &w.proxies[fe_id.idx()];
            for rule in &fe.switching_rules {
                if !crate::haproxy::acl::acl_match_cond(&rule.cond, &fe.acls, ctx) {
                    continue;
                }
                let Some(f) = &rule.dynamic else { return rule.be };
                // A dynamic name that names no backend falls through to the next rule.
                let name = crate::haproxy::log::build_logline(f, ctx, false);
                if let Some(p) =
                    w.proxies.iter().find(|p| p.is_backend() && p.name.as_bytes() == name.as_slice())
                {
                    return Some(p.id);
                }
            }
            None
        });
        let fe = &w.proxies[s.fe.idx()];
        let be = target.or(fe.defbe).unwrap_or(s.fe);
        session_set_backend(w, s, be);
    }
    s.req.analysers.remove(an_bit);
    if s.fe == s.be {
        s.req.analysers.remove(Analysers::AN_REQ_INSPECT_BE | Analysers::AN_REQ_HTTP_PROCESS_BE);
    }
    span.record("backend", w.proxies[s.be.idx()].name.as_str());
    AnalyserResult::Continue
}

/// session.c:process_server_rules() in 1.5.0 (`AN_REQ_SRV_RULES`): unless a server is
/// already assigned, the first `use-server` rule whose condition matches and whose server
/// is not down sends the request to that server, bypassing the load balancer.
pub fn process_server_rules(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let be = s.be;
    let span = tracing::debug_span!(
        names::PROCESS_SERVER_RULES,
        sess = s.uniq_id,
        backend = w.proxies[be.idx()].name.as_str(),
        server = tracing::field::Empty
    );
    let _g = span.enter();
    if !s.flags.contains(SessFlags::SN_ASSIGNED) {
        let target = crate::haproxy::sample::with_smp_ctx(w, s, crate::haproxy::sample::SmpDir::Req, |ctx| {
            let w = ctx.strm?.0;
            let p = &w.proxies[be.idx()];
            p.server_rules.iter().find_map(|rule| {
                if !crate::haproxy::acl::acl_match_cond(&rule.cond, &p.acls, ctx) {
                    return None;
                }
                // Divergence: `option persist` and `force-persist` are not implemented, so
                // a rule naming a down server always falls through to the next one.
                let i = rule.srv?;
                let f = p.servers.get(i)?.flags;
                (f.contains(SrvFlags::SRV_RUNNING) && !f.contains(SrvFlags::SRV_MAINTAIN)).then_some(i)
            })
        });
        if let Some(i) = target {
            s.srv = Some(ServerId { px: be, idx: i as u32 });
            s.flags.insert(SessFlags::SN_DIRECT | SessFlags::SN_ASSIGNED);
            span.record("server", w.proxies[be.idx()].servers[i].name.as_str());
        }
    }
    s.req.analysers.remove(an_bit);
    AnalyserResult::Continue
}

/// stream.c:stream_set_http_mode() in 2.6: a TCP frontend's session becomes HTTP
/// (`tcp-request content switch-mode http`): the frontend's HTTP analysers parse the
/// request and run its `http-request` rules, and every later request of the connection
/// is HTTP. False when the listener's multiplexer cannot be upgraded (`bind ... proto
/// none`, 2.6's `MX_FL_NO_UPG`).
pub fn stream_set_http_mode(w: &Haproxy, s: &mut Session) -> bool {
    if s.is_htx(w) {
        return true;
    }
    let l = &w.listeners[s.listener.idx()];
    if l.options.contains(crate::haproxy::listener::ListenerOptions::LI_O_NO_UPG) {
        return false;
    }
    http_upgrade(s);
    s.req.analysers |= Analysers::AN_REQ_WAIT_HTTP | Analysers::AN_REQ_HTTP_PROCESS_FE;
    true
}

/// What an HTTP frontend's session gets at accept (`frontend_accept`), given to a TCP
/// frontend's session that becomes HTTP: the transaction, HTTP server errors, one read
/// per request head.
fn http_upgrade(s: &mut Session) {
    s.flags.insert(SessFlags::SN_HTX);
    s.srv_error = crate::haproxy::proto_http::http_return_srv_error;
    s.txn.reset();
    s.req.flags.insert(BufFlags::BF_READ_DONTWAIT);
}

/// proxy.c:session_set_backend() in 1.5-dev8: the session now belongs to `be`; count it
/// there and add the backend's request analysers.
pub fn session_set_backend(w: &mut Haproxy, s: &mut Session, be: ProxyId) {
    if s.flags.contains(SessFlags::SN_BE_ASSIGNED) {
        return;
    }
    s.be = be;
    let p = &mut w.proxies[be.idx()];
    p.beconn += 1;
    p.counters.conn_max = p.counters.conn_max.max(u64::from(p.beconn));
    if be != s.fe {
        p.counters.cum_sess += 1;
    }
    s.flags.insert(SessFlags::SN_BE_ASSIGNED);
    if w.proxies[be.idx()].options.contains(ProxyOptions::PR_O_INDEPSTR) {
        for si in &mut s.si {
            si.flags.insert(SiFlags::SI_FL_INDEP_STR);
        }
    }
    // The backend's analysers, except those the listener already ran.
    let mut already = w.listeners[s.listener.idx()].analysers;
    // 2.6: a stream `switch-mode http` upgraded already parsed its request.
    if s.flags.contains(SessFlags::SN_HTX) {
        already |= Analysers::AN_REQ_WAIT_HTTP | Analysers::AN_REQ_HTTP_PROCESS_FE;
    }
    s.req.analysers |= w.proxies[be.idx()].be_req_ana - already;
    // A TCP frontend handing over to an HTTP backend: the stream becomes HTTP for the
    // rest of the connection (2.6 upgrades it here; 1.5 only added the analysers).
    if w.proxies[be.idx()].mode == ProxyMode::PR_MODE_HTTP && !s.is_htx(w) {
        http_upgrade(s);
        // As 2.6's stream_set_http_mode(): the frontend's HTTP rules run too, which 2.6
        // keeps only when it has `switch-mode http` (`PR_O_HTTP_UPG`).
        if w.proxies[s.fe.idx()].options.contains(ProxyOptions::PR_O_HTTP_UPG) {
            s.req.analysers |= Analysers::AN_REQ_HTTP_PROCESS_FE;
        }
    }
    if w.proxies[be.idx()].options.contains(ProxyOptions::PR_O_NODELAY) {
        s.set_never_wait();
    }
}

/// The end of `process_session` (step 15): leave the server and the backend, log, leave
/// the frontend and the process counters, resume paused listeners, then `session_free`
/// (under `caller`, the `process_session` span). Returns the session's root span.
fn session_end(w: &mut Haproxy, mut s: Box<Session>, caller: &tracing::Span) -> tracing::Span {
    let now = w.clock.now_ms;
    let fe = s.fe;
    let lid = s.listener;
    // The log line sees us gone from the backend and server but still on the frontend,
    // as HAProxy 2.6 reports it (`1/1/0/0/0`).
    srv_release_conn(w, &mut s);
    sess_change_server(w, &mut s, None);
    if s.flags.contains(SessFlags::SN_BE_ASSIGNED) {
        s.flags.remove(SessFlags::SN_BE_ASSIGNED);
        let be = &mut w.proxies[s.be.idx()];
        be.beconn = be.beconn.saturating_sub(1);
    }
    if w.global.debug() {
        let be_name = w.proxies[s.be.idx()].name.clone();
        let (c, sv) = (s.si[0].fd.map_or(0xffff, |f| f.0 as u16), s.si[1].fd.map_or(0xffff, |f| f.0 as u16));
        w.debug_line(format!("{:08x}:{be_name}.closed[{c:04x}:{sv:04x}]", s.uniq_id));
    }
    s.logs.t_close = Some(s.elapsed(now));
    if s.err != SnErr::SN_ERR_NONE {
        sess_set_term_flags(w, &mut s);
    }
    if !s.logs.logged {
        sess_log(w, &mut s);
    }
    w.proxies[fe.idx()].feconn -= 1;
    w.jobs -= 1;
    w.actconn -= 1;
    w.listeners[lid.idx()].nbconn -= 1;
    // Only a full listener comes back here: a paused one waits for `SIGTTIN`.
    if w.listeners[lid.idx()].state == ListenerState::LI_FULL {
        resume_listener(w, lid);
    }
    dequeue_global_listeners(w);
    dequeue_all_listeners(w, fe);
    session_free(w, s, caller)
}

// ANCHOR: session_free
/// session.c:session_free() in 1.5-dev8: leave the server and queues, close what is still
/// open, give both buffers back to `pool2_buffer`, free the task (`task_delete` +
/// `task_free`) and the session (`pool_free2(pool2_session)`).
///
/// Its span is a child of `caller` (the `process_session` that ends the session), or of
/// the session's root when `caller` is not recorded (a hard stop, or a trace level that
/// leaves `process_session` out). Returns the root span, for the caller to close last.
pub fn session_free(w: &mut Haproxy, mut s: Box<Session>, caller: &tracing::Span) -> tracing::Span {
    let root = std::mem::replace(&mut s.span, tracing::Span::none());
    let parent = if caller.is_disabled() { &root } else { caller };
    let span = tracing::info_span!(parent: parent, names::SESSION_FREE, sess = s.uniq_id, term = %format_args!("{}{}", s.err.log_char(), s.finst.log_char()));
    let g = span.enter();
    crate::haproxy::step_point(names::SESSION_FREE, || crate::haproxy::View::Session(w, &s));
    if s.pend_pos {
        pendconn_free(w, &mut s);
    }
    crate::haproxy::stick_table::session_store_counters(w, &mut s, false);
    crate::haproxy::stick_table::session_release_stores(w, &mut s);
    srv_release_conn(w, &mut s);
    sess_change_server(w, &mut s, None);
    for side in [Side::Cli, Side::Srv] {
        if let Some(fd) = s.si[side as usize].fd.take() {
            w.fdtab.fd_delete(fd);
        }
    }
    if let Some(fd) = s.si[1].appctx.as_deref_mut().and_then(|a| a.idle_fd.take()) {
        w.fdtab.fd_delete(fd);
    }
    for (_, fd) in s.srv_list.drain(..) {
        w.fdtab.fd_delete(fd);
    }
    // The pooled session keeps its memory, not what it held: the cache entry being
    // served and the response being stored go now.
    s.si[1].appctx = None;
    s.txn.cache = None;
    {
        let _p = tracing::trace_span!(names::POOL_FREE2, pool = "buffer", count = 2).entered();
        s.req.b_free(&mut w.pool2_buffer);
        s.rep.b_free(&mut w.pool2_buffer);
    }
    // A pipe still holding bytes (the session died mid-transfer) is closed.
    s.req.release_pipe(&mut w.pipes);
    s.rep.release_pipe(&mut w.pipes);
    crate::haproxy::compression::comp_ctx_free(&mut w.pool_comp_ctx, &mut s);
    w.sched.task_delete(s.task);
    w.sched.task_free(s.task);
    w.sessions.release_taken(s.id.idx());
    w.on_session_freed(&s);
    let p = tracing::trace_span!(names::POOL_FREE2, pool = "session").entered();
    w.pool2_session.pool_free2(s);
    drop(p);
    drop(g);
    drop(span);
    root
}
// ANCHOR_END: session_free

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "frontend fe\n    mode http\n    bind 127.0.0.1:0\n    default_backend be\n\
                       backend be\n    mode http\n    server s1 127.0.0.1:1\n";

    /// A process state for `CFG` (nothing bound) and a session of it, whose server side
    /// stands in `srv_state` after `prev`, assigned to `be/s1`.
    fn world(prev: SiState, srv_state: SiState) -> (Haproxy, Session) {
        // One file per call: tests run in parallel threads of one process.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("haflow-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("t{seq}.cfg"));
        std::fs::write(&path, CFG).unwrap();
        let cfg = crate::haproxy::cfgparse::readcfgfile(&[&path], &|_| None).expect("the test config parses");
        let w = Haproxy::new(cfg).unwrap();
        let (fe, be) = (ProxyId(0), ProxyId(1));
        let now = w.clock.now_ms;
        let mut s = Session::new(
            0,
            ListenerId(0),
            fe,
            (1024, 256),
            None,
            (SystemTime::now(), now),
            tracing::Span::none(),
        );
        s.be = be;
        s.srv = Some(ServerId { px: be, idx: 0 });
        s.si[1].prev_state = prev;
        s.si[1].state = srv_state;
        (w, s)
    }

    /// Idle keep-alive connections cost a `Session` each, so the address levels are boxed
    /// only when a level is about to differ: until then they read as the stream's, and a
    /// stream-level `set-src` must not lose the connection's address on the way.
    #[test]
    fn address_levels_are_boxed_only_when_a_level_changes() {
        let (w, mut s) = world(SiState::SI_ST_INI, SiState::SI_ST_INI);
        let accepted: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        s.cli_addr = Some(accepted);
        assert!(s.addr_levels.is_none() && s.stick.is_none());
        assert_eq!(s.addr_levels(), AddrLevels { conn: [Some(accepted), None], sess: [None, None] });
        s.set_addr(&w.fdtab, AddrLevel::Strm, AddrDir::Src, Some("198.51.100.9".parse().unwrap()), None);
        assert_eq!(s.cli_addr, Some("198.51.100.9:4000".parse().unwrap()));
        assert_eq!(s.addr_levels().conn[0], Some(accepted), "fc_src still reads the socket's");
        s.reset_strm_addrs();
        assert_eq!(s.cli_addr, Some(accepted), "the next transaction starts from the session level");
    }

    /// Every counter an abort may bump: `(fe cli, fe srv, be cli, be srv, srv cli, srv srv, fe ereq)`.
    fn aborts(w: &Haproxy) -> (u64, u64, u64, u64, u64, u64, u64) {
        let (fe, be) = (&w.proxies[0].counters, &w.proxies[1].counters);
        let sv = &w.proxies[1].servers[0].counters;
        (
            fe.cli_aborts,
            fe.srv_aborts,
            be.cli_aborts,
            be.srv_aborts,
            sv.cli_aborts,
            sv.srv_aborts,
            fe.failed_req,
        )
    }

    #[test]
    fn buffer_errors_become_the_termination_state_request_side_first() {
        use BufFlags as B;
        use SiState::*;
        // (request flags, response flags, server side before and now) -> state, client
        // abort?, failed request?
        let cases = [
            (B::BF_READ_ERROR, B::empty(), (SI_ST_INI, SI_ST_INI), "CR", true, true),
            (B::BF_READ_TIMEOUT, B::empty(), (SI_ST_INI, SI_ST_INI), "cR", true, true),
            (B::BF_READ_ERROR, B::empty(), (SI_ST_REQ, SI_ST_QUE), "CQ", true, false),
            (B::BF_READ_ERROR, B::empty(), (SI_ST_ASS, SI_ST_CON), "CC", true, false),
            (B::BF_WRITE_ERROR, B::empty(), (SI_ST_EST, SI_ST_EST), "SD", false, false),
            (B::BF_WRITE_TIMEOUT, B::empty(), (SI_ST_EST, SI_ST_EST), "sD", false, false),
            (B::empty(), B::BF_READ_ERROR, (SI_ST_EST, SI_ST_EST), "SD", false, false),
            (B::empty(), B::BF_READ_TIMEOUT, (SI_ST_EST, SI_ST_EST), "sD", false, false),
            (B::empty(), B::BF_WRITE_ERROR, (SI_ST_EST, SI_ST_EST), "CD", true, false),
            (B::empty(), B::BF_WRITE_TIMEOUT, (SI_ST_EST, SI_ST_EST), "cD", true, false),
            // Both sides failed writing: the request side is looked at first, a server
            // abort; a server side closed before it was ever established ends in L.
            (B::BF_WRITE_ERROR, B::BF_WRITE_ERROR, (SI_ST_CER, SI_ST_CLO), "SL", false, false),
            (B::BF_WRITE_ERROR, B::BF_WRITE_ERROR, (SI_ST_EST, SI_ST_CLO), "SD", false, false),
        ];
        for (rq, rp, (prev, now), want, client, failed_req) in cases {
            let (mut w, mut s) = world(prev, now);
            s.req.flags.insert(rq);
            s.rep.flags.insert(rp);
            s.req.analysers = Analysers::AN_REQ_HTTP_XFER_BODY;
            s.rep.analysers = Analysers::AN_RES_HTTP_XFER_BODY;
            report_buffer_errors(&mut w, &mut s);
            let got = format!("{}{}", s.err.log_char(), s.finst.log_char());
            assert_eq!(got, want, "{rq:?} / {rp:?} with the server side {prev} -> {now}");
            let (c, v) = (u64::from(client), u64::from(!client));
            assert_eq!(aborts(&w), (c, v, c, v, c, v, u64::from(failed_req)), "counters for {want}");
            // The side that failed stops being analysed; the other keeps its analysers.
            let req_side = !rq.is_empty();
            assert_eq!(s.req.analysers.is_empty(), req_side, "{want}: request analysers");
            assert_eq!(s.rep.analysers.is_empty(), !req_side, "{want}: response analysers");
        }
    }

    #[test]
    fn an_abort_in_a_listen_section_counts_once() {
        let (mut w, mut s) = world(SiState::SI_ST_EST, SiState::SI_ST_EST);
        s.fe = s.be;
        count_abort(&mut w, &s, Side::Cli);
        assert_eq!(w.proxies[1].counters.cli_aborts, 1);
        assert_eq!(w.proxies[0].counters.cli_aborts, 0);
    }

    #[test]
    fn a_cause_already_known_is_not_reported_again() {
        let (mut w, mut s) = world(SiState::SI_ST_EST, SiState::SI_ST_EST);
        s.set_err(SnErr::SN_ERR_PRXCOND);
        s.rep.flags.insert(BufFlags::BF_READ_ERROR);
        report_buffer_errors(&mut w, &mut s);
        assert_eq!((s.err, s.finst), (SnErr::SN_ERR_PRXCOND, SnFinst::SN_FINST_NONE));
        assert_eq!(aborts(&w), (0, 0, 0, 0, 0, 0, 0));
    }
}
