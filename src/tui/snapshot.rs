//! Snapshots: copies of the proxy's state made on the proxy thread for the terminal UI.
//!
//! The proxy thread owns every structure and the UI thread never reads them. Instead,
//! `SnapshotProducer`, an `Observer` told when each `run_poll_loop` turn's work is done,
//! copies what the views need (proxies, servers and their counters, live sessions with their
//! stream interfaces and buffers, pools, the scheduler's queues, the loop counters) at
//! most every `interval`, or at once when the UI asked for it after sending a command,
//! and `try_send`s it over a bounded channel; when the loop ends it sends a last copy
//! (`Snapshot::stopped`), so that a UI watching a finished scenario shows how the proxy
//! ended. When the UI is behind, the copy is dropped (the next one supersedes it): the
//! proxy never waits for a reader. Sessions freed
//! between two copies are kept (bounded) and travel in the next one, so that a session
//! that lived less than one interval still shows up, with its final state. Log lines and
//! `-d` debug lines go over their own bounded channel as they are emitted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use crate::haproxy::buffers::{Analysers, BufFlags, Buffer};
use crate::haproxy::fd::Sock;
use crate::haproxy::haproxy::{Activity, DebugSink, Haproxy, Observer};
use crate::haproxy::listener::{Listener, ListenerState};
use crate::haproxy::memory::PoolStats;
use crate::haproxy::proxy::{BalanceAlgo, Proxy, ProxyCap, ProxyCounters, ProxyMode, ProxyState};
use crate::haproxy::server::{CheckState, Server, SrvCounters, SrvFlags};
use crate::haproxy::session::{SessFlags, Session, SnErr, SnFinst};
use crate::haproxy::stream_interface::{SiErrType, SiFlags, SiState, StreamInterface};
use crate::haproxy::task::TaskState;
use crate::ids::{ProxyId, ServerId};

/// Most live sessions copied into one snapshot (the newest ones); `show sess` has the same
/// problem with many sessions and the UI says how many it does not show.
pub const MAX_SESSIONS: usize = 1000;
/// Most freed sessions remembered between two snapshots.
pub const MAX_FREED: usize = 512;
/// Most ended transactions remembered between two snapshots.
pub const MAX_TXNS: usize = 2048;
/// Snapshots in flight: the UI only ever needs the latest.
const SNAPSHOT_QUEUE: usize = 4;
/// Log lines in flight.
const LOG_QUEUE: usize = 4096;

/// A copy of one `struct buffer` (`s->req` or `s->rep`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufSnap {
    /// `BF_*` flags.
    pub flags: BufFlags,
    /// Analysers still to run.
    pub analysers: Analysers,
    /// Input bytes held (`buf->i`).
    pub i: usize,
    /// Output bytes held (`buf->o`).
    pub o: usize,
    /// Capacity (`tune.bufsize`).
    pub size: usize,
    /// Bytes that entered the buffer since the session started.
    pub total: u64,
    /// `to_forward`.
    pub to_forward: u64,
    /// True while storage from `pool2_buffer` is attached.
    pub allocated: bool,
}

impl BufSnap {
    /// Copies `b`.
    pub fn of(b: &Buffer) -> BufSnap {
        BufSnap {
            flags: b.flags,
            analysers: b.analysers,
            i: b.i(),
            o: b.o(),
            size: b.size,
            total: b.total,
            to_forward: b.to_forward,
            allocated: b.has_storage(),
        }
    }

    /// Bytes held (input and output).
    pub fn len(&self) -> usize {
        self.i + self.o
    }

    /// True when the buffer holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A copy of one stream interface (`s->si[0]` or `s->si[1]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiSnap {
    /// `SI_ST_*`.
    pub state: SiState,
    /// `SI_FL_*`.
    pub flags: SiFlags,
    /// `SI_ET_*`.
    pub err_type: SiErrType,
    /// The socket's fd, if any.
    pub fd: Option<i32>,
    /// Connection attempts left.
    pub conn_retries: i32,
}

impl SiSnap {
    /// Copies `si`.
    pub fn of(si: &StreamInterface) -> SiSnap {
        SiSnap {
            state: si.state,
            flags: si.flags,
            err_type: si.err_type,
            fd: si.fd.map(|f| f.0),
            conn_retries: si.conn_retries,
        }
    }
}

