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
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::haproxy::buffers::Chunk;
use crate::haproxy::cfgparse::{Config, Diag, readcfgfile};
use crate::haproxy::checks::{start_checks, stop_checks};
use crate::haproxy::ev_epoll::{_do_poll, Poller};
use crate::haproxy::fd::{FdOwner, FdState, FdTab, Sock};
use crate::haproxy::listener::{Listener, ListenerState, unbind_listener};
use crate::haproxy::log::{LOG_WARNING, Logger, StdStream, local_time, send_log};
use crate::haproxy::memory::{Pool, PoolStats};
use crate::haproxy::pipe::PipePool;
use crate::haproxy::protocols::{ProtoList, protocol_bind_all, protocol_enable_all, protocol_unbind_all};
use crate::haproxy::proxy::{
    Proxy, ProxyOptions, ProxyState, pause_proxies, resume_proxies, start_proxies, stop_proxy,
};
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
    /// `tune.comp.maxlevel`: the deflate level of HTTP compression (1 to 9, default 1).
    pub comp_maxlevel: u32,
    /// `tune.pipesize`: the size of each splicing pipe (0: the kernel's default).
    pub pipesize: usize,
    /// `GTUNE_USE_SPLICE`: kernel splicing may be used (cleared by `nosplice` / `-dS`).
    pub use_splice: bool,
}

