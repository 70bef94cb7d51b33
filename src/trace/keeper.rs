//! The keeper: what a live view keeps of the call flow when it cannot take it all, by
//! whole sessions rather than by batches, decided where the records are made.
//!
//! Under heavy traffic the proxy makes span records far faster than a terminal UI can
//! fold them in (two million a second under `wrk` keep-alive load, where the UI folds
//! a few hundred thousand). Dropping whatever does not fit loses a little of every
//! session, and the sessions a user looks for first, the failed ones, are as likely to
//! be cut as any. The keeper runs inside the subscriber, on the proxy thread, for the
//! UI's feed (`capture::kept`), and places each record as it is made:
//!
//! - while the UI keeps up, a session's records go to it as they come (*streamed*);
//! - when the UI falls behind (`HIGH` records wait for it), sessions are *held* instead,
//!   a whole top-level call (`stream_sock_read`, `process_session`...) at a time, each in
//!   a batch of its own, and at the session's end the keeper decides: a session with a
//!   termination state other than `--`/`----` (any of its transactions), or the one the
//!   UI follows, is passed on whole; of the others, a steady sample is (a budget of
//!   `SAMPLE_RATE` records a second), and the rest are *sampled out*;
//! - a kept-alive session is judged at the end of each request it served well: in the
//!   sample, what is held goes on and the next request is held; out of it, the session
//!   is *muted*: the subscriber stops building its records at all (that is what makes
//!   watching cheap under load: most of a record's cost is building it), until its end
//!   or until the UI follows it. A request of a muted session that fails shows in the
//!   logs and the sessions list, but its call flow was not recorded;
//! - a held session is made at HAProxy's `state` trace level: its pool and task calls
//!   (the `developer` level, the same for every session) are left out, a quarter of
//!   its spans; streamed sessions and the followed one keep them;
//! - a session changes mode only between two top-level calls, so the UI never sees a
//!   call without its end.
//!
//! Records outside sessions (start-up, the loop's own spans) always go to the UI. A held
//! session keeps at most `MAX_HELD` records: beyond, its oldest calls go (as the UI's own
//! trace of a long session drops them), counted as trimmed. The UI's feed is bounded:
//! when the UI falls that far behind (its thread yields to the proxy's), streamed
//! records are dropped and counted, the sample stops, and the sessions kept whole get
//! room of their own (as much again) before even they are dropped, whole, and counted.
//!
//! Sessions are known by slot: the subscriber writes a session's slot into the id of
//! every span made for it (`subscriber::slot_of`), so placing a record costs no lookup.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::trace::capture::{BATCH, Raw, RawBatch, RawField, RawKind, Sink, Val, recycle, spare_batch};
use crate::trace::names;

/// Records waiting for the UI beyond which new calls of sessions are held (about half a
/// second of what the UI folds in).
pub const HIGH: usize = 100_000;
/// Records waiting below which held sessions may go through again.
pub const LOW: usize = 10_000;
/// Records a second of sessions that ended well passed on as a sample while the UI is
/// behind (a session, or a request of a kept-alive one, goes whole or not at all).
pub const SAMPLE_RATE: u64 = 50_000;
/// Records held at most per session.
pub const MAX_HELD: usize = 8_192;
/// Emptied held batches kept for reuse.
const POOL: usize = 64;
/// No session is being followed.
pub const NOBODY: u32 = u32::MAX;
/// Bits of a span id that hold its session's slot (slot 0: no session); sessions beyond
/// the slots (a million at once) go to the UI as they come, like spans outside sessions.
pub const SLOT_BITS: u32 = 20;

/// The policy, as the header says it.
pub const POLICY: &str = "failed + followed + sample, held at state level";

/// What the keeper and the UI share: the followed session and the counts.
#[derive(Debug)]
pub struct KeepShared {
    /// The `uniq_id` of the session the UI shows or follows (`NOBODY`: none).
    pub followed: AtomicU32,
    /// Sessions that ended and were passed on whole.
    pub kept_whole: AtomicU64,
    /// Sessions that ended and were not passed on (or only in part).
    pub sampled_out: AtomicU64,
    /// Records of held sessions dropped to stay within `MAX_HELD`.
    pub trimmed: AtomicU64,
}

