//! The UI's data: everything the views draw, updated from span records, snapshots and log
//! lines, and nothing about how it is shown.
//!
//! Three feeds arrive on the UI thread and are folded in here:
//! - `Snapshot`s (copies of the proxy's structures, see `snapshot.rs`): the latest one is
//!   kept whole; their counters also feed per-second rate histories (the sparklines); their
//!   live and freed sessions update one `SessionEntry` per `uniq_id`.
//! - capture `Record`s (see `trace::capture`): each session's spans are rebuilt live into a
//!   `Trace` (the session detail's waterfall), and the loop's own spans (`wake_expired_tasks`,
//!   `process_runnable_tasks`, `_do_poll`) are folded into one `LoopTurn` per turn of
//!   `run_poll_loop`, with the calls made in each phase (the event-loop lane).
//! - log lines, kept for the log pane and matched to sessions by client address.
//!
//! Everything is bounded (closed sessions kept, spans per session, lane length, log
//! length) so that a UI left open on a busy proxy does not grow. `State` is `Clone` so
//! that pausing can freeze a copy for display while collection goes on in the original.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::trace::capture::{Field2, Record};
use crate::trace::names;
use crate::tui::snapshot::{LogKind, SessSnap, Snapshot, TxnSnap};

/// Seconds of rate history kept for the sparklines.
pub const HISTORY_SECS: usize = 300;
/// Closed sessions kept (dimmed in the sessions view) before the oldest are forgotten.
pub const MAX_CLOSED: usize = 200;
/// Session traces kept at most, live ones included.
pub const MAX_TRACES: usize = 2000;
/// Spans kept per session; a longer session loses its oldest finished calls (not its accept).
pub const MAX_SPANS_PER_SESSION: usize = 4000;
/// Entries kept in the event-loop lane.
pub const MAX_LANE: usize = 2000;
/// Lines kept in the log pane.
pub const MAX_LOGS: usize = 2000;
/// Calls remembered per loop phase (the rest are counted).
pub const MAX_CALLS: usize = 12;
/// Ended transactions remembered per session (a long keep-alive connection forgets its
/// oldest; they stay counted).
pub const MAX_TXNS_PER_SESSION: usize = 256;

/// Counts per second over the last `HISTORY_SECS` seconds of UI time.
#[derive(Clone, Debug, Default)]
pub struct Series {
    buckets: VecDeque<u64>,
    first_sec: u64,
}

impl Series {
    /// Adds `n` to second `sec`.
    pub fn add(&mut self, sec: u64, n: u64) {
        if self.buckets.is_empty() {
            self.first_sec = sec;
        }
        if sec < self.first_sec {
            return;
        }
        while self.first_sec + self.buckets.len() as u64 <= sec {
            self.buckets.push_back(0);
        }
        let i = (sec - self.first_sec) as usize;
        self.buckets[i] += n;
        while self.buckets.len() > HISTORY_SECS {
            self.buckets.pop_front();
            self.first_sec += 1;
        }
    }

    /// The count of second `sec`.
    pub fn get(&self, sec: u64) -> u64 {
        if sec < self.first_sec {
            return 0;
        }
        self.buckets.get((sec - self.first_sec) as usize).copied().unwrap_or(0)
    }

    /// The `n` complete seconds before `now_sec`, oldest first.
    pub fn last(&self, now_sec: u64, n: usize) -> Vec<u64> {
        (0..n as u64).rev().map(|k| now_sec.checked_sub(k + 1).map_or(0, |s| self.get(s))).collect()
    }

    /// The count of the last complete second (the rate shown as a number).
    pub fn rate(&self, now_sec: u64) -> u64 {
        now_sec.checked_sub(1).map_or(0, |s| self.get(s))
    }
}

/// One session as the UI knows it: from snapshots, from its spans, or both.
#[derive(Clone, Debug)]
pub struct SessionEntry {
    /// `uniq_id`.
    pub uniq_id: u32,
    /// The latest copy from the proxy (none yet for a session younger than a snapshot).
    pub snap: Option<SessSnap>,
    /// The proxy's `now_ms` when `snap` was taken (for ages).
    pub snap_now_ms: u64,
    /// UI time when `snap` arrived.
    pub snap_at: Duration,
    /// True once freed.
    pub closed: bool,
    /// UI time when it was seen closed.
    pub closed_at: Option<Duration>,
    /// The frontend's name, from the root span.
    pub fe_name: Option<String>,
    /// The client's address as spans and logs print it.
    pub src: Option<String>,
    /// Its ended transactions, oldest first (the last `MAX_TXNS_PER_SESSION`), as the
    /// snapshots copied them when each ended: what the log line says, kept after the
    /// session was reset for the next request or freed.
    pub txns: VecDeque<TxnSnap>,
    /// Transactions ended in all (the forgotten ones too): requests served on the connection.
    pub txns_done: u32,
    /// Bytes from the client over the ended transactions.
    pub done_in: u64,
    /// Bytes to the client over the ended transactions.
    pub done_out: u64,
    /// A transaction ended with a termination state other than `----` (as the proxy
    /// copied it, or as a span recorded it).
    pub failed: bool,
}

impl SessionEntry {
    /// A session known by its number only, so far.
    pub fn new(uniq_id: u32) -> SessionEntry {
        SessionEntry {
            uniq_id,
            snap: None,
            snap_now_ms: 0,
            snap_at: Duration::ZERO,
            closed: false,
            closed_at: None,
            fe_name: None,
            src: None,
            txns: VecDeque::new(),
            txns_done: 0,
            done_in: 0,
            done_out: 0,
            failed: false,
        }
    }

    /// The client's address.
    pub fn src(&self) -> Option<String> {
        self.src.clone().or_else(|| self.snap.as_ref().and_then(|s| s.src).map(|a| a.to_string()))
    }

    /// Adds an ended transaction (a copy already seen is ignored).
    fn add_txn(&mut self, t: TxnSnap) {
        if t.index <= self.txns_done {
            return;
        }
        self.txns_done = t.index;
        self.failed |= bad_term(&t.term);
        self.done_in += t.bytes_in;
        self.done_out += t.bytes_out;
        self.txns.push_back(t);
        while self.txns.len() > MAX_TXNS_PER_SESSION {
            self.txns.pop_front();
        }
    }
}