impl Default for Tune {
    fn default() -> Self {
        Tune {
            bufsize: 16384,
            maxrewrite: None,
            maxaccept: 64,
            maxpollevents: 200,
            http_maxhdr: 101,
            comp_maxlevel: 1,
            pipesize: 0,
            use_splice: true,
        }
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
    /// `maxpipes`: pipes in use at once for splicing (0: computed by
    /// `compute_ideal_maxpipes`).
    pub maxpipes: u32,
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
    /// `proc.` variables: set by the section's `set-var` lines, then by rules.
    pub vars_proc: crate::haproxy::vars::VarMap,
    /// `noreuseport` / `-dR` (2.6): listeners do not set `SO_REUSEPORT`, so a new process
    /// cannot bind a port an old one listens on until the old one pauses (`SIGTTOU`).
    pub noreuseport: bool,
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
/// sockets, `maxsock`'s base of 10), the poller's and the splicing pipes' (`pipes`, from
/// `compute_ideal_maxpipes`: a fixed number, or `None` for a quarter pipe a connection)
/// are set aside.
/// Divergence: no SSL engines to count.
pub fn compute_ideal_maxconn(reserved: u64, pipes: Option<u32>) -> u32 {
    let mut remain =
        fd_limits().map_or(4096, |(cur, max)| cur.max(max)).saturating_sub(reserved + POLLER_FDS);
    let maxconn = match pipes {
        // Two fds a connection and two a pipe, a pipe for four connections.
        None => 2 * remain / 5,
        Some(p) => {
            // Pipes are optional: only set aside when they fit.
            if u64::from(p) * 2 < remain {
                remain -= u64::from(p) * 2;
            }
            remain / 2
        }
    };
    maxconn.clamp(DEFAULT_MAXCONN, u64::from(u32::MAX)) as u32
}

/// haproxy.c:compute_ideal_maxpipes() in 2.6: a pipe for a quarter of the connections the
/// splicing proxies may hold (a frontend's `maxconn`, a backend's share of the global
/// one; 0 when no proxy splices). `None` ("unlimited") while the global `maxconn` is not
/// known and some splicing proxy has no limit of its own.
/// Divergence: a backend counts the global `maxconn`, as haflow has no `fullconn`.
pub fn compute_ideal_maxpipes(proxies: &[Proxy], maxconn: u32) -> Option<u32> {
    let (mut nbfe, mut nbbe, mut unlimited) = (0u64, 0u64, false);
    for p in proxies.iter().filter(|p| p.options.intersects(ProxyOptions::PR_O2_SPLIC_ANY)) {
        if p.is_frontend() {
            nbfe += u64::from(p.maxconn);
            if p.maxconn == 0 {
                unlimited = true;
                break;
            }
        }
        if p.is_backend() {
            nbbe += u64::from(maxconn);
            if maxconn == 0 {
                unlimited = true;
                break;
            }
        }
    }
    let mut pipes = nbfe.max(nbbe);
    if maxconn > 0 {
        if pipes > u64::from(maxconn) || unlimited {
            pipes = u64::from(maxconn);
        }
    } else if unlimited {
        return None;
    }
    let pipes = u32::try_from(pipes).unwrap_or(u32::MAX);
    Some(if pipes >= 4 { pipes / 4 } else { pipes })
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
    /// Act as if the process had received this signal (`SIGUSR1`, `SIGTTOU`, `SIGTTIN`...):
    /// it is queued and processed at the top of the next loop turn.
    Signal(i32),
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

/// signal.c's state in 1.5-dev8: the handlers write each signal's number into a pipe
/// (the only thing a handler may safely do here); the pipe's read callback queues them,
/// and `signal_process_queue` runs their work at the top of the loop, in order.
#[derive(Debug, Default)]
pub struct SignalState {
    /// The pipe's write end, which the handlers write to (lives as long as the process).
    pipe_tx: Option<std::os::fd::RawFd>,
    /// `signal_queue[]`: signals received and not processed yet, in order, each once.
    pub queue: VecDeque<i32>,
}

/// Everything HAProxy keeps in globals, owned by the proxy thread.
pub struct Haproxy {
    /// `global` settings.
    pub global: Global,
    /// Proxies by `ProxyId`.
    pub proxies: Vec<Proxy>,
    /// `cache` sections (`caches` in cache.c), by declaration order.
    pub caches: Vec<crate::haproxy::cache::Cache>,
    /// `pattern_reference`: the map files, shared by every converter using one and
    /// changed by the CLI's `add map`, `del map`...
    pub pat_refs: Vec<crate::haproxy::pattern::PatRef>,
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
    /// The splicing pipes (`pipes_live`, `pipes_used`, `pipes_free`).
    pub pipes: PipePool,
    /// `pool_comp_ctx`: contexts of compressed responses (listed once used, as 1.5.0
    /// creates it at the first compressed response).
    pub pool_comp_ctx: crate::haproxy::compression::CompCtxPool,
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
    /// `idle_conn_task` (2.6): purges the servers' idle connections
    /// (`srv_cleanup_idle_conns`); only when some server may keep them.
    pub idle_conn_task: Option<TaskId>,
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
    /// `oldpids[]` and `oldpids_sig`: the processes `-sf`/`-st` named.
    pub oldpids: OldPids,
    /// Signals received and not yet processed (`signal_queue`).
    pub signals: SignalState,
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
        let (cfg_maxpipes, cfg_pipesize) = (cfg.global.maxpipes, cfg.global.tune.pipesize);
        let mut logger = Logger::default();
        if let Some(t) = &cfg.global.log_tag {
            logger.tag = t.clone();
        }
        logger.hostname = cfg.global.log_send_hostname.clone();
        let mut clock = Clock::new();
        clock.tv_update_date();
        // Each listener still to bind is a job (a `disabled` proxy's were deleted).
        let jobs = cfg.listeners.iter().filter(|l| l.state >= ListenerState::LI_ASSIGNED).count() as u32;
        let mut sched = Scheduler::default();
        let global_listener_queue_task =
            sched.task_new(crate::haproxy::listener::manage_global_listener_queue, TaskContext::Global);
        // Only a process whose servers may keep idle connections needs their purge task.
        let pools = cfg.proxies.iter().any(|p| {
            p.reuse != crate::haproxy::proxy::ReuseMode::Never
                && p.mode == crate::haproxy::proxy::ProxyMode::PR_MODE_HTTP
                && p.servers.iter().any(|s| s.pool_purge_delay > 0 && s.max_idle_conns != 0)
        });
        let idle_conn_task = if pools {
            sched.task_new(crate::haproxy::server::srv_cleanup_idle_conns, TaskContext::Global)
        } else {
            None
        };
        Ok(Haproxy {
            global: cfg.global,
            proxies: cfg.proxies,
            caches: cfg.caches,
            pat_refs: cfg.pat_refs,
            listeners: cfg.listeners,
            protocols: cfg.protocols,
            fdtab: FdTab::default(),
            poller,
            sched,
            sessions: Table::default(),
            pool2_session: Pool::create_pool("session", std::mem::size_of::<Session>()),
            pool2_buffer: Pool::create_pool("buffer", bufsize),
            pipes: PipePool::new(cfg_maxpipes, cfg_pipesize),
            pool_comp_ctx: Pool::create_pool(
                "comp_ctx",
                std::mem::size_of::<crate::haproxy::compression::CompCtx>(),
            ),
            clock,
            actconn: 0,
            totalconn: 0,
            jobs,
            global_listener_queue: VecDeque::new(),
            global_listener_queue_task,
            idle_conn_task,
            activity: Activity::default(),
            logger,
            stopping: false,
            hard_stop: false,
            next_uniq_id: 0,
            commands: rx,
            control: Control { tx, waker },
            oldpids: OldPids::default(),
            signals: SignalState::default(),
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

    /// memory.c:pool_gc2() in 1.5-dev8, which walks every pool: the free objects of the
    /// session and buffer pools go back to the system (`Pool::pool_gc2` on each).
    /// Divergence: the task pool is left alone (tasks are few and small).
    pub fn gc_all_pools(&mut self) {
        self.pool2_session.pool_gc2();
        self.pool2_buffer.pool_gc2();
    }

    /// Counters of every pool (`show pools`).
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let mut v = vec![self.pool2_buffer.stats(), self.pool2_session.stats(), self.sched.pool_stats()];
        if self.pool_comp_ctx.stats().allocated > 0 {
            v.push(self.pool_comp_ctx.stats());
        }
        // Tables whose entries have the same size share one `sticktables` pool in HAProxy
        // (`MEM_F_SHARED`): their counters are merged here.
        for t in self.proxies.iter().filter_map(|p| p.table.as_ref()) {
            let st = t.pool_stats();
            match v.iter_mut().find(|p| p.name == st.name && p.size == st.size) {
                Some(p) => {
                    p.allocated += st.allocated;
                    p.used += st.used;
                    p.failed += st.failed;
                }
                None => v.push(st),
            }
        }
        v
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
        let process_tasks = u64::from(self.global_listener_queue_task.is_some())
            + u64::from(self.idle_conn_task.is_some())
            + self.proxies.iter().filter(|p| p.table.as_ref().is_some_and(|t| t.exp_task.is_some())).count()
                as u64;
        self.pool_stats().iter().map(|p| p.used).sum::<u64>().saturating_sub(check_tasks + process_tasks)
    }

    /// haproxy.c:main() in 1.5-dev8, its first `signal_register_fct()` calls: creates the
    /// signal pipe (registered in `fdtab[]`) and handles SIGUSR1 (soft stop) and, unlike
    /// dev8 which leaves them to the system, SIGINT and SIGTERM (hard stop, sessions
    /// logged as killed). `SIGTTOU`/`SIGTTIN` are handled once the listeners are bound
    /// (`bind_and_enable`).
    pub fn install_signal_handlers(&mut self) -> std::io::Result<()> {
        let (rx, tx) = mio::net::UnixStream::pair()?;
        // The write end must stay open for the handlers; it lives as long as the process.
        self.signals.pipe_tx = Some(std::os::fd::IntoRawFd::into_raw_fd(tx));
        let fd = self.fdtab.fd_insert(
            self.poller.registry(),
            Sock::Unix(rx),
            FdOwner::Signals,
            [Some(signal_pipe_read), None],
            FdState::FD_STREADY,
        )?;
        self.fdtab.fd_want_recv(fd);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
            self.signal_register(sig)?;
        }
        Ok(())
    }

    /// signal.c:signal_register_fct() in 1.5-dev8, the system half: `sig` writes its number
    /// into the signal pipe; `signal_process_queue` knows what each one does.
    fn signal_register(&mut self, sig: i32) -> std::io::Result<()> {
        let Some(tx) = self.signals.pipe_tx else { return Ok(()) };
        let byte = sig as u8;
        // SAFETY: the handler only calls write(2), which is async-signal-safe, on a
        // descriptor that stays open for the life of the process.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                libc::write(tx, (&raw const byte).cast(), 1);
            })?;
        }
        Ok(())
    }

