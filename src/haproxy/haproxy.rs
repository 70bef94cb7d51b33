//! The process: global settings, start-up (`init`) and the event loop (`run_poll_loop`).
//!
//! Reproduces `haproxy.c` (1.5-dev8). `Haproxy` holds what HAProxy keeps in globals: the
//! `global` settings, the proxies and listeners, `fdtab[]`, the poller, the scheduler, the
//! pools and the session list. `init` runs the start-up sequence the seed describes
//! (`readcfgfile` -> `check_config_validity` -> `protocol_bind_all` ->
//! `protocol_enable_all`), and `run_poll_loop` turns the loop: `wake_expired_tasks`,
//! `process_runnable_tasks`, `_do_poll`. One thread owns all of it; other threads talk to
//! it through `Control` (a channel plus a poller waker) and only ever receive copies.
//! What the proxy does is told to the `Observer`s registered on its thread (`observe`):
//! the core's one interface to the features that watch it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::haproxy::buffers::Chunk;
use crate::haproxy::cfgparse::{Config, Diag, readcfgfile};
use crate::haproxy::checks::{start_checks, stop_checks};
use crate::haproxy::ev_epoll::{_do_poll, Poller};
use crate::haproxy::fd::{FdOwner, FdState, FdTab, Sock};
use crate::haproxy::listener::{Listener, ListenerState, unbind_listener};
use crate::haproxy::log::{LOG_WARNING, Logger, StdStream, local_time, send_log};
use crate::haproxy::memory::{Pool, PoolStats};
use crate::haproxy::protocols::{BindError, ProtoList, protocol_bind_all, protocol_enable_all};
use crate::haproxy::proxy::{Proxy, ProxyState};
use crate::haproxy::server::Server;
use crate::haproxy::session::{Session, SnErr, session_free};
use crate::haproxy::task::{Scheduler, TaskContext, TaskState, process_runnable_tasks, wake_expired_tasks};
use crate::haproxy::time::{Clock, tick_first};
use crate::ids::{Fd, Index, ServerId, SessionId, Table, TaskId};
use crate::trace::names;
use crate::trace::runtime::TraceCtl;

/// `global.tune`.
#[derive(Clone, Debug)]
pub struct Tune {
    /// `tune.bufsize`: size of each buffer (default 16384).
    pub bufsize: usize,
    /// `tune.maxrewrite`: space kept free for header rewrites (default 1024).
    pub maxrewrite: Option<usize>,
    /// `tune.maxaccept`: accepts per listener wake-up (default 64).
    pub maxaccept: u32,
    /// `tune.maxpollevents`: events per `epoll_wait` (default 200).
    pub maxpollevents: usize,
    /// `tune.http.maxhdr`: most headers in a message (default 101).
    pub http_maxhdr: usize,
}

impl Default for Tune {
    fn default() -> Self {
        Tune { bufsize: 16384, maxrewrite: None, maxaccept: 64, maxpollevents: 200, http_maxhdr: 101 }
    }
}

/// A `stats socket` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsSocketConf {
    /// The address as written (`/path`, `ipv4@ADDR:PORT`, `fd@N`).
    pub addr: String,
    /// `level user|operator|admin`.
    pub level: String,
    /// `mode` (octal permissions) for a UNIX socket.
    pub mode: Option<u32>,
    /// File and line of the keyword, for messages.
    pub conf: (String, usize),
}

/// `struct global`.
#[derive(Clone, Debug, Default)]
pub struct Global {
    /// `maxconn`: process-wide concurrent connections.
    pub maxconn: u32,
    /// Tunables.
    pub tune: Tune,
    /// `pidfile`.
    pub pidfile: Option<PathBuf>,
    /// `log` targets of the global section.
    pub logs: Vec<crate::haproxy::log::LogTarget>,
    /// `log-tag`.
    pub log_tag: Option<String>,
    /// `log-send-hostname`.
    pub log_send_hostname: Option<String>,
    /// `stats socket` lines.
    pub stats_sockets: Vec<StatsSocketConf>,
    /// `stats timeout`, ms (0: HAProxy's default of 10 s).
    pub stats_timeout: u64,
    /// `stats maxconn`: clients per stats socket (0: HAProxy's default of 10).
    pub stats_maxconn: u32,
    /// `ulimit-n`: the fd limit to set; `None` sizes it from `maxsock`.
    pub rlimit_nofile: Option<u64>,
    /// `maxsock`: the fds the process may need (two per connection plus its own).
    pub maxsock: u64,
    /// `quiet` / `-q`.
    pub quiet: bool,
    /// `debug` / `-d`: print HAProxy's debug lines on stdout.
    pub debug: bool,
}

