//! The terminal UI: HAProxy's insides, live (`haflow run -f FILE --tui`, `haflow scenario
//! run NAME --tui`, `haflow demo`), and the walkthrough's screen (`walkthrough`).
//!
//! Data flows one way. The proxy thread owns every structure and runs `run_poll_loop`;
//! it publishes through three bounded channels that never block it:
//! - span records from the capture layer (`trace::capture`): the process's subscriber for
//!   `run --tui`, installed before the configuration is read so that even `readcfgfile`
//!   is seen; a route of the proxy thread for a scenario or the demo, which run the proxy
//!   in this process (`scenario::proxy::RunningProxy`);
//! - snapshots of its structures, copied by `snapshot::SnapshotProducer` (the proxy
//!   thread's `Observer`) at most every `SNAPSHOT_INTERVAL_MS`, and once more when the
//!   loop ends;
//! - log and `-d` debug lines (the terminal belongs to the UI, so they come here).
//!
//! The UI thread (the main thread) runs `watch`: it folds all of it into `state::State`,
//! turns terminal events into `input::Intent`s applied to a `view::ViewState`, and
//! redraws with `view::draw` at most `FPS` times a second, only when something changed.
//! What runs the proxy is told each turn (`watch`'s `tick`): it ends the UI when the proxy
//! stopped or a duration passed, or shows a scenario's outcome on the status line. The
//! one way back is `Control`: `d`/`e` send a closure that sets or clears `SRV_MAINTAIN` on
//! a server; `q` leaves, and the caller stops what it runs. Pausing freezes a copy of the
//! state for display; collection goes on. The terminal is restored on quit, on panic (a
//! hook restores it before the message prints), on SIGINT/SIGTERM (a SIGHUP, the terminal gone, ends the process), and when the
//! proxy stops on its own.

pub mod export;
pub mod input;
pub mod replay;
pub mod snapshot;
pub mod state;
pub mod view;
pub mod walkthrough;

use std::io::{self, IsTerminal, Stdout};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::haproxy::errors::print_message;
use crate::haproxy::haproxy::{Command, Control, Haproxy, OnLoopTurn, observe, run_poll_loop};
use crate::haproxy::server::{srv_adm_set_maint, srv_adm_set_ready};
use crate::ids::ServerId;
use crate::trace::capture::Capture;
use crate::tui::input::{Intent, Mode};
use crate::tui::snapshot::{Feed, LogKind};
use crate::tui::state::{State, Status, Tone, TxnGroup};
use crate::tui::view::detail::{self, DetailState, Item, Zoom};
use crate::tui::view::{Hits, ViewKind, ViewState, proxies::PxRow};

/// How often the proxy copies a snapshot (ms of its clock).
pub const SNAPSHOT_INTERVAL_MS: u64 = 100;
/// Span records in flight between the proxy and the UI: beyond, streamed records are
/// dropped and counted; the whole sessions the keeper passes on get as much room again.
pub const CAPTURE_CAPACITY: usize = 1 << 18;

/// The UI's feed of span records: the proxy's subscriber keeps whole sessions for it
/// under load (`trace::keeper`); `sink` goes to the subscriber.
pub fn ui_capture() -> (crate::trace::capture::Sink, Capture) {
    crate::trace::capture::kept(CAPTURE_CAPACITY)
}
/// Columns a left/right press scrolls the log lines sideways.
const LOG_STEP: usize = 16;
/// The furthest the log lines scroll sideways (past the longest line, nothing shows).
const LOG_X_MAX: usize = 4096;
/// Most redraws per second.
pub const FPS: u32 = 20;
/// Most records folded in per UI tick (a tick every 5 ms or more): about 200,000 a second,
/// far more call flow than a screen shows, and input stays responsive. Under heavier
/// traffic the rest wait in the capture queue and, once it is full, the proxy stops
/// building them (counted as dropped). Folding in everything the queue offered took the
/// UI thread CPU that the proxy and its peers need: at 20,000 a tick it used 9% of a core
/// and the proxy served about a fifth fewer requests.
const MAX_RECORDS_PER_TICK: usize = 1_000;

