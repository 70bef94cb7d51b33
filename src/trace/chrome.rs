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

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::thread::JoinHandle;

use crate::trace::IdMap;
use crate::trace::capture::{Capture, Raw, RawBatch, RawField, RawKind, Sink, Val, recycle};
use crate::trace::export::{TraceFilter, TraceLevel, TraceStyle};
use crate::trace::names;

/// What the writer needs to know about an open span.
struct Open {
    name: &'static str,
    root: u64,
    kept: bool,
    /// Fields recorded after creation, as JSON values (written with the span's end).
    updates: Vec<(&'static str, String)>,
}

/// Whether a session tree is written, per `--trace-filter`.
enum Decision {
    Yes,
    No,
    /// `be=` filter: the backend is not known yet; the tree's lines wait here.
    Undecided(Vec<String>),
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the decimal digits of `n` (the writer's hottest formatting: ids, times).
fn push_u64(out: &mut String, mut n: u64) {
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
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

/// A field value as JSON: numbers and booleans as themselves, text as a string.
fn json_val(out: &mut String, batch: &RawBatch, v: Val) {
    let _ = match v {
        Val::U64(n) => {
            push_u64(out, n);
            Ok(())
        }
        Val::I64(n) => write!(out, "{n}"),
        Val::Bool(b) => write!(out, "{b}"),
        Val::Coded(c, bits) => {
            // HAProxy's names never need escaping.
            out.push('"');
            let r = c.write(bits, out);
            out.push('"');
            r
        }
        Val::Text { .. } => {
            json_str(out, batch.text_of(v));
            Ok(())
        }
    };
}

struct Writer<W: Write> {
    out: BufWriter<W>,
    style: TraceStyle,
    level: TraceLevel,
    filter: Option<TraceFilter>,
    open: IdMap<Open>,
    trees: IdMap<Decision>,
    first: bool,
    /// The event being written (reused: one allocation for the whole file).
    line: String,
}

impl<W: Write> Writer<W> {
    fn write_line(out: &mut BufWriter<W>, first: &mut bool, s: &str) {
        if !*first {
            let _ = out.write_all(b",\n");
        }
        *first = false;
        let _ = out.write_all(s.as_bytes());
    }

    /// Starts `self.line` as event `ph` of span `name`, up to its arguments.
    fn begin_event(&mut self, ph: char, name: &str, at_ns: u64, root: u64) {
        let ph = match (self.style, ph) {
            (TraceStyle::Loop, 'b') => 'B',
            (TraceStyle::Loop, 'e') => 'E',
            (_, p) => p,
        };
        let s = &mut self.line;
        s.clear();
        s.push_str("{\"ph\":\"");
        s.push(ph);
        s.push_str("\",\"pid\":1,\"tid\":1,\"ts\":");
        push_u64(s, at_ns / 1000);
        // Microseconds, with the nanoseconds as three decimals.
        let frac = at_ns % 1000;
        s.push('.');
        for d in [frac / 100, frac / 10 % 10, frac % 10] {
            s.push((b'0' + d as u8) as char);
        }
        s.push_str(",\"name\":");
        json_str(s, name);
        s.push_str(",\"cat\":\"haflow\"");
        if self.style == TraceStyle::Session {
            s.push_str(",\"id\":");
            push_u64(s, root);
        }
    }

    /// Emits `self.line` for the tree `root` according to the filter.
    fn emit(&mut self, root: u64) {
        match self.trees.get_mut(&root) {
            None if self.filter.is_some() => {}
            None | Some(Decision::Yes) => Self::write_line(&mut self.out, &mut self.first, &self.line),
            Some(Decision::No) => {}
            Some(Decision::Undecided(buf)) => buf.push(self.line.clone()),
        }
    }

    fn decide(&mut self, root: u64, yes: bool) {
        if let Some(Decision::Undecided(buf)) = self.trees.remove(&root)
            && yes
        {
            for l in buf {
                Self::write_line(&mut self.out, &mut self.first, &l);
            }
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
            self.begin_event('b', name, r.at_ns, root);
            if !fields.is_empty() {
                self.line.push_str(",\"args\":{");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        self.line.push(',');
                    }
                    json_str(&mut self.line, f.name);
                    self.line.push(':');
                    json_val(&mut self.line, batch, f.val);
                }
                self.line.push('}');
            }
            self.line.push('}');
            self.emit(root);
        }
        self.open.insert(id, Open { name, root, kept, updates: Vec::new() });
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
            let mut v = String::new();
            json_val(&mut v, batch, f.val);
            // The last value of a field wins.
            match o.updates.iter_mut().find(|(k, _)| *k == f.name) {
                Some(slot) => slot.1 = v,
                None => o.updates.push((f.name, v)),
            }
        }
        let root = o.root;
        self.check_backend(batch, root, fields);
    }

    fn on_close(&mut self, id: u64, at_ns: u64) {
        let Some(o) = self.open.remove(&id) else { return };
        if o.kept {
            self.begin_event('e', o.name, at_ns, o.root);
            if !o.updates.is_empty() {
                self.line.push_str(",\"args\":{");
                for (i, (k, v)) in o.updates.iter().enumerate() {
                    if i > 0 {
                        self.line.push(',');
                    }
                    json_str(&mut self.line, k);
                    self.line.push(':');
                    self.line.push_str(v);
                }
                self.line.push('}');
            }
            self.line.push('}');
            self.emit(o.root);
        }
        if o.root == id {
            if matches!(self.trees.get(&id), Some(Decision::Undecided(_))) {
                self.decide(id, false);
            }
            self.trees.remove(&id);
        }
    }

    fn handle(&mut self, batch: &RawBatch, r: &Raw) {
        match r.kind {
            RawKind::New { parent, name, .. } => self.on_new(batch, r, parent, name),
            RawKind::Update => self.on_update(batch, r),
            RawKind::Close => self.on_close(r.id, r.at_ns),
            RawKind::Event { .. } => {}
        }
    }
}

/// Keeps the writer running; dropping it writes the closing `]}` and waits for the file.
pub struct TraceGuard {
    sink: Sink,
    writer: Option<JoinHandle<()>>,
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        crate::trace::subscriber::flush_thread();
        self.sink.finish();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
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
            let mut w = Writer {
                out: BufWriter::with_capacity(1 << 20, file),
                style,
                level,
                filter,
                open: IdMap::default(),
                trees: IdMap::default(),
                first: true,
                line: String::with_capacity(512),
            };
            let _ = w.out.write_all(b"{\"traceEvents\":[\n");
            let meta = "{\"ph\":\"M\",\"pid\":1,\"tid\":1,\"name\":\"thread_name\",\"args\":{\"name\":\"haflow event loop\"}}";
            Writer::write_line(&mut w.out, &mut w.first, meta);
            let mut last = 0;
            let max = level.max_level();
            while let Some(batch) = feed.recv_batch() {
                if batch.is_empty() {
                    break;
                }
                for r in batch.raws.iter().filter(|r| r.level() <= max) {
                    if r.kind != RawKind::Update {
                        last = r.at_ns;
                    }
                    w.handle(&batch, r);
                }
                recycle(batch);
            }
            // Spans still open when the proxy stopped end with it (children first), so
            // every begin has its end.
            let mut left: Vec<u64> = w.open.keys().copied().collect();
            left.sort_unstable_by(|a, b| b.cmp(a));
            for id in left {
                w.on_close(id, last);
            }
            let _ = w.out.write_all(b"\n]}\n");
            let _ = w.out.flush();
        })
        .expect("spawn the trace writer");
    TraceGuard { sink, writer: Some(writer) }
}