    fn handle_commands(&mut self) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Stop => self.hard_stop = true,
                Command::SoftStop => self.soft_stop(),
                Command::Signal(sig) => signal_handler(self, sig),
                Command::Apply(f) => f(self),
            }
        }
    }

    // ANCHOR: soft_stop
    /// proxy.c:soft_stop() in 2.6: stop listening; sessions finish; the loop ends when none
    /// is left. Each proxy says it stopped as 2.6's `proxy_cond_disable()` does, and its
    /// listeners are closed by `stop_proxy`. A frontend that is stopped answers its
    /// sessions' next requests with `Connection: close` (`http_wait_for_request`), so
    /// keep-alive clients go elsewhere.
    /// Divergence: stops at once: no `grace` delay (a warning at parse time says so) and no
    /// `hard-stop-after` task (both warned about at parse time). 1.5's `soft_stop()` only
    /// sets each proxy's `stop_time` to now plus its `grace`, and `manage_proxy()`
    /// calls `stop_proxy()` when it comes.
    /// Divergence: before closing a listener, haflow accepts the connections the kernel
    /// has already queued on it (one pass of its accept callback); 1.5 closes the socket
    /// with them, and the kernel resets them. With `SO_REUSEPORT`, where a new process
    /// listens on the same port, those are the connections a reload would lose.
    pub fn soft_stop(&mut self) {
        if self.stopping {
            return;
        }
        let _s = tracing::info_span!(names::SOFT_STOP).entered();
        self.stopping = true;
        let targets = self.global.logs.clone();
        for i in 0..self.proxies.len() {
            if self.proxies[i].state == ProxyState::PR_STSTOPPED {
                continue;
            }
            for lid in self.proxies[i].listeners.clone() {
                let l = &self.listeners[lid.idx()];
                if l.state == ListenerState::LI_READY
                    && let Some(fd) = l.fd
                {
                    (l.proto.accept)(self, fd);
                }
            }
            stop_proxy(self, crate::ids::ProxyId::from(i));
            let p = &self.proxies[i];
            let msg = format!(
                "Proxy {} stopped (cumulated conns: FE: {}, BE: {}).",
                p.name,
                if p.is_frontend() { p.counters.cum_conn } else { 0 },
                if p.is_backend() { p.counters.cum_sess } else { 0 }
            );
            self.ha_warning_and_log(&targets, LOG_WARNING, &msg);
        }
        // The stats sockets stop listening too; connected clients may finish.
        crate::haproxy::dumpstats::stats_unbind_sockets(self);
    }
    // ANCHOR_END: soft_stop

    /// `ha_warning()` then `send_log()`, as HAProxy 2.6 reports a state change: on stderr
    /// (unless `quiet`, or a UI or a test owns the standard streams), then to `targets`.
    pub fn ha_warning_and_log(&mut self, targets: &[crate::haproxy::log::LogTarget], level: u8, msg: &str) {
        if !self.global.quiet && !self.logger.mute_std {
            crate::haproxy::errors::print_message("WARNING", msg);
        }
        send_log(self, targets, level, msg);
    }

    /// Hard stop: close every session (logged as killed), every listener and every
    /// health check (its connection and its task).
    fn kill_everything(&mut self) {
        stop_checks(self);
        crate::haproxy::stick_table::stktable_deinit(self);
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

/// The signal pipe's read callback: each byte is a signal's number; queue them.
fn signal_pipe_read(w: &mut Haproxy, fd: Fd) {
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    if let Some(sock) = w.fdtab.sock(fd) {
        while let Ok(n) = sock.recv(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    w.fdtab.fd_cant_recv(fd);
    for sig in got {
        signal_handler(w, i32::from(sig));
    }
}

/// signal.c:signal_handler() in 1.5-dev8, the queueing half: a signal already waiting is
/// not queued twice.
pub fn signal_handler(w: &mut Haproxy, sig: i32) {
    if !w.signals.queue.contains(&sig) {
        w.signals.queue.push_back(sig);
    }
}

// ANCHOR: signal_process_queue
/// signal.c:signal_process_queue() in 1.5-dev8, called at the top of each loop turn: run
/// the handler of each queued signal, in the order they came.
pub fn signal_process_queue(w: &mut Haproxy) {
    if w.signals.queue.is_empty() {
        return;
    }
    let _s = tracing::info_span!(names::SIGNAL_PROCESS_QUEUE, queued = w.signals.queue.len()).entered();
    while let Some(sig) = w.signals.queue.pop_front() {
        match sig {
            libc::SIGUSR1 => sig_soft_stop(w),
            libc::SIGTTOU => sig_pause(w),
            libc::SIGTTIN => sig_listen(w),
            libc::SIGINT | libc::SIGTERM => w.hard_stop = true,
            _ => {}
        }
    }
}
// ANCHOR_END: signal_process_queue

/// haproxy.c:sig_soft_stop() in 1.5-dev8 (`SIGUSR1`): stop softly, and give the pools'
/// free objects back.
pub fn sig_soft_stop(w: &mut Haproxy) {
    let _s = tracing::info_span!(names::SIG_SOFT_STOP).entered();
    w.soft_stop();
    w.gc_all_pools();
}

/// haproxy.c:sig_pause() in 1.5-dev8 (`SIGTTOU`, from a new process that could not bind):
/// pause every frontend's listeners.
pub fn sig_pause(w: &mut Haproxy) {
    let _s = tracing::info_span!(names::SIG_PAUSE).entered();
    pause_proxies(w);
    w.gc_all_pools();
}

/// haproxy.c:sig_listen() in 1.5-dev8 (`SIGTTIN`, from a new process that gave up):
/// listen again.
pub fn sig_listen(w: &mut Haproxy) {
    let _s = tracing::info_span!(names::SIG_LISTEN).entered();
    resume_proxies(w);
}

/// haproxy.c:init() in 1.5-dev8, configuration part: `readcfgfile` (which ends with
/// `check_config_validity`) and the creation of the process state.
pub fn init(paths: &[PathBuf], env: &dyn Fn(&str) -> Option<String>) -> Result<Haproxy, InitError> {
    let cfg = readcfgfile(paths, env).map_err(InitError::Config)?;
    Haproxy::new(cfg).map_err(InitError::Io)
}

/// `-sf`/`-st` on the command line: processes to take the ports from, and how to end them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OldPids {
    /// `oldpids[]`: their process ids.
    pub pids: Vec<i32>,
    /// `oldpids_sig`: `SIGUSR1` for `-sf` (finish the sessions, then exit), `SIGTERM` for
    /// `-st` (exit now).
    pub sig: i32,
}

/// How many times `main()` tries to bind while old processes pause (`MAX_START_RETRIES`).
pub const MAX_START_RETRIES: u32 = 200;

/// How long `main()` gives old processes to pause between two tries, in ms.
const START_RETRY_DELAY_MS: u64 = 10;

/// haproxy.c:tell_old_pids() in 1.5-dev8: send `sig` to every old process; returns how many
/// received it.
pub fn tell_old_pids(old: &OldPids, sig: i32) -> usize {
    let _s = tracing::info_span!(names::TELL_OLD_PIDS, sig = signal_name(sig), pids = ?old.pids).entered();
    // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
    old.pids.iter().filter(|&&pid| unsafe { libc::kill(pid, sig) } == 0).count()
}

/// The name HAProxy's messages and haflow's spans give a signal.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGTERM => "SIGTERM",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGINT => "SIGINT",
        _ => "?",
    }
}

