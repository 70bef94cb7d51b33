//! Span records and the capture feed: what consumers (the TUI, the trace writer, tests,
//! the scenario runner) receive from the proxy thread, without ever slowing it down.
//!
//! The subscriber (`trace::subscriber`) turns each span's creation, field updates and
//! closing into a small `Raw` record, keeps field values raw (numbers stay numbers, text
//! goes to a per-batch arena), batches records per thread, and queues each batch for the
//! sinks at once (the proxy thread flushes at the end of every loop turn). Consumers look
//! for batches every few milliseconds rather than being woken per batch, and hand read
//! batches back for reuse. When a live consumer falls behind, whole batches are dropped
//! and counted: the proxy's speed never depends on who is watching, and the count is
//! shown (a red number in the TUI header) so nobody mistakes a partial picture for the
//! whole. The UI's feed (`kept`) rarely gets there: the subscriber keeps whole sessions
//! for it and stops making the records of the others (`trace::keeper`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU64;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing::Metadata;

use crate::trace::fields::Code;

/// A field value as text, stored inline when short (most are: numbers, states, names),
/// so recording a span's fields rarely allocates.
#[derive(Clone, PartialEq, Eq)]
pub struct FieldText(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Inline(u8, [u8; 30]),
    Heap(Box<str>),
}

impl FieldText {
    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only whole `&str`s are ever appended, so the bytes are valid UTF-8.
            Repr::Inline(len, buf) => std::str::from_utf8(&buf[..*len as usize]).unwrap_or(""),
            Repr::Heap(s) => s,
        }
    }

    fn new() -> FieldText {
        FieldText(Repr::Inline(0, [0; 30]))
    }

    /// The decimal text of an integer, built in place (most fields are numbers, and
    /// `core::fmt` costs more than the digits).
    pub fn from_int(v: u64, negative: bool) -> FieldText {
        let mut buf = [0u8; 30];
        let mut digits = [0u8; 20];
        let mut n = 0;
        let mut v = v;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let mut len = 0;
        if negative {
            buf[0] = b'-';
            len = 1;
        }
        for d in digits[..n].iter().rev() {
            buf[len] = *d;
            len += 1;
        }
        FieldText(Repr::Inline(len as u8, buf))
    }
}

impl fmt::Write for FieldText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match &mut self.0 {
            Repr::Inline(len, buf) if *len as usize + s.len() <= buf.len() => {
                buf[*len as usize..*len as usize + s.len()].copy_from_slice(s.as_bytes());
                *len += s.len() as u8;
            }
            Repr::Inline(..) => {
                let mut owned = self.as_str().to_string();
                owned.push_str(s);
                self.0 = Repr::Heap(owned.into_boxed_str());
            }
            Repr::Heap(h) => {
                let mut owned = h.to_string();
                owned.push_str(s);
                *h = owned.into_boxed_str();
            }
        }
        Ok(())
    }
}

impl Deref for FieldText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for FieldText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for FieldText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for FieldText {
    fn from(s: &str) -> FieldText {
        let mut t = FieldText::new();
        let _ = fmt::Write::write_str(&mut t, s);
        t
    }
}

impl From<String> for FieldText {
    fn from(s: String) -> FieldText {
        FieldText::from(s.as_str())
    }
}

impl PartialEq<&str> for FieldText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One field of a span or event: its name and its value as text.
pub type Field2 = (&'static str, FieldText);

/// What happened to a span (or an event), as the subscriber reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A span was created.
    New {
        /// The span's id (never reused while the process runs).
        id: u64,
        /// The parent span, explicit or contextual.
        parent: Option<u64>,
        /// The HAProxy function name (see `trace::names`).
        name: &'static str,
        /// `tracing` level.
        level: tracing::Level,
        /// Fields given at creation.
        fields: Vec<Field2>,
        /// Time since the subscriber started.
        at: Duration,
    },
    /// Fields recorded after creation (`span.record(...)`).
    Update {
        /// The span.
        id: u64,
        /// The new values.
        fields: Vec<Field2>,
    },
    /// The span closed (its last handle was dropped).
    Close {
        /// The span.
        id: u64,
        /// Time since the subscriber started.
        at: Duration,
    },
    /// An event (a log-like message inside a span).
    Event {
        /// The enclosing span.
        parent: Option<u64>,
        /// `tracing` level.
        level: tracing::Level,
        /// Event fields, `message` included.
        fields: Vec<Field2>,
        /// Time since the subscriber started.
        at: Duration,
    },
}

