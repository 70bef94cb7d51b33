//! The stats socket: HAProxy's command line interface (CLI) on UNIX and TCP sockets.
//!
//! Reproduces `dumpstats.c` (1.5-dev8: `stats_sock_parse_request`, the stats socket's
//! accept and I/O handler) with HAProxy 2.6's commands and answers (2.6 moved this code to
//! `cli.c`, `stats.c`, `server.c`...). Each `stats socket` line of the `global` section
//! becomes a listening socket in `fdtab[]` (`FdOwner::CliListener`, read callback
//! `cli_accept`): a UNIX socket with the `mode` permissions, a TCP socket (`ipv4@`,
//! `ipv6@`) or an inherited one (`fd@N`). Each client connection is an `Appctx` (HAProxy's
//! applet context) with its own fd (`FdOwner::Cli`, callbacks `cli_io_read` /
//! `cli_io_write`) and a task that enforces `stats timeout`. Everything runs on the proxy
//! thread, like HAProxy's applet: a command is a function of `&mut Haproxy`.
//!
//! The line protocol: one command per line, `;` separates several commands on one line
//! (`\;` is a literal semicolon), every answer ends with an empty line. Without `prompt`
//! the connection closes once the pending commands are answered; after `prompt` it stays
//! open and each answer is followed by `> `. As in HAProxy's applet, a client costs two
//! buffers whatever it asks: its input waits in a `tune.bufsize` buffer (a longer line cuts
//! it off), commands are taken one at a time, and an answer is produced while the output
//! buffer has room, resuming from a cursor (`CliCtx`) once the client has read: `show stat`
//! over 10,000 servers is sent as the client reads it, and the loop serves everyone else
//! between two buffers. A client that does not read is not read from either, and its
//! `stats timeout` closes it. Levels follow HAProxy: `user` may look, `operator` may also
//! clear counters and see sessions, `admin` may change state; a refused command answers
//! `Permission denied`.
//!
//! The handlers of the commands stay here even where 2.6 keeps them beside what they show
//! (`show pools` in memory.c, `show tasks` in task.c, `show fd` in fd.c, the server
//! commands in server.c): this file is the CLI, and the files they would join reproduce
//! 1.5-dev8, which had none of these commands. The map commands are the exception: they
//! live in `map.rs`, which reproduces 2.6's map.c where they are. A command line ending in
//! `<<` takes the lines after it, up to an empty one, as its payload (`add map`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::haproxy::buffers::BufFlags;
use crate::haproxy::checks::{CheckId, CheckKind, ChkSt, check_purge, start_check_task};
use crate::haproxy::errors::print_message;
use crate::haproxy::fd::{FdOwner, FdState, FdTab, Sock};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::map;
use crate::haproxy::proxy::Proxy;
use crate::haproxy::server::{
    Server, SrvFlags, server_parse_weight_change_request, srv_adm_set_drain, srv_adm_set_maint,
    srv_adm_set_ready, srv_fullname, srv_parse_kws,
};
use crate::haproxy::session::{SessFlags, Session, SnErr};
use crate::haproxy::standard::{ParsedAddr, str2sa_range};
use crate::haproxy::stats;
use crate::haproxy::stream_interface::SiState;
use crate::haproxy::task::{TaskContext, TaskRun, TaskState};
use crate::haproxy::time::{Tick, tick_add, tick_is_expired};
use crate::ids::{Fd, Index, ServerId, Table, TaskId};
use crate::trace::names;

/// `stats timeout` when not set (HAProxy's 10 s).
pub const DEFAULT_CLI_TIMEOUT: u64 = 10_000;
/// `stats maxconn` when not set: concurrent clients per stats socket.
pub const DEFAULT_CLI_MAXCONN: u32 = 10;
/// Connections accepted per wake-up of a stats socket.
const CLI_MAXACCEPT: usize = 16;
/// Most arguments of one command (`MAX_CLI_ARGS`).
const MAX_CLI_ARGS: usize = 64;
/// Most fuzzy suggestions after an unknown command (`CLI_MAX_MATCHES`).
const CLI_MAX_MATCHES: usize = 5;
/// A command ending with this takes the next lines, up to an empty one, as its payload
/// (`PAYLOAD_PATTERN`, 2.6).
const PAYLOAD_PATTERN: &str = "<<";

/// `appctx->cli_level`: what a CLI client may do (`ACCESS_LVL_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccessLevel {
    /// `level user`: read-only, no sessions, no fds.
    User = 1,
    /// `level operator`: also clear counters, see sessions, change traces (the default).
    Operator = 2,
    /// `level admin`: everything, including server state and killing sessions.
    Admin = 3,
}

impl AccessLevel {
    /// `level user|operator|admin`.
    pub fn parse(s: &str) -> Option<AccessLevel> {
        match s {
            "user" => Some(AccessLevel::User),
            "operator" => Some(AccessLevel::Operator),
            "admin" => Some(AccessLevel::Admin),
            _ => None,
        }
    }

    /// The level's name, as `show cli level` prints it.
    pub fn name(self) -> &'static str {
        match self {
            AccessLevel::User => "user",
            AccessLevel::Operator => "operator",
            AccessLevel::Admin => "admin",
        }
    }
}

/// Where a stats socket listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliAddr {
    /// A UNIX socket path (`/path`, `unix@path`).
    Unix(PathBuf),
    /// A TCP address (`ipv4@ADDR:PORT`, `ipv6@[ADDR]:PORT`).
    Inet(SocketAddr),
    /// An already-listening socket inherited from the parent (`fd@N`).
    Fd(i32),
}

impl std::fmt::Display for CliAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliAddr::Unix(p) => write!(f, "{}", p.display()),
            CliAddr::Inet(a) => write!(f, "{a}"),
            CliAddr::Fd(n) => write!(f, "fd@{n}"),
        }
    }
}

/// Parses a `stats socket` address (str2sa_range() for the CLI).
pub fn parse_cli_addr(s: &str) -> Result<CliAddr, String> {
    if let Some(n) = s.strip_prefix("fd@") {
        return n.parse::<i32>().map(CliAddr::Fd).map_err(|_| format!("invalid fd number '{n}'"));
    }
    if let Some(p) = s.strip_prefix("unix@") {
        return Ok(CliAddr::Unix(p.into()));
    }
    if s.starts_with("abns@") || s.starts_with("sockpair@") || s.starts_with("udp") {
        return Err(format!("address family of '{s}' is not supported by haflow for a stats socket"));
    }
    let inet = s.strip_prefix("ipv4@").or_else(|| s.strip_prefix("ipv6@")).or_else(|| s.strip_prefix("tcp@"));
    match inet {
        None if s.starts_with('/') || !s.contains(':') => Ok(CliAddr::Unix(s.into())),
        _ => {
            let a = inet.unwrap_or(s);
            let a = if a.starts_with(':') { format!("0.0.0.0{a}") } else { a.to_string() };
            a.parse::<SocketAddr>().map(CliAddr::Inet).map_err(|_| format!("invalid address '{s}'"))
        }
    }
}

/// A bound `stats socket` (a listener of HAProxy's `GLOBAL` frontend).
#[derive(Debug)]
pub struct CliListener {
    /// `luid`: 1-based, in configuration order.
    pub luid: u32,
    /// The address.
    pub addr: CliAddr,
    /// The level given to clients.
    pub level: AccessLevel,
    /// The listening socket once bound.
    pub fd: Option<Fd>,
    /// Clients connected now.
    pub nbconn: u32,
    /// Most clients at once (`stats maxconn`).
    pub maxconn: u32,
    /// Not polled because `maxconn` is reached (`LI_FULL`).
    pub full: bool,
}

/// `appctx->st0`: where the client's state machine stands (1.5-dev8's `STAT_CLI_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliState {
    /// `STAT_CLI_GETREQ`: waiting for the next command (a complete line in `ibuf`).
    Getreq,
    /// `STAT_CLI_OUTPUT` (`STAT_CLI_PRINT`, `STAT_CLI_O_*`): an answer is being produced;
    /// `Appctx::ctx` says which one and where it stands. Input waits meanwhile.
    Output,
    /// Streaming new `buf0` events (`show events -w`) until the client sends anything.
    Watch,
    /// `STAT_CLI_END`: closing once the pending output is sent.
    End,
}

/// `appctx->ctx`: the answer being produced and where its dump stands (HAProxy's
/// per-command context), so that the dump resumes there once the client's output buffer
/// has room again instead of being produced whole.
#[derive(Debug, Default)]
enum CliCtx {
    /// No answer in progress.
    #[default]
    None,
    /// `STAT_CLI_PRINT`: a short answer, formatted at once (`appctx->ctx.cli.msg`).
    Print(String),
    /// `show stat`: which rows, and the proxy and row the dump stands at.
    Stat(stats::StatCtx),
    /// `show sess` / `show sess all`: the last session listed.
    Sess(SessCtx),
    /// `show fd [num]`: the next fd to list (`appctx->ctx.cli.i0`).
    Fd { next: usize, only: Option<i32> },
    /// `show servers state [<backend>]`: the next proxy and server.
    ServersState(ServersStateCtx),
    /// `show backend`: the next proxy.
    Backend { head: bool, px: usize },
    /// `show events buf0`: the next `buf0` position, and where to stop (`None`: keep
    /// following the ring, `-w`).
    Events { pos: u64, until: Option<u64> },
    /// `show map <map>`: the map (its index in `pat_refs`) and its next line.
    PatList { r: usize, next: usize },
}

/// One stats socket client (HAProxy's `struct appctx` of the CLI applet).
#[derive(Debug)]
pub struct Appctx {
    /// Session number, taken from the same counter as sessions (`uniq_id`).
    pub uniq_id: u32,
    /// The client connection.
    pub fd: Fd,
    /// Index of the stats socket it came from.
    pub listener: usize,
    /// What it may do (lowered by `user` / `operator`).
    pub level: AccessLevel,
    /// Interactive mode (`prompt`): stay open, print `> ` after each answer.
    pub prompt: bool,
    /// `experimental-mode on`: commands restricted to it (`ACCESS_EXPERIMENTAL`) run.
    pub experimental: bool,
    /// State machine.
    pub st0: CliState,
    /// The answer in progress and where its dump stands.
    ctx: CliCtx,
    /// Bytes received and not yet parsed (the request buffer): at most `tune.bufsize`,
    /// the rest waits in the kernel.
    pub ibuf: Vec<u8>,
    /// A command that ended with `<<` and the lines received after it, until an empty
    /// line ends its payload (`APPCTX_CLI_ST1_PAYLOAD`).
    payload: Option<(String, Vec<u8>)>,
    /// Answers not yet sent (the response buffer): a dump only adds to it while it holds
    /// less than `tune.bufsize` bytes.
    pub obuf: VecDeque<u8>,
    /// The client closed its side.
    pub read_closed: bool,
    /// Inactivity timeout, ms (`stats timeout`, `set timeout cli`).
    pub timeout: u64,
    /// The task that closes the connection on timeout.
    pub task: TaskId,
    /// `unix:N` or `ip:port`.
    pub src: String,
    /// When it connected.
    pub accept_date: SystemTime,
    /// `now_ms` when it connected.
    pub tv_accept: Tick,
    /// Commands run so far.
    pub calls: u64,
}

impl Appctx {
    /// Memory this client holds for its input, its output and its answer in progress
    /// (allocated capacity, not only the bytes in use).
    pub fn buffered_bytes(&self) -> usize {
        let msg = match &self.ctx {
            CliCtx::Print(m) => m.capacity(),
            _ => 0,
        };
        let payload = self.payload.as_ref().map_or(0, |(c, p)| c.capacity() + p.capacity());
        self.ibuf.capacity() + self.obuf.capacity() + msg + payload
    }
}

/// The CLI's state: the stats sockets, their clients, and the statistics `show stat` and
/// `show info` compute over time.
#[derive(Debug, Default)]
pub struct Cli {
    /// Bound stats sockets.
    pub listeners: Vec<CliListener>,
    /// Connected clients.
    pub conns: Table<Appctx>,
    /// Rates, averages and maxima for `show stat` / `show info`.
    pub stats: stats::StatsState,
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
}

