//! The `tracing` subscriber behind every trace output: cheap span records in per-thread
//! batches.
//!
//! haflow's spans are its product, and a learner watches them while the proxy serves real
//! traffic, so recording them must stay cheap. A general-purpose registry
//! (`tracing_subscriber::Registry`) costs about 120 ns per span before any layer runs, and
//! tracing-chrome's layer about 2 µs more (it builds a JSON object and posts one channel
//! message per begin and per end). This subscriber does only what haflow needs: it numbers
//! spans itself, keeps the stack of entered spans in a thread-local to resolve contextual
//! parents, formats fields into inline text, and appends `Record`s to a thread-local
//! batch. A batch goes to the sinks (the capture feed of the UI, the trace file's writer)
//! when it is full and at the end of every loop turn (`flush_thread`).
//!
//! Span ids carry their level in the low bits, so a sink can select the records of a
//! level without looking anything up when the span closes, and above it the slot of the
//! session the span belongs to, so the UI's keeper (`trace::keeper`, run here for the
//! UI's feed) places every record without a lookup either.

use std::cell::RefCell;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as Values};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, Layered, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};

use crate::trace::capture::{
    BATCH, Field2, Raw, RawBatch, RawField, RawKind, Sink, Val, recycle, spare_batch,
};
use crate::trace::fields::decode;
use crate::trace::keeper::{Detail, Keeper, Place, SLOT_BITS, copy_raw};
use crate::trace::{names, runtime};

/// Bits of a span id that hold its level (see `level_of`).
const LEVEL_BITS: u64 = 3;

/// The id of span number `n`, of session slot `slot`, at level code `level`. The span
/// number takes the 41 bits left: at two million spans a second, twelve days go by
/// before numbers come round again.
fn compose(n: u64, slot: u32, level: u64) -> NonZeroU64 {
    let id = (n << (LEVEL_BITS + u64::from(SLOT_BITS))) | (u64::from(slot) << LEVEL_BITS) | level;
    NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN)
}

/// The slot of the session span `id` belongs to (0: none, or no keeper on its thread).
pub fn slot_of(id: u64) -> u32 {
    ((id >> LEVEL_BITS) & ((1 << SLOT_BITS) - 1)) as u32
}

