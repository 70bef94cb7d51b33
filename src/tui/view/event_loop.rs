//! The event-loop view: what `run_poll_loop` is doing, one line per turn.
//!
//! Each turn of HAProxy's loop does three things, and each line shows them in order:
//! `wake_expired_tasks` (timers that fired), `process_runnable_tasks` (the tasks it ran,
//! mostly `process_session` for a session), and `_do_poll` (the events `epoll_wait`
//! returned and the fd callbacks that ran: `stream_sock_accept`, `stream_sock_read`,
//! `stream_sock_write`). Turns that only slept are folded into one `idle` line, so a
//! quiet proxy shows as the loop sleeping, not as a wall of empty lines. Above the lane:
//! loop, event and task rates, the scheduler's queues and the pools.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::state::{Call, LaneEntry, State};
use crate::tui::view::{ViewState, human, spark, tail_range};

fn call_text(calls: &[Call], more: u32) -> String {
    let mut parts: Vec<String> = calls
        .iter()
        .map(|c| {
            let mut s = c.name.to_string();
            if let Some(id) = c.sess {
                s.push_str(&format!("#{id}"));
            }
            if let Some(side) = c.side {
                s.push('/');
                s.push_str(side);
            }
            s
        })
        .collect();
    if more > 0 {
        parts.push(format!("+{more}"));
    }
    parts.join(" ")
}

/// The line of one lane entry.
pub fn entry_line(e: &LaneEntry) -> Line<'static> {
    let dim = Style::default().fg(Color::DarkGray);
    let at = |d: std::time::Duration| Span::styled(format!("{:>9.3}s ", d.as_secs_f64()), dim);
    match e {
        LaneEntry::Turn(t) => {
            let mut spans = vec![at(t.at)];
            if t.woken > 0 {
                spans.push(Span::styled(format!("timers {} ", t.woken), Style::default().fg(Color::Yellow)));
            }
            if t.run_queue > 0 || !t.tasks.is_empty() {
                spans.push(Span::styled(format!("tasks {}", t.run_queue), Style::default().fg(Color::Cyan)));
                spans.push(Span::raw(format!(": {} ", call_text(&t.tasks, t.tasks_more))));
            }
            spans.push(Span::styled(format!("fds {}", t.events), Style::default().fg(Color::Green)));
            if !t.io.is_empty() {
                // No event but callbacks ran: fds already known ready, run from the fd cache
                // (speculative I/O).
                let cached = if t.events == 0 { " cached" } else { "" };
                spans.push(Span::raw(format!("{cached}: {}", call_text(&t.io, t.io_more))));
            } else if t.events > 0 {
                spans.push(Span::styled(" (no callback)", dim));
            }
            Line::from(spans)
        }
        LaneEntry::Idle { turns, from, to } => {
            let plural = if *turns == 1 { "" } else { "s" };
            let slept = to.saturating_sub(*from);
            let mut text = format!("idle: {turns} turn{plural} with nothing ready in _do_poll");
            if !slept.is_zero() {
                text.push_str(&format!(" (slept {:.1}s)", slept.as_secs_f64()));
            }
            Line::from(vec![at(*from), Span::styled(text, dim)])
        }
        LaneEntry::Root { name, fields, at: t } => {
            let f: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Line::from(vec![
                at(*t),
                Span::styled(
                    name.to_string(),
                    Style::default().fg(Color::Magenta).add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(" {}", f.join(" "))),
            ])
        }
    }
}

/// Draws the view; returns the lane's height.
pub fn draw(f: &mut Frame, area: Rect, st: &State, vs: &ViewState) -> u16 {
    let [top, lane] = Layout::vertical([Constraint::Length(4), Constraint::Min(1)]).areas(area);
    let dim = Style::default().fg(Color::DarkGray);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let sec = st.now_sec();
    let sw = (area.width.saturating_sub(54) / 3).clamp(4, 30) as usize;
    let rate = |label: &str, s: &crate::tui::state::Series| {
        vec![
            Span::styled(format!("{label} "), dim),
            Span::styled(format!("{:<5}", human(s.rate(sec))), bold),
            Span::styled(format!("{} ", spark(&s.last(sec, sw))), Style::default().fg(Color::Cyan)),
        ]
    };
    let mut l1 = rate("loops/s", &st.loop_rate);
    l1.extend(rate("events/s", &st.event_rate));
    l1.extend(rate("tasks/s", &st.task_rate));
    let mut lines = vec![Line::from(l1)];
    if let Some(s) = &st.snap {
        lines.push(Line::from(vec![
            Span::styled("run queue ", dim),
            Span::styled(s.run_queue.to_string(), bold),
            Span::styled("  timers ", dim),
            Span::raw(s.wait_queue.to_string()),
            Span::styled("  tasks ", dim),
            Span::raw(s.nb_tasks.to_string()),
            Span::styled("  fds ", dim),
            Span::raw(s.fds.to_string()),
            Span::styled("  loops ", dim),
            Span::raw(human(s.activity.loops)),
            Span::styled("  feed drops ", dim),
            Span::raw(human(st.dropped_feed)),
        ]));
        let mut pools = vec![Span::styled("pools (used/allocated) ", dim)];
        for p in &s.pools {
            pools.push(Span::raw(format!("{} {}/{}", p.name, p.used, p.allocated)));
            if p.failed > 0 {
                pools.push(Span::styled(format!(" failed {}", p.failed), Style::default().fg(Color::Red)));
            }
            pools.push(Span::raw("  "));
        }
        lines.push(Line::from(pools));
    } else if st.replay.is_some() {
        lines.push(Line::styled("a replayed trace: no copy of the proxy's queues and pools", dim));
        lines.push(Line::styled(
            if st.lane_from_calls {
                "turns rebuilt from the sessions' calls (tasks before I/O); --trace-level developer records the loop's own spans"
            } else {
                "turns as the loop's own spans recorded them"
            },
            Style::default().fg(Color::Yellow),
        ));
    } else {
        lines.push(Line::styled("no snapshot yet", dim));
        lines.push(Line::raw(""));
    }
    lines.push(Line::styled(
        "per turn: timers=wake_expired_tasks tasks=process_runnable_tasks fds=_do_poll",
        dim,
    ));
    f.render_widget(Paragraph::new(lines), top);

    let (range, back) = tail_range(st.lane.len(), lane.height as usize, vs.lane_back);
    let mut out: Vec<Line> = st.lane.range(range).map(entry_line).collect();
    if out.is_empty() {
        out.push(Line::styled("no loop span yet (they are TRACE-level spans of run_poll_loop)", dim));
    }
    if back > 0 {
        out.push(Line::styled(
            format!("-- {back} newer lines below (f: follow) --"),
            Style::default().fg(Color::Yellow),
        ));
    }
    f.render_widget(Paragraph::new(out), lane);
    lane.height
}
