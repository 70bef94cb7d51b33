//! Views: pure rendering of a `State` (what is known) through a `ViewState` (what the user
//! is looking at), one module per view.
//!
//! The screen is a two-line header (`header`), a tab line, the current view, a status line
//! when the UI watches a run with a verdict (a scenario: under way, then its outcome), and
//! a footer line with the keys of that view (or the filter being typed, or a short
//! message).
//! `draw` returns the hit areas (tabs, list rows) so that mouse clicks can be mapped back
//! to what was drawn without the views keeping state. Nothing here reads the clock or the
//! proxy: rendering the same state twice draws the same screen, which is what makes the
//! views testable on ratatui's `TestBackend`.

pub mod detail;
pub mod event_loop;
pub mod header;
pub mod help;
pub mod logs;
pub mod markdown;
pub mod proxies;
pub mod sessions;
pub mod walkthrough;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::state::{State, Status, Tone};

/// The views, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewKind {
    /// Frontends, backends and servers (`show stat`).
    Proxies,
    /// Live and recently closed sessions (`show sess`).
    Sessions,
    /// One session: its state, buffers and span waterfall.
    Detail,
    /// What each turn of `run_poll_loop` did.
    EventLoop,
    /// Log lines, debug lines and the proxy's warnings.
    Logs,
}

impl ViewKind {
    /// Tab order (keys `1`..`5`).
    pub const ALL: [ViewKind; 5] =
        [ViewKind::Proxies, ViewKind::Sessions, ViewKind::Detail, ViewKind::EventLoop, ViewKind::Logs];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            ViewKind::Proxies => "Proxies",
            ViewKind::Sessions => "Sessions",
            ViewKind::Detail => "Detail",
            ViewKind::EventLoop => "Event loop",
            ViewKind::Logs => "Logs",
        }
    }

    fn index(self) -> usize {
        ViewKind::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    /// The next tab (wrapping).
    pub fn next(self) -> ViewKind {
        ViewKind::ALL[(self.index() + 1) % ViewKind::ALL.len()]
    }

    /// The previous tab (wrapping).
    pub fn prev(self) -> ViewKind {
        ViewKind::ALL[(self.index() + ViewKind::ALL.len() - 1) % ViewKind::ALL.len()]
    }
}

/// What the user is looking at: the current view, selections, sort, filter, pause.
#[derive(Clone, Debug)]
pub struct ViewState {
    /// The current view.
    pub view: ViewKind,
    /// The help overlay is open.
    pub help: bool,
    /// The display is frozen (collection goes on).
    pub paused: bool,
    /// Selected row of the proxies view.
    pub proxies_sel: usize,
    /// Selected session (`uniq_id`) of the sessions view.
    pub sess_sel: Option<u32>,
    /// Sort column of the sessions view.
    pub sort: sessions::SessCol,
    /// Sort descending.
    pub sort_desc: bool,
    /// Filter of the sessions view (case-insensitive substring of the row).
    pub filter: String,
    /// The filter is being typed.
    pub filter_editing: bool,
    /// The selection follows the newest session.
    pub follow: bool,
    /// The session shown by the detail view.
    pub detail: Option<u32>,
    /// What the user does in the detail view: selection, folds, zoom, search.
    pub dv: detail::DetailState,
    /// Lane entries scrolled back from the newest (0: follow the newest).
    pub lane_back: usize,
    /// Log lines scrolled back from the newest (0: follow the newest).
    pub log_back: usize,
    /// Columns the log lines are scrolled sideways (left/right in the logs view).
    pub log_x: usize,
    /// Rows the help overlay is scrolled down.
    pub help_scroll: u16,
    /// A short message for the footer (commands sent, hints).
    pub flash: Option<String>,
    /// A message in a box over the view (what an export wrote), until the next key.
    pub notice: Option<Vec<String>>,
}

impl Default for ViewState {
    fn default() -> Self {
        ViewState {
            // A learner starts where requests show up as they arrive.
            view: ViewKind::Sessions,
            help: false,
            paused: false,
            proxies_sel: 0,
            sess_sel: None,
            sort: sessions::SessCol::Id,
            sort_desc: true,
            filter: String::new(),
            filter_editing: false,
            follow: true,
            detail: None,
            dv: detail::DetailState::default(),
            lane_back: 0,
            log_back: 0,
            log_x: 0,
            help_scroll: 0,
            flash: None,
            notice: None,
        }
    }
}