impl KeepShared {
    /// Nobody followed, nothing counted.
    pub fn new() -> KeepShared {
        KeepShared {
            followed: AtomicU32::new(NOBODY),
            kept_whole: AtomicU64::new(0),
            sampled_out: AtomicU64::new(0),
            trimmed: AtomicU64::new(0),
        }
    }

    /// The counts now.
    pub fn counts(&self) -> KeepCounts {
        KeepCounts {
            kept_whole: self.kept_whole.load(Ordering::Relaxed),
            sampled_out: self.sampled_out.load(Ordering::Relaxed),
            trimmed: self.trimmed.load(Ordering::Relaxed),
        }
    }
}

impl Default for KeepShared {
    fn default() -> KeepShared {
        KeepShared::new()
    }
}

/// The counts, read at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepCounts {
    /// Sessions passed on whole.
    pub kept_whole: u64,
    /// Sessions sampled out.
    pub sampled_out: u64,
    /// Records of long held sessions dropped.
    pub trimmed: u64,
}

/// Where a record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Nowhere: its session is muted, the record is not built.
    Skip,
    /// To the UI with the next batch.
    Ui,
    /// Held with the rest of its session (the slot).
    Held(u32),
}

/// How much of a session's call flow the subscriber makes (`Keeper::detail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Every span, at every level (streamed sessions, the followed one).
    All,
    /// HAProxy's `state` trace level: every function of the session's life, without
    /// the developer level's pool and task calls (held sessions: a tenth of them are
    /// ever shown, and their pools and tasks are the same for every session).
    State,
    /// None (a muted session).
    Nothing,
}

/// What the keeper does with a session's records now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Stream,
    Hold,
    Mute,
}

/// A session being kept.
#[derive(Debug, Default)]
struct Sess {
    root: u64,
    uniq_id: u32,
    mode: Mode,
    /// Open spans other than the root (a mode change waits for 0).
    open: u32,
    /// Some transaction ended with a termination state other than `--`/`----`.
    failed: bool,
    /// A request ended (`http_end_txn_clean_session`) since the session was last judged.
    served: bool,
    /// Held records, in order.
    held: RawBatch,
    /// Where each held top-level call starts in `held.raws` (the first may be the root).
    calls: VecDeque<u32>,
    /// The root's creation is held (the session is unknown to the UI).
    root_held: bool,
    /// The root's creation reached the UI (its end must, too).
    root_shown: bool,
    /// Some of its records were dropped (trimmed, muted, or sampled out while held).
    partial: bool,
}

/// The keeper of one proxy thread's records for the UI's feed.
pub struct Keeper {
    /// By slot; slot 0 stands for "no session" and is never used.
    sessions: Vec<Sess>,
    free: Vec<u32>,
    /// Records for the UI, sent when full and at every flush.
    ui: RawBatch,
    /// Emptied held batches, for the next sessions to hold (their buffers are already
    /// grown: growing one per session cost more than building its records).
    pool: Vec<RawBatch>,
    sink: Sink,
    shared: Arc<KeepShared>,
    /// Records of the sample budget left (refilled at `SAMPLE_RATE` a second).
    tokens: f64,
    refilled: Instant,
}

/// Appends record `r` of `src` (its fields and their text) to `dst`.
pub fn copy_raw(dst: &mut RawBatch, src: &RawBatch, r: &Raw) {
    let first = dst.fields.len() as u32;
    for f in src.fields_of(r) {
        let val = match f.val {
            Val::Text { .. } => {
                let t = src.text_of(f.val);
                let start = dst.text.len() as u32;
                dst.text.push_str(t);
                Val::Text { start, len: t.len() as u32 }
            }
            v => v,
        };
        dst.fields.push(RawField { name: f.name, val });
    }
    dst.raws.push(Raw { first, ..*r });
}

/// True when `r` records a termination state other than a clean one.
fn records_failure(src: &RawBatch, r: &Raw) -> bool {
    src.fields_of(r).iter().any(|f| f.name == "term" && !matches!(src.text_of(f.val), "" | "--" | "----"))
}