/// A copy of one session: what `show sess` prints, and a little more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessSnap {
    /// `uniq_id`.
    pub uniq_id: u32,
    /// The frontend.
    pub fe: ProxyId,
    /// The backend (the frontend until switching rules ran).
    pub be: ProxyId,
    /// The server, once assigned.
    pub srv: Option<ServerId>,
    /// The client's address.
    pub src: Option<SocketAddr>,
    /// `SN_*` flags.
    pub flags: SessFlags,
    /// Why it ended (or is ending).
    pub err: SnErr,
    /// Where it was when it ended.
    pub finst: SnFinst,
    /// `si[0]` (client) and `si[1]` (server).
    pub si: [SiSnap; 2],
    /// `s->req`: client to server.
    pub req: BufSnap,
    /// `s->rep`: server to client.
    pub rep: BufSnap,
    /// The task's state: why it was last woken, or running.
    pub task_state: TaskState,
    /// How many times the task ran (`process_session` calls).
    pub task_calls: u64,
    /// True while waiting in a queue.
    pub pend_pos: bool,
    /// `now_ms` at accept (or at the start of the current request).
    pub accept_ms: u64,
    /// `now_ms` when it was freed (freed sessions only).
    pub end_ms: Option<u64>,
    /// Bytes from the client.
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
    /// HTTP status sent to the client, if any.
    pub status: Option<u16>,
    /// The request line of the transaction under way (HTTP mode, once its head was parsed).
    pub request: Option<String>,
    /// The frontend works in HTTP mode.
    pub http: bool,
    /// Milliseconds since the accept when copied (`accept_date` to the loop's date, or to
    /// the free): the connection's whole age, where `accept_ms` restarts with each request.
    pub life_ms: u64,
    /// Transactions this connection has ended so far (set by the producer, which counts
    /// them: HAProxy keeps no such count).
    pub txns: u32,
}

impl SessSnap {
    /// Copies `s`; `w` gives the task's state when the session is live.
    pub fn of(s: &Session, w: Option<&Haproxy>) -> SessSnap {
        let (task_state, task_calls) =
            w.and_then(|w| w.sched.get(s.task)).map_or((TaskState::empty(), 0), |t| (t.state, t.calls));
        SessSnap {
            uniq_id: s.uniq_id,
            fe: s.fe,
            be: s.be,
            srv: s.srv.or(s.prev_srv),
            src: s.cli_addr,
            flags: s.flags,
            err: s.err,
            finst: s.finst,
            si: [SiSnap::of(&s.si[0]), SiSnap::of(&s.si[1])],
            req: BufSnap::of(&s.req),
            rep: BufSnap::of(&s.rep),
            task_state,
            task_calls,
            pend_pos: s.pend_pos,
            accept_ms: s.logs.tv_accept.0,
            // `session_end` dates the end for the log; a killed session gets the turn's date.
            end_ms: if w.is_none() { s.logs.t_close.map(|t| s.logs.tv_accept.0 + t) } else { None },
            bytes_in: s.logs.bytes_in,
            bytes_out: s.logs.bytes_out,
            status: s.txn.status,
            request: s.txn.req_line.clone(),
            http: w.is_some_and(|w| w.proxies[s.fe.idx()].mode == ProxyMode::PR_MODE_HTTP)
                || s.txn.req_line.is_some(),
            life_ms: w
                .map_or_else(std::time::SystemTime::now, |w| w.clock.date)
                .duration_since(s.logs.accept_date)
                .map_or(0, |d| d.as_millis() as u64),
            txns: 0,
        }
    }
}

/// One ended transaction: an HTTP request with its response, or a whole TCP session, with
/// what its log line reports, copied when it ends (before `http_end_txn_clean_session`
/// resets the session for the next request, or the session is freed), so that the UI
/// keeps the server, status and termination state a session had, not the reset ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnSnap {
    /// The session's `uniq_id`.
    pub uniq_id: u32,
    /// 1 for the connection's first request, 2 for the next one on a kept-alive connection...
    pub index: u32,
    /// HTTP mode (a request and a status) or TCP mode (a byte stream).
    pub http: bool,
    /// The request line as the log prints it (`GET /a HTTP/1.1`, `<BADREQ>`); `None` in TCP mode.
    pub request: Option<String>,
    /// Status sent to the client (`None`: no response, the log's `-1`).
    pub status: Option<u16>,
    /// The termination state as the log prints it: `%tsc` in HTTP mode (`----`, `sH--`),
    /// `%ts` in TCP mode (`--`, `SD`).
    pub term: String,
    /// The backend's name (the frontend's until switching rules picked one).
    pub backend: String,
    /// The server the log names (`None`: `<NOSRV>`, none was reached).
    pub server: Option<String>,
    /// Bytes from the client in this transaction.
    pub bytes_in: u64,
    /// Bytes to the client in this transaction (the log's `%B`).
    pub bytes_out: u64,
    /// `now_ms` when it began (the accept, or the end of the previous request).
    pub start_ms: u64,
    /// `now_ms` when it ended.
    pub end_ms: u64,
    /// Its log line, when one was emitted.
    pub log: Option<String>,
}

