//! Trace files read back: a Chrome/Perfetto trace (written by `--trace`, by the terminal
//! UI's `x` and `w`, or by `--trace-writer tracing-chrome`) turned into the span records
//! it was written from, so that `haflow replay` can show it in the terminal UI.
//!
//! The file holds begin and end events, not parents: a span's parent is rebuilt from
//! nesting. Events of one track (an async `id` in the `session` style, a thread in the
//! `loop` style) are strictly nested, since the proxy is one thread and a child ends
//! before its parent, so a stack per track gives back the tree: a begin's parent is the
//! span on top of its track's stack. A begin's arguments are the fields the span was
//! created with, an end's those recorded later (as the writer puts them), so the records
//! come back with the same fields in the same places. Events are taken in time order
//! (the file's order breaking ties), which is the order haflow's writer wrote them in.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::trace::capture::{Field2, FieldText, Record};
use crate::trace::names;

/// A trace file read back.
#[derive(Debug, Default)]
pub struct Recording {
    /// The span records, in the order they happened (time order, updates just before
    /// their span's end).
    pub records: Vec<Record>,
    /// When the first event happened.
    pub start: Duration,
    /// When the last event happened.
    pub end: Duration,
    /// True when the file has the loop's own spans (`wake_expired_tasks`,
    /// `process_runnable_tasks`, `_do_poll`: `--trace-level developer`).
    pub has_loop_spans: bool,
    /// Events whose phase the reader does not take (complete `X` events, counters, flows).
    pub skipped: usize,
}

/// One event as the file holds it.
#[derive(Deserialize)]
struct Event {
    ph: String,
    #[serde(default)]
    ts: f64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    pid: Option<Value>,
    #[serde(default)]
    tid: Option<Value>,
    #[serde(default)]
    args: serde_json::Map<String, Value>,
}

/// The two forms of the format: `{"traceEvents": [...]}` and a bare array.
#[derive(Deserialize)]
#[serde(untagged)]
enum File {
    Object {
        #[serde(rename = "traceEvents")]
        trace_events: Vec<Event>,
    },
    Array(Vec<Event>),
}

/// Most distinct span and field names taken from one file; the rest read as `?` (names
/// live as long as the process).
const MAX_NAMES: usize = 4096;

/// Names as `&'static str`, as records carry them: haflow's own span names map to their
/// constants, other names are kept once each.
#[derive(Default)]
struct Names(HashMap<String, &'static str>);

impl Names {
    fn get(&mut self, s: &str) -> &'static str {
        if let Some(n) = self.0.get(s) {
            return n;
        }
        if self.0.len() >= MAX_NAMES {
            return "?";
        }
        let n: &'static str = Box::leak(s.to_string().into_boxed_str());
        self.0.insert(s.to_string(), n);
        n
    }
}

fn text_of(v: &Value) -> FieldText {
    match v {
        Value::String(s) => FieldText::from(s.as_str()),
        Value::Bool(b) => FieldText::from(if *b { "true" } else { "false" }),
        other => FieldText::from(other.to_string()),
    }
}

fn at_of(ts: f64) -> Duration {
    // Microseconds, with nanoseconds as decimals.
    if ts.is_finite() && ts > 0.0 {
        Duration::from_nanos((ts * 1000.0).round() as u64)
    } else {
        Duration::ZERO
    }
}

fn level_of(name: &str) -> tracing::Level {
    match name {
        names::SESSION => tracing::Level::INFO,
        names::WAKE_EXPIRED_TASKS | names::PROCESS_RUNNABLE_TASKS | names::DO_POLL => tracing::Level::TRACE,
        _ => tracing::Level::DEBUG,
    }
}

