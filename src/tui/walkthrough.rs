//! The walkthrough screen (`haflow walkthrough`): one HTTP session through haflow, paused
//! at each step, with the step's text on the left and the proxy's state at that moment on
//! the right.
//!
//! `walkthrough::start` runs the walkthrough's scenario with a stepper on the proxy
//! thread. At each step the stepper sends a `Stop` (the stack of entered spans and the
//! state it copied) and the whole proxy waits for the answer, as in a debugger. This
//! module is that answer's user interface, split like the rest of the UI: `Walk` holds
//! what was received (no terminal, no channel: `apply` turns a `WalkIntent` into a
//! `WalkEffect`), `view::walkthrough` draws it, and `run` is the loop that reads the keys
//! and the stops and carries the effects to the channels (`Resume::Next`,
//! `Resume::Continue`, or a new run for `b`).

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event;

use crate::haproxy::errors::print_message;
use crate::scenario::runner::Outcome;
use crate::tui::input::{WalkIntent, walk_intent};
use crate::tui::view::walkthrough::{WalkHits, draw};
use crate::tui::{TERMINAL_ACTIVE, enter_terminal, has_terminal, quit_signalled, terminal_hung_up};
use crate::walkthrough::{Resume, Step, Stop, Walkthrough, start};

/// Where the walkthrough is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first stop (haflow reads its configuration).
    Starting,
    /// A stop is shown; the proxy waits for the answer.
    Paused,
    /// `Next` was answered; the proxy runs to the next step.
    Running,
    /// `Continue` was answered, or the last step passed: the scenario runs to its end.
    Finishing,
    /// The scenario ended (`Walk::outcome`).
    Done,
}

/// The two panes; arrows scroll the focused one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    /// The step's text.
    Text,
    /// The proxy's state.
    State,
}

/// What applying an intent asks of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEffect {
    /// Answer the stepper.
    Resume(Resume),
    /// Let this run finish and start a new one from step 1.
    Restart,
    /// Let this run finish and leave.
    Quit,
}

/// The walkthrough screen's state.
#[derive(Debug)]
pub struct Walk {
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The latest stop received.
    pub stop: Option<Stop>,
    /// Where the run is.
    pub phase: Phase,
    /// Stops received in this run.
    pub reached: usize,
    /// True once `c` let the run go on without stopping.
    pub continued: bool,
    /// The scenario's result, once it ended.
    pub outcome: Option<Result<Outcome, String>>,
    /// The pane arrows scroll.
    pub focus: Pane,
    /// First line shown of the text pane.
    pub text_scroll: usize,
    /// First line shown of the state pane.
    pub state_scroll: usize,
    /// A short message for the footer (a key that does nothing now says why).
    pub flash: Option<String>,
    /// What the last frame drew (pane heights and lengths, for scrolling).
    pub hits: WalkHits,
}

impl Walk {
    /// A walkthrough of `steps`, before its first stop.
    pub fn new(steps: Vec<Step>) -> Walk {
        Walk {
            steps,
            stop: None,
            phase: Phase::Starting,
            reached: 0,
            continued: false,
            outcome: None,
            focus: Pane::Text,
            text_scroll: 0,
            state_scroll: 0,
            flash: None,
            hits: WalkHits::default(),
        }
    }

    /// The step of the stop shown.
    pub fn step(&self) -> Option<&Step> {
        self.steps.get(self.stop.as_ref()?.index)
    }

    /// A stop arrived from the proxy thread.
    pub fn on_stop(&mut self, stop: Stop) {
        // After `c` the stepper may still send the stop it was about to reach: the answer
        // (`Continue`) is already on its way, and the screen stays with the last one shown.
        if self.phase == Phase::Finishing {
            return;
        }
        self.reached += 1;
        self.stop = Some(stop);
        self.phase = Phase::Paused;
        self.text_scroll = 0;
        self.state_scroll = 0;
    }

    /// The scenario ended with `res`.
    pub fn on_end(&mut self, res: Result<Outcome, String>) {
        self.outcome = Some(res);
        self.phase = Phase::Done;
        self.text_scroll = 0;
        self.state_scroll = 0;
    }

    /// True when the scenario ended and met its expectations.
    pub fn passed(&self) -> bool {
        matches!(&self.outcome, Some(Ok(o)) if o.passed())
    }

    fn scroll(&mut self, delta: isize) {
        let (pos, hit) = match self.focus {
            Pane::Text => (&mut self.text_scroll, self.hits.text),
            Pane::State => (&mut self.state_scroll, self.hits.state),
        };
        let max = hit.lines.saturating_sub(hit.rows);
        *pos = (*pos as isize + delta).clamp(0, max as isize) as usize;
    }

    fn page(&self) -> isize {
        let rows = match self.focus {
            Pane::Text => self.hits.text.rows,
            Pane::State => self.hits.state.rows,
        };
        rows.max(2) as isize - 1
    }

