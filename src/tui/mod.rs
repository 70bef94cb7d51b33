//! The terminal UI (`haflow run -f FILE --tui`): HAProxy's insides, live.
//!
//! Data flows one way. The proxy thread owns every structure and runs `run_poll_loop`;
//! it publishes through three bounded channels that never block it:
//! - span records from the capture layer (`trace::capture`), installed as the process's
//!   subscriber before the configuration is read, so even `readcfgfile` is seen;
//! - snapshots of its structures, copied by `snapshot::SnapshotProducer` (an `Observer`)
//!   at most every `SNAPSHOT_INTERVAL_MS`;
//! - log and `-d` debug lines (the terminal belongs to the UI, so they come here).
//!
//! The UI thread (the main thread) folds all of it into `state::State`, turns terminal
//! events into `input::Intent`s applied to a `view::ViewState`, and redraws with
//! `view::draw` at most `FPS` times a second, only when something changed. The one way
//! back is `Control`: `q` sends `Stop`, `d`/`e` send a closure that sets or clears
//! `SRV_MAINTAIN` on a server. Pausing freezes a copy of the state for display; collection
//! goes on. The terminal is restored on quit, on panic (a hook restores it before the
//! message prints) and when the proxy stops on its own (SIGTERM).

pub mod input;
pub mod snapshot;
pub mod state;
pub mod view;

use std::io::{self, IsTerminal, Stdout};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::haproxy::haproxy::{Command, Control, Haproxy, run_poll_loop};
use crate::haproxy::server::{srv_adm_set_maint, srv_adm_set_ready};
use crate::ids::ServerId;
use crate::trace::capture::Capture;
use crate::tui::input::{Intent, Mode};
use crate::tui::snapshot::{Feed, LogKind};
use crate::tui::state::State;
use crate::tui::view::{Hits, ViewKind, ViewState, proxies::PxRow};

