//! The keeper: what a live view keeps of the call flow when it cannot take it all, by
//! whole sessions rather than by batches.
//!
//! Under heavy traffic the proxy makes span records faster than a terminal UI can fold
//! them in (a few hundred thousand a second). Dropping whatever does not fit loses a
//! little of every session, and the sessions a user looks for first, the failed ones,
//! are as likely to be cut as any. The keeper sits between the proxy's capture feed and
//! the UI, on a thread of its own, and reads every record (it only copies them, which is
//! cheap); what it passes on is decided per session:
//!
//! - while the UI keeps up, a session's records go through as they come (*streamed*);
//! - when the UI falls behind (`HIGH` records wait for it), sessions are *held* instead,
//!   a whole top-level call (`stream_sock_read`, `process_session`...) at a time, and at
//!   the session's end the keeper decides: a session with a termination state other than
//!   `--`/`----` (any of its transactions), or the one the UI follows, is passed on whole;
//!   of the others, a steady sample is (a budget of `SAMPLE_RATE` records a second), and
//!   the rest are *sampled out*;
//! - a session switches between streamed and held only between two top-level calls, so
//!   the UI never sees a call without its end; the session the UI follows (`follow`) is
//!   streamed again at once, with what was held of it.
//!
//! Records outside sessions (start-up, the loop's own spans) always go through. A held
//! session keeps at most `MAX_HELD` records: beyond, its oldest calls go (as the UI's own
//! trace of a long session drops them), counted as trimmed. What reaches the UI is then
//! whole sessions, and the counts say what was kept, sampled out, and dropped before the
//! keeper (when even the keeper could not keep up, the subscriber stops building records:
//! `Capture::dropped`).

use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::trace::IdMap;
use crate::trace::capture::{
    BATCH, Capture, Raw, RawBatch, RawField, RawKind, Sink, Val, lossless, recycle, spare_batch,
};
use crate::trace::names;

/// Records waiting for the UI beyond which new calls of sessions are held (about half a
/// second of what the UI folds in).
pub const HIGH: usize = 100_000;
/// Records waiting below which held sessions may go through again.
pub const LOW: usize = 10_000;
/// Records a second of sessions that ended well passed on as a sample while the UI is
/// behind (a session goes whole or not at all).
pub const SAMPLE_RATE: u64 = 50_000;
/// Records held at most per session.
pub const MAX_HELD: usize = 8_192;
/// No session is being followed.
pub const NOBODY: u32 = u32::MAX;

/// The policy, as the header says it.
pub const POLICY: &str = "failed + followed + sample";

/// What the keeper and the UI share: the followed session and the counts.
#[derive(Debug)]
pub struct KeepShared {
    /// The `uniq_id` of the session the UI shows or follows (`NOBODY`: none).
    pub followed: AtomicU32,
    /// Sessions that ended and were passed on whole.
    pub kept_whole: AtomicU64,
    /// Sessions that ended and were not passed on (or only their start).
    pub sampled_out: AtomicU64,
    /// Records of held sessions dropped to stay within `MAX_HELD`.
    pub trimmed: AtomicU64,
}