/// One span of a session's tree, in creation order (which is depth-first order here:
/// the proxy is single-threaded and a child always starts after its parent).
#[derive(Clone, Debug, PartialEq)]
pub struct SpanNode {
    /// Creation number within the trace (stable when older spans are evicted).
    pub seq: u64,
    /// The HAProxy function name.
    pub name: &'static str,
    /// 0 for the `session` root.
    pub depth: u16,
    /// Fields at creation, then recorded values in order.
    pub fields: Vec<Field2>,
    /// How many of `fields` were given at creation (the rest were recorded later).
    pub created: u16,
    /// Start, on the capture layer's clock.
    pub start: Duration,
    /// End, once closed.
    pub end: Option<Duration>,
}

impl SpanNode {
    /// The last value recorded for `key`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }
}

/// A session's span tree, rebuilt live.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The session.
    pub uniq_id: u32,
    /// Spans in creation order; `nodes[0]` is the `session` root.
    pub nodes: Vec<SpanNode>,
    /// Spans left out to stay within `MAX_SPANS_PER_SESSION`.
    pub elided: u64,
    /// Transactions whose end (`http_end_txn_clean_session`) was among the elided spans.
    pub elided_txns: u32,
    next_seq: u64,
}

/// One transaction's part of a session's trace: a range of `Trace::nodes`, and what its
/// spans say of it.
#[derive(Clone, Debug, PartialEq)]
pub struct TxnGroup {
    /// Its spans, as indices into `Trace::nodes`.
    pub range: std::ops::Range<usize>,
    /// What the spans say: the request, server, status, termination state (empty while
    /// under way). `info.index` is 0 for the spans after a kept-alive connection's last
    /// request (waiting for another one, then the close).
    pub info: TxnSnap,
}

impl Trace {
    /// Start of the root span.
    pub fn start(&self) -> Duration {
        self.nodes.first().map_or(Duration::ZERO, |n| n.start)
    }

    /// End of the root span, once the session is freed.
    pub fn end(&self) -> Option<Duration> {
        self.nodes.first().and_then(|n| n.end)
    }

    /// The last value of `key` recorded by any span of the tree.
    pub fn last_field(&self, key: &str) -> Option<&str> {
        self.nodes.iter().rev().find_map(|n| n.field(key))
    }

    /// True when the session spoke HTTP (its analysers waited for a request).
    pub fn is_http(&self) -> bool {
        self.nodes.iter().any(|n| n.name == names::HTTP_WAIT_FOR_REQUEST)
    }

    /// The spans cut into transactions: each `http_end_txn_clean_session` ends one (with
    /// its subtree), and what follows belongs to the next request, or to the connection's
    /// end. A TCP session is one transaction. The root is in none.
    pub fn groups(&self) -> Vec<TxnGroup> {
        let n = self.nodes.len();
        let mut cuts = Vec::new();
        let mut start = 1.min(n);
        let mut i = start;
        while i < n {
            if self.nodes[i].name == names::HTTP_END_TXN_CLEAN_SESSION {
                let d = self.nodes[i].depth;
                let mut j = i + 1;
                while j < n && self.nodes[j].depth > d {
                    j += 1;
                }
                cuts.push((start..j, true));
                start = j;
                i = j;
            } else {
                i += 1;
            }
        }
        if start < n || cuts.is_empty() {
            cuts.push((start..n, false));
        }
        let http = self.is_http();
        let last = cuts.len() - 1;
        let mut index = self.elided_txns;
        cuts.into_iter()
            .enumerate()
            .map(|(k, (range, ended))| {
                let mut info = self.group_info(range.clone(), http);
                // After the last request of a kept-alive connection: no transaction.
                let is_txn = ended || k == 0 || info.request.is_some() || info.status.is_some() || k < last;
                if is_txn {
                    index += 1;
                    info.index = index;
                }
                TxnGroup { range, info }
            })
            .collect()
    }

    fn group_info(&self, range: std::ops::Range<usize>, http: bool) -> TxnSnap {
        let nodes = &self.nodes[range];
        let last = |key: &str| nodes.iter().rev().find_map(|n| n.field(key));
        let term = nodes
            .iter()
            .rev()
            .find(|n| matches!(n.name, names::HTTP_END_TXN_CLEAN_SESSION | names::SESSION_FREE))
            .and_then(|n| n.field("term"))
            .map(|t| if http && t.len() == 2 { format!("{t}--") } else { t.to_string() })
            .unwrap_or_default();
        let bytes = |name: &str| -> u64 {
            nodes
                .iter()
                .filter(|n| n.name == name && n.field("side") == Some("cli"))
                .filter_map(|n| n.field("bytes").and_then(|b| b.parse::<u64>().ok()))
                .sum()
        };
        let ms = |d: Duration| d.as_millis() as u64;
        TxnSnap {
            uniq_id: self.uniq_id,
            index: 0,
            http,
            request: nodes.iter().find_map(|n| n.field("request")).map(str::to_string),
            status: nodes
                .iter()
                .rev()
                .filter_map(|n| n.field("status").and_then(|v| v.parse::<u16>().ok()))
                .find(|&v| v != 0),
            term,
            backend: last("backend").unwrap_or("-").to_string(),
            server: last("server").map(str::to_string),
            bytes_in: bytes(names::STREAM_SOCK_READ),
            bytes_out: bytes(names::STREAM_SOCK_WRITE),
            start_ms: nodes.first().map_or(0, |n| ms(n.start)),
            end_ms: nodes.iter().filter_map(|n| n.end).max().map_or(0, ms),
            // An exported trace carries the log line (see `tui::export`).
            log: last("log").map(str::to_string),
        }
    }

    fn node_mut(&mut self, seq: u64) -> Option<&mut SpanNode> {
        let i = self.nodes.binary_search_by_key(&seq, |n| n.seq).ok()?;
        self.nodes.get_mut(i)
    }

