//! The sessions view: one row per live session and per recently closed one (dimmed), with
//! what a user looks for first: the request (method and path) of its current or last
//! transaction, the status sent, the termination state and the `backend/server` its log
//! line prints, how many requests the connection served, its age (its whole life once
//! closed) and the bytes it carried. The stream interfaces' states come last, when there is
//! room; the analysers and `BF_*` flags, which `show sess` prints in hex, are decoded in
//! the detail view (Enter).
//!
//! Columns take the width their content needs, the request column what is left; on a
//! narrow terminal the less important columns go first (see `fit`). Rows can be sorted by
//! any column (`h`/`l` pick it, `i` inverts) and filtered (`/`, see `Filter`): a session
//! matches when one of its transactions does, and its row then shows the latest one that
//! does. In follow mode the selection jumps to each new session. On a tall terminal the
//! selected session's detail shows under the list.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

use crate::tui::snapshot::TxnSnap;
use crate::tui::state::{SessionEntry, State};
use crate::tui::view::{Col, ListHit, ViewState, bytes, cell, clip, detail, ms, size_columns, window};

/// The columns, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessCol {
    /// `uniq_id`.
    Id,
    /// Frontend.
    Fe,
    /// Method and path of the transaction shown.
    Request,
    /// Status sent to the client.
    Status,
    /// Termination state (`----`, `sH--`...), once the transaction ended.
    Term,
    /// Backend and server the transaction used.
    BeSrv,
    /// Requests served on the connection.
    Reqs,
    /// Age, or the whole life of a closed session.
    Age,
    /// Bytes from the client.
    BytesIn,
    /// Bytes to the client.
    BytesOut,
    /// `si[0]` and `si[1]` states.
    Si,
}

impl SessCol {
    /// All columns, in display order.
    pub const ALL: [SessCol; 11] = [
        SessCol::Id,
        SessCol::Fe,
        SessCol::Request,
        SessCol::Status,
        SessCol::Term,
        SessCol::BeSrv,
        SessCol::Reqs,
        SessCol::Age,
        SessCol::BytesIn,
        SessCol::BytesOut,
        SessCol::Si,
    ];

    fn index(self) -> usize {
        SessCol::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }

    /// The next column (wrapping).
    pub fn next(self) -> SessCol {
        SessCol::ALL[(self.index() + 1) % SessCol::ALL.len()]
    }

    /// The previous column (wrapping).
    pub fn prev(self) -> SessCol {
        SessCol::ALL[(self.index() + SessCol::ALL.len() - 1) % SessCol::ALL.len()]
    }

    /// The column's title.
    pub fn title(self) -> &'static str {
        COLS[self.index()].title
    }
}

/// Titles, the least width each column takes (the request column: the least it is
/// given), and priorities (0 kept first).
const COLS: [Col; 11] = [
    Col { title: "ID", width: 4, prio: 0, right: true },
    Col { title: "FE", width: 4, prio: 3, right: false },
    Col { title: "REQUEST", width: 16, prio: 0, right: false },
    Col { title: "ST", width: 3, prio: 0, right: true },
    Col { title: "TERM", width: 4, prio: 0, right: false },
    Col { title: "BE/SRV", width: 8, prio: 0, right: false },
    Col { title: "REQS", width: 4, prio: 1, right: true },
    Col { title: "AGE", width: 5, prio: 1, right: true },
    Col { title: "IN", width: 5, prio: 2, right: true },
    Col { title: "OUT", width: 5, prio: 2, right: true },
    Col { title: "SI0/SI1", width: 7, prio: 4, right: false },
];

/// The widest a column other than the request gets, whatever its content (a long
/// backend/server name is cut rather than taking the request's room).
const MAX_COL: u16 = 24;