fn level_code(l: &Level) -> u64 {
    match *l {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

/// The level of span `id` (encoded in the id's low bits).
pub fn level_of(id: u64) -> Level {
    match id & ((1 << LEVEL_BITS) - 1) {
        0 => Level::ERROR,
        1 => Level::WARN,
        2 => Level::INFO,
        3 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// A destination for records, with the most verbose level it needs recorded (the
/// consumer selects its records on its own thread).
#[derive(Clone, Debug)]
pub struct Route {
    /// Where batches go.
    pub sink: Sink,
    /// The most verbose level it wants.
    pub max: Level,
}

/// This thread's records not sent yet, the entered spans, and its own route (tests run
/// several proxies in one process, each thread feeding its own capture).
struct Local {
    /// The next span number this thread hands out, and the end of its block.
    next_id: u64,
    id_end: u64,
    batch: RawBatch,
    stack: Vec<u64>,
    routes: Vec<Route>,
    /// Records not built because every feed was full, counted into the feeds at the
    /// next flush (one atomic add per flush, not one per record).
    skipped: u64,
    /// The keeper of the UI's feed, when one of this thread's routes is the UI's.
    keeper: Option<Keeper>,
    /// The subscriber (`FlowSubscriber::serial`) whose routes were looked at for the UI's
    /// feed, since they last changed (0: none; tests run several subscribers on one thread).
    keeper_checked: u64,
    /// The UI's feed is this thread's only route: what the keeper leaves out of a
    /// session need not be made at all (`DETAIL`).
    mute_ok: bool,
    /// This thread has routes other than the UI's feed.
    has_plain: bool,
}

impl Local {
    /// Sets `DETAIL` for the span now innermost.
    fn update_detail(&self) {
        let detail = match (self.stack.last(), &self.keeper) {
            (Some(&t), Some(k)) if self.mute_ok => k.detail(slot_of(t)),
            _ => Detail::All,
        };
        DETAIL.set(detail);
    }
}

thread_local! {
    /// How much of the call flow of the innermost entered span's session the UI's keeper
    /// wants: the spans it leaves out are disabled (`enabled` says no), so they cost a
    /// check instead of a span. The exception is a span made there for another session
    /// (`process_srv_queue`, which dequeues a waiting session).
    static DETAIL: std::cell::Cell<Detail> = const { std::cell::Cell::new(Detail::All) };
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            next_id: 0,
            id_end: 0,
            batch: RawBatch { raws: Vec::new(), fields: Vec::new(), text: String::new() },
            stack: Vec::new(),
            routes: Vec::new(),
            skipped: 0,
            keeper: None,
            keeper_checked: 0,
            mute_ok: false,
            has_plain: false,
        })
    };
}

/// Span numbers handed out to threads in blocks: one atomic add per block, not per span,
/// and process-wide so that two subscribers (tests run several) never share an id.
static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(1);
const ID_BLOCK: u64 = 4096;

impl Local {
    /// A span number unique in the process (increasing on each thread, so a child's is
    /// above its parent's).
    fn new_id(&mut self) -> u64 {
        if self.next_id == self.id_end {
            self.next_id = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
            self.id_end = self.next_id + ID_BLOCK;
        }
        self.next_id += 1;
        self.next_id - 1
    }
}

/// The subscriber (install it once, process-wide, with `tracing::subscriber::set_global_default`).
pub struct FlowSubscriber {
    routes: Vec<Route>,
    /// The most verbose level any route wants (everything when threads may have routes
    /// of their own, see `route_this_thread`).
    max: Level,
    /// Events at this level or more severe go to stderr.
    stderr: Option<Level>,
    /// The TSC where there is one (a timestamp in about 7 ns, against about 25 ns for
    /// `clock_gettime`; two per span).
    clock: quanta::Clock,
    start: u64,
    /// Extra handles of cloned spans (rare: haflow never clones its spans on the hot path).
    clones: Mutex<HashMap<u64, usize>>,
    any_clone: AtomicBool,
    /// Some thread may feed the UI (and mute sessions): `enabled` is asked per span.
    mutes: bool,
    /// This subscriber's number in the process (from 1), for `Local::keeper_checked`.
    serial: u64,
}

/// The last `FlowSubscriber::serial` given.
static SERIALS: AtomicU64 = AtomicU64::new(0);

impl FlowSubscriber {
    /// A subscriber sending to `routes`; `routed` lets threads add their own route;
    /// `stderr` prints events at that level or more severe.
    pub fn new(routes: Vec<Route>, routed: bool, stderr: Option<Level>) -> FlowSubscriber {
        let mut max = stderr.unwrap_or(Level::ERROR);
        for r in &routes {
            if r.max > max {
                max = r.max;
            }
        }
        if routed {
            max = Level::TRACE;
        }
        let clock = quanta::Clock::new();
        let mutes = routed || routes.iter().any(|r| r.sink.kept().is_some());
        FlowSubscriber {
            mutes,
            serial: SERIALS.fetch_add(1, Ordering::Relaxed) + 1,
            start: clock.raw(),
            clock,
            routes,
            max,
            stderr,
            clones: Mutex::new(HashMap::new()),
            any_clone: AtomicBool::new(false),
        }
    }

    /// This thread's routes other than the UI's (which its keeper feeds).
    fn plain_routes<'a>(&'a self, local: &'a Local) -> impl Iterator<Item = &'a Route> {
        self.routes.iter().chain(local.routes.iter()).filter(|r| r.sink.kept().is_none())
    }

    /// Sets up this thread's keeper when one of its routes is the UI's feed.
    fn ready(&self, local: &mut Local) {
        if local.keeper_checked == self.serial {
            return;
        }
        local.keeper_checked = self.serial;
        // What another subscriber's keeper left out on this thread no longer applies.
        DETAIL.set(Detail::All);
        let kept =
            self.routes.iter().chain(local.routes.iter()).find_map(|r| Some((&r.sink, r.sink.kept()?)));
        local.keeper = kept.map(|(sink, shared)| Keeper::new(sink.clone(), Arc::clone(shared)));
        let has_plain = self.plain_routes(local).next().is_some();
        local.has_plain = has_plain;
        local.mute_ok = self.mutes && local.keeper.is_some() && !local.has_plain;
    }

    /// True when a record of `level` has somewhere to go from this thread other than the
    /// UI's feed. A bounded feed whose consumer is behind does not count: the record
    /// would be dropped when sent, so it is not built at all (that is most of its cost),
    /// only counted.
    fn recording(&self, local: &mut Local, level: Level) -> bool {
        if level > self.max || !local.has_plain {
            return false;
        }
        let (mut wanted, mut room) = (false, false);
        // Every level: a writer places a record by its parents, even unwritten ones.
        for r in self.plain_routes(local) {
            wanted = true;
            room |= r.sink.has_room();
        }
        if wanted && !room {
            local.skipped += 1;
        }
        room
    }

    /// Builds a record where it goes: into this thread's batch for the plain routes
    /// (`to.plain`), and at `to.place` for the UI's keeper (directly when no plain route
    /// wants it, by copy otherwise); `visit` stores its fields, `hook` sees them as text
    /// (the runtime trace facility).
    fn build(&self, local: &mut Local, to: Dest, visit: impl FnOnce(&mut FieldsVisitor), hook: Hook<'_>) {
        let Dest { kind, id, slot, place, plain } = to;
        let at_ns =
            if kind == RawKind::Update { 0 } else { self.clock.delta_as_nanos(self.start, self.clock.raw()) };
        let Local { batch, keeper, .. } = &mut *local;
        let direct = match keeper {
            Some(k) if !plain && place != Place::Skip => k.batch(place),
            _ => &mut *batch,
        };
        let first = direct.fields.len();
        visit(&mut FieldsVisitor(direct));
        if let Some(hook) = hook {
            hook(&texts(direct, first));
        }
        if kind == RawKind::Update && direct.fields.len() == first {
            // Nothing recorded after all (an empty value).
            return;
        }
        let count = (direct.fields.len() - first) as u32;
        let raw = Raw { kind, id, at_ns, first: first as u32, count };
        if plain || place == Place::Skip {
            if plain {
                batch.raws.push(raw);
            } else {
                truncate(batch, first);
            }
            if let Some(k) = keeper.as_mut().filter(|_| place != Place::Skip) {
                copy_raw(k.batch(place), batch, &raw);
                k.placed(place, slot);
            }
            if batch.raws.len() >= BATCH {
                self.flush(local);
            }
        } else if let Some(k) = keeper.as_mut() {
            k.batch(place).raws.push(raw);
            k.placed(place, slot);
        }
    }

    /// Sends this thread's pending records now (for a subscriber that is not the global
    /// one, which the loop flushes with `flush_thread`).
    pub fn flush_this_thread(&self) {
        let _ = LOCAL.try_with(|l| self.flush(&mut l.borrow_mut()));
    }

    fn flush(&self, local: &mut Local) {
        if let Some(k) = &mut local.keeper {
            k.send();
        }
        if local.skipped > 0 {
            for r in self.plain_routes(local) {
                r.sink.count_skipped(local.skipped);
            }
            local.skipped = 0;
        }
        if local.batch.raws.is_empty() {
            return;
        }
        let batch = Arc::new(std::mem::replace(&mut local.batch, spare_batch()));
        for r in self.plain_routes(local) {
            r.sink.send(Arc::clone(&batch));
        }
        recycle(batch);
    }
}

/// Where a record goes, and what it is.
struct Dest {
    kind: RawKind,
    id: u64,
    /// Its session's slot (0: none).
    slot: u32,
    /// Where the keeper places it.
    place: Place,
    /// Plain routes want it.
    plain: bool,
}

/// The runtime trace facility's look at a record's fields, when it is on.
type Hook<'a> = Option<&'a mut dyn FnMut(&[Field2])>;

/// The fields pushed to `batch` from `first`, as text (for the runtime trace hooks).
fn texts(batch: &RawBatch, first: usize) -> Vec<Field2> {
    batch.fields[first..].iter().map(|f| (f.name, batch.format(f.val))).collect()
}

/// Forgets the fields pushed from `first` (nobody records them), and their text.
fn truncate(batch: &mut RawBatch, first: usize) {
    let text = batch.fields[first..].iter().find_map(|f| match f.val {
        Val::Text { start, .. } => Some(start as usize),
        _ => None,
    });
    if let Some(start) = text {
        batch.text.truncate(start);
    }
    batch.fields.truncate(first);
}

/// Stores fields in a batch: numbers as they are, text in the batch's text arena.
struct FieldsVisitor<'a>(&'a mut RawBatch);