/// A field value as the subscriber stores it: numbers stay numbers until a consumer
/// shows them, and text lives in its batch's `text` (so recording a field never allocates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    /// An unsigned number.
    U64(u64),
    /// A signed number.
    I64(i64),
    /// A boolean.
    Bool(bool),
    /// An HAProxy state or flag set (see `trace::fields`).
    Coded(Code, u32),
    /// Text, at `start..start + len` in `RawBatch::text`.
    Text {
        /// Byte offset.
        start: u32,
        /// Byte length.
        len: u32,
    },
}

/// One field as the subscriber stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawField {
    /// The field's name.
    pub name: &'static str,
    /// Its value.
    pub val: Val,
}

/// What the subscriber stores per record: the record without its fields, which live in
/// the batch's shared field list (`RawBatch::fields`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Raw {
    /// Which record, with its own data.
    pub kind: RawKind,
    /// The span (for events: 0).
    pub id: u64,
    /// When it happened, in nanoseconds since the subscriber started (0 for updates).
    pub at_ns: u64,
    /// First field in `RawBatch::fields`.
    pub first: u32,
    /// Number of fields.
    pub count: u32,
}

/// The kind of a `Raw` record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawKind {
    /// A span was created.
    New {
        /// The parent span, explicit or contextual.
        parent: Option<NonZeroU64>,
        /// The span's callsite: its name and level.
        meta: &'static Metadata<'static>,
    },
    /// Fields recorded after creation.
    Update,
    /// The span closed.
    Close,
    /// An event.
    Event {
        /// The enclosing span.
        parent: Option<NonZeroU64>,
        /// The event level.
        level: tracing::Level,
    },
}

/// A batch as the subscriber sends it: records, their fields, and the fields' text.
#[derive(Debug, Default)]
pub struct RawBatch {
    /// The records, in order.
    pub raws: Vec<Raw>,
    /// Every record's fields, back to back.
    pub fields: Vec<RawField>,
    /// Every text value, back to back.
    pub text: String,
}

impl RawBatch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.raws.len()
    }

    /// True when there is no record.
    pub fn is_empty(&self) -> bool {
        self.raws.is_empty()
    }

    /// The fields of `r`.
    pub fn fields_of(&self, r: &Raw) -> &[RawField] {
        &self.fields[r.first as usize..r.first as usize + r.count as usize]
    }

    /// The text of a `Val::Text` (empty for other values).
    pub fn text_of(&self, v: Val) -> &str {
        match v {
            Val::Text { start, len } => self.text.get(start as usize..(start + len) as usize).unwrap_or(""),
            _ => "",
        }
    }

    /// A value as text.
    pub fn format(&self, v: Val) -> FieldText {
        match v {
            Val::U64(n) => FieldText::from_int(n, false),
            Val::I64(n) => FieldText::from_int(n.unsigned_abs(), n < 0),
            Val::Bool(b) => FieldText::from(if b { "true" } else { "false" }),
            Val::Coded(c, bits) => {
                let mut t = FieldText::new();
                let _ = c.write(bits, &mut t);
                t
            }
            Val::Text { .. } => FieldText::from(self.text_of(v)),
        }
    }

    /// The fields of `r` as `(name, text)` pairs.
    pub fn field_texts(&self, r: &Raw) -> Vec<Field2> {
        self.fields_of(r).iter().map(|f| (f.name, self.format(f.val))).collect()
    }

    /// Rebuilds the `Record`s of level `max` or more severe (on the consumer's thread).
    pub fn records(&self, max: tracing::Level) -> impl Iterator<Item = Record> + '_ {
        self.raws.iter().filter(move |r| r.level() <= max).map(|r| {
            let fields = self.field_texts(r);
            let at = Duration::from_nanos(r.at_ns);
            match r.kind {
                RawKind::New { parent, meta } => Record::New {
                    id: r.id,
                    parent: parent.map(NonZeroU64::get),
                    name: meta.name(),
                    level: *meta.level(),
                    fields,
                    at,
                },
                RawKind::Update => Record::Update { id: r.id, fields },
                RawKind::Close => Record::Close { id: r.id, at },
                RawKind::Event { parent, level } => {
                    Record::Event { parent: parent.map(NonZeroU64::get), level, fields, at }
                }
            }
        })
    }

    /// Empties it, keeping its buffers.
    pub fn clear(&mut self) {
        self.raws.clear();
        self.fields.clear();
        self.text.clear();
    }
}

