//! The log pane: traffic log lines (`option tcplog`/`httplog`), `-d` debug lines, the
//! proxy's warnings and errors (`tracing` events), and the UI's own messages, newest at
//! the bottom. While the UI owns the terminal nothing else may write to it, so this is
//! where everything the proxy would have printed goes. Lines longer than the terminal (an
//! httplog line is about 130 characters: at 80 columns the status and the request are
//! past the edge) scroll sideways with left/right; the time and kind stay in place.

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
            let mut text = Span::raw(l.text.chars().skip(vs.log_x).collect::<String>());
            if vs.log_x > 0 {
                text.content = format!("«{}", text.content).into();
            }
            Line::from(vec![
                Span::styled(format!("{:>8.1}s {tag} ", l.at.as_secs_f64()), Style::default().fg(color)),
                text,
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