impl TxnSnap {
    /// True for the empty wait of a kept-alive connection that the client closed: no
    /// transaction (HAProxy logs nothing for it either).
    pub fn empty_wait(w: &Haproxy, s: &Session, log: Option<&str>) -> bool {
        w.proxies[s.fe.idx()].mode == ProxyMode::PR_MODE_HTTP
            && s.txn.not_first
            && s.txn.req_line.is_none()
            && s.txn.status.is_none()
            && log.is_none()
    }

    /// Copies the transaction `s` just ended; `None` for an empty wait (`empty_wait`).
    pub fn of(w: &Haproxy, s: &Session, index: u32, log: Option<&str>) -> Option<TxnSnap> {
        if TxnSnap::empty_wait(w, s, log) {
            return None;
        }
        let http = w.proxies[s.fe.idx()].mode == ProxyMode::PR_MODE_HTTP;
        let now = w.clock.now_ms.0;
        let term = if http {
            format!("{}{}--", s.err.log_char(), s.finst.log_char())
        } else {
            format!("{}{}", s.err.log_char(), s.finst.log_char())
        };
        Some(TxnSnap {
            uniq_id: s.uniq_id,
            index,
            http,
            request: http.then(|| s.txn.log_request_line().to_string()),
            status: s.txn.status,
            term,
            backend: w.proxies[s.be.idx()].name.clone(),
            server: s.srv.map(|id| w.server(id).name.clone()),
            bytes_in: s.logs.bytes_in,
            bytes_out: crate::haproxy::log::bytes_out(s),
            start_ms: s.logs.tv_accept.0,
            end_ms: s.logs.t_close.map_or(now, |t| s.logs.tv_accept.0 + t),
            log: log.map(str::to_string),
        })
    }
}

/// A copy of one server.
#[derive(Clone, Debug)]
pub struct ServerSnap {
    /// Where it is: its backend and index.
    pub id: ServerId,
    /// The `server` line's name.
    pub name: String,
    /// The address connected to.
    pub addr: SocketAddr,
    /// `SRV_*` flags (`SRV_MAINTAIN` for MAINT).
    pub flags: SrvFlags,
    /// The status `show stat` prints (`UP`, `DOWN 1/2`, `MAINT`, `no check`).
    pub status: String,
    /// `weight`.
    pub weight: u32,
    /// Connections now (`scur`).
    pub cur_sess: u32,
    /// Highest `cur_sess` seen (`smax`).
    pub cur_sess_max: u32,
    /// `maxconn` (0: none).
    pub maxconn: u32,
    /// Sessions waiting for this server (`qcur`).
    pub queue: usize,
    /// Highest queue length (`qmax`).
    pub queue_max: u32,
    /// Counters.
    pub counters: SrvCounters,
    /// Health-check state, when `check` is set.
    pub check: Option<CheckState>,
}

impl ServerSnap {
    fn of(px: ProxyId, idx: usize, s: &Server) -> ServerSnap {
        ServerSnap {
            id: ServerId { px, idx: idx as u32 },
            name: s.name.clone(),
            addr: s.addr,
            flags: s.flags,
            status: s.status(),
            weight: s.uweight,
            cur_sess: s.cur_sess,
            cur_sess_max: s.cur_sess_max,
            maxconn: s.maxconn,
            queue: s.pendconns.len(),
            queue_max: s.nbpend_max,
            counters: s.counters.clone(),
            check: s.check.clone(),
        }
    }

    /// True while in maintenance.
    pub fn maint(&self) -> bool {
        self.flags.contains(SrvFlags::SRV_MAINTAIN)
    }
}

