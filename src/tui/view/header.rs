//! The header: two lines of process-wide numbers, like the top of `top` or hatop.
//!
//! Line 1: uptime, current/total sessions (`actconn`/`totalconn`), connection and request
//! rates with their sparklines, PAUSED when the display is frozen, STOPPED once the
//! proxy's loop has ended (a finished scenario). Line 2: the scheduler's run queue,
//! poll-loop iterations, tasks, pool use, file descriptors, what the keeper kept under
//! load (its policy, sessions kept whole and sampled out: `trace::keeper`) and the number
//! of span records dropped before it (red when non-zero: the views are then missing part
//! of the picture). A replay's header says where the replay stands instead.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::trace::keeper::POLICY;
use crate::tui::state::{ReplayPos, State};
use crate::tui::view::{ViewState, human, ms, spark};

/// Draws the header in `area` (two rows).
pub fn draw(f: &mut Frame, area: Rect, st: &State, vs: &ViewState) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let dim = Style::default().fg(Color::DarkGray);
    if let Some(r) = &st.replay
        && st.snap.is_none()
    {
        replay_header(f, area, st, r);
        return;
    }
    let Some(snap) = &st.snap else {
        let mut l1 =
            vec![Span::styled("haflow ", bold), Span::raw("waiting for the proxy's first snapshot...")];
        if vs.paused {
            l1.push(Span::styled(" PAUSED ", Style::default().fg(Color::Black).bg(Color::Yellow)));
        }
        f.render_widget(Paragraph::new(vec![Line::from(l1), dropped_line(st)]), area);
        return;
    };
    let sec = st.now_sec();
    // A stopped proxy's clock stopped with it.
    let ticking = if snap.stopped { 0 } else { st.now.saturating_sub(st.snap_at).as_millis() as u64 };
    let uptime = snap.uptime_ms + ticking;
    // Room for the two sparklines: what the fixed text leaves, split in two.
    let fixed = 62u16 + if vs.paused { 8 } else { 0 };
    let sw = (area.width.saturating_sub(fixed) / 2).clamp(4, 40) as usize;
    let mut l1 = vec![
        Span::styled("haflow", bold),
        Span::styled(" up ", dim),
        Span::raw(ms(uptime)),
        Span::styled("  sess ", dim),
        Span::styled(snap.actconn.to_string(), bold),
        Span::raw(format!("/{}", human(snap.totalconn))),
        Span::styled("  conn/s ", dim),
        Span::styled(format!("{:<4}", human(st.conn_rate.rate(sec))), bold),
        Span::styled(spark(&st.conn_rate.last(sec, sw)), Style::default().fg(Color::Cyan)),
        Span::styled("  req/s ", dim),
        Span::styled(format!("{:<4}", human(st.req_rate.rate(sec))), bold),
        Span::styled(spark(&st.req_rate.last(sec, sw)), Style::default().fg(Color::Magenta)),
    ];
    if vs.paused {
        l1.push(Span::raw(" "));
        l1.push(Span::styled(
            " PAUSED ",
            Style::default().fg(Color::Black).bg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    if snap.stopped {
        l1.push(Span::styled(" STOPPED", Style::default().fg(Color::Red)));
    } else if snap.stopping {
        l1.push(Span::styled(" STOPPING", Style::default().fg(Color::Red)));
    }
    let (used, allocated) = snap.pools.iter().fold((0, 0), |(u, a), p| (u + p.used, a + p.allocated));
    let wide = area.width >= 120;
    let mut l2 = vec![Span::styled("runq ", dim), Span::styled(snap.run_queue.to_string(), bold)];
    if wide {
        l2.extend([Span::styled("  loops ", dim), Span::raw(human(snap.activity.loops))]);
    }
    l2.extend([Span::styled("  tasks ", dim), Span::raw(snap.nb_tasks.to_string())]);
    if wide {
        l2.extend([Span::styled("  pools ", dim), Span::raw(format!("{used}/{allocated}"))]);
    }
    l2.extend([Span::styled("  fds ", dim), Span::raw(snap.fds.to_string()), Span::raw("  ")]);
    if let Some(k) = &st.keep {
        // What the keeper passed on under load (`trace::keeper`).
        let policy = if wide { POLICY } else { "failed+followed+sample" };
        l2.push(Span::styled(format!("keep {policy}: "), dim));
        l2.push(Span::raw(format!("{} whole", human(k.kept_whole))));
        let out = Style::default().fg(if k.sampled_out > 0 { Color::Yellow } else { Color::DarkGray });
        l2.push(Span::styled(format!(", {} sampled out  ", human(k.sampled_out)), out));
    }
    l2.extend(dropped_line(st).spans);
    f.render_widget(Paragraph::new(vec![Line::from(l1), Line::from(l2)]), area);
}

/// A replay's header: the file, the clock against the trace's length, and what the trace
/// held so far.
fn replay_header(f: &mut Frame, area: Rect, st: &State, r: &ReplayPos) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let dim = Style::default().fg(Color::DarkGray);
    let secs = crate::tui::view::dur;
    let state = if r.at >= r.len {
        Span::styled(" END ", Style::default().fg(Color::Black).bg(Color::Cyan))
    } else if r.paused {
        Span::styled(
            " PAUSED ",
            Style::default().fg(Color::Black).bg(Color::Yellow).add_modifier(Modifier::BOLD),
        )
    } else {
        Span::styled(format!(" ▶ {}x ", r.speed), Style::default().fg(Color::Black).bg(Color::Green))
    };
    let live = st.sessions.values().filter(|e| !e.closed).count();
    let l1 = vec![
        Span::styled("haflow replay ", bold),
        Span::raw(r.file.clone()),
        Span::styled("  at ", dim),
        Span::styled(secs(r.at), bold),
        Span::raw(format!(" / {}  ", secs(r.len))),
        state,
    ];
    let l2 = vec![
        Span::styled("sessions ", dim),
        Span::styled(format!("{live} open, {} seen", st.sessions.len()), bold),
        Span::styled("  loop turns ", dim),
        Span::raw(human(st.turns_seen)),
        Span::styled("  space pause/play  . step  [ ] 5 s  { } 1 min", dim),
    ];
    f.render_widget(Paragraph::new(vec![Line::from(l1), Line::from(l2)]), area);
}

fn dropped_line(st: &State) -> Line<'static> {
    let n = st.dropped_records;
    let style = if n > 0 {
        Style::default().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(Color::DarkGray)
    };
    Line::from(Span::styled(format!("dropped {}", human(n)), style))
}