// ANCHOR: bind_and_enable
/// haproxy.c:main() in 1.5-dev8, from the bind retry loop to the start of the loop:
/// `start_proxies()` binds; while a port is in use and old processes were named with
/// `-sf`/`-st`, send them `SIGTTOU` (they pause their listeners) and try again 10 ms
/// later, up to `MAX_START_RETRIES` times. On failure the old processes get `SIGTTIN`
/// (they listen again) and the new one gives up. Then `protocol_bind_all()` binds what
/// is left (the stats sockets), `SIGTTOU`/`SIGTTIN` get their handlers, and the old
/// processes get `-sf`'s `SIGUSR1` or `-st`'s `SIGTERM`. Failures read as in 2.6.
/// Divergence: the health checks start here, once bound (dev8 starts them in `init()`),
/// and `protocol_enable_all()` follows at once (dev8 first forks, changes user, etc.).
/// The old processes are signalled before the listeners are polled: the kernel already
/// queues connections for a listening socket, so nothing is lost meanwhile.
pub fn bind_and_enable(w: &mut Haproxy) -> Result<(), InitError> {
    let old = &w.oldpids.clone();
    let mut retry = MAX_START_RETRIES;
    let result = loop {
        let res = start_proxies(w, retry == 0 || old.pids.is_empty());
        match &res {
            Err(e) if e.retryable && !e.fatal && !old.pids.is_empty() && retry > 0 => {}
            _ => break res,
        }
        if tell_old_pids(old, libc::SIGTTOU) == 0 {
            // No old process to wait for: one last (verbose) try.
            retry = 0;
            continue;
        }
        // Give the old processes time to stop listening.
        std::thread::sleep(std::time::Duration::from_millis(START_RETRY_DELAY_MS));
        retry -= 1;
    };
    if let Err(e) = result {
        if retry != MAX_START_RETRIES && !old.pids.is_empty() {
            protocol_unbind_all(w);
            tell_old_pids(old, libc::SIGTTIN);
        }
        return Err(InitError::Bind(e.alerts.join("\n")));
    }
    let enabled = w.listeners.iter().filter(|l| l.state >= ListenerState::LI_ASSIGNED).count()
        + w.global.stats_sockets.len();
    if enabled == 0 {
        // The old processes were never paused: nothing to tell them.
        return Err(InitError::Bind(
            "[haproxy.main()] No enabled listener found (check for 'bind' directives) ! Exiting.".into(),
        ));
    }
    let bound = protocol_bind_all(w)
        .map_err(|e| e.msg)
        // The stats sockets are listeners of the `GLOBAL` frontend: bound with the others.
        .and_then(|()| crate::haproxy::dumpstats::stats_bind_sockets(w));
    if let Err(msg) = bound {
        protocol_unbind_all(w);
        if !old.pids.is_empty() {
            tell_old_pids(old, libc::SIGTTIN);
        }
        return Err(InitError::Bind(msg));
    }
    // Prepare pause/play signals.
    for sig in [libc::SIGTTOU, libc::SIGTTIN] {
        w.signal_register(sig).map_err(InitError::Io)?;
    }
    if !old.pids.is_empty() {
        tell_old_pids(old, old.sig);
    }
    // Stick tables get their expiry tasks, health checks theirs, before the first accept.
    crate::haproxy::stick_table::stktable_init(w);
    start_checks(w).map_err(|msg| InitError::Io(std::io::Error::other(msg)))?;
    protocol_enable_all(w);
    Ok(())
}
// ANCHOR_END: bind_and_enable

// ANCHOR: run_poll_loop
/// haproxy.c:run_poll_loop() in 1.5-dev8: until no job is left (or a hard stop), wake
/// expired tasks, run the runnable ones, then poll for I/O until the next timer.
pub fn run_poll_loop(w: &mut Haproxy) {
    // Runtime traces (`trace ...` on the stats socket) follow the spans of this thread.
    crate::trace::runtime::install_for_this_thread(Arc::clone(&w.trace));
    let _sp = tracing::info_span!(names::RUN_POLL_LOOP).entered();
    loop {
        w.handle_commands();
        signal_process_queue(w);
        if w.hard_stop {
            w.kill_everything();
            notify(|o| o.stopped(w));
            break;
        }
        let next = wake_expired_tasks(w);
        process_runnable_tasks(w);
        if w.jobs == 0 && w.stopping {
            // Health checks and stick tables do not keep the process alive; free them on
            // the way out.
            stop_checks(w);
            crate::haproxy::stick_table::stktable_deinit(w);
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
