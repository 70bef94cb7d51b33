//! Span records and the capture feed: what live consumers (the TUI, tests, the scenario
//! runner) receive, over a bounded channel that never blocks the proxy.
//!
//! The subscriber (`trace::subscriber`) turns each span's creation, field updates and
//! closing into a small `Record`, batches records per thread, and hands each batch to the
//! sinks at once (the proxy thread flushes at the end of every loop turn), so a channel
//! operation and a consumer wake-up cost once per batch, not once per span. When a
//! consumer falls behind, whole batches are dropped and counted: the proxy's speed never
//! depends on who is watching, and the count is shown (a red number in the TUI header) so
//! nobody mistakes a partial picture for the whole.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::Duration;

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

/// Formats `value` into a new `FieldText` (`format_args!`-style, without a `String`).
pub fn field_text(value: fmt::Arguments<'_>) -> FieldText {
    let mut t = FieldText::new();
    let _ = fmt::Write::write_fmt(&mut t, value);
    t
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

/// What the subscriber stores per record: the record without its fields, which live in
/// the batch's shared field list (`RawBatch::fields`), so recording allocates nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Raw {
    /// Which record, with its own data.
    pub kind: RawKind,
    /// The span (for events: 0).
    pub id: u64,
    /// When it happened (made relative to the subscriber's start by the consumer).
    pub at: std::time::Instant,
    /// First field in `RawBatch::fields`.
    pub first: u32,
    /// Number of fields.
    pub count: u16,
}

/// The kind of a `Raw` record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawKind {
    /// A span was created.
    New {
        /// The parent span, explicit or contextual.
        parent: Option<u64>,
        /// The span name.
        name: &'static str,
        /// The span level.
        level: tracing::Level,
    },
    /// Fields recorded after creation.
    Update,
    /// The span closed.
    Close,
    /// An event.
    Event {
        /// The enclosing span.
        parent: Option<u64>,
        /// The event level.
        level: tracing::Level,
    },
}

/// A batch as the subscriber sends it: records and their fields.
#[derive(Debug, Default)]
pub struct RawBatch {
    /// The records, in order.
    pub raws: Vec<Raw>,
    /// Every record's fields, back to back.
    pub fields: Vec<Field2>,
    /// When the subscriber started (times in `Record`s are relative to it).
    pub start: Option<std::time::Instant>,
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

    /// Rebuilds the `Record`s (on the consumer's thread), keeping those `keep` accepts.
    pub fn records(&self, max: tracing::Level) -> impl Iterator<Item = Record> + '_ {
        self.raws.iter().filter(move |r| r.level() <= max).map(|r| {
            let fields = self.fields[r.first as usize..r.first as usize + r.count as usize].to_vec();
            let at = self.start.map_or(Duration::ZERO, |s| r.at.saturating_duration_since(s));
            match r.kind {
                RawKind::New { parent, name, level } => {
                    Record::New { id: r.id, parent, name, level, fields, at }
                }
                RawKind::Update => Record::Update { id: r.id, fields },
                RawKind::Close => Record::Close { id: r.id, at },
                RawKind::Event { parent, level } => Record::Event { parent, level, fields, at },
            }
        })
    }
}

impl Raw {
    /// The level of the span (or event) this record is about.
    pub fn level(&self) -> tracing::Level {
        match self.kind {
            RawKind::New { level, .. } | RawKind::Event { level, .. } => level,
            RawKind::Update | RawKind::Close => crate::trace::subscriber::level_of(self.id),
        }
    }
}

/// A batch, shared between the sinks that receive it.
pub type Batch = Arc<RawBatch>;

/// How a sink's channel behaves when its consumer is slow.
#[derive(Clone, Debug)]
enum Tx {
    /// Bounded: batches beyond the capacity are dropped and counted (live consumers).
    Bounded(SyncSender<Batch>),
    /// Unbounded: nothing is dropped (the trace file must be complete).
    Unbounded(Sender<Batch>),
}

/// The producing end of a feed: where the subscriber sends batches.
#[derive(Clone, Debug)]
pub struct Sink {
    tx: Tx,
    dropped: Arc<AtomicU64>,
    inflight: Arc<AtomicUsize>,
    capacity: usize,
}

