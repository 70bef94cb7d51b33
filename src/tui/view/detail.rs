//! The session detail: one session's state and its span tree as a waterfall.
//!
//! At the top, what `show sess <id>` would say: frontend, backend/server, client address,
//! age, the two stream interfaces (`si[0]` the client side, `si[1]` the server side), the
//! task, and the `req`/`rep` buffers with their fill level, analysers and `BF_*` flags.
//! Below, every span of the session in the order it ran, indented by depth: name, start
//! offset from the accept, duration (or `open`), a bar placing it on the session's
//! timeline, and its fields. The tree grows live while the session runs; once it is freed
//! its log line shows at the bottom.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::snapshot::BufSnap;
use crate::tui::state::{SessionEntry, SpanNode, State, Trace};
use crate::tui::view::{ViewState, clip, dur, fill_bar, flag_names, ms, window};

/// Draws session `id` (or says there is none) in `area`.
pub fn draw(f: &mut Frame, area: Rect, st: &State, vs: &ViewState, id: Option<u32>) {
    let dim = Style::default().fg(Color::DarkGray);
    let Some(e) = id.and_then(|id| st.sessions.get(&id)) else {
        let msg = "no session selected: pick one in the Sessions view (2) and press Enter";
        f.render_widget(Paragraph::new(msg).style(dim), area);
        return;
    };
    let [top, waterfall, bottom] =
        Layout::vertical([Constraint::Length(4), Constraint::Min(2), Constraint::Length(2)]).areas(area);
    f.render_widget(Paragraph::new(summary(st, e)), top);
    let trace = st.trace(e.uniq_id);
    match trace {
        Some(t) => draw_waterfall(f, waterfall, st, vs, t),
        None => f.render_widget(
            Paragraph::new("no spans for this session (it began before the UI, or its records were dropped)")
                .style(dim),
            waterfall,
        ),
    }
    let mut lines = Vec::new();
    if let Some(n) = trace.and_then(|t| t.nodes.get(vs.detail_sel.min(t.nodes.len().saturating_sub(1)))) {
        lines.push(Line::from(vec![
            Span::styled(format!("{}: ", n.name), Style::default().fg(Color::Cyan)),
            Span::raw(n.fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")),
        ]));
    } else {
        lines.push(Line::raw(""));
    }
    lines.push(match st.log_of(e) {
        Some(l) => Line::from(vec![Span::styled("log: ", dim), Span::raw(l)]),
        None if e.closed => Line::styled("log: none (no log target, or dontlognull)", dim),
        None => Line::styled("log: emitted when the session ends", dim),
    });
    f.render_widget(Paragraph::new(lines), bottom);
}

fn buf_line(name: &str, b: &BufSnap) -> Line<'static> {
    let dim = Style::default().fg(Color::DarkGray);
    let fill = if b.allocated { fill_bar(b.len(), b.size, 12) } else { "[no storage]".to_string() };
    Line::from(vec![
        Span::styled(format!("{name} "), Style::default().add_modifier(Modifier::BOLD)),
        Span::styled(fill, Style::default().fg(Color::Cyan)),
        Span::raw(format!(" {}/{} ", b.len(), b.size)),
        Span::styled("an=", dim),
        Span::raw(format!("{} ", b.analysers)),
        Span::styled("f=", dim),
        Span::raw(format!("{}", b.flags)),
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
    let mut l1 = vec![
        Span::styled(format!("session #{} ", e.uniq_id), bold),
        Span::styled(status.to_string(), status_style),
        Span::styled("  fe ", dim),
        Span::raw(st.fe_of(e)),
        Span::styled(" -> ", dim),
        Span::raw(st.be_srv_of(e)),
    ];
    if let Some(src) = e.src() {
        l1.push(Span::styled("  src ", dim));
        l1.push(Span::raw(src));
    }
    if let Some(a) = st.age_ms_of(e) {
        l1.push(Span::styled("  age ", dim));
        l1.push(Span::raw(ms(a)));
    }
    let Some(s) = &e.snap else {
        return vec![Line::from(l1), Line::styled("not in a snapshot yet: states come from its spans", dim)];
    };
    if e.closed {
        l1.push(Span::styled("  term ", dim));
        l1.push(Span::styled(format!("{}{}", s.err.log_char(), s.finst.log_char()), bold));
    }
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

/// A bar of `w` cells placing `[start, end)` on the timeline `[t0, t1]`.
fn bar(n: &SpanNode, t0: Duration, t1: Duration, now: Duration, w: usize) -> (String, String, String) {
    let total = t1.saturating_sub(t0).as_nanos().max(1);
    let pos = |t: Duration| (t.saturating_sub(t0).as_nanos() * w as u128 / total) as usize;
    let x0 = pos(n.start).min(w.saturating_sub(1));
    let x1 = pos(n.end.unwrap_or(now)).clamp(x0 + 1, w.max(x0 + 1));
    let fill = if n.end.is_some() { "█" } else { "░" };
    (" ".repeat(x0), fill.repeat(x1 - x0), " ".repeat(w.saturating_sub(x1)))
}

fn draw_waterfall(f: &mut Frame, area: Rect, st: &State, vs: &ViewState, t: &Trace) {
    let w = area.width as usize;
    // Names first: they are the call flow; fields get what is left.
    let name_w = (w / 3).clamp(22, 40);
    let bar_w = if w >= 120 { 30 } else { 10 };
    let fields_w = w.saturating_sub(name_w + 8 + 9 + bar_w + 4);
    let head = Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let mut lines = vec![Line::styled(
        format!(
            "{:<name_w$} {:>8} {:>9} {:<bar_w$} {}",
            "SPAN",
            "START ms",
            "DURATION",
            "TIMELINE",
            if t.elided > 0 { format!("FIELDS ({} older spans elided)", t.elided) } else { "FIELDS".into() }
        ),
        head,
    )];
    let height = area.height.saturating_sub(1) as usize;
    let sel = vs.detail_sel.min(t.nodes.len().saturating_sub(1));
    let first = window(sel, height);
    let t0 = t.start();
    let t1 = t.end().unwrap_or(st.record_clock).max(t0);
    for (i, n) in t.nodes.iter().enumerate().skip(first).take(height) {
        let indent = " ".repeat((n.depth as usize).min(12));
        let name = clip(&format!("{indent}{}", n.name), name_w);
        let start = n.start.saturating_sub(t0);
        let d = match n.end {
            Some(end) => dur(end.saturating_sub(n.start)),
            None => "open".into(),
        };
        let (pre, fill, post) = bar(n, t0, t1, st.record_clock, bar_w);
        let color = match n.depth {
            0 => Color::White,
            1 => Color::Cyan,
            2 => Color::Green,
            _ => Color::Gray,
        };
        let mut style = Style::default();
        if i == sel {
            style = style.add_modifier(Modifier::REVERSED);
        }
        lines.push(
            Line::from(vec![
                Span::styled(format!("{name:<name_w$} "), Style::default().fg(color)),
                Span::raw(format!("{:>8.3} {d:>9} ", start.as_secs_f64() * 1e3)),
                Span::raw(pre),
                Span::styled(fill, Style::default().fg(color)),
                Span::raw(post),
                Span::styled(
                    format!(" {}", clip(&fields_text(n), fields_w)),
                    Style::default().fg(Color::Gray),
                ),
            ])
            .style(style),
        );
    }
    f.render_widget(Paragraph::new(lines), area);
}