    fn push(&mut self, name: &'static str, depth: u16, fields: Vec<Field2>, at: Duration) -> Option<u64> {
        if self.nodes.len() >= MAX_SPANS_PER_SESSION && !self.evict() {
            self.elided += 1;
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let created = fields.len().min(u16::MAX as usize) as u16;
        self.nodes.push(SpanNode { seq, name, depth, fields, created, start: at, end: None });
        Some(seq)
    }

    /// Removes the oldest finished top-level calls after the first one (the accept), until
    /// a tenth of the room is free; false when nothing can go. One `drain` for the lot:
    /// a long keep-alive session evicts at every new span once it is full.
    fn evict(&mut self) -> bool {
        let excess = self.nodes.len().saturating_sub(MAX_SPANS_PER_SESSION * 9 / 10);
        let mut tops = self.nodes.iter().enumerate().filter(|(_, n)| n.depth == 1).map(|(i, _)| i);
        let (Some(_accept), Some(from)) = (tops.next(), tops.next()) else { return false };
        // Whole calls only: stop at the first top-level call start past the excess, and
        // before any call that is still running.
        let mut to = from;
        for i in tops {
            if self.nodes[to..i].iter().any(|n| n.end.is_none()) {
                break;
            }
            to = i;
            if to - from >= excess {
                break;
            }
        }
        if to == from {
            return false;
        }
        self.elided += (to - from) as u64;
        self.elided_txns +=
            self.nodes[from..to].iter().filter(|n| n.name == names::HTTP_END_TXN_CLEAN_SESSION).count()
                as u32;
        self.nodes.drain(from..to);
        true
    }
}

/// A function called during one phase of a loop turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The span's name (`stream_sock_read`, `process_session`...).
    pub name: &'static str,
    /// The session it worked for, if any.
    pub sess: Option<u32>,
    /// `cli` or `srv` for I/O callbacks.
    pub side: Option<&'static str>,
}

/// What one turn of `run_poll_loop` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopTurn {
    /// When the turn's first loop span started (capture clock).
    pub at: Duration,
    /// Tasks whose timer expired (`wake_expired_tasks`).
    pub woken: u64,
    /// Tasks in the run queue when `process_runnable_tasks` started.
    pub run_queue: u64,
    /// What `process_runnable_tasks` ran.
    pub tasks: Vec<Call>,
    /// Task calls not listed in `tasks`.
    pub tasks_more: u32,
    /// How long `_do_poll` was allowed to sleep, ms.
    pub wait_ms: u64,
    /// Events `epoll_wait` returned.
    pub events: u64,
    /// The fd callbacks `_do_poll` ran.
    pub io: Vec<Call>,
    /// I/O calls not listed in `io`.
    pub io_more: u32,
}

impl LoopTurn {
    /// True for a turn that only slept.
    pub fn is_idle(&self) -> bool {
        self.woken == 0
            && self.run_queue == 0
            && self.events == 0
            && self.tasks.is_empty()
            && self.io.is_empty()
    }
}

/// One line of the event-loop lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaneEntry {
    /// A turn that did something.
    Turn(LoopTurn),
    /// Consecutive turns that only slept in `_do_poll`.
    Idle {
        /// How many.
        turns: u64,
        /// Start of the first.
        from: Duration,
        /// Start of the last.
        to: Duration,
    },
    /// A root span outside any session: start-up (`readcfgfile`, `protocol_bind_all`...)
    /// and `run_poll_loop` itself.
    Root {
        /// The function.
        name: &'static str,
        /// Its fields.
        fields: Vec<Field2>,
        /// When it started.
        at: Duration,
    },
}

/// A line of the log pane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// UI time it arrived.
    pub at: Duration,
    /// Where it came from.
    pub kind: LogKind,
    /// The text.
    pub text: String,
}

/// The loop phases, by span name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoopPhase {
    Timers,
    Tasks,
    Poll,
}

impl LoopPhase {
    fn of(name: &str) -> Option<LoopPhase> {
        match name {
            names::WAKE_EXPIRED_TASKS => Some(LoopPhase::Timers),
            names::PROCESS_RUNNABLE_TASKS => Some(LoopPhase::Tasks),
            names::DO_POLL => Some(LoopPhase::Poll),
            _ => None,
        }
    }
}

/// Where an open span's records go.
#[derive(Clone, Copy, Debug)]
enum SpanLoc {
    Session { sess: u32, seq: u64, depth: u16 },
    Loop(LoopPhase),
}

/// Counter values of the previous snapshot, for rates.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    conns: u64,
    reqs: u64,
    loops: u64,
    events: u64,
    tasks: u64,
}

/// Everything the views draw.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// UI time now (set by the UI loop before folding data in and drawing).
    pub now: Duration,
    /// The latest snapshot.
    pub snap: Option<Arc<Snapshot>>,
    /// UI time it arrived.
    pub snap_at: Duration,
    /// Connections accepted per second.
    pub conn_rate: Series,
    /// HTTP requests per second.
    pub req_rate: Series,
    /// Loop turns per second.
    pub loop_rate: Series,
    /// Poll events per second.
    pub event_rate: Series,
    /// Tasks run per second.
    pub task_rate: Series,
    prev: Option<Counters>,
    /// Sessions by `uniq_id`: live ones and the last `MAX_CLOSED` closed ones.
    pub sessions: BTreeMap<u32, SessionEntry>,
    /// Span trees by `uniq_id`.
    pub traces: HashMap<u32, Trace>,
    spans: crate::trace::IdMap<SpanLoc>,
    /// The event-loop lane, oldest first.
    pub lane: VecDeque<LaneEntry>,
    /// Loop turns seen in records.
    pub turns_seen: u64,
    turn: Option<LoopTurn>,
    phase: Option<LoopPhase>,
    /// The log pane, oldest first.
    pub logs: VecDeque<LogLine>,
    /// Span records the capture layer dropped (the UI, or its keeper, was behind).
    pub dropped_records: u64,
    /// What the keeper in front of the UI kept (`None`: no keeper).
    pub keep: Option<crate::trace::keeper::KeepCounts>,
    /// Snapshots and log lines dropped.
    pub dropped_feed: u64,
    /// Freed sessions the producer could not remember.
    pub freed_elided: u64,
    /// The capture clock of the latest record (the "now" of open spans).
    pub record_clock: Duration,
    /// What is being watched and how it went (a scenario and its outcome), when the UI
    /// watches more than a proxy.
    pub status: Option<Status>,
    /// Where a replay is (`haflow replay`), for the header; `None` when live.
    pub replay: Option<ReplayPos>,
    /// Build the event-loop lane from the sessions' own calls: a replayed trace without
    /// the loop's spans (recorded below `--trace-level developer`).
    pub lane_from_calls: bool,
}