/// A list drawn on screen: its rows' area and the index of the item on its first row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListHit {
    /// Where the items are (header excluded).
    pub area: Rect,
    /// The item drawn on `area.y`.
    pub first: usize,
}

/// Where things were drawn, for mouse clicks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    /// The tab line's row.
    pub tabs_y: u16,
    /// Each tab's column range `[x0, x1)`.
    pub tabs: Vec<(u16, u16, ViewKind)>,
    /// The current view's selectable list.
    pub list: Option<ListHit>,
    /// Rows of the current view's scrolling area (to scroll by screenfuls and stop at the top).
    pub page: u16,
    /// Rows the help overlay can scroll at most.
    pub help_max: u16,
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, st: &State, vs: &ViewState) -> Hits {
    let area = f.area();
    let mut hits = Hits::default();
    if area.width < 30 || area.height < 8 {
        f.render_widget(Paragraph::new("haflow: terminal too small"), area);
        return hits;
    }
    let [head, tabs, body, status, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(u16::from(st.status.is_some())),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw(f, head, st, vs);
    hits.tabs_y = tabs.y;
    hits.tabs = draw_tabs(f, tabs, vs);
    hits.list = match vs.view {
        ViewKind::Proxies => proxies::draw(f, body, st, vs),
        ViewKind::Sessions => sessions::draw(f, body, st, vs),
        ViewKind::Detail => {
            detail::draw(f, body, st, &vs.dv, vs.detail.or(vs.sess_sel));
            None
        }
        ViewKind::EventLoop => {
            hits.page = event_loop::draw(f, body, st, vs);
            None
        }
        ViewKind::Logs => {
            hits.page = body.height;
            logs::draw(f, body, st, vs);
            None
        }
    };
    if let Some(l) = hits.list {
        hits.page = l.area.height;
    }
    if let Some(s) = &st.status {
        draw_status(f, status, s);
    }
    draw_footer(f, foot, vs);
    if vs.help {
        hits.help_max = help::draw(f, area, vs.help_scroll);
    }
    if let Some(lines) = &vs.notice {
        draw_notice(f, area, lines);
    }
    hits
}

fn draw_tabs(f: &mut Frame, area: Rect, vs: &ViewState) -> Vec<(u16, u16, ViewKind)> {
    let mut spans = Vec::new();
    let mut out = Vec::new();
    let mut x = area.x;
    for (i, v) in ViewKind::ALL.iter().enumerate() {
        let text = format!(" {} {} ", i + 1, v.title());
        let w = text.chars().count() as u16;
        let style = if *v == vs.view {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::default().fg(Color::Gray)
        };
        out.push((x, x + w, *v));
        x += w + 1;
        spans.push(Span::styled(text, style));
        spans.push(Span::raw(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
    out
}

/// A box in the middle of the screen with `lines` (wrapped), closed by any key.
fn draw_notice(f: &mut Frame, area: Rect, lines: &[String]) {
    use ratatui::widgets::{Block, Borders, Clear, Wrap};
    let widest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16;
    let w = (widest + 4).clamp(30, area.width);
    let inner = w.saturating_sub(2).max(1) as usize;
    let rows: u16 = lines.iter().map(|l| l.chars().count().max(1).div_ceil(inner) as u16).sum();
    let h = (rows + 2).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, r);
    let text: Vec<Line> = lines.iter().map(|l| Line::raw(l.clone())).collect();
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" any key closes ")),
        r,
    );
}

fn draw_status(f: &mut Frame, area: Rect, s: &Status) {
    let style = match s.tone {
        Tone::Info => Style::default().fg(Color::Black).bg(Color::Cyan),
        Tone::Good => Style::default().fg(Color::Black).bg(Color::Green).add_modifier(Modifier::BOLD),
        Tone::Bad => Style::default().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD),
    };
    // The whole row in the tone's colour: the verdict of a run must not be missed.
    f.render_widget(Paragraph::new(Line::from(format!(" {}", s.text))).style(style), area);
}

