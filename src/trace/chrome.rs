//! The trace file: span records written as Chrome trace-event JSON, which Perfetto
//! (ui.perfetto.dev) and chrome://tracing open.
//!
//! A writer thread receives the proxy thread's record batches (a lossless feed: the file
//! is complete) and writes one JSON object per span begin and end. In the `session` style
//! each span is an async slice whose `id` is its session's root span, so every session
//! gets its own track and reads left to right; in the `loop` style spans are `B`/`E`
//! slices on the loop thread's timeline. Arguments are the span's fields (at its end, the
//! values it finished with). The JSON array is closed when the `TraceGuard` is dropped,
//! which `haflow` does on a normal exit and after SIGINT or SIGTERM stopped the loop.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::thread::JoinHandle;

use crate::trace::capture::{Capture, Field2, Record, Sink};
use crate::trace::export::{TraceFilter, TraceLevel, TraceStyle};
use crate::trace::names;

/// What the writer needs to know about an open span.
struct Open {
    name: &'static str,
    root: u64,
    fields: Vec<Field2>,
    kept: bool,
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

struct Writer<W: Write> {
    out: BufWriter<W>,
    style: TraceStyle,
    level: TraceLevel,
    filter: Option<TraceFilter>,
    open: HashMap<u64, Open>,
    trees: HashMap<u64, Decision>,
    first: bool,
}

impl<W: Write> Writer<W> {
    fn line(&mut self, s: &str) {
        if !self.first {
            let _ = self.out.write_all(b",\n");
        }
        self.first = false;
        let _ = self.out.write_all(s.as_bytes());
    }

    fn event(&self, ph: char, name: &str, at: std::time::Duration, root: u64, fields: &[Field2]) -> String {
        let mut s = String::with_capacity(160);
        let ph = match (self.style, ph) {
            (TraceStyle::Loop, 'b') => 'B',
            (TraceStyle::Loop, 'e') => 'E',
            (_, p) => p,
        };
        let _ = write!(
            s,
            "{{\"ph\":\"{ph}\",\"pid\":1,\"tid\":1,\"ts\":{:.3},\"name\":",
            at.as_nanos() as f64 / 1000.0
        );
        json_str(&mut s, name);
        s.push_str(",\"cat\":\"haflow\"");
        if self.style == TraceStyle::Session {
            let _ = write!(s, ",\"id\":{root}");
        }
        if !fields.is_empty() {
            s.push_str(",\"args\":{");
            // The last value of each field wins (a field updated by `record`).
            let mut seen: Vec<&str> = Vec::new();
            for (i, (k, _)) in fields.iter().enumerate().rev() {
                if seen.contains(k) {
                    continue;
                }
                seen.push(k);
                if seen.len() > 1 {
                    s.push(',');
                }
                json_str(&mut s, k);
                s.push(':');
                json_str(&mut s, &fields[i].1);
            }
            s.push('}');
        }
        s.push('}');
        s
    }

    /// Emits `line` for the tree `root` according to the filter.
    fn emit(&mut self, root: u64, line: String) {
        match self.trees.get_mut(&root) {
            None if self.filter.is_some() => {}
            None | Some(Decision::Yes) => self.line(&line),
            Some(Decision::No) => {}
            Some(Decision::Undecided(buf)) => buf.push(line),
        }
    }

    fn decide(&mut self, root: u64, yes: bool) {
        if let Some(Decision::Undecided(buf)) = self.trees.remove(&root)
            && yes
        {
            for l in buf {
                self.line(&l);
            }
        }
        self.trees.insert(root, if yes { Decision::Yes } else { Decision::No });
    }

    fn on_new(
        &mut self,
        id: u64,
        parent: Option<u64>,
        name: &'static str,
        fields: Vec<Field2>,
        at: std::time::Duration,
    ) {
        let root = parent.and_then(|p| self.open.get(&p)).map_or(id, |p| p.root);
        if root == id && self.filter.is_some() {
            let field = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
            let d = match (&self.filter, name == names::SESSION) {
                (_, false) => Decision::No,
                (Some(TraceFilter::Session(n)), true) => {
                    if field("sess") == Some(&n.to_string()) {
                        Decision::Yes
                    } else {
                        Decision::No
                    }
                }
                (Some(TraceFilter::Frontend(fe)), true) => {
                    if field("fe") == Some(fe.as_str()) {
                        Decision::Yes
                    } else {
                        Decision::No
                    }
                }
                _ => Decision::Undecided(Vec::new()),
            };
            self.trees.insert(root, d);
        }
        self.check_backend(root, &fields);
        // In the loop style, a session's root span is not something the thread did (it
        // lasts across turns); its children are.
        let state_span = self.level == TraceLevel::Proto && crate::trace::export::STATE_SPANS.contains(&name);
        let loop_root = self.style == TraceStyle::Loop && name == names::SESSION;
        let kept = !state_span && !loop_root;
        if kept {
            let line = self.event('b', name, at, root, &fields);
            self.emit(root, line);
        }
        self.open.insert(id, Open { name, root, fields, kept });
    }

    fn check_backend(&mut self, root: u64, fields: &[Field2]) {
        if let Some(TraceFilter::Backend(be)) = &self.filter
            && matches!(self.trees.get(&root), Some(Decision::Undecided(_)))
            && fields.iter().any(|(k, v)| *k == "backend" && v.as_str() == be)
        {
            self.decide(root, true);
        }
    }

    fn handle(&mut self, r: &Record) {
        match r {
            Record::New { id, parent, name, fields, at, .. } => {
                self.on_new(*id, *parent, name, fields.clone(), *at)
            }
            Record::Update { id, fields } => {
                let root = match self.open.get_mut(id) {
                    Some(o) => {
                        o.fields.extend(fields.iter().cloned());
                        o.root
                    }
                    None => return,
                };
                self.check_backend(root, fields);
            }
            Record::Close { id, at } => {
                let Some(o) = self.open.remove(id) else { return };
                if o.kept {
                    let line = self.event('e', o.name, *at, o.root, &o.fields);
                    self.emit(o.root, line);
                }
                if o.root == *id {
                    if matches!(self.trees.get(id), Some(Decision::Undecided(_))) {
                        self.decide(*id, false);
                    }
                    self.trees.remove(id);
                }
            }
            Record::Event { .. } => {}
        }
    }
}

/// Keeps the writer running; dropping it writes the closing `]` and waits for the file.
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
                open: HashMap::new(),
                trees: HashMap::new(),
                first: true,
            };
            let _ = w.out.write_all(b"[\n");
            w.line("{\"ph\":\"M\",\"pid\":1,\"tid\":1,\"name\":\"thread_name\",\"args\":{\"name\":\"haflow event loop\"}}");
            let mut last = std::time::Duration::ZERO;
            let max = level.max_level();
            while let Some(batch) = feed.recv_batch() {
                if batch.is_empty() {
                    break;
                }
                for r in batch.records(max) {
                    if let Record::New { at, .. } | Record::Close { at, .. } = &r {
                        last = *at;
                    }
                    w.handle(&r);
                }
            }
            // Spans still open when the proxy stopped end with it (children first), so
            // every begin has its end.
            let mut left: Vec<u64> = w.open.keys().copied().collect();
            left.sort_unstable_by(|a, b| b.cmp(a));
            for id in left {
                w.handle(&Record::Close { id, at: last });
            }
            let _ = w.out.write_all(b"\n]\n");
            let _ = w.out.flush();
        })
        .expect("spawn the trace writer");
    TraceGuard { sink, writer: Some(writer) }
}