impl KeepShared {
    fn new() -> KeepShared {
        KeepShared {
            followed: AtomicU32::new(NOBODY),
            kept_whole: AtomicU64::new(0),
            sampled_out: AtomicU64::new(0),
            trimmed: AtomicU64::new(0),
        }
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

impl KeepShared {
    /// The counts now.
    pub fn counts(&self) -> KeepCounts {
        KeepCounts {
            kept_whole: self.kept_whole.load(Ordering::Relaxed),
            sampled_out: self.sampled_out.load(Ordering::Relaxed),
            trimmed: self.trimmed.load(Ordering::Relaxed),
        }
    }
}

/// Where an open span's records go.
#[derive(Clone, Copy, Debug)]
struct Owner {
    /// The session's slot, or `PASS` for spans outside sessions.
    slot: u32,
    /// Its creation went to the UI (so its updates and end must, too).
    streamed: bool,
}

const PASS: u32 = u32::MAX;

/// A session being kept.
#[derive(Debug, Default)]
struct Sess {
    root: u64,
    uniq_id: u32,
    /// Its records go to the UI as they come.
    streaming: bool,
    /// Open spans other than the root (a mode switch waits for 0).
    open: u32,
    /// Some transaction ended with a termination state other than `--`/`----`.
    failed: bool,
    /// Held records, in order.
    held: RawBatch,
    /// Where each held top-level call starts in `held.raws` (the first may be the root).
    calls: std::collections::VecDeque<u32>,
    /// The root's creation was held (the session is unknown to the UI).
    root_held: bool,
    /// Some of its records were dropped (trimmed, or sampled out while held).
    partial: bool,
}

/// The keeper's state, on its thread.
struct Keeper {
    owners: IdMap<Owner>,
    sessions: Vec<Sess>,
    free: Vec<u32>,
    out: RawBatch,
    sink: Sink,
    shared: Arc<KeepShared>,
    /// Records of the sample budget left (refilled at `SAMPLE_RATE` a second).
    tokens: f64,
    refilled: Instant,
}

/// Appends record `r` of `src` (its fields and their text) to `dst`.
fn copy_raw(dst: &mut RawBatch, src: &RawBatch, r: &Raw) {
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
    fn pressure(&self) -> usize {
        self.sink.queued()
    }

    fn followed(&self) -> u32 {
        self.shared.followed.load(Ordering::Relaxed)
    }

    fn emit(&mut self, src: &RawBatch, r: &Raw) {
        copy_raw(&mut self.out, src, r);
        if self.out.len() >= crate::trace::capture::BATCH {
            self.send();
        }
    }

    fn send(&mut self) {
        if !self.out.is_empty() {
            let b = std::mem::replace(&mut self.out, spare_batch());
            self.sink.send(Arc::new(b));
        }
    }

    /// Passes on what is held of the session in `slot`, whole, and streams it from now on.
    fn release(&mut self, slot: usize) {
        self.send();
        let s = &mut self.sessions[slot];
        s.streaming = true;
        s.root_held = false;
        s.calls.clear();
        if !s.held.is_empty() {
            let b = std::mem::take(&mut s.held);
            self.sink.send(Arc::new(b));
        }
    }

    /// Forgets what is held of the session in `slot`.
    fn forget(&mut self, slot: usize) {
        let s = &mut self.sessions[slot];
        s.calls.clear();
        let b = std::mem::take(&mut s.held);
        if b.raws.capacity() > 0 {
            recycle(Arc::new(b));
        }
    }

    /// Between two top-level calls of the session in `slot`: hold it when the UI is
    /// behind (unless followed), stream it again when followed or the UI caught up.
    fn boundary(&mut self, slot: usize) {
        let followed = self.sessions[slot].uniq_id == self.followed();
        let q = self.pressure();
        let s = &mut self.sessions[slot];
        if s.streaming {
            if q > HIGH && !followed {
                s.streaming = false;
            }
        } else if followed || (q < LOW && !s.partial) {
            self.release(slot);
        }
    }

    fn hold(&mut self, slot: usize, src: &RawBatch, r: &Raw, new_call: bool) {
        let s = &mut self.sessions[slot];
        if new_call || s.calls.is_empty() {
            s.calls.push_back(s.held.raws.len() as u32);
        }
        copy_raw(&mut s.held, src, r);
        if s.held.len() > MAX_HELD {
            self.trim(slot);
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

    /// The session in `slot` ended (its root is closing): passes on what is held when it
    /// is kept, and frees the slot.
    fn end(&mut self, slot: usize) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * SAMPLE_RATE as f64)
            .min(2.0 * SAMPLE_RATE as f64);
        self.refilled = now;
        let s = &self.sessions[slot];
        let held = s.held.len();
        let size = held as f64;
        let keep =
            held == 0 || s.failed || s.uniq_id == self.followed() || (self.tokens >= size && !s.partial);
        if keep && !s.failed && held > 0 && s.uniq_id != self.followed() {
            self.tokens -= size;
        }
        let whole = keep && !s.partial;
        if keep {
            self.release(slot);
        } else {
            self.forget(slot);
        }
        let counter = if whole { &self.shared.kept_whole } else { &self.shared.sampled_out };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn handle(&mut self, src: &RawBatch, r: &Raw) {
        match r.kind {
            RawKind::New { parent, meta } => {
                let parent = parent.map(NonZeroU64::get);
                if parent.is_none() && meta.name() == names::SESSION {
                    let uniq_id = src
                        .fields_of(r)
                        .iter()
                        .find(|f| f.name == "sess")
                        .and_then(|f| match f.val {
                            Val::U64(n) => u32::try_from(n).ok(),
                            _ => None,
                        })
                        .unwrap_or(NOBODY);
                    let streaming = self.pressure() <= HIGH || uniq_id == self.followed();
                    let sess =
                        Sess { root: r.id, uniq_id, streaming, root_held: !streaming, ..Sess::default() };
                    let slot = match self.free.pop() {
                        Some(i) => {
                            self.sessions[i as usize] = sess;
                            i
                        }
                        None => {
                            self.sessions.push(sess);
                            (self.sessions.len() - 1) as u32
                        }
                    };
                    self.owners.insert(r.id, Owner { slot, streamed: streaming });
                    if streaming {
                        self.emit(src, r);
                    } else {
                        self.hold(slot as usize, src, r, true);
                    }
                    return;
                }
                let owner = parent.and_then(|p| self.owners.get(&p)).map_or(PASS, |o| o.slot);
                if owner == PASS {
                    self.owners.insert(r.id, Owner { slot: PASS, streamed: true });
                    self.emit(src, r);
                    return;
                }
                let slot = owner as usize;
                let top = parent == Some(self.sessions[slot].root);
                if top && self.sessions[slot].open == 0 {
                    self.boundary(slot);
                }
                let s = &mut self.sessions[slot];
                s.open += 1;
                let streamed = s.streaming;
                if records_failure(src, r) {
                    s.failed = true;
                }
                self.owners.insert(r.id, Owner { slot: owner, streamed });
                if streamed {
                    self.emit(src, r);
                } else {
                    self.hold(slot, src, r, top);
                }
            }
            RawKind::Update | RawKind::Close => {
                let close = r.kind == RawKind::Close;
                let Some(o) = self.owners.get(&r.id).copied() else {
                    // Began before the keeper (or its creation was dropped): pass it on.
                    self.emit(src, r);
                    return;
                };
                if close {
                    self.owners.remove(&r.id);
                }
                if o.slot == PASS {
                    self.emit(src, r);
                    return;
                }
                let slot = o.slot as usize;
                if records_failure(src, r) {
                    self.sessions[slot].failed = true;
                }
                if close && r.id == self.sessions[slot].root {
                    // The session's end: what is held goes on whole, or not at all; the
                    // root's own end follows when the UI knows the session.
                    self.end(slot);
                    self.free.push(o.slot);
                    if o.streamed || self.sessions[slot].streaming {
                        self.emit(src, r);
                    }
                    return;
                }
                if close {
                    let s = &mut self.sessions[slot];
                    s.open = s.open.saturating_sub(1);
                }
                if o.streamed {
                    self.emit(src, r);
                } else {
                    self.hold(slot, src, r, false);
                }
            }
            RawKind::Event { parent, .. } => {
                let owner = parent.and_then(|p| self.owners.get(&p.get()).copied());
                match owner {
                    Some(o) if o.slot != PASS && !o.streamed => self.hold(o.slot as usize, src, r, false),
                    _ => self.emit(src, r),
                }
            }
        }
    }
}

/// Starts the keeper on `input` (the proxy's capture feed); returns the UI's feed, whose
/// `keeping()` gives the shared counts and the followed session.
pub fn start(input: Capture) -> Capture {
    let (sink, mut out) = lossless();
    let shared = Arc::new(KeepShared::new());
    // The UI's end counts the records the proxy could not build (the keeper was behind).
    out.behind_keeper(&input, Arc::clone(&shared));
    let k = Keeper {
        owners: IdMap::default(),
        sessions: Vec::new(),
        free: Vec::new(),
        out: spare_batch(),
        sink: sink.clone(),
        shared,
        tokens: SAMPLE_RATE as f64,
        refilled: Instant::now(),
    };
    let spawned = std::thread::Builder::new().name("haflow-keeper".into()).spawn(move || run(k, input));
    if spawned.is_err() {
        // No thread: nothing will be passed on; the UI says so by its empty views.
        drop(sink);
    }
    out
}

/// Passes records on in full batches while the proxy's batches keep coming, and at once
/// when none waits: one output batch per input batch took a spare batch from the pool for
/// each handful of records, and with those waiting for the UI the proxy thread found the
/// pool empty and allocated (and page-faulted) a fresh batch at every flush.
fn run(mut k: Keeper, input: Capture) {
    while let Some(mut batch) = input.recv_batch() {
        loop {
            if batch.is_empty() {
                k.send();
                return;
            }
            for r in &batch.raws {
                k.handle(&batch, r);
            }
            recycle(batch);
            if k.out.len() >= BATCH {
                k.send();
            }
            match input.try_recv_batch() {
                Some(next) => batch = next,
                None => break,
            }
        }
        k.send();
    }
    k.send();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::subscriber::{FlowSubscriber, Route};

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

    #[test]
    fn a_long_held_session_loses_its_oldest_calls_and_keeps_its_fields_right() {
        let (sink, input) = crate::trace::capture::capture(1 << 22);
        let out = start(input);
        let dispatch = tracing::Dispatch::new(FlowSubscriber::new(
            vec![Route { sink, max: tracing::Level::TRACE }],
            false,
            None,
        ));
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
        let (sink, input) = crate::trace::capture::capture(1 << 22);
        let out = start(input);
        let sub = FlowSubscriber::new(vec![Route { sink, max: tracing::Level::TRACE }], false, None);
        let dispatch = tracing::Dispatch::new(sub);
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