/// Sends the command that puts server `id` in maintenance (`maint`) or takes it out.
pub fn send_maint(control: &Control, id: ServerId, maint: bool) {
    control.send(Command::Apply(Box::new(move |w| {
        if maint { srv_adm_set_maint(w, id) } else { srv_adm_set_ready(w, id) }
    })));
}

/// What applying an intent asks of the UI loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Stop the proxy and leave.
    Quit,
    /// Put a server in maintenance (`true`) or take it out (`false`).
    Maint(ServerId, bool),
}

/// The UI's state: the data, what is shown, and where it was drawn.
#[derive(Clone, Debug, Default)]
pub struct App {
    /// Collected data (always up to date).
    pub state: State,
    /// The copy shown while paused.
    pub frozen: Option<State>,
    /// What the user is looking at.
    pub view: ViewState,
    /// Where the last frame drew tabs and rows (for clicks).
    pub hits: Hits,
    /// Why `d`/`e` cannot act in this run, if they cannot (a scenario runs as written).
    pub control_off: Option<String>,
    /// Where `x` and `w` write their files (empty: the current directory).
    pub export_dir: std::path::PathBuf,
    /// What the keys asked of a replay (`haflow replay`); `None` when live.
    pub replay: Option<ReplayCtl>,
}

/// What the keys ask of a replay: the source (`replay::Replay`) reads and clears it on
/// each turn of the UI loop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayCtl {
    /// The clock is stopped (space).
    pub paused: bool,
    /// Steps asked for (`.`): each plays up to the next span's start.
    pub steps: u32,
    /// Seconds to move the clock (`[` `]` `{` `}`), forward when positive.
    pub seek_secs: i64,
}

impl App {
    /// The state to draw: the frozen copy while paused.
    pub fn shown(&self) -> &State {
        self.frozen.as_ref().unwrap_or(&self.state)
    }

    /// How keys are read now.
    pub fn mode(&self) -> Mode {
        if self.view.help {
            Mode::Help
        } else if self.view.filter_editing || self.view.dv.search_editing {
            Mode::Filter
        } else {
            Mode::Normal
        }
    }

    /// Keeps the selections valid and follows the newest session (before each frame).
    pub fn sync(&mut self) {
        let st = self.frozen.as_ref().unwrap_or(&self.state);
        let rows = view::sessions::rows(st, &self.view);
        if self.view.follow {
            // The newest session the filter shows: Enter and `x` then act on the row that
            // is drawn selected, never on a newer session the filter hides.
            if let Some(newest) = rows.iter().map(|r| r.id).max() {
                self.view.sess_sel = Some(newest);
            }
        }
        if self.view.sess_sel.is_none_or(|id| !rows.iter().any(|r| r.id == id)) {
            self.view.sess_sel = rows.first().map(|r| r.id);
        }
        // The detail view's folds, zoom and search belong to one session.
        let shown = self.view.detail.or(self.view.sess_sel);
        if self.view.dv.session != shown {
            self.view.dv = DetailState { session: shown, ..DetailState::default() };
        }
    }

    /// The detail view's session: its requests and its lines as drawn.
    fn detail_items(&self) -> Option<(u32, Vec<TxnGroup>, Vec<Item>)> {
        let st = self.shown();
        let id = self.view.detail.or(self.view.sess_sel)?;
        let e = st.sessions.get(&id)?;
        let t = st.trace(id)?;
        let gs = detail::groups(st, e, t);
        let items = detail::items(t, &gs, &self.view.dv);
        Some((id, gs, items))
    }

    /// Folds (`Some(true)`), unfolds (`Some(false)`) or toggles (`None`) the selected
    /// request or span of the detail view; folding what cannot fold (a leaf, or a span
    /// already folded) selects its caller instead. The selection stays on its line.
    fn fold(&mut self, want: Option<bool>) {
        let Some((id, gs, items)) = self.detail_items() else { return };
        let Some(t) = self.shown().trace(id) else { return };
        let sel = self.view.dv.sel.min(items.len().saturating_sub(1));
        let Some(&item) = items.get(sel) else { return };
        let folded = detail::is_folded(&self.view.dv, t, &gs, item);
        let key = detail::fold_of(t, &gs, item);
        match (key, want) {
            (Some(_), Some(true)) if folded => {}
            (Some(k), w) => {
                let new = w.unwrap_or(!folded);
                self.view.dv.folds.insert(k, new);
                return;
            }
            (None, Some(false) | None) => return,
            (None, Some(true)) => {}
        }
        if let Some(p) = detail::parent_of(t, &gs, &items, sel) {
            self.view.dv.sel = p;
        }
    }