impl FieldsVisitor<'_> {
    fn text(&mut self, field: &Field, write: impl FnOnce(&mut String)) {
        let start = self.0.text.len();
        write(&mut self.0.text);
        let len = (self.0.text.len() - start) as u32;
        self.0.fields.push(RawField { name: field.name(), val: Val::Text { start: start as u32, len } });
    }
}

impl Visit for FieldsVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.text(field, |t| {
            let _ = std::fmt::Write::write_fmt(t, format_args!("{value:?}"));
        });
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, |t| t.push_str(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let val = match decode(value) {
            Some((code, bits)) => Val::Coded(code, bits),
            None => Val::U64(value),
        };
        self.0.fields.push(RawField { name: field.name(), val });
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.fields.push(RawField { name: field.name(), val: Val::I64(value) });
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.fields.push(RawField { name: field.name(), val: Val::Bool(value) });
    }
}

impl Subscriber for FlowSubscriber {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if *meta.level() <= self.max {
            if self.mutes { Interest::sometimes() } else { Interest::always() }
        } else if runtime::tracing_anywhere() {
            // A `trace` started on the stats socket may want it: ask per span.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        let wanted = match DETAIL.get() {
            Detail::All => true,
            Detail::State => *meta.level() <= Level::DEBUG,
            Detail::Nothing => false,
        };
        (*meta.level() <= self.max && (wanted || meta.name() == names::PROCESS_SRV_QUEUE))
            || runtime::active_here()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        if runtime::tracing_anywhere() {
            return Some(tracing::level_filters::LevelFilter::TRACE);
        }
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let meta = attrs.metadata();
        let level = level_code(meta.level());
        let id = LOCAL
            .try_with(|l| {
                let mut l = l.borrow_mut();
                self.ready(&mut l);
                let n = l.new_id();
                let parent = if attrs.is_root() {
                    None
                } else {
                    attrs.parent().map(|p| p.into_u64()).or_else(|| l.stack.last().copied())
                };
                let (slot, place) = match &mut l.keeper {
                    Some(k) => k.place_new(
                        parent,
                        parent.map_or(0, slot_of),
                        parent.is_none() && meta.name() == names::SESSION,
                    ),
                    None => (0, Place::Skip),
                };
                let id = compose(n, slot, level);
                let runtime = runtime::active_here();
                let plain = self.recording(&mut l, *meta.level());
                if runtime || plain || place != Place::Skip {
                    let kind = RawKind::New { parent: parent.and_then(NonZeroU64::new), meta };
                    let mut hook = |f: &[Field2]| runtime::span_new(meta, id.get(), parent, f);
                    let hook = runtime.then_some(&mut hook as &mut dyn FnMut(&[Field2]));
                    self.build(
                        &mut l,
                        Dest { kind, id: id.get(), slot, place, plain },
                        |v| attrs.record(v),
                        hook,
                    );
                }
                id
            })
            // The thread is ending: a number of its own from the shared counter.
            .unwrap_or_else(|_| compose(NEXT_ID_BLOCK.fetch_add(1, Ordering::Relaxed), 0, level));
        Id::from_non_zero_u64(id)
    }

    fn record(&self, span: &Id, values: &Values<'_>) {
        let id = span.into_u64();
        let _ = LOCAL.try_with(|l| {
            let mut l = l.borrow_mut();
            self.ready(&mut l);
            let slot = slot_of(id);
            let place = l.keeper.as_ref().map_or(Place::Skip, |k| k.place(slot));
            let runtime = runtime::active_here();
            let plain = self.recording(&mut l, level_of(id));
            if runtime || plain || place != Place::Skip {
                let mut hook = |f: &[Field2]| runtime::span_record(id, f);
                let hook = runtime.then_some(&mut hook as &mut dyn FnMut(&[Field2]));
                self.build(
                    &mut l,
                    Dest { kind: RawKind::Update, id, slot, place, plain },
                    |v| values.record(v),
                    hook,
                );
            }
        });
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = *event.metadata().level();
        if self.stderr.is_some_and(|s| level <= s) {
            let mut batch = RawBatch::default();
            event.record(&mut FieldsVisitor(&mut batch));
            let text: Vec<String> = texts(&batch, 0)
                .iter()
                .map(|(k, v)| if *k == "message" { v.to_string() } else { format!("{k}={v}") })
                .collect();
            eprintln!("{level:>5} {}: {}", event.metadata().target(), text.join(" "));
        }
        let _ = LOCAL.try_with(|l| {
            let mut l = l.borrow_mut();
            self.ready(&mut l);
            let parent = event.parent().map(|p| p.into_u64()).or_else(|| l.stack.last().copied());
            let slot = parent.map_or(0, slot_of);
            let place = l.keeper.as_ref().map_or(Place::Skip, |k| k.place(slot));
            let runtime = runtime::active_here();
            let plain = self.recording(&mut l, level);
            if runtime || plain || place != Place::Skip {
                let kind = RawKind::Event { parent: parent.and_then(NonZeroU64::new), level };
                let mut hook = |f: &[Field2]| runtime::event(&level, parent, f);
                let hook = runtime.then_some(&mut hook as &mut dyn FnMut(&[Field2]));
                self.build(&mut l, Dest { kind, id: 0, slot, place, plain }, |v| event.record(v), hook);
            }
        });
    }

    fn enter(&self, span: &Id) {
        let _ = LOCAL.try_with(|l| {
            let mut l = l.borrow_mut();
            l.stack.push(span.into_u64());
            if l.mute_ok {
                l.update_detail();
            }
        });
    }

    fn exit(&self, span: &Id) {
        let id = span.into_u64();
        let _ = LOCAL.try_with(|l| {
            let mut l = l.borrow_mut();
            if let Some(pos) = l.stack.iter().rposition(|&x| x == id) {
                l.stack.remove(pos);
            }
            if l.mute_ok {
                l.update_detail();
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.any_clone.store(true, Ordering::Relaxed);
        *self.clones.lock().unwrap_or_else(|e| e.into_inner()).entry(id.into_u64()).or_insert(0) += 1;
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let raw = id.into_u64();
        if self.any_clone.load(Ordering::Relaxed) {
            let mut clones = self.clones.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = clones.get_mut(&raw) {
                *n -= 1;
                if *n == 0 {
                    clones.remove(&raw);
                }
                return false;
            }
        }
        if runtime::tracing_anywhere() {
            runtime::span_close(raw);
        }
        let _ = LOCAL.try_with(|l| {
            let mut l = l.borrow_mut();
            self.ready(&mut l);
            let slot = slot_of(raw);
            let place = l.keeper.as_mut().map_or(Place::Skip, |k| k.place_close(slot, raw));
            let plain = self.recording(&mut l, level_of(raw));
            if plain || place != Place::Skip {
                self.build(&mut l, Dest { kind: RawKind::Close, id: raw, slot, place, plain }, |_| {}, None);
            }
        });
        true
    }

    fn current_span(&self) -> tracing_core::span::Current {
        tracing_core::span::Current::none()
    }
}

/// The process-wide subscriber, when it is a `FlowSubscriber` (to flush from the loop).
static FLOW: std::sync::OnceLock<Arc<FlowSubscriber>> = std::sync::OnceLock::new();

/// Installs `sub` as the process-wide subscriber (once; later calls return `false`).
pub fn install_global(sub: FlowSubscriber) -> bool {
    let sub = Arc::new(sub);
    if FLOW.set(Arc::clone(&sub)).is_err() {
        return false;
    }
    tracing::subscriber::set_global_default(SharedFlow(sub)).is_ok()
}

/// `FlowSubscriber` behind an `Arc`, so the loop can reach it to flush.
struct SharedFlow(Arc<FlowSubscriber>);

impl Subscriber for SharedFlow {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        self.0.register_callsite(meta)
    }
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.0.enabled(meta)
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        self.0.new_span(attrs)
    }
    fn record(&self, span: &Id, values: &Values<'_>) {
        self.0.record(span, values)
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.0.record_follows_from(span, follows)
    }
    fn event(&self, event: &Event<'_>) {
        self.0.event(event)
    }
    fn enter(&self, span: &Id) {
        self.0.enter(span)
    }
    fn exit(&self, span: &Id) {
        self.0.exit(span)
    }
    fn clone_span(&self, id: &Id) -> Id {
        self.0.clone_span(id)
    }
    fn try_close(&self, id: Id) -> bool {
        self.0.try_close(id)
    }
}