    /// Applies an intent; returns what the loop must do about it.
    pub fn apply(&mut self, i: WalkIntent) -> Option<WalkEffect> {
        if i != WalkIntent::Resize {
            self.flash = None;
        }
        match i {
            WalkIntent::Next => match self.phase {
                Phase::Paused => {
                    let last = self.stop.as_ref().is_some_and(|s| s.index + 1 >= self.steps.len());
                    self.phase = if last { Phase::Finishing } else { Phase::Running };
                    return Some(WalkEffect::Resume(Resume::Next));
                }
                Phase::Done => {
                    self.flash = Some("the walkthrough is done: b starts it again, q quits".into())
                }
                Phase::Starting | Phase::Running | Phase::Finishing => {}
            },
            WalkIntent::Continue => match self.phase {
                Phase::Paused | Phase::Running | Phase::Starting => {
                    self.phase = Phase::Finishing;
                    self.continued = true;
                    return Some(WalkEffect::Resume(Resume::Continue));
                }
                Phase::Finishing | Phase::Done => {}
            },
            WalkIntent::Restart => return Some(WalkEffect::Restart),
            WalkIntent::Quit => return Some(WalkEffect::Quit),
            WalkIntent::Up => self.scroll(-1),
            WalkIntent::Down => self.scroll(1),
            WalkIntent::PageUp => self.scroll(-self.page()),
            WalkIntent::PageDown => self.scroll(self.page()),
            WalkIntent::Top => self.scroll(-1_000_000),
            WalkIntent::Bottom => self.scroll(1_000_000),
            WalkIntent::SwitchPane => {
                self.focus = if self.focus == Pane::Text { Pane::State } else { Pane::Text };
            }
            WalkIntent::Resize => {}
        }
        None
    }
}

/// Lets a run finish: answers `Continue` (the stepper stops stopping), then waits for its
/// scenario to end; returns the scenario's result.
fn finish(wt: Walkthrough) -> Result<Outcome, String> {
    let _ = wt.resume.send(Resume::Continue);
    // A stop sent before the answer arrived finds nobody listening: the stepper gives up
    // stepping rather than waiting.
    drop(wt.stops);
    wt.driver.join().map_err(|_| "the walkthrough's scenario panicked".to_string())?
}

/// The loop: keys, stops, the run's end, redraws, until `q`.
fn walk_loop(walk: &mut Walk, run: &mut Option<Walkthrough>) -> io::Result<()> {
    let (mut terminal, _guard) = enter_terminal(false)?;
    let mut dirty = true;
    loop {
        if dirty {
            terminal.draw(|f| walk.hits = draw(f, walk))?;
            dirty = false;
        }
        if terminal_hung_up() {
            return Ok(());
        }
        if event::poll(Duration::from_millis(20))? {
            loop {
                if let Some(i) = walk_intent(&event::read()?) {
                    dirty = true;
                    if i == WalkIntent::Resize {
                        terminal.autoresize()?;
                        terminal.clear()?;
                    }
                    match walk.apply(i) {
                        Some(WalkEffect::Resume(r)) => {
                            if let Some(wt) = run.as_ref() {
                                let _ = wt.resume.send(r);
                            }
                        }
                        Some(WalkEffect::Restart) => {
                            // Say so first: the current run may take a moment to end.
                            *walk = Walk::new(std::mem::take(&mut walk.steps));
                            walk.flash = Some("restarting from step 1...".into());
                            terminal.draw(|f| walk.hits = draw(f, walk))?;
                            if let Some(wt) = run.take() {
                                let _ = finish(wt);
                            }
                            match start() {
                                Ok(wt) => *run = Some(wt),
                                Err(e) => walk.on_end(Err(e)),
                            }
                            walk.flash = None;
                        }
                        Some(WalkEffect::Quit) => return Ok(()),
                        None => {}
                    }
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        if let Some(wt) = run.as_ref() {
            while let Ok(stop) = wt.stops.try_recv() {
                walk.on_stop(stop);
                dirty = true;
            }
            if wt.driver.is_finished()
                && let Some(wt) = run.take()
            {
                walk.on_end(finish(wt));
                dirty = true;
            }
        }
        if !TERMINAL_ACTIVE.load(std::sync::atomic::Ordering::SeqCst) || quit_signalled() {
            return Ok(());
        }
    }
}

/// `haflow walkthrough`: the walkthrough screen until `q`; 2 without a terminal (the
/// text is then `haflow walkthrough --print`).
pub fn run() -> ExitCode {
    if !has_terminal() {
        print_message(
            "ALERT",
            "the walkthrough's screen needs a terminal on stdout; without one, use `haflow walkthrough --print`",
        );
        return ExitCode::from(2);
    }
    quit_signalled();
    let mut run = match start() {
        Ok(wt) => Some(wt),
        Err(e) => {
            print_message("ALERT", &e);
            return ExitCode::from(1);
        }
    };
    let mut walk = Walk::new(run.as_ref().map(|wt| wt.steps.clone()).unwrap_or_default());
    let res = walk_loop(&mut walk, &mut run);
    // The terminal is back (the loop's guard); the proxy may be paused at a step: let the
    // run end before leaving.
    if let Some(wt) = run.take() {
        let _ = finish(wt);
    }
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_message("ALERT", &format!("terminal error: {e}"));
            ExitCode::from(1)
        }
    }
}