impl Global {
    /// True in debug mode (`MODE_DEBUG`).
    pub fn debug(&self) -> bool {
        self.debug
    }
}

/// HAProxy 2.6's `DEFAULT_MAXCONN`: the least `maxconn` it derives from the fd limit.
const DEFAULT_MAXCONN: u64 = 100;

/// The poller's fd and the wake-up pipe's two (HAProxy counts them per thread).
const POLLER_FDS: u64 = 3;

/// The process's `RLIMIT_NOFILE` as (soft, hard).
pub fn fd_limits() -> Option<(u64, u64)> {
    // SAFETY: getrlimit fills a plain struct we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        (libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0).then_some((r.rlim_cur, r.rlim_max))
    }
}

/// haproxy.c:compute_ideal_maxconn() in 2.6: with no `maxconn` set, as many connections
/// as the fd limit allows at two fds each, once `reserved` fds (listeners, checks, stats
/// sockets, `maxsock`'s base of 10) and the poller's are set aside.
/// Divergence: no pipes (haflow does not splice) nor SSL engines to count.
pub fn compute_ideal_maxconn(reserved: u64) -> u32 {
    let remain = fd_limits().map_or(4096, |(cur, max)| cur.max(max));
    let maxconn = remain.saturating_sub(reserved + POLLER_FDS) / 2;
    maxconn.clamp(DEFAULT_MAXCONN, u64::from(u32::MAX)) as u32
}

/// haproxy.c:compute_ideal_maxsock() in 2.6: the fds `maxconn` connections need, plus the
/// reserved ones and the poller's.
pub fn compute_ideal_maxsock(maxconn: u32, reserved: u64) -> u64 {
    u64::from(maxconn) * 2 + reserved + POLLER_FDS
}

/// The "ulimits" step of haproxy.c:main() in 2.6: set `RLIMIT_NOFILE` to `ulimit-n`, or
/// to `maxsock` (raising the hard limit too when allowed, as root is). A limit that cannot
/// be had refuses to start (2.6's default `strict-limits`), where running on would later
/// answer 503s once fds run out. Returns the warning to print when `ulimit-n` is below
/// what `maxconn` needs.
/// Divergence: HAProxy 2.6 as Debian ships it reports `ulimit-n` in `show info` but leaves
/// its process at the boot limit (measured: `ulimit-n 30` shows `Ulimit-n: 30` with 20000
/// in /proc/PID/limits); haflow applies it, and warns instead of staying silent.
pub fn apply_fd_limit(g: &Global) -> Result<Option<String>, String> {
    let Some((cur, max)) = fd_limits() else { return Ok(None) };
    let want = g.rlimit_nofile.unwrap_or(g.maxsock);
    let limit = libc::rlimit { rlim_cur: want, rlim_max: max.max(want) };
    // SAFETY: setrlimit reads a plain struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(format!("[haproxy.main()] Cannot raise FD limit to {want}, limit is {cur}."));
    }
    Ok((want < g.maxsock).then(|| {
        format!(
            "[haproxy.main()] FD limit ({want}) too low for maxconn={}/maxsock={}. Please raise 'ulimit-n' to {} or more to avoid any trouble.",
            g.maxconn, g.maxsock, g.maxsock
        )
    }))
}

/// Counters for `show activity` and the TUI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Loop iterations.
    pub loops: u64,
    /// Events returned by the poller.
    pub poll_events: u64,
    /// Tasks woken by timers.
    pub wake_tasks: u64,
    /// Connections accepted.
    pub accepted: u64,
}

/// What another thread may ask the proxy thread to do.
pub enum Command {
    /// Stop now (SIGTERM/SIGINT): close everything and leave the loop.
    Stop,
    /// Soft stop (SIGUSR1): stop listening, let sessions finish, then leave.
    SoftStop,
    /// Run a closure on the proxy state (used by the UI and tests for live changes).
    Apply(Box<dyn FnOnce(&mut Haproxy) + Send>),
}

/// A handle other threads use to talk to the proxy thread.
#[derive(Clone)]
pub struct Control {
    tx: Sender<Command>,
    waker: Arc<mio::Waker>,
}