/// One row as drawn, with the values it sorts by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessRow {
    /// `uniq_id`.
    pub id: u32,
    /// Freed (drawn dimmed).
    pub closed: bool,
    /// The cells, in `SessCol::ALL` order.
    pub cells: [String; 11],
    /// The transaction shown: its number on the connection (0: none yet).
    pub txn: u32,
    /// The transaction shown ended with a termination state other than `----`/`--`.
    pub failed: bool,
    status: u16,
    reqs: u32,
    age_ms: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// `GET /path` from a request line (`<BADREQ>` and the like as they are).
pub fn method_path(request: &str) -> String {
    let mut words = request.split(' ');
    match (words.next(), words.next()) {
        (Some(m), Some(uri)) => format!("{m} {uri}"),
        _ => request.to_string(),
    }
}

/// True for a termination state that says something went wrong (not `----` or `--`,
/// and not empty: under way).
pub fn term_failed(term: &str) -> bool {
    !term.is_empty() && term.chars().any(|c| c != '-')
}

/// What `/` filters on. Words are ANDed; each is either plain text, matched without case
/// against the path, `backend/server`, client address, status, termination state and
/// frontend, or a field form: `status:5xx` (`x` matches any digit; `status:404`;
/// `status:40`: a prefix), `term:sH` (the termination state starts with it, case counts: `sH` is not `SH`),
/// `src:127.0.0.1` (the client address starts with it), `srv:s1` (the server's name, or
/// `be/s1`), `be:NAME`, `fe:NAME`, `id:N` (or `#N`); `live` and `closed` pick sessions by
/// state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Text anywhere.
    Text(String),
    /// `status:` pattern (digits and `x`), or `-` for no status.
    Status(String),
    /// `term:` prefix.
    Term(String),
    /// `src:` prefix.
    Src(String),
    /// `srv:` name or `be/srv`.
    Srv(String),
    /// `be:` name.
    Be(String),
    /// `fe:` name.
    Fe(String),
    /// `id:N`, `#N`.
    Id(u32),
    /// `live`.
    Live,
    /// `closed`.
    Closed,
}

impl Filter {
    /// The words of a filter text.
    pub fn parse(text: &str) -> Vec<Filter> {
        text.split_whitespace()
            .map(|w| {
                let field = w.split_once(':').filter(|(_, v)| !v.is_empty());
                match field {
                    Some(("status" | "st", v)) => Filter::Status(v.to_ascii_lowercase()),
                    Some(("term" | "ts", v)) => Filter::Term(v.to_string()),
                    Some(("src", v)) => Filter::Src(v.to_string()),
                    Some(("srv" | "server", v)) => Filter::Srv(v.to_string()),
                    Some(("be" | "backend", v)) => Filter::Be(v.to_string()),
                    Some(("fe" | "frontend", v)) => Filter::Fe(v.to_string()),
                    Some(("id", v)) if v.parse::<u32>().is_ok() => Filter::Id(v.parse().unwrap_or(0)),
                    _ if w.len() > 1 && w.starts_with('#') && w[1..].parse::<u32>().is_ok() => {
                        Filter::Id(w[1..].parse().unwrap_or(0))
                    }
                    _ if w.eq_ignore_ascii_case("live") => Filter::Live,
                    _ if w.eq_ignore_ascii_case("closed") => Filter::Closed,
                    _ => Filter::Text(w.to_lowercase()),
                }
            })
            .collect()
    }

