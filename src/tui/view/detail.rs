//! The session detail: one session's state and its span tree as a waterfall, cut into its
//! transactions.
//!
//! At the top, what `show sess <id>` would say: frontend, backend/server, client address,
//! age, the two stream interfaces (`si[0]` the client side, `si[1]` the server side), the
//! task, and the `req`/`rep` buffers with their fill level, analysers and `BF_*` flags
//! (decoded, with `show sess`'s hex). Below, every span of the session in the order it
//! ran, indented by depth: name, start offset from the accept, duration (or `open`), a bar
//! placing it on the timeline, and its fields. On a kept-alive connection the spans are
//! grouped by request (`Trace::groups`): each group opens with a line saying what the
//! request was and how it ended, and its log line under it.
//!
//! Keys (see `DetailState`): `n`/`p` jump to the next or previous request, Enter or
//! left/right fold and unfold the selected request or span (a span folds its subtree),
//! `z` zooms the timeline on the selected request or span (again: the whole session), `/`
//! searches span names and fields (only the matching spans and their callers stay, with
//! their requests' headers), and the bottom line shows the selected span's fields whole.
//! A session with more than two requests opens with all but the last folded.

use std::collections::HashMap;
use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::snapshot::{BufSnap, TxnSnap};
use crate::tui::state::{SessionEntry, SpanNode, State, Trace, TxnGroup};
use crate::tui::view::sessions::{method_path, term_failed};
use crate::tui::view::{clip, dur, fill_bar, flag_names, ms, window};

/// What can be folded: a request's group (by the sequence number of its first span), or a
/// span's subtree (by its sequence number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fold {
    /// A request.
    Group(u64),
    /// A span.
    Span(u64),
}

/// A stretch of the capture clock the timeline shows instead of the whole session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zoom {
    /// Start.
    pub from: Duration,
    /// End.
    pub to: Duration,
    /// What it is (`request 2`, `process_session`), for the title.
    pub what: String,
}

/// What the user is doing in the detail view of one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetailState {
    /// The session this is about (another session starts afresh).
    pub session: Option<u32>,
    /// The selected line (an index into `items`).
    pub sel: usize,
    /// Folds set by the user (`true`: folded), over the defaults.
    pub folds: HashMap<Fold, bool>,
    /// The timeline's zoom.
    pub zoom: Option<Zoom>,
    /// Search text (case-insensitive, in span names and `key=value` fields).
    pub search: String,
    /// The search is being typed.
    pub search_editing: bool,
}

/// One line of the waterfall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A request's header: index into `groups`.
    Group(usize),
    /// A request's log line: index into `groups`.
    Log(usize),
    /// A span: index into `Trace::nodes`.
    Span(usize),
}

/// The session's requests with what is known of each: the copy made when it ended (with
/// its log line) when there is one, else what its spans say.
pub fn groups(st: &State, e: &SessionEntry, t: &Trace) -> Vec<TxnGroup> {
    let mut gs = t.groups();
    for g in &mut gs {
        if let Some(snap) = e.txns.iter().find(|s| s.index == g.info.index && g.info.index > 0) {
            g.info = snap.clone();
        } else if g.info.index > 0
            && !e.closed
            && let Some(s) = &e.snap
            && g.info.index == s.txns + 1
            && g.info.term.is_empty()
        {
            // Under way: the status and the server as the proxy has them now.
            g.info.status = g.info.status.or(s.status);
            if g.info.server.is_none() {
                g.info.server = s.srv.and_then(|id| st.server_name(id)).map(str::to_string);
            }
        }
    }
    gs
}

/// A connection with more than two requests opens with the requests before its last
/// one folded: their headers and log lines make an index, `n`/`p` and Enter open them.
fn default_folded(gs: &[TxnGroup], k: usize) -> bool {
    let last_request = gs.iter().rposition(|g| g.info.index > 0).unwrap_or(0);
    gs.len() > 2 && k < last_request
}

