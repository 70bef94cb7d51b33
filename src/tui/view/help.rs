//! The help overlay (`?`): every key, then a legend of what the screens abbreviate
//! (termination states, `SI_ST_*` states, `BF_*` flags, analyser bits), over whatever view
//! is open. It scrolls (`j`/`k`) when the terminal is shorter than the text.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// The keys and what they do, as the overlay lists them.
pub const KEYS: [(&str, &str); 25] = [
    ("Tab / S-Tab", "next / previous view"),
    ("1..5", "Proxies Sessions Detail Event-loop Logs"),
    ("up/down j/k", "move; PgUp/PgDn, Home/End (g/G)"),
    ("Enter", "open the selected session"),
    ("Esc", "back out (detail, filter, help)"),
    ("space", "pause the display (collection goes on)"),
    ("/", "filter: /api status:5xx term:sH src:IP srv:s1 live"),
    ("left/right h/l", "sort sessions by another column"),
    ("i", "invert the sort order"),
    ("detail: n / p", "next / previous request of the session"),
    ("detail: Enter", "fold or unfold a request or a span (left/right)"),
    ("detail: z", "zoom the timeline on the request or span"),
    ("detail: /", "search span names and fields"),
    ("logs: left/right", "scroll long lines sideways"),
    ("x", "export the session: Perfetto trace + listing"),
    ("w", "export every session the filter matches"),
    ("f", "follow the newest session / line"),
    ("d", "disable the selected server (MAINT)"),
    ("e", "enable the selected server"),
    ("mouse", "click a tab or a row; wheel scrolls"),
    ("replay: space", "pause or play; . steps, [ ] seek 5 s, { } 1 min"),
    ("?", "close this help (j/k scroll it)"),
    ("q / Ctrl-C", "stop the proxy and quit"),
    ("", ""),
    ("header", "dropped: span records lost (red); keep: what was kept under load"),
];

/// What the screens abbreviate, by topic: a title, then `(word, meaning)` rows.
pub const LEGEND: [(&str, &[(&str, &str)]); 4] = [
    (
        "Termination state (TERM, log lines): 4 letters, HAProxy's",
        &[
            (
                "1st: who",
                "C client aborted, S server aborted or refused, P the proxy (deny, error), R a resource ran out, I internal error, D server down, L answered locally, K killed by admin, c/s client/server timeout, - nobody (normal end)",
            ),
            (
                "2nd: when",
                "R reading the request, Q queued, C connecting, H waiting for the response headers, D data, L last data, T tarpit, - normal end",
            ),
            ("3rd, 4th", "persistence cookie (- when none)"),
            ("----", "a clean end; anything else is shown in red"),
        ],
    ),
    (
        "SI_ST_* (si[0] the client side, si[1] the server side)",
        &[
            ("INI", "not used yet"),
            ("REQ", "a connection is wanted"),
            ("QUE", "waiting in a queue"),
            ("TAR", "waiting before retrying a connect"),
            ("ASS", "server assigned, not connecting yet"),
            ("CON", "connecting"),
            ("CER", "the connect failed"),
            ("EST", "established"),
            ("DIS", "closing"),
            ("CLO", "closed"),
        ],
    ),
    (
        "BF_* (flags of the req and rep buffers)",
        &[
            ("SHUTR/SHUTW", "the read/write side is shut (_NOW: asked to)"),
            ("READ_NULL", "the peer closed (read 0)"),
            ("READ/WRITE_PARTIAL", "bytes were read/written"),
            ("*_ERROR, *_TIMEOUT", "an error, a timeout on that side"),
            ("FULL / OUT_EMPTY", "no room left / nothing to send"),
            ("AUTO_CONNECT", "connect to the server on the first data"),
            ("AUTO_CLOSE", "shut the write side when the read side shuts"),
            ("READ_NOEXP", "no read timeout for now"),
            ("DONT_READ", "reading paused"),
            ("NEVER_WAIT, EXPECT_MORE", "send at once / more follows (MSG_MORE)"),
        ],
    ),
    (
        "Analysers (AN_REQ_*, AN_RES_*: req->analysers, rep->analysers)",
        &[(
            "bits",
            "the analysers still to run on that buffer; each one is a span named after its function (http_wait_for_request...)",
        )],
    ),
];

fn key_lines() -> Vec<Line<'static>> {
    let key = Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    KEYS.iter()
        .map(|(k, v)| Line::from(vec![Span::styled(format!(" {k:<17}"), key), Span::raw(v.to_string())]))
        .collect()
}

fn legend_lines() -> Vec<Line<'static>> {
    let key = Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let head = Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let mut out = Vec::new();
    for (title, rows) in LEGEND {
        if !out.is_empty() {
            out.push(Line::raw(""));
        }
        out.push(Line::styled(format!(" {title}"), head));
        for (w, meaning) in rows {
            out.push(Line::from(vec![Span::styled(format!("  {w}: "), key), Span::raw(meaning.to_string())]));
        }
    }
    out
}

/// One box of `text` in `r`, scrolled down `scroll` rows; returns how far it can scroll.
fn draw_box(f: &mut Frame, r: Rect, text: Vec<Line<'static>>, scroll: u16, title: &str) -> u16 {
    // Rows once wrapped in the box (borders take two columns).
    let inner = r.width.saturating_sub(2).max(1) as usize;
    let rows: u16 = text.iter().map(|l| l.width().max(1).div_ceil(inner) as u16).sum();
    let max = rows.saturating_sub(r.height.saturating_sub(2));
    let title = if max > 0 {
        format!(" {title} (j/k scroll, ? or Esc closes) ")
    } else {
        format!(" {title} (? or Esc closes) ")
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .scroll((scroll.min(max), 0))
            .block(Block::default().borders(Borders::ALL).title(title)),
        r,
    );
    max
}

/// Draws the overlay in `area`: on a wide terminal the keys and the legend side by side,
/// otherwise one box with the keys then the legend; `scroll` moves the legend (or the one
/// box) down. Returns the rows it can scroll at most.
pub fn draw(f: &mut Frame, area: Rect, scroll: u16) -> u16 {
    if area.width >= 150 {
        let kw = 70.min(area.width / 2);
        let lw = (area.width - kw).min(88);
        let x = area.x + (area.width - kw - lw) / 2;
        let kh = area.height.min(KEYS.len() as u16 + 2);
        draw_box(f, Rect { x, y: area.y, width: kw, height: kh }, key_lines(), 0, "haflow keys");
        let r = Rect { x: x + kw, y: area.y, width: lw, height: area.height };
        return draw_box(f, r, legend_lines(), scroll, "legend");
    }
    let w = area.width.min(84);
    let mut text = key_lines();
    text.push(Line::raw(""));
    text.extend(legend_lines());
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y, width: w, height: area.height };
    draw_box(f, r, text, scroll, "haflow keys and legend")
}
