//! The walkthrough screen: a header with the step and where the run is, the step's text
//! (left) and the proxy's state at the stop (right), and a footer with the keys.
//!
//! The state pane draws a `Stop` field by field rather than through `Stop::render`, to
//! colour what a learner looks for: the function names of the span stack, the states
//! (`SI_ST_*`, `LI_*`), the flags (`BF_*`, `SI_FL_*`, `SN_*`, `TASK_*`) and the
//! analysers (`AN_*`). Long lines wrap, lists of flags after a `|`. Both panes scroll;
//! their heights and lengths go back to the caller (`WalkHits`) so that scrolling stops at
//! the end. Like the other views, this reads nothing but its argument.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::scenario::spec::ARTICLE;
use crate::tui::view::markdown::{self, Atom, Join};
use crate::tui::walkthrough::{Pane, Phase, Walk};
use crate::walkthrough::Stop;

/// One pane as drawn: its rows and its length in lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaneHit {
    /// Rows inside the border.
    pub rows: usize,
    /// Lines of content.
    pub lines: usize,
}

/// What the last frame drew, for scrolling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkHits {
    /// The text pane.
    pub text: PaneHit,
    /// The state pane.
    pub state: PaneHit,
}

/// The keys, as the footer lists them.
pub const KEYS: &str = "n/space next step  c continue  b restart  Tab pane  ↑↓ PgUp PgDn scroll  q quit";

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

/// The style of a word of the state: states, flags and analysers by their prefixes.
fn word_style(w: &str) -> Style {
    let w = w.trim_start_matches(['{', '(', '"']);
    if w.starts_with("SI_ST_") || w.starts_with("LI_") {
        Style::default().fg(Color::Green).add_modifier(Modifier::BOLD)
    } else if w.starts_with("AN_") {
        Style::default().fg(Color::Magenta)
    } else if ["BF_", "SI_FL_", "SN_", "TASK_"].iter().any(|p| w.starts_with(p)) {
        Style::default().fg(Color::Yellow)
    } else {
        Style::default()
    }
}

/// The atoms of a line of state: words styled by `word_style` (after a `key=`), lists of
/// flags breakable after each `|`, spaces kept.
fn state_atoms(line: &str, base: Style) -> Vec<Atom> {
    let mut out = Vec::new();
    // Split at each space, so that runs of spaces (aligned columns, a buffer's bytes)
    // come back as they were: an empty word is one more space.
    for word in line.split(' ') {
        if word.is_empty() {
            out.push(Atom::new("", base, Join::Space));
            continue;
        }
        let (key, value) = match word.split_once('=') {
            Some((k, v)) if !k.is_empty() => (Some(format!("{k}=")), v),
            _ => (None, word),
        };
        let mut join = Join::Space;
        if let Some(k) = key {
            out.push(Atom::new(k, base, Join::Space));
            join = Join::Glued;
        }
        for p in value.split_inclusive('|').filter(|p| !p.is_empty()) {
            out.push(Atom::new(p, base.patch(word_style(p)), join));
            join = Join::Break;
        }
    }
    out
}

/// The state pane's lines for `stop`, `max` cells wide.
pub fn stop_lines(stop: &Stop, max: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut head = vec![Atom::new("stopped in:", bold(), Join::Space)];
    head.extend(span_atoms(&stop.span, true));
    out.extend(markdown::wrap(&head, max, Span::raw(""), 4));
    out.push(Line::default());
    out.push(Line::styled("span stack (outermost first)", bold()));
    let last = stop.stack.len().saturating_sub(1);
    for (depth, s) in stop.stack.iter().enumerate() {
        let indent = 2 + 2 * depth.min(8);
        out.extend(markdown::wrap(
            &span_atoms(s, depth == last),
            max,
            Span::raw(" ".repeat(indent)),
            indent + 4,
        ));
    }
    for (title, lines) in &stop.state {
        out.push(Line::default());
        out.push(Line::styled(title.clone(), bold()));
        for l in lines {
            out.extend(markdown::wrap(&state_atoms(l, Style::default()), max, Span::raw("  "), 6));
        }
    }
    out
}

