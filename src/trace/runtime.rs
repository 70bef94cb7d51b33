//! Runtime traces: HAProxy's `trace` facility (2.1+, `trace.c`, `sink.c`, `ring.c`) over
//! haflow's spans, driven from the stats socket.
//!
//! HAProxy lets an operator turn tracing on for one subsystem of a live process: a *source*
//! (`h1`, `stream`, ...) reports *events* at a *level* (`user` .. `developer`), may *lock*
//! onto the first session (backend, server...) it sees so that only that one is followed,
//! and writes to a *sink*: `stdout`, `stderr` or `buf0`, a 1 MiB in-memory ring read back
//! with `show events buf0`. haflow's sources are its span families: `session` (accept and
//! free), `stream` (`process_session`, the analysers, the connect path and socket I/O),
//! `listener`, `task`, `poller` and `check`; their events are the span names, i.e. the
//! HAProxy function names of `trace::names`. Span levels map to trace levels as
//! ARCHITECTURE.md §4 says: INFO is `user`, DEBUG is `proto`, TRACE is `developer`;
//! fields recorded later on a span (`to`, `status`...) are `state` changes.
//!
//! The records come from a `tracing` layer (`TraceLayer`) installed in the process-wide
//! subscriber behind a per-layer filter (`trace_filter`). The settings live in a
//! `TraceCtl` owned by the proxy and published to its thread (`install_for_this_thread`);
//! while no proxy of the process traces anything the filter tells `tracing` that no
//! callsite is of interest (the span macros then skip everything, as with no subscriber),
//! and while one does, the filter reads that proxy's atomic flag. Only the proxy thread
//! changes the settings (CLI commands run there).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tracing::{Level, Metadata};

use crate::trace::capture::Field2;
use crate::trace::names;

/// Size of the `buf0` ring, as HAProxy's default (`BUFSIZE`-independent 1 MiB).
pub const BUF0_SIZE: usize = 1 << 20;

/// `enum trace_level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TraceLevel {
    /// `error`: report errors.
    Error = 0,
    /// `user`: information useful to the end user (INFO spans).
    User,
    /// `proto`: protocol-level updates (DEBUG spans).
    Proto,
    /// `state`: internal state changes (fields recorded after a span was created).
    State,
    /// `data`: data transfers.
    Data,
    /// `developer`: information useful only to the developer (TRACE spans).
    Developer,
}

/// Level names and descriptions, in order (`trace_lvl_names`).
const LEVELS: [(&str, &str); 6] = [
    ("error", "report errors"),
    ("user", "also information useful to the end user"),
    ("proto", "also protocol-level updates"),
    ("state", "also report internal state changes"),
    ("data", "also report data transfers"),
    ("developer", "also report information useful only to the developer"),
];

impl TraceLevel {
    fn from_index(i: usize) -> TraceLevel {
        [Self::Error, Self::User, Self::Proto, Self::State, Self::Data, Self::Developer][i.min(5)]
    }

    /// The trace level of a span or event of `tracing` level `l`.
    pub fn of(l: &Level) -> TraceLevel {
        match *l {
            Level::ERROR | Level::WARN => TraceLevel::Error,
            Level::INFO => TraceLevel::User,
            Level::DEBUG => TraceLevel::Proto,
            Level::TRACE => TraceLevel::Developer,
        }
    }
}

/// Verbosity names and descriptions (those of HAProxy's `stream` source).
const VERBOSITIES: [(&str, &str); 6] = [
    ("quiet", "only report basic information with no decoding"),
    ("clean", "only user-friendly stuff, generally suitable for level \"user\""),
    ("minimal", "report info on streams and connectors"),
    ("simple", "add info on request and response channels"),
    ("advanced", "add info on channel's buffer for data and developer levels only"),
    ("complete", "add info on channel's buffer"),
];

/// Sinks (`struct sink`): name, type, description (HAProxy 2.6's typo included).
const SINKS: [(&str, &str, &str); 4] = [
    ("none", "", "no sink"),
    ("stdout", "fd", "standard output (fd#1)"),
    ("stderr", "fd", "standard output (fd#2)"),
    ("buf0", "buffer", "in-memory ring buffer"),
];

/// Lock-on criteria (`enum trace_lockon`) with their descriptions.
const LOCKONS: [(&str, &str); 7] = [
    ("backend", "lock on the backend that started the trace"),
    ("frontend", "lock on the frontend that started the trace"),
    ("listener", "lock on the listener that started the trace"),
    ("nothing", "do not lock on anything"),
    ("server", "lock on the server that started the trace"),
    ("session", "lock on the session that started the trace"),
    ("thread", "lock on the thread that started the trace"),
];

/// A trace source: its name, description and events (the span names it covers, with the
/// HAProxy file each function comes from).
struct SourceDef {
    name: &'static str,
    desc: &'static str,
    events: &'static [(&'static str, &'static str)],
}