fn draw_footer(f: &mut Frame, area: Rect, vs: &ViewState) {
    let editing = if vs.dv.search_editing {
        Some((&vs.dv.search, "  span names and fields;  Enter keep  Esc clear"))
    } else if vs.filter_editing {
        Some((&vs.filter, "  text, status:5xx term:sH src:IP srv:NAME live closed;  Enter keep  Esc clear"))
    } else {
        None
    };
    let line = if let Some((text, hint)) = editing {
        Line::from(vec![
            Span::styled(format!("/{text}"), Style::default().add_modifier(Modifier::BOLD)),
            Span::styled("_", Style::default().add_modifier(Modifier::SLOW_BLINK)),
            Span::styled(hint, Style::default().fg(Color::DarkGray)),
        ])
    } else if let Some(msg) = &vs.flash {
        Line::from(Span::styled(msg.clone(), Style::default().fg(Color::Yellow)))
    } else {
        let keys = match vs.view {
            ViewKind::Proxies => "jk move  d disable  e enable  Enter sessions",
            ViewKind::Sessions => "jk move  Enter open  / filter  hl sort  f follow  x export  w export all",
            ViewKind::Detail => "jk move  n/p request  Enter fold  z zoom  / search  x export  Esc back",
            ViewKind::EventLoop => "jk scroll  f follow newest",
            ViewKind::Logs => "jk scroll  left/right sideways  f follow newest",
        };
        Line::from(vec![
            Span::raw(keys),
            Span::styled("  Tab view  space pause  ? help  q quit", Style::default().fg(Color::DarkGray)),
        ])
    };
    f.render_widget(Paragraph::new(line), area);
}

/// A count, short: `999`, `12.3K`, `4.5M`.
pub fn human(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..1_000_000 => format!("{:.1}K", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// A byte count, short: `512`, `1.5K`, `10.0M` (powers of 1024).
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if n < 10_000 {
        n.to_string()
    } else if f < K * K {
        format!("{:.1}K", f / K)
    } else if f < K * K * K {
        format!("{:.1}M", f / (K * K))
    } else {
        format!("{:.1}G", f / (K * K * K))
    }
}

/// Milliseconds, short: `12ms`, `1.5s`, `3m04s`, `2h05m`.
pub fn ms(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1e3),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// A span's duration: `850ns`, `12us`, `1.25ms`, `2.50s` (as timed listings print it).
pub use crate::trace::tree::duration as dur;

/// A sparkline of `values` scaled to their maximum, one character per value.
pub fn spark(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values.iter().map(|&v| if max == 0 { BARS[0] } else { BARS[((v * 7).div_ceil(max)) as usize] }).collect()
}

/// `s` cut to `w` characters, with `…` when cut.
pub fn clip(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(w - 1).collect();
    out.push('…');
    out
}

/// A table column: title, width, and priority (0 first) for narrow terminals.
#[derive(Clone, Copy, Debug)]
pub struct Col {
    /// Header text.
    pub title: &'static str,
    /// Width in cells (at least: the growing column takes what is left).
    pub width: u16,
    /// Lower is kept first when the terminal is narrow.
    pub prio: u8,
    /// Right-aligned (numbers).
    pub right: bool,
}

/// The columns (indices into `cols`, in their order) that fit in `width`, kept by priority.
pub fn fit(cols: &[Col], width: u16) -> Vec<usize> {
    let mut by_prio: Vec<usize> = (0..cols.len()).collect();
    by_prio.sort_by_key(|&i| cols[i].prio);
    let mut used = 0u16;
    let mut keep = Vec::new();
    for i in by_prio {
        let w = cols[i].width + u16::from(!keep.is_empty());
        if used + w <= width {
            used += w;
            keep.push(i);
        }
    }
    keep.sort_unstable();
    keep
}

/// Columns sized to what they hold, in `width` cells: each as wide as its title and its
/// widest cell (`content[i]`), at least its `width` and at most `max`; the `grow` column
/// (a request, a name) is fitted at its least and then given what the others leave, up to
/// its widest cell. Columns that do not fit go, least important first (see `fit`).
/// Returns the kept columns' indices and their widths.
pub fn size_columns(
    cols: &[Col],
    content: &[u16],
    width: u16,
    grow: Option<usize>,
    max: u16,
) -> (Vec<usize>, Vec<u16>) {
    let natural: Vec<u16> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let w = content.get(i).copied().unwrap_or(0).max(c.title.chars().count() as u16 + 1).max(c.width);
            if Some(i) == grow { w } else { w.min(max.max(c.width)) }
        })
        .collect();
    let sized: Vec<Col> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| Col { width: if Some(i) == grow { c.width } else { natural[i] }, ..*c })
        .collect();
    let keep = fit(&sized, width);
    let mut widths: Vec<u16> = keep.iter().map(|&i| sized[i].width).collect();
    let used: u16 = widths.iter().sum::<u16>() + keep.len().saturating_sub(1) as u16;
    if let Some(k) = keep.iter().position(|&i| Some(i) == grow) {
        let g = keep[k];
        widths[k] += width.saturating_sub(used).min(natural[g].saturating_sub(widths[k]));
    }
    (keep, widths)
}