/// Reads a trace file's text.
pub fn parse(text: &str) -> Result<Recording, String> {
    let file: File = match serde_json::from_str(text) {
        Ok(f) => f,
        // A file whose writer was killed lacks its end: close it and try again.
        Err(e) if e.is_eof() => ["]}", "]", "}]}", "}]"]
            .iter()
            .find_map(|end| {
                serde_json::from_str(&format!("{}{end}", text.trim_end().trim_end_matches(','))).ok()
            })
            .ok_or_else(|| format!("not a complete trace file: {e}"))?,
        Err(e) => return Err(format!("not a Chrome trace file: {e}")),
    };
    let mut events = match file {
        File::Object { trace_events } => trace_events,
        File::Array(a) => a,
    };
    // Time order; the file's order where times are equal (a sort that keeps ties).
    events.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let mut rec = Recording::default();
    let mut interned = Names::default();
    // Open spans per track, innermost last: (record id, name).
    let mut tracks: HashMap<String, Vec<(u64, &'static str)>> = HashMap::new();
    let mut next_id = 1u64;
    let mut first = None;
    for ev in events {
        let at = at_of(ev.ts);
        let key = |by: &Option<Value>| {
            let s = |v: &Option<Value>| v.as_ref().map_or(String::new(), Value::to_string);
            format!("{}/{}", s(&ev.pid), s(by))
        };
        let (begin, track) = match ev.ph.as_str() {
            "b" => (true, key(&ev.id)),
            "e" => (false, key(&ev.id)),
            "B" => (true, key(&ev.tid)),
            "E" => (false, key(&ev.tid)),
            "M" => continue,
            _ => {
                rec.skipped += 1;
                continue;
            }
        };
        first.get_or_insert(at);
        rec.end = rec.end.max(at);
        let fields: Vec<Field2> = ev.args.iter().map(|(k, v)| (interned.get(k), text_of(v))).collect();
        let stack = tracks.entry(track).or_default();
        if begin {
            let name = interned.get(ev.name.as_deref().unwrap_or("?"));
            rec.has_loop_spans |=
                matches!(name, names::WAKE_EXPIRED_TASKS | names::PROCESS_RUNNABLE_TASKS | names::DO_POLL);
            let id = next_id;
            next_id += 1;
            let parent = stack.last().map(|(p, _)| *p);
            rec.records.push(Record::New { id, parent, name, level: level_of(name), fields, at });
            stack.push((id, name));
            continue;
        }
        // An end closes the innermost open span of its name on the track (the innermost
        // of any name when it has none), and the spans opened inside it and never ended.
        let pos = match ev.name.as_deref() {
            Some(n) => stack.iter().rposition(|(_, name)| *name == n),
            None => stack.len().checked_sub(1),
        };
        let Some(pos) = pos else { continue };
        let inner: Vec<(u64, &'static str)> = stack.drain(pos..).collect();
        for (k, (id, _)) in inner.iter().enumerate().rev() {
            if k == 0 && !fields.is_empty() {
                rec.records.push(Record::Update { id: *id, fields: fields.clone() });
            }
            rec.records.push(Record::Close { id: *id, at });
        }
    }
    // Spans never ended end with the file, innermost first.
    let end = rec.end;
    let mut left: Vec<u64> = tracks.into_values().flatten().map(|(id, _)| id).collect();
    left.sort_unstable_by(|a, b| b.cmp(a));
    rec.records.extend(left.into_iter().map(|id| Record::Close { id, at: end }));
    rec.start = first.unwrap_or_default();
    Ok(rec)
}

/// Reads the trace file at `path`.
pub fn load(path: &std::path::Path) -> Result<Recording, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::chrome::write_records;
    use crate::trace::export::TraceStyle;
    use crate::trace::tree::{LISTING_FIELDS, TreeBuilder, listing};

    fn new(
        id: u64,
        parent: Option<u64>,
        name: &'static str,
        fields: &[(&'static str, &str)],
        us: u64,
    ) -> Record {
        Record::New {
            id,
            parent,
            name,
            level: tracing::Level::DEBUG,
            fields: fields.iter().map(|(k, v)| (*k, FieldText::from(*v))).collect(),
            at: Duration::from_micros(us),
        }
    }

    fn close(id: u64, us: u64) -> Record {
        Record::Close { id, at: Duration::from_micros(us) }
    }

    fn tree_of(records: &[Record]) -> String {
        let mut tb = TreeBuilder::default();
        tb.extend(records);
        tb.roots.iter().map(|r| listing(r, LISTING_FIELDS)).collect()
    }

    #[test]
    fn a_written_trace_reads_back_as_the_same_trees_fields_and_times() {
        // Two sessions interleaved in time, the way the loop runs them.
        let records = vec![
            new(10, None, names::SESSION, &[("sess", "0"), ("fe", "fe")], 1),
            new(20, None, names::SESSION, &[("sess", "1"), ("fe", "fe")], 2),
            new(11, Some(10), names::PROCESS_SESSION, &[("woken", "TASK_WOKEN_IO")], 3),
            new(12, Some(11), names::HTTP_WAIT_FOR_REQUEST, &[("request", "GET / HTTP/1.1")], 4),
            close(12, 5),
            Record::Update { id: 11, fields: vec![("si1_to", FieldText::from("SI_ST_CON"))] },
            close(11, 6),
            new(21, Some(20), names::STREAM_SOCK_READ, &[("side", "cli"), ("bytes", "12")], 7),
            close(21, 8),
            new(13, Some(10), names::SESSION_FREE, &[], 9),
            Record::Update { id: 13, fields: vec![("term", FieldText::from("--"))] },
            close(13, 10),
            close(10, 11),
            close(20, 12),
        ];
        for style in [TraceStyle::Session, TraceStyle::Loop] {
            let mut file = Vec::new();
            write_records(&mut file, &records, style).unwrap();
            let back = parse(std::str::from_utf8(&file).unwrap()).unwrap();
            if style == TraceStyle::Session {
                assert_eq!(tree_of(&back.records), tree_of(&records), "same trees, same fields");
            } else {
                // The loop style leaves the session roots out: their calls are the thread's.
                assert!(
                    tree_of(&back.records)
                        .contains("process_session {woken=TASK_WOKEN_IO, si1_to=SI_ST_CON}")
                );
            }
            let (from, to) = if style == TraceStyle::Session { (1, 12) } else { (3, 10) };
            assert_eq!((back.start, back.end), (Duration::from_micros(from), Duration::from_micros(to)));
            assert!(!back.has_loop_spans);
        }
    }

    #[test]
    fn a_file_cut_short_or_in_the_array_form_still_reads() {
        let cut = r#"[{"ph":"B","pid":1,"tid":1,"ts":1.5,"name":"process_session","args":{"sess":3}},
{"ph":"B","pid":1,"tid":1,"ts":2,"name":"http_wait_for_request"},"#;
        let back = parse(cut).unwrap();
        assert_eq!(back.records.len(), 4, "two begins, then both closed at the end: {:?}", back.records);
        assert!(matches!(&back.records[1], Record::New { parent: Some(1), .. }), "nested by the stack");
        assert!(parse("{\"nope\": 1}").is_err());
        assert!(parse("garbage").is_err());
    }
}