impl Keeper {
    /// A keeper sending to `sink` (the UI's feed), sharing counts through `shared`.
    pub fn new(sink: Sink, shared: Arc<KeepShared>) -> Keeper {
        Keeper {
            sessions: vec![Sess::default()],
            free: Vec::new(),
            ui: spare_batch(),
            pool: Vec::new(),
            sink,
            shared,
            tokens: SAMPLE_RATE as f64,
            refilled: Instant::now(),
        }
    }

    fn pressure(&self) -> usize {
        self.sink.queued()
    }

    fn followed(&self) -> u32 {
        self.shared.followed.load(Ordering::Relaxed)
    }

    /// Where an update or an event of a span of `slot` goes.
    pub fn place(&self, slot: u32) -> Place {
        match self.sessions.get(slot as usize).map(|s| s.mode) {
            _ if slot == 0 => Place::Ui,
            Some(Mode::Hold) => Place::Held(slot),
            Some(Mode::Mute) => Place::Skip,
            _ => Place::Ui,
        }
    }

    /// A span is being created, under `parent` (of slot `parent_slot`); `session_root`
    /// when it is a session's root. Returns the slot to write in its id, and where its
    /// record goes. Sessions change mode here, between two top-level calls.
    pub fn place_new(&mut self, parent: Option<u64>, parent_slot: u32, session_root: bool) -> (u32, Place) {
        if session_root {
            let slot = match self.free.pop() {
                Some(i) => i,
                None if self.sessions.len() < 1 << SLOT_BITS => {
                    self.sessions.push(Sess::default());
                    (self.sessions.len() - 1) as u32
                }
                None => return (0, Place::Ui),
            };
            let hold = self.pressure() > HIGH;
            let mode = if hold { Mode::Hold } else { Mode::Stream };
            let mut s = Sess { uniq_id: NOBODY, mode, root_held: hold, root_shown: !hold, ..Sess::default() };
            if hold {
                s.calls.push_back(0);
            }
            self.sessions[slot as usize] = s;
            return (slot, if hold { Place::Held(slot) } else { Place::Ui });
        }
        let slot = parent_slot;
        let Some(s) = self.sessions.get(slot as usize).filter(|_| slot != 0) else { return (0, Place::Ui) };
        let top = parent == Some(s.root);
        if top && s.open == 0 {
            self.boundary(slot as usize);
        }
        let s = &mut self.sessions[slot as usize];
        s.open += 1;
        let place = self.place(slot);
        if top && let Place::Held(_) = place {
            let s = &mut self.sessions[slot as usize];
            s.calls.push_back(s.held.raws.len() as u32);
        }
        (slot, place)
    }

    /// How much of the call flow of the session in `slot` is made now.
    pub fn detail(&self, slot: u32) -> Detail {
        match self.sessions.get(slot as usize).map(|s| s.mode) {
            _ if slot == 0 => Detail::All,
            Some(Mode::Hold) => Detail::State,
            Some(Mode::Mute) => Detail::Nothing,
            _ => Detail::All,
        }
    }

    /// Span `id` of `slot` closes: where its record goes. A session's root closing is the
    /// session's end: what is held goes on whole, or not at all, and the root's end
    /// follows when the UI knows the session.
    pub fn place_close(&mut self, slot: u32, id: u64) -> Place {
        let Some(s) = self.sessions.get_mut(slot as usize).filter(|_| slot != 0) else { return Place::Ui };
        if id != s.root {
            s.open = s.open.saturating_sub(1);
            return self.place(slot);
        }
        self.end(slot as usize);
        let shown = self.sessions[slot as usize].root_shown;
        // Until the slot serves another session, the calls still open around the end
        // (the `process_session` that freed it) close where the UI has their start.
        let mode = if shown { Mode::Stream } else { Mode::Mute };
        self.sessions[slot as usize] = Sess { mode, ..Sess::default() };
        self.free.push(slot);
        if shown { Place::Ui } else { Place::Skip }
    }