    /// Whether the session (`fe`, `src`) with transaction `t` (none: the session alone)
    /// matches this word.
    fn matches(&self, e: &SessionEntry, fe: &str, src: &str, t: Option<&TxnSnap>) -> bool {
        let status = || t.and_then(|t| t.status).map(|s| s.to_string());
        match self {
            Filter::Live => !e.closed,
            Filter::Closed => e.closed,
            Filter::Id(n) => e.uniq_id == *n,
            Filter::Src(v) => src.starts_with(v.as_str()),
            Filter::Fe(v) => fe == v,
            Filter::Be(v) => t.is_some_and(|t| t.backend == *v),
            Filter::Srv(v) => t.is_some_and(|t| {
                t.server.as_deref() == Some(v.as_str())
                    || State::be_srv(t) == *v
                    || (v == "<NOSRV>" && t.server.is_none() && !t.term.is_empty())
            }),
            Filter::Term(v) => t.is_some_and(|t| t.term.starts_with(v.as_str())),
            Filter::Status(p) => match status() {
                None => p == "-",
                Some(s) => {
                    p.len() <= s.len()
                        && p.chars().zip(s.chars()).all(|(a, b)| a == 'x' || a == b)
                        && (p.len() == s.len() || !p.contains('x'))
                }
            },
            Filter::Text(v) => {
                let hit = |s: &str| s.to_lowercase().contains(v.as_str());
                hit(src)
                    || hit(fe)
                    || t.is_some_and(|t| {
                        t.request.as_deref().is_some_and(|r| hit(&method_path(r)))
                            || hit(&State::be_srv(t))
                            || status().is_some_and(|s| hit(&s))
                            || hit(&t.term)
                    })
            }
        }
    }
}

/// The transaction a row shows: the latest one matching every word of `filter` (the
/// latest of all when there is no filter); `None` when the session does not match.
/// `Some(None)`: it matches, with no transaction to show yet.
pub fn shown_txn(st: &State, e: &SessionEntry, filter: &[Filter]) -> Option<Option<TxnSnap>> {
    if filter.is_empty() {
        return Some(st.last_txn_of(e));
    }
    let txns = st.txns_of(e);
    let fe = st.fe_of(e);
    let src = e.src().unwrap_or_default();
    if let Some(t) = txns.iter().rev().find(|t| filter.iter().all(|f| f.matches(e, &fe, &src, Some(t)))) {
        return Some(Some(t.clone()));
    }
    if filter.iter().all(|f| f.matches(e, &fe, &src, None)) {
        return Some(txns.into_iter().last());
    }
    None
}

fn row_of(st: &State, e: &SessionEntry, t: Option<TxnSnap>) -> SessRow {
    let (si0, si1) = st.si_of(e);
    let age = st.age_ms_of(e);
    let (bin, bout) = st.bytes_of(e);
    let reqs = e.txns_done.max(t.as_ref().map_or(0, |t| t.index));
    let dash = || "-".to_string();
    let status = t.as_ref().and_then(|t| t.status);
    let request = match &t {
        Some(t) => {
            t.request.as_deref().map_or_else(|| if t.http { dash() } else { "tcp".into() }, method_path)
        }
        None => dash(),
    };
    SessRow {
        id: e.uniq_id,
        closed: e.closed,
        cells: [
            format!("#{}", e.uniq_id),
            st.fe_of(e),
            request,
            status.map_or_else(dash, |s| s.to_string()),
            t.as_ref().map(|t| t.term.clone()).filter(|t| !t.is_empty()).unwrap_or_else(dash),
            t.as_ref().map_or_else(|| st.be_srv_of(e), State::be_srv),
            reqs.to_string(),
            age.map_or_else(dash, ms),
            bytes(bin),
            bytes(bout),
            format!("{si0}/{si1}"),
        ],
        txn: t.as_ref().map_or(0, |t| t.index),
        failed: t.as_ref().is_some_and(|t| term_failed(&t.term)),
        status: status.unwrap_or(0),
        reqs,
        age_ms: age.unwrap_or(0),
        bytes_in: bin,
        bytes_out: bout,
    }
}

/// The rows to draw: filtered, then sorted as the view state says.
pub fn rows(st: &State, vs: &ViewState) -> Vec<SessRow> {
    let filter = Filter::parse(&vs.filter);
    let mut out: Vec<SessRow> =
        st.sessions.values().filter_map(|e| shown_txn(st, e, &filter).map(|t| row_of(st, e, t))).collect();
    let col = vs.sort;
    out.sort_by(|a, b| {
        let o = match col {
            SessCol::Id => a.id.cmp(&b.id),
            SessCol::Status => a.status.cmp(&b.status),
            SessCol::Reqs => a.reqs.cmp(&b.reqs),
            SessCol::Age => a.age_ms.cmp(&b.age_ms),
            SessCol::BytesIn => a.bytes_in.cmp(&b.bytes_in),
            SessCol::BytesOut => a.bytes_out.cmp(&b.bytes_out),
            c => a.cells[c.index()].cmp(&b.cells[c.index()]),
        };
        o.then(a.id.cmp(&b.id))
    });
    if vs.sort_desc {
        out.reverse();
    }
    out
}

