//! Input: terminal events become intents.
//!
//! Keys mean different things while the help overlay is open or a filter is being typed,
//! so the mapping takes the input `Mode` and returns an `Intent`; the UI loop applies
//! intents to the view state (and sends commands to the proxy for `d`/`e`). The
//! walkthrough screen has keys of its own (`WalkIntent`). Keeping the mappings pure
//! functions makes the key bindings testable without a terminal.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind};

use crate::tui::view::ViewKind;

/// What the keyboard is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Browsing.
    Normal,
    /// The help overlay is open.
    Help,
    /// A filter is being typed after `/`.
    Filter,
}

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// `q`, Ctrl-C: stop the proxy and leave.
    Quit,
    /// Up arrow, `k`, wheel up.
    Up,
    /// Down arrow, `j`, wheel down.
    Down,
    /// Page Up.
    PageUp,
    /// Page Down.
    PageDown,
    /// Home, `g`.
    Top,
    /// End, `G`.
    Bottom,
    /// Enter: open the selected session.
    Open,
    /// Esc: back out (close help, leave the detail, clear the filter).
    Back,
    /// Tab.
    NextView,
    /// Shift-Tab.
    PrevView,
    /// `1`..`5`.
    Show(ViewKind),
    /// Space: freeze or unfreeze the display (collection goes on).
    Pause,
    /// `?`.
    Help,
    /// `d`: put the selected server in maintenance.
    Disable,
    /// `e`: take the selected server out of maintenance.
    Enable,
    /// `/`: start typing a filter.
    FilterStart,
    /// A character of the filter.
    FilterChar(char),
    /// Backspace in the filter.
    FilterBackspace,
    /// Enter in the filter: keep it.
    FilterDone,
    /// Esc in the filter: drop it.
    FilterCancel,
    /// Left arrow, `h`: sort by the previous column.
    SortPrev,
    /// Right arrow, `l`: sort by the next column.
    SortNext,
    /// `i`: invert the sort order.
    SortInvert,
    /// `f`: follow the newest session (or the newest loop turn / log line).
    Follow,
    /// `n`: the next request (detail view).
    NextRequest,
    /// `p`: the previous request (detail view).
    PrevRequest,
    /// `z`: zoom the timeline on the selected request or span, or back out (detail view).
    Zoom,
    /// `x`: write the selected session as a Chrome trace and a call-flow listing.
    Export,
    /// `w`: write every session the filter matches.
    ExportAll,
    /// `.`: replay up to the next span's start, and pause (`haflow replay`).
    Step,
    /// `[`/`]` (5 s), `{`/`}` (1 min): move the replay clock by this many seconds.
    Seek(i32),
    /// A left click at a cell.
    Click {
        /// Column.
        x: u16,
        /// Row.
        y: u16,
    },
    /// The terminal changed size: redraw.
    Resize,
}

/// The intent of a terminal event in `mode`, if any.
pub fn intent(ev: &Event, mode: Mode) -> Option<Intent> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => key_intent(k, mode),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Intent::Click { x: m.column, y: m.row }),
            MouseEventKind::ScrollUp => Some(Intent::Up),
            MouseEventKind::ScrollDown => Some(Intent::Down),
            _ => None,
        },
        Event::Resize(..) => Some(Intent::Resize),
        _ => None,
    }
}

fn key_intent(k: &KeyEvent, mode: Mode) -> Option<Intent> {
    if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
        return Some(Intent::Quit);
    }
    match mode {
        Mode::Filter => match k.code {
            KeyCode::Enter => Some(Intent::FilterDone),
            KeyCode::Esc => Some(Intent::FilterCancel),
            KeyCode::Backspace => Some(Intent::FilterBackspace),
            KeyCode::Char(c) => Some(Intent::FilterChar(c)),
            _ => None,
        },
        Mode::Help => match k.code {
            KeyCode::Char('q') => Some(Intent::Quit),
            KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter => Some(Intent::Help),
            // The overlay scrolls on a short terminal.
            KeyCode::Up | KeyCode::Char('k') => Some(Intent::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Intent::Down),
            KeyCode::PageUp => Some(Intent::PageUp),
            KeyCode::PageDown => Some(Intent::PageDown),
            _ => None,
        },
        Mode::Normal => Some(match k.code {
            KeyCode::Char('q') => Intent::Quit,
            KeyCode::Up | KeyCode::Char('k') => Intent::Up,
            KeyCode::Down | KeyCode::Char('j') => Intent::Down,
            KeyCode::PageUp => Intent::PageUp,
            KeyCode::PageDown => Intent::PageDown,
            KeyCode::Home | KeyCode::Char('g') => Intent::Top,
            KeyCode::End | KeyCode::Char('G') => Intent::Bottom,
            KeyCode::Enter => Intent::Open,
            KeyCode::Esc => Intent::Back,
            KeyCode::Tab => Intent::NextView,
            KeyCode::BackTab => Intent::PrevView,
            KeyCode::Char(' ') => Intent::Pause,
            KeyCode::Char('?') => Intent::Help,
            KeyCode::Char('d') => Intent::Disable,
            KeyCode::Char('e') => Intent::Enable,
            KeyCode::Char('/') => Intent::FilterStart,
            KeyCode::Left | KeyCode::Char('h') => Intent::SortPrev,
            KeyCode::Right | KeyCode::Char('l') => Intent::SortNext,
            KeyCode::Char('i') => Intent::SortInvert,
            KeyCode::Char('f') => Intent::Follow,
            KeyCode::Char('n') => Intent::NextRequest,
            KeyCode::Char('p') => Intent::PrevRequest,
            KeyCode::Char('z') => Intent::Zoom,
            KeyCode::Char('x') => Intent::Export,
            KeyCode::Char('w') => Intent::ExportAll,
            KeyCode::Char('.') => Intent::Step,
            KeyCode::Char('[') => Intent::Seek(-5),
            KeyCode::Char(']') => Intent::Seek(5),
            KeyCode::Char('{') => Intent::Seek(-60),
            KeyCode::Char('}') => Intent::Seek(60),
            KeyCode::Char(c @ '1'..='5') => Intent::Show(ViewKind::ALL[(c as u8 - b'1') as usize]),
            _ => return None,
        }),
    }
}