/// A copy of one listener (a `bind` line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSnap {
    /// The address as bound (the kernel's port for `:0`).
    pub addr: String,
    /// `LI_READY` while accepting, `LI_FULL` at its `maxconn`...
    pub state: ListenerState,
    /// Connections it holds now.
    pub nbconn: u32,
    /// Its `maxconn`.
    pub maxconn: u32,
}

impl ListenerSnap {
    fn of(w: &Haproxy, l: &Listener) -> ListenerSnap {
        let bound = match l.fd.and_then(|fd| w.fdtab.get(fd)).map(|e| &e.sock) {
            Some(Sock::TcpListener(t)) => t.local_addr().ok().map(|a| a.to_string()),
            _ => None,
        };
        ListenerSnap {
            addr: bound.unwrap_or_else(|| l.addr.to_string()),
            state: l.state,
            nbconn: l.nbconn,
            maxconn: l.maxconn,
        }
    }
}

/// A copy of one proxy (`frontend`, `backend` or `listen`).
#[derive(Clone, Debug)]
pub struct ProxySnap {
    /// Its index.
    pub id: ProxyId,
    /// The section's name.
    pub name: String,
    /// Frontend, backend or both.
    pub cap: ProxyCap,
    /// `mode`.
    pub mode: ProxyMode,
    /// Running, paused or stopped.
    pub state: ProxyState,
    /// Sessions on the frontend now.
    pub feconn: u32,
    /// Sessions on the backend now.
    pub beconn: u32,
    /// Frontend `maxconn`.
    pub maxconn: u32,
    /// Counters.
    pub counters: ProxyCounters,
    /// Sessions waiting in the backend's queue.
    pub queue: usize,
    /// Highest backend queue length.
    pub queue_max: u32,
    /// Usable active servers.
    pub srv_act: usize,
    /// Usable backup servers.
    pub srv_bck: usize,
    /// `balance`.
    pub algo: BalanceAlgo,
    /// The servers.
    pub servers: Vec<ServerSnap>,
    /// The frontend's listeners.
    pub listeners: Vec<ListenerSnap>,
}

impl ProxySnap {
    fn of(w: &Haproxy, p: &Proxy) -> ProxySnap {
        ProxySnap {
            id: p.id,
            name: p.name.clone(),
            cap: p.cap,
            mode: p.mode,
            state: p.state,
            feconn: p.feconn,
            beconn: p.beconn,
            maxconn: p.maxconn,
            counters: p.counters.clone(),
            queue: p.pendconns.len(),
            queue_max: p.nbpend_max,
            srv_act: p.srv_act(),
            srv_bck: p.srv_bck(),
            algo: p.lbprm.algo,
            servers: p.servers.enumerate().map(|(i, s)| ServerSnap::of(p.id, i, s)).collect(),
            listeners: p.listeners.iter().map(|l| ListenerSnap::of(w, &w.listeners[l.idx()])).collect(),
        }
    }

    /// True for frontends and `listen` sections.
    pub fn is_frontend(&self) -> bool {
        self.cap.contains(ProxyCap::PR_CAP_FE)
    }

    /// True for backends and `listen` sections.
    pub fn is_backend(&self) -> bool {
        self.cap.contains(ProxyCap::PR_CAP_BE)
    }
}

/// Everything the views show of the proxy at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Number of this snapshot (gaps mean the UI missed some).
    pub seq: u64,
    /// `now_ms` of the proxy's clock.
    pub now_ms: u64,
    /// Milliseconds since the producer was created (about the proxy's start).
    pub uptime_ms: u64,
    /// Current connections (`actconn`).
    pub actconn: u32,
    /// `global.maxconn`.
    pub maxconn: u32,
    /// Connections accepted since start (`totalconn`).
    pub totalconn: u64,
    /// HTTP requests since start, all frontends (`cum_req`).
    pub cum_req: u64,
    /// Tasks in the run queue.
    pub run_queue: usize,
    /// Tasks waiting for a timer.
    pub wait_queue: usize,
    /// Live tasks (`nb_tasks`).
    pub nb_tasks: usize,
    /// Tasks run since start.
    pub tasks_run: u64,
    /// Loop counters.
    pub activity: Activity,
    /// File descriptors in `fdtab[]`.
    pub fds: usize,
    /// Pools (`show pools`).
    pub pools: Vec<PoolStats>,
    /// Proxies in configuration order.
    pub proxies: Vec<ProxySnap>,
    /// Live sessions (at most `MAX_SESSIONS`, the newest).
    pub sessions: Vec<SessSnap>,
    /// Live sessions in total.
    pub sessions_total: usize,
    /// Sessions freed since the previous snapshot, in the order they were freed.
    pub freed: Vec<SessSnap>,
    /// Freed sessions not remembered (more than `MAX_FREED` between two snapshots).
    pub freed_elided: u64,
    /// Transactions ended since the previous snapshot, in the order they ended.
    pub txns: Vec<TxnSnap>,
    /// Ended transactions not remembered (more than `MAX_TXNS` between two snapshots).
    pub txns_elided: u64,
    /// A soft stop is in progress.
    pub stopping: bool,
    /// The loop has ended: this is the proxy's last copy (a finished scenario's, say).
    pub stopped: bool,
}

