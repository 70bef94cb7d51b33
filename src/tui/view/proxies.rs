//! The proxies view: every frontend, backend and server with its status and counters, the
//! rows and names of HAProxy's `show stat` (`fe/FRONTEND`, `be/s1`, `be/BACKEND`), laid
//! out like hatop.
//!
//! On a narrow terminal the less important columns go (see `fit`); the panel under the
//! table always shows every counter of the selected row, so nothing is out of reach at
//! 80x24. `d`/`e` on a server row put it in or out of maintenance (the UI loop sends the
//! command; the next snapshot shows the proxy obeyed).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use crate::haproxy::proxy::ProxyState;
use crate::ids::{ProxyId, ServerId};
use crate::tui::snapshot::{ProxySnap, ServerSnap, Snapshot};
use crate::tui::state::State;
use crate::tui::view::{Col, ListHit, ViewState, bytes, cell, human, size_columns, status_style, window};

/// What a row of the view stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PxRow {
    /// A proxy's frontend side (`FRONTEND`).
    Frontend(ProxyId),
    /// A server.
    Server(ServerId),
    /// A proxy's backend side (`BACKEND`).
    Backend(ProxyId),
}

/// The rows in display order: per proxy, `FRONTEND`, its servers, `BACKEND`.
pub fn rows(snap: &Snapshot) -> Vec<PxRow> {
    let mut out = Vec::new();
    for p in &snap.proxies {
        if p.is_frontend() {
            out.push(PxRow::Frontend(p.id));
        }
        if p.is_backend() {
            out.extend(p.servers.iter().map(|s| PxRow::Server(s.id)));
            out.push(PxRow::Backend(p.id));
        }
    }
    out
}

const COLS: [Col; 17] = [
    Col { title: "NAME", width: 12, prio: 0, right: false },
    Col { title: "STATUS", width: 7, prio: 0, right: false },
    Col { title: "W", width: 3, prio: 3, right: true },
    Col { title: "CUR", width: 5, prio: 0, right: true },
    Col { title: "MAX", width: 5, prio: 2, right: true },
    Col { title: "LIM", width: 5, prio: 4, right: true },
    Col { title: "QCUR", width: 4, prio: 1, right: true },
    Col { title: "QMAX", width: 4, prio: 4, right: true },
    Col { title: "TOTAL", width: 6, prio: 0, right: true },
    Col { title: "REQ", width: 6, prio: 1, right: true },
    Col { title: "BIN", width: 6, prio: 1, right: true },
    Col { title: "BOUT", width: 6, prio: 1, right: true },
    Col { title: "2XX", width: 5, prio: 3, right: true },
    Col { title: "3XX", width: 5, prio: 4, right: true },
    Col { title: "4XX", width: 5, prio: 3, right: true },
    Col { title: "5XX", width: 5, prio: 3, right: true },
    Col { title: "CHECK", width: 10, prio: 1, right: false },
];

fn opt(n: u32) -> String {
    if n == 0 { "-".into() } else { n.to_string() }
}

/// Frontend status as `show stat` prints it.
fn fe_status(p: &ProxySnap) -> &'static str {
    match p.state {
        ProxyState::PR_STNEW => "NEW",
        ProxyState::PR_STREADY => "OPEN",
        ProxyState::PR_STERROR => "ERROR",
        ProxyState::PR_STPAUSED => "PAUSED",
        ProxyState::PR_STSTOPPED => "STOP",
    }
}

/// Backend status: UP while some server can take traffic.
fn be_status(p: &ProxySnap) -> &'static str {
    if p.srv_act + p.srv_bck > 0 { "UP" } else { "DOWN" }
}

/// Server status: MAINT, or what the checks say (UP when it has no check: it is used).
fn srv_status(s: &ServerSnap) -> String {
    if s.maint() {
        "MAINT".into()
    } else if s.check.is_none() {
        if s.status == "DRAIN" { "DRAIN".into() } else { "UP".into() }
    } else {
        s.status.clone()
    }
}