fn bind_cli(fdtab: &FdTab, addr: &CliAddr, mode: Option<u32>, reuseport: bool) -> std::io::Result<Sock> {
    match addr {
        CliAddr::Fd(n) => fdtab.adopt_inherited(*n),
        CliAddr::Inet(a) => Ok(Sock::TcpListener(crate::haproxy::proto_tcp::bind_inet(*a, 128, reuseport)?)),
        CliAddr::Unix(path) => {
            // A socket file left by a previous run would make bind() fail.
            if std::fs::symlink_metadata(path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            {
                let _ = std::fs::remove_file(path);
            }
            let l = mio::net::UnixListener::bind(path)?;
            if let Some(m) = mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(m))?;
            }
            Ok(Sock::UnixListener(l))
        }
    }
}

/// Binds every `stats socket` of the configuration (HAProxy binds them with the other
/// listeners in `protocol_bind_all`) and starts polling them. Errors read like HAProxy's
/// `Binding [...]` alerts.
pub fn stats_bind_sockets(w: &mut Haproxy) -> Result<(), String> {
    stats::stats_init(w);
    let confs = w.global.stats_sockets.clone();
    let maxconn = if w.global.stats_maxconn == 0 { DEFAULT_CLI_MAXCONN } else { w.global.stats_maxconn };
    for (i, c) in confs.iter().enumerate() {
        let addr = parse_cli_addr(&c.addr).map_err(|e| format!("'stats socket' : {e}"))?;
        let level = AccessLevel::parse(&c.level).unwrap_or(AccessLevel::Operator);
        let sock = bind_cli(&w.fdtab, &addr, c.mode, !w.global.noreuseport).map_err(|e| {
            let reason = crate::haproxy::proto_tcp::os_reason(&e);
            // HAProxy 2.6's wording differs between the UNIX and the TCP binders.
            let what = match &addr {
                CliAddr::Unix(p) => format!("cannot bind UNIX socket ({reason}) [{}]", p.display()),
                _ => format!("cannot bind socket ({reason}) for [{addr}]"),
            };
            format!("Binding [{}:{}] for frontend GLOBAL: {what}", c.conf.0, c.conf.1)
        })?;
        let fd = w
            .fdtab
            .fd_insert(
                w.poller.registry(),
                sock,
                FdOwner::CliListener(i as u32),
                [Some(cli_accept), None],
                FdState::FD_STLISTEN,
            )
            .map_err(|e| format!("cannot register stats socket ({e}) for [{addr}]"))?;
        w.fdtab.fd_want_recv(fd);
        w.cli.listeners.push(CliListener {
            luid: i as u32 + 1,
            addr,
            level,
            fd: Some(fd),
            nbconn: 0,
            maxconn,
            full: false,
        });
    }
    Ok(())
}

/// Closes the stats sockets (soft stop): connected clients may finish.
pub fn stats_unbind_sockets(w: &mut Haproxy) {
    for i in 0..w.cli.listeners.len() {
        if let Some(fd) = w.cli.listeners[i].fd.take() {
            w.fdtab.fd_delete(fd);
            if let CliAddr::Unix(p) = &w.cli.listeners[i].addr {
                crate::haproxy::proto_uxst::destroy_uxst_socket(p);
            }
        }
    }
}

/// Hard stop: closes every client and every stats socket.
pub fn cli_close_all(w: &mut Haproxy) {
    let ids: Vec<Index> = w.cli.conns.iter().map(|(i, _)| i).collect();
    for i in ids {
        if let Some(a) = w.cli.conns.take(i) {
            cli_release(w, i, &a);
        }
    }
    stats_unbind_sockets(w);
}

/// The stats socket's accept callback (`cb[DIR_RD]` of its listening fd): accepts
/// clients until `EAGAIN` or `stats maxconn`.
pub fn cli_accept(w: &mut Haproxy, fd: Fd) {
    let Some(FdOwner::CliListener(li)) = w.fdtab.get(fd).map(|e| e.owner) else { return };
    let li = li as usize;
    for _ in 0..CLI_MAXACCEPT {
        let l = &mut w.cli.listeners[li];
        if l.nbconn >= l.maxconn {
            // LI_FULL: leave further clients in the kernel's backlog.
            l.full = true;
            w.fdtab.fd_stop_recv(fd);
            return;
        }
        let luid = l.luid;
        let accepted = match w.fdtab.sock(fd) {
            Some(Sock::TcpListener(t)) => t.accept().map(|(s, a)| (Sock::Tcp(s), a.to_string())),
            Some(Sock::UnixListener(u)) => u.accept().map(|(s, _)| (Sock::Unix(s), format!("unix:{luid}"))),
            _ => return,
        };
        let (sock, src) = match accepted {
            Ok(x) => x,
            Err(e) if would_block(&e) => {
                // Drained: with edge-triggered polling the next client raises a new edge.
                w.fdtab.fd_cant_recv(fd);
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                w.fdtab.fd_cant_recv(fd);
                return;
            }
        };
        if let Sock::Tcp(t) = &sock {
            let _ = t.set_nodelay(true);
        }
        let cfd = sock.raw_fd();
        let uniq_id = w.next_uniq_id();
        let now = w.clock.now_ms;
        let timeout = if w.global.stats_timeout == 0 { DEFAULT_CLI_TIMEOUT } else { w.global.stats_timeout };
        let Some(task) = w.sched.task_new(cli_task_process, TaskContext::Global) else { return };
        let a = Appctx {
            uniq_id,
            fd: Fd(cfd),
            listener: li,
            level: w.cli.listeners[li].level,
            prompt: false,
            experimental: false,
            st0: CliState::Getreq,
            ctx: CliCtx::None,
            payload: None,
            ibuf: Vec::new(),
            obuf: VecDeque::new(),
            read_closed: false,
            timeout,
            task,
            src: src.clone(),
            accept_date: w.clock.date,
            tv_accept: now,
            calls: 0,
        };
        let idx = w.cli.conns.insert(Box::new(a));
        let registered = w.fdtab.fd_insert(
            w.poller.registry(),
            sock,
            FdOwner::Cli(idx),
            [Some(cli_io_read), Some(cli_io_write)],
            FdState::FD_STREADY,
        );
        if registered.is_err() {
            w.cli.conns.remove(idx);
            w.sched.task_free(task);
            continue;
        }
        w.fdtab.fd_want_recv(Fd(cfd));
        if let Some(t) = w.sched.get_mut(task) {
            t.context = TaskContext::Cli(idx);
            t.nice = -64;
            t.expire = Some(tick_add(now, timeout));
        }
        w.sched.task_queue(task);
        w.cli.listeners[li].nbconn += 1;
        if w.global.debug() {
            w.debug_line(format!(
                "{uniq_id:08x}:GLOBAL.accept({:04x})={:04x} from [{src}] ALPN=<none>",
                fd.0 as u16, cfd as u16
            ));
        }
    }
}

/// The read callback of a client connection.
pub fn cli_io_read(w: &mut Haproxy, fd: Fd) {
    cli_io(w, fd);
}

/// The write callback of a client connection.
pub fn cli_io_write(w: &mut Haproxy, fd: Fd) {
    cli_io(w, fd);
}

fn cli_io(w: &mut Haproxy, fd: Fd) {
    let Some(FdOwner::Cli(idx)) = w.fdtab.get(fd).map(|e| e.owner) else { return };
    let Some(mut a) = w.cli.conns.take(idx) else { return };
    if cli_io_handler(w, &mut a) {
        w.cli.conns.put_back(idx, a);
    } else {
        cli_release(w, idx, &a);
    }
}

/// The stats socket task: closes a client whose `stats timeout` expired.
pub fn cli_task_process(w: &mut Haproxy, t: TaskId) -> TaskRun {
    let Some(task) = w.sched.get(t) else { return TaskRun::Freed };
    let TaskContext::Cli(idx) = task.context else { return TaskRun::Alive };
    if !tick_is_expired(task.expire, w.clock.now_ms) {
        return TaskRun::Alive;
    }
    match w.cli.conns.take(idx) {
        Some(a) => {
            cli_release(w, idx, &a);
            TaskRun::Freed
        }
        None => TaskRun::Alive,
    }
}

/// Closes a client: its fd, its task and its slot (the `closed` debug line included).
fn cli_release(w: &mut Haproxy, idx: Index, a: &Appctx) {
    if w.global.debug() {
        let c = a.fd.0 as u16;
        w.debug_line(format!("{:08x}:GLOBAL.srvcls[{c:04x}:ffff]", a.uniq_id));
        w.debug_line(format!("{:08x}:GLOBAL.clicls[ffff:ffff]", a.uniq_id));
        w.debug_line(format!("{:08x}:GLOBAL.closed[ffff:ffff]", a.uniq_id));
    }
    w.fdtab.fd_delete(a.fd);
    w.sched.task_delete(a.task);
    w.sched.task_free(a.task);
    w.cli.conns.release_taken(idx);
    if let Some(l) = w.cli.listeners.get_mut(a.listener) {
        l.nbconn = l.nbconn.saturating_sub(1);
        if l.full && l.nbconn < l.maxconn {
            l.full = false;
            if let Some(lfd) = l.fd {
                w.fdtab.fd_want_recv(lfd);
            }
        }
    }
}

/// dumpstats.c:cli_io_handler() in 1.5-dev8: the stats socket's I/O handler, called when
/// the client's fd is readable or writable, and again on the next loop turns while it has
/// work and the socket takes more. One call receives what fits in the input buffer, runs
/// the state machine until the output buffer holds `tune.bufsize` bytes or nothing is left
/// to do, and sends what the socket takes. So a client costs about two buffers whatever it
/// asks for, a long answer is produced as the client reads it, and the loop serves
/// everyone else between two buffers. Returns false when the connection must be closed.
fn cli_io_handler(w: &mut Haproxy, a: &mut Appctx) -> bool {
    let size = w.global.tune.bufsize;
    let Ok(received) = cli_recv(w, a, size) else { return false };
    if !cli_process(w, a, size) {
        return false;
    }
    let Ok(sent) = cli_send(w, a) else { return false };
    if a.st0 == CliState::End && a.obuf.is_empty() {
        return false;
    }
    // Work left while the socket still takes data keeps the fd in the cache (wanted and
    // READY): the next loop turn calls back, after the other fds and the tasks.
    if !a.obuf.is_empty() || cli_has_work(a) {
        w.fdtab.fd_want_send(a.fd);
    } else {
        w.fdtab.fd_stop_send(a.fd);
    }
    if a.read_closed || a.st0 == CliState::End || a.ibuf.len() >= size {
        // A full input buffer: what the client sends next waits in the kernel, and the
        // client's writes block once the kernel's buffer is full too.
        w.fdtab.fd_stop_recv(a.fd);
    } else {
        w.fdtab.fd_want_recv(a.fd);
    }
    if received + sent > 0 {
        let exp = tick_add(w.clock.now_ms, a.timeout);
        if let Some(t) = w.sched.get_mut(a.task) {
            t.expire = Some(exp);
        }
        w.sched.task_queue(a.task);
    }
    true
}

/// True when the state machine can go on without new input: an answer is in progress,
/// or a complete command line waits.
fn cli_has_work(a: &Appctx) -> bool {
    match a.st0 {
        CliState::Output => true,
        CliState::Getreq => a.ibuf.contains(&b'\n'),
        CliState::Watch | CliState::End => false,
    }
}