const SOURCES: [SourceDef; 6] = [
    SourceDef {
        name: "session",
        desc: "Session accept and release",
        events: &[
            (names::SESSION, "session.c: a session's lifetime"),
            (names::SESSION_ACCEPT, "session.c:session_accept()"),
            (names::FRONTEND_ACCEPT, "frontend.c:frontend_accept()"),
            (names::SESSION_FREE, "session.c:session_free()"),
            (names::POOL_ALLOC2, "memory.h:pool_alloc2()"),
            (names::POOL_FREE2, "memory.h:pool_free2()"),
        ],
    },
    SourceDef {
        name: "stream",
        desc: "Session processing (process_session and analysers)",
        events: &[
            (names::PROCESS_SESSION, "session.c:process_session()"),
            (names::FRONTEND_DECODE_PROXY_REQUEST, "frontend.c:frontend_decode_proxy_request()"),
            (names::HTTP_WAIT_FOR_REQUEST, "proto_http.c:http_wait_for_request()"),
            (names::HTTP_PROCESS_REQ_COMMON, "proto_http.c:http_process_req_common()"),
            (names::HTTP_WAIT_FOR_MSG_BODY, "http_ana.c:http_wait_for_msg_body() (2.6)"),
            (names::HTTP_HANDLE_STATS, "proto_http.c:http_handle_stats()"),
            (names::HTTP_STATS_IO_HANDLER, "dumpstats.c:http_stats_io_handler()"),
            (names::PROCESS_SWITCHING_RULES, "session.c:process_switching_rules()"),
            (names::PROCESS_SERVER_RULES, "session.c:process_server_rules() (1.5.0)"),
            (names::TCP_INSPECT_REQUEST, "proto_tcp.c:tcp_inspect_request()"),
            (names::TCP_INSPECT_RESPONSE, "proto_tcp.c:tcp_inspect_response()"),
            (names::TCP_EXEC_REQ_RULES, "proto_tcp.c:tcp_exec_req_rules()"),
            (names::TCP_EXEC_L5_RULES, "tcp_rules.c:tcp_exec_l5_rules()"),
            (names::PROCESS_STICKING_RULES, "session.c:process_sticking_rules()"),
            (names::PROCESS_STORE_RULES, "session.c:process_store_rules()"),
            (names::PROCESS_TABLE_EXPIRE, "stick_table.c:process_table_expire()"),
            (names::SESSION_TRACK_STKCTR, "session.h:session_track_stkctr()"),
            (names::SESSION_STORE_COUNTERS, "session.h:session_store_counters()"),
            (names::MANAGE_CLIENT_SIDE_COOKIES, "proto_http.c:manage_client_side_cookies()"),
            (names::MANAGE_SERVER_SIDE_COOKIES, "proto_http.c:manage_server_side_cookies()"),
            (names::HTTP_PROCESS_REQUEST, "proto_http.c:http_process_request()"),
            (names::HTTP_REQUEST_FORWARD_BODY, "proto_http.c:http_request_forward_body()"),
            (names::HTTP_WAIT_FOR_RESPONSE, "proto_http.c:http_wait_for_response()"),
            (names::HTTP_PROCESS_RES_COMMON, "proto_http.c:http_process_res_common()"),
            (names::HTTP_RESPONSE_FORWARD_BODY, "proto_http.c:http_response_forward_body()"),
            (names::SELECT_COMPRESSION_REQUEST_HEADER, "proto_http.c:select_compression_request_header()"),
            (names::SELECT_COMPRESSION_RESPONSE_HEADER, "proto_http.c:select_compression_response_header()"),
            (names::HTTP_COMPRESSION_BUFFER_END, "compression.c:http_compression_buffer_end()"),
            (names::HTTP_ACTION_REQ_CACHE_USE, "cache.c:http_action_req_cache_use()"),
            (names::HTTP_ACTION_STORE_CACHE, "cache.c:http_action_store_cache()"),
            (names::HTTP_CACHE_IO_HANDLER, "cache.c:http_cache_io_handler()"),
            (names::HTTP_END_TXN_CLEAN_SESSION, "proto_http.c:http_end_txn_clean_session()"),
            (names::HTTP_RESYNC_STATES, "proto_http.c:http_resync_states()"),
            (names::SESS_PREPARE_CONN_REQ, "session.c:sess_prepare_conn_req()"),
            (names::ASSIGN_SERVER, "backend.c:assign_server()"),
            (names::CONNECT_SERVER, "backend.c:connect_server()"),
            (names::TCP_CONNECT_SERVER, "proto_tcp.c:tcp_connect_server()"),
            (names::CONN_BACKEND_GET, "backend.c:conn_backend_get() (2.6)"),
            (names::SRV_ADD_TO_IDLE_LIST, "server.c:srv_add_to_idle_list() (2.6)"),
            (names::SRV_CLEANUP_IDLE_CONNS, "server.c:srv_cleanup_idle_conns() (2.6)"),
            (names::SESS_UPDATE_STREAM_INT, "session.c:sess_update_stream_int()"),
            (names::SESS_UPDATE_ST_CON_TCP, "session.c:sess_update_st_con_tcp()"),
            (names::SESS_UPDATE_ST_CER, "session.c:sess_update_st_cer()"),
            (names::SESS_ESTABLISH, "session.c:sess_establish()"),
            (names::PENDCONN_ADD, "queue.c:pendconn_add()"),
            (names::PROCESS_SRV_QUEUE, "queue.c:process_srv_queue()"),
            (names::STREAM_SOCK_READ, "stream_sock.c:stream_sock_read()"),
            (names::STREAM_SOCK_WRITE, "stream_sock.c:stream_sock_write()"),
            (names::STREAM_SOCK_SHUTR, "stream_sock.c:stream_sock_shutr()"),
            (names::STREAM_SOCK_SHUTW, "stream_sock.c:stream_sock_shutw()"),
        ],
    },
    SourceDef {
        name: "listener",
        desc: "Listeners and accept",
        events: &[
            (names::STREAM_SOCK_ACCEPT, "stream_sock.c:stream_sock_accept()"),
            (names::ENABLE_LISTENER, "protocols.c:enable_listener()"),
            (names::LISTENER_FULL, "protocols.c:listener_full()"),
            (names::LIMIT_LISTENER, "protocols.c:limit_listener()"),
            (names::RESUME_LISTENER, "protocols.c:resume_listener()"),
            (names::PAUSE_LISTENER, "protocols.c:pause_listener()"),
            (names::MANAGE_GLOBAL_LISTENER_QUEUE, "listener.c:manage_global_listener_queue()"),
        ],
    },
    SourceDef {
        name: "task",
        desc: "Scheduler",
        events: &[
            (names::TASK_NEW, "task.h:task_new()"),
            (names::TASK_WAKEUP, "task.h:task_wakeup()"),
            (names::TASK_DELETE, "task.h:task_delete()"),
            (names::TASK_FREE, "task.h:task_free()"),
            (names::WAKE_EXPIRED_TASKS, "task.c:wake_expired_tasks()"),
            (names::PROCESS_RUNNABLE_TASKS, "task.c:process_runnable_tasks()"),
        ],
    },
    SourceDef {
        name: "poller",
        desc: "Event loop and poller",
        events: &[
            (names::RUN_POLL_LOOP, "haproxy.c:run_poll_loop()"),
            (names::DO_POLL, "ev_epoll.c:_do_poll()"),
        ],
    },
    SourceDef {
        name: "check",
        desc: "Health-check",
        events: &[
            (names::START_CHECKS, "checks.c:start_checks()"),
            (names::PROCESS_CHK, "checks.c:process_chk()"),
            (names::EVENT_SRV_CHK_W, "checks.c:event_srv_chk_w()"),
            (names::EVENT_SRV_CHK_R, "checks.c:event_srv_chk_r()"),
            (names::WAKE_SRV_CHK, "checks.c:wake_srv_chk()"),
            (names::TCPCHECK_MAIN, "tcpcheck.c:tcpcheck_main()"),
            (names::SET_SERVER_DOWN, "checks.c:set_server_down()"),
            (names::SET_SERVER_UP, "checks.c:set_server_up()"),
        ],
    },
];