    /// Moves the detail view's selection to the next (`forward`) or previous request.
    fn next_request(&mut self, forward: bool) {
        let Some((_, _, items)) = self.detail_items() else { return };
        let sel = self.view.dv.sel.min(items.len().saturating_sub(1));
        let is_group = |i: &usize| matches!(items[*i], Item::Group(_));
        let to = if forward {
            (sel + 1..items.len()).find(is_group)
        } else {
            // From inside a request, its own header first.
            (0..sel).rev().find(is_group)
        };
        if let Some(to) = to {
            self.view.dv.sel = to;
        }
    }

    /// Zooms the timeline on the selected request or span, or back to the whole session
    /// when it already shows that.
    fn zoom(&mut self) {
        let Some((id, gs, items)) = self.detail_items() else { return };
        let st = self.shown();
        let Some(t) = st.trace(id) else { return };
        let sel = self.view.dv.sel.min(items.len().saturating_sub(1));
        let Some(&item) = items.get(sel) else { return };
        let Some((from, to, what)) = detail::range_of(t, &gs, item, st.record_clock) else { return };
        let same = self.view.dv.zoom.as_ref().is_some_and(|z| z.from == from && z.what == what);
        self.view.dv.zoom = if same || item == Item::Span(0) { None } else { Some(Zoom { from, to, what }) };
    }

    fn proxy_rows(&self) -> Vec<PxRow> {
        self.shown().snap.as_ref().map(|s| view::proxies::rows(s)).unwrap_or_default()
    }

    fn move_by(&mut self, delta: isize) {
        let v = &mut self.view;
        if v.help {
            v.help_scroll = (v.help_scroll as isize + delta).clamp(0, self.hits.help_max as isize) as u16;
            return;
        }
        let step = |cur: usize, len: usize| -> usize {
            if len == 0 {
                return 0;
            }
            (cur as isize + delta).clamp(0, len as isize - 1) as usize
        };
        match v.view {
            ViewKind::Proxies => {
                let len = self.proxy_rows().len();
                self.view.proxies_sel = step(self.view.proxies_sel.min(len.saturating_sub(1)), len);
            }
            ViewKind::Sessions => {
                let st = self.frozen.as_ref().unwrap_or(&self.state);
                let rows = view::sessions::rows(st, &self.view);
                let cur = view::sessions::selected_index(&rows, &self.view);
                self.view.sess_sel = rows.get(step(cur, rows.len())).map(|r| r.id);
                self.view.follow = false;
            }
            ViewKind::Detail => {
                let len = self.detail_items().map_or(0, |(_, _, items)| items.len());
                self.view.dv.sel = step(self.view.dv.sel.min(len.saturating_sub(1)), len);
            }
            // Up goes back in time, away from the newest line at the bottom, at most to the
            // oldest screenful.
            ViewKind::EventLoop => {
                let max = view::max_back(self.shown().lane.len(), self.hits.page as usize);
                self.view.lane_back = (self.view.lane_back as isize - delta).clamp(0, max as isize) as usize;
            }
            ViewKind::Logs => {
                let max = view::max_back(self.shown().logs.len(), self.hits.page as usize);
                self.view.log_back = (self.view.log_back as isize - delta).clamp(0, max as isize) as usize;
            }
        }
    }

    fn open(&mut self) {
        match self.view.view {
            ViewKind::Sessions => {
                if let Some(id) = self.view.sess_sel {
                    self.view.detail = Some(id);
                    self.view.dv = DetailState { session: Some(id), ..DetailState::default() };
                    self.view.view = ViewKind::Detail;
                }
            }
            ViewKind::Proxies => {
                // Enter on a row: its sessions.
                let rows = self.proxy_rows();
                let Some(snap) = self.shown().snap.clone() else { return };
                let filter = match rows.get(self.view.proxies_sel) {
                    Some(PxRow::Server(id)) => {
                        snap.proxy(id.px).zip(snap.server(*id)).map(|(p, s)| format!("{}/{}", p.name, s.name))
                    }
                    Some(PxRow::Frontend(id)) | Some(PxRow::Backend(id)) => {
                        snap.proxy(*id).map(|p| p.name.clone())
                    }
                    None => None,
                };
                if let Some(f) = filter {
                    self.view.filter = f;
                    self.view.follow = false;
                    self.view.view = ViewKind::Sessions;
                }
            }
            _ => {}
        }
    }