    /// The batch records placed at `place` are appended to (`place` is not `Skip`).
    pub fn batch(&mut self, place: Place) -> &mut RawBatch {
        match place {
            Place::Held(slot) => {
                let held = &mut self.sessions[slot as usize].held;
                if held.raws.capacity() == 0 {
                    *held = self.pool.pop().unwrap_or_else(spare_batch);
                }
                held
            }
            _ => &mut self.ui,
        }
    }

    /// The record of a span of `slot` was just appended at `place`: notes what it says
    /// (a root's session id, a failure, a request served) and keeps the batches in bounds.
    pub fn placed(&mut self, place: Place, slot: u32) {
        let src = match place {
            Place::Skip => return,
            Place::Ui => &self.ui,
            Place::Held(s) => &self.sessions[s as usize].held,
        };
        let Some(r) = src.raws.last() else { return };
        // Termination states are in `session_free`'s fields and in updates.
        let failed = match r.kind {
            RawKind::New { meta, .. } => meta.name() == names::SESSION_FREE && records_failure(src, r),
            RawKind::Update => records_failure(src, r),
            _ => false,
        };
        let mut root_of = None;
        let mut served = false;
        if let RawKind::New { meta, parent } = r.kind {
            if parent.is_none() && meta.name() == names::SESSION {
                let sess = src.fields_of(r).iter().find(|f| f.name == "sess").and_then(|f| match f.val {
                    Val::U64(n) => u32::try_from(n).ok(),
                    _ => None,
                });
                root_of = Some((r.id, sess.unwrap_or(NOBODY)));
            }
            served = meta.name() == names::HTTP_END_TXN_CLEAN_SESSION;
        }
        if let Some(s) = self.sessions.get_mut(slot as usize).filter(|_| slot != 0) {
            s.failed |= failed;
            s.served |= served;
            if let Some((root, uniq_id)) = root_of {
                s.root = root;
                s.uniq_id = uniq_id;
                if s.mode == Mode::Hold && uniq_id == self.followed() {
                    self.release(slot as usize);
                }
            }
        }
        match place {
            Place::Held(s) if self.sessions[s as usize].held.len() > MAX_HELD => self.trim(s as usize),
            Place::Ui if self.ui.len() >= BATCH => self.send(),
            _ => {}
        }
    }

    /// Sends what waits for the UI (the proxy thread calls it at the end of every turn).
    pub fn send(&mut self) {
        if !self.ui.is_empty() {
            let b = std::mem::replace(&mut self.ui, spare_batch());
            self.sink.send(Arc::new(b));
        }
    }

    /// Passes on what is held of the session in `slot`, whole (after what waits for the
    /// UI, which may hold its earlier records).
    fn pass_held(&mut self, slot: usize) {
        self.send();
        let s = &mut self.sessions[slot];
        s.calls.clear();
        if s.root_held {
            s.root_held = false;
            s.root_shown = true;
        }
        if !s.held.is_empty() {
            let b = std::mem::take(&mut s.held);
            self.sink.send_whole(Arc::new(b));
        }
    }

    /// Passes on what is held of the session in `slot` and streams it from now on.
    fn release(&mut self, slot: usize) {
        self.pass_held(slot);
        self.sessions[slot].mode = Mode::Stream;
    }

    /// Forgets what is held of the session in `slot`.
    fn forget(&mut self, slot: usize) {
        let s = &mut self.sessions[slot];
        s.calls.clear();
        let mut b = std::mem::take(&mut s.held);
        if b.raws.capacity() > 0 {
            if self.pool.len() < POOL {
                b.clear();
                self.pool.push(b);
            } else {
                recycle(Arc::new(b));
            }
        }
    }