/// The index of the selected session among `rows` (the first row when none is selected).
pub fn selected_index(rows: &[SessRow], vs: &ViewState) -> usize {
    vs.sess_sel.and_then(|id| rows.iter().position(|r| r.id == id)).unwrap_or(0)
}

/// Column widths for `rows` in `width` cells (see `size_columns`; the request column
/// grows). Returns the kept columns' indices and widths.
pub fn layout(rows: &[SessRow], width: u16) -> (Vec<usize>, Vec<u16>) {
    let content: Vec<u16> = (0..COLS.len())
        .map(|i| rows.iter().map(|r| r.cells[i].chars().count()).max().unwrap_or(0) as u16)
        .collect();
    size_columns(&COLS, &content, width, Some(SessCol::Request.index()), MAX_COL)
}

/// Draws the view; returns where the rows are.
pub fn draw(f: &mut Frame, area: Rect, st: &State, vs: &ViewState) -> Option<ListHit> {
    // Tall terminals: the list on top, the selected session's detail under it.
    let (list_area, detail_area) = if area.height >= 30 {
        let [a, b] = Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
        (a, Some(b))
    } else {
        (area, None)
    };
    let [title, table_area, summary] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(2), Constraint::Length(2)]).areas(list_area);
    let rows = rows(st, vs);
    let sel = selected_index(&rows, vs);
    let live = st.sessions.values().filter(|e| !e.closed).count();
    let dim = Style::default().fg(Color::DarkGray);
    let mut t = vec![
        Span::styled("sessions ", Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!("{live} live, {} closed", st.sessions.len() - live)),
    ];
    let hidden = st.sessions_not_shown();
    if hidden > 0 {
        t.push(Span::styled(format!(" (+{hidden} not copied)"), Style::default().fg(Color::Yellow)));
    }
    if !vs.filter.is_empty() {
        t.push(Span::styled(
            format!("  filter '{}': {} of {} match", vs.filter, rows.len(), st.sessions.len()),
            Style::default().fg(Color::Cyan),
        ));
    }
    t.push(Span::styled(
        format!("  sort {}{}", vs.sort.title(), if vs.sort_desc { " desc" } else { "" }),
        dim,
    ));
    if vs.follow {
        t.push(Span::styled("  FOLLOW", Style::default().fg(Color::Green)));
    }
    f.render_widget(Paragraph::new(Line::from(t)), title);

    let (keep, widths) = layout(&rows, table_area.width);
    let header = Row::new(keep.iter().zip(&widths).map(|(&i, &w)| {
        let mark = if SessCol::ALL[i] == vs.sort { if vs.sort_desc { "▼" } else { "▲" } } else { "" };
        cell(&format!("{}{mark}", COLS[i].title), w, COLS[i].right)
    }))
    .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let height = table_area.height.saturating_sub(1) as usize;
    let first = window(sel, height);
    let term_col = SessCol::Term.index();
    let status_col = SessCol::Status.index();
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, r)| {
            let mut style = if r.closed {
                Style::default().fg(Color::DarkGray).add_modifier(Modifier::DIM)
            } else {
                Style::default()
            };
            if i == sel {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(keep.iter().zip(&widths).map(|(&k, &w)| {
                let text = cell(&r.cells[k], w, COLS[k].right);
                // What went wrong stands out, even on a closed (dimmed) row.
                let color = if k == term_col && r.failed || k == status_col && r.status >= 500 {
                    Some(Color::Red)
                } else if k == status_col && r.status >= 400 {
                    Some(Color::Yellow)
                } else {
                    None
                };
                match color {
                    Some(c) => Span::styled(text, Style::default().fg(c)),
                    None => Span::raw(text),
                }
            }))
            .style(style)
        })
        .collect();
    let constraints: Vec<Constraint> = widths.iter().map(|&w| Constraint::Length(w)).collect();
    f.render_widget(Table::new(body, constraints).header(header).column_spacing(1), table_area);
    if rows.is_empty() {
        let binds: Vec<&str> = st
            .snap
            .iter()
            .flat_map(|s| s.proxies.iter().flat_map(|p| p.listeners.iter().map(|l| l.addr.as_str())))
            .collect();
        let msg = if !st.sessions.is_empty() {
            "no session matches the filter (Esc clears it)".to_string()
        } else if binds.is_empty() {
            "no session yet".to_string()
        } else {
            format!("no session yet: connect to {}", binds.join(" or "))
        };
        let y = table_area.y + 1;
        if y < table_area.bottom() {
            f.render_widget(Paragraph::new(msg).style(dim), Rect { y, height: 1, ..table_area });
        }
    }
    // The selected session: where it comes from, and the log line of the request shown.
    if let Some((r, e)) = rows.get(sel).and_then(|r| Some((r, st.sessions.get(&r.id)?))) {
        let w = summary.width as usize;
        let mut l1 = vec![Span::styled(format!("selected #{} ", e.uniq_id), dim)];
        if let Some(src) = e.src() {
            l1.push(Span::raw(format!("from {src}  ")));
        }
        let txns = st.txns_of(e);
        let shown = txns.iter().find(|t| t.index == r.txn);
        if let Some(t) = shown {
            l1.push(Span::raw(format!("request {} of {}  ", t.index, r.reqs)));
        }
        l1.push(Span::styled("Enter: call flow, analysers and flags", dim));
        let log = match shown {
            Some(t) if t.log.is_some() => t.log.clone(),
            Some(t) if t.term.is_empty() => None,
            _ => None,
        };
        let l2 = match log {
            Some(l) => Line::from(vec![Span::styled("log: ", dim), Span::raw(clip(&l, w.saturating_sub(5)))]),
            None if shown.is_some_and(|t| t.term.is_empty()) => {
                Line::styled("log: when the request ends", dim)
            }
            None => Line::styled("log: none", dim),
        };
        f.render_widget(Paragraph::new(vec![Line::from(l1), l2]), summary);
    }
    if let Some(d) = detail_area {
        detail::draw(f, d, st, &detail::DetailState::default(), rows.get(sel).map(|r| r.id));
    }
    let rows_area = Rect { y: table_area.y + 1, height: table_area.height.saturating_sub(1), ..table_area };
    Some(ListHit { area: rows_area, first })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_words_parse_into_fields_and_text() {
        assert_eq!(
            Filter::parse("/api status:5xx term:sH src:127.0.0.1 srv:s1 #4 live"),
            [
                Filter::Text("/api".into()),
                Filter::Status("5xx".into()),
                Filter::Term("sH".into()),
                Filter::Src("127.0.0.1".into()),
                Filter::Srv("s1".into()),
                Filter::Id(4),
                Filter::Live,
            ]
        );
        assert_eq!(Filter::parse("status:"), [Filter::Text("status:".into())], "no value: plain text");
    }

    #[test]
    fn status_patterns_match_digits_and_classes() {
        let e = SessionEntry::new(1);
        let t = |status| TxnSnap { status: Some(status), ..TxnSnap::default() };
        let m = |p: &str, s: u16| Filter::Status(p.into()).matches(&e, "fe", "", Some(&t(s)));
        assert!(m("5xx", 503) && !m("5xx", 404) && m("404", 404) && m("4xx", 408));
        assert!(m("40", 404) && !m("41", 404), "a shorter pattern is a prefix");
        assert!(!Filter::Status("5xx".into()).matches(&e, "fe", "", None));
        assert_eq!(method_path("GET /a?b=1 HTTP/1.1"), "GET /a?b=1");
        assert!(term_failed("sH--") && !term_failed("----") && !term_failed("--") && !term_failed(""));
    }
}
