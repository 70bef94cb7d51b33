//! `haflow replay FILE.json`: a recorded trace (`--trace`, or `x`/`w` in the UI) shown in
//! the same terminal UI as a live proxy, with time moving as recorded.
//!
//! The file is read back into span records (`trace::replay`), and `Replay`, the UI's
//! `Source`, folds them into the `State` as its clock reaches their time: the sessions,
//! their detail and the event-loop lane fill in as they did when the trace was taken.
//! Space stops and restarts the clock, `.` plays up to the next span's start, `[`/`]`
//! move it 5 s back or forward and `{`/`}` a minute. Going back rebuilds the state from
//! the start of the trace (the state only ever moves forward). A trace has no snapshots
//! of the proxy: the proxies view stays empty, and the sessions' rows come from their
//! spans. Without the loop's own spans (recorded only at `--trace-level developer`), the
//! event-loop lane is rebuilt from the sessions' calls.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::haproxy::errors::print_message;
use crate::trace::replay::{Recording, load};
use crate::tui::state::{ReplayPos, State};
use crate::tui::{App, ReplayCtl, Source, has_terminal, watch_source};

/// A trace being replayed: its records, and how far the clock has gone.
pub struct Replay {
    rec: Recording,
    /// Records folded in so far.
    pos: usize,
    /// The replay clock, on the trace's own clock.
    clock: Duration,
    /// How much faster than recorded time the clock moves.
    speed: f64,
    /// When the clock was last moved (real time).
    last: Option<Instant>,
    file: String,
}

impl Replay {
    /// A replay of `rec` (named `file` in the header) at `speed`, its clock at the
    /// trace's first event.
    pub fn new(rec: Recording, file: &str, speed: f64) -> Replay {
        let clock = rec.start;
        Replay { rec, pos: 0, clock, speed, last: None, file: file.to_string() }
    }

    /// The replay clock, from the trace's first event.
    pub fn at(&self) -> Duration {
        self.clock.saturating_sub(self.rec.start)
    }

    /// True once every record is folded in.
    pub fn done(&self) -> bool {
        self.pos >= self.rec.records.len()
    }

    /// A fresh state for this trace.
    fn fresh(&self) -> State {
        let mut st = State::default();
        st.lane_from_calls = !self.rec.has_loop_spans;
        st
    }

    /// Folds in the records up to the clock; true when any was.
    fn advance(&mut self, st: &mut State) -> bool {
        let start = self.pos;
        while let Some(r) = self.rec.records.get(self.pos) {
            if at_of(r).is_some_and(|at| at > self.clock) {
                break;
            }
            st.apply_record(r.clone());
            self.pos += 1;
        }
        if self.done() && start < self.pos && st.lane_from_calls {
            st.end_replayed_turn();
        }
        st.prune();
        self.pos > start
    }

    /// Moves the clock to `to` (on the trace's clock): forward folds in what lies between,
    /// back starts again from the first record.
    pub fn seek(&mut self, st: &mut State, to: Duration) {
        let to = to.clamp(self.rec.start, self.rec.end);
        if to < self.clock {
            let keep = (st.status.take(), std::mem::take(&mut st.logs));
            *st = self.fresh();
            (st.status, st.logs) = keep;
            self.pos = 0;
        }
        self.clock = to;
        self.advance(st);
    }

    /// Plays up to the next span's start (its records, and those at the same time).
    pub fn step(&mut self, st: &mut State) {
        let next = self.rec.records[self.pos.min(self.rec.records.len())..]
            .iter()
            .find(|r| matches!(r, crate::trace::capture::Record::New { .. }))
            .and_then(at_of);
        if let Some(at) = next {
            self.seek(st, at.max(self.clock));
        }
    }

    /// Applies what the keys asked for, moves the clock with real time unless paused,
    /// and folds in what it reached.
    fn turn(&mut self, st: &mut State, ctl: &mut ReplayCtl) -> bool {
        let now = Instant::now();
        let mut changed = false;
        if ctl.seek_secs != 0 {
            let d = Duration::from_secs(ctl.seek_secs.unsigned_abs());
            let to = if ctl.seek_secs > 0 { self.clock + d } else { self.clock.saturating_sub(d) };
            ctl.seek_secs = 0;
            self.seek(st, to);
            changed = true;
        }
        for _ in 0..std::mem::take(&mut ctl.steps) {
            self.step(st);
            changed = true;
        }
        if !ctl.paused
            && let Some(last) = self.last
        {
            let d = now.saturating_duration_since(last).mul_f64(self.speed);
            self.clock = (self.clock + d).min(self.rec.end);
            changed |= self.advance(st);
        }
        self.last = Some(now);
        changed
    }