    /// `x` (`all`: `w`): writes the selected session (every session the filter matches) as
    /// a Chrome/Perfetto trace and a call-flow listing, and says where in a box.
    fn export(&mut self, all: bool) {
        let st = self.shown();
        let ids: Vec<u32> = if all {
            let mut ids: Vec<u32> = view::sessions::rows(st, &self.view).iter().map(|r| r.id).collect();
            ids.sort_unstable();
            ids
        } else {
            self.view
                .detail
                .filter(|_| self.view.view == ViewKind::Detail)
                .or(self.view.sess_sel)
                .into_iter()
                .collect()
        };
        let mut sessions = Vec::new();
        let mut without = 0;
        for id in &ids {
            match (st.sessions.get(id), st.trace(*id)) {
                (Some(e), Some(t)) => sessions.push(export::Export { trace: t, txns: st.txns_of(e) }),
                _ => without += 1,
            }
        }
        if sessions.is_empty() {
            self.view.flash = Some(match ids.len() {
                0 => "x: no session selected (w: no session matches the filter)".into(),
                _ => "nothing to export: no spans kept for that (they began before the UI, or were sampled out)".into(),
            });
            return;
        }
        let secs =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let what = if all {
            let f = if self.view.filter.is_empty() {
                String::new()
            } else {
                format!(" matching '{}'", self.view.filter)
            };
            format!("{} sessions{f}", sessions.len())
        } else {
            format!("session #{}", sessions[0].trace.uniq_id)
        };
        let stem = if all {
            format!("haflow-sessions-{secs}")
        } else {
            format!("haflow-session-{}-{secs}", sessions[0].trace.uniq_id)
        };
        let res = export::write(&self.export_dir, &stem, &sessions, st.record_clock);
        let abs = |p: &std::path::Path| {
            std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
        };
        let lines = match res {
            Ok((json, flow)) => {
                let mut l = vec![
                    format!("exported {what}"),
                    format!("trace:   {}", abs(&json)),
                    format!("listing: {}", abs(&flow)),
                    "open the trace in ui.perfetto.dev or with `haflow replay FILE`".to_string(),
                ];
                if without > 0 {
                    l.push(format!("{without} session(s) without spans left out"));
                }
                l
            }
            Err(e) => vec![format!("export of {what} failed: {e}")],
        };
        for l in &lines {
            self.state.push_log(LogKind::Ui, l.clone());
        }
        self.view.notice = Some(lines);
    }

    /// Sets the status line, on the frozen copy too: pausing must not hide a verdict.
    pub fn set_status(&mut self, text: impl Into<String>, tone: Tone) {
        let status = Some(Status { text: text.into(), tone });
        if let Some(f) = &mut self.frozen {
            f.status = status.clone();
        }
        self.state.status = status;
    }

    fn maint(&mut self, on: bool) -> Option<Effect> {
        if let Some(why) = &self.control_off {
            self.view.flash = Some(why.clone());
            return None;
        }
        if self.view.view != ViewKind::Proxies {
            self.view.flash = Some("d/e act on a server row of the Proxies view (1)".into());
            return None;
        }
        let rows = self.proxy_rows();
        let Some(PxRow::Server(id)) = rows.get(self.view.proxies_sel).copied() else {
            self.view.flash = Some("select a server row: d/e put servers in and out of maintenance".into());
            return None;
        };
        let name = self
            .shown()
            .snap
            .as_ref()
            .and_then(|s| Some(format!("{}/{}", s.proxy(id.px)?.name, s.server(id)?.name)))
            .unwrap_or_default();
        let msg = format!("{} server {name} sent", if on { "disable" } else { "enable" });
        self.state.push_log(LogKind::Ui, msg.clone());
        self.view.flash = Some(msg);
        Some(Effect::Maint(id, on))
    }