/// Receives what the client sent while the input buffer holds less than `size` bytes
/// (`EOF` sets `read_closed`). Returns the number of bytes received.
fn cli_recv(w: &mut Haproxy, a: &mut Appctx, size: usize) -> std::io::Result<usize> {
    let mut received = 0;
    while !a.read_closed && a.ibuf.len() < size && w.fdtab.recv_ready(a.fd) {
        let Some(sock) = w.fdtab.sock(a.fd) else { return Err(std::io::ErrorKind::NotConnected.into()) };
        // Straight into the buffer's free space, as HAProxy reads into `si->ob`.
        let old = a.ibuf.len();
        a.ibuf.resize(size, 0);
        let res = sock.recv(&mut a.ibuf[old..]);
        a.ibuf.truncate(old + res.as_ref().map_or(0, |n| *n));
        match res {
            Ok(0) => a.read_closed = true,
            Ok(n) => received += n,
            Err(e) if would_block(&e) => {
                // Drained: with edge-triggered polling the next data raises a new edge.
                w.fdtab.fd_cant_recv(a.fd);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(received)
}

/// Sends pending output while the socket takes it. Returns the number of bytes sent.
fn cli_send(w: &mut Haproxy, a: &mut Appctx) -> std::io::Result<usize> {
    let mut sent = 0;
    while !a.obuf.is_empty() && w.fdtab.send_ready(a.fd) {
        let (head, _) = a.obuf.as_slices();
        let Some(sock) = w.fdtab.sock(a.fd) else { return Err(std::io::ErrorKind::NotConnected.into()) };
        match sock.send(head) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                a.obuf.drain(..n);
                sent += n;
            }
            Err(e) if would_block(&e) => w.fdtab.fd_cant_send(a.fd),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// Ends an answer: the empty line, then the prompt in interactive mode (`STAT_CLI_PROMPT`).
fn end_answer(a: &mut Appctx) {
    a.obuf.extend(if a.prompt { &b"\n> "[..] } else { &b"\n"[..] });
}

/// The state machine of 1.5-dev8's cli_io_handler(): take one command from the input,
/// produce its answer while the output buffer holds less than `size` bytes, end it with
/// the empty line (and the prompt), then take the next command. A command is parsed only
/// once the previous answer is complete: the rest of the input waits in its buffer.
/// Returns false when the client must be cut off.
fn cli_process(w: &mut Haproxy, a: &mut Appctx, size: usize) -> bool {
    loop {
        match a.st0 {
            CliState::End => return true,
            CliState::Getreq => {
                // Room for the answer first (`buffer_almost_full(si->ib)`).
                if a.obuf.len() >= size {
                    return true;
                }
                let Some(eol) = a.ibuf.iter().position(|&b| b == b'\n') else {
                    if a.ibuf.len() >= size {
                        // A line longer than a buffer can never be a command.
                        return false;
                    }
                    if a.read_closed {
                        // A partial last line is dropped, as HAProxy does.
                        a.st0 = CliState::End;
                    }
                    return true;
                };
                if let Some((cmd, payload)) = &mut a.payload {
                    // A payload line is taken whole (no `;`, no escapes); an empty one
                    // ends the payload and runs the command. Command and payload must fit
                    // in a buffer, as in HAProxy's chunk.
                    let line = a.ibuf[..eol].strip_suffix(b"\r").unwrap_or(&a.ibuf[..eol]);
                    if !line.is_empty() {
                        if cmd.len() + payload.len() + line.len() + 1 >= size {
                            return false;
                        }
                        payload.extend_from_slice(line);
                        payload.push(b'\n');
                        a.ibuf.drain(..=eol);
                        cli_payload_prompt(a);
                        continue;
                    }
                    a.ibuf.drain(..=eol);
                    let Some((cmd, mut payload)) = a.payload.take() else { continue };
                    // 2.6 drops the last line's newline, or leaves one when no line came.
                    if payload.pop().is_none() {
                        payload.push(b'\n');
                    }
                    stats_sock_parse_request(w, a, &cmd, Some(&String::from_utf8_lossy(&payload)));
                    continue;
                }
                let (cmd, used) = cli_get_command(&a.ibuf[..eol]);
                a.ibuf.drain(..used);
                if cmd.ends_with(PAYLOAD_PATTERN) {
                    a.payload = Some((cmd, Vec::new()));
                    cli_payload_prompt(a);
                    continue;
                }
                stats_sock_parse_request(w, a, &cmd, None);
            }
            CliState::Output => {
                if !cli_output(w, a, size) {
                    return true;
                }
                if matches!(a.ctx, CliCtx::Events { until: None, .. }) {
                    a.st0 = CliState::Watch;
                    continue;
                }
                a.ctx = CliCtx::None;
                end_answer(a);
                a.st0 = CliState::Getreq;
                if !a.prompt && a.ibuf.is_empty() {
                    // Not interactive: close once answered, unless more commands came.
                    if cli_recv(w, a, size).is_err() {
                        return false;
                    }
                    if a.ibuf.is_empty() {
                        a.st0 = CliState::End;
                    }
                }
            }
            CliState::Watch => {
                if a.ibuf.is_empty() && !a.read_closed {
                    // New events while the output buffer has room; never complete.
                    cli_output(w, a, size);
                    return true;
                }
                // "Any key to stop"; a watcher whose client left stops watching.
                a.ibuf.clear();
                a.ctx = CliCtx::None;
                end_answer(a);
                a.st0 = if a.prompt && !a.read_closed { CliState::Getreq } else { CliState::End };
            }
        }
    }
}

/// After each line that leaves a payload open, an interactive client is asked for more
/// with `+ ` (cli.c in 2.6); a non-interactive one gets nothing.
fn cli_payload_prompt(a: &mut Appctx) {
    if a.prompt {
        a.obuf.extend(b"+ ");
    }
}

/// Produces the answer in progress into the output buffer while it holds less than `size`
/// bytes (`STAT_CLI_PRINT`, `STAT_CLI_O_*`); each dump adds whole lines, so the buffer
/// holds at most `size` bytes plus one line (or one short answer). True once complete.
fn cli_output(w: &mut Haproxy, a: &mut Appctx, size: usize) -> bool {
    let room = size.saturating_sub(a.obuf.len());
    if room == 0 {
        return false;
    }
    let mut chunk = String::new();
    let mut ctx = std::mem::take(&mut a.ctx);
    let done = match &mut ctx {
        CliCtx::None => true,
        CliCtx::Print(msg) => {
            chunk = std::mem::take(msg);
            true
        }
        CliCtx::Stat(c) => stats::stats_dump_stat_to_buffer(w, c, &mut chunk, room),
        CliCtx::Sess(c) => stats_dump_sess_to_buffer(w, a, c, &mut chunk, room),
        CliCtx::Fd { next, only } => cli_io_handler_show_fd(w, next, *only, &mut chunk, room),
        CliCtx::ServersState(c) => cli_io_handler_servers_state(w, c, &mut chunk, room),
        CliCtx::Backend { head, px } => cli_io_handler_show_backend(w, head, px, &mut chunk, room),
        CliCtx::Events { pos, until } => cli_io_handler_show_ring(w, pos, *until, &mut chunk, room),
        CliCtx::PatList { r, next } => map::cli_io_handler_pat_list(&w.pat_refs, *r, next, &mut chunk, room),
    };
    a.ctx = ctx;
    a.obuf.extend(chunk.as_bytes());
    done
}

/// Takes the first command of `line` (the input up to its `\n`, excluded): up to the first
/// unescaped `;` (`\;` is a literal semicolon), without the `\r` that may end the line.
/// Returns the command and the number of input bytes it used: the whole line and its `\n`
/// for the last command of the line (a `;` followed by blanks only ends the line too, it
/// does not make an empty command).
fn cli_get_command(line: &[u8]) -> (String, usize) {
    let mut cmd = Vec::new();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' if line.get(i + 1) == Some(&b';') => {
                cmd.push(b';');
                i += 2;
            }
            b';' => {
                let blank_rest = line[i + 1..].iter().all(u8::is_ascii_whitespace);
                let used = if blank_rest { line.len() + 1 } else { i + 1 };
                return (String::from_utf8_lossy(&cmd).into_owned(), used);
            }
            b => {
                cmd.push(b);
                i += 1;
            }
        }
    }
    if cmd.last() == Some(&b'\r') {
        cmd.pop();
    }
    (String::from_utf8_lossy(&cmd).into_owned(), line.len() + 1)
}

/// dumpstats.c:stats_sock_parse_request() in 1.5-dev8: runs one command (with the
/// payload that followed it, 2.6); its answer is produced next (`STAT_CLI_OUTPUT`), `quit`
/// ends the connection.
fn stats_sock_parse_request(w: &mut Haproxy, a: &mut Appctx, cmd: &str, payload: Option<&str>) {
    let mut args: Vec<&str> = cmd.split_whitespace().take(MAX_CLI_ARGS).collect();
    // A payload belongs to a command whose last word is `<<` (`foo<<` has none).
    let payload = payload.filter(|_| args.last() == Some(&PAYLOAD_PATTERN));
    if payload.is_some() {
        args.pop();
    }
    a.calls += 1;
    match cli_run(w, a, &args, payload) {
        Answer::Text(t) => {
            a.ctx = CliCtx::Print(t);
            a.st0 = CliState::Output;
        }
        Answer::Dump(ctx) => {
            a.ctx = ctx;
            a.st0 = CliState::Output;
        }
        Answer::Quit => a.st0 = CliState::End,
    }
}

/// What a command did.
enum Answer {
    /// Print this (then the end-of-answer line).
    Text(String),
    /// Produce this dump, a buffer at a time (then the end-of-answer line, unless it
    /// keeps watching events).
    Dump(CliCtx),
    /// Close the connection without answering (`quit`).
    Quit,
}

const PERMISSION_DENIED: &str = "Permission denied\n";

fn has_level(a: &Appctx, l: AccessLevel) -> bool {
    a.level >= l
}

/// Runs one command (HAProxy's keyword table lookup and the keyword's parser).
fn cli_run(w: &mut Haproxy, a: &mut Appctx, args: &[&str], payload: Option<&str>) -> Answer {
    use AccessLevel::*;
    let t = |s: &str| Answer::Text(s.to_string());
    let deny = || Answer::Text(PERMISSION_DENIED.into());
    match args {
        [] => Answer::Text(cli_gen_usage_msg(args, false)),
        ["help", rest @ ..] => Answer::Text(cli_gen_usage_msg(rest, true)),
        ["prompt", ..] => {
            a.prompt = !a.prompt;
            t("")
        }
        ["quit", ..] => Answer::Quit,
        ["user", ..] => {
            a.level = User;
            t("")
        }
        ["operator", ..] => {
            if !has_level(a, Operator) {
                return deny();
            }
            a.level = Operator;
            t("")
        }
        ["show", "cli", "level", ..] => Answer::Text(format!("{}\n", a.level.name())),
        ["show", "version", ..] => Answer::Text(format!("{}\n", env!("CARGO_PKG_VERSION"))),
        ["show", "info", ..] => Answer::Text(stats::stats_dump_info_to_buffer(w)),
        ["show", "stat", rest @ ..] => match stats::cli_parse_show_stat(w, rest) {
            Ok(ctx) => Answer::Dump(CliCtx::Stat(ctx)),
            Err(e) => Answer::Text(e),
        },
        ["show", "sess", rest @ ..] => {
            if !has_level(a, Operator) {
                return deny();
            }
            match rest.first().copied() {
                None | Some("all") => {
                    let all = !rest.is_empty();
                    Answer::Dump(CliCtx::Sess(SessCtx { all, clis: false, last: None }))
                }
                Some(id) => Answer::Text(match find_session_by_ptr(w, id).and_then(|i| w.sessions.get(i)) {
                    Some(s) => sess_full(w, s, w.clock.now_ms),
                    None => "Session not found.\n".into(),
                }),
            }
        }
        ["show", "cache", ..] => {
            // 2.6 answers nothing below the admin level.
            if !has_level(a, Admin) {
                return t("");
            }
            let now = crate::haproxy::cache::unix_secs(w.clock.date);
            Answer::Text(crate::haproxy::cache::cli_io_handler_show_cache(&w.caches, now))
        }
        ["show", "pools", ..] => Answer::Text(dump_pools(w)),
        [verb @ ("show" | "clear" | "set"), "table", rest @ ..] => {
            use crate::haproxy::stick_table::{StkCliAct, cli_parse_table_req};
            let (act, need) = match *verb {
                "show" => (StkCliAct::Show, AccessLevel::User),
                "clear" => (StkCliAct::Clear, Operator),
                _ => (StkCliAct::Set, Admin),
            };
            if !has_level(a, need) {
                return deny();
            }
            Answer::Text(cli_parse_table_req(w, act, rest, has_level(a, Operator)))
        }
        ["show", "activity", ..] => Answer::Text(cli_io_handler_show_activity(w)),
        ["show", "tasks", ..] => Answer::Text(cli_io_handler_show_tasks(w)),
        ["show", "fd", rest @ ..] => {
            if !has_level(a, Operator) {
                return deny();
            }
            let only = rest.first().and_then(|n| n.parse::<i32>().ok());
            Answer::Dump(CliCtx::Fd { next: 0, only })
        }
        ["show", "servers", what @ ("state" | "conn"), rest @ ..] => match rest.first() {
            None => Answer::Dump(CliCtx::ServersState(ServersStateCtx {
                head: false,
                conn: *what == "conn",
                be: None,
                px: 0,
                sv: 0,
            })),
            Some(name) => match w.proxies.iter().position(|p| p.is_backend() && p.name == *name) {
                Some(i) => Answer::Dump(CliCtx::ServersState(ServersStateCtx {
                    head: false,
                    conn: *what == "conn",
                    be: Some(i),
                    px: i,
                    sv: 0,
                })),
                None => Answer::Text("Can't find backend.\n".into()),
            },
        },
        ["show", "backend", ..] => Answer::Dump(CliCtx::Backend { head: false, px: 0 }),
        ["show", "errors", ..] => {
            if !has_level(a, Operator) {
                return deny();
            }
            // haflow does not capture invalid messages (yet): an empty capture list.
            Answer::Text(format!(
                "Total events captured on [{}] : 0\n",
                crate::haproxy::log::log_date(w.clock.date)
            ))
        }
        ["show", "trace", rest @ ..] => match w.trace.show_trace(rest.first().copied()) {
            Ok(s) | Err(s) => Answer::Text(s),
        },
        ["show", "events", rest @ ..] => cli_show_events(w, a, rest),
        ["show", "map"] => Answer::Text(map::cli_io_handler_pats_list(&w.pat_refs)),
        ["show", "map", rest @ ..] => match map::cli_parse_show_map(&w.pat_refs, rest) {
            Ok(Some(r)) => Answer::Dump(CliCtx::PatList { r, next: 0 }),
            Ok(None) => t(""),
            Err(e) => Answer::Text(e),
        },
        ["add", "map", rest @ ..] => Answer::Text(map::cli_parse_add_map(&mut w.pat_refs, rest, payload)),
        ["del", "map", rest @ ..] => Answer::Text(map::cli_parse_del_map(&mut w.pat_refs, rest)),
        ["set", "map", rest @ ..] => Answer::Text(map::cli_parse_set_map(&mut w.pat_refs, rest)),
        ["clear", "map", rest @ ..] => Answer::Text(map::cli_parse_clear_map(&mut w.pat_refs, rest)),
        ["trace", rest @ ..] => {
            if !has_level(a, Operator) {
                return deny();
            }
            Answer::Text(w.trace.cli_trace(rest))
        }
        ["experimental-mode", rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            match rest.first().copied() {
                None => Answer::Text(format!(
                    "experimental-mode is {}\n",
                    if a.experimental { "ON" } else { "OFF" }
                )),
                Some("on") => {
                    a.experimental = true;
                    t("")
                }
                Some("off") => {
                    a.experimental = false;
                    t("")
                }
                Some(_) => t("'experimental-mode' only supports 'on' and 'off'.\n"),
            }
        }
        ["get", "var", rest @ ..] => {
            if !has_level(a, Operator) {
                return deny();
            }
            Answer::Text(vars_parse_cli_get_var(w, rest.first().copied()))
        }
        ["set", "var", rest @ ..] => {
            if !a.experimental {
                return t("This command is restricted to experimental mode only.\n");
            }
            if !has_level(a, Operator) {
                return deny();
            }
            Answer::Text(vars_parse_cli_set_var(w, rest))
        }
        ["get", "weight", rest @ ..] => Answer::Text(match find_server_arg(w, rest.first().copied()) {
            Ok(sid) => {
                let iw = w.server(sid).iweight;
                format!("{} (initial {iw})\n", w.server(sid).uweight)
            }
            Err(e) => e,
        }),
        ["set", "weight", rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            Answer::Text(match find_server_arg(w, rest.first().copied()) {
                Err(e) => e,
                Ok(sid) => match rest.get(1) {
                    None => "Require <weight> or <weight%>.\n".into(),
                    Some(v) => server_parse_weight_change_request(w, sid, v),
                },
            })
        }
        ["set", "server", rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            Answer::Text(cli_parse_set_server(w, rest))
        }
        ["add", "server", rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            Answer::Text(cli_parse_add_server(w, rest))
        }
        ["del", "server", rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            Answer::Text(cli_parse_delete_server(w, rest.first().copied()))
        }
        [verb @ ("enable" | "disable"), what @ ("health" | "agent"), rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            Answer::Text(match find_server_arg(w, rest.first().copied()) {
                Err(e) => e,
                Ok(sid) => cli_parse_enable_check(w, sid, *verb == "enable", *what == "agent"),
            })
        }
        ["disable", "server", rest @ ..] | ["enable", "server", rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            Answer::Text(match find_server_arg(w, rest.first().copied()) {
                Err(e) => e,
                Ok(sid) => {
                    if args[0] == "disable" {
                        srv_adm_set_maint(w, sid);
                    } else {
                        srv_adm_set_ready(w, sid);
                    }
                    String::new()
                }
            })
        }
        ["shutdown", "session", rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            Answer::Text(match rest.first() {
                None => "Session pointer expected (use 'show sess').\n".into(),
                Some(id) => match find_session_by_ptr(w, id) {
                    Some(slot) => {
                        session_shutdown(w, slot, SnErr::SN_ERR_KILLED);
                        String::new()
                    }
                    None => "No such session (use 'show sess').\n".into(),
                },
            })
        }
        ["shutdown", "sessions", "server", rest @ ..] => {
            if !has_level(a, Admin) {
                return deny();
            }
            Answer::Text(match find_server_arg(w, rest.first().copied()) {
                Err(e) => e,
                Ok(sid) => {
                    let slots: Vec<Index> =
                        w.sessions.iter().filter(|(_, s)| s.srv == Some(sid)).map(|(i, _)| i).collect();
                    for slot in slots {
                        session_shutdown(w, slot, SnErr::SN_ERR_KILLED);
                    }
                    String::new()
                }
            })
        }
        ["clear", "counters", rest @ ..] => {
            let all = rest.first() == Some(&"all");
            if !has_level(a, if all { Admin } else { Operator }) {
                return deny();
            }
            stats::clear_counters(w, all);
            t("")
        }
        ["set", "timeout", rest @ ..] => Answer::Text(match rest {
            ["cli", v, ..] => match crate::haproxy::standard::parse_time_err(v) {
                // A bare number is in seconds here (and must stay within HAProxy's timers).
                Ok(ms) if !v.chars().any(|c| c.is_ascii_alphabetic()) => {
                    match ms.checked_mul(1000).filter(|&t| t <= crate::haproxy::standard::TIME_MAX_MS) {
                        Some(t) => {
                            a.timeout = t.max(1);
                            String::new()
                        }
                        None => "Invalid timeout value.\n".into(),
                    }
                }
                Ok(ms) => {
                    a.timeout = ms.max(1);
                    String::new()
                }
                Err(_) => "Invalid timeout value.\n".into(),
            },
            ["cli"] => "Expects an integer value.\n".into(),
            _ => "'set timeout' only supports 'cli'.\n".into(),
        }),
        _ => match find_usage(args) {
            Some(u) => {
                Answer::Text(format!("'{}' is not implemented by haflow.\n", usage_words(u).join(" ")))
            }
            None => Answer::Text(cli_gen_usage_msg(args, false)),
        },
    }
}

/// vars.c:vars_parse_cli_get_var() in 2.6: `get var <name>`, a process-wide variable
/// as `name: type=T value=<V>` (non-printable bytes as dots).
fn vars_parse_cli_get_var(w: &Haproxy, name: Option<&str>) -> String {
    let Some(name) = name else { return "Missing process-wide variable identifier.\n".into() };
    let Some(v) = crate::haproxy::vars::register_name(name)
        .ok()
        .filter(|v| v.scope == crate::haproxy::vars::VarsScope::SCOPE_PROC)
        .and_then(|v| w.global.vars_proc.get(&v.name).cloned())
    else {
        return "Variable not found.\n".into();
    };
    let ty = v.smp_type();
    match v.into_str() {
        Some(s) => {
            let shown: String =
                s.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '.' }).collect();
            format!("{name}: type={ty} value=<{shown}>")
        }
        None => format!("{name}: type={ty} value=(undisplayable)"),
    }
}