    fn position(&self, paused: bool) -> ReplayPos {
        ReplayPos {
            file: self.file.clone(),
            at: self.at(),
            len: self.rec.end.saturating_sub(self.rec.start),
            paused,
            speed: self.speed,
        }
    }
}

fn at_of(r: &crate::trace::capture::Record) -> Option<Duration> {
    use crate::trace::capture::Record;
    match r {
        Record::New { at, .. } | Record::Close { at, .. } | Record::Event { at, .. } => Some(*at),
        Record::Update { .. } => None,
    }
}

impl Source for Replay {
    fn pump(&mut self, app: &mut App) -> bool {
        let mut ctl = app.replay.take().unwrap_or_default();
        let changed = self.turn(&mut app.state, &mut ctl);
        app.view.paused = ctl.paused;
        let pos = self.position(ctl.paused);
        // The header's clock moves every frame: a change only when a second passed.
        let moved = app
            .state
            .replay
            .as_ref()
            .is_none_or(|p| p.at.as_secs() != pos.at.as_secs() || p.paused != pos.paused);
        app.state.replay = Some(pos);
        app.replay = Some(ctl);
        changed || moved
    }
}

/// A UI on `rec` as `haflow replay` opens it: the clock at the start, playing.
pub fn app_for(replay: &Replay) -> App {
    App { state: replay.fresh(), replay: Some(ReplayCtl::default()), ..App::default() }
}

/// `haflow replay FILE`: the trace in the terminal UI until `q`; returns the exit code.
pub fn run(path: &Path, speed: f64) -> ExitCode {
    if !has_terminal() {
        print_message("ALERT", "replay needs a terminal on stdout");
        return ExitCode::from(1);
    }
    let rec = match load(path) {
        Ok(r) => r,
        Err(e) => {
            print_message("ALERT", &e);
            return ExitCode::from(1);
        }
    };
    if rec.records.is_empty() {
        print_message("ALERT", &format!("{}: no span in this trace", path.display()));
        return ExitCode::from(1);
    }
    let mut replay = Replay::new(rec, &path.display().to_string(), speed);
    let mut app = app_for(&replay);
    app.control_off = Some("d/e: a replay shows a recorded trace, there is no proxy to command".into());
    match watch_source(&mut app, &mut replay, None, |_| false) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_message("ALERT", &format!("terminal error: {e}"));
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::capture::{FieldText, Record};
    use crate::trace::names;

    fn rec() -> Recording {
        let new = |id, parent, name, sess: &str, ms| Record::New {
            id,
            parent,
            name,
            level: tracing::Level::DEBUG,
            fields: vec![("sess", FieldText::from(sess))],
            at: Duration::from_millis(ms),
        };
        let close = |id, ms| Record::Close { id, at: Duration::from_millis(ms) };
        Recording {
            records: vec![
                new(1, None, names::SESSION, "0", 1000),
                new(2, Some(1), names::PROCESS_SESSION, "0", 1001),
                close(2, 1002),
                new(3, None, names::SESSION, "1", 3000),
                new(4, Some(3), names::STREAM_SOCK_READ, "1", 3001),
                close(4, 3002),
                close(3, 4000),
                close(1, 5000),
            ],
            start: Duration::from_millis(1000),
            end: Duration::from_millis(5000),
            has_loop_spans: false,
            skipped: 0,
        }
    }

    #[test]
    fn the_clock_steps_seeks_forward_and_back() {
        let mut r = Replay::new(rec(), "t.json", 1.0);
        let mut st = r.fresh();
        r.seek(&mut st, Duration::from_millis(1500));
        assert_eq!(st.sessions.keys().copied().collect::<Vec<_>>(), [0], "only what began before the clock");
        r.step(&mut st);
        assert_eq!(r.at(), Duration::from_millis(2000), "up to the next span's start");
        assert!(st.sessions.contains_key(&1) && !st.sessions[&1].closed);
        r.seek(&mut st, Duration::from_secs(10));
        assert!(r.done() && st.sessions.values().all(|e| e.closed), "the end: everything closed");
        assert_eq!(st.lane.len(), 1, "the lane rebuilt from the calls: {:?}", st.lane);
        let crate::tui::state::LaneEntry::Turn(t) = &st.lane[0] else { panic!("{:?}", st.lane) };
        assert_eq!((t.tasks.len(), t.io.len()), (1, 1), "a task, then a callback: one turn");
        r.seek(&mut st, Duration::from_millis(1500));
        assert_eq!(st.sessions.len(), 1, "back: the state again as it was then");
        assert!(!st.sessions[&0].closed);
    }
}