    fn click(&mut self, x: u16, y: u16) -> Option<Effect> {
        if y == self.hits.tabs_y
            && let Some(&(_, _, v)) = self.hits.tabs.iter().find(|(x0, x1, _)| (*x0..*x1).contains(&x))
        {
            self.view.view = v;
            return None;
        }
        let list = self.hits.list?;
        if !(list.area.y..list.area.bottom()).contains(&y) {
            return None;
        }
        let i = list.first + (y - list.area.y) as usize;
        match self.view.view {
            ViewKind::Proxies if i < self.proxy_rows().len() => self.view.proxies_sel = i,
            ViewKind::Sessions => {
                let rows = view::sessions::rows(self.shown(), &self.view);
                if let Some(r) = rows.get(i) {
                    // A click on the selected row opens it.
                    if self.view.sess_sel == Some(r.id) {
                        self.open();
                    } else {
                        self.view.sess_sel = Some(r.id);
                        self.view.follow = false;
                    }
                }
            }
            _ => {}
        }
        None
    }

    /// Applies an intent; returns what the UI loop must do about it.
    pub fn apply(&mut self, intent: Intent) -> Option<Effect> {
        let v = &mut self.view;
        if !matches!(intent, Intent::Resize) {
            v.flash = None;
        }
        // A box on screen: the next key closes it (and does nothing else but quit).
        if v.notice.is_some() && !matches!(intent, Intent::Resize | Intent::Quit) {
            v.notice = None;
            return None;
        }
        match intent {
            Intent::Quit => return Some(Effect::Quit),
            Intent::Help => {
                v.help = !v.help;
                v.help_scroll = 0;
            }
            // A replay's clock stops: nothing arrives meanwhile, no copy to freeze.
            Intent::Pause if self.replay.is_some() => {
                if let Some(c) = &mut self.replay {
                    c.paused = !c.paused;
                    v.paused = c.paused;
                }
            }
            Intent::Pause => {
                v.paused = !v.paused;
                self.frozen = if v.paused { Some(self.state.clone()) } else { None };
            }
            Intent::Step | Intent::Seek(_) if self.replay.is_none() => {
                v.flash = Some(". [ ] { } step and seek in a replay (haflow replay FILE.json)".into())
            }
            Intent::Step => {
                if let Some(c) = &mut self.replay {
                    c.steps += 1;
                    c.paused = true;
                    v.paused = true;
                }
            }
            Intent::Seek(secs) => {
                if let Some(c) = &mut self.replay {
                    c.seek_secs += i64::from(secs);
                }
            }
            Intent::NextView => v.view = v.view.next(),
            Intent::PrevView => v.view = v.view.prev(),
            Intent::Show(k) => v.view = k,
            Intent::Up => self.move_by(-1),
            Intent::Down => self.move_by(1),
            Intent::PageUp => self.move_by(-(self.hits.page.max(2) as isize - 1)),
            Intent::PageDown => self.move_by(self.hits.page.max(2) as isize - 1),
            Intent::Top => self.move_by(-1_000_000),
            Intent::Bottom => self.move_by(1_000_000),
            Intent::Open if v.view == ViewKind::Detail => self.fold(None),
            Intent::Open => self.open(),
            Intent::Back => {
                if v.help {
                    v.help = false;
                } else if v.view == ViewKind::Detail && !v.dv.search.is_empty() {
                    v.dv.search.clear();
                } else if v.view == ViewKind::Detail && v.dv.zoom.is_some() {
                    v.dv.zoom = None;
                } else if v.view == ViewKind::Detail {
                    v.view = ViewKind::Sessions;
                } else if !v.filter.is_empty() {
                    v.filter.clear();
                }
            }
            Intent::Disable => return self.maint(true),
            Intent::Enable => return self.maint(false),
            // In the detail view `/` searches its spans; elsewhere it filters the sessions.
            Intent::FilterStart if v.view == ViewKind::Detail => v.dv.search_editing = true,
            Intent::FilterStart => {
                v.view = ViewKind::Sessions;
                v.filter_editing = true;
            }
            Intent::FilterChar(c) if v.dv.search_editing => {
                v.dv.search.push(c);
                v.dv.sel = 0;
            }
            Intent::FilterChar(c) => v.filter.push(c),
            Intent::FilterBackspace if v.dv.search_editing => {
                v.dv.search.pop();
            }
            Intent::FilterBackspace => {
                v.filter.pop();
            }
            Intent::FilterDone if v.dv.search_editing => v.dv.search_editing = false,
            Intent::FilterDone => v.filter_editing = false,
            Intent::FilterCancel if v.dv.search_editing => {
                v.dv.search.clear();
                v.dv.search_editing = false;
            }
            Intent::FilterCancel => {
                v.filter.clear();
                v.filter_editing = false;
            }
            // Left and right fold and unfold in the detail view, and sort the sessions.
            Intent::SortNext if v.view == ViewKind::Detail => self.fold(Some(false)),
            Intent::SortPrev if v.view == ViewKind::Detail => self.fold(Some(true)),
            // ... and scroll the log lines sideways.
            Intent::SortNext if v.view == ViewKind::Logs => v.log_x = (v.log_x + LOG_STEP).min(LOG_X_MAX),
            Intent::SortPrev if v.view == ViewKind::Logs => v.log_x = v.log_x.saturating_sub(LOG_STEP),
            Intent::SortNext => v.sort = v.sort.next(),
            Intent::SortPrev => v.sort = v.sort.prev(),
            Intent::NextRequest | Intent::PrevRequest if v.view == ViewKind::Detail => {
                self.next_request(intent == Intent::NextRequest)
            }
            Intent::NextRequest | Intent::PrevRequest => {
                v.flash =
                    Some("n/p move between the requests of a session, in its detail view (Enter)".into())
            }
            Intent::Zoom if v.view == ViewKind::Detail => self.zoom(),
            Intent::Export if matches!(v.view, ViewKind::Sessions | ViewKind::Detail) => self.export(false),
            Intent::ExportAll if v.view == ViewKind::Sessions => self.export(true),
            Intent::Export | Intent::ExportAll => {
                v.flash = Some(
                    "x exports the selected session, w every session the filter matches (2 Sessions)".into(),
                )
            }
            Intent::Zoom => {
                v.flash = Some("z zooms the timeline of the detail view (Enter on a session)".into())
            }
            Intent::SortInvert => v.sort_desc = !v.sort_desc,
            Intent::Follow => match v.view {
                ViewKind::EventLoop => v.lane_back = 0,
                ViewKind::Logs => v.log_back = 0,
                _ => v.follow = !v.follow,
            },
            Intent::Click { x, y } => return self.click(x, y),
            Intent::Resize => {}
        }
        None
    }
}