/// vars.c:vars_parse_cli_set_var() in 2.6: `set var <name> [expr|fmt] <value>`, a
/// process-wide variable set from a sample expression or a log format.
fn vars_parse_cli_set_var(w: &mut Haproxy, args: &[&str]) -> String {
    use crate::haproxy::sample::{SmpCtx, SmpData, SmpDir, sample_parse_word, sample_process};
    use crate::haproxy::vars::{Vars, VarsScope, register_name};
    let Some(name) = args.first() else { return "Missing process-wide variable identifier.\n".into() };
    let Some(a3) = args.get(1) else { return "Missing either 'expr', 'fmt' or expression.\n".into() };
    let (fmt, text) = match args.get(2) {
        Some(v) if *a3 == "fmt" => (true, *v),
        Some(v) if *a3 == "expr" => (false, *v),
        Some(_) => return format!("'set var': arg type must be either 'expr' or 'fmt' but got '{a3}'.\n"),
        None => (false, *a3),
    };
    let v = match register_name(name) {
        Ok(v) if v.scope == VarsScope::SCOPE_PROC => v,
        Ok(_) => {
            return format!(
                "'set var': cannot set variable '{name}', only scope 'proc' is permitted here.\n"
            );
        }
        Err(e) => return format!("{e}\n"),
    };
    let mut proc = std::mem::take(&mut w.global.vars_proc);
    let res = {
        let mut ctx = SmpCtx::new(None, SmpDir::Req, Vars { proc: &mut proc, sess: None });
        if fmt {
            crate::haproxy::log::parse_logformat_string(text)
                .map(|f| Some(SmpData::Str(crate::haproxy::log::build_logline(&f, &mut ctx, false))))
        } else {
            sample_parse_word(text).map(|e| sample_process(&e, &mut ctx))
        }
    };
    let out = match res {
        Ok(Some(d)) => {
            proc.set(&v.name, d);
            String::new()
        }
        Ok(None) => String::new(),
        Err(e) => format!("{e}\n"),
    };
    w.global.vars_proc = proc;
    out
}

/// `show events [<sink>] [-w] [-n]`: the list of sinks, or the content of `buf0`.
fn cli_show_events(w: &mut Haproxy, a: &mut Appctx, args: &[&str]) -> Answer {
    let Some(sink) = args.first() else { return Answer::Text(w.trace.show_sinks()) };
    if !crate::trace::runtime::TraceCtl::is_sink(sink) {
        return Answer::Text("No such event sink".into());
    }
    if !has_level(a, AccessLevel::Operator) {
        return Answer::Text(PERMISSION_DENIED.into());
    }
    if *sink != "buf0" {
        return Answer::Text(String::new());
    }
    let end = w.trace.ring_end();
    let pos = if args[1..].contains(&"-n") { end } else { 0 };
    let until = if args[1..].contains(&"-w") { None } else { Some(end) };
    Answer::Dump(CliCtx::Events { pos, until })
}

/// ring.c:cli_io_handler_show_ring() (HAProxy 2.6) for `buf0`: the ring's lines from `pos`
/// on (up to `until`, or for ever), while `out` holds less than `room` bytes. True once it
/// caught up. Lines the ring dropped before they could be sent are skipped.
fn cli_io_handler_show_ring(
    w: &Haproxy,
    pos: &mut u64,
    until: Option<u64>,
    out: &mut String,
    room: usize,
) -> bool {
    let until = until.unwrap_or(u64::MAX);
    let (lines, next) = w.trace.ring_since(*pos, until, room.saturating_sub(out.len()));
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    *pos = next;
    next >= until.min(w.trace.ring_end())
}

/// Streams new `buf0` events to the clients running `show events -w` (called once per
/// loop turn, after the tasks ran): each gets what its output buffer has room for. A
/// client that stops reading stops receiving, and its `stats timeout` ends it.
pub fn cli_flush_watchers(w: &mut Haproxy) {
    let end = w.trace.ring_end();
    let behind =
        |a: &Appctx| a.st0 == CliState::Watch && matches!(a.ctx, CliCtx::Events { pos, .. } if pos < end);
    let watching: Vec<Index> = w.cli.conns.iter().filter(|(_, a)| behind(a)).map(|(i, _)| i).collect();
    for idx in watching {
        let Some(mut a) = w.cli.conns.take(idx) else { continue };
        if cli_io_handler(w, &mut a) {
            w.cli.conns.put_back(idx, a);
        } else {
            cli_release(w, idx, &a);
        }
    }
}

/// The `<bk>/<srv>` argument of the server commands.
fn find_server_arg(w: &Haproxy, arg: Option<&str>) -> Result<ServerId, String> {
    let Some((be, srv)) = arg.and_then(|a| a.split_once('/')) else {
        return Err("Require 'backend/server'.\n".into());
    };
    let Some(p) = w.proxies.iter().find(|p| p.name == be && p.is_backend()) else {
        return Err("No such backend.\n".into());
    };
    match p.find_server(srv) {
        Some(i) => Ok(ServerId { px: p.id, idx: i as u32 }),
        None => Err("No such server.\n".into()),
    }
}