impl Control {
    /// Sends a command and wakes the loop up.
    pub fn send(&self, cmd: Command) {
        if self.tx.send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Asks the proxy to stop (hard stop).
    pub fn stop(&self) {
        self.send(Command::Stop);
    }
}

/// What the proxy shows at a step point.
pub enum View<'a> {
    /// One listener being set up (before the proxy's tables exist).
    Listener(&'a Listener),
    /// The proxies and their listeners (start-up).
    Listeners(&'a [Proxy], &'a [Listener]),
    /// A session being processed.
    Session(&'a Haproxy, &'a Session),
}

/// The core's one interface upward: what the proxy thread tells the features that watch
/// it (the terminal UI's snapshots, the trace outputs, the walkthrough's stepper, tests).
/// Observers are registered on the proxy thread (`observe`) and run there, so they must be
/// quick; the one exception is the walkthrough, which pauses the loop at a step on purpose.
pub trait Observer: Send {
    /// Whether `step_point` does anything. Asked once, by `observe`: step points are on
    /// the hot path, and the proxy skips them with one load while no observer of the
    /// process wants them.
    fn wants_step_points(&self) -> bool {
        false
    }
    /// The proxy entered span `span`, a place where a walkthrough step may stop; `view`
    /// shows what it works on there.
    fn step_point(&mut self, _span: &'static str, _view: &View<'_>) {}
    /// A log line was emitted.
    fn log(&mut self, _line: &str) {}
    /// A transaction ended (`sess_log` ran for it: every HTTP request, every TCP
    /// session), before the session is reset for the next request or freed, so its
    /// request, status, termination state and server are still set; `log` is its log line
    /// when one was emitted.
    fn txn_ended(&mut self, _w: &Haproxy, _s: &Session, _log: Option<&str>) {}
    /// A session was freed.
    fn session_freed(&mut self, _s: &Session) {}
    /// A loop turn's work is done and the loop may sleep in the poller next: hand on what
    /// the turn produced (span records, a snapshot read from `w`).
    fn loop_turn(&mut self, _w: &Haproxy) {}
    /// The loop ended (hard stop, or a soft stop with no job left); `w` is as it leaves
    /// it, so that a watcher can show the proxy's last state.
    fn stopped(&mut self, _w: &Haproxy) {}
}

/// An observer that runs `f` at the end of each loop turn and when the loop stops: the
/// trace outputs register `trace::subscriber::flush_thread` this way, so that the span
/// records of a turn go out before the loop may sleep.
pub struct OnLoopTurn<F>(pub F);

impl<F: FnMut() + Send> Observer for OnLoopTurn<F> {
    fn loop_turn(&mut self, _w: &Haproxy) {
        (self.0)()
    }
    fn stopped(&mut self, _w: &Haproxy) {
        (self.0)()
    }
}

/// A thread's observers, and how many of them want step points.
struct Observers {
    list: Vec<Box<dyn Observer>>,
    stepping: usize,
}

impl Drop for Observers {
    fn drop(&mut self) {
        // The thread ends: its observers no longer want step points.
        STEP_OBSERVERS.fetch_sub(self.stepping, Ordering::Relaxed);
    }
}

thread_local! {
    static OBSERVERS: RefCell<Observers> = const { RefCell::new(Observers { list: Vec::new(), stepping: 0 }) };
}

/// Observers of the whole process that want step points (see `step_point`).
static STEP_OBSERVERS: AtomicUsize = AtomicUsize::new(0);

/// Registers `o` on this thread, the proxy thread: it is told what the proxy run here
/// does, from the reading of its configuration (step points) to the loop's end. Observers
/// live as long as the thread.
pub fn observe(o: Box<dyn Observer>) {
    OBSERVERS.with(|obs| {
        let mut obs = obs.borrow_mut();
        if o.wants_step_points() {
            obs.stepping += 1;
            STEP_OBSERVERS.fetch_add(1, Ordering::Relaxed);
        }
        obs.list.push(o);
    });
}

/// Calls `f` on each observer of this thread. An observer that makes the proxy report
/// something while it is being called is not called again for it.
fn notify(mut f: impl FnMut(&mut dyn Observer)) {
    let _ = OBSERVERS.try_with(|obs| {
        if let Ok(mut obs) = obs.try_borrow_mut() {
            for o in &mut obs.list {
                f(o.as_mut());
            }
        }
    });
}

/// A place where a walkthrough may stop: the proxy code calls it right after entering the
/// span `span`, with what the learner should see there. One load and a branch unless an
/// observer of the process wants step points; `view` is built only when one does.
#[inline]
pub fn step_point<'a>(span: &'static str, view: impl FnOnce() -> View<'a>) {
    if STEP_OBSERVERS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let view = view();
    notify(|o| o.step_point(span, &view));
}