/// Folds whatever arrived into `st`; true when something did.
pub fn pump(st: &mut State, feed: &Feed, capture: &Capture) -> bool {
    let mut any = false;
    for r in capture.try_iter().take(MAX_RECORDS_PER_TICK) {
        st.apply_record(r);
        any = true;
    }
    for snap in feed.snapshots.try_iter() {
        st.apply_snapshot(snap);
        any = true;
    }
    for (kind, line) in feed.logs.try_iter().take(10_000) {
        st.push_log(kind, line);
        any = true;
    }
    st.dropped_records = capture.dropped();
    st.keep = capture.keeping().map(|k| k.counts());
    st.dropped_feed = feed.dropped();
    st.prune();
    any
}

/// True while the terminal is in the UI's hands (raw mode, alternate screen).
pub(crate) static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Gives the terminal back: leaves the alternate screen, stops mouse capture, shows the
/// cursor, leaves raw mode. Safe to call many times and from the panic hook.
pub fn restore_terminal() {
    if TERMINAL_ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
        let _ = disable_raw_mode();
    }
}

/// Restores the terminal before the panic message prints, whichever thread panics.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            prev(info);
        }));
    });
}

/// Restores the terminal when dropped (early returns, errors).
pub(crate) struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Takes the terminal: raw mode, alternate screen, hidden cursor, and mouse capture when
/// `mouse` (which costs the terminal's own text selection). The guard gives it back.
pub(crate) fn enter_terminal(mouse: bool) -> io::Result<(Terminal<CrosstermBackend<Stdout>>, TerminalGuard)> {
    install_panic_hook();
    enable_raw_mode()?;
    TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
    let guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen)?;
    if mouse {
        execute!(io::stdout(), EnableMouseCapture)?;
    }
    let mut t = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    t.hide_cursor()?;
    t.clear()?;
    Ok((t, guard))
}