/// server.c:cli_parse_add_server() in 2.6: `add server <bk>/<srv> <addr> [kw]*`. The new
/// server takes a new slot at the end of its backend's list, the first free `puid`, and
/// starts in maintenance, its checks configured but disabled until `enable health` /
/// `enable agent`, as 2.6 starts a dynamic server. No `default-server` setting applies.
/// Only backends balancing with a dynamic algorithm (`roundrobin`, `leastconn`, `first`:
/// 2.6's `BE_LB_PROP_DYN`) take servers at runtime; a map-based one (`static-rr`, `source`)
/// computed its map once.
fn cli_parse_add_server(w: &mut Haproxy, args: &[&str]) -> String {
    let Some((be_name, sv_name)) =
        args.first().and_then(|a| a.split_once('/')).filter(|(_, s)| !s.is_empty())
    else {
        return "Require 'backend/server'.".into();
    };
    // As in 2.6, these refusals have no newline of their own (cli_err() with a bare
    // message); those of the server's parsing do (they come from ha_alert()).
    let Some(px) = w.proxies.iter().find(|p| p.is_backend() && p.name == be_name) else {
        return "No such backend.".into();
    };
    if !px.lbprm.algo.is_dynamic() {
        return "Backend must use a dynamic load balancing to support dynamic servers.".into();
    }
    let (pid, mode) = (px.id, px.mode);
    let fail = |msg: String| -> String {
        print_message("ALERT", &format!("CLI : 'server {be_name}/{sv_name}' : {msg}"));
        format!("{msg}\n")
    };
    let Some(addr) = args.get(1) else {
        let msg = "'server' expects <name> and <addr>[:<port>] as arguments.";
        print_message("ALERT", &format!("CLI : {msg}"));
        return format!("{msg}\n");
    };
    // A dynamic server is never resolved (2.6 sets its `init-addr` to `none`).
    let sa = match str2sa_range(addr, false, &|_| None) {
        Ok(ParsedAddr::Inet(ip, port, _)) => SocketAddr::new(ip, port),
        Ok(_) => {
            return fail(format!(
                "'server {sv_name}' : only IPv4/IPv6 server addresses are supported by haflow."
            ));
        }
        Err(e) => return fail(format!("'server {sv_name}' : {e}")),
    };
    let mut srv = Server::new(0, sv_name, sa, 0);
    let words: Vec<String> = args[2..].iter().map(|s| s.to_string()).collect();
    let mut warnings = Vec::new();
    if let Err(e) = srv_parse_kws(&mut srv, &words, &|_| None, true, mode, &mut warnings) {
        return fail(e);
    }
    let p = &mut w.proxies[pid.idx()];
    if p.find_server(sv_name).is_some() {
        return fail("Already exists a server with the same name in backend.".into());
    }
    // proxy.c:get_next_id(): the lowest id no server of the backend uses.
    srv.puid = (1..).find(|id| p.servers.iter().all(|s| s.puid != *id)).unwrap_or(0);
    // Created in forced maintenance; its checks wait for `enable health|agent`.
    srv.flags.insert(SrvFlags::SRV_MAINTAIN);
    srv.flags.remove(SrvFlags::SRV_RUNNING);
    for c in [srv.check.as_mut(), srv.agent.as_mut()].into_iter().flatten() {
        c.state.remove(ChkSt::CHK_ST_ENABLED);
        c.health = 0;
    }
    // Maintenance pauses the health check; the agent keeps running (it may say `ready`).
    if let Some(c) = srv.check.as_mut() {
        c.state.insert(ChkSt::CHK_ST_PAUSED);
    }
    // The backend's check rules (`option httpchk`, `tcp-check`...), as at start-up.
    if let Some(c) = srv.check.as_mut() {
        c.rules = p.tcpcheck.rules.clone();
    }
    srv.last_change = w.clock.now_ms.0 / 1000;
    srv.check_rise = srv.check.as_ref().map_or(srv.check_rise, |c| c.rise);
    let sid = ServerId { px: pid, idx: w.proxies[pid.idx()].servers.push(srv) as u32 };
    w.cli.stats.srv_attach(sid);
    let now = w.clock.now_ms;
    for kind in [CheckKind::Health, CheckKind::Agent] {
        let configured = match kind {
            CheckKind::Health => w.server(sid).check.is_some(),
            CheckKind::Agent => w.server(sid).agent.is_some(),
        };
        if configured && start_check_task(w, CheckId { srv: sid, kind }, now).is_err() {
            print_message("ALERT", "System might be unstable, consider to execute a reload");
        }
    }
    print_message("NOTICE", &format!("CLI : 'server {be_name}/{sv_name}' : New server registered."));
    let mut out: String = warnings.iter().map(|m| format!("{m}\n")).collect();
    out.push_str("New server registered.\n");
    out
}

/// server.c:cli_parse_delete_server() in 2.6: `del server <bk>/<srv>`. Only a server in
/// maintenance with nothing attached (no session on it or queued for it, no session that
/// last used it) is deleted; its check tasks and connections, its statistics and its
/// slot's content are freed. A server the configuration points at (`track`,
/// `use-server`, `srv_*` fetches with an argument) is never deleted.
fn cli_parse_delete_server(w: &mut Haproxy, arg: Option<&str>) -> String {
    // These answers have no newline of their own in 2.6 (cli_err() with a bare message):
    // only the end of the answer follows.
    let sid = match find_server_arg(w, arg) {
        Ok(s) => s,
        Err(e) => return e.trim_end().to_string(),
    };
    let srv = w.server(sid);
    if srv.non_purgeable {
        return "This server cannot be removed at runtime due to other configuration elements pointing to it."
            .into();
    }
    if !srv.flags.contains(SrvFlags::SRV_MAINTAIN) {
        return "Only servers in maintenance mode can be deleted.".into();
    }
    let attached = srv.cur_sess > 0
        || srv.served > 0
        || !srv.pendconns.is_empty()
        || srv.curr_idle_conns() > 0
        || w.sessions.iter().any(|(_, s)| {
            s.srv == Some(sid)
                || s.prev_srv == Some(sid)
                || s.idle_conn.is_some_and(|k| k.srv == Some(sid))
                || s.srv_list.iter().any(|(k, _)| k.srv == Some(sid))
        });
    if attached {
        return "Server still has connections attached to it, cannot remove it.".into();
    }
    for kind in [CheckKind::Health, CheckKind::Agent] {
        check_purge(w, CheckId { srv: sid, kind });
    }
    let p = &mut w.proxies[sid.px.idx()];
    drop(p.servers.remove(sid.idx as usize));
    let slots = p.servers.slots();
    w.cli.stats.srv_detach(sid, slots);
    print_message("NOTICE", "Server deleted.");
    "Server deleted.".into()
}

/// server.c:cli_parse_enable_health() / cli_parse_disable_health() and the `agent` ones
/// in 2.6: `enable|disable health|agent <bk>/<srv>` let a configured check run or stop it.
fn cli_parse_enable_check(w: &mut Haproxy, sid: ServerId, enable: bool, agent: bool) -> String {
    let srv = w.server_mut(sid);
    let c = if agent { srv.agent.as_mut() } else { srv.check.as_mut() };
    match c {
        Some(c) if enable => {
            c.state.insert(ChkSt::CHK_ST_ENABLED);
            String::new()
        }
        Some(c) => {
            c.state.remove(ChkSt::CHK_ST_ENABLED);
            String::new()
        }
        None if !enable => String::new(),
        None if agent => "Agent was not configured on this server, cannot enable.\n".into(),
        None => "Health check was not configured on this server, cannot enable.\n".into(),
    }
}

/// server.c:cli_parse_set_server() (HAProxy 2.6): `set server <bk>/<srv> state|weight ...`.
fn cli_parse_set_server(w: &mut Haproxy, args: &[&str]) -> String {
    let sid = match find_server_arg(w, args.first().copied()) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match args.get(1..) {
        Some(["state", st, ..]) => match *st {
            "ready" => {
                srv_adm_set_ready(w, sid);
                String::new()
            }
            "drain" => {
                srv_adm_set_drain(w, sid);
                String::new()
            }
            "maint" => {
                srv_adm_set_maint(w, sid);
                String::new()
            }
            _ => "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into(),
        },
        Some(["state"]) => "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into(),
        Some(["weight", v, ..]) => server_parse_weight_change_request(w, sid, v),
        Some(["weight"]) => "Require <weight> or <weight%>.\n".into(),
        Some(["fqdn"]) => "set server <b>/<s> fqdn requires a FQDN.\n".into(),
        // haflow has no `resolvers`: no server is ever resolved at runtime.
        Some(["fqdn", ..]) => "set server <b>/<s> fqdn failed because no resolution is configured.\n".into(),
        _ => "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n".into(),
    }
}

/// The address HAProxy prints for an object (`%p`).
fn ptr<T>(r: &T) -> String {
    format!("{:p}", r as *const T)
}

/// Finds a session by the pointer `show sess` printed (`strtoul(id, NULL, 0)`).
fn find_session_by_ptr(w: &Haproxy, id: &str) -> Option<Index> {
    let v = match id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")) {
        Some(h) => usize::from_str_radix(h, 16).ok()?,
        None => id.parse::<usize>().ok()?,
    };
    w.sessions.iter().find(|(_, s)| (*s as *const Session) as usize == v).map(|(i, _)| i)
}

/// session.c:session_shutdown() in 1.5-dev8: ask both directions to close and wake the
/// task; `process_session` then ends the session with `why` (`K` for a kill).
pub fn session_shutdown(w: &mut Haproxy, slot: Index, why: SnErr) {
    let Some(s) = w.sessions.get_mut(slot) else { return };
    if s.req.flags.intersects(BufFlags::BF_SHUTW | BufFlags::BF_SHUTW_NOW) {
        return;
    }
    s.req.buffer_shutw_now();
    s.rep.buffer_shutr_now();
    s.set_err(why);
    let t = s.task;
    if let Some(task) = w.sched.get_mut(t) {
        task.nice = 1024;
    }
    w.sched.task_wakeup(t, TaskState::TASK_WOKEN_OTHER);
}

/// standard.c:human_time() in 1.5-dev8: `1m30s`, `4s`, `2h3m`, `?` for a negative time.
pub fn human_time(t: i64) -> String {
    if t < 0 {
        return "?".into();
    }
    let (day, hour, minute) = (86400, 3600, 60);
    let mut out = String::new();
    let mut cnt = 2;
    if t >= day {
        let _ = write!(out, "{}d", t / day);
        cnt -= 1;
    }
    if cnt > 0 && t % day / hour != 0 {
        let _ = write!(out, "{}h", t % day / hour);
        cnt -= 1;
    }
    if cnt > 0 && t % hour / minute != 0 {
        let _ = write!(out, "{}m", t % hour / minute);
        cnt -= 1;
    }
    if (cnt > 0 && t % minute != 0) || t == 0 {
        let _ = write!(out, "{}s", t % minute);
    }
    out
}

/// A timer as `show sess` prints it: time left, empty when not set.
fn timer(exp: Option<Tick>, now: Tick) -> String {
    match exp {
        None => String::new(),
        Some(e) => human_time((e.0 as i64 - now.0 as i64) / 1000),
    }
}

fn timer_never(exp: Option<Tick>, now: Tick) -> String {
    match exp {
        None => "<NEVER>".into(),
        Some(_) => timer(exp, now),
    }
}

/// `appctx->ctx.sess` of `show sess` and `show sess all`: what is listed and the last one
/// listed. HAProxy keeps a back-reference in the session list; haflow resumes after the
/// last `uniq_id` listed, so a session that ends meanwhile is simply not reached.
#[derive(Debug)]
struct SessCtx {
    /// `show sess all`: the full dump of each session (otherwise one line each, then the
    /// stats socket clients).
    all: bool,
    /// Listing the stats socket clients (after the sessions).
    clis: bool,
    /// The `uniq_id` listed last.
    last: Option<u32>,
}