/// Text aligned in a cell of `w` characters.
pub fn cell(s: &str, w: u16, right: bool) -> String {
    let s = clip(s, w as usize);
    if right { format!("{s:>w$}", w = w as usize) } else { s }
}

/// Most lines a newest-at-the-bottom pane of `height` rows can be scrolled back over `len`
/// lines: to the oldest screenful, one row being taken by the "newer lines below" marker.
pub fn max_back(len: usize, height: usize) -> usize {
    if len <= height { 0 } else { len - height.saturating_sub(1) }
}

/// The range of lines a newest-at-the-bottom pane shows when scrolled `back` lines, and
/// `back` as clamped.
pub fn tail_range(len: usize, height: usize, back: usize) -> (std::ops::Range<usize>, usize) {
    let back = back.min(max_back(len, height));
    let rows = if back > 0 { height.saturating_sub(1) } else { height };
    let end = len - back;
    (end.saturating_sub(rows)..end, back)
}

/// The first item to draw so that `sel` is visible in `height` rows.
pub fn window(sel: usize, height: usize) -> usize {
    if height == 0 || sel < height { 0 } else { sel + 1 - height }
}

/// The style of a status word (`UP`, `DOWN`, `MAINT`...).
pub fn status_style(status: &str) -> Style {
    let s = Style::default();
    if status.starts_with("UP") || status == "OPEN" {
        s.fg(Color::Green)
    } else if status.starts_with("DOWN") || status == "STOP" {
        s.fg(Color::Red).add_modifier(Modifier::BOLD)
    } else if status == "MAINT" {
        s.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    } else if status == "DRAIN" {
        s.fg(Color::Blue)
    } else {
        s
    }
}

/// HAProxy's names of the flags set in `f`, joined by `|` (`-` when none).
pub fn flag_names<F: bitflags::Flags>(f: &F) -> String {
    let names: Vec<&str> = f.iter_names().map(|(n, _)| n).collect();
    if names.is_empty() { "-".into() } else { names.join("|") }
}

/// A fill bar of `w` cells: `[####......]`.
pub fn fill_bar(used: usize, size: usize, w: usize) -> String {
    let inner = w.saturating_sub(2);
    let n = if size == 0 { 0 } else { (used * inner).div_ceil(size).min(inner) };
    format!("[{}{}]", "#".repeat(n), ".".repeat(inner - n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_short_and_readable() {
        assert_eq!(human(999), "999");
        assert_eq!(human(12_345), "12.3K");
        assert_eq!(bytes(10 * 1024 * 1024), "10.0M");
        assert_eq!(ms(61_000), "1m01s");
        assert_eq!(dur(std::time::Duration::from_micros(1250)), "1.25ms");
        assert_eq!(spark(&[0, 1, 2, 4]).chars().count(), 4);
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(fill_bar(8, 16, 6), "[##..]");
    }

    #[test]
    fn narrow_terminals_keep_the_important_columns_in_order() {
        let c = |title, width, prio| Col { title, width, prio, right: false };
        let cols = [c("A", 10, 0), c("B", 10, 2), c("C", 10, 1), c("D", 10, 0)];
        assert_eq!(fit(&cols, 32), [0, 2, 3]);
        assert_eq!(fit(&cols, 100), [0, 1, 2, 3]);
    }
}