/// A span's listing line (`name {field=value, ...}`): the name in colour (reversed for the
/// step's own span), the fields as state.
fn span_atoms(line: &str, current: bool) -> Vec<Atom> {
    let (name, fields) = line.split_once(' ').unwrap_or((line, ""));
    let mut style = Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    if current {
        style = style.add_modifier(Modifier::REVERSED);
    }
    let mut out = vec![Atom::new(name, style, Join::Space)];
    out.extend(state_atoms(fields, Style::default()));
    out
}

/// The text pane's lines: the step's Markdown, or what the screen is waiting for.
fn text_lines(w: &Walk, max: usize) -> Vec<Line<'static>> {
    match (w.phase, w.step()) {
        (Phase::Done, _) => done_text(w, max),
        (_, Some(step)) => markdown::render(&format!("{}\n\n{}", step.text, article_note()), max),
        (_, None) => markdown::render(
            &format!(
                "Starting the walkthrough's scenario: haflow reads its configuration, and the \
                 proxy stops at step 1.\n\n{}",
                article_note()
            ),
            max,
        ),
    }
}

/// What "Article: §2.1" refers to, under every step.
fn article_note() -> String {
    format!("*Article: §2.1* is section 2.1 of the article, {ARTICLE}.")
}

/// The recap shown when the run is over: which steps were seen, and the keys.
fn done_text(w: &Walk, max: usize) -> Vec<Line<'static>> {
    let total = w.steps.len();
    let mut md = String::from("## The walkthrough is done\n\n");
    if w.continued {
        md.push_str(&format!(
            "You stopped at {} of the {total} steps, then let the session run to its end (`c`).\n\n",
            w.reached
        ));
    } else {
        md.push_str(&format!("You stopped at {} of the {total} steps.\n\n", w.reached));
    }
    for s in &w.steps {
        md.push_str(&format!("- {}. {} (`{}`)\n", s.number, s.title, s.span));
    }
    md.push_str("\nPress `b` to walk through it again from step 1, `q` to quit.\n");
    markdown::render(&md, max)
}

/// The state pane's lines: the stop, or the scenario's outcome once the run is over.
fn state_lines(w: &Walk, max: usize) -> Vec<Line<'static>> {
    if w.phase == Phase::Done {
        return outcome_lines(w, max);
    }
    match &w.stop {
        Some(stop) => stop_lines(stop, max),
        None => vec![Line::styled("(the proxy has not stopped yet)", dim())],
    }
}

fn outcome_lines(w: &Walk, max: usize) -> Vec<Line<'static>> {
    let good = Style::default().fg(Color::Green).add_modifier(Modifier::BOLD);
    let bad = Style::default().fg(Color::Red).add_modifier(Modifier::BOLD);
    let para = |text: &str, style: Style| markdown::wrap(&state_atoms(text, style), max, Span::raw(""), 2);
    let mut out = Vec::new();
    match &w.outcome {
        Some(Ok(o)) => {
            if o.passed() {
                out.extend(para("the walkthrough's scenario: all expectations met", good));
            } else {
                out.extend(para(
                    &format!("the walkthrough's scenario: {} expectation(s) not met", o.failures.len()),
                    bad,
                ));
                for f in &o.failures {
                    out.extend(markdown::wrap(&state_atoms(f, Style::default()), max, Span::raw("- "), 2));
                }
            }
            for (title, lines) in [("what the client did and got", &o.report), ("log lines", &o.logs)] {
                out.push(Line::default());
                out.push(Line::styled(title, bold()));
                for l in lines {
                    out.extend(markdown::wrap(&state_atoms(l, Style::default()), max, Span::raw("  "), 4));
                }
            }
        }
        Some(Err(e)) => out.extend(para(&format!("the walkthrough's scenario did not run: {e}"), bad)),
        None => {}
    }
    out
}