/// `FlowSubscriber` as a layer of tracing-subscriber's registry, for `--trace-writer
/// tracing-chrome`: the registry numbers the spans and keeps their scopes for the layers
/// beside this one (tracing-chrome's), and this layer hands every call on to the
/// `FlowSubscriber` under the number that one gave the span (kept in the registry span's
/// extensions), so the capture feed, the UI and the runtime trace facility work as they
/// do without the registry.
pub struct FlowLayer(Arc<FlowSubscriber>);

/// The `FlowSubscriber`'s id of a registry span.
struct FlowId(Id);

impl FlowLayer {
    fn flow_id<S>(id: &Id, ctx: &Context<'_, S>) -> Option<Id>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        ctx.span(id)?.extensions().get::<FlowId>().map(|f| f.0.clone())
    }
}

impl<S> Layer<S> for FlowLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let flow = match attrs.parent() {
            // An explicit parent is a registry id: the subscriber knows it by its own.
            Some(p) => match Self::flow_id(p, &ctx) {
                Some(fp) => self.0.new_span(&Attributes::child_of(fp, attrs.metadata(), attrs.values())),
                None => self.0.new_span(&Attributes::new_root(attrs.metadata(), attrs.values())),
            },
            // A contextual parent: the subscriber's own stack of entered spans.
            None => self.0.new_span(attrs),
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(FlowId(flow));
        }
    }

    fn on_record(&self, id: &Id, values: &Values<'_>, ctx: Context<'_, S>) {
        if let Some(f) = Self::flow_id(id, &ctx) {
            self.0.record(&f, values);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // haflow's events name no explicit parent: the contextual one is on the stack.
        self.0.event(event);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(f) = Self::flow_id(id, &ctx) {
            self.0.enter(&f);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(f) = Self::flow_id(id, &ctx) {
            self.0.exit(&f);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(f) = Self::flow_id(&id, &ctx) {
            self.0.try_close(f);
        }
    }
}

/// Installs `sub` process-wide (once; later calls return `false`) as a layer of
/// tracing-subscriber's registry, with `beside` (tracing-chrome's layer, filtered to the
/// trace file's level) next to it.
pub fn install_global_with<L>(sub: FlowSubscriber, beside: L) -> bool
where
    L: Layer<Layered<FlowLayer, Registry>> + Send + Sync + 'static,
{
    let sub = Arc::new(sub);
    if FLOW.set(Arc::clone(&sub)).is_err() {
        return false;
    }
    let registry = Registry::default().with(FlowLayer(sub)).with(beside);
    tracing::subscriber::set_global_default(registry).is_ok()
}

/// Sends this thread's pending records now (the proxy loop calls it once per turn and
/// when it stops; a thread's remaining records are also sent when it ends).
pub fn flush_thread() {
    if let Some(f) = FLOW.get() {
        let _ = LOCAL.try_with(|l| f.flush(&mut l.borrow_mut()));
    }
}

/// The spans entered on this thread, outermost first (what a debugger calls the stack).
pub fn entered_spans() -> Vec<u64> {
    LOCAL.try_with(|l| l.borrow().stack.clone()).unwrap_or_default()
}

/// Gives this thread a route of its own, in addition to any it has (requires a
/// subscriber installed with `routed`).
pub fn route_this_thread(route: Route) {
    let _ = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        l.routes.push(route);
        l.keeper_checked = 0;
    });
}