/// Which source and event a span name belongs to.
fn source_of(name: &str) -> Option<(usize, usize)> {
    SOURCES
        .iter()
        .enumerate()
        .find_map(|(s, def)| def.events.iter().position(|(n, _)| *n == name).map(|e| (s, e)))
}

/// `src->state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SrcState {
    Stopped,
    Waiting,
    Running,
}

/// What `start`/`stop`/`pause` wait for: nothing, immediately, or an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    None,
    Event(usize),
}

/// One source's settings (`struct trace_source`).
#[derive(Clone, Debug)]
struct SourceState {
    state: SrcState,
    level: TraceLevel,
    verbosity: usize,
    sink: usize,
    lockon: usize,
    /// The object the trace locked onto (`lockon_ptr`), as text.
    lock_val: Option<String>,
    /// Events reported (bit per event).
    report: u64,
    start: Trigger,
    stop: Trigger,
    pause: Trigger,
}

impl Default for SourceState {
    fn default() -> Self {
        SourceState {
            state: SrcState::Stopped,
            level: TraceLevel::User,
            verbosity: 5,
            sink: 0,
            lockon: 3,
            lock_val: None,
            report: 0,
            start: Trigger::None,
            stop: Trigger::None,
            pause: Trigger::None,
        }
    }
}