/// True once SIGINT or SIGTERM arrived while a UI runs: it leaves as on `q`, so that the
/// terminal is given back (in raw mode Ctrl-C is a key, but `kill` is a signal). A second
/// signal ends the process at once, and so does SIGHUP (the terminal is gone).
pub fn quit_signalled() -> bool {
    static QUIT: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    QUIT.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        // A hang-up means the terminal is gone: nothing to give back, and crossterm may be
        // blocked retrying reads of a closed tty; end at once, as terminal programs do.
        let _ =
            signal_hook::flag::register_conditional_shutdown(SIGHUP, 129, Arc::new(AtomicBool::new(true)));
        for sig in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag before this signal sets it.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&flag));
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    })
    .load(Ordering::Relaxed)
}

/// True when the terminal hung up (its window closed, its tmux server killed): stdin
/// then reads end-of-file forever, which crossterm's `event::read` retries without end,
/// so the UI checks before reading and leaves instead of spinning.
pub fn terminal_hung_up() -> bool {
    let mut fd = libc::pollfd { fd: libc::STDIN_FILENO, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, a zero timeout; poll only writes `revents`.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n > 0 && fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// The UI thread's nice value: it yields the CPU to the proxy and its peers.
const UI_NICE: libc::c_int = 19;

/// Lowers the calling (UI) thread's scheduling priority. On a machine the traffic keeps
/// busy, the proxy then keeps its speed and the UI falls behind instead: the capture
/// queue fills and records drop, counted in red in the header. Linux applies nice
/// values per thread, so the proxy thread (already started) keeps its priority.
fn lower_ui_priority() {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    // SAFETY: changes only this thread's nice value; a failure leaves it as it was.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, UI_NICE) };
}

/// True when stdout is a terminal the UI can take.
pub fn has_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Where the UI's data comes from: a live proxy's feeds, or a replayed trace.
pub trait Source {
    /// Folds into `app` what arrived since the last call (live), or what the replay clock
    /// reached; true when something changed.
    fn pump(&mut self, app: &mut App) -> bool;
    /// A command was sent to the proxy: its result should show at once.
    fn refresh(&self) {}
}

/// A live proxy: its span records and its snapshots and log lines.
pub struct Live<'a> {
    /// Snapshots and log lines.
    pub feed: &'a Feed,
    /// Span records.
    pub capture: &'a Capture,
}

impl Source for Live<'_> {
    fn pump(&mut self, app: &mut App) -> bool {
        // The keeper keeps the session on screen whole, whatever the load.
        if let Some(k) = self.capture.keeping() {
            let shown = app.view.detail.filter(|_| app.view.view == ViewKind::Detail).or(app.view.sess_sel);
            k.followed
                .store(shown.unwrap_or(crate::trace::keeper::NOBODY), std::sync::atomic::Ordering::Relaxed);
        }
        pump(&mut app.state, self.feed, self.capture)
    }
    fn refresh(&self) {
        self.feed.request();
    }
}

/// Watches a proxy that something else runs (its thread, a scenario, the demo), until
/// `q`, Ctrl-C or a signal, or until `tick` says the run is over.
///
/// `feed` is the UI's end of the `snapshot::producer` whose producer is the proxy
/// thread's observer; `capture` receives the proxy thread's span records. `tick` runs
/// once per turn of the UI loop, on this thread, after the new data is folded in: the
/// caller checks there on what it runs (a proxy thread that ended, a scenario's outcome,
/// a duration) and may add to `app` (status line, log pane); it returns true to close the
/// UI. `control` takes `d`/`e` to the proxy; without it they only say why they cannot
/// (`App::control_off`). The terminal is given back on return, whatever happened.
pub fn watch(
    app: &mut App,
    feed: &Feed,
    capture: &Capture,
    control: Option<&Control>,
    tick: impl FnMut(&mut App) -> bool,
) -> io::Result<()> {
    watch_source(app, &mut Live { feed, capture }, control, tick)
}