/// Signals turned into flags by the handlers and into work by the loop.
struct SignalState {
    stop: Arc<AtomicBool>,
    soft: Arc<AtomicBool>,
}

/// Everything HAProxy keeps in globals, owned by the proxy thread.
pub struct Haproxy {
    /// `global` settings.
    pub global: Global,
    /// Proxies by `ProxyId`.
    pub proxies: Vec<Proxy>,
    /// Listeners by `ListenerId`.
    pub listeners: Vec<Listener>,
    /// Registered protocols (`protocols` list).
    pub protocols: ProtoList,
    /// `fdtab[]`.
    pub fdtab: FdTab,
    /// `cur_poller`.
    pub poller: Poller,
    /// Run queue, wait queue and tasks.
    pub sched: Scheduler,
    /// Live sessions (HAProxy's `sessions` list).
    pub sessions: Table<Session>,
    /// `pool2_session`.
    pub pool2_session: Pool<Session>,
    /// `pool2_buffer` (`tune.bufsize` bytes each).
    pub pool2_buffer: Pool<Chunk>,
    /// The clock (`now_ms`, `date`).
    pub clock: Clock,
    /// Current connections, process-wide (`actconn`).
    pub actconn: u32,
    /// Connections accepted since start (`totalconn`).
    pub totalconn: u64,
    /// Things keeping the process alive: listeners and sessions (`jobs`).
    pub jobs: u32,
    /// Listeners paused on the process-wide `maxconn` (`global_listener_queue`).
    pub global_listener_queue: VecDeque<crate::ids::ListenerId>,
    /// `global_listener_queue_task`: retries the listeners a resource shortage limited.
    pub global_listener_queue_task: Option<TaskId>,
    /// Loop counters.
    pub activity: Activity,
    /// Log sockets and identity.
    pub logger: Logger,
    /// Set when a soft stop is in progress (`stopping`).
    pub stopping: bool,
    /// Set when the loop must end at the next turn.
    pub hard_stop: bool,
    next_uniq_id: u32,
    commands: Receiver<Command>,
    control: Control,
    signals: Option<SignalState>,
    /// Debug lines (`-d`) go here instead of stdout when set (tests, the UI).
    pub debug_sink: Option<DebugSink>,
    /// The stats sockets and their clients (`dumpstats.rs`).
    pub cli: crate::haproxy::dumpstats::Cli,
    /// Runtime trace settings and the `buf0` ring (`trace`, `show events`).
    pub trace: Arc<TraceCtl>,
}

/// Where `-d` debug lines go when not to stdout.
pub type DebugSink = Box<dyn FnMut(&str) + Send>;

impl std::fmt::Debug for Haproxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Haproxy")
            .field("proxies", &self.proxies.len())
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// Why `init` failed.
#[derive(Debug)]
pub enum InitError {
    /// The configuration has errors (ALERTs to print).
    Config(Diag),
    /// A listener could not be bound.
    Bind(String),
    /// The poller could not be created.
    Io(std::io::Error),
}

impl Haproxy {
    /// The process state for a parsed configuration; nothing is bound yet.
    pub fn new(cfg: Config) -> std::io::Result<Haproxy> {
        crate::haproxy::flags::register_names();
        let poller = Poller::new(cfg.global.tune.maxpollevents)?;
        let waker = Arc::new(poller.waker()?);
        let (tx, rx) = channel();
        let bufsize = cfg.global.tune.bufsize;
        let mut logger = Logger::default();
        if let Some(t) = &cfg.global.log_tag {
            logger.tag = t.clone();
        }
        logger.hostname = cfg.global.log_send_hostname.clone();
        let mut clock = Clock::new();
        clock.tv_update_date();
        let jobs = cfg.listeners.len() as u32;
        let mut sched = Scheduler::default();
        let global_listener_queue_task =
            sched.task_new(crate::haproxy::listener::manage_global_listener_queue, TaskContext::Global);
        Ok(Haproxy {
            global: cfg.global,
            proxies: cfg.proxies,
            listeners: cfg.listeners,
            protocols: cfg.protocols,
            fdtab: FdTab::default(),
            poller,
            sched,
            sessions: Table::default(),
            pool2_session: Pool::create_pool("session", std::mem::size_of::<Session>()),
            pool2_buffer: Pool::create_pool("buffer", bufsize),
            clock,
            actconn: 0,
            totalconn: 0,
            jobs,
            global_listener_queue: VecDeque::new(),
            global_listener_queue_task,
            activity: Activity::default(),
            logger,
            stopping: false,
            hard_stop: false,
            next_uniq_id: 0,
            commands: rx,
            control: Control { tx, waker },
            signals: None,
            debug_sink: None,
            cli: crate::haproxy::dumpstats::Cli::default(),
            trace: Arc::new(TraceCtl::new(|t| local_time(t).iso8601())),
        })
    }