impl Snapshot {
    /// Copies what the views need from `w` (runs on the proxy thread).
    pub fn take(w: &Haproxy, seq: u64, uptime_ms: u64) -> Snapshot {
        let mut live: Vec<&Session> = w.sessions.iter().map(|(_, s)| s).collect();
        let sessions_total = w.sessions.len();
        if live.len() > MAX_SESSIONS {
            // Keep the newest: a partial selection, not a full sort.
            live.select_nth_unstable_by_key(MAX_SESSIONS, |s| std::cmp::Reverse(s.uniq_id));
            live.truncate(MAX_SESSIONS);
        }
        Snapshot {
            seq,
            now_ms: w.clock.now_ms.0,
            uptime_ms,
            actconn: w.actconn,
            maxconn: w.global.maxconn,
            totalconn: w.totalconn,
            cum_req: w.proxies.iter().filter(|p| p.is_frontend()).map(|p| p.counters.cum_req).sum(),
            run_queue: w.sched.run_queue(),
            wait_queue: w.sched.wait_queue(),
            nb_tasks: w.sched.nb_tasks(),
            tasks_run: w.sched.tasks_run,
            activity: w.activity.clone(),
            fds: w.fdtab.nbfd,
            pools: w.pool_stats(),
            proxies: w.proxies.iter().map(|p| ProxySnap::of(w, p)).collect(),
            sessions: live.into_iter().map(|s| SessSnap::of(s, Some(w))).collect(),
            sessions_total,
            freed: Vec::new(),
            freed_elided: 0,
            txns: Vec::new(),
            txns_elided: 0,
            stopping: w.stopping,
            stopped: false,
        }
    }

    /// The proxy `id`.
    pub fn proxy(&self, id: ProxyId) -> Option<&ProxySnap> {
        self.proxies.get(id.idx())
    }

    /// The server `id`.
    pub fn server(&self, id: ServerId) -> Option<&ServerSnap> {
        self.proxy(id.px)?.servers.iter().find(|s| s.id == id)
    }
}

/// Where a line of the log pane came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// A traffic or administrative log line (`send_log`).
    Log,
    /// A `-d` debug line.
    Debug,
    /// A `tracing` event (warnings and errors of the proxy).
    Event,
    /// A message from the UI itself (commands sent, configuration warnings).
    Ui,
}