/// Where a replay stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayPos {
    /// The file.
    pub file: String,
    /// The replay clock, from the trace's first event.
    pub at: Duration,
    /// The trace's length.
    pub len: Duration,
    /// The clock is stopped.
    pub paused: bool,
    /// How much faster than recorded time moves.
    pub speed: f64,
}

/// How a status line reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Under way, or for information.
    Info,
    /// Went as expected (a scenario's expectations met).
    Good,
    /// Went wrong (expectations not met, a run that could not start).
    Bad,
}

/// A line about the run being watched, drawn above the footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The text.
    pub text: String,
    /// Its colour.
    pub tone: Tone,
}

/// True for a termination state other than a clean one (`--`, `----`; empty: not ended).
fn bad_term(t: &str) -> bool {
    !matches!(t, "" | "--" | "----")
}

/// True when a span named `name` with `fields` says its session failed.
fn says_failed(name: &str, fields: &[Field2]) -> bool {
    matches!(name, names::SESSION_FREE | names::HTTP_END_TXN_CLEAN_SESSION)
        && field(fields, "term").is_some_and(bad_term)
}

fn field<'a>(fields: &'a [Field2], key: &str) -> Option<&'a str> {
    fields.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

fn side_of(fields: &[Field2]) -> Option<&'static str> {
    match field(fields, "side") {
        Some("cli") => Some("cli"),
        Some("srv") => Some("srv"),
        _ => None,
    }
}

impl State {
    /// Sets the UI time.
    pub fn set_now(&mut self, now: Duration) {
        self.now = now;
    }

    /// The current second of UI time (rates are per second of UI time).
    pub fn now_sec(&self) -> u64 {
        self.now.as_secs()
    }

    /// Folds a snapshot in.
    pub fn apply_snapshot(&mut self, snap: Box<Snapshot>) {
        let sec = self.now_sec();
        let c = Counters {
            conns: snap.totalconn,
            reqs: snap.cum_req,
            loops: snap.activity.loops,
            events: snap.activity.poll_events,
            tasks: snap.tasks_run,
        };
        if let Some(p) = self.prev {
            self.conn_rate.add(sec, c.conns.saturating_sub(p.conns));
            self.req_rate.add(sec, c.reqs.saturating_sub(p.reqs));
            self.loop_rate.add(sec, c.loops.saturating_sub(p.loops));
            self.event_rate.add(sec, c.events.saturating_sub(p.events));
            self.task_rate.add(sec, c.tasks.saturating_sub(p.tasks));
        }
        self.prev = Some(c);
        for t in &snap.txns {
            let e = self.sessions.entry(t.uniq_id).or_insert_with(|| SessionEntry::new(t.uniq_id));
            e.add_txn(t.clone());
        }
        for s in &snap.sessions {
            let e = self.sessions.entry(s.uniq_id).or_insert_with(|| SessionEntry::new(s.uniq_id));
            // A snapshot taken before the session was freed may arrive after its end.
            if !e.closed {
                e.snap = Some(s.clone());
                e.snap_now_ms = snap.now_ms;
                e.snap_at = self.now;
            }
        }
        for f in &snap.freed {
            let e = self.sessions.entry(f.uniq_id).or_insert_with(|| SessionEntry::new(f.uniq_id));
            e.snap = Some(f.clone());
            e.snap_now_ms = f.end_ms.unwrap_or(snap.now_ms);
            e.snap_at = self.now;
            if !e.closed {
                e.closed = true;
                e.closed_at = Some(self.now);
            }
        }
        if snap.sessions_total <= snap.sessions.len() {
            // The list is complete: a session accepted before this copy (`uniq_id`s count
            // accepts, like `totalconn`) and absent from it is gone, even if its end was
            // not seen (a record or a freed copy dropped on the way).
            let live: std::collections::HashSet<u32> = snap.sessions.iter().map(|s| s.uniq_id).collect();
            for e in self.sessions.values_mut() {
                if !e.closed && u64::from(e.uniq_id) < snap.totalconn && !live.contains(&e.uniq_id) {
                    e.closed = true;
                    e.closed_at = Some(self.now);
                }
            }
        }
        self.freed_elided += snap.freed_elided;
        self.snap = Some(Arc::from(snap));
        self.snap_at = self.now;
        self.prune();
    }

    /// Folds a span record in.
    pub fn apply_record(&mut self, r: Record) {
        match r {
            Record::New { id, parent, name, fields, at, .. } => {
                self.record_clock = self.record_clock.max(at);
                self.on_new(id, parent, name, fields, at);
            }
            Record::Update { id, fields } => self.on_update(id, fields),
            Record::Close { id, at } => {
                self.record_clock = self.record_clock.max(at);
                self.on_close(id, at);
            }
            Record::Event { fields, at, .. } => {
                self.record_clock = self.record_clock.max(at);
                let mut text = field(&fields, "message").unwrap_or("").to_string();
                for (k, v) in fields.iter().filter(|(k, _)| *k != "message") {
                    text.push_str(&format!(" {k}={v}"));
                }
                self.push_log(LogKind::Event, text);
            }
        }
    }

    /// Folds many records in.
    pub fn apply_records(&mut self, rs: impl IntoIterator<Item = Record>) {
        for r in rs {
            self.apply_record(r);
        }
        self.prune();
    }

    /// Adds a line to the log pane.
    pub fn push_log(&mut self, kind: LogKind, text: String) {
        self.logs.push_back(LogLine { at: self.now, kind, text });
        while self.logs.len() > MAX_LOGS {
            self.logs.pop_front();
        }
    }

    fn note_call(&mut self, name: &'static str, sess: Option<u32>, side: Option<&'static str>) {
        let (Some(phase), Some(turn)) = (self.phase, self.turn.as_mut()) else { return };
        let (list, more) = match phase {
            LoopPhase::Tasks => (&mut turn.tasks, &mut turn.tasks_more),
            LoopPhase::Poll => (&mut turn.io, &mut turn.io_more),
            LoopPhase::Timers => return,
        };
        if list.len() < MAX_CALLS {
            list.push(Call { name, sess, side });
        } else {
            *more += 1;
        }
    }