/// The last health-check result: `L4OK 1ms`, `L7STS/503`, or `no check`.
fn check_text(s: &ServerSnap) -> String {
    match &s.check {
        None => "no check".into(),
        Some(c) => match c.code {
            Some(code) => format!("{}/{code} {}ms", c.status, c.duration),
            None => format!("{} {}ms", c.status, c.duration),
        },
    }
}

/// The cells of one row, in `COLS` order, with its name and status.
fn cells(snap: &Snapshot, row: PxRow) -> [String; 17] {
    let dash = || "-".to_string();
    match row {
        PxRow::Frontend(id) | PxRow::Backend(id) => {
            let Some(p) = snap.proxy(id) else { return Default::default() };
            let c = &p.counters;
            let fe = matches!(row, PxRow::Frontend(_));
            let weight: u32 = p.servers.iter().filter(|s| !s.maint()).map(|s| s.weight).sum();
            [
                format!("{}/{}", p.name, if fe { "FRONTEND" } else { "BACKEND" }),
                if fe { fe_status(p) } else { be_status(p) }.to_string(),
                if fe { dash() } else { weight.to_string() },
                (if fe { p.feconn } else { p.beconn }).to_string(),
                human(c.conn_max),
                if fe { opt(p.maxconn) } else { dash() },
                if fe { dash() } else { p.queue.to_string() },
                if fe { dash() } else { p.queue_max.to_string() },
                human(c.cum_sess),
                human(c.cum_req),
                bytes(c.bytes_in),
                bytes(c.bytes_out),
                human(c.rsp[1]),
                human(c.rsp[2]),
                human(c.rsp[3]),
                human(c.rsp[4]),
                dash(),
            ]
        }
        PxRow::Server(id) => {
            let (Some(p), Some(s)) = (snap.proxy(id.px), snap.server(id)) else { return Default::default() };
            let c = &s.counters;
            [
                format!("{}/{}", p.name, s.name),
                srv_status(s),
                s.weight.to_string(),
                s.cur_sess.to_string(),
                s.cur_sess_max.to_string(),
                opt(s.maxconn),
                s.queue.to_string(),
                s.queue_max.to_string(),
                human(c.cum_sess),
                dash(),
                bytes(c.bytes_in),
                bytes(c.bytes_out),
                human(c.rsp[1]),
                human(c.rsp[2]),
                human(c.rsp[3]),
                human(c.rsp[4]),
                check_text(s),
            ]
        }
    }
}

/// Draws the view; returns where the rows are.
pub fn draw(f: &mut Frame, area: Rect, st: &State, vs: &ViewState) -> Option<ListHit> {
    let Some(snap) = &st.snap else {
        f.render_widget(Paragraph::new("no snapshot yet"), area);
        return None;
    };
    let [table_area, panel] = Layout::vertical([Constraint::Min(3), Constraint::Length(4)]).areas(area);
    let list = rows(snap);
    let all: Vec<[String; 17]> = list.iter().map(|&r| cells(snap, r)).collect();
    let content: Vec<u16> =
        (0..COLS.len()).map(|i| all.iter().map(|c| c[i].chars().count()).max().unwrap_or(0) as u16).collect();
    // Each column as wide as what it holds: names and check results are read whole.
    let (keep, widths) = size_columns(&COLS, &content, table_area.width, Some(0), 16);
    let header = Row::new(keep.iter().zip(&widths).map(|(&i, &w)| cell(COLS[i].title, w, COLS[i].right)))
        .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let height = table_area.height.saturating_sub(1) as usize;
    let sel = vs.proxies_sel.min(list.len().saturating_sub(1));
    let first = window(sel, height);
    let body: Vec<Row> = list
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, &row)| {
            let cs = &all[i];
            let status = cs[1].clone();
            let r = Row::new(keep.iter().zip(&widths).map(|(&k, &w)| {
                let text = cell(&cs[k], w, COLS[k].right);
                if k == 1 { Span::styled(text, status_style(&status)) } else { Span::raw(text) }
            }));
            let mut style = match row {
                PxRow::Frontend(_) | PxRow::Backend(_) => Style::default().add_modifier(Modifier::BOLD),
                PxRow::Server(_) => Style::default(),
            };
            if i == sel {
                style = style.add_modifier(Modifier::REVERSED);
            }
            r.style(style)
        })
        .collect();
    let constraints: Vec<Constraint> = widths.iter().map(|&w| Constraint::Length(w)).collect();
    f.render_widget(Table::new(body, constraints).header(header).column_spacing(1), table_area);
    if let Some(&row) = list.get(sel) {
        draw_panel(f, panel, snap, row);
    }
    let rows_area = Rect { y: table_area.y + 1, height: table_area.height.saturating_sub(1), ..table_area };
    Some(ListHit { area: rows_area, first })
}

