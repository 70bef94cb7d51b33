//! The help overlay (`?`): every key, over whatever view is open.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

/// The keys and what they do, as the overlay lists them.
pub const KEYS: [(&str, &str); 23] = [
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
    ("x", "export the session: Perfetto trace + listing"),
    ("w", "export every session the filter matches"),
    ("f", "follow the newest session / line"),
    ("d", "disable the selected server (MAINT)"),
    ("e", "enable the selected server"),
    ("mouse", "click a tab or a row; wheel scrolls"),
    ("?", "close this help"),
    ("q / Ctrl-C", "stop the proxy and quit"),
    ("", ""),
    ("header", "dropped: span records lost (red)"),
];

/// Draws the overlay centred in `area`.
pub fn draw(f: &mut Frame, area: Rect) {
    let w = area.width.min(64);
    let h = area.height.min(KEYS.len() as u16 + 2);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(
                    format!(" {k:<15}"),
                    Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                Span::raw(v.to_string()),
            ])
        })
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(" haflow keys (? or Esc closes) ")),
        r,
    );
}