/// `watch` over any `Source` (a replay: `replay::run`).
pub fn watch_source(
    app: &mut App,
    source: &mut dyn Source,
    control: Option<&Control>,
    mut tick: impl FnMut(&mut App) -> bool,
) -> io::Result<()> {
    if control.is_none() && app.control_off.is_none() {
        app.control_off = Some("d/e: this run takes no commands".into());
    }
    quit_signalled();
    let (mut terminal, _guard) = enter_terminal(true)?;
    lower_ui_priority();
    let start = Instant::now();
    let frame = Duration::from_secs(1) / FPS;
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    loop {
        let wait = last_draw.map_or(Duration::ZERO, |t| frame.saturating_sub(t.elapsed()));
        if terminal_hung_up() {
            return Ok(());
        }
        if event::poll(wait.max(Duration::from_millis(5)))? {
            loop {
                let ev = event::read()?;
                if let Some(i) = input::intent(&ev, app.mode()) {
                    dirty = true;
                    if i == Intent::Resize {
                        // Start the new size from a blank screen: ratatui only clears on a
                        // horizontal shrink, and a terminal that grew keeps stale cells.
                        terminal.autoresize()?;
                        terminal.clear()?;
                    }
                    match app.apply(i) {
                        Some(Effect::Quit) => return Ok(()),
                        Some(Effect::Maint(id, on)) => {
                            if let Some(c) = control {
                                send_maint(c, id, on);
                                // Show the result at once, not at the next interval.
                                source.refresh();
                            }
                        }
                        None => {}
                    }
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        app.state.set_now(start.elapsed());
        if source.pump(app) && !app.view.paused {
            dirty = true;
        }
        let status = app.state.status.clone();
        let logs = app.state.logs.len();
        // The run is over, or a panic hook or a signal took the terminal back: leave.
        if tick(app) || !TERMINAL_ACTIVE.load(Ordering::SeqCst) || quit_signalled() {
            return Ok(());
        }
        dirty |= app.state.status != status || app.state.logs.len() != logs;
        let since = last_draw.map(|t| t.elapsed());
        // Ages and uptime move every second even when nothing arrives.
        let tick = since.is_none_or(|s| s >= Duration::from_secs(1));
        if since.is_none_or(|s| s >= frame) && (dirty || tick) {
            app.sync();
            terminal.draw(|f| app.hits = view::draw(f, app.shown(), &app.view))?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
    }
}

/// Runs the proxy `w` (bound and enabled already) on its own thread and `watch`es it from
/// this one until `q`, Ctrl-C or a signal; returns the exit code.
/// `notes` (configuration warnings) open the log pane.
pub fn run(mut w: Haproxy, capture: Capture, notes: Vec<String>) -> ExitCode {
    if !has_terminal() {
        print_message("ALERT", "--tui needs a terminal on stdout");
        return ExitCode::from(1);
    }
    let (producer, feed) = snapshot::producer(SNAPSHOT_INTERVAL_MS);
    // The terminal is the UI's: log targets on stdout/stderr, `-d` lines and soft-stop
    // messages go to the log pane instead.
    w.logger.mute_std = true;
    w.global.quiet = true;
    w.debug_sink = Some(producer.debug_sink());
    let control = w.control();
    let proxy = match std::thread::Builder::new().name("haflow-proxy".into()).spawn(move || {
        // Each turn's span records go out before the loop may sleep.
        observe(Box::new(OnLoopTurn(crate::trace::subscriber::flush_thread)));
        observe(Box::new(producer));
        run_poll_loop(&mut w)
    }) {
        Ok(t) => t,
        Err(e) => {
            print_message("ALERT", &format!("cannot start the proxy thread: {e}"));
            return ExitCode::from(1);
        }
    };
    let mut app = App::default();
    for n in notes {
        app.state.push_log(LogKind::Ui, format!("[WARNING] config : {n}"));
    }
    // The proxy stops on its own on SIGTERM: then the UI leaves too.
    let res = watch(&mut app, &feed, &capture, Some(&control), |_| proxy.is_finished());
    control.stop();
    let joined = proxy.join();
    match (res, joined) {
        (_, Err(_)) => {
            print_message("ALERT", "the proxy thread panicked");
            ExitCode::from(70)
        }
        (Err(e), Ok(())) => {
            print_message("ALERT", &format!("terminal error: {e}"));
            ExitCode::from(1)
        }
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
    }
}
