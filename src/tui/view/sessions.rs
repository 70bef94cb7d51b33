//! The sessions view: one row per live session and per recently closed one (dimmed), with
//! what HAProxy's `show sess` prints: id, frontend, backend/server, the states of `si[0]`
//! (client side) and `si[1]` (server side), the `req` and `rep` buffers' analysers and
//! flags (hex, as `show sess` prints them; decoded under the table for the selected
//! session), age and bytes.
//!
//! Rows can be sorted by any column (`h`/`l` pick it, `i` inverts) and filtered (`/`: a
//! case-insensitive substring of the row). In follow mode the selection jumps to each new
//! session. On a tall terminal the selected session's detail shows under the list, so a
//! request can be watched from accept to free without leaving the view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

use crate::tui::state::{SessionEntry, State};
use crate::tui::view::{Col, ListHit, ViewState, bytes, cell, detail, fit, ms, widths, window};

/// The columns, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessCol {
    /// `uniq_id`.
    Id,
    /// Frontend.
    Fe,
    /// Backend and server.
    BeSrv,
    /// `si[0]` state.
    Si0,
    /// `si[1]` state.
    Si1,
    /// `req->analysers`.
    ReqAn,
    /// `req->flags`.
    ReqFlags,
    /// `rep->analysers`.
    RepAn,
    /// `rep->flags`.
    RepFlags,
    /// Age.
    Age,
    /// Bytes from the client.
    BytesIn,
    /// Bytes to the client.
    BytesOut,
}

impl SessCol {
    /// All columns, in display order.
    pub const ALL: [SessCol; 12] = [
        SessCol::Id,
        SessCol::Fe,
        SessCol::BeSrv,
        SessCol::Si0,
        SessCol::Si1,
        SessCol::ReqAn,
        SessCol::ReqFlags,
        SessCol::RepAn,
        SessCol::RepFlags,
        SessCol::Age,
        SessCol::BytesIn,
        SessCol::BytesOut,
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

const COLS: [Col; 12] = [
    Col { title: "ID", width: 6, prio: 0, right: true },
    Col { title: "FE", width: 8, prio: 1, right: false },
    Col { title: "BE/SRV", width: 12, prio: 0, right: false },
    Col { title: "SI0", width: 3, prio: 0, right: false },
    Col { title: "SI1", width: 3, prio: 0, right: false },
    Col { title: "RQ.AN", width: 6, prio: 2, right: true },
    Col { title: "RQ.FLAGS", width: 8, prio: 3, right: true },
    Col { title: "RP.AN", width: 6, prio: 2, right: true },
    Col { title: "RP.FLAGS", width: 8, prio: 3, right: true },
    Col { title: "AGE", width: 7, prio: 0, right: true },
    Col { title: "IN", width: 6, prio: 1, right: true },
    Col { title: "OUT", width: 6, prio: 1, right: true },
];

/// One row as drawn, with the values it sorts by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessRow {
    /// `uniq_id`.
    pub id: u32,
    /// Freed (drawn dimmed).
    pub closed: bool,
    /// The cells, in `SessCol::ALL` order.
    pub cells: [String; 12],
    age_ms: u64,
    bytes_in: u64,
    bytes_out: u64,
}

fn hex(n: u32) -> String {
    format!("{n:02x}h")
}

fn row_of(st: &State, e: &SessionEntry) -> SessRow {
    let (si0, si1) = st.si_of(e);
    let snap = e.snap;
    let age = st.age_ms_of(e);
    let (bin, bout) = snap.map_or((0, 0), |s| (s.bytes_in, s.bytes_out));
    let dash = || "-".to_string();
    SessRow {
        id: e.uniq_id,
        closed: e.closed,
        cells: [
            format!("#{}", e.uniq_id),
            st.fe_of(e),
            st.be_srv_of(e),
            si0,
            si1,
            snap.map_or_else(dash, |s| hex(s.req.analysers.bits())),
            snap.map_or_else(dash, |s| hex(s.req.flags.bits())),
            snap.map_or_else(dash, |s| hex(s.rep.analysers.bits())),
            snap.map_or_else(dash, |s| hex(s.rep.flags.bits())),
            age.map_or_else(dash, ms),
            if snap.is_some() { bytes(bin) } else { dash() },
            if snap.is_some() { bytes(bout) } else { dash() },
        ],
        age_ms: age.unwrap_or(0),
        bytes_in: bin,
        bytes_out: bout,
    }
}

/// The rows to draw: filtered, then sorted as the view state says.
pub fn rows(st: &State, vs: &ViewState) -> Vec<SessRow> {
    let needle = vs.filter.to_lowercase();
    let mut out: Vec<SessRow> = st
        .sessions
        .values()
        .map(|e| row_of(st, e))
        .filter(|r| {
            needle.is_empty()
                || r.cells.iter().any(|c| c.to_lowercase().contains(&needle))
                || (needle == "live" && !r.closed)
                || (needle == "closed" && r.closed)
        })
        .collect();
    let col = vs.sort;
    out.sort_by(|a, b| {
        let o = match col {
            SessCol::Id => a.id.cmp(&b.id),
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
            format!("  filter '{}' ({} rows)", vs.filter, rows.len()),
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

    let keep = fit(&COLS, table_area.width);
    let header = Row::new(keep.iter().map(|&i| {
        let mark = if SessCol::ALL[i] == vs.sort { if vs.sort_desc { "▼" } else { "▲" } } else { "" };
        let text = format!("{}{mark}", COLS[i].title);
        cell(&text, COLS[i].width, COLS[i].right)
    }))
    .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let height = table_area.height.saturating_sub(1) as usize;
    let first = window(sel, height);
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
            Row::new(keep.iter().map(|&k| cell(&r.cells[k], COLS[k].width, COLS[k].right))).style(style)
        })
        .collect();
    f.render_widget(
        Table::new(body, widths(&COLS, &keep, SessCol::BeSrv.index())).header(header).column_spacing(1),
        table_area,
    );
    if rows.is_empty() {
        let binds: Vec<&str> = st
            .snap
            .iter()
            .flat_map(|s| s.proxies.iter().flat_map(|p| p.listeners.iter().map(|l| l.addr.as_str())))
            .collect();
        let msg = if !st.sessions.is_empty() {
            "no session matches the filter".to_string()
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
    // The selected session's buffers, decoded.
    if let Some(e) = rows.get(sel).and_then(|r| st.sessions.get(&r.id)) {
        let lines = match e.snap {
            Some(s) => vec![
                Line::from(vec![
                    Span::styled(format!("#{} req ", e.uniq_id), dim),
                    Span::raw(format!("an={} f={}", s.req.analysers, s.req.flags)),
                ]),
                Line::from(vec![
                    Span::styled(format!("{:>w$} rep ", "", w = e.uniq_id.to_string().len() + 1), dim),
                    Span::raw(format!("an={} f={}", s.rep.analysers, s.rep.flags)),
                ]),
            ],
            None => vec![Line::styled(format!("#{}: not in a snapshot yet (spans only)", e.uniq_id), dim)],
        };
        f.render_widget(Paragraph::new(lines), summary);
    }
    if let Some(d) = detail_area {
        detail::draw(f, d, st, vs, rows.get(sel).map(|r| r.id));
    }
    let rows_area = Rect { y: table_area.y + 1, height: table_area.height.saturating_sub(1), ..table_area };
    Some(ListHit { area: rows_area, first })
}