/// dumpstats.c:stats_dump_sess_to_buffer() in 1.5-dev8: `show sess` (one line per session,
/// then one per stats socket client, `me` included) and `show sess all` (the full dump),
/// by `uniq_id`, while `out` holds less than `room` bytes. True once complete.
fn stats_dump_sess_to_buffer(
    w: &Haproxy,
    me: &Appctx,
    ctx: &mut SessCtx,
    out: &mut String,
    room: usize,
) -> bool {
    let now = w.clock.now_ms;
    if !ctx.clis {
        let last = ctx.last;
        let mut next: Vec<&Session> =
            w.sessions.iter().map(|(_, s)| s).filter(|s| last.is_none_or(|l| s.uniq_id > l)).collect();
        next.sort_unstable_by_key(|s| s.uniq_id);
        for s in next {
            if out.len() >= room {
                return false;
            }
            out.push_str(&if ctx.all { sess_full(w, s, now) } else { sess_line(w, s, now) });
            ctx.last = Some(s.uniq_id);
        }
        if ctx.all {
            return true;
        }
        ctx.clis = true;
        ctx.last = None;
    }
    let last = ctx.last;
    let mut next: Vec<&Appctx> = w
        .cli
        .conns
        .iter()
        .map(|(_, a)| a)
        .chain(std::iter::once(me))
        .filter(|a| last.is_none_or(|l| a.uniq_id > l))
        .collect();
    next.sort_unstable_by_key(|a| a.uniq_id);
    for a in next {
        if out.len() >= room {
            return false;
        }
        out.push_str(&cli_sess_line(w, a, now));
        ctx.last = Some(a.uniq_id);
    }
    true
}

fn src_of(s: &Session) -> String {
    s.cli_addr.map_or_else(|| format!("unix:{}", s.listener.0 + 1), |a| a.to_string())
}

fn srv_name(w: &Haproxy, s: &Session) -> String {
    s.srv.map_or_else(|| "<none>".to_string(), |id| w.server(id).name.clone())
}

fn sess_line(w: &Haproxy, s: &Session, now: Tick) -> String {
    let task = w.sched.get(s.task);
    let be = if s.flags.contains(SessFlags::SN_BE_ASSIGNED) || s.be != s.fe {
        w.proxies[s.be.idx()].name.clone()
    } else {
        "<NONE>".into()
    };
    let si = |i: usize| {
        let si = &s.si[i];
        format!(
            "s{i}=[{},{:x}h,fd={},ex={}]",
            si.state as u8,
            si.flags.bits(),
            si.fd.map_or(-1, |f| f.0),
            timer(si.exp, now)
        )
    };
    format!(
        "{}: proto={} src={} fe={} be={} srv={} ts={:02x} age={} calls={} rq[f={:06x}h,i={},an={:02x}h,rx={},wx={},ax={}] rp[f={:06x}h,i={},an={:02x}h,rx={},wx={},ax={}] {} {} exp={}\n",
        ptr(s),
        w.listeners[s.listener.idx()].proto.name,
        src_of(s),
        w.proxies[s.fe.idx()].name,
        be,
        srv_name(w, s),
        task.map_or(0, |t| t.state.bits()),
        human_time(now.0.saturating_sub(s.logs.tv_accept.0) as i64 / 1000),
        task.map_or(0, |t| t.calls),
        s.req.flags.bits(),
        s.req.i(),
        s.req.analysers.bits(),
        timer(s.req.rex, now),
        timer(s.req.wex, now),
        timer(s.req.analyse_exp, now),
        s.rep.flags.bits(),
        s.rep.i(),
        s.rep.analysers.bits(),
        timer(s.rep.rex, now),
        timer(s.rep.wex, now),
        timer(s.rep.analyse_exp, now),
        si(0),
        si(1),
        timer(task.and_then(|t| t.expire), now),
    )
}

/// A stats socket client as HAProxy lists it in `show sess` (a session of `GLOBAL`).
fn cli_sess_line(w: &Haproxy, a: &Appctx, now: Tick) -> String {
    let task = w.sched.get(a.task);
    let proto = match w.cli.listeners.get(a.listener).map(|l| &l.addr) {
        Some(CliAddr::Inet(SocketAddr::V6(_))) => "tcpv6",
        Some(CliAddr::Inet(_)) => "tcpv4",
        _ => "unix_stream",
    };
    let exp = task.and_then(|t| t.expire);
    format!(
        "{}: proto={proto} src={} fe=GLOBAL be=<NONE> srv=<none> ts={:02x} age={} calls={} rq[f=000000h,i={},an=00h,rx={},wx=,ax=] rp[f=000000h,i={},an=00h,rx=,wx=,ax=] s0=[{},0h,fd={},ex=] s1=[{},0h,fd=-1,ex=] exp={}\n",
        ptr(a),
        a.src,
        task.map_or(0, |t| t.state.bits()),
        human_time(now.0.saturating_sub(a.tv_accept.0) as i64 / 1000),
        a.calls,
        a.ibuf.len(),
        timer(exp, now),
        a.obuf.len(),
        SiState::SI_ST_EST as u8,
        a.fd.0,
        SiState::SI_ST_EST as u8,
        timer(exp, now),
    )
}

fn sess_full(w: &Haproxy, s: &Session, now: Tick) -> String {
    let mut o = String::new();
    let fe = &w.proxies[s.fe.idx()];
    let be = &w.proxies[s.be.idx()];
    let l = &w.listeners[s.listener.idx()];
    let task = w.sched.get(s.task);
    let _ = writeln!(
        o,
        "{}: [{}] id={} proto={} source={}",
        ptr(s),
        crate::haproxy::log::log_date(s.logs.accept_date),
        s.uniq_id,
        l.proto.name,
        src_of(s)
    );
    let _ = writeln!(
        o,
        "  flags=0x{:x}, conn_retries={}, srv_conn={}, pend_pos={}",
        s.flags.bits(),
        s.si[1].conn_retries,
        s.srv_conn.map_or_else(|| "(nil)".to_string(), |id| ptr(w.server(id))),
        if s.pend_pos { "queued" } else { "(nil)" }
    );
    let _ = writeln!(
        o,
        "  frontend={} (id={} mode={}), listener=? (id={}) addr={}",
        fe.name, fe.uuid, fe.mode, l.luid, l.addr
    );
    if s.flags.contains(SessFlags::SN_BE_ASSIGNED) {
        let _ = writeln!(o, "  backend={} (id={} mode={})", be.name, be.uuid, be.mode);
    } else {
        let _ = writeln!(o, "  backend=<NONE> (id=-1 mode=-)");
    }
    match s.srv {
        Some(id) => {
            let sv = w.server(id);
            let _ = writeln!(o, "  server={} (id={}) addr={}", sv.name, sv.puid, sv.addr);
        }
        None => {
            let _ = writeln!(o, "  server=<NONE> (id=-1)");
        }
    }
    let _ = writeln!(
        o,
        "  task={} (state=0x{:02x} nice={} calls={} exp={}{})",
        task.map_or_else(|| "(nil)".to_string(), ptr),
        task.map_or(0, |t| t.state.bits()),
        task.map_or(0, |t| t.nice),
        task.map_or(0, |t| t.calls),
        timer_never(task.and_then(|t| t.expire), now),
        if task.is_some_and(|t| t.state.contains(TaskState::TASK_RUNNING)) { " (running)" } else { "" }
    );
    for (i, si) in s.si.iter().enumerate() {
        let _ = writeln!(
            o,
            "  si[{i}]={} (state={} flags=0x{:02x} fd={} exp={}, et=0x{:03x})",
            ptr(si),
            si.state.short(),
            si.flags.bits(),
            si.fd.map_or(-1, |f| f.0),
            timer_never(si.exp, now),
            si.err_type.bits()
        );
    }
    let _ = writeln!(
        o,
        "  txn={} (status={} req.st={:?} rsp.st={:?})",
        ptr(&s.txn),
        s.txn.status.map_or(-1, i32::from),
        s.txn.req.state,
        s.txn.rsp.state
    );
    for (name, b) in [("req", &s.req), ("res", &s.rep)] {
        let _ = writeln!(
            o,
            "  {name}={} (f=0x{:06x} an=0x{:x} i={} o={} fwd={} total={})",
            ptr(b),
            b.flags.bits(),
            b.analysers.bits(),
            b.i(),
            b.o(),
            if b.to_forward == u64::MAX { -1 } else { b.to_forward as i64 },
            b.total
        );
        let _ = writeln!(
            o,
            "      an_exp={} rex={} wex={}",
            timer_never(b.analyse_exp, now),
            timer_never(b.rex, now),
            timer_never(b.wex, now)
        );
    }
    o
}

/// memory.c:dump_pools(): `show pools`, HAProxy 2.6's layout.
fn dump_pools(w: &Haproxy) -> String {
    let mut pools = w.pool_stats();
    pools.sort_by_key(|p| p.size);
    let addrs = [ptr(&w.pool2_buffer), ptr(&w.pool2_session), ptr(&w.sched)];
    let mut o = String::from("Dumping pools usage. Use SIGQUIT to flush them.\n");
    let (mut alloc, mut used) = (0u64, 0u64);
    for p in &pools {
        let at = match p.name {
            "buffer" => &addrs[0],
            "session" => &addrs[1],
            _ => &addrs[2],
        };
        let _ = writeln!(
            o,
            "  - Pool {} ({} bytes) : {} allocated ({} bytes), {} used (~0 by thread caches), needed_avg {}, {} failures, 1 users, @{} [SHARED]",
            p.name,
            p.size,
            p.allocated,
            p.allocated * p.size as u64,
            p.used,
            p.used,
            p.failed,
            at
        );
        alloc += p.allocated * p.size as u64;
        used += p.used * p.size as u64;
    }
    let _ = writeln!(
        o,
        "Total: {} pools, {alloc} bytes allocated, {used} used (~0 by thread caches).",
        pools.len()
    );
    o
}

/// cli.c:cli_io_handler_show_activity() in 2.6: one thread's loop counters.
/// Divergence: the counters haflow does not keep print 0; `ctxsw`, `tasksw` and
/// `stream_calls` all count task runs; `avg_loop_us` is the time since start over the
/// loop count, not 2.6's sliding average of loop times.
fn cli_io_handler_show_activity(w: &Haproxy) -> String {
    let d = w.clock.date.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let act = &w.activity;
    let loops = act.loops.max(1);
    let rows: [(&str, u64); 24] = [
        ("ctxsw", w.sched.tasks_run),
        ("tasksw", w.sched.tasks_run),
        ("empty_rq", 0),
        ("long_rq", 0),
        ("loops", act.loops),
        ("wake_tasks", act.wake_tasks),
        ("wake_signal", 0),
        ("poll_io", act.poll_events),
        ("poll_exp", 0),
        ("poll_drop_fd", 0),
        ("poll_skip_fd", 0),
        ("conn_dead", 0),
        ("stream_calls", w.sched.tasks_run),
        ("pool_fail", w.pool_stats().iter().map(|p| p.failed).sum()),
        ("buf_wait", 0),
        ("cpust_ms_tot", 0),
        ("cpust_ms_1s", 0),
        ("cpust_ms_15s", 0),
        ("avg_loop_us", (w.clock.elapsed().as_micros() as u64) / loops),
        ("accepted", w.totalconn),
        ("accq_pushed", 0),
        ("accq_full", 0),
        ("accq_ring", 0),
        ("fd_takeover", 0),
    ];
    let mut o = format!("thread_id: 1 (1..1)\ndate_now: {}.{:06}\n", d.as_secs(), d.subsec_micros());
    for (k, v) in rows {
        let _ = writeln!(o, "{k}: {v}");
    }
    o
}

/// activity.c:cli_io_handler_show_tasks() in 2.6: the tasks in the run queue, by function.
/// Divergence: functions in first-seen order, where 2.6 sorts them by count; no latency
/// (`-`).
fn cli_io_handler_show_tasks(w: &Haproxy) -> String {
    let mut o = format!(
        "Running tasks: {} (1 threads)\n  function                     places     %    lat_tot   lat_avg\n",
        w.sched.run_queue()
    );
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (_, t) in w.sched.iter() {
        if !t.state.intersects(TaskState::TASK_WOKEN_ANY) {
            continue;
        }
        let name = match t.context {
            TaskContext::Session(_) => names::PROCESS_SESSION,
            TaskContext::Check(_) => names::PROCESS_CHK,
            TaskContext::Cli(_) => "cli_task_process",
            TaskContext::StkTable(_) => names::PROCESS_TABLE_EXPIRE,
            TaskContext::Global => "task",
        };
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some(c) => c.1 += 1,
            None => counts.push((name, 1)),
        }
    }
    let total: usize = counts.iter().map(|c| c.1).sum::<usize>().max(1);
    for (name, n) in counts {
        let _ =
            writeln!(o, "  {name:<25}  {n:6}  {:5.1}%         -         -", n as f64 * 100.0 / total as f64);
    }
    o
}