/// The UI's end of the producer: snapshots and log lines.
pub struct Feed {
    /// Snapshots, oldest first.
    pub snapshots: Receiver<Box<Snapshot>>,
    /// Log and debug lines, oldest first.
    pub logs: Receiver<(LogKind, String)>,
    wanted: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl Feed {
    /// Asks for a snapshot at the end of the next loop turn, whatever the interval (after a
    /// command, so that its effect shows at once).
    pub fn request(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    /// Snapshots and log lines dropped because the UI was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The `Observer` that feeds the UI (runs on the proxy thread; never blocks).
pub struct SnapshotProducer {
    tx: SyncSender<Box<Snapshot>>,
    logs: SyncSender<(LogKind, String)>,
    interval_ms: u64,
    last_ms: Option<u64>,
    start_ms: Option<u64>,
    seq: u64,
    wanted: Arc<AtomicBool>,
    freed: Vec<SessSnap>,
    freed_elided: u64,
    txns: Vec<TxnSnap>,
    txns_elided: u64,
    /// Transactions ended so far by each live session.
    txn_counts: std::collections::HashMap<u32, u32>,
    dropped: Arc<AtomicU64>,
}

/// A producer copying at most every `interval_ms`, and the UI's end of it.
pub fn producer(interval_ms: u64) -> (SnapshotProducer, Feed) {
    let (tx, rx) = sync_channel(SNAPSHOT_QUEUE);
    let (ltx, lrx) = sync_channel(LOG_QUEUE);
    let wanted = Arc::new(AtomicBool::new(true));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        SnapshotProducer {
            tx,
            logs: ltx,
            interval_ms,
            last_ms: None,
            start_ms: None,
            seq: 0,
            wanted: Arc::clone(&wanted),
            freed: Vec::new(),
            freed_elided: 0,
            txns: Vec::new(),
            txns_elided: 0,
            txn_counts: std::collections::HashMap::new(),
            dropped: Arc::clone(&dropped),
        },
        Feed { snapshots: rx, logs: lrx, wanted, dropped },
    )
}

impl SnapshotProducer {
    /// A sink for `-d` debug lines (`Haproxy::debug_sink`) feeding the UI's log pane.
    pub fn debug_sink(&self) -> DebugSink {
        let tx = self.logs.clone();
        let dropped = Arc::clone(&self.dropped);
        Box::new(move |line: &str| {
            if tx.try_send((LogKind::Debug, line.to_string())).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        })
    }

    /// Copies the state when one is due (or `last`: the loop ended) and sends it.
    fn publish(&mut self, w: &Haproxy, last: bool) {
        let now = w.clock.now_ms.0;
        let start = *self.start_ms.get_or_insert(now);
        // The loop's own clock: no system call on the hot path.
        let due = self.wanted.swap(false, Ordering::Relaxed)
            || last
            || self.last_ms.is_none_or(|l| now.saturating_sub(l) >= self.interval_ms);
        // Sessions freed in this turn end now.
        for f in self.freed.iter_mut().filter(|f| f.end_ms.is_none()) {
            f.end_ms = Some(now);
        }
        if !due {
            return;
        }
        self.seq += 1;
        let mut snap = Snapshot::take(w, self.seq, now - start);
        for s in &mut snap.sessions {
            s.txns = self.txn_counts.get(&s.uniq_id).copied().unwrap_or(0);
        }
        snap.freed = std::mem::take(&mut self.freed);
        snap.freed_elided = std::mem::take(&mut self.freed_elided);
        snap.txns = std::mem::take(&mut self.txns);
        snap.txns_elided = std::mem::take(&mut self.txns_elided);
        snap.stopped = last;
        match self.tx.try_send(Box::new(snap)) {
            Ok(()) => self.last_ms = Some(now),
            Err(TrySendError::Full(snap)) | Err(TrySendError::Disconnected(snap)) => {
                // The UI is behind: keep the freed sessions for the next copy.
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.freed = snap.freed;
                self.freed_elided = snap.freed_elided;
                self.txns = snap.txns;
                self.txns_elided = snap.txns_elided;
                self.last_ms = Some(now);
            }
        }
    }
}

impl Observer for SnapshotProducer {
    fn log(&mut self, line: &str) {
        if self.logs.try_send((LogKind::Log, line.to_string())).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn txn_ended(&mut self, w: &Haproxy, s: &Session, log: Option<&str>) {
        if TxnSnap::empty_wait(w, s, log) {
            return;
        }
        let n = self.txn_counts.entry(s.uniq_id).or_insert(0);
        *n += 1;
        // Past the bound, counted without being copied (under load, most of a copy's
        // cost was its strings, made and then dropped).
        if self.txns.len() >= MAX_TXNS {
            self.txns_elided += 1;
        } else if let Some(t) = TxnSnap::of(w, s, *n, log) {
            self.txns.push(t);
        }
    }

    fn session_freed(&mut self, s: &Session) {
        let txns = self.txn_counts.remove(&s.uniq_id).unwrap_or(0);
        if self.freed.len() < MAX_FREED {
            let mut snap = SessSnap::of(s, None);
            snap.txns = txns;
            self.freed.push(snap);
        } else {
            self.freed_elided += 1;
        }
    }

    fn loop_turn(&mut self, w: &Haproxy) {
        self.publish(w, false);
    }

    fn stopped(&mut self, w: &Haproxy) {
        // Whatever the interval: the sessions freed since the previous copy travel in
        // this one, and the views keep showing how the proxy ended.
        self.publish(w, true);
    }
}