/// Every counter of the selected row, whatever the terminal's width.
fn draw_panel(f: &mut Frame, area: Rect, snap: &Snapshot, row: PxRow) {
    let cs = cells(snap, row);
    let dim = Style::default().fg(Color::DarkGray);
    let kv = |k: &str, v: &str| vec![Span::styled(format!("{k} "), dim), Span::raw(format!("{v}  "))];
    let mut l1 = vec![
        Span::styled(format!("{}  ", cs[0]), Style::default().add_modifier(Modifier::BOLD)),
        Span::styled(format!("{}  ", cs[1]), status_style(&cs[1])),
    ];
    let mut l3 = Vec::new();
    match row {
        PxRow::Server(id) => {
            if let Some(s) = snap.server(id) {
                l1.extend(kv("addr", &s.addr.to_string()));
                l1.extend(kv("weight", &cs[2]));
                l1.extend(kv("check", &cs[16]));
                if let Some(c) = &s.check {
                    l1.push(Span::styled(c.info.clone(), dim));
                }
                l3.extend(kv("conn fail", &s.counters.failed_conns.to_string()));
                l3.extend(kv("retries", &s.counters.retries.to_string()));
                l3.extend(kv("redisp", &s.counters.redispatches.to_string()));
                l3.push(Span::styled("d disable  e enable", Style::default().fg(Color::Yellow)));
            }
        }
        PxRow::Frontend(id) | PxRow::Backend(id) => {
            if let Some(p) = snap.proxy(id) {
                l1.extend(kv("mode", &p.mode.to_string()));
                if matches!(row, PxRow::Frontend(_)) {
                    for l in &p.listeners {
                        l1.extend(kv("bind", &format!("{} {} {}/{}", l.addr, l.state, l.nbconn, l.maxconn)));
                    }
                }
                if matches!(row, PxRow::Backend(_)) {
                    l1.extend(kv("balance", &p.algo.to_string()));
                    l1.extend(kv("servers", &format!("{} active, {} backup usable", p.srv_act, p.srv_bck)));
                }
                let c = &p.counters;
                l3.extend(kv("denied", &c.denied_req.to_string()));
                l3.extend(kv("bad req", &c.failed_req.to_string()));
                l3.extend(kv("conn fail", &c.failed_conns.to_string()));
                l3.extend(kv("retries", &c.retries.to_string()));
            }
        }
    }
    let mut l2 = Vec::new();
    l2.extend(kv("cur", &cs[3]));
    l2.extend(kv("max", &cs[4]));
    l2.extend(kv("lim", &cs[5]));
    l2.extend(kv("queue", &format!("{}/{}", cs[6], cs[7])));
    l2.extend(kv("total", &cs[8]));
    l2.extend(kv("req", &cs[9]));
    l2.extend(kv("in", &cs[10]));
    l2.extend(kv("out", &cs[11]));
    let mut l4 = Vec::new();
    l4.extend(kv("2xx", &cs[12]));
    l4.extend(kv("3xx", &cs[13]));
    l4.extend(kv("4xx", &cs[14]));
    l4.extend(kv("5xx", &cs[15]));
    l4.extend(l3);
    let text = vec![Line::from(l1), Line::from(l2), Line::from(l4)];
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::TOP).border_style(dim)),
        area,
    );
}