/// A ring of formatted lines (`struct ring`), oldest dropped first when full.
#[derive(Debug, Default)]
pub struct Ring {
    lines: VecDeque<(u64, String)>,
    bytes: usize,
    next_seq: u64,
}

impl Ring {
    fn push(&mut self, line: String) {
        self.bytes += line.len() + 1;
        self.lines.push_back((self.next_seq, line));
        self.next_seq += 1;
        while self.bytes > BUF0_SIZE {
            match self.lines.pop_front() {
                Some((_, l)) => self.bytes -= l.len() + 1,
                None => break,
            }
        }
    }

    /// Sequence number the next line will get (a reader's "end" position).
    pub fn end(&self) -> u64 {
        self.next_seq
    }

    /// Lines from sequence number `from` (or the oldest kept, when `from` was dropped) up
    /// to `until` excluded, as many as fit in `max_bytes` counting their `\n` (at least
    /// one), and the position after them.
    pub fn since(&self, from: u64, until: u64, max_bytes: usize) -> (Vec<String>, u64) {
        let first = self.lines.front().map_or(self.next_seq, |(s, _)| *s);
        let mut pos = from.max(first);
        let (mut out, mut bytes) = (Vec::new(), 0);
        for (seq, l) in self.lines.range(((pos - first) as usize).min(self.lines.len())..) {
            if *seq >= until || (bytes > 0 && bytes + l.len() + 1 > max_bytes) {
                break;
            }
            bytes += l.len() + 1;
            out.push(l.clone());
            pos = seq + 1;
        }
        (out, pos)
    }
}

/// What the trace layer learnt about a session from its spans, for lock-on.
#[derive(Clone, Debug, Default)]
struct SessInfo {
    fe: Option<String>,
    be: Option<String>,
    srv: Option<String>,
    listener: Option<String>,
}

#[derive(Debug, Default)]
struct TraceInner {
    sources: Vec<SourceState>,
    ring: Ring,
    sessions: HashMap<u64, SessInfo>,
    /// Lines lost per sink (`drp`): none so far, the ring overwrites its oldest lines.
    dropped: [u64; 4],
}

/// Formats the date at the start of a `buf0` line (the proxy's, as its logs write it).
pub type Stamp = fn(SystemTime) -> String;

/// The trace settings and the `buf0` ring of one proxy.
#[derive(Debug)]
pub struct TraceCtl {
    active: AtomicBool,
    inner: Mutex<TraceInner>,
    stamp: Stamp,
}

impl TraceCtl {
    /// Settings with every source stopped; `buf0` lines are dated with `stamp`.
    pub fn new(stamp: Stamp) -> TraceCtl {
        let inner = TraceInner { sources: vec![SourceState::default(); SOURCES.len()], ..Default::default() };
        TraceCtl { active: AtomicBool::new(false), inner: Mutex::new(inner), stamp }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<TraceCtl>>> = const { RefCell::new(None) };
}

/// Makes `ctl` the trace settings of spans created on this thread (the proxy thread).
pub fn install_for_this_thread(ctl: Arc<TraceCtl>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(ctl));
}

fn with_current<R>(f: impl FnOnce(&TraceCtl) -> R) -> Option<R> {
    CURRENT.with(|c| c.try_borrow().ok().and_then(|c| c.as_ref().map(|t| f(t))))
}

/// Proxies of this process with a trace source running or waiting.
static TRACING_PROXIES: AtomicUsize = AtomicUsize::new(0);

/// True when some proxy of this process runs (or waits to run) a trace: the subscriber
/// then keeps every callsite reachable, at a per-span check of `active_here`.
pub fn tracing_anywhere() -> bool {
    TRACING_PROXIES.load(Ordering::Relaxed) > 0
}

/// True when this thread's proxy has a trace source running or waiting.
pub fn active_here() -> bool {
    // One relaxed load when no proxy traces anything (every span asks).
    tracing_anywhere() && with_current(|t| t.active.load(Ordering::Relaxed)).unwrap_or(false)
}

/// What the hooks remember of an open span while a trace runs: its callsite and the
/// session it belongs to (inherited from its parent).
struct OpenSpan {
    meta: &'static Metadata<'static>,
    sess: Option<u64>,
}

thread_local! {
    static OPEN: RefCell<HashMap<u64, OpenSpan>> = RefCell::new(HashMap::new());
}

/// A field list as the hooks receive it.
struct Fields<'a>(&'a [Field2]);

impl Fields<'_> {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.as_str())
    }
}

/// Subscriber hook: span `id` was created on this thread (called only when `active_here`).
pub fn span_new(meta: &'static Metadata<'static>, id: u64, parent: Option<u64>, fields: &[Field2]) {
    let f = Fields(fields);
    let sess = OPEN.with(|o| {
        let mut o = o.borrow_mut();
        let sess =
            f.get("sess").and_then(|v| v.parse().ok()).or_else(|| parent.and_then(|p| o.get(&p)?.sess));
        if o.len() > 1 << 16 {
            o.clear();
        }
        o.insert(id, OpenSpan { meta, sess });
        sess
    });
    with_current(|t| t.report(meta, TraceLevel::of(meta.level()), sess, &f, false));
}