/// How often the proxy copies a snapshot (ms of its clock).
pub const SNAPSHOT_INTERVAL_MS: u64 = 100;
/// Span records in flight between the proxy and the UI.
pub const CAPTURE_CAPACITY: usize = 1 << 16;
/// Most redraws per second.
pub const FPS: u32 = 20;
/// Most records folded in per UI tick, so input stays responsive under load.
const MAX_RECORDS_PER_TICK: usize = 200_000;

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
        } else if self.view.filter_editing {
            Mode::Filter
        } else {
            Mode::Normal
        }
    }

    /// Keeps the selections valid and follows the newest session (before each frame).
    pub fn sync(&mut self) {
        let st = self.frozen.as_ref().unwrap_or(&self.state);
        if self.view.follow {
            let newest = st.sessions.keys().next_back().copied();
            if newest.is_some() {
                self.view.sess_sel = newest;
            }
        }
        let rows = view::sessions::rows(st, &self.view);
        if self.view.sess_sel.is_none_or(|id| !rows.iter().any(|r| r.id == id)) && !self.view.follow {
            self.view.sess_sel = rows.first().map(|r| r.id);
        }
    }

    fn proxy_rows(&self) -> Vec<PxRow> {
        self.shown().snap.as_ref().map(|s| view::proxies::rows(s)).unwrap_or_default()
    }

    fn move_by(&mut self, delta: isize) {
        let v = &mut self.view;
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
                let id = v.detail.or(v.sess_sel);
                let len = id.and_then(|id| self.shown().trace(id)).map_or(0, |t| t.nodes.len());
                self.view.detail_sel = step(self.view.detail_sel.min(len.saturating_sub(1)), len);
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
                    self.view.detail_sel = 0;
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

    fn maint(&mut self, on: bool) -> Option<Effect> {
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
        match intent {
            Intent::Quit => return Some(Effect::Quit),
            Intent::Help => v.help = !v.help,
            Intent::Pause => {
                v.paused = !v.paused;
                self.frozen = if v.paused { Some(self.state.clone()) } else { None };
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
            Intent::Open => self.open(),
            Intent::Back => {
                if v.help {
                    v.help = false;
                } else if v.view == ViewKind::Detail {
                    v.view = ViewKind::Sessions;
                } else if !v.filter.is_empty() {
                    v.filter.clear();
                }
            }
            Intent::Disable => return self.maint(true),
            Intent::Enable => return self.maint(false),
            Intent::FilterStart => {
                v.view = ViewKind::Sessions;
                v.filter_editing = true;
            }
            Intent::FilterChar(c) => v.filter.push(c),
            Intent::FilterBackspace => {
                v.filter.pop();
            }
            Intent::FilterDone => v.filter_editing = false,
            Intent::FilterCancel => {
                v.filter.clear();
                v.filter_editing = false;
            }
            Intent::SortNext => v.sort = v.sort.next(),
            Intent::SortPrev => v.sort = v.sort.prev(),
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
    st.dropped_feed = feed.dropped();
    st.prune();
    any
}

/// True while the terminal is in the UI's hands (raw mode, alternate screen).
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);

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
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn enter_terminal() -> io::Result<(Terminal<CrosstermBackend<Stdout>>, TerminalGuard)> {
    install_panic_hook();
    enable_raw_mode()?;
    TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
    let guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let mut t = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    t.hide_cursor()?;
    t.clear()?;
    Ok((t, guard))
}

/// The UI loop: input, data, redraw, until `q` or the proxy stops.
fn ui_loop(
    app: &mut App,
    feed: &Feed,
    capture: &Capture,
    control: &Control,
    proxy: &JoinHandle<()>,
) -> io::Result<()> {
    let (mut terminal, _guard) = enter_terminal()?;
    let start = Instant::now();
    let frame = Duration::from_secs(1) / FPS;
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    loop {
        let wait = last_draw.map_or(Duration::ZERO, |t| frame.saturating_sub(t.elapsed()));
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
                            send_maint(control, id, on);
                            // Show the result at once, not at the next interval.
                            feed.request();
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
        if pump(&mut app.state, feed, capture) && !app.view.paused {
            dirty = true;
        }
        // The proxy stopped (SIGTERM) or a panic hook gave the terminal back: leave.
        if proxy.is_finished() || !TERMINAL_ACTIVE.load(Ordering::SeqCst) {
            return Ok(());
        }
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

/// Runs the proxy `w` (bound and enabled already) on its own thread and the UI on this
/// one until `q`, Ctrl-C or a signal stops the proxy; returns the exit code.
/// `notes` (configuration warnings) open the log pane.
pub fn run(mut w: Haproxy, capture: Capture, notes: Vec<String>) -> ExitCode {
    if !io::stdout().is_terminal() {
        crate::cli::print_msg("ALERT", "--tui needs a terminal on stdout");
        return ExitCode::from(1);
    }
    let (producer, feed) = snapshot::producer(SNAPSHOT_INTERVAL_MS);
    // The terminal is the UI's: log targets on stdout/stderr, `-d` lines and soft-stop
    // messages go to the log pane instead.
    w.logger.mute_std = true;
    w.global.quiet = true;
    w.debug_sink = Some(producer.debug_sink());
    w.observer = Some(Box::new(producer));
    let control = w.control();
    let proxy =
        match std::thread::Builder::new().name("haflow-proxy".into()).spawn(move || run_poll_loop(&mut w)) {
            Ok(t) => t,
            Err(e) => {
                crate::cli::print_msg("ALERT", &format!("cannot start the proxy thread: {e}"));
                return ExitCode::from(1);
            }
        };
    let mut app = App::default();
    for n in notes {
        app.state.push_log(LogKind::Ui, format!("[WARNING] config : {n}"));
    }
    let res = ui_loop(&mut app, &feed, &capture, &control, &proxy);
    restore_terminal();
    control.stop();
    let joined = proxy.join();
    match (res, joined) {
        (_, Err(_)) => {
            crate::cli::print_msg("ALERT", "the proxy thread panicked");
            ExitCode::from(70)
        }
        (Err(e), Ok(())) => {
            crate::cli::print_msg("ALERT", &format!("terminal error: {e}"));
            ExitCode::from(1)
        }
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
    }
}