    fn on_new(
        &mut self,
        id: u64,
        parent: Option<u64>,
        name: &'static str,
        fields: Vec<Field2>,
        at: Duration,
    ) {
        if name == names::SESSION
            && let Some(sess) = field(&fields, "sess").and_then(|v| v.parse::<u32>().ok())
        {
            let e = self.sessions.entry(sess).or_insert_with(|| SessionEntry::new(sess));
            e.fe_name = field(&fields, "fe").map(str::to_string);
            e.src = field(&fields, "src").map(str::to_string);
            let created = fields.len().min(u16::MAX as usize) as u16;
            let root = SpanNode { seq: 0, name, depth: 0, fields, created, start: at, end: None };
            self.traces.insert(
                sess,
                Trace { uniq_id: sess, nodes: vec![root], elided: 0, elided_txns: 0, next_seq: 1 },
            );
            self.spans.insert(id, SpanLoc::Session { sess, seq: 0, depth: 0 });
            return;
        }
        match parent.and_then(|p| self.spans.get(&p)).copied() {
            Some(SpanLoc::Session { sess, depth, .. }) => {
                // A call made for the session straight from the loop (accept, I/O,
                // process_session), and the session's end inside its last process_session.
                if depth == 0 && self.lane_from_calls {
                    self.note_replayed_call(name, sess, side_of(&fields), at);
                } else if depth == 0 || name == names::SESSION_FREE {
                    self.note_call(name, Some(sess), side_of(&fields));
                }
                if says_failed(name, &fields)
                    && let Some(e) = self.sessions.get_mut(&sess)
                {
                    e.failed = true;
                }
                let Some(tr) = self.traces.get_mut(&sess) else { return };
                if let Some(seq) = tr.push(name, depth + 1, fields, at) {
                    self.spans.insert(id, SpanLoc::Session { sess, seq, depth: depth + 1 });
                }
            }
            Some(SpanLoc::Loop(_)) => {
                // Work done by the loop for no session (listener_full, resume_listener, checks).
                let sess = field(&fields, "sess").and_then(|v| v.parse().ok());
                self.note_call(name, sess, side_of(&fields));
            }
            None => {
                if let Some(phase) = LoopPhase::of(name) {
                    self.spans.insert(id, SpanLoc::Loop(phase));
                    let turn = self.turn.get_or_insert_with(|| LoopTurn { at, ..LoopTurn::default() });
                    let num = |k| field(&fields, k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                    match phase {
                        LoopPhase::Timers => turn.woken = num("woken"),
                        LoopPhase::Tasks => turn.run_queue = num("run_queue"),
                        LoopPhase::Poll => {
                            turn.wait_ms = num("wait_ms");
                            turn.events = num("events");
                        }
                    }
                    self.phase = Some(phase);
                } else if parent.is_none() {
                    self.push_lane(LaneEntry::Root { name, fields, at });
                }
            }
        }
    }

    fn on_update(&mut self, id: u64, fields: Vec<Field2>) {
        match self.spans.get(&id).copied() {
            Some(SpanLoc::Session { sess, seq, .. }) => {
                if let Some(n) = self.traces.get_mut(&sess).and_then(|t| t.node_mut(seq)) {
                    if says_failed(n.name, &fields)
                        && let Some(e) = self.sessions.get_mut(&sess)
                    {
                        e.failed = true;
                    }
                    n.fields.extend(fields);
                }
            }
            Some(SpanLoc::Loop(LoopPhase::Poll)) => {
                if let (Some(t), Some(ev)) = (self.turn.as_mut(), field(&fields, "events")) {
                    t.events = ev.parse().unwrap_or(t.events);
                }
            }
            _ => {}
        }
    }

    fn on_close(&mut self, id: u64, at: Duration) {
        match self.spans.remove(&id) {
            Some(SpanLoc::Session { sess, seq, depth }) => {
                if let Some(n) = self.traces.get_mut(&sess).and_then(|t| t.node_mut(seq)) {
                    n.end = Some(at);
                }
                if depth == 0
                    && let Some(e) = self.sessions.get_mut(&sess)
                    && !e.closed
                {
                    e.closed = true;
                    e.closed_at = Some(self.now);
                }
            }
            Some(SpanLoc::Loop(phase)) => {
                self.phase = None;
                if phase == LoopPhase::Poll
                    && let Some(turn) = self.turn.take()
                {
                    self.turns_seen += 1;
                    if turn.is_idle() {
                        if let Some(LaneEntry::Idle { turns, to, .. }) = self.lane.back_mut() {
                            *turns += 1;
                            *to = turn.at;
                        } else {
                            self.push_lane(LaneEntry::Idle { turns: 1, from: turn.at, to: turn.at });
                        }
                    } else {
                        self.push_lane(LaneEntry::Turn(turn));
                    }
                }
            }
            None => {}
        }
    }

    /// A session's call straight from the loop, in a trace without the loop's spans: the
    /// turns are rebuilt from the calls, knowing that a turn runs its tasks
    /// (`process_session`) before its I/O callbacks (`stream_sock_*`), so a task after a
    /// callback starts the next turn.
    fn note_replayed_call(
        &mut self,
        name: &'static str,
        sess: u32,
        side: Option<&'static str>,
        at: Duration,
    ) {
        let phase = if name == names::PROCESS_SESSION { LoopPhase::Tasks } else { LoopPhase::Poll };
        if phase == LoopPhase::Tasks && self.turn.as_ref().is_some_and(|t| !t.io.is_empty()) {
            self.end_replayed_turn();
        }
        let turn = self.turn.get_or_insert_with(|| LoopTurn { at, ..LoopTurn::default() });
        match phase {
            LoopPhase::Tasks => turn.run_queue += 1,
            _ => turn.events += 1,
        }
        self.phase = Some(phase);
        self.note_call(name, Some(sess), side);
        self.phase = None;
    }

    /// Ends the turn being rebuilt from a replayed trace's calls (at the next turn, and
    /// when the trace ends).
    pub fn end_replayed_turn(&mut self) {
        if let Some(t) = self.turn.take() {
            self.turns_seen += 1;
            self.push_lane(LaneEntry::Turn(t));
        }
    }

    fn push_lane(&mut self, e: LaneEntry) {
        self.lane.push_back(e);
        while self.lane.len() > MAX_LANE {
            self.lane.pop_front();
        }
    }

    /// Forgets the oldest closed sessions beyond `MAX_CLOSED`, and the oldest traces
    /// beyond `MAX_TRACES`.
    pub fn prune(&mut self) {
        let mut gone = Vec::new();
        let closed = self.sessions.values().filter(|e| e.closed).count();
        if closed > MAX_CLOSED {
            // The oldest go first, those that ended well before those that failed: under
            // load the failures are what a user looks for (the keeper keeps them whole).
            let mut by_age: Vec<(bool, u32)> =
                self.sessions.values().filter(|e| e.closed).map(|e| (self.failed(e), e.uniq_id)).collect();
            by_age.sort_unstable();
            gone.extend(by_age.iter().map(|(_, id)| *id).take(closed - MAX_CLOSED));
            for id in &gone {
                self.sessions.remove(id);
                self.traces.remove(id);
            }
        }
        if self.traces.len() > MAX_TRACES {
            let mut ids: Vec<u32> = self.traces.keys().copied().collect();
            ids.sort_unstable();
            for id in &ids[..ids.len() - MAX_TRACES] {
                self.traces.remove(id);
                gone.push(*id);
            }
        }
        if !gone.is_empty() {
            // Spans still open in forgotten traces (their close may never come if it was
            // dropped) would otherwise stay in the map for ever.
            let gone: std::collections::HashSet<u32> = gone.into_iter().collect();
            self.spans.retain(|_, loc| !matches!(loc, SpanLoc::Session { sess, .. } if gone.contains(sess)));
        }
    }

    /// True when one of the session's transactions ended with a termination state other
    /// than `----` (as the proxy copied them, or as its spans say).
    pub fn failed(&self, e: &SessionEntry) -> bool {
        e.failed
    }

    /// The trace of session `uniq_id`.
    pub fn trace(&self, uniq_id: u32) -> Option<&Trace> {
        self.traces.get(&uniq_id)
    }

    /// A proxy's name from the latest snapshot.
    pub fn proxy_name(&self, id: crate::ids::ProxyId) -> Option<&str> {
        Some(self.snap.as_ref()?.proxy(id)?.name.as_str())
    }

    /// A server's name from the latest snapshot.
    pub fn server_name(&self, id: crate::ids::ServerId) -> Option<&str> {
        Some(self.snap.as_ref()?.server(id)?.name.as_str())
    }

    /// The frontend of a session.
    pub fn fe_of(&self, e: &SessionEntry) -> String {
        e.snap
            .as_ref()
            .and_then(|s| self.proxy_name(s.fe).map(str::to_string))
            .or_else(|| e.fe_name.clone())
            .unwrap_or_else(|| "-".into())
    }

    /// The transaction under way on a live session, from its latest copy: its request
    /// (once parsed), backend and server so far, and its status once answered.
    fn under_way(&self, s: &SessSnap) -> TxnSnap {
        TxnSnap {
            uniq_id: s.uniq_id,
            index: s.txns + 1,
            http: s.http,
            request: s.request.clone(),
            status: s.status,
            term: String::new(),
            backend: self.proxy_name(s.be).unwrap_or("-").to_string(),
            server: s.srv.and_then(|id| self.server_name(id)).map(str::to_string),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            start_ms: s.accept_ms,
            end_ms: 0,
            log: None,
        }
    }

    /// A session's transactions, oldest first: the ended ones as they were copied when
    /// each ended (or, when no copy reported any, as its spans tell: a replayed trace),
    /// then the one under way on a live session (its `term` is empty).
    pub fn txns_of(&self, e: &SessionEntry) -> Vec<TxnSnap> {
        let mut out: Vec<TxnSnap> = e.txns.iter().cloned().collect();
        if e.txns_done == 0
            && (e.snap.is_none() || e.closed)
            && let Some(t) = self.trace(e.uniq_id)
        {
            return t.groups().into_iter().map(|g| g.info).filter(|i| i.index > 0).collect();
        }
        if !e.closed
            && let Some(s) = &e.snap
            && (s.request.is_some() || (!s.http && out.is_empty()))
        {
            out.push(self.under_way(s));
        }
        out
    }

    /// The last of `txns_of(e)`, without copying the others: the sessions list asks it of
    /// every row at every frame, and a kept-alive session holds up to
    /// `MAX_TXNS_PER_SESSION` ended transactions (copying them all was most of the UI
    /// thread's time under keep-alive load).
    pub fn last_txn_of(&self, e: &SessionEntry) -> Option<TxnSnap> {
        if e.txns_done == 0 && (e.snap.is_none() || e.closed) && self.trace(e.uniq_id).is_some() {
            return self.txns_of(e).pop();
        }
        if !e.closed
            && let Some(s) = &e.snap
            && (s.request.is_some() || (!s.http && e.txns.is_empty()))
        {
            return Some(self.under_way(s));
        }
        e.txns.back().cloned()
    }

    /// `backend/server` of a transaction, as the log prints it (`<NOSRV>`: no server).
    pub fn be_srv(t: &TxnSnap) -> String {
        format!("{}/{}", t.backend, t.server.as_deref().unwrap_or("<NOSRV>"))
    }

    /// `backend/server` of a session: its latest transaction's (the server it actually
    /// used, kept once it ended), else the assignment under way, else what the spans say.
    pub fn be_srv_of(&self, e: &SessionEntry) -> String {
        if let Some(t) = self.last_txn_of(e) {
            return State::be_srv(&t);
        }
        if let Some(s) = &e.snap {
            let be = self.proxy_name(s.be).unwrap_or("-");
            let srv = s.srv.and_then(|id| self.server_name(id)).unwrap_or("<NOSRV>");
            return format!("{be}/{srv}");
        }
        "-".into()
    }

    /// Short `si[0]` and `si[1]` states (`EST`, `CON`...).
    pub fn si_of(&self, e: &SessionEntry) -> (String, String) {
        if let Some(s) = &e.snap {
            return (s.si[0].state.short().to_string(), s.si[1].state.short().to_string());
        }
        let si1 = self
            .trace(e.uniq_id)
            .and_then(|t| t.nodes.iter().rev().find_map(|n| n.field("si1_to").or_else(|| n.field("to"))))
            .map_or_else(|| "INI".to_string(), |v| v.trim_start_matches("SI_ST_").to_string());
        (if e.closed { "CLO" } else { "EST" }.to_string(), si1)
    }

    /// The session's age in ms: since accept while live, its whole life once closed.
    pub fn age_ms_of(&self, e: &SessionEntry) -> Option<u64> {
        if let Some(s) = &e.snap {
            if e.closed {
                return Some(s.life_ms);
            }
            return Some(s.life_ms + self.now.saturating_sub(e.snap_at).as_millis() as u64);
        }
        let t = self.trace(e.uniq_id)?;
        let end = t.end().unwrap_or(self.record_clock);
        Some(end.saturating_sub(t.start()).as_millis() as u64)
    }

    /// Bytes from and to the client over the session's life (ended transactions, and the
    /// one under way).
    pub fn bytes_of(&self, e: &SessionEntry) -> (u64, u64) {
        let (mut i, mut o) = (e.done_in, e.done_out);
        if e.txns_done == 0 && e.snap.is_none() {
            for t in self.txns_of(e) {
                i += t.bytes_in;
                o += t.bytes_out;
            }
        } else if !e.closed
            && let Some(s) = &e.snap
        {
            i += s.bytes_in;
            o += s.bytes_out;
        }
        (i, o)
    }

    /// The log line of a session's latest logged transaction (or, when no copy carried
    /// one, the latest traffic log starting with its client address).
    pub fn log_of(&self, e: &SessionEntry) -> Option<String> {
        if let Some(l) = e.txns.iter().rev().find_map(|t| t.log.clone()) {
            return Some(l);
        }
        let prefix = format!("{} ", e.src()?);
        self.logs
            .iter()
            .rev()
            .find(|l| l.kind == LogKind::Log && l.text.starts_with(&prefix))
            .map(|l| l.text.clone())
    }

    /// Live sessions the latest snapshot did not copy (beyond `MAX_SESSIONS`).
    pub fn sessions_not_shown(&self) -> usize {
        self.snap.as_ref().map_or(0, |s| s.sessions_total.saturating_sub(s.sessions.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(
        id: u64,
        parent: Option<u64>,
        name: &'static str,
        fields: &[(&'static str, &str)],
        ms: u64,
    ) -> Record {
        Record::New {
            id,
            parent,
            name,
            level: tracing::Level::INFO,
            fields: fields.iter().map(|(k, v)| (*k, (*v).into())).collect(),
            at: Duration::from_millis(ms),
        }
    }

    fn close(id: u64, ms: u64) -> Record {
        Record::Close { id, at: Duration::from_millis(ms) }
    }

    #[test]
    fn session_spans_become_a_live_tree_and_the_root_close_ends_the_session() {
        let mut st = State::default();
        st.apply_records([
            new(1, None, names::SESSION, &[("sess", "7"), ("fe", "fe"), ("src", "127.0.0.1:5000")], 0),
            new(2, Some(1), names::STREAM_SOCK_ACCEPT, &[], 0),
            new(3, Some(2), names::SESSION_ACCEPT, &[("sess", "7")], 1),
            close(3, 2),
            close(2, 2),
            new(4, Some(1), names::PROCESS_SESSION, &[("sess", "7")], 3),
            Record::Update { id: 4, fields: vec![("si1_to", "SI_ST_CON".into())] },
        ]);
        let t = st.trace(7).expect("trace");
        let names: Vec<_> = t.nodes.iter().map(|n| (n.name, n.depth)).collect();
        assert_eq!(
            names,
            [
                (names::SESSION, 0),
                (names::STREAM_SOCK_ACCEPT, 1),
                (names::SESSION_ACCEPT, 2),
                (names::PROCESS_SESSION, 1)
            ]
        );
        assert_eq!(t.nodes[3].end, None, "process_session is still open");
        let e = &st.sessions[&7];
        assert!(!e.closed);
        assert_eq!(st.si_of(e), ("EST".to_string(), "CON".to_string()), "states come from the spans");
        st.apply_records([close(4, 5), close(1, 6)]);
        assert!(st.sessions[&7].closed, "the root's close is the session's end");
        assert_eq!(st.trace(7).unwrap().end(), Some(Duration::from_millis(6)));
        assert!(st.spans.is_empty(), "closed spans are forgotten (their ids get reused)");
    }

    #[test]
    fn loop_spans_make_one_lane_entry_per_turn_and_idle_turns_merge() {
        let mut st = State::default();
        let lp = Some(100);
        st.apply_records([
            new(1, None, names::SESSION, &[("sess", "0")], 0),
            // A busy turn: a timer, a task, then an accept and a read.
            new(10, lp, names::WAKE_EXPIRED_TASKS, &[("woken", "1")], 1),
            close(10, 1),
            new(11, lp, names::PROCESS_RUNNABLE_TASKS, &[("run_queue", "1")], 1),
            new(12, Some(1), names::PROCESS_SESSION, &[("sess", "0")], 1),
            close(12, 2),
            close(11, 2),
            new(13, lp, names::DO_POLL, &[("wait_ms", "0")], 2),
            Record::Update { id: 13, fields: vec![("events", "2".into())] },
            new(14, Some(1), names::STREAM_SOCK_READ, &[("sess", "0"), ("side", "cli")], 2),
            close(14, 3),
            close(13, 3),
            // Two idle turns.
            new(15, lp, names::DO_POLL, &[("wait_ms", "1000")], 4),
            close(15, 1004),
            new(16, lp, names::DO_POLL, &[("wait_ms", "1000")], 1004),
            close(16, 2004),
        ]);
        assert_eq!(st.lane.len(), 2, "{:?}", st.lane);
        let LaneEntry::Turn(t) = &st.lane[0] else { panic!("{:?}", st.lane[0]) };
        assert_eq!((t.woken, t.run_queue, t.events), (1, 1, 2));
        assert_eq!(t.tasks, [Call { name: names::PROCESS_SESSION, sess: Some(0), side: None }]);
        assert_eq!(t.io, [Call { name: names::STREAM_SOCK_READ, sess: Some(0), side: Some("cli") }]);
        assert!(matches!(st.lane[1], LaneEntry::Idle { turns: 2, .. }), "{:?}", st.lane[1]);
        assert_eq!(st.turns_seen, 3);
    }

    #[test]
    fn closed_sessions_and_long_traces_stay_bounded() {
        let mut st = State::default();
        let mut id = 1u64;
        for s in 0..(MAX_CLOSED as u32 + 50) {
            let sess = s.to_string();
            st.apply_record(new(id, None, names::SESSION, &[("sess", &sess)], 0));
            st.apply_record(close(id, 1));
            id += 1;
        }
        st.prune();
        assert_eq!(st.sessions.len(), MAX_CLOSED);
        assert!(!st.sessions.contains_key(&0), "the oldest closed sessions go first");
        assert_eq!(st.traces.len(), MAX_CLOSED);

        st.apply_record(new(id, None, names::SESSION, &[("sess", "9999")], 0));
        let root = id;
        for k in 0..(MAX_SPANS_PER_SESSION as u64 + 500) {
            id += 1;
            st.apply_record(new(id, Some(root), names::STREAM_SOCK_READ, &[], k));
            st.apply_record(close(id, k));
        }
        let t = st.trace(9999).unwrap();
        assert!(t.nodes.len() <= MAX_SPANS_PER_SESSION);
        assert!(t.elided > 0);
        assert_eq!(t.nodes[1].seq, 1, "the first call (the accept) is kept");
        assert_eq!(t.nodes.last().unwrap().seq, MAX_SPANS_PER_SESSION as u64 + 500, "the latest is kept");
    }

    #[test]
    fn a_session_whose_end_was_dropped_is_closed_by_the_next_complete_snapshot() {
        let mut st = State::default();
        st.apply_records([
            new(1, None, names::SESSION, &[("sess", "0")], 0),
            new(2, Some(1), names::PROCESS_SESSION, &[], 1),
        ]);
        assert!(!st.sessions[&0].closed);
        let snap = Snapshot {
            seq: 1,
            now_ms: 10,
            uptime_ms: 10,
            actconn: 0,
            maxconn: 100,
            totalconn: 1,
            cum_req: 0,
            run_queue: 0,
            wait_queue: 0,
            nb_tasks: 0,
            tasks_run: 1,
            activity: Default::default(),
            fds: 1,
            pools: vec![],
            proxies: vec![],
            sessions: vec![],
            sessions_total: 0,
            freed: vec![],
            freed_elided: 1,
            txns: vec![],
            txns_elided: 0,
            stopping: false,
            stopped: false,
        };
        st.apply_snapshot(Box::new(snap));
        assert!(st.sessions[&0].closed, "accepted before the copy, absent from it: gone");
        for i in 0..=MAX_CLOSED as u32 {
            st.apply_record(new(
                100 + u64::from(i),
                None,
                names::SESSION,
                &[("sess", &(i + 1).to_string())],
                0,
            ));
            st.apply_record(close(100 + u64::from(i), 1));
        }
        st.prune();
        assert!(st.trace(0).is_none());
        assert!(st.spans.is_empty(), "the open spans of a forgotten trace are forgotten too");
    }

    #[test]
    fn a_kept_alive_trace_is_cut_into_its_requests_even_when_pipelined() {
        let mut st = State::default();
        let ps = names::PROCESS_SESSION;
        st.apply_records([
            new(1, None, names::SESSION, &[("sess", "3")], 0),
            new(2, Some(1), ps, &[], 1),
            new(3, Some(2), names::HTTP_WAIT_FOR_REQUEST, &[("request", "GET /a HTTP/1.1")], 1),
            new(4, Some(2), names::ASSIGN_SERVER, &[("backend", "be"), ("server", "s1")], 1),
            close(4, 1),
            close(3, 1),
            close(2, 2),
            new(5, Some(1), ps, &[], 3),
            new(6, Some(5), names::HTTP_END_TXN_CLEAN_SESSION, &[("status", "200")], 3),
            Record::Update { id: 6, fields: vec![("term", "--".into())] },
            close(6, 4),
            // The next request was already in the buffer: the same process_session parses it.
            new(7, Some(5), names::HTTP_WAIT_FOR_REQUEST, &[("request", "GET /b HTTP/1.1")], 4),
            close(7, 4),
            new(8, Some(5), names::SESSION_FREE, &[("term", "cR")], 5),
            close(8, 5),
            close(5, 5),
            close(1, 6),
        ]);
        let t = st.trace(3).unwrap();
        let gs = t.groups();
        assert_eq!(gs.iter().map(|g| g.range.clone()).collect::<Vec<_>>(), [1..6, 6..8]);
        let a = &gs[0].info;
        assert_eq!(
            (a.index, a.request.as_deref(), a.status, a.term.as_str()),
            (1, Some("GET /a HTTP/1.1"), Some(200), "----")
        );
        assert_eq!(State::be_srv(a), "be/s1");
        let b = &gs[1].info;
        assert_eq!(
            (b.index, b.request.as_deref(), b.status, b.term.as_str()),
            (2, Some("GET /b HTTP/1.1"), None, "cR--")
        );
        assert_eq!(t.nodes[gs[1].range.start].name, names::HTTP_WAIT_FOR_REQUEST);
        // With no copy from the proxy (a replayed trace), the rows come from the spans.
        let txns = st.txns_of(&st.sessions[&3]);
        assert_eq!(txns.len(), 2);
        assert!(txns[1].term == "cR--" && txns[0].server.as_deref() == Some("s1"));
        assert_eq!(st.last_txn_of(&st.sessions[&3]).as_ref(), txns.last(), "the last, from the spans");
    }

    #[test]
    fn the_last_transaction_of_a_kept_alive_session_is_its_latest_copy() {
        let st = State::default();
        let mut e = SessionEntry::new(7);
        assert_eq!(st.last_txn_of(&e), None);
        for index in 1..=MAX_TXNS_PER_SESSION as u32 {
            e.txns.push_back(TxnSnap { uniq_id: 7, index, term: "----".into(), ..TxnSnap::default() });
        }
        e.txns_done = MAX_TXNS_PER_SESSION as u32;
        assert_eq!(st.last_txn_of(&e), st.txns_of(&e).pop());
        assert_eq!(st.last_txn_of(&e).map(|t| t.index), Some(MAX_TXNS_PER_SESSION as u32));
    }

    #[test]
    fn series_counts_per_second_and_reports_the_last_complete_one() {
        let mut s = Series::default();
        s.add(10, 3);
        s.add(10, 2);
        s.add(12, 7);
        assert_eq!(s.rate(11), 5);
        assert_eq!(s.rate(13), 7);
        assert_eq!(s.last(13, 4), [0, 5, 0, 7]);
    }
}