/// Subscriber hook: span `id` recorded more fields.
pub fn span_record(id: u64, fields: &[Field2]) {
    let Some((meta, sess)) = OPEN.with(|o| o.borrow().get(&id).map(|s| (s.meta, s.sess))) else { return };
    let lvl = TraceLevel::of(meta.level()).max(TraceLevel::State);
    with_current(|t| t.report(meta, lvl, sess, &Fields(fields), true));
}

/// Subscriber hook: an event happened inside span `parent`.
pub fn event(level: &Level, parent: Option<u64>, fields: &[Field2]) {
    let Some((meta, sess)) = parent.and_then(|p| OPEN.with(|o| o.borrow().get(&p).map(|s| (s.meta, s.sess))))
    else {
        return;
    };
    with_current(|t| t.report(meta, TraceLevel::of(level), sess, &Fields(fields), true));
}

/// Subscriber hook: span `id` closed.
pub fn span_close(id: u64) {
    let _ = OPEN.try_with(|o| o.borrow_mut().remove(&id));
}

impl TraceCtl {
    fn lock(&self) -> MutexGuard<'_, TraceInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the fast-path flag; true when `tracing`'s interest cache must be rebuilt
    /// (the first proxy started tracing, or the last one stopped). Rebuild without the lock.
    fn refresh_active(&self, inner: &TraceInner) -> bool {
        let any = inner.sources.iter().any(|s| s.state != SrcState::Stopped);
        if self.active.swap(any, Ordering::Relaxed) == any {
            return false;
        }
        if any {
            TRACING_PROXIES.fetch_add(1, Ordering::Relaxed) == 0
        } else {
            TRACING_PROXIES.fetch_sub(1, Ordering::Relaxed) == 1
        }
    }