/// fd.c:cli_io_handler_show_fd() (HAProxy 2.6): every fd from `next` on (or only fd
/// `only`) with its polling state, owner and callback, while `out` holds less than `room`
/// bytes. True once complete.
fn cli_io_handler_show_fd(
    w: &Haproxy,
    next: &mut usize,
    only: Option<i32>,
    out: &mut String,
    room: usize,
) -> bool {
    use crate::haproxy::fd::FdEv;
    for (fd, e) in w.fdtab.iter_from(*next) {
        if out.len() >= room {
            return false;
        }
        *next = fd.0 as usize + 1;
        if only.is_some_and(|n| n != fd.0) {
            continue;
        }
        let bit = |f: FdEv, c: char| if e.spec.contains(f) { c.to_ascii_uppercase() } else { c };
        let (owner, iocb, detail) = match e.owner {
            FdOwner::Listener(lid) => {
                let l = &w.listeners[lid.idx()];
                (
                    format!("LISTENER:{}", lid.0),
                    names::STREAM_SOCK_ACCEPT,
                    format!(" l.st={} fe={} addr={}", l.state, w.proxies[l.frontend.idx()].name, l.addr),
                )
            }
            FdOwner::Si(sid, side) => {
                let d = match w.sessions.get(sid.idx()) {
                    Some(s) if side as usize == 0 => {
                        format!(" back=0 fe={} sess={}", w.proxies[s.fe.idx()].name, s.uniq_id)
                    }
                    Some(s) => format!(
                        " back=1 sv={}/{} sess={}",
                        w.proxies[s.be.idx()].name,
                        s.srv
                            .or(s.idle_conn.and_then(|k| k.srv))
                            .map_or_else(|| "<none>".into(), |i| w.server(i).name.clone()),
                        s.uniq_id
                    ),
                    None => String::new(),
                };
                (format!("SESSION:si[{}]", side as usize), "stream_sock_read/stream_sock_write", d)
            }
            FdOwner::SrvIdle(sid) => {
                ("CONN:IDLE".into(), "srv_idle_conn_io", format!(" sv={}", srv_fullname(w, sid)))
            }
            FdOwner::Check(cid) => (
                "CHECK".into(),
                "event_srv_chk_r/event_srv_chk_w",
                format!(" sv={}", srv_fullname(w, cid.srv)),
            ),
            FdOwner::CliListener(i) => (
                "LISTENER:GLOBAL".into(),
                "cli_accept",
                format!(
                    " fe=GLOBAL addr={}",
                    w.cli.listeners.get(i as usize).map_or(String::new(), |l| l.addr.to_string())
                ),
            ),
            FdOwner::Cli(_) => ("APPCTX:CLI".into(), "cli_io_read/cli_io_write", " fe=GLOBAL".into()),
            FdOwner::Signals => ("SIGNALS".into(), "signal_pipe_read", String::new()),
        };
        let _ = writeln!(
            out,
            "{:7} : st=0x{:02x}(R:{}{} W:{}{}) ev=0x{:02x} state={:?} owner={owner} iocb={iocb}{detail}",
            fd.0,
            e.spec.bits(),
            bit(FdEv::FD_EV_READY_R, 'r'),
            bit(FdEv::FD_EV_ACTIVE_R, 'a'),
            bit(FdEv::FD_EV_READY_W, 'r'),
            bit(FdEv::FD_EV_ACTIVE_W, 'a'),
            e.ev.bits(),
            e.state
        );
    }
    true
}

/// `appctx->ctx` of `show servers state|conn`: the backend asked for, and where the dump
/// stands (`cli.p0` the proxy, `cli.p1` the server).
#[derive(Debug)]
struct ServersStateCtx {
    /// The header is out.
    head: bool,
    /// `show servers conn` (`show_conn`): the idle connections, not the state.
    conn: bool,
    /// Only this proxy (index), if a backend was named.
    be: Option<usize>,
    /// Index of the proxy being dumped.
    px: usize,
    /// Index of the next server in it.
    sv: usize,
}

/// proxy.c:cli_io_handler_servers_state() (HAProxy 2.6): `show servers state [<backend>]`,
/// format version 1, or `show servers conn [<backend>]`: the header, then each backend's
/// servers, while `out` holds less than `room` bytes. True once complete.
fn cli_io_handler_servers_state(
    w: &Haproxy,
    ctx: &mut ServersStateCtx,
    out: &mut String,
    room: usize,
) -> bool {
    if !ctx.head && ctx.conn {
        out.push_str("# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[1]\n");
        ctx.head = true;
    }
    if !ctx.head {
        out.push_str("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n");
        ctx.head = true;
    }
    while let Some(p) = w.proxies.get(ctx.px) {
        if ctx.be.is_some_and(|b| b != ctx.px) {
            break;
        }
        if p.is_backend() && !dump_servers_state(w, p, ctx.conn, &mut ctx.sv, out, room) {
            return false;
        }
        ctx.px += 1;
        ctx.sv = 0;
    }
    true
}

/// proxy.c:dump_servers_state() (HAProxy 2.6): the servers of backend `p` from index `sv`
/// on, one line each (their state, or with `conn` their connections), while `out` holds
/// less than `room` bytes. True once the backend is done.
fn dump_servers_state(
    w: &Haproxy,
    p: &Proxy,
    conn: bool,
    sv: &mut usize,
    out: &mut String,
    room: usize,
) -> bool {
    let now = w.clock.now_ms.0 / 1000;
    while *sv < p.servers.slots() {
        let Some(srv) = p.servers.get(*sv) else {
            // A deleted server's empty slot.
            *sv += 1;
            continue;
        };
        if out.len() >= room {
            return false;
        }
        if conn {
            // One thread: its idle count is the server's.
            let _ = writeln!(
                out,
                "{}/{} {}/{} {} {} - {} {} {} {} {} {} {} {} {}",
                p.name,
                srv.name,
                p.uuid,
                srv.puid,
                srv.addr.ip(),
                srv.addr.port(),
                srv.pool_purge_delay,
                srv.cur_sess,
                srv.max_used_conns,
                srv.est_need_conns,
                srv.idle_conns.len(),
                srv.safe_conns.len(),
                srv.max_idle_conns,
                srv.curr_idle_conns(),
                srv.curr_idle_conns()
            );
            *sv += 1;
            continue;
        }
        let op = if srv.flags.contains(SrvFlags::SRV_RUNNING) { 2 } else { 0 };
        let admin = if srv.flags.contains(SrvFlags::SRV_MAINTAIN) { 0x01 } else { 0 }
            | if srv.flags.contains(SrvFlags::SRV_DRAIN) { 0x08 } else { 0 };
        let (cst, cres, chealth, cstate) = match &srv.check {
            Some(c) => (c.status.num(), c.result.num(), c.health, c.state.bits()),
            None => (1, 0, srv.check_rise, 0),
        };
        let agent_state = srv.agent.as_ref().map_or(0, |a| a.state.bits());
        let addr_or_dash = |a: Option<std::net::IpAddr>| a.map_or_else(|| "-".to_string(), |a| a.to_string());
        let check_port = srv.check.as_ref().map_or(0, |c| c.port);
        let check_addr = addr_or_dash(srv.check.as_ref().and_then(|c| c.addr));
        let (agent_addr, agent_port) =
            srv.agent.as_ref().map_or(("-".to_string(), 0), |a| (addr_or_dash(a.addr), a.port));
        let _ = writeln!(
            out,
            "{} {} {} {} {} {op} {admin} {} {} {} {cst} {cres} {chealth} {cstate} {agent_state} 0 0 - {} - 0 {check_port} {check_addr} {agent_addr} {agent_port}",
            p.uuid,
            p.name,
            srv.puid,
            srv.name,
            srv.addr.ip(),
            srv.uweight,
            srv.iweight,
            now.saturating_sub(srv.last_change),
            srv.addr.port()
        );
        *sv += 1;
    }
    true
}

/// proxy.c:cli_io_handler_show_backend() (HAProxy 2.6): `show backend`, one backend name
/// a line from proxy `px` on, while `out` holds less than `room` bytes. True once complete.
fn cli_io_handler_show_backend(
    w: &Haproxy,
    head: &mut bool,
    px: &mut usize,
    out: &mut String,
    room: usize,
) -> bool {
    if !*head {
        out.push_str("# name\n");
        *head = true;
    }
    while let Some(p) = w.proxies.get(*px) {
        if out.len() >= room {
            return false;
        }
        if p.is_backend() {
            let _ = writeln!(out, "{}", p.name);
        }
        *px += 1;
    }
    true
}

/// The words of a usage line that are keywords (`show servers state [<backend>]` gives
/// `show servers state`).
fn usage_words(u: &str) -> Vec<&str> {
    u.split(':')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .take_while(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        .collect()
}

/// The usage line of a command HAProxy 2.6 knows and haflow does not implement.
fn find_usage(args: &[&str]) -> Option<&'static str> {
    CLI_USAGES.iter().copied().find(|u| {
        let kw = usage_words(u);
        !kw.is_empty() && kw.len() <= args.len() && kw.iter().zip(args).all(|(a, b)| a == b)
    })
}

/// tools.c:update_word_fingerprint() in 2.6: counts the transitions between characters of
/// `word` (letters, digits, others, begin and end) in a 32x32 matrix. HAProxy keeps the
/// 1024 cells; a word touches a few, so haflow keeps only those (index, count), sorted.
/// Divergence: the classes are those the comment of 2.6's `make_word_fingerprint()`
/// lists (letters 0..25, digit 26, other 27, begin 28, end 29); 2.6's body uses letters
/// 1..26, digit 27, one class 28 for other, begin and end, and marks in row 0 each class
/// seen, so some distances, and suggestions, differ.
fn update_word_fingerprint(fp: &mut Vec<(u16, u16)>, word: &str) {
    let class = |c: u8| match c.to_ascii_lowercase() {
        c @ b'a'..=b'z' => u16::from(c - b'a'),
        b'0'..=b'9' => 26,
        _ => 27,
    };
    let mut bump = |cell: u16| match fp.binary_search_by_key(&cell, |&(i, _)| i) {
        Ok(k) => fp[k].1 = fp[k].1.saturating_add(1),
        Err(k) => fp.insert(k, (cell, 1)),
    };
    let mut from = 28;
    for c in word.bytes() {
        let to = class(c);
        bump(32 * from + to);
        from = to;
    }
    bump(32 * from + 29);
}

/// tools.c:word_fingerprint_distance() in 2.6: the sum of the differences, cell by cell.
fn word_fingerprint_distance(a: &[(u16, u16)], b: &[(u16, u16)]) -> i32 {
    let (mut i, mut j, mut dist) = (0, 0, 0i32);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                dist += (i32::from(x.1) - i32::from(y.1)).abs();
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                dist += i32::from(x.1);
                i += 1;
            }
            (Some(x), None) => {
                dist += i32::from(x.1);
                i += 1;
            }
            (_, Some(y)) => {
                dist += i32::from(y.1);
                j += 1;
            }
            (None, None) => break,
        }
    }
    dist
}