/// Installs, once, a routed subscriber with no global route: each proxy thread of a test
/// binary or of the scenario runner then feeds its own capture (`route_this_thread`).
pub fn install_routed_global() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        install_global(FlowSubscriber::new(Vec::new(), true, None));
    });
}

impl Drop for Local {
    fn drop(&mut self) {
        // The thread ends: its last records still go out.
        if let Some(f) = FLOW.get() {
            f.flush(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::capture::capture;

    #[test]
    fn a_full_feed_is_not_fed_and_every_record_is_received_or_counted() {
        let (sink, cap) = capture(2 * BATCH);
        let sub = Arc::new(FlowSubscriber::new(vec![Route { sink, max: Level::TRACE }], false, None));
        let dispatch = tracing::Dispatch::new(SharedFlow(Arc::clone(&sub)));
        let spans = 5000;
        tracing::dispatcher::with_default(&dispatch, || {
            for n in 0..spans {
                let _s = tracing::trace_span!(crate::trace::names::POOL_ALLOC2, n).entered();
            }
            LOCAL.with(|l| sub.flush(&mut l.borrow_mut()));
        });
        // Nobody reads: two batches fill the feed, then records are no longer built.
        let received = cap.drain().len() as u64;
        assert_eq!(received, 2 * BATCH as u64);
        assert_eq!(
            received + cap.dropped(),
            2 * spans,
            "a begin and an end per span, each received or counted"
        );
    }
}