/// What the user asked for on the walkthrough screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkIntent {
    /// `n`, space: run to the next step.
    Next,
    /// `c`: run to the end without stopping.
    Continue,
    /// `b`: start again from step 1.
    Restart,
    /// `q`, Ctrl-C: leave (the run finishes first).
    Quit,
    /// Up arrow, `k`: scroll the focused pane up.
    Up,
    /// Down arrow, `j`.
    Down,
    /// Page Up.
    PageUp,
    /// Page Down.
    PageDown,
    /// Home, `g`.
    Top,
    /// End, `G`.
    Bottom,
    /// Tab, left/right arrows: focus the other pane (text or state).
    SwitchPane,
    /// The terminal changed size: redraw.
    Resize,
}

/// The intent of a terminal event on the walkthrough screen, if any.
pub fn walk_intent(ev: &Event) -> Option<WalkIntent> {
    let k = match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => k,
        Event::Resize(..) => return Some(WalkIntent::Resize),
        _ => return None,
    };
    if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
        return Some(WalkIntent::Quit);
    }
    Some(match k.code {
        KeyCode::Char('n') | KeyCode::Char(' ') => WalkIntent::Next,
        KeyCode::Char('c') => WalkIntent::Continue,
        KeyCode::Char('b') => WalkIntent::Restart,
        KeyCode::Char('q') => WalkIntent::Quit,
        KeyCode::Up | KeyCode::Char('k') => WalkIntent::Up,
        KeyCode::Down | KeyCode::Char('j') => WalkIntent::Down,
        KeyCode::PageUp => WalkIntent::PageUp,
        KeyCode::PageDown => WalkIntent::PageDown,
        KeyCode::Home | KeyCode::Char('g') => WalkIntent::Top,
        KeyCode::End | KeyCode::Char('G') => WalkIntent::Bottom,
        KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right => WalkIntent::SwitchPane,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{MouseEvent, MouseEventKind};

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn keys_map_to_intents_by_mode() {
        assert_eq!(intent(&key(KeyCode::Char('j')), Mode::Normal), Some(Intent::Down));
        assert_eq!(intent(&key(KeyCode::Up), Mode::Normal), Some(Intent::Up));
        assert_eq!(intent(&key(KeyCode::Tab), Mode::Normal), Some(Intent::NextView));
        assert_eq!(intent(&key(KeyCode::Char(' ')), Mode::Normal), Some(Intent::Pause));
        assert_eq!(intent(&key(KeyCode::Char('2')), Mode::Normal), Some(Intent::Show(ViewKind::Sessions)));
        assert_eq!(intent(&key(KeyCode::Char('d')), Mode::Normal), Some(Intent::Disable));
        let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        for mode in [Mode::Normal, Mode::Help, Mode::Filter] {
            assert_eq!(intent(&ctrl_c, mode), Some(Intent::Quit), "Ctrl-C quits in {mode:?}");
        }
        // While typing a filter, letters are text, not commands.
        assert_eq!(intent(&key(KeyCode::Char('q')), Mode::Filter), Some(Intent::FilterChar('q')));
        assert_eq!(intent(&key(KeyCode::Esc), Mode::Filter), Some(Intent::FilterCancel));
        // The help overlay closes with ? or Esc and swallows the rest.
        assert_eq!(intent(&key(KeyCode::Esc), Mode::Help), Some(Intent::Help));
        assert_eq!(intent(&key(KeyCode::Char('j')), Mode::Help), Some(Intent::Down), "it scrolls");
        assert_eq!(intent(&key(KeyCode::Char('d')), Mode::Help), None);
    }

    #[test]
    fn mouse_clicks_and_wheel_become_intents() {
        let m = |kind| Event::Mouse(MouseEvent { kind, column: 3, row: 4, modifiers: KeyModifiers::NONE });
        assert_eq!(
            intent(&m(MouseEventKind::Down(MouseButton::Left)), Mode::Normal),
            Some(Intent::Click { x: 3, y: 4 })
        );
        assert_eq!(intent(&m(MouseEventKind::ScrollDown), Mode::Normal), Some(Intent::Down));
        assert_eq!(intent(&Event::Resize(80, 24), Mode::Normal), Some(Intent::Resize));
    }

    #[test]
    fn walkthrough_keys() {
        assert_eq!(walk_intent(&key(KeyCode::Char('n'))), Some(WalkIntent::Next));
        assert_eq!(walk_intent(&key(KeyCode::Char(' '))), Some(WalkIntent::Next));
        assert_eq!(walk_intent(&key(KeyCode::Char('c'))), Some(WalkIntent::Continue));
        assert_eq!(walk_intent(&key(KeyCode::Char('b'))), Some(WalkIntent::Restart));
        assert_eq!(walk_intent(&key(KeyCode::PageDown)), Some(WalkIntent::PageDown));
        assert_eq!(walk_intent(&key(KeyCode::Tab)), Some(WalkIntent::SwitchPane));
        let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(walk_intent(&ctrl_c), Some(WalkIntent::Quit), "Ctrl-C quits; c alone continues");
        assert_eq!(walk_intent(&key(KeyCode::Char('x'))), None);
    }
}