impl Raw {
    /// The level of the span (or event) this record is about.
    pub fn level(&self) -> tracing::Level {
        match self.kind {
            RawKind::New { meta, .. } => *meta.level(),
            RawKind::Event { level, .. } => level,
            RawKind::Update | RawKind::Close => crate::trace::subscriber::level_of(self.id),
        }
    }
}

/// Records per batch before the subscriber sends it (it also sends at every loop turn).
pub const BATCH: usize = 256;

/// A batch, shared between the sinks that receive it.
pub type Batch = Arc<RawBatch>;

/// Batches whose last reader is done, kept for the producer's next ones (a batch's
/// buffers are worth keeping: the proxy thread fills one every loop turn).
static SPARE: Mutex<Vec<RawBatch>> = Mutex::new(Vec::new());

/// Batches kept at most in `SPARE`: a consumer polls every `POLL` and meanwhile a busy
/// proxy fills a batch or two per loop turn, about a hundred; fewer would be freed and
/// allocated again each time.
const SPARE_MAX: usize = 128;

/// An empty batch, with the buffers of a used one when there is one. A new one starts
/// small and grows as it fills: with the UI behind, the proxy sends a few records per
/// loop turn and finds no spare, and a full-size batch each time (46 KB of fresh pages)
/// cost more than the records in it.
pub fn spare_batch() -> RawBatch {
    SPARE.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_else(|| RawBatch {
        raws: Vec::with_capacity(BATCH / 8),
        fields: Vec::with_capacity(BATCH / 2),
        text: String::with_capacity(BATCH),
    })
}

/// Hands a batch back once read: its buffers go to `spare_batch` if nobody else holds it.
pub fn recycle(batch: Batch) {
    if let Ok(mut b) = Arc::try_unwrap(batch) {
        b.clear();
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_MAX {
            spare.push(b);
        }
    }
}

/// How often a waiting consumer looks for batches. Producers never wake consumers: a
/// futex wake per batch (one per loop turn) cost the proxy more than the records did.
const POLL: Duration = Duration::from_millis(1);

/// The queue between the producing threads and one consumer.
#[derive(Debug)]
struct Queue {
    batches: Mutex<VecDeque<Batch>>,
    finished: Condvar,
    /// Records queued and not yet taken.
    inflight: AtomicUsize,
    /// Records dropped because the consumer was behind.
    dropped: AtomicU64,
    /// `None`: never drop (the trace file must be complete).
    capacity: Option<usize>,
    /// Live `Sink`s; at zero the consumer sees the end of the feed.
    senders: AtomicUsize,
    /// The UI's feed: the subscriber keeps whole sessions for it (`trace::keeper`), and
    /// this is what the keeper and the UI share.
    keep: Option<Arc<crate::trace::keeper::KeepShared>>,
}

/// The producing end of a feed: where the subscriber sends batches.
#[derive(Debug)]
pub struct Sink {
    q: Arc<Queue>,
}