    /// A handle for other threads.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The next session number (`uniq_id`), starting at 0 as HAProxy 2.6 prints it.
    pub fn next_uniq_id(&mut self) -> u32 {
        let id = self.next_uniq_id;
        self.next_uniq_id = self.next_uniq_id.wrapping_add(1);
        id
    }

    /// The server `id`.
    pub fn server(&self, id: ServerId) -> &Server {
        &self.proxies[id.px.idx()].servers[id.idx as usize]
    }

    /// The server `id`, mutably.
    pub fn server_mut(&mut self, id: ServerId) -> &mut Server {
        &mut self.proxies[id.px.idx()].servers[id.idx as usize]
    }

    /// A server's name for spans and logs (`<NOSRV>` for none).
    pub fn server_name(&self, id: Option<ServerId>) -> String {
        id.map_or_else(|| "<NOSRV>".to_string(), |id| self.server(id).name.clone())
    }

    /// A proxy by name.
    pub fn find_proxy(&self, name: &str) -> Option<&Proxy> {
        self.proxies.iter().find(|p| p.name == name)
    }

    /// True while the loop must not sleep because a stop is being processed.
    pub fn stopping_now(&self) -> bool {
        self.hard_stop
    }

    /// Writes one `-d` debug line (on stdout, in order with the log lines sent there).
    pub fn debug_line(&mut self, mut line: String) {
        match &mut self.debug_sink {
            Some(f) => f(&line),
            None => {
                line.push('\n');
                self.logger.write_std(StdStream::Out, line);
            }
        }
    }

    /// Hands a log line to the observers.
    pub fn observe_log(&mut self, line: &str) {
        notify(|o| o.log(line));
    }

    /// Tells the observers that `s`'s transaction ended (`log`: its log line, if any).
    pub fn on_txn_ended(&self, s: &Session, log: Option<&str>) {
        notify(|o| o.txn_ended(self, s, log));
    }

    /// Hands a freed session to the observers (and its times to `show stat`'s averages).
    pub fn on_session_freed(&mut self, s: &Session) {
        crate::haproxy::stats::stream_update_time_stats(self, s);
        notify(|o| o.session_freed(s));
    }

    /// The file mode for a UNIX listener (from its `bind ... mode` option; none yet).
    pub fn unix_mode(&self, _lid: crate::ids::ListenerId) -> Option<u32> {
        None
    }

