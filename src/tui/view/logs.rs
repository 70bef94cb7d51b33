//! The log pane: traffic log lines (`option tcplog`/`httplog`), `-d` debug lines, the
//! proxy's warnings and errors (`tracing` events), and the UI's own messages, newest at
//! the bottom. While the UI owns the terminal nothing else may write to it, so this is
//! where everything the proxy would have printed goes.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::snapshot::LogKind;
use crate::tui::state::State;
use crate::tui::view::{ViewState, tail_range};

/// Draws the view.
pub fn draw(f: &mut Frame, area: Rect, st: &State, vs: &ViewState) {
    let (range, back) = tail_range(st.logs.len(), area.height as usize, vs.log_back);
    let mut lines: Vec<Line> = st
        .logs
        .range(range)
        .map(|l| {
            let (tag, color) = match l.kind {
                LogKind::Log => ("log", Color::Green),
                LogKind::Debug => ("dbg", Color::Blue),
                LogKind::Event => ("evt", Color::Red),
                LogKind::Ui => ("ui ", Color::Yellow),
            };
            Line::from(vec![
                Span::styled(format!("{:>8.1}s {tag} ", l.at.as_secs_f64()), Style::default().fg(color)),
                Span::raw(l.text.clone()),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled(
            "no log line yet (log lines need 'log' targets and 'option tcplog' or 'option httplog')",
            Style::default().fg(Color::DarkGray),
        ));
    }
    if back > 0 {
        lines.push(Line::styled(
            format!("-- {back} newer lines below (f: follow) --"),
            Style::default().fg(Color::Yellow),
        ));
    }
    f.render_widget(Paragraph::new(lines), area);
}