impl Clone for Sink {
    fn clone(&self) -> Sink {
        self.q.senders.fetch_add(1, Ordering::Relaxed);
        Sink { q: Arc::clone(&self.q) }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if self.q.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.q.finished.notify_all();
        }
    }
}

impl Sink {
    /// Sends a batch without ever blocking; on a bounded feed whose consumer is behind,
    /// the batch is dropped and its records counted.
    pub fn send(&self, batch: Batch) {
        self.enqueue(batch, 1);
    }

    /// Sends a batch that holds whole sessions the UI must not lose (failed, followed):
    /// on a bounded feed it may take as much room again before it is dropped.
    pub fn send_whole(&self, batch: Batch) {
        self.enqueue(batch, 2);
    }

    /// Queues `batch` unless the feed is bounded and `rooms` times its capacity is taken.
    fn enqueue(&self, batch: Batch, rooms: usize) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        if let Some(cap) = self.q.capacity
            && self.q.inflight.load(Ordering::Relaxed) + n > rooms * cap
        {
            self.q.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return;
        }
        self.q.inflight.fetch_add(n, Ordering::Relaxed);
        self.q.batches.lock().unwrap_or_else(|e| e.into_inner()).push_back(batch);
    }

    /// False when the feed is bounded and too full for another batch: the producer then
    /// skips building records (`count_skipped` keeps the loss visible).
    pub fn has_room(&self) -> bool {
        self.q.capacity.is_none_or(|cap| self.q.inflight.load(Ordering::Relaxed) + BATCH <= cap)
    }

    /// Counts records the producer did not build because the feed was full.
    pub fn count_skipped(&self, n: u64) {
        self.q.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Tells the consumer that nothing more will come (an empty batch), and wakes it.
    pub fn finish(&self) {
        self.q.batches.lock().unwrap_or_else(|e| e.into_inner()).push_back(Arc::default());
        self.q.finished.notify_all();
    }

    /// Records queued and not taken yet (how far behind the consumer is).
    pub fn queued(&self) -> usize {
        self.q.inflight.load(Ordering::Relaxed)
    }

    /// What the subscriber's keeper shares with the consumer, when this is a kept feed.
    pub fn kept(&self) -> Option<&Arc<crate::trace::keeper::KeepShared>> {
        self.q.keep.as_ref()
    }

    /// True when both ends belong to the same feed.
    pub fn same_as(&self, other: &Sink) -> bool {
        Arc::ptr_eq(&self.q, &other.q)
    }
}

/// The consumer's end: receives records, knows how many were dropped.
pub struct Capture {
    q: Arc<Queue>,
    pending: RefCell<VecDeque<Record>>,
    /// The most verbose level this consumer wants.
    max: tracing::Level,
}

impl Capture {
    /// The next batch as it was sent, without waiting.
    pub fn try_recv_batch(&self) -> Option<Batch> {
        let b = self.q.batches.lock().unwrap_or_else(|e| e.into_inner()).pop_front()?;
        self.q.inflight.fetch_sub(b.len(), Ordering::Relaxed);
        Some(b)
    }

    fn take_batch(&self, batch: Batch) {
        self.pending.borrow_mut().extend(batch.records(self.max));
        recycle(batch);
    }