    /// Counters of every pool (`show pools`).
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        vec![self.pool2_buffer.stats(), self.pool2_session.stats(), self.sched.pool_stats()]
    }

    /// Objects in use across all pools (0 when idle: nothing leaked). Health-check tasks
    /// live as long as the process, so the ones servers hold are not counted; a check
    /// task no server knows about still is.
    pub fn pools_in_use(&self) -> u64 {
        let check_tasks = self
            .proxies
            .iter()
            .flat_map(|p| &p.servers)
            .flat_map(|s| [&s.check, &s.agent])
            .filter(|c| c.as_ref().is_some_and(|c| c.task.is_some()))
            .count() as u64;
        let process_tasks = u64::from(self.global_listener_queue_task.is_some());
        self.pool_stats().iter().map(|p| p.used).sum::<u64>().saturating_sub(check_tasks + process_tasks)
    }

    /// Installs SIGINT/SIGTERM (hard stop) and SIGUSR1 (soft stop) handlers that wake the
    /// loop through a pipe registered in `fdtab[]`.
    pub fn install_signal_handlers(&mut self) -> std::io::Result<()> {
        let (rx, tx) = mio::net::UnixStream::pair()?;
        let stop = Arc::new(AtomicBool::new(false));
        let soft = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop))?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&soft))?;
        let raw = tx.as_raw_fd();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGUSR1] {
            signal_hook::low_level::pipe::register_raw(sig, raw)?;
        }
        // The write end must stay open for the handlers; it lives as long as the process.
        std::mem::forget(tx);
        let fd = self.fdtab.fd_insert(
            self.poller.registry(),
            Sock::Unix(rx),
            FdOwner::Signals,
            [Some(signal_pipe_read), None],
            FdState::FD_STREADY,
        )?;
        self.fdtab.fd_want_recv(fd);
        self.signals = Some(SignalState { stop, soft });
        Ok(())
    }

    fn handle_signals(&mut self) {
        let Some(sig) = &self.signals else { return };
        if sig.stop.swap(false, Ordering::SeqCst) {
            self.hard_stop = true;
        }
        if sig.soft.swap(false, Ordering::SeqCst) {
            self.soft_stop();
        }
    }

    fn handle_commands(&mut self) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Stop => self.hard_stop = true,
                Command::SoftStop => self.soft_stop(),
                Command::Apply(f) => f(self),
            }
        }
    }

    /// proxy.c:soft_stop() in 2.6: stop listening; sessions finish; the loop ends when none
    /// is left. Each proxy says it stopped as 2.6's `proxy_cond_disable()` does.
    /// Divergence: stops at once: no `grace` delay (a warning at parse time says so) and no
    /// `hard-stop-after` task (both warned about at parse time).
    pub fn soft_stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        let targets = self.global.logs.clone();
        for i in 0..self.proxies.len() {
            if self.proxies[i].state == ProxyState::PR_STSTOPPED {
                continue;
            }
            let listeners = self.proxies[i].listeners.clone();
            for lid in listeners {
                if self.listeners[lid.idx()].state >= ListenerState::LI_LISTEN {
                    unbind_listener(self, lid);
                    self.jobs -= 1;
                }
            }
            self.proxies[i].state = ProxyState::PR_STSTOPPED;
            let p = &self.proxies[i];
            let msg = format!(
                "Proxy {} stopped (cumulated conns: FE: {}, BE: {}).",
                p.name,
                if p.is_frontend() { p.counters.cum_conn } else { 0 },
                if p.is_backend() { p.counters.cum_sess } else { 0 }
            );
            if !self.global.quiet && !self.logger.mute_std {
                crate::haproxy::errors::print_message("WARNING", &msg);
            }
            send_log(self, &targets, LOG_WARNING, &msg);
        }
        // The stats sockets stop listening too; connected clients may finish.
        crate::haproxy::dumpstats::stats_unbind_sockets(self);
    }

    /// Hard stop: close every session (logged as killed), every listener and every
    /// health check (its connection and its task).
    fn kill_everything(&mut self) {
        stop_checks(self);
        crate::haproxy::dumpstats::cli_close_all(self);
        let ids: Vec<Index> = self.sessions.iter().map(|(i, _)| i).collect();
        for i in ids {
            if let Some(mut s) = self.sessions.take(i) {
                s.set_err(SnErr::SN_ERR_KILLED);
                let fe = s.fe;
                self.proxies[fe.idx()].feconn = self.proxies[fe.idx()].feconn.saturating_sub(1);
                if s.flags.contains(crate::haproxy::session::SessFlags::SN_BE_ASSIGNED) {
                    let be = &mut self.proxies[s.be.idx()];
                    be.beconn = be.beconn.saturating_sub(1);
                }
                self.actconn = self.actconn.saturating_sub(1);
                let l = &mut self.listeners[s.listener.idx()];
                l.nbconn = l.nbconn.saturating_sub(1);
                self.jobs = self.jobs.saturating_sub(1);
                // A hard stop: no `process_session` runs, the tree ends under its root.
                drop(session_free(self, s, &tracing::Span::none()));
            }
        }
        for lid in 0..self.listeners.len() {
            if self.listeners[lid].state >= ListenerState::LI_LISTEN {
                unbind_listener(self, crate::ids::ListenerId::from(lid));
                self.jobs = self.jobs.saturating_sub(1);
            }
        }
    }
}