/// Whether group `k` is folded.
pub fn group_folded(ds: &DetailState, t: &Trace, gs: &[TxnGroup], k: usize) -> bool {
    let Some(first) = gs.get(k).and_then(|g| t.nodes.get(g.range.start)) else { return false };
    ds.folds.get(&Fold::Group(first.seq)).copied().unwrap_or_else(|| default_folded(gs, k))
}

/// True when span `n` or one of its fields contains `needle` (lowercase).
fn span_matches(n: &SpanNode, needle: &str) -> bool {
    n.name.contains(needle)
        || n.fields.iter().any(|(k, v)| k.contains(needle) || v.to_lowercase().contains(needle))
}

/// Whether span `i` has children (the next span is deeper).
fn has_children(t: &Trace, i: usize) -> bool {
    t.nodes.get(i + 1).is_some_and(|n| n.depth > t.nodes[i].depth)
}

/// The lines of the waterfall, in order: per request its header, its log line, then its
/// spans, minus what is folded; with a search, only the matching spans and their callers.
pub fn items(t: &Trace, gs: &[TxnGroup], ds: &DetailState) -> Vec<Item> {
    let needle = ds.search.to_lowercase();
    let mut out = vec![Item::Span(0)];
    for (k, g) in gs.iter().enumerate() {
        out.push(Item::Group(k));
        if g.info.log.is_some() {
            out.push(Item::Log(k));
        }
        if !needle.is_empty() {
            // Matching spans and every span above one (its callers), in order.
            let range = g.range.clone();
            let mut keep = vec![false; range.len()];
            for i in range.clone() {
                if span_matches(&t.nodes[i], &needle) {
                    keep[i - range.start] = true;
                    let mut d = t.nodes[i].depth;
                    for j in (range.start..i).rev() {
                        if t.nodes[j].depth < d {
                            keep[j - range.start] = true;
                            d = t.nodes[j].depth;
                        }
                    }
                }
            }
            out.extend(range.filter(|i| keep[i - g.range.start]).map(Item::Span));
            continue;
        }
        if group_folded(ds, t, gs, k) {
            continue;
        }
        let mut i = g.range.start;
        while i < g.range.end {
            out.push(Item::Span(i));
            let folded = ds.folds.get(&Fold::Span(t.nodes[i].seq)).copied().unwrap_or(false);
            if folded {
                let d = t.nodes[i].depth;
                i += 1;
                while i < g.range.end && t.nodes[i].depth > d {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
    }
    out
}

/// The line above `sel` that holds it: the span's caller, or its request's header.
pub fn parent_of(t: &Trace, gs: &[TxnGroup], items: &[Item], sel: usize) -> Option<usize> {
    let Some(Item::Span(i)) = items.get(sel).copied() else { return None };
    let d = t.nodes.get(i)?.depth;
    let k = gs.iter().position(|g| g.range.contains(&i))?;
    (0..sel).rev().find(|&j| match items[j] {
        Item::Span(p) => t.nodes[p].depth < d && gs[k].range.contains(&p),
        Item::Group(g) => g == k,
        Item::Log(_) => false,
    })
}

/// Whether `item` is folded now.
pub fn is_folded(ds: &DetailState, t: &Trace, gs: &[TxnGroup], item: Item) -> bool {
    match item {
        Item::Group(k) | Item::Log(k) => group_folded(ds, t, gs, k),
        Item::Span(_) => fold_of(t, gs, item).is_some_and(|f| ds.folds.get(&f).copied().unwrap_or(false)),
    }
}

/// Spans in `items` that match the search.
pub fn search_hits(t: &Trace, items: &[Item], ds: &DetailState) -> usize {
    let needle = ds.search.to_lowercase();
    if needle.is_empty() {
        return 0;
    }
    items.iter().filter(|i| matches!(i, Item::Span(n) if span_matches(&t.nodes[*n], &needle))).count()
}

/// The fold key of an item, when it can fold.
pub fn fold_of(t: &Trace, gs: &[TxnGroup], item: Item) -> Option<Fold> {
    match item {
        Item::Group(k) | Item::Log(k) => Some(Fold::Group(t.nodes.get(gs.get(k)?.range.start)?.seq)),
        Item::Span(i) if i > 0 && has_children(t, i) => Some(Fold::Span(t.nodes[i].seq)),
        Item::Span(_) => None,
    }
}

/// The time range of an item: a request's spans, or a span.
pub fn range_of(
    t: &Trace,
    gs: &[TxnGroup],
    item: Item,
    now: Duration,
) -> Option<(Duration, Duration, String)> {
    match item {
        Item::Group(k) | Item::Log(k) => {
            let g = gs.get(k)?;
            let nodes = t.nodes.get(g.range.clone())?;
            let from = nodes.iter().map(|n| n.start).min()?;
            let to = nodes.iter().map(|n| n.end.unwrap_or(now)).max()?;
            Some((from, to, txn_title(&g.info)))
        }
        Item::Span(i) => {
            let n = t.nodes.get(i)?;
            Some((n.start, n.end.unwrap_or(now), n.name.to_string()))
        }
    }
}

fn txn_title(t: &TxnSnap) -> String {
    if t.index == 0 { "after the last request".into() } else { format!("request {}", t.index) }
}

/// Draws session `id` (or says there is none) in `area`; `ds` is what the user does in the
/// view (the sessions view's preview passes a fresh one).
pub fn draw(f: &mut Frame, area: Rect, st: &State, ds: &DetailState, id: Option<u32>) {
    let dim = Style::default().fg(Color::DarkGray);
    let Some(e) = id.and_then(|id| st.sessions.get(&id)) else {
        let msg = "no session selected: pick one in the Sessions view (2) and press Enter";
        f.render_widget(Paragraph::new(msg).style(dim), area);
        return;
    };
    let [top, waterfall, bottom] =
        Layout::vertical([Constraint::Length(4), Constraint::Min(2), Constraint::Length(2)]).areas(area);
    f.render_widget(Paragraph::new(summary(st, e)), top);
    let Some(t) = st.trace(e.uniq_id) else {
        f.render_widget(
            Paragraph::new(
                "no spans for this session (it began before the UI, or its records were sampled out under load)",
            )
            .style(dim),
            waterfall,
        );
        return;
    };
    let gs = groups(st, e, t);
    let items = items(t, &gs, ds);
    let sel = ds.sel.min(items.len().saturating_sub(1));
    draw_waterfall(f, waterfall, st, ds, t, &gs, &items, sel);
    let mut lines = Vec::new();
    match items.get(sel) {
        Some(Item::Span(i)) => {
            let n = &t.nodes[*i];
            lines.push(Line::from(vec![
                Span::styled(format!("{}: ", n.name), Style::default().fg(Color::Cyan)),
                Span::raw(n.fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")),
            ]));
        }
        Some(Item::Group(k) | Item::Log(k)) => {
            let g = &gs[*k];
            lines.push(Line::from(vec![
                Span::styled(format!("{}: ", txn_title(&g.info)), Style::default().fg(Color::Cyan)),
                Span::raw(format!(
                    "{} spans, in {} out {}  (Enter folds, z zooms, n/p next/previous request)",
                    g.range.len(),
                    g.info.bytes_in,
                    g.info.bytes_out
                )),
            ]));
        }
        None => lines.push(Line::raw("")),
    }
    let group = match items.get(sel) {
        Some(Item::Group(k) | Item::Log(k)) => Some(*k),
        Some(Item::Span(i)) => gs.iter().position(|g| g.range.contains(i)),
        None => None,
    };
    // Outside a request: the session's latest log line, from the proxy's copies or (a
    // replayed trace has none) from the spans of its latest logged request.
    let log = group.and_then(|k| gs[k].info.log.clone()).or_else(|| {
        group
            .is_none()
            .then(|| st.log_of(e).or_else(|| gs.iter().rev().find_map(|g| g.info.log.clone())))
            .flatten()
    });
    lines.push(match log {
        Some(l) => Line::from(vec![Span::styled("log: ", dim), Span::raw(l)]),
        None if e.closed => Line::styled("log: none (no log target, or dontlognull)", dim),
        None => Line::styled("log: emitted when the request ends", dim),
    });
    f.render_widget(Paragraph::new(lines), bottom);
}

/// `show sess`'s hex, then HAProxy's names of the bits set.
fn hex_names<F: bitflags::Flags + std::fmt::Display>(bits: u32, f: &F) -> String {
    if f.is_empty() { format!("{bits:x}h") } else { format!("{bits:x}h {f}") }
}

fn buf_line(name: &str, b: &BufSnap) -> Line<'static> {
    let dim = Style::default().fg(Color::DarkGray);
    let fill = if b.allocated { fill_bar(b.len(), b.size, 12) } else { "[no storage]".to_string() };
    Line::from(vec![
        Span::styled(format!("{name} "), Style::default().add_modifier(Modifier::BOLD)),
        Span::styled(fill, Style::default().fg(Color::Cyan)),
        Span::raw(format!(" {}/{} ", b.len(), b.size)),
        Span::styled("an=", dim),
        Span::raw(hex_names(b.analysers.bits(), &b.analysers)),
        Span::styled(" f=", dim),
        Span::raw(hex_names(b.flags.bits(), &b.flags)),
    ])
}

fn summary(st: &State, e: &SessionEntry) -> Vec<Line<'static>> {
    let dim = Style::default().fg(Color::DarkGray);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let (status, status_style) = if e.closed {
        ("closed", dim)
    } else {
        ("live", Style::default().fg(Color::Green).add_modifier(Modifier::BOLD))
    };
    let txns = st.txns_of(e);
    let mut l1 = vec![
        Span::styled(format!("session #{} ", e.uniq_id), bold),
        Span::styled(status.to_string(), status_style),
        Span::styled("  fe ", dim),
        Span::raw(st.fe_of(e)),
        Span::styled(" -> ", dim),
        Span::raw(st.be_srv_of(e)),
    ];
    if e.closed
        && let Some(t) = txns.last()
    {
        l1.push(Span::styled("  term ", dim));
        let style = if term_failed(&t.term) { bold.fg(Color::Red) } else { bold };
        l1.push(Span::styled(t.term.clone(), style));
    }
    let reqs = e.txns_done.max(txns.last().map_or(0, |t| t.index));
    if reqs > 0 {
        l1.push(Span::styled("  requests ", dim));
        l1.push(Span::raw(reqs.to_string()));
    }
    if let Some(a) = st.age_ms_of(e) {
        l1.push(Span::styled("  age ", dim));
        l1.push(Span::raw(ms(a)));
    }
    if let Some(src) = e.src() {
        l1.push(Span::styled("  src ", dim));
        l1.push(Span::raw(src));
    }
    let Some(s) = &e.snap else {
        return vec![Line::from(l1), Line::styled("not in a snapshot: states come from its spans", dim)];
    };
    let si = |i: usize| {
        let x = &s.si[i];
        let fd = x.fd.map_or_else(|| "-".to_string(), |f| f.to_string());
        vec![
            Span::styled(format!("si[{i}] "), dim),
            Span::styled(x.state.to_string(), bold),
            Span::styled(format!(" fd {fd}"), dim),
            Span::raw(if x.flags.is_empty() {
                "  ".to_string()
            } else {
                format!(" {}  ", flag_names(&x.flags))
            }),
        ]
    };
    let mut l2 = si(0);
    l2.extend(si(1));
    if !e.closed {
        l2.push(Span::styled("task ", dim));
        l2.push(Span::raw(format!("{} calls {}", s.task_state, s.task_calls)));
    }
    vec![Line::from(l1), Line::from(l2), buf_line("req", &s.req), buf_line("rep", &s.rep)]
}

/// The fields worth showing on a span's line: last value of each key, `sess` left out
/// (the whole tree is one session).
fn fields_text(n: &SpanNode) -> String {
    let mut shown: Vec<(&str, &str)> = Vec::new();
    for (k, v) in &n.fields {
        if *k == "sess" {
            continue;
        }
        match shown.iter_mut().find(|(sk, _)| sk == k) {
            Some(e) => e.1 = v,
            None => shown.push((k, v)),
        }
    }
    shown.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// A bar of `w` cells placing `[start, end)` on the timeline `[t0, t1]`: before, bar,
/// after. A stretch outside the timeline (zoomed) shows as `‹` or `›` at the edge.
fn bar(
    start: Duration,
    end: Duration,
    open: bool,
    t0: Duration,
    t1: Duration,
    w: usize,
) -> (String, String, String) {
    if w == 0 {
        return (String::new(), String::new(), String::new());
    }
    if end < t0 {
        return ("‹".into(), String::new(), " ".repeat(w - 1));
    }
    if start > t1 {
        return (" ".repeat(w - 1), String::new(), "›".into());
    }
    let total = t1.saturating_sub(t0).as_nanos().max(1);
    let pos = |t: Duration| (t.clamp(t0, t1).saturating_sub(t0).as_nanos() * w as u128 / total) as usize;
    let x0 = pos(start).min(w - 1);
    let x1 = pos(end).clamp(x0 + 1, w);
    let fill = if open { "░" } else { "█" };
    (" ".repeat(x0), fill.repeat(x1 - x0), " ".repeat(w - x1))
}

#[allow(clippy::too_many_arguments)]
fn draw_waterfall(
    f: &mut Frame,
    area: Rect,
    st: &State,
    ds: &DetailState,
    t: &Trace,
    gs: &[TxnGroup],
    items: &[Item],
    sel: usize,
) {
    let w = area.width as usize;
    let dim = Style::default().fg(Color::DarkGray);
    // Names first: they are the call flow; fields get what is left.
    let name_w = (w / 3).clamp(22, 40);
    let bar_w = if w >= 120 { 30 } else { 10 };
    let fields_w = w.saturating_sub(name_w + 8 + 9 + bar_w + 4);
    let t0 = t.start();
    let t1 = t.end().unwrap_or(st.record_clock).max(t0);
    let (z0, z1) = ds.zoom.as_ref().map_or((t0, t1), |z| (z.from, z.to.max(z.from)));
    let mut title = if let Some(z) = &ds.zoom {
        format!("TIMELINE {} {}", z.what, dur(z1.saturating_sub(z0)))
    } else {
        "TIMELINE".to_string()
    };
    title = clip(&title, bar_w);
    let mut fields_head =
        if t.elided > 0 { format!("FIELDS ({} older spans elided)", t.elided) } else { "FIELDS".into() };
    if !ds.search.is_empty() || ds.search_editing {
        fields_head = format!("{fields_head}  search '{}': {} spans", ds.search, search_hits(t, items, ds));
    }
    let head = Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let mut lines = vec![Line::styled(
        format!("{:<name_w$} {:>8} {:>9} {:<bar_w$} {}", "SPAN", "START ms", "DURATION", title, fields_head),
        head,
    )];
    let height = area.height.saturating_sub(1) as usize;
    let first = window(sel, height);
    let needle = ds.search.to_lowercase();
    for (row, item) in items.iter().enumerate().skip(first).take(height) {
        let mut line = match *item {
            Item::Span(i) => {
                let n = &t.nodes[i];
                let mark = match fold_of(t, gs, *item) {
                    // A search unfolds what it shows.
                    Some(k) if needle.is_empty() && ds.folds.get(&k).copied().unwrap_or(false) => "▸",
                    Some(_) => "▾",
                    None => " ",
                };
                let indent = " ".repeat((n.depth as usize).min(12));
                let name = clip(&format!("{indent}{mark}{}", n.name), name_w);
                let start = n.start.saturating_sub(t0);
                let d = match n.end {
                    Some(end) => dur(end.saturating_sub(n.start)),
                    None => "open".into(),
                };
                let (pre, fill, post) =
                    bar(n.start, n.end.unwrap_or(st.record_clock), n.end.is_none(), z0, z1, bar_w);
                let color = match n.depth {
                    0 => Color::White,
                    1 => Color::Cyan,
                    2 => Color::Green,
                    _ => Color::Gray,
                };
                let mut name_style = Style::default().fg(color);
                if !needle.is_empty() && span_matches(n, &needle) {
                    name_style = name_style.fg(Color::Yellow).add_modifier(Modifier::BOLD);
                }
                Line::from(vec![
                    Span::styled(format!("{name:<name_w$} "), name_style),
                    Span::raw(format!("{:>8.3} {d:>9} ", start.as_secs_f64() * 1e3)),
                    Span::raw(pre),
                    Span::styled(fill, Style::default().fg(color)),
                    Span::raw(post),
                    Span::styled(
                        format!(" {}", clip(&fields_text(n), fields_w)),
                        Style::default().fg(Color::Gray),
                    ),
                ])
            }
            Item::Group(k) => {
                let g = &gs[k];
                let info = &g.info;
                let mark = if needle.is_empty() && group_folded(ds, t, gs, k) { "▸" } else { "▾" };
                let total = gs.iter().filter(|g| g.info.index > 0).count() as u32 + t.elided_txns;
                let what = if info.index == 0 {
                    "after the last request".to_string()
                } else if info.http {
                    format!("request {}/{total}", info.index)
                } else {
                    "connection (tcp)".to_string()
                };
                let (from, to, _) =
                    range_of(t, gs, *item, st.record_clock).unwrap_or((t0, t0, String::new()));
                let d = if info.term.is_empty() && info.index > 0 {
                    "under way".into()
                } else {
                    dur(to.saturating_sub(from))
                };
                let (pre, fill, post) = bar(from, to, info.term.is_empty(), z0, z1, bar_w);
                // How it ended sits by the name, so that a narrow terminal cuts the request
                // (its log line under it has it whole), not the outcome.
                let bold = Style::default().add_modifier(Modifier::BOLD);
                let title = format!("{mark}{what}");
                let mut name = vec![Span::styled(title.clone(), bold.fg(Color::Magenta))];
                let mut used = title.chars().count();
                if let Some(s) = info.status {
                    let c = if s >= 500 {
                        Color::Red
                    } else if s >= 400 {
                        Color::Yellow
                    } else {
                        Color::Green
                    };
                    name.push(Span::styled(format!(" {s}"), bold.fg(c)));
                    used += 4;
                }
                if !info.term.is_empty() {
                    let c = if term_failed(&info.term) { Color::Red } else { Color::Gray };
                    name.push(Span::styled(format!(" {}", info.term), Style::default().fg(c)));
                    used += 1 + info.term.chars().count();
                }
                if used > name_w {
                    name = vec![Span::styled(clip(&title, name_w), bold.fg(Color::Magenta))];
                    used = title.chars().count().min(name_w);
                }
                let mut spans = name;
                spans.push(Span::raw(" ".repeat(name_w + 1 - used)));
                spans.extend([
                    Span::raw(format!("{:>8.3} {d:>9} ", from.saturating_sub(t0).as_secs_f64() * 1e3)),
                    Span::raw(pre),
                    Span::styled(fill, Style::default().fg(Color::Magenta)),
                    Span::raw(post),
                ]);
                let mut rest = String::new();
                if info.http && info.index > 0 {
                    rest = info.request.as_deref().map_or_else(|| "(no request yet)".into(), method_path);
                }
                if info.index > 0 {
                    rest = format!("{rest} {}", State::be_srv(info));
                }
                spans.push(Span::styled(format!(" {}", clip(rest.trim_start(), fields_w)), bold));
                Line::from(spans)
            }
            Item::Log(k) => {
                let log = gs[k].info.log.as_deref().unwrap_or("");
                Line::from(vec![
                    Span::styled("  log: ", dim),
                    Span::styled(clip(log, w.saturating_sub(7)), dim),
                ])
            }
        };
        if row == sel {
            line = line.style(Style::default().add_modifier(Modifier::REVERSED));
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), area);
}