    /// Records received so far, without waiting, in the order they happened. Batches are
    /// unpacked one at a time as the iterator reaches them: a consumer that stops early
    /// leaves the rest queued, so a slow one makes the queue fill and records drop
    /// (counted) rather than pile up in its memory.
    pub fn try_iter(&self) -> impl Iterator<Item = Record> + '_ {
        std::iter::from_fn(move || {
            loop {
                if let Some(r) = self.pending.borrow_mut().pop_front() {
                    return Some(r);
                }
                let b = self.try_recv_batch()?;
                self.take_batch(b);
            }
        })
    }

    /// Waits for the next batch as it was sent (looking every few milliseconds); `None`
    /// once every producer is gone and the queue is empty. An empty batch means
    /// `Sink::finish`.
    pub fn recv_batch(&self) -> Option<Batch> {
        loop {
            let mut q = self.q.batches.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = q.pop_front() {
                self.q.inflight.fetch_sub(b.len(), Ordering::Relaxed);
                return Some(b);
            }
            if self.q.senders.load(Ordering::Acquire) == 0 {
                return None;
            }
            drop(self.q.finished.wait_timeout(q, POLL).unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// Records lost because the consumer was too slow.
    pub fn dropped(&self) -> u64 {
        self.q.dropped.load(Ordering::Relaxed)
    }

    /// What the subscriber's keeper shares with this feed (counts, the followed
    /// session), when it is a kept feed (`kept`).
    pub fn keeping(&self) -> Option<&Arc<crate::trace::keeper::KeepShared>> {
        self.q.keep.as_ref()
    }

    /// Everything received so far, without waiting.
    pub fn drain(&self) -> Vec<Record> {
        self.try_iter().collect()
    }
}

/// A live feed with room for about `capacity` records in flight; what does not fit is
/// dropped and counted.
pub fn capture(capacity: usize) -> (Sink, Capture) {
    feed(Some(capacity), None)
}

/// The UI's feed: like `capture`, and the subscriber keeps whole sessions for it when
/// it falls behind (`trace::keeper`).
pub fn kept(capacity: usize) -> (Sink, Capture) {
    feed(Some(capacity), Some(Arc::new(crate::trace::keeper::KeepShared::new())))
}

/// A feed that never drops (the trace file's).
pub fn lossless() -> (Sink, Capture) {
    feed(None, None)
}

fn feed(capacity: Option<usize>, keep: Option<Arc<crate::trace::keeper::KeepShared>>) -> (Sink, Capture) {
    let q = Arc::new(Queue {
        batches: Mutex::new(VecDeque::new()),
        finished: Condvar::new(),
        inflight: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        capacity,
        senders: AtomicUsize::new(1),
        keep,
    });
    (
        Sink { q: Arc::clone(&q) },
        Capture { q, pending: RefCell::new(VecDeque::new()), max: tracing::Level::TRACE },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_text_is_inline_when_short_and_grows_when_long() {
        let t = FieldText::from_int(12345, false);
        assert_eq!(t.as_str(), "12345");
        assert!(matches!(t.0, Repr::Inline(..)));
        let long = FieldText::from("x".repeat(100));
        assert_eq!(long.len(), 100);
    }

    /// A batch of `n` records.
    fn batch_of(n: usize) -> Batch {
        let raw = Raw { kind: RawKind::Close, id: 1, at_ns: 0, first: 0, count: 0 };
        Arc::new(RawBatch { raws: vec![raw; n], ..RawBatch::default() })
    }

    #[test]
    fn whole_sessions_get_room_of_their_own_in_a_full_feed() {
        let (sink, cap) = capture(100);
        let batch = || batch_of(60);
        sink.send(batch());
        sink.send(batch());
        assert_eq!(cap.dropped(), 60, "the feed is full for streamed records");
        sink.send_whole(batch());
        sink.send_whole(batch());
        assert_eq!(cap.dropped(), 60, "whole sessions still fit, in the second room");
        sink.send_whole(batch());
        assert_eq!(cap.dropped(), 120, "beyond twice the capacity, even whole sessions drop");
        assert_eq!(cap.drain().len(), 180);
    }

    #[test]
    fn a_full_feed_drops_and_counts_instead_of_blocking() {
        let (sink, cap) = capture(100);
        let batch = || batch_of(80);
        sink.send(batch());
        sink.send(batch());
        assert_eq!(cap.dropped(), 80, "the second batch did not fit");
        assert_eq!(cap.drain().len(), 80);
        sink.send(batch());
        assert_eq!(cap.drain().len(), 80, "room again once the consumer caught up");
    }
}