    /// Takes `n` records from the sample budget, if there are that many and the UI's
    /// feed has room (a sample it would drop is not worth sending).
    fn sample(&mut self, n: usize) -> bool {
        if !self.sink.has_room() {
            return false;
        }
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * SAMPLE_RATE as f64)
            .min(2.0 * SAMPLE_RATE as f64);
        self.refilled = now;
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            return true;
        }
        false
    }

    /// Between two top-level calls of the session in `slot`: hold it when the UI is
    /// behind (unless followed), stream it again when followed or the UI caught up, and
    /// judge a kept-alive session held across a request it served well.
    fn boundary(&mut self, slot: usize) {
        let followed = self.sessions[slot].uniq_id == self.followed();
        let q = self.pressure();
        let s = &mut self.sessions[slot];
        match s.mode {
            Mode::Stream if q > HIGH && !followed => s.mode = Mode::Hold,
            Mode::Stream => {}
            Mode::Hold if followed || (q < LOW && !s.partial) => self.release(slot),
            Mode::Hold if s.served && !s.failed => {
                s.served = false;
                let n = s.held.len();
                if self.sample(n) {
                    // In the sample: this request goes on; the next is held and judged.
                    self.pass_held(slot);
                } else {
                    self.forget(slot);
                    let s = &mut self.sessions[slot];
                    s.mode = Mode::Mute;
                    s.partial = true;
                }
            }
            Mode::Hold => {}
            Mode::Mute if followed => s.mode = Mode::Stream,
            Mode::Mute => {}
        }
    }

    /// A held session grew past `MAX_HELD`: its oldest calls go (the first stays when it
    /// holds the root) until a quarter of the room is free, in one pass.
    fn trim(&mut self, slot: usize) {
        let s = &mut self.sessions[slot];
        let keep_first = usize::from(s.root_held);
        let Some(&from) = s.calls.get(keep_first) else { return };
        let mut to_call = keep_first + 1;
        while to_call < s.calls.len() - 1 && (s.calls[to_call] - from) as usize <= MAX_HELD / 4 {
            to_call += 1;
        }
        if to_call >= s.calls.len() {
            return;
        }
        let to = s.calls[to_call];
        let (from, to) = (from as usize, to as usize);
        let gone = to - from;
        let fields = |i: usize| s.held.raws.get(i).map_or(s.held.fields.len(), |r| r.first as usize);
        let (f0, f1) = (fields(from), fields(to));
        let text = |range: std::ops::Range<usize>| {
            s.held.fields[range].iter().find_map(|f| match f.val {
                Val::Text { start, .. } => Some(start as usize),
                _ => None,
            })
        };
        let t0 = text(f0..f1);
        let t1 = text(f1..s.held.fields.len()).unwrap_or(s.held.text.len());
        let (f0, f1) = (f0 as u32, f1 as u32);
        s.held.raws.drain(from..to);
        s.held.fields.drain(f0 as usize..f1 as usize);
        let tgone = t0.map_or(0, |t0| {
            s.held.text.drain(t0..t1);
            t1 - t0
        });
        for r in &mut s.held.raws[from..] {
            r.first -= f1 - f0;
        }
        for f in &mut s.held.fields[f0 as usize..] {
            if let Val::Text { start, .. } = &mut f.val {
                *start -= tgone as u32;
            }
        }
        s.calls.drain(keep_first..to_call);
        for c in s.calls.iter_mut().skip(keep_first) {
            *c -= gone as u32;
        }
        s.partial = true;
        self.shared.trimmed.fetch_add(gone as u64, Ordering::Relaxed);
    }

    /// The session in `slot` ended: passes on what is held when it is kept.
    fn end(&mut self, slot: usize) {
        let s = &self.sessions[slot];
        let (held, failed, partial) = (s.held.len(), s.failed, s.partial);
        let followed = s.uniq_id == self.followed();
        let keep = match s.mode {
            Mode::Mute => false,
            Mode::Stream => true,
            Mode::Hold => held == 0 || failed || followed || (!partial && self.sample(held)),
        };
        if keep {
            self.pass_held(slot);
        } else {
            self.forget(slot);
        }
        let counter = if keep && !partial { &self.shared.kept_whole } else { &self.shared.sampled_out };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.send();
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::subscriber::{FlowSubscriber, Route};

    /// A subscriber feeding a UI's feed (kept), and that feed (nobody reads it).
    fn ui_dispatch() -> (tracing::Dispatch, crate::trace::capture::Capture) {
        let (sink, out) = crate::trace::capture::kept(1 << 22);
        let sub = FlowSubscriber::new(vec![Route { sink, max: tracing::Level::TRACE }], false, None);
        (tracing::Dispatch::new(sub), out)
    }

    fn flush(d: &tracing::Dispatch) {
        if let Some(s) = d.downcast_ref::<FlowSubscriber>() {
            s.flush_this_thread();
        }
    }

    /// Spans like a session's: a root, top-level calls, one ending with `term`.
    fn session(n: u64, term: &str, calls: usize) {
        let root = tracing::info_span!(parent: None, names::SESSION, sess = n);
        for _ in 0..calls {
            let _c = tracing::debug_span!(parent: &root, names::PROCESS_SESSION, sess = n).entered();
            let _a = tracing::debug_span!(names::HTTP_WAIT_FOR_REQUEST).entered();
        }
        let f = tracing::debug_span!(parent: &root, names::SESSION_FREE, term = tracing::field::Empty);
        f.record("term", term);
        drop(f);
    }

    /// A kept-alive session: `reqs` requests of two calls each, the second ending the
    /// request (`http_end_txn_clean_session` with its `term`), the first one failing when
    /// `fail_first`. Returns whether a span made inside its last call was disabled, and
    /// whether a developer-level one made inside its first call was.
    fn kept_alive(n: u64, reqs: usize, fail_first: bool) -> (bool, bool) {
        let root = tracing::info_span!(parent: None, names::SESSION, sess = n);
        let mut disabled = false;
        let mut developer_left_out = false;
        for i in 0..reqs {
            {
                let _c = tracing::debug_span!(parent: &root, names::PROCESS_SESSION, sess = n).entered();
                let _a = tracing::debug_span!(names::HTTP_WAIT_FOR_REQUEST).entered();
                if i == 0 {
                    developer_left_out = tracing::trace_span!(names::TASK_WAKEUP).is_disabled();
                }
            }
            let _c = tracing::debug_span!(parent: &root, names::PROCESS_SESSION, sess = n).entered();
            let e = tracing::debug_span!(names::HTTP_END_TXN_CLEAN_SESSION, term = tracing::field::Empty);
            e.record("term", if fail_first && i == 0 { "SH--" } else { "----" });
            disabled = tracing::debug_span!(names::HTTP_WAIT_FOR_REQUEST).is_disabled();
        }
        drop(tracing::debug_span!(parent: &root, names::SESSION_FREE, term = "----"));
        (disabled, developer_left_out)
    }

    #[test]
    fn behind_the_ui_kept_alive_sessions_out_of_the_sample_are_muted_at_the_source() {
        let (dispatch, out) = ui_dispatch();
        let muted = tracing::dispatcher::with_default(&dispatch, || {
            // Enough short sessions first for the UI (nobody reads) to be behind, and for
            // them to spend the sample's budget.
            for n in 0..10_000u64 {
                session(n, "--", 10);
                if n % 200 == 0 {
                    flush(&dispatch);
                }
            }
            flush(&dispatch);
            let seen: Vec<(bool, bool)> =
                (0..100u64).map(|n| kept_alive(100_000 + n, 20, n % 10 == 0)).collect();
            flush(&dispatch);
            seen
        });
        assert!(muted.iter().all(|m| m.1), "held sessions are made at the state level");
        let muted: Vec<bool> = muted.iter().map(|m| m.0).collect();
        // Out of the sample after a request served well: nothing more of it was made.
        let failing: Vec<usize> = (0..100).filter(|n| n % 10 == 0).collect();
        assert!(failing.iter().all(|&n| !muted[n]), "a session that failed is never muted");
        assert!(muted.iter().filter(|m| **m).count() >= 80, "{muted:?}");
        let c = out.keeping().expect("kept").counts();
        assert!(c.sampled_out >= 80, "muted sessions count as sampled out: {c:?}");
        let mut trees = crate::trace::tree::TreeBuilder::default();
        trees.extend(&out.drain());
        for r in trees.roots_named(names::SESSION) {
            let n: u64 = r.field("sess").unwrap().parse().unwrap();
            if n >= 100_000 && muted[(n - 100_000) as usize] {
                assert!(r.children.len() < 40, "a muted session's calls were not passed on");
            }
        }
        let whole: Vec<u64> = trees
            .roots_named(names::SESSION)
            .into_iter()
            .filter(|r| r.children.len() == 41)
            .filter_map(|r| r.field("sess")?.parse().ok())
            .filter(|n| *n >= 100_000)
            .collect();
        for n in failing {
            assert!(whole.contains(&(100_000 + n as u64)), "session {n} failed: kept whole");
        }
    }

    #[test]
    fn a_long_held_session_loses_its_oldest_calls_and_keeps_its_fields_right() {
        let (dispatch, out) = ui_dispatch();
        tracing::dispatcher::with_default(&dispatch, || {
            // Enough short sessions first for the UI (nobody reads) to be behind.
            for n in 0..5_000u64 {
                session(n, "--", 10);
            }
            flush(&dispatch);
            let root = tracing::info_span!(parent: None, names::SESSION, sess = 99_999u64);
            for k in 0..(MAX_HELD as u64) {
                let _c = tracing::debug_span!(parent: &root, names::PROCESS_SESSION, call = k, note = "text")
                    .entered();
                if k % 100 == 0 {
                    flush(&dispatch);
                }
            }
            let f = tracing::debug_span!(parent: &root, names::SESSION_FREE, term = "cD");
            drop(f);
            drop(root);
            flush(&dispatch);
        });
        let keep = out.keeping().expect("kept").clone();
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while keep.counts().kept_whole + keep.counts().sampled_out < 5_001 {
            assert!(Instant::now() < deadline, "{:?}", keep.counts());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(keep.counts().trimmed > 0, "{:?}", keep.counts());
        let mut trees = crate::trace::tree::TreeBuilder::default();
        trees.extend(&out.drain());
        let long = trees
            .roots_named(names::SESSION)
            .into_iter()
            .find(|r| r.field("sess") == Some("99999"))
            .expect("the failed session is passed on");
        let calls: Vec<u64> = long
            .children
            .iter()
            .filter(|c| c.name == names::PROCESS_SESSION)
            .map(|c| {
                assert_eq!(c.field("note"), Some("text"), "text fields moved with their records");
                c.field("call").unwrap().parse().unwrap()
            })
            .collect();
        assert!(calls.len() < MAX_HELD && calls.len() > MAX_HELD / 4, "{}", calls.len());
        assert!(calls.windows(2).all(|w| w[1] == w[0] + 1), "the latest calls, in order, none missing");
        assert_eq!(*calls.last().unwrap(), MAX_HELD as u64 - 1);
        assert_eq!(long.children.last().unwrap().field("term"), Some("cD"));
    }

    #[test]
    fn behind_the_ui_failed_sessions_are_kept_whole_and_others_sampled() {
        let (dispatch, out) = ui_dispatch();
        // Nobody reads `out`: the UI is behind from the start of the second thousand.
        tracing::dispatcher::with_default(&dispatch, || {
            for n in 0..20_000u64 {
                session(n, if n % 97 == 0 { "SC" } else { "--" }, 10);
                if n % 200 == 0 {
                    flush(&dispatch);
                }
            }
            flush(&dispatch);
        });
        let keep = out.keeping().expect("a kept feed").clone();
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while keep.counts().kept_whole + keep.counts().sampled_out < 20_000 {
            assert!(Instant::now() < deadline, "{:?}", keep.counts());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let c = keep.counts();
        assert!(c.sampled_out > 0, "the UI fell behind: some were sampled out: {c:?}");
        // Each session passed on is whole: its root, 10 calls, session_free, all ended.
        let mut trees = crate::trace::tree::TreeBuilder::default();
        trees.extend(&out.drain());
        let roots = trees.roots_named(names::SESSION);
        assert_eq!(roots.len() as u64, c.kept_whole, "{c:?}");
        for r in &roots {
            assert_eq!(r.children.len(), 11, "whole: {}", crate::trace::tree::listing(r, &["term"]));
        }
        let failed: Vec<u64> = roots
            .iter()
            .filter(|r| r.find(names::SESSION_FREE).and_then(|f| f.field("term")) == Some("SC"))
            .map(|r| r.field("sess").unwrap().parse().unwrap())
            .collect();
        let want: Vec<u64> = (0..20_000).filter(|n| n % 97 == 0).collect();
        let mut got = failed;
        got.sort_unstable();
        assert_eq!(got, want, "every failed session, whole");
    }
}