/// cli.c:cli_gen_usage_msg() (HAProxy 2.6): the help text, or the answer to an unknown
/// command: the commands whose first words match exactly, or the closest ones by word
/// fingerprint, always followed by `help`, `prompt` and `quit`. The selection and the
/// layout are HAProxy's; the ranking is not always: HAProxy breaks ties in keyword
/// registration order (haflow uses the help order) and 2.6's fingerprints rank some
/// candidates differently from tools.c as haflow reproduces it (`foo`, `xyz`, `sho stat`
/// give HAProxy 2.6's lists; `foo bar` differs by two of its five suggestions).
pub fn cli_gen_usage_msg(args: &[&str], ishelp: bool) -> String {
    let kws: Vec<(Vec<&str>, &str)> = CLI_USAGES.iter().map(|u| (usage_words(u), *u)).collect();
    let arg = |i: usize| args.get(i).copied().filter(|a| !a.is_empty());
    // First, the longest exact match.
    let mut length = 0;
    for (kw, _) in &kws {
        for (i, k) in kw.iter().enumerate() {
            if arg(i) != Some(k) {
                break;
            }
            length = length.max(i + 1);
        }
    }
    let mut o = String::from(if ishelp {
        "The following commands are valid at this level:\n"
    } else if length == 0 && arg(0).is_none() {
        "Unknown command. Please enter one of the following commands only:\n"
    } else {
        "Unknown command, but maybe one of the following ones is a better match:\n"
    });
    let mut matches: Vec<(i32, &str)> = Vec::new();
    if arg(length).is_some() {
        // The remaining words of the command line, compared with each keyword's.
        let mut word_sig = Vec::new();
        let mut word_len = 0;
        for a in args[length..].iter().take(5 - length.min(5)) {
            update_word_fingerprint(&mut word_sig, a);
            word_len += a.len();
        }
        for (kw, usage) in &kws {
            if kw.len() < length || kw[..length] != args[..length] {
                continue;
            }
            let mut list_sig = Vec::new();
            let mut totlen = word_len;
            for k in kw[length..].iter().take(5 - length.min(5)) {
                update_word_fingerprint(&mut list_sig, k);
                totlen += k.len();
            }
            let dist = word_fingerprint_distance(&word_sig, &list_sig);
            let worst =
                if matches.len() < CLI_MAX_MATCHES { i32::MAX } else { matches[CLI_MAX_MATCHES - 1].0 };
            if dist < (5 * totlen / 2) as i32 && dist < worst {
                // Keep the best ones, earlier entries first on a tie (HAProxy's insertion).
                let pos = matches.iter().position(|(d, _)| *d > dist).unwrap_or(matches.len());
                matches.insert(pos, (dist, usage));
                matches.truncate(CLI_MAX_MATCHES);
            }
        }
    }
    let mut entries: Vec<&str> = Vec::new();
    if let Some(&(best, _)) = matches.first() {
        entries.extend(matches.iter().take_while(|(d, _)| *d <= 5 * best / 2).map(|(_, u)| *u));
    } else {
        entries.extend(
            kws.iter()
                .filter(|(kw, _)| kw.len() >= length && kw[..length] == args[..length])
                .map(|(_, u)| *u),
        );
    }
    entries.sort_unstable();
    for e in entries {
        let _ = writeln!(o, "  {e}");
    }
    o.push_str("  help [<command>]                        : list matching or all commands\n");
    o.push_str("  prompt                                  : toggle interactive mode with prompt\n");
    o.push_str("  quit                                    : disconnect\n");
    o
}

/// The commands HAProxy 2.6 lists in `help` (`struct cli_kw` usages), in its order.
/// haflow implements the server, session, statistics, trace and process commands; the
/// others (SSL, maps, ACLs, tables...) answer that haflow does not implement them.
pub const CLI_USAGES: &[&str] = &[
    "abort ssl ca-file <cafile>              : abort a transaction for a CA file",
    "abort ssl cert <certfile>               : abort a transaction for a certificate file",
    "abort ssl crl-file <crlfile>            : abort a transaction for a CRL file",
    "add acl [@<ver>] <acl> <pattern>        : add an acl entry",
    "add map [@<ver>] <map> <key> <val>      : add a map entry (payload supported instead of key/val)",
    "add server <bk>/<srv>                   : create a new server",
    "add ssl crt-list <list> <cert> [opts]*  : add to crt-list file <list> a line <cert> or a payload",
    "clear acl [@<ver>] <acl>                : clear the contents of this acl",
    "clear counters [all]                    : clear max statistics counters (or all counters)",
    "clear map [@<ver>] <map>                : clear the contents of this map",
    "clear table <table> [<filter>]*         : remove an entry from a table (filter: data/key)",
    "commit acl @<ver> <acl>                 : commit the ACL at this version",
    "commit map @<ver> <map>                 : commit the map at this version",
    "commit ssl ca-file <cafile>             : commit a CA file",
    "commit ssl cert <certfile>              : commit a certificate file",
    "commit ssl crl-file <crlfile>           : commit a CRL file",
    "del acl <acl> [<key>|#<ref>]            : delete acl entries matching <key>",
    "del map <map> [<key>|#<ref>]            : delete map entries matching <key>",
    "del server <bk>/<srv>                   : remove a dynamically added server",
    "del ssl ca-file <cafile>                : delete an unused CA file",
    "del ssl cert <certfile>                 : delete an unused certificate file",
    "del ssl crl-file <crlfile>              : delete an unused CRL file",
    "del ssl crt-list <list> <cert[:line]>   : delete a line <cert> from crt-list file <list>",
    "disable agent                           : disable agent checks",
    "disable dynamic-cookie backend <bk>     : disable dynamic cookies on a specific backend",
    "disable frontend <frontend>             : temporarily disable specific frontend",
    "disable health                          : disable health checks",
    "disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)",
    "enable agent                            : enable agent checks",
    "enable dynamic-cookie backend <bk>      : enable dynamic cookies on a specific backend",
    "enable frontend <frontend>              : re-enable specific frontend",
    "enable health                           : enable health checks",
    "enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)",
    "get acl <acl> <value>                   : report the patterns matching a sample for an ACL",
    "get map <acl> <value>                   : report the keys and values matching a sample for a map",
    "get var <name>                          : retrieve contents of a process-wide variable",
    "get weight <bk>/<srv>                   : report a server's current weight",
    "new ssl ca-file <cafile>                : create a new CA file to be used in a crt-list",
    "new ssl cert <certfile>                 : create a new certificate file to be used in a crt-list or a directory",
    "new ssl crlfile <crlfile>               : create a new CRL file to be used in a crt-list",
    "operator                                : lower the level of the current CLI session to operator",
    "prepare acl <acl>                       : prepare a new version for atomic ACL replacement",
    "prepare map <acl>                       : prepare a new version for atomic map replacement",
    "set dynamic-cookie-key backend <bk> <k> : change a backend secret key for dynamic cookies",
    "set map <map> [<key>|#<ref>] <value>    : modify a map entry",
    "set maxconn frontend <frontend> <value> : change a frontend's maxconn setting",
    "set maxconn global <value>              : change the per-process maxconn setting",
    "set maxconn server <bk>/<srv>           : change a server's maxconn setting",
    "set profiling <what> {auto|on|off}      : enable/disable resource profiling (tasks,memory)",
    "set rate-limit <setting> <value>        : change a rate limiting value",
    "set server <bk>/<srv> [opts]            : change a server's state, weight, address or ssl",
    "set severity-output [none|number|string]: set presence of severity level in feedback information",
    "set ssl ca-file <cafile> <payload>      : replace a CA file",
    "set ssl cert <certfile> <payload>       : replace a certificate file",
    "set ssl crl-file <crlfile> <payload>    : replace a CRL file",
    "set ssl ocsp-response <resp|payload>    : update a certificate's OCSP Response from a base64-encode DER",
    "set ssl tls-key [id|file] <key>         : set the next TLS key for the <id> or <file> listener to <key>",
    "set table <table> key <k> [data.* <v>]* : update or create a table entry's data",
    "set timeout [cli] <delay>               : change a timeout setting",
    "set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)",
    "show acl [@<ver>] <acl>]                : report available acls or dump an acl's contents",
    "show activity                           : show per-thread activity stats (for support/developers)",
    "show backend                            : list backends in the current running config",
    "show cache                              : show cache status",
    "show cli level                          : display the level of the current CLI session",
    "show cli sockets                        : dump list of cli sockets",
    "show env [var]                          : dump environment variables known to the process",
    "show errors [<px>] [request|response]   : report last request and/or response errors for each proxy",
    "show events [<sink>] [-w] [-n]          : show event sink state",
    "show fd [num]                           : dump list of file descriptors in use or a specific one",
    "show info [desc|json|typed|float]*      : report information about the running process",
    "show libs                               : show loaded object files and libraries",
    "show map [@ver] [map]                   : report available maps or dump a map's contents",
    "show peers [dict|-] [section]           : dump some information about all the peers or this peers section",
    "show pools                              : report information about the memory pools usage",
    "show profiling [<what>|<#lines>|byaddr]*: show profiling state (all,status,tasks,memory)",
    "show resolvers [id]                     : dumps counters from all resolvers section and associated name servers",
    "show schema json                        : report schema used for stats",
    "show servers conn [<backend>]           : dump server connections status (all or for a single backend)",
    "show servers state [<backend>]          : dump volatile server information (all or for a single backend)",
    "show sess [id]                          : report the list of current sessions or dump this exact session",
    "show ssl ca-file [<cafile>[:<index>]]   : display the SSL CA files used in memory, or the details of a <cafile>, or a single certificate of index <index> of a CA file <cafile>",
    "show ssl cert [<certfile>]              : display the SSL certificates used in memory, or the details of a file",
    "show ssl crl-file [<crlfile[:<index>>]] : display the SSL CRL files used in memory, or the details of a <crlfile>, or a single CRL of index <index> of CRL file <crlfile>",
    "show ssl crt-list [-n] [<list>]         : show the list of crt-lists or the content of a crt-list file <list>",
    "show ssl ocsp-response [id]             : display the IDs of the OCSP responses used in memory, or the details of a single OCSP response",
    "show ssl providers                      : show loaded SSL providers",
    "show startup-logs                       : report logs emitted during HAProxy startup",
    "show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server",
    "show table <table> [<filter>]*          : report table usage stats or dump this table's contents (filter: data/key)",
    "show tasks                              : show running tasks",
    "show threads                            : show some threads debugging information",
    "show tls-keys [id|*]                    : show tls keys references or dump tls ticket keys when id specified",
    "show trace [<module>]                   : show live tracing state",
    "show version                            : show version of the current process",
    "shutdown frontend <frontend>            : stop a specific frontend",
    "shutdown session [id]                   : kill a specific session",
    "shutdown sessions server <bk>/<srv>     : kill sessions on a server",
    "trace [<module>|0] [cmd [args...]]      : manage live tracing (empty to list, 0 to stop all)",
    "user                                    : lower the level of the current CLI session to user",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_split_commands_unless_escaped() {
        /// Every command of `line`, taken one at a time as the state machine does.
        fn commands(line: &str) -> Vec<String> {
            let mut input = format!("{line}\n").into_bytes();
            let mut cmds = Vec::new();
            while let Some(eol) = input.iter().position(|&b| b == b'\n') {
                let (cmd, used) = cli_get_command(&input[..eol]);
                cmds.push(cmd);
                input.drain(..used);
            }
            cmds
        }
        assert_eq!(commands("a;b ; c"), ["a", "b ", " c"]);
        assert_eq!(commands("get weight be/s1\\;x"), ["get weight be/s1;x"]);
        assert_eq!(commands("a;"), ["a"]);
        assert_eq!(commands("a; \r"), ["a"]);
        assert_eq!(commands("a;;b"), ["a", "", "b"]);
        assert_eq!(commands("a;b\r"), ["a", "b"]);
        assert_eq!(commands(""), [""]);
    }

    #[test]
    fn human_time_like_haproxy() {
        assert_eq!(human_time(0), "0s");
        assert_eq!(human_time(4), "4s");
        assert_eq!(human_time(90), "1m30s");
        assert_eq!(human_time(3600 * 25 + 61), "1d1h");
        assert_eq!(human_time(-1), "?");
    }

    #[test]
    fn addresses_of_stats_sockets() {
        assert_eq!(parse_cli_addr("/tmp/x.sock"), Ok(CliAddr::Unix("/tmp/x.sock".into())));
        assert_eq!(parse_cli_addr("unix@rel.sock"), Ok(CliAddr::Unix("rel.sock".into())));
        assert_eq!(
            parse_cli_addr("ipv4@127.0.0.1:9999"),
            Ok(CliAddr::Inet("127.0.0.1:9999".parse().unwrap()))
        );
        assert_eq!(parse_cli_addr("fd@7"), Ok(CliAddr::Fd(7)));
        assert!(parse_cli_addr("abns@x").is_err());
        assert!(parse_cli_addr("ipv4@nope:1").is_err());
    }

    #[test]
    fn unknown_command_suggestions_follow_cli_gen_usage_msg() {
        let fixture = include_str!("../../tests/fixtures/haproxy-2.6/cli-prompt-mode-multi.out");
        let start = fixture.find("Unknown command").unwrap();
        let end = fixture[start..].find("\n\n").unwrap() + start + 1;
        assert_eq!(cli_gen_usage_msg(&["foo"], false), &fixture[start..end]);
        let help = include_str!("../../tests/fixtures/haproxy-2.6/cli-help.out");
        assert_eq!(cli_gen_usage_msg(&[], true) + "\n", help);
        let empty = include_str!("../../tests/fixtures/haproxy-2.6/cli-empty-line.out");
        assert_eq!(cli_gen_usage_msg(&[], false) + "\n", empty);
        let show = cli_gen_usage_msg(&["sho", "stat"], false);
        assert!(show.lines().nth(1).unwrap().starts_with("  show stat "), "{show}");
        assert_eq!(show.lines().count(), 5);
    }
}