    /// trace.c:__trace(): decide whether a span (or a field update) is reported, and
    /// write it to the source's sink.
    fn report(&self, meta: &Metadata<'_>, lvl: TraceLevel, sess: Option<u64>, f: &Fields<'_>, update: bool) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        let name = meta.name();
        let mut guard = self.lock();
        let inner = &mut *guard;
        // Learn what the session is attached to, for the lock-on criteria.
        if let Some(s) = sess {
            if inner.sessions.len() > 65536 {
                inner.sessions.clear();
            }
            let info = inner.sessions.entry(s).or_default();
            if let Some(v) = f.get("fe") {
                info.fe = Some(v.to_string());
            }
            if let Some(v) = f.get("backend") {
                info.be = Some(v.to_string());
            }
            if let Some(v) = f.get("server") {
                info.srv = Some(v.to_string());
            }
            if let Some(v) = f.get("listener") {
                info.listener = Some(v.to_string());
            }
        }
        let Some((src, ev)) = source_of(name) else { return };
        let info = sess.and_then(|s| inner.sessions.get(&s)).cloned().unwrap_or_default();
        if name == names::SESSION_FREE
            && !update
            && let Some(s) = sess
        {
            inner.sessions.remove(&s);
        }
        let st = &mut inner.sources[src];
        // Start, stop and pause on events, whatever the level.
        if st.state == SrcState::Waiting && st.start == Trigger::Event(ev) {
            st.state = SrcState::Running;
        }
        if st.state != SrcState::Running || lvl > st.level || st.report & (1 << ev) == 0 {
            if st.state == SrcState::Running && st.stop == Trigger::Event(ev) {
                st.state = SrcState::Stopped;
            }
            let rebuild = self.refresh_active(inner);
            drop(guard);
            if rebuild {
                tracing::callsite::rebuild_interest_cache();
            }
            return;
        }
        // Lock-on: the first event carrying the criterion sets it, later ones must match.
        let crit = match LOCKONS[st.lockon].0 {
            "session" => sess.map(|s| s.to_string()),
            "frontend" => info.fe.clone(),
            "backend" => info.be.clone(),
            "server" => match (&info.be, &info.srv) {
                (_, Some(s)) if s.contains('/') => Some(s.clone()),
                (Some(b), Some(s)) => Some(format!("{b}/{s}")),
                _ => f.get("server").map(str::to_string),
            },
            "listener" => info.listener.clone(),
            "thread" => Some("0".to_string()),
            _ => None,
        };
        if LOCKONS[st.lockon].0 != "nothing" {
            match (&st.lock_val, &crit) {
                (Some(want), Some(have)) if want == have => {}
                (Some(want), Some(have))
                    if LOCKONS[st.lockon].0 == "server" && want.ends_with(&format!("/{have}")) => {}
                (Some(_), _) => return,
                (None, Some(have)) => st.lock_val = Some(have.clone()),
                (None, None) => {}
            }
        }
        // quiet: the function; clean and minimal: and the session; simple and more: and
        // every field (`set` marks fields recorded after the span was created).
        let verbosity = st.verbosity;
        let mut parts: Vec<String> = Vec::new();
        if verbosity >= 1
            && let Some(s) = sess
        {
            parts.push(format!("sess={s}"));
        }
        if verbosity >= 3 {
            if update {
                parts.push("set".into());
            }
            parts.extend(f.0.iter().filter(|(k, _)| *k != "sess").map(|(k, v)| format!("{k}={v}")));
        }
        let mut msg = String::from(name);
        if !parts.is_empty() {
            let _ = write!(msg, ": {}", parts.join(" "));
        }
        let file = meta.file().map_or("?", |p| p.rsplit('/').next().unwrap_or(p));
        let body =
            format!("[00|{}|{}|{}:{}] {}", SOURCES[src].name, lvl as u8, file, meta.line().unwrap_or(0), msg);
        let sink = st.sink;
        if st.stop == Trigger::Event(ev) {
            st.state = SrcState::Stopped;
        } else if st.pause == Trigger::Event(ev) {
            st.state = SrcState::Waiting;
        }
        match SINKS[sink].0 {
            "stdout" => {
                let _ = writeln!(std::io::stdout().lock(), "{body}");
            }
            "stderr" => {
                let _ = writeln!(std::io::stderr().lock(), "{body}");
            }
            "buf0" => inner.ring.push(format!("<0>{} {body}", (self.stamp)(SystemTime::now()))),
            _ => {}
        }
        let rebuild = self.refresh_active(inner);
        drop(guard);
        if rebuild {
            tracing::callsite::rebuild_interest_cache();
        }
    }

    /// Position after the last line of `buf0` (for `show events -n` and `-w`).
    pub fn ring_end(&self) -> u64 {
        self.lock().ring.end()
    }

    /// `buf0` lines from position `from` up to `until` (excluded), at most about
    /// `max_bytes` of them (see `Ring::since`), and the position after them.
    pub fn ring_since(&self, from: u64, until: u64, max_bytes: usize) -> (Vec<String>, u64) {
        self.lock().ring.since(from, until, max_bytes)
    }

    /// True when `name` is a sink `show events` knows.
    pub fn is_sink(name: &str) -> bool {
        SINKS.iter().skip(1).any(|(n, _, _)| *n == name)
    }

    /// `show events` without argument: the list of sinks.
    pub fn show_sinks(&self) -> String {
        let inner = self.lock();
        let mut out =
            String::from("Supported events sinks are listed below. Add -w(wait), -n(new). Any key to stop\n");
        for (i, (n, ty, desc)) in SINKS.iter().enumerate().skip(1) {
            let _ = writeln!(out, "    {n:<10} : type={ty}, {} dropped, {desc}", inner.dropped[i]);
        }
        out
    }

    /// trace.c:cli_io_handler_show_trace(): `show trace [<source>]`.
    pub fn show_trace(&self, src: Option<&str>) -> Result<String, String> {
        let inner = self.lock();
        match src {
            None => {
                let mut out =
                    String::from("Supported trace sources and states (.=stopped, w=waiting, R=running) :\n");
                for (def, st) in SOURCES.iter().zip(&inner.sources) {
                    let _ = writeln!(
                        out,
                        " [{}] {:<10} -> {} [drp {}]  [{}]",
                        state_char(st.state),
                        def.name,
                        SINKS[st.sink].0,
                        inner.dropped[st.sink],
                        def.desc
                    );
                }
                Ok(out)
            }
            Some(name) => {
                let i = find_source(name).ok_or("No such trace source")?;
                let (def, st) = (&SOURCES[i], &inner.sources[i]);
                let mut out = format!(
                    "Trace status for {}:\n  - sink: {} [{} dropped]\n  - event name   :     report    start    stop    pause\n",
                    def.name, SINKS[st.sink].0, inner.dropped[st.sink]
                );
                for (e, (ev, _)) in def.events.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "    {:<12} :        {}        {}        {}       {}",
                        ev,
                        if st.report & (1 << e) != 0 { '+' } else { '-' },
                        if st.start == Trigger::Event(e) { '+' } else { '-' },
                        if st.stop == Trigger::Event(e) { '+' } else { '-' },
                        if st.pause == Trigger::Event(e) { '+' } else { '-' },
                    );
                }
                Ok(out)
            }
        }
    }

    /// trace.c:cli_parse_trace(): `trace`, `trace 0`, `trace <source> [cmd [args...]]`.
    /// Returns the answer (the CLI adds the end-of-answer line).
    pub fn cli_trace(&self, args: &[&str]) -> String {
        let mut inner = self.lock();
        let out = trace_cmd(&mut inner, args);
        let rebuild = self.refresh_active(&inner);
        drop(inner);
        if rebuild {
            tracing::callsite::rebuild_interest_cache();
        }
        out
    }
}