/// Draws `lines` in a bordered pane, scrolled to `scroll`; returns what was drawn.
fn pane(
    f: &mut Frame,
    area: Rect,
    title: String,
    lines: Vec<Line<'static>>,
    scroll: usize,
    focused: bool,
) -> PaneHit {
    let rows = area.height.saturating_sub(2) as usize;
    let hit = PaneHit { rows, lines: lines.len() };
    let scroll = scroll.min(lines.len().saturating_sub(rows));
    let border = if focused { Style::default().fg(Color::Cyan) } else { dim() };
    let mut block =
        Block::default().borders(Borders::ALL).border_style(border).title(Span::styled(title, bold()));
    if lines.len() > rows {
        // Say that there is more, and where the view is.
        let end = (scroll + rows).min(lines.len());
        let more = if end < lines.len() { " ↓" } else { "" };
        block = block.title_bottom(Span::styled(
            format!(" lines {}-{end} of {}{more} ", scroll + 1, lines.len()),
            Style::default().fg(Color::Yellow),
        ));
    }
    let shown: Vec<Line> = lines.into_iter().skip(scroll).take(rows).collect();
    f.render_widget(Paragraph::new(shown).block(block), area);
    hit
}

fn header(w: &Walk) -> Line<'static> {
    let total = w.steps.len();
    let mut spans = vec![Span::styled("haflow walkthrough  ", bold())];
    if let Some(step) = w.step()
        && w.phase != Phase::Done
    {
        spans.push(Span::styled(format!("step {}/{total}: ", step.number), bold()));
        spans.push(Span::styled(
            step.title.clone(),
            Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw("  "));
    }
    let tag =
        |text: String, bg: Color| Span::styled(format!(" {text} "), Style::default().fg(Color::Black).bg(bg));
    spans.push(match w.phase {
        Phase::Starting => tag("starting".into(), Color::Cyan),
        Phase::Paused => {
            let span = w.step().map_or("", |s| s.span.as_str());
            tag(format!("proxy paused in {span}"), Color::Yellow)
        }
        Phase::Running => {
            let next = w.stop.as_ref().map_or(1, |s| s.index + 2);
            tag(format!("running to step {next}..."), Color::Cyan)
        }
        Phase::Finishing => tag("running to the end...".into(), Color::Cyan),
        Phase::Done if w.passed() => tag("done: all expectations met".into(), Color::Green),
        Phase::Done => tag("done: the scenario failed".into(), Color::Red),
    });
    Line::from(spans)
}

/// Draws the screen; returns the panes as drawn.
pub fn draw(f: &mut Frame, w: &Walk) -> WalkHits {
    let area = f.area();
    let mut hits = WalkHits::default();
    if area.width < 30 || area.height < 8 {
        f.render_widget(Paragraph::new("haflow: terminal too small"), area);
        return hits;
    }
    let [head, body, foot] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(area);
    f.render_widget(Paragraph::new(header(w)), head);
    // Side by side when there is room for two readable columns, else one above the other.
    let [left, right] = if body.width >= 80 {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body)
    } else {
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body)
    };
    let text_title = match (w.phase, w.step()) {
        (Phase::Done, _) => " walkthrough: done ".to_string(),
        (_, Some(step)) => format!(" walkthrough/{} ", step.file),
        (_, None) => " walkthrough ".to_string(),
    };
    let state_title = match (w.phase, &w.stop) {
        (Phase::Done, _) => " the scenario's outcome ".to_string(),
        (_, Some(stop)) => format!(" proxy state at step {} ", stop.index + 1),
        (_, None) => " proxy state ".to_string(),
    };
    let inner = |r: Rect| r.width.saturating_sub(2) as usize;
    hits.text = pane(f, left, text_title, text_lines(w, inner(left)), w.text_scroll, w.focus == Pane::Text);
    hits.state =
        pane(f, right, state_title, state_lines(w, inner(right)), w.state_scroll, w.focus == Pane::State);
    let footer = match &w.flash {
        Some(msg) => Line::styled(msg.clone(), Style::default().fg(Color::Yellow)),
        None => Line::styled(KEYS, dim()),
    };
    f.render_widget(Paragraph::new(footer), foot);
    hits
}
