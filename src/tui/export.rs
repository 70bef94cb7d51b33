//! Exporting sessions from the UI (`x`: the selected session; `w`: every session the
//! sessions filter matches): a Chrome/Perfetto trace written by haflow's own trace writer
//! (`trace::chrome::write_records`, the file `--trace` writes, holding only those
//! sessions), and the text call-flow listing that `haflow scenario run --flow` prints
//! (`trace::tree::listing` over the same records), each request's log line above it.
//!
//! The UI keeps each session's spans as a flat list in creation order with depths
//! (`state::Trace`); `records` turns that back into the span records the proxy sent
//! (creation with its fields, the fields recorded later, the end, every child ended
//! before its parent), which both outputs are built from; the trace also carries each
//! request's log line on the span that logged it (`logged`). A file never overwrites
//! another: a name in use gets a `-2`, `-3`... suffix.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::trace::capture::{Field2, Record};
use crate::trace::chrome::write_records;
use crate::trace::export::TraceStyle;
use crate::trace::names;
use crate::trace::tree::{LISTING_FIELDS, TreeBuilder, listing};
use crate::tui::snapshot::TxnSnap;
use crate::tui::state::Trace;

/// The span records of `t`, as the proxy sent them: span ids are the session's number in
/// the high half and the span's creation number in the low half, so that the sessions of
/// one file never share an id. Spans still open end at `now`.
pub fn records(t: &Trace, now: Duration) -> Vec<Record> {
    records_with(t, now, &HashMap::new())
}

/// What the proxy logged of each transaction and its spans do not say, by the span that
/// logged it (`http_end_txn_clean_session`, or `session_free` for the last request): the
/// log line (`log`), and the status, backend and server when no span recorded them (a
/// request denied or answered locally). A replayed trace (`haflow replay`) then shows the
/// rows the live UI showed.
fn logged(t: &Trace, txns: &[TxnSnap]) -> HashMap<u64, Vec<Field2>> {
    let mut out = HashMap::new();
    for g in t.groups() {
        let Some(txn) = txns.iter().find(|x| x.index == g.info.index && x.index > 0) else { continue };
        let Some(by) = t.nodes[g.range.clone()]
            .iter()
            .rev()
            .find(|n| matches!(n.name, names::HTTP_END_TXN_CLEAN_SESSION | names::SESSION_FREE))
        else {
            continue;
        };
        let mut fields: Vec<Field2> = Vec::new();
        if let Some(l) = &txn.log {
            fields.push(("log", l.as_str().into()));
        }
        if let (None, Some(st)) = (g.info.status, txn.status) {
            fields.push(("status", st.to_string().into()));
        }
        if g.info.backend == "-" && txn.backend != "-" {
            fields.push(("backend", txn.backend.as_str().into()));
        }
        if let (None, Some(srv)) = (&g.info.server, &txn.server) {
            fields.push(("server", srv.as_str().into()));
        }
        if !fields.is_empty() {
            out.insert(by.seq, fields);
        }
    }
    out
}

/// `records`, with `extra` fields recorded on the spans of those creation numbers.
fn records_with(t: &Trace, now: Duration, extra: &HashMap<u64, Vec<Field2>>) -> Vec<Record> {
    let id_of = |seq: u64| (u64::from(t.uniq_id) << 32) | (seq + 1);
    let mut out = Vec::with_capacity(t.nodes.len() * 3);
    // Open spans, outermost first: (depth, id, end).
    let mut stack: Vec<(u16, u64, Duration)> = Vec::new();
    let close = |stack: &mut Vec<(u16, u64, Duration)>, out: &mut Vec<Record>, depth: u16| {
        while stack.last().is_some_and(|(d, _, _)| *d >= depth) {
            if let Some((_, id, at)) = stack.pop() {
                out.push(Record::Close { id, at });
            }
        }
    };
    for n in &t.nodes {
        close(&mut stack, &mut out, n.depth);
        let id = id_of(n.seq);
        let parent = stack.last().map(|(_, p, _)| *p);
        let created = usize::from(n.created).min(n.fields.len());
        out.push(Record::New {
            id,
            parent,
            name: n.name,
            level: if n.depth == 0 { tracing::Level::INFO } else { tracing::Level::DEBUG },
            fields: n.fields[..created].to_vec(),
            at: n.start,
        });
        let mut later = n.fields[created..].to_vec();
        later.extend(extra.get(&n.seq).into_iter().flatten().cloned());
        if !later.is_empty() {
            out.push(Record::Update { id, fields: later });
        }
        stack.push((n.depth, id, n.end.unwrap_or(now).max(n.start)));
    }
    close(&mut stack, &mut out, 0);
    out
}

/// What to write for one session: its spans and its requests (for the log lines).
pub struct Export<'a> {
    /// The session's spans.
    pub trace: &'a Trace,
    /// Its transactions, oldest first.
    pub txns: Vec<TxnSnap>,
}

/// The call-flow listing of the sessions: per session, a `# session N` line, its
/// requests' log lines, then its tree as `scenario run --flow` prints it.
pub fn flow_text(sessions: &[Export<'_>], now: Duration) -> String {
    let mut out = String::new();
    for s in sessions {
        let mut tb = TreeBuilder::default();
        tb.extend(&records(s.trace, now));
        let _ = writeln!(out, "# session {}", s.trace.uniq_id);
        if s.trace.elided > 0 {
            let _ = writeln!(out, "# ({} older spans were not kept by the UI)", s.trace.elided);
        }
        for t in &s.txns {
            if let Some(l) = &t.log {
                let _ = writeln!(out, "# log: {l}");
            }
        }
        for root in tb.roots_named(names::SESSION) {
            out.push_str(&listing(root, LISTING_FIELDS));
        }
    }
    out
}

/// `stem`, or `stem-2`, `stem-3`... : the first that names no file of `dir` yet.
fn fresh(dir: &Path, stem: &str) -> String {
    let taken =
        |s: &str| dir.join(format!("{s}.json")).exists() || dir.join(format!("{s}.flow.txt")).exists();
    let mut out = stem.to_string();
    let mut n = 2;
    while taken(&out) {
        out = format!("{stem}-{n}");
        n += 1;
    }
    out
}

/// Writes `sessions` to `dir` as `STEM.json` (the Chrome/Perfetto trace) and
/// `STEM.flow.txt` (the listing); returns both paths.
pub fn write(
    dir: &Path,
    stem: &str,
    sessions: &[Export<'_>],
    now: Duration,
) -> Result<(PathBuf, PathBuf), String> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let stem = fresh(dir, stem);
    let (json, flow) = (dir.join(format!("{stem}.json")), dir.join(format!("{stem}.flow.txt")));
    let mut all = Vec::new();
    for s in sessions {
        all.extend(records_with(s.trace, now, &logged(s.trace, &s.txns)));
    }
    let file = std::fs::File::create(&json).map_err(|e| format!("cannot create {}: {e}", json.display()))?;
    write_records(std::io::BufWriter::new(file), &all, TraceStyle::Session)
        .map_err(|e| format!("writing {}: {e}", json.display()))?;
    std::fs::write(&flow, flow_text(sessions, now))
        .map_err(|e| format!("writing {}: {e}", flow.display()))?;
    Ok((json, flow))
}