/// The signal pipe's read callback: drain it; the flags say which signal came.
fn signal_pipe_read(w: &mut Haproxy, fd: Fd) {
    let mut buf = [0u8; 64];
    if let Some(sock) = w.fdtab.sock(fd) {
        while let Ok(n) = sock.recv(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
    w.fdtab.fd_cant_recv(fd);
    w.handle_signals();
}

/// haproxy.c:init() in 1.5-dev8, configuration part: `readcfgfile` (which ends with
/// `check_config_validity`) and the creation of the process state.
pub fn init(paths: &[PathBuf], env: &dyn Fn(&str) -> Option<String>) -> Result<Haproxy, InitError> {
    let cfg = readcfgfile(paths, env).map_err(InitError::Config)?;
    Haproxy::new(cfg).map_err(InitError::Io)
}

/// haproxy.c:main() in 1.5-dev8, after `init()`: `protocol_bind_all`, then
/// `protocol_enable_all`. Reports a bind failure as HAProxy 2.6 does (`Binding
/// [file:line] for frontend X: ...`).
/// Divergence: the health checks start here, once bound (dev8 starts them in `init()`);
/// no retry loop against old processes (`-sf`/`-st` are accepted and ignored).
pub fn start_proxies(w: &mut Haproxy) -> Result<(), InitError> {
    if let Err(BindError { msg }) = protocol_bind_all(w) {
        let failed = w.listeners.iter().find(|l| l.state == ListenerState::LI_ASSIGNED);
        let text = match failed {
            Some(l) => format!(
                "Binding [{}:{}] for frontend {}: {}",
                l.conf.0,
                l.conf.1,
                w.proxies[l.frontend.idx()].name,
                msg
            ),
            None => msg,
        };
        return Err(InitError::Bind(text));
    }
    // The stats sockets are listeners of the `GLOBAL` frontend: bound with the others.
    if let Err(msg) = crate::haproxy::dumpstats::stats_bind_sockets(w) {
        return Err(InitError::Bind(msg));
    }
    // checks.c:start_checks(): health-check tasks exist before the first accept.
    start_checks(w).map_err(|msg| InitError::Io(std::io::Error::other(msg)))?;
    protocol_enable_all(w);
    Ok(())
}

// ANCHOR: run_poll_loop
/// haproxy.c:run_poll_loop() in 1.5-dev8: until no job is left (or a hard stop), wake
/// expired tasks, run the runnable ones, then poll for I/O until the next timer.
pub fn run_poll_loop(w: &mut Haproxy) {
    // Runtime traces (`trace ...` on the stats socket) follow the spans of this thread.
    crate::trace::runtime::install_for_this_thread(Arc::clone(&w.trace));
    let _sp = tracing::info_span!(names::RUN_POLL_LOOP).entered();
    loop {
        w.handle_commands();
        w.handle_signals();
        if w.hard_stop {
            w.kill_everything();
            notify(|o| o.stopped(w));
            break;
        }
        let next = wake_expired_tasks(w);
        process_runnable_tasks(w);
        if w.jobs == 0 && w.stopping {
            // Health checks do not keep the process alive; free them on the way out.
            stop_checks(w);
            notify(|o| o.stopped(w));
            break;
        }
        // Every fd has an owner that will close it, every session something to wake it.
        #[cfg(debug_assertions)]
        {
            let broken = crate::haproxy::debug::invariant_violations(w);
            assert!(broken.is_empty(), "loop invariants broken: {broken:#?}");
        }
        let exp = tick_first(next, w.sched.next_timer());
        // Observers get this turn's span records and state before the loop may sleep.
        notify(|o| o.loop_turn(w));
        let report = _do_poll(w, exp);
        w.activity.loops += 1;
        if report.woken {
            w.handle_commands();
        }
        // Statistics roll once per second; `show events -w` clients get new events.
        crate::haproxy::stats::stats_tick(w);
        crate::haproxy::dumpstats::cli_flush_watchers(w);
    }
}
// ANCHOR_END: run_poll_loop

/// Wakes every session task with `reason` (used by live changes that sessions must see).
pub fn wake_all_sessions(w: &mut Haproxy, reason: TaskState) {
    let tasks: Vec<_> = w
        .sched
        .iter()
        .filter(|(_, t)| matches!(t.context, TaskContext::Session(_)))
        .map(|(id, _)| id)
        .collect();
    for t in tasks {
        w.sched.task_wakeup(t, reason);
    }
}

/// The session in slot `id`, if alive and not being processed.
pub fn session(w: &Haproxy, id: SessionId) -> Option<&Session> {
    w.sessions.get(id.idx())
}
