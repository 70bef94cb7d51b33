//! The capture layer: compact span records for live consumers (the TUI, tests, the
//! scenario runner), sent over a bounded channel that never blocks the proxy.
//!
//! A `tracing` layer turns each span's creation, field updates and closing into a small
//! `Record` and `try_send`s it. When the consumer falls behind, the record is dropped and
//! counted: the proxy's speed never depends on who is watching, and the count is shown
//! (a red number in the TUI header) so nobody mistakes a partial picture for the whole.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// One field of a span or event: its name and its value as text.
pub type Field2 = (&'static str, String);

/// What happened to a span (or an event), as the capture layer reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A span was created.
    New {
        /// The span's id (ids are reused after `Close`).
        id: u64,
        /// The parent span, explicit or contextual.
        parent: Option<u64>,
        /// The HAProxy function name (see `trace::names`).
        name: &'static str,
        /// `tracing` level.
        level: tracing::Level,
        /// Fields given at creation.
        fields: Vec<Field2>,
        /// Time since the layer was created.
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
        /// Time since the layer was created.
        at: Duration,
    },
    /// An event (a log-like message inside a span).
    Event {
        /// The enclosing span.
        parent: Option<u64>,
        /// Event fields, `message` included.
        fields: Vec<Field2>,
        /// Time since the layer was created.
        at: Duration,
    },
}

struct FieldsVisitor(Vec<Field2>);

impl Visit for FieldsVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.push((field.name(), s));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name(), value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name(), value.to_string()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name(), value.to_string()));
    }
}

/// The layer: install it in a `tracing_subscriber::Registry`.
pub struct CaptureLayer {
    tx: SyncSender<Record>,
    dropped: Arc<AtomicU64>,
    start: Instant,
}

/// The consumer's end: receives records, knows how many were dropped.
pub struct Capture {
    /// Records in the order they happened.
    pub rx: Receiver<Record>,
    dropped: Arc<AtomicU64>,
}

impl Capture {
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
        self.rx.try_iter().collect()
    }
}

/// A capture layer and its consumer end, with room for `capacity` records in flight.
pub fn capture(capacity: usize) -> (CaptureLayer, Capture) {
    let (tx, rx) = sync_channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    (CaptureLayer { tx, dropped: Arc::clone(&dropped), start: Instant::now() }, Capture { rx, dropped })
}

impl CaptureLayer {
    fn send(&self, r: Record) {
        match self.tx.try_send(r) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = FieldsVisitor(Vec::new());
        attrs.record(&mut v);
        let parent = ctx.span(id).and_then(|s| s.parent()).map(|p| p.id().into_u64());
        self.send(Record::New {
            id: id.into_u64(),
            parent,
            name: attrs.metadata().name(),
            level: *attrs.metadata().level(),
            fields: v.0,
            at: self.start.elapsed(),
        });
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, _ctx: Context<'_, S>) {
        let mut v = FieldsVisitor(Vec::new());
        values.record(&mut v);
        if !v.0.is_empty() {
            self.send(Record::Update { id: id.into_u64(), fields: v.0 });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut v = FieldsVisitor(Vec::new());
        event.record(&mut v);
        let parent = ctx.event_span(event).map(|s| s.id().into_u64());
        self.send(Record::Event { parent, fields: v.0, at: self.start.elapsed() });
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.send(Record::Close { id: id.into_u64(), at: self.start.elapsed() });
    }
}

thread_local! {
    static ROUTE: std::cell::RefCell<Option<CaptureLayer>> = const { std::cell::RefCell::new(None) };
}

/// A layer that forwards to the `CaptureLayer` installed on the current thread, if any.
///
/// Test binaries and the scenario runner run several proxies, each on its own thread, in
/// one process. Installing one process-wide subscriber with this layer (before any span
/// is created) and routing each proxy thread to its own capture avoids per-thread
/// default subscribers, whose callsite-interest caching races with other threads.
pub struct RoutedCapture;

impl<S> Layer<S> for RoutedCapture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        ROUTE.with(|r| {
            if let Some(l) = r.borrow().as_ref() {
                l.on_new_span(attrs, id, ctx)
            }
        })
    }
    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        ROUTE.with(|r| {
            if let Some(l) = r.borrow().as_ref() {
                <CaptureLayer as Layer<S>>::on_record(l, id, values, ctx)
            }
        })
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        ROUTE.with(|r| {
            if let Some(l) = r.borrow().as_ref() {
                l.on_event(event, ctx)
            }
        })
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        ROUTE.with(|r| {
            if let Some(l) = r.borrow().as_ref() {
                <CaptureLayer as Layer<S>>::on_close(l, id, ctx)
            }
        })
    }
}

/// Installs the process-wide routed subscriber once (a no-op if a global default exists),
/// with the runtime trace layer (`trace ...` on the stats socket) beside it.
pub fn install_routed_global() {
    use tracing_subscriber::layer::SubscriberExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::Layer as _;
        let runtime = crate::trace::runtime::TraceLayer.with_filter(crate::trace::runtime::trace_filter());
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(RoutedCapture).with(runtime),
        );
    });
}

/// Sends this thread's span records to `layer` (until the thread ends).
pub fn route_this_thread(layer: CaptureLayer) {
    ROUTE.with(|r| *r.borrow_mut() = Some(layer));
}