impl Sink {
    /// Whether another batch of `n` records fits; counts them as dropped when not.
    pub fn has_room(&self, n: usize) -> bool {
        if self.inflight.load(Ordering::Relaxed) + n > self.capacity {
            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Sends a batch without ever blocking.
    pub fn send(&self, batch: Batch) {
        let n = batch.len();
        if n == 0 || !self.has_room(n) {
            return;
        }
        self.inflight.fetch_add(n, Ordering::Relaxed);
        let ok = match &self.tx {
            Tx::Bounded(tx) => tx.try_send(batch).is_ok(),
            Tx::Unbounded(tx) => tx.send(batch).is_ok(),
        };
        if !ok {
            self.inflight.fetch_sub(n, Ordering::Relaxed);
            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Tells the consumer that nothing more will come (an empty batch).
    pub fn finish(&self) {
        match &self.tx {
            Tx::Bounded(tx) => {
                let _ = tx.send(Arc::default());
            }
            Tx::Unbounded(tx) => {
                let _ = tx.send(Arc::default());
            }
        }
    }

    /// True when both ends belong to the same feed.
    pub fn same_as(&self, other: &Sink) -> bool {
        Arc::ptr_eq(&self.dropped, &other.dropped)
    }
}

/// The consumer's end: receives records, knows how many were dropped.
pub struct Capture {
    rx: Receiver<Batch>,
    dropped: Arc<AtomicU64>,
    inflight: Arc<AtomicUsize>,
    pending: RefCell<VecDeque<Record>>,
    /// The most verbose level this consumer wants.
    max: tracing::Level,
}

impl Capture {
    fn take_batch(&self, batch: Batch) {
        self.inflight.fetch_sub(batch.len(), Ordering::Relaxed);
        self.pending.borrow_mut().extend(batch.records(self.max));
    }

    /// Records received so far, without waiting, in the order they happened.
    pub fn try_iter(&self) -> impl Iterator<Item = Record> + '_ {
        while let Ok(b) = self.rx.try_recv() {
            self.take_batch(b);
        }
        std::iter::from_fn(move || self.pending.borrow_mut().pop_front())
    }

    /// Waits for the next record; `None` once every producer is gone.
    pub fn recv(&self) -> Option<Record> {
        loop {
            if let Some(r) = self.pending.borrow_mut().pop_front() {
                return Some(r);
            }
            let b = self.rx.recv().ok()?;
            self.take_batch(b);
        }
    }

    /// Waits for the next batch as it was sent (the trace writer uses it).
    pub fn recv_batch(&self) -> Option<Batch> {
        let b = self.rx.recv().ok()?;
        self.inflight.fetch_sub(b.len(), Ordering::Relaxed);
        Some(b)
    }

    /// Waits up to `timeout` for the next record.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Record> {
        if let Some(r) = self.pending.borrow_mut().pop_front() {
            return Some(r);
        }
        let b = self.rx.recv_timeout(timeout).ok()?;
        self.take_batch(b);
        self.pending.borrow_mut().pop_front()
    }

    /// Records lost because the consumer was too slow.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A shared counter of dropped records (for displays living elsewhere).
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    /// Everything received so far, without waiting.
    pub fn drain(&self) -> Vec<Record> {
        self.try_iter().collect()
    }
}

/// A live feed with room for about `capacity` records in flight; what does not fit is
/// dropped and counted.
pub fn capture(capacity: usize) -> (Sink, Capture) {
    let (tx, rx) = sync_channel(capacity.div_ceil(64).max(4));
    feed(Tx::Bounded(tx), rx, capacity)
}

/// A feed that never drops (the trace file's).
pub fn lossless() -> (Sink, Capture) {
    let (tx, rx) = channel();
    feed(Tx::Unbounded(tx), rx, usize::MAX / 2)
}

fn feed(tx: Tx, rx: Receiver<Batch>, capacity: usize) -> (Sink, Capture) {
    let dropped = Arc::new(AtomicU64::new(0));
    let inflight = Arc::new(AtomicUsize::new(0));
    (
        Sink { tx, dropped: Arc::clone(&dropped), inflight: Arc::clone(&inflight), capacity },
        Capture { rx, dropped, inflight, pending: RefCell::new(VecDeque::new()), max: tracing::Level::TRACE },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_text_is_inline_when_short_and_grows_when_long() {
        let t = field_text(format_args!("{}", 12345));
        assert_eq!(t.as_str(), "12345");
        assert!(matches!(t.0, Repr::Inline(..)));
        let long = field_text(format_args!("{}", "x".repeat(100)));
        assert_eq!(long.len(), 100);
    }

    #[test]
    fn a_full_feed_drops_and_counts_instead_of_blocking() {
        let (sink, cap) = capture(100);
        let batch = || {
            let raw = Raw { kind: RawKind::Close, id: 1, at: std::time::Instant::now(), first: 0, count: 0 };
            Arc::new(RawBatch { raws: vec![raw; 80], fields: Vec::new(), start: None })
        };
        sink.send(batch());
        sink.send(batch());
        assert_eq!(cap.dropped(), 80, "the second batch did not fit");
        assert_eq!(cap.drain().len(), 80);
        sink.send(batch());
        assert_eq!(cap.drain().len(), 80, "room again once the consumer caught up");
    }
}