impl Drop for TraceCtl {
    fn drop(&mut self) {
        if self.active.load(Ordering::Relaxed) && TRACING_PROXIES.fetch_sub(1, Ordering::Relaxed) == 1 {
            tracing::callsite::rebuild_interest_cache();
        }
    }
}

fn state_char(s: SrcState) -> char {
    match s {
        SrcState::Stopped => '.',
        SrcState::Waiting => 'w',
        SrcState::Running => 'R',
    }
}

fn find_source(name: &str) -> Option<usize> {
    SOURCES.iter().position(|s| s.name == name)
}

/// The body of `trace ...` (see `TraceCtl::cli_trace`).
fn trace_cmd(inner: &mut TraceInner, args: &[&str]) -> String {
    let Some(&src_name) = args.first() else {
        let mut out =
            String::from("Supported trace sources and states (.=stopped, w=waiting, R=running) :\n");
        out.push_str(" [.] 0          : not a source, will immediately stop all traces\n");
        for (def, st) in SOURCES.iter().zip(&inner.sources) {
            let _ = writeln!(out, " [{}] {:<10} : {}", state_char(st.state), def.name, def.desc);
        }
        return out;
    };
    if src_name == "0" {
        for st in &mut inner.sources {
            st.state = SrcState::Stopped;
            st.lock_val = None;
        }
        return "All traces now stopped\n".into();
    }
    let Some(i) = find_source(src_name) else { return "No such trace source".into() };
    let def = &SOURCES[i];
    let st = &mut inner.sources[i];
    let Some(&cmd) = args.get(1) else {
        return "Supported commands:\n  event     : list/enable/disable source-specific event reporting\n  level     : list/set trace reporting level\n  lock      : automatic lock on thread/connection/stream/...\n  pause     : pause and automatically restart after a specific event\n  sink      : list/set event sinks\n  start     : start immediately or after a specific event\n  stop      : stop immediately or after a specific event\n  verbosity : list/set trace output verbosity\n".into();
    };
    let arg = args.get(2).copied();
    let listing = |title: &str, items: &[(&str, &str)], cur: Option<usize>| {
        let mut out = format!("{title}\n");
        for (k, (n, d)) in items.iter().enumerate() {
            let _ = writeln!(out, "  {} {:<10} : {}", if Some(k) == cur { '*' } else { ' ' }, n, d);
        }
        out
    };
    match cmd {
        "level" => match arg {
            None => listing(
                &format!("Supported trace levels for source {}:", def.name),
                &LEVELS,
                Some(st.level as usize),
            ),
            Some(l) => match LEVELS.iter().position(|(n, _)| *n == l) {
                Some(k) => {
                    st.level = TraceLevel::from_index(k);
                    String::new()
                }
                None => "No such trace level".into(),
            },
        },
        "verbosity" => match arg {
            None => listing(
                &format!("Supported trace verbosities for source {}:", def.name),
                &VERBOSITIES,
                Some(st.verbosity),
            ),
            Some(v) => match VERBOSITIES.iter().position(|(n, _)| *n == v) {
                Some(k) => {
                    st.verbosity = k;
                    String::new()
                }
                None => "No such verbosity level".into(),
            },
        },
        "sink" => match arg {
            None => {
                let items: Vec<(&str, &str)> = SINKS.iter().map(|(n, _, d)| (*n, *d)).collect();
                listing(
                    &format!("Supported sinks for source {} (*=current):", def.name),
                    &items,
                    Some(st.sink),
                )
            }
            Some(s) => match SINKS.iter().position(|(n, _, _)| *n == s) {
                Some(k) => {
                    st.sink = k;
                    String::new()
                }
                None => "No such event sink".into(),
            },
        },
        "lock" => match arg {
            None => {
                let mut out = listing(
                    &format!("Supported lock-on criteria for source {}:", def.name),
                    &LOCKONS,
                    Some(st.lockon),
                );
                if let Some(v) = &st.lock_val {
                    let _ = writeln!(out, "  (currently locked on {} {v})", LOCKONS[st.lockon].0);
                }
                out
            }
            Some(c) => match LOCKONS.iter().position(|(n, _)| *n == c) {
                Some(k) => {
                    st.lockon = k;
                    // haflow extension: `lock session 12` locks on that object right away.
                    st.lock_val = args.get(3).map(|v| v.to_string());
                    String::new()
                }
                None => "Unsupported lock-on criterion".into(),
            },
        },
        "event" => match arg {
            None => {
                let mut out = format!("Supported events for source {} (+=enabled, -=disabled):\n", def.name);
                out.push_str(
                    "  - none         : disable all event types\n  - any          : enable all event types\n",
                );
                for (e, (n, d)) in def.events.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "  {} {:<12} : {}",
                        if st.report & (1 << e) != 0 { '+' } else { '-' },
                        n,
                        d
                    );
                }
                out
            }
            Some(_) => {
                for a in &args[2..] {
                    let (neg, name) = match a.strip_prefix('-').or_else(|| a.strip_prefix('!')) {
                        Some(n) => (true, n),
                        None => (false, a.strip_prefix('+').unwrap_or(a)),
                    };
                    let all = (1u64 << def.events.len()) - 1;
                    let mask = match name {
                        "any" => all,
                        "none" => {
                            st.report = 0;
                            continue;
                        }
                        n => match def.events.iter().position(|(e, _)| *e == n) {
                            Some(k) => 1 << k,
                            None => return "No such trace event".into(),
                        },
                    };
                    if neg {
                        st.report &= !mask;
                    } else {
                        st.report |= mask;
                    }
                }
                String::new()
            }
        },
        "start" | "stop" | "pause" => match arg {
            None => {
                let cur = match cmd {
                    "start" => st.start,
                    "stop" => st.stop,
                    _ => st.pause,
                };
                let mut out = format!("Supported events for source {} (+=enabled, -=disabled):\n", def.name);
                out.push_str("  - now          : don't wait for events, immediately change the state\n");
                out.push_str(
                    "  - none         : disable all event types\n  - any          : enable all event types\n",
                );
                for (e, (n, d)) in def.events.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "  {} {:<12} : {}",
                        if cur == Trigger::Event(e) { '+' } else { '-' },
                        n,
                        d
                    );
                }
                out
            }
            Some(ev) => {
                let trig = match ev {
                    "now" => None,
                    "none" => Some(Trigger::None),
                    n => match def.events.iter().position(|(e, _)| *e == n) {
                        Some(k) => Some(Trigger::Event(k)),
                        None => return "No such trace event".into(),
                    },
                };
                match (cmd, trig) {
                    ("start", None) => {
                        st.state = SrcState::Running;
                        if st.report == 0 {
                            // Reporting nothing would make `start now` look broken.
                            st.report = (1u64 << def.events.len()) - 1;
                        }
                    }
                    ("start", Some(t)) => {
                        st.start = t;
                        if st.state == SrcState::Stopped && t != Trigger::None {
                            st.state = SrcState::Waiting;
                        }
                    }
                    ("stop", None) => {
                        st.state = SrcState::Stopped;
                        st.lock_val = None;
                    }
                    ("stop", Some(t)) => st.stop = t,
                    ("pause", None) if st.state == SrcState::Running => st.state = SrcState::Waiting,
                    ("pause", None) => {}
                    (_, Some(t)) => st.pause = t,
                    _ => {}
                }
                String::new()
            }
        },
        _ => "Unknown trace keyword".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_listing_matches_haproxy_layout() {
        let t = TraceCtl::new(|_| String::new());
        let out = t.cli_trace(&[]);
        assert!(out.starts_with("Supported trace sources and states (.=stopped, w=waiting, R=running) :\n"));
        assert!(out.contains(" [.] 0          : not a source, will immediately stop all traces\n"));
        assert!(out.contains(" [.] stream     : Session processing"));
        assert_eq!(t.cli_trace(&["foo"]), "No such trace source");
        assert_eq!(t.cli_trace(&["stream", "level", "bogus"]), "No such trace level");
        assert_eq!(t.cli_trace(&["stream", "sink", "buf9"]), "No such event sink");
        assert_eq!(t.cli_trace(&["stream", "lock", "foo"]), "Unsupported lock-on criterion");
        assert_eq!(t.cli_trace(&["stream", "frob"]), "Unknown trace keyword");
    }

    #[test]
    fn start_now_turns_the_fast_path_flag_on_and_trace_0_off() {
        let t = TraceCtl::new(|_| String::new());
        assert!(!t.active.load(Ordering::Relaxed));
        assert_eq!(t.cli_trace(&["stream", "sink", "buf0"]), "");
        assert_eq!(t.cli_trace(&["stream", "start", "now"]), "");
        assert!(t.active.load(Ordering::Relaxed));
        assert!(t.show_trace(None).unwrap().contains(" [R] stream     -> buf0 [drp 0]"));
        assert_eq!(t.cli_trace(&["0"]), "All traces now stopped\n");
        assert!(!t.active.load(Ordering::Relaxed));
    }

    #[test]
    fn ring_drops_oldest_lines_beyond_its_size() {
        let mut r = Ring::default();
        let line = "x".repeat(1000);
        for _ in 0..2000 {
            r.push(line.clone());
        }
        assert!(r.bytes <= BUF0_SIZE);
        let (lines, end) = r.since(0, u64::MAX, usize::MAX);
        assert_eq!(end, 2000);
        assert_eq!(lines.len(), BUF0_SIZE / 1001);
    }
}
