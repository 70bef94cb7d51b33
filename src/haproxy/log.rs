//! Logs: HAProxy's log lines (`option tcplog`, `option httplog`) and where they go.
//!
//! Reproduces `log.c` (1.5-dev8 structure, HAProxy 2.6 output). `sess_log` builds the
//! session's line when it ends (or, in HTTP, when each transaction ends) and `send_log`
//! frames it for each `log` target: UDP syslog (`rfc3164` by default, `rfc5424`, `short`,
//! `raw`...), or `stdout`/`stderr`. The termination state is two characters in TCP and
//! four in HTTP: `sess_term_cond[]` (why) and `sess_fin_state[]` (where), then the two
//! cookie characters (`--` unless the backend has a persistence `cookie`).
//!
//! Sending never waits on the proxy thread: the UDP and UNIX sockets are non-blocking and
//! kept open (one each, a UNIX one per path, reconnected when the daemon was restarted),
//! and lines for `stdout`/`stderr` go through a bounded queue to a writer thread. A line
//! that cannot go out at once is dropped and counted (`show info`'s `DroppedLogs`).

use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::proxy::ProxyMode;
use crate::haproxy::session::Session;

/// The `option` that selects the log line's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// No format option: HAProxy logs "Connect from ..." at accept time.
    #[default]
    None,
    /// `option tcplog`.
    Tcp,
    /// `option httplog`.
    Http,
    /// `option httplog clf`.
    Clf,
}

/// Where a `log` line sends messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogDest {
    /// `log stdout`.
    Stdout,
    /// `log stderr`.
    Stderr,
    /// `log ADDR[:PORT]`: UDP syslog.
    Udp(SocketAddr),
    /// `log /path`: a UNIX datagram socket (e.g. `/dev/log`).
    Unix(PathBuf),
}

/// `format` of a `log` line: how each message is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyslogFormat {
    /// `<PRI>Mmm dd hh:mm:ss tag[pid]: msg` (the default).
    #[default]
    Rfc3164,
    /// `<PRI>1 ISO-DATE host tag pid - - msg`.
    Rfc5424,
    /// `<LEVEL>msg`.
    Short,
    /// `msg` alone.
    Raw,
    /// `<PRI>msg`.
    Priority,
    /// `ISO-DATE msg`.
    Iso,
    /// `<PRI>Mmm dd hh:mm:ss msg`.
    Timed,
    /// `Mmm dd hh:mm:ss host msg`.
    Local,
}

/// One `log` target (`struct logsrv`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogTarget {
    /// Where messages go.
    pub dest: LogDest,
    /// Message framing.
    pub format: SyslogFormat,
    /// Syslog facility number (`local0` = 16).
    pub facility: u8,
    /// Most verbose level sent (`info` = 6 by default: everything up to debug is 7).
    pub level: u8,
    /// `len N`: messages are truncated to N bytes (default 1024).
    pub maxlen: usize,
}

/// Syslog facility names, in number order.
pub const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2", "ftp", "ntp",
    "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7",
];

/// Syslog level names, in number order.
pub const LEVELS: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

/// `LOG_INFO`: the level of traffic logs.
pub const LOG_INFO: u8 = 6;
/// `LOG_ALERT`: server state changes.
pub const LOG_ALERT: u8 = 1;
/// `LOG_EMERG`: a backend lost its last server.
pub const LOG_EMERG: u8 = 0;
/// `LOG_NOTICE`: health-check results.
pub const LOG_NOTICE: u8 = 5;
/// `LOG_WARNING`: a proxy stopped.
pub const LOG_WARNING: u8 = 4;

/// The sockets and identity used to send logs (HAProxy's `logsrv` fds, `pid`, `log-tag`).
#[derive(Debug)]
pub struct Logger {
    udp: Option<UdpSocket>,
    /// One connected socket per UNIX target path (`logfdunix`).
    unix: Vec<(PathBuf, UnixDatagram)>,
    /// The writer of `stdout`/`stderr` lines, started with the first one.
    std: Option<StdWriter>,
    /// Lines not sent because they would have made the proxy wait (`dropped_logs`).
    pub dropped: u64,
    /// The process id printed in syslog headers.
    pub pid: u32,
    /// `log-tag` (default `haproxy`).
    pub tag: String,
    /// `log-send-hostname` value, if any.
    pub hostname: Option<String>,
    /// Log lines also kept here (the TUI and tests read them).
    pub recent: std::collections::VecDeque<String>,
    /// Keep `stdout`/`stderr` targets quiet (a UI owns the terminal, or tests capture).
    pub mute_std: bool,
}

impl Default for Logger {
    fn default() -> Self {
        Logger {
            udp: None,
            unix: Vec::new(),
            std: None,
            dropped: 0,
            pid: std::process::id(),
            tag: "haproxy".into(),
            hostname: None,
            recent: std::collections::VecDeque::new(),
            mute_std: false,
        }
    }
}

/// The standard stream a line goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdStream {
    /// `stdout`.
    Out,
    /// `stderr`.
    Err,
}

/// Where the writer thread puts a line.
pub type StdSink = Box<dyn FnMut(StdStream, &str) + Send>;

/// Lines waiting for the writer thread at most; more are dropped.
const STD_QUEUE: usize = 4096;

/// A thread writing lines to the standard streams, fed through a bounded queue: a slow
/// terminal or a full pipe stalls it, never the proxy.
/// Divergence: HAProxy 2.6 makes a stdout that is not a terminal non-blocking and drops a
/// line that would block; haflow leaves the stream's flags alone (other code of the
/// process writes to it too) and drops a line only when the queue is full.
#[derive(Debug)]
pub struct StdWriter {
    tx: Option<SyncSender<(StdStream, String)>>,
    thread: Option<JoinHandle<()>>,
}

impl StdWriter {
    /// Starts the thread, handing each line to `sink`; at most `capacity` lines wait.
    pub fn start(capacity: usize, mut sink: StdSink) -> io::Result<StdWriter> {
        let (tx, rx): (_, Receiver<(StdStream, String)>) = sync_channel(capacity);
        let thread = std::thread::Builder::new().name("haflow-log".into()).spawn(move || {
            for (to, line) in rx {
                sink(to, &line);
            }
        })?;
        Ok(StdWriter { tx: Some(tx), thread: Some(thread) })
    }

    /// Queues `line`; `false` when the queue is full (the line is dropped).
    pub fn send(&self, to: StdStream, line: String) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.try_send((to, line)).is_ok())
    }
}

impl Drop for StdWriter {
    fn drop(&mut self) {
        // The queued lines are written before the process goes on (and exits).
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes a line to the real standard stream.
fn write_std_stream(to: StdStream, line: &str) {
    let _ = match to {
        StdStream::Out => io::stdout().lock().write_all(line.as_bytes()),
        StdStream::Err => io::stderr().lock().write_all(line.as_bytes()),
    };
}

impl Logger {
    /// Queues `line` (newline included) for `stdout` or `stderr`, without waiting.
    pub fn write_std(&mut self, to: StdStream, line: String) {
        if self.std.is_none() {
            self.std = StdWriter::start(STD_QUEUE, Box::new(write_std_stream)).ok();
        }
        if !self.std.as_ref().is_some_and(|w| w.send(to, line)) {
            self.dropped += 1;
        }
    }

    /// Sends one datagram to the UDP syslog server at `addr`.
    fn send_udp(&mut self, addr: &SocketAddr, bytes: &[u8]) {
        if self.udp.is_none() {
            self.udp = UdpSocket::bind(if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).ok();
            if let Some(u) = &self.udp {
                let _ = u.set_nonblocking(true);
            }
        }
        if self.udp.as_ref().is_none_or(|u| u.send_to(bytes, addr).is_err()) {
            self.dropped += 1;
        }
    }

    /// Sends one datagram to the UNIX syslog socket at `path` (`/dev/log`), on the socket
    /// kept connected to it. A daemon that restarted has a new socket there: the send
    /// fails, and the line goes out on a new connection.
    pub fn send_unix(&mut self, path: &Path, bytes: &[u8]) {
        let sent = match self.unix.iter().position(|(p, _)| p == path) {
            Some(i) => match self.unix[i].1.send(bytes) {
                Ok(_) => true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
                Err(_) => {
                    self.unix.swap_remove(i);
                    self.connect_unix(path).is_some_and(|s| s.send(bytes).is_ok())
                }
            },
            None => self.connect_unix(path).is_some_and(|s| s.send(bytes).is_ok()),
        };
        if !sent {
            self.dropped += 1;
        }
    }

    /// A new non-blocking socket connected to `path`, kept for the next lines.
    fn connect_unix(&mut self, path: &Path) -> Option<&UnixDatagram> {
        let sock = UnixDatagram::unbound().ok()?;
        sock.set_nonblocking(true).ok()?;
        sock.connect(path).ok()?;
        self.unix.push((path.to_path_buf(), sock));
        self.unix.last().map(|(_, s)| s)
    }
}

/// Broken-down local time (`localtime_r`).
pub struct LocalTime {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month 0..11.
    pub mon: usize,
    /// Day of month 1..31.
    pub mday: u32,
    /// Hours.
    pub hour: u32,
    /// Minutes.
    pub min: u32,
    /// Seconds.
    pub sec: u32,
    /// Milliseconds.
    pub ms: u32,
    /// Microseconds within the second.
    pub us: u32,
    /// Offset from UTC in seconds.
    pub gmtoff: i64,
}

impl LocalTime {
    /// RFC 5424's timestamp, `2026-11-25T13:11:16.528000+01:00` (syslog, `buf0`).
    pub fn iso8601(&self) -> String {
        let off = self.gmtoff / 60;
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02}",
            self.year,
            self.mon + 1,
            self.mday,
            self.hour,
            self.min,
            self.sec,
            self.us,
            if off < 0 { '-' } else { '+' },
            off.abs() / 60,
            off.abs() % 60
        )
    }
}

/// Month abbreviations used by every HAProxy date format.
pub const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Converts a date to local broken-down time.
pub fn local_time(t: SystemTime) -> LocalTime {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as libc::time_t;
    // SAFETY: `tm` is plain old data that localtime_r fully initialises; both pointers are
    // valid for the duration of the call.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    LocalTime {
        year: tm.tm_year + 1900,
        mon: tm.tm_mon.clamp(0, 11) as usize,
        mday: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        min: tm.tm_min as u32,
        sec: tm.tm_sec as u32,
        ms: d.subsec_millis(),
        us: d.subsec_micros(),
        gmtoff: tm.tm_gmtoff,
    }
}

/// `%t`: `25/Nov/2026:13:11:16.528`.
pub fn log_date(t: SystemTime) -> String {
    let l = local_time(t);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02}.{:03}",
        l.mday, MONTHS[l.mon], l.year, l.hour, l.min, l.sec, l.ms
    )
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-1".to_string(), |x| x.to_string())
}

fn client(s: &Session) -> (String, String) {
    match s.cli_addr {
        Some(a) => (a.ip().to_string(), a.port().to_string()),
        None => ("unix".into(), "0".into()),
    }
}

/// The counters part of a log line: `actconn/feconn/beconn/srv_conn/retries`, then
/// `srv_queue/backend_queue`. Called before the session leaves `actconn` and `feconn`
/// (it already left its backend and server), as HAProxy 2.6 does.
fn counters(w: &Haproxy, s: &Session) -> String {
    let fe = &w.proxies[s.fe.idx()];
    let be = &w.proxies[s.be.idx()];
    let srv_conn = s.srv.map_or(0, |id| w.server(id).cur_sess);
    let redisp = if s.flags.contains(crate::haproxy::session::SessFlags::SN_REDISP) { "+" } else { "" };
    format!(
        "{}/{}/{}/{}/{}{} {}/{}",
        w.actconn,
        fe.feconn,
        be.beconn,
        srv_conn,
        redisp,
        s.logs.retries,
        s.logs.srv_queue_size,
        s.logs.prx_queue_size
    )
}

/// The server name the log shows (`%s`): the server's, the applet's (`<CACHE>`) when
/// the cache answered, else `<NOSRV>`.
fn srv_name<'a>(w: &'a Haproxy, s: &Session) -> &'a str {
    match s.srv {
        Some(id) => &w.server(id).name,
        None if s.si[1].appctx.is_some() => "<CACHE>",
        None => "<NOSRV>",
    }
}

/// Backend and server names for the log (`%b/%s`).
fn be_srv(w: &Haproxy, s: &Session) -> String {
    format!("{}/{}", w.proxies[s.be.idx()].name, srv_name(w, s))
}

/// `%B`: bytes sent (or queued) to the client in this transaction. Parser errors and
/// silent closes count 0, as HAProxy 2.6 logs them.
pub fn bytes_out(s: &Session) -> u64 {
    if s.txn.uncounted_reply {
        return 0;
    }
    s.rep.forwarded().saturating_sub(s.logs.bytes_out_base)
}

/// The `option tcplog` line (HAProxy 2.6):
/// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`.
pub fn build_tcplog(w: &Haproxy, s: &Session) -> String {
    let (ip, port) = client(s);
    let tw = s.logs.t_queue;
    let tc = match (s.logs.t_connect, s.logs.t_queue) {
        (Some(c), Some(q)) => Some(c.saturating_sub(q)),
        (Some(c), None) => Some(c),
        _ => None,
    };
    format!(
        "{ip}:{port} [{}] {} {} {}/{}/{} {} {}{} {}",
        log_date(s.logs.accept_date),
        w.proxies[s.fe.idx()].name,
        be_srv(w, s),
        opt_ms(tw),
        opt_ms(tc),
        opt_ms(s.logs.t_close),
        bytes_out(s),
        s.err.log_char(),
        s.finst.log_char(),
        counters(w, s)
    )
}

/// The `option httplog` line (HAProxy 2.6):
/// `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`.
pub fn build_httplog(w: &Haproxy, s: &Session) -> String {
    let (ip, port) = client(s);
    let l = &s.logs;
    let tr = l.t_request;
    let tw = match (l.t_queue, l.t_request) {
        (Some(q), Some(r)) => Some(q.saturating_sub(r)),
        _ => None,
    };
    let tc = match (l.t_connect, l.t_queue) {
        (Some(c), Some(q)) => Some(c.saturating_sub(q)),
        _ => None,
    };
    let trs = match (l.t_data, l.t_connect) {
        (Some(d), Some(c)) => Some(d.saturating_sub(c)),
        _ => None,
    };
    let ta = l.t_close.map(|c| c.saturating_sub(l.t_idle.unwrap_or(0)));
    let status = s.txn.status.map_or_else(|| "-1".to_string(), |st| st.to_string());
    // `%hr %hs`: only when the frontend captures headers.
    let mut caps = String::new();
    for c in [&s.txn.req_cap, &s.txn.rsp_cap] {
        if !c.is_empty() {
            caps.push_str(&String::from_utf8_lossy(&captures(c, false)));
            caps.push(' ');
        }
    }
    format!(
        "{ip}:{port} [{}] {} {} {}/{}/{}/{}/{} {} {} - - {}{}{}{} {} {caps}\"{}\"",
        log_date(l.request_date),
        w.proxies[s.fe.idx()].name,
        be_srv(w, s),
        opt_ms(tr),
        opt_ms(tw),
        opt_ms(tc),
        opt_ms(trs),
        opt_ms(ta),
        status,
        bytes_out(s),
        s.err.log_char(),
        s.finst.log_char(),
        s.txn.ck.log_chars()[0],
        s.txn.ck.log_chars()[1],
        counters(w, s),
        s.txn.log_request_line()
    )
}

/// log.c:sess_log() in 1.5-dev8 (`s->do_log`): emit the session's (or transaction's) log
/// line to the frontend's log targets, once.
pub fn sess_log(w: &mut Haproxy, s: &mut Session) {
    if s.logs.logged {
        return;
    }
    s.logs.logged = true;
    let fe = &w.proxies[s.fe.idx()];
    let line = if fe.logs.is_empty()
        || (fe.options.contains(crate::haproxy::proxy::ProxyOptions::PR_O_NULLNOLOG) && s.req.total == 0)
    {
        None
    } else if fe.log_format_str.is_some() {
        let fe_id = s.fe;
        Some(crate::haproxy::sample::with_smp_ctx(w, s, crate::haproxy::sample::SmpDir::Res, |ctx| {
            let w = ctx.strm.map(|(w, _)| w);
            match w.and_then(|w| w.proxies[fe_id.idx()].log_format_str.as_ref()) {
                Some(f) => String::from_utf8_lossy(&build_logline(f, ctx, true)).into_owned(),
                None => String::new(),
            }
        }))
    } else {
        match fe.log_format {
            LogFormat::None => None,
            LogFormat::Tcp => Some(build_tcplog(w, s)),
            LogFormat::Http | LogFormat::Clf if fe.mode == ProxyMode::PR_MODE_HTTP => {
                Some(build_httplog(w, s))
            }
            LogFormat::Http | LogFormat::Clf => Some(build_tcplog(w, s)),
        }
    };
    // Divergence: HAProxy tells nobody; haflow's observers (the terminal UI) learn of every
    // transaction here, logged or not, while its server and counters are still set.
    w.on_txn_ended(s, line.as_deref());
    // `set-log-level`: another level for this line, or none (`silent`).
    let level = s.logs.level.unwrap_or(LOG_INFO);
    if let Some(line) = line.filter(|_| level < 8) {
        let targets = w.proxies[s.fe.idx()].logs.clone();
        send_log(w, &targets, level, &line);
    }
}

/// Frames `msg` for one target (without the trailing newline).
pub fn frame(logger: &Logger, t: &LogTarget, level: u8, msg: &str, now: SystemTime) -> String {
    let pri = u16::from(t.facility) * 8 + u16::from(level);
    let lt = local_time(now);
    let stamp = || format!("{} {:2} {:02}:{:02}:{:02}", MONTHS[lt.mon], lt.mday, lt.hour, lt.min, lt.sec);
    let host = logger.hostname.as_deref();
    let mut out = match t.format {
        SyslogFormat::Rfc3164 => match host {
            Some(h) => format!("<{pri}>{} {h} {}[{}]: {msg}", stamp(), logger.tag, logger.pid),
            None => format!("<{pri}>{} {}[{}]: {msg}", stamp(), logger.tag, logger.pid),
        },
        SyslogFormat::Rfc5424 => {
            format!(
                "<{pri}>1 {} {} {} {} - - {msg}",
                lt.iso8601(),
                host.unwrap_or("-"),
                logger.tag,
                logger.pid
            )
        }
        SyslogFormat::Short => format!("<{level}>{msg}"),
        SyslogFormat::Raw => msg.to_string(),
        SyslogFormat::Priority => format!("<{pri}>{msg}"),
        SyslogFormat::Iso => format!("{} {msg}", lt.iso8601()),
        SyslogFormat::Timed => format!("<{pri}>{} {msg}", stamp()),
        SyslogFormat::Local => format!("{} {}[{}]: {msg}", stamp(), logger.tag, logger.pid),
    };
    if out.len() > t.maxlen {
        let mut cut = t.maxlen;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// log.c:send_log() in 1.5-dev8: send `msg` at `level` to each target whose level allows it.
pub fn send_log(w: &mut Haproxy, targets: &[LogTarget], level: u8, msg: &str) {
    let now = w.clock.date;
    w.logger.recent.push_back(msg.to_string());
    if w.logger.recent.len() > 256 {
        w.logger.recent.pop_front();
    }
    w.observe_log(msg);
    for t in targets {
        if level > t.level {
            continue;
        }
        let mut line = frame(&w.logger, t, level, msg, now);
        line.push('\n');
        match &t.dest {
            LogDest::Stdout if !w.logger.mute_std => w.logger.write_std(StdStream::Out, line),
            LogDest::Stderr if !w.logger.mute_std => w.logger.write_std(StdStream::Err, line),
            LogDest::Stdout | LogDest::Stderr => {}
            LogDest::Udp(addr) => w.logger.send_udp(addr, line.as_bytes()),
            LogDest::Unix(path) => w.logger.send_unix(path, line.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(format: SyslogFormat, maxlen: usize) -> LogTarget {
        LogTarget { dest: LogDest::Stdout, format, facility: 16, level: 7, maxlen }
    }

    #[test]
    fn syslog_framing_matches_haproxy() {
        let lg = Logger { pid: 6766, ..Logger::default() };
        let now = SystemTime::now();
        let f = frame(&lg, &target(SyslogFormat::Rfc3164, 1024), LOG_INFO, "hello", now);
        assert!(f.starts_with("<134>") && f.ends_with(" haproxy[6766]: hello"), "{f}");
        let f = frame(&lg, &target(SyslogFormat::Rfc5424, 1024), LOG_INFO, "hello", now);
        assert!(f.starts_with("<134>1 ") && f.ends_with(" - haproxy 6766 - - hello"), "{f}");
        assert_eq!(frame(&lg, &target(SyslogFormat::Short, 1024), LOG_INFO, "hello", now), "<6>hello");
        assert_eq!(frame(&lg, &target(SyslogFormat::Raw, 3), LOG_INFO, "hello", now), "hel");
    }

    #[test]
    fn unix_syslog_keeps_one_socket_and_reconnects_when_the_daemon_restarts() {
        let dir = std::env::temp_dir().join(format!("haflow-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let mut daemon = UnixDatagram::bind(&path).unwrap();
        let mut lg = Logger::default();
        let mut buf = [0u8; 64];
        for line in ["one", "two", "three"] {
            lg.send_unix(&path, line.as_bytes());
            let n = daemon.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], line.as_bytes());
        }
        assert_eq!(lg.unix.len(), 1, "one socket for every line");
        // The daemon restarts: a new socket at the same path.
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        daemon = UnixDatagram::bind(&path).unwrap();
        lg.send_unix(&path, b"after");
        let n = daemon.recv(&mut buf).unwrap();
        assert_eq!((&buf[..n], lg.dropped, lg.unix.len()), (&b"after"[..], 0, 1));
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        lg.send_unix(&path, b"nobody listens");
        assert_eq!(lg.dropped, 1, "a line that cannot go out is counted");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stalled_standard_stream_drops_and_counts_lines_instead_of_blocking() {
        use std::sync::mpsc::channel;
        let (entered_tx, entered) = channel();
        let (release, release_rx) = channel::<()>();
        let (written_tx, written) = channel();
        let mut first = true;
        let sink: StdSink = Box::new(move |_, line: &str| {
            if first {
                // The stream stalls on its first line, until released.
                first = false;
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            }
            written_tx.send(line.to_string()).unwrap();
        });
        let cap = 8;
        let mut lg = Logger { std: Some(StdWriter::start(cap, sink).unwrap()), ..Logger::default() };
        lg.write_std(StdStream::Out, "stalls\n".into());
        entered.recv().unwrap();
        for i in 0..cap + 5 {
            lg.write_std(StdStream::Out, format!("{i}\n"));
        }
        assert_eq!(lg.dropped, 5, "the queue holds {cap} lines; the rest are counted");
        release.send(()).unwrap();
        drop(lg);
        assert_eq!(written.try_iter().count(), cap + 1, "queued lines are written, even at the end");
    }

    #[test]
    fn date_has_milliseconds() {
        let d = log_date(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_500));
        assert!(d.ends_with(".500"), "{d}");
        assert_eq!(d.len(), "01/Jan/1970:00:00:01.500".len());
    }
}

// ---------------------------------------------------------------------------------------
// Log formats

/// A `%` variable of a log format (`enum logformat_type`, `LOG_FMT_*`): the subset
/// haflow computes. Their meaning is the "Custom log format" table of HAProxy 2.6's
/// configuration manual (section 8.2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFmtVar {
    /// `%ci`: client address.
    ClientIp,
    /// `%cp`: client port.
    ClientPort,
    /// `%fi`: frontend (listener) address.
    FrontendIp,
    /// `%fp`: frontend port.
    FrontendPort,
    /// `%f`: frontend name.
    Frontend,
    /// `%ft`: frontend name (with `~` for SSL, never here).
    FrontendTransport,
    /// `%b`: backend name.
    Backend,
    /// `%s`: server name (`<NOSRV>`, `<CACHE>` for the cache applet).
    Server,
    /// `%si`: server address.
    ServerIp,
    /// `%sp`: server port.
    ServerPort,
    /// `%ST`: status code.
    Status,
    /// `%r`: request line.
    RequestLine,
    /// `%HM`: request method.
    HttpMethod,
    /// `%HU`: request URI.
    HttpUri,
    /// `%HP`: request path.
    HttpPath,
    /// `%HQ`: request query string, with its `?`.
    HttpQuery,
    /// `%HV`: request version.
    HttpVersion,
    /// `%hr`: captured request headers, `{a|b}`.
    CapturedReq,
    /// `%hs`: captured response headers.
    CapturedRes,
    /// `%hrl`: captured request headers, as a list.
    CapturedReqList,
    /// `%hsl`: captured response headers, as a list.
    CapturedResList,
    /// `%B`: bytes sent to the client.
    BytesOut,
    /// `%U`: bytes received from the client.
    BytesIn,
    /// `%t`: accept date.
    Date,
    /// `%tr`: request date.
    RequestDate,
    /// `%Ta`: active time of the request.
    Ta,
    /// `%Tt`: total session time.
    Tt,
    /// `%TR`: time to receive the request head.
    TR,
    /// `%Tw`: time in queues.
    Tw,
    /// `%Tc`: time to connect.
    Tc,
    /// `%Tr`: server response time.
    Tr,
    /// `%ts`: termination state (two characters).
    TermState,
    /// `%tsc`: termination state with cookie flags (four characters).
    TermStateCookie,
    /// `%ac/%fc/%bc/%sc/%rc`: the counters group of the predefined formats.
    Counters,
    /// `%pid`.
    Pid,
    /// `%ID`: the unique id (`unique-id-format`).
    UniqueId,
    /// `%H`: host name.
    Hostname,
}

/// One node of a log format (`struct logformat_node`).
#[derive(Clone, Debug)]
pub enum LogFmtNode {
    /// Literal text.
    Text(Vec<u8>),
    /// Spaces between words (`LOG_FMT_SEPARATOR`): one space is written, and only after
    /// something was.
    Separator,
    /// A `%` variable, quoted when `%{+Q}` asked for it.
    Var(LogFmtVar, bool),
    /// `%[expr]`: a sample expression, quoted when `%{+Q}`.
    Expr(crate::haproxy::sample::SampleExpr, bool),
}

/// A parsed log format (`struct list logformat`): what `log-format`, `http-request
/// set-header`, `return ... lf-string`, `set-var-fmt` and the others that take a
/// "log-format string" evaluate. Build it with `parse_logformat_string`, evaluate it
/// with `build_logline`.
#[derive(Clone, Debug, Default)]
pub struct LogFmt {
    /// The nodes, in order.
    pub nodes: Vec<LogFmtNode>,
    /// The text as written.
    pub text: String,
}

impl LogFmt {
    /// True when the format has no variable part (a plain string).
    pub fn is_const(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, LogFmtNode::Text(_)))
    }
}

fn log_fmt_var(name: &str) -> Option<LogFmtVar> {
    use LogFmtVar::*;
    Some(match name {
        "ci" => ClientIp,
        "cp" => ClientPort,
        "fi" => FrontendIp,
        "fp" => FrontendPort,
        "f" => Frontend,
        "ft" => FrontendTransport,
        "b" => Backend,
        "s" => Server,
        "si" => ServerIp,
        "sp" => ServerPort,
        "ST" => Status,
        "r" => RequestLine,
        "HM" => HttpMethod,
        "HU" => HttpUri,
        "HP" => HttpPath,
        "HQ" => HttpQuery,
        "HV" => HttpVersion,
        "hr" => CapturedReq,
        "hs" => CapturedRes,
        "hrl" => CapturedReqList,
        "hsl" => CapturedResList,
        "B" => BytesOut,
        "U" => BytesIn,
        "t" => Date,
        "tr" => RequestDate,
        "Ta" => Ta,
        "Tt" => Tt,
        "TR" => TR,
        "Tw" => Tw,
        "Tc" => Tc,
        "Tr" => Tr,
        "ts" => TermState,
        "tsc" => TermStateCookie,
        "pid" => Pid,
        "ID" => UniqueId,
        "H" => Hostname,
        _ => return None,
    })
}

/// log.c:parse_logformat_string() in 2.6: splits `text` into literal text, `%var`,
/// `%{+Q}var` and `%[sample expression]` nodes; `%%` is a literal `%`. Unknown
/// variables and bad expressions are errors, as in HAProxy.
pub fn parse_logformat_string(text: &str) -> Result<LogFmt, String> {
    let mut nodes = Vec::new();
    let mut lit = Vec::new();
    // `%{...}o` sets the options of every variable after it.
    let mut default_quote = false;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            if !lit.is_empty() {
                nodes.push(LogFmtNode::Text(crate::haproxy::cfgparse::cfg_raw_bytes(&std::mem::take(
                    &mut lit,
                ))));
            }
            if !matches!(nodes.last(), Some(LogFmtNode::Separator)) {
                nodes.push(LogFmtNode::Separator);
            }
            i += 1;
            continue;
        }
        if b[i] != b'%' {
            lit.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        if b.get(i) == Some(&b'%') {
            lit.push(b'%');
            i += 1;
            continue;
        }
        let mut quote = default_quote;
        if b.get(i) == Some(&b'{') {
            let end = text[i..].find('}').ok_or_else(|| format!("missing '}}' in log-format '{text}'"))? + i;
            for opt in text[i + 1..end].split(',') {
                match opt {
                    "+Q" => quote = true,
                    "-Q" => quote = false,
                    "+X" | "-X" | "+E" | "-E" | "+M" | "-M" => {}
                    o => return Err(format!("unknown option '{o}' in log-format '{text}'")),
                }
            }
            i = end + 1;
        }
        if !lit.is_empty() {
            nodes.push(LogFmtNode::Text(crate::haproxy::cfgparse::cfg_raw_bytes(&std::mem::take(&mut lit))));
        }
        if b.get(i) == Some(&b'[') {
            let (expr, used) = crate::haproxy::sample::sample_parse_expr(&text[i + 1..])
                .map_err(|e| format!("failed to parse sample expression <{}> : {e}", &text[i + 1..]))?;
            if b.get(i + 1 + used) != Some(&b']') {
                return Err(format!("missing ']' after sample expression '{}'", expr.text));
            }
            nodes.push(LogFmtNode::Expr(expr, quote));
            i += used + 2;
            continue;
        }
        let n = b[i..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        let name = &text[i..i + n];
        if name == "o" {
            default_quote = quote;
            i += n;
            continue;
        }
        // The longest known name wins (`%Ta` before `%T`...), as HAProxy reads a whole word.
        let var = log_fmt_var(name).ok_or_else(|| {
            if name.is_empty() {
                format!("no variable name after '%' in log-format '{text}'")
            } else {
                format!("no such format variable '{name}'. If you wanted to emit the '%' character verbatim, you need to use '%%'")
            }
        })?;
        nodes.push(LogFmtNode::Var(var, quote));
        i += n;
    }
    if !lit.is_empty() {
        nodes.push(LogFmtNode::Text(crate::haproxy::cfgparse::cfg_raw_bytes(&lit)));
    }
    Ok(LogFmt { nodes, text: text.to_string() })
}

/// The captured headers of a transaction as `%hr` prints them: `{a|b}`.
fn captures(caps: &[Option<Vec<u8>>], list: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if caps.is_empty() {
        return out;
    }
    if !list {
        out.push(b'{');
    }
    for (i, c) in caps.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(if list { b" " } else { b"|" });
        }
        if let Some(v) = c {
            out.extend_from_slice(v);
        }
    }
    if !list {
        out.push(b'}');
    }
    out
}

fn log_var(w: &Haproxy, s: &Session, v: LogFmtVar) -> Option<Vec<u8>> {
    use LogFmtVar::*;
    let l = &s.logs;
    let line = s.txn.req_line.as_deref();
    let word = |n: usize| line.and_then(|r| r.split(' ').nth(n)).map(|x| x.as_bytes().to_vec());
    let ms = |x: Option<u64>| opt_ms(x).into_bytes();
    Some(match v {
        ClientIp => client(s).0.into_bytes(),
        ClientPort => client(s).1.into_bytes(),
        FrontendIp | FrontendPort => {
            let a = s.frt_addr.or_else(|| s.si[0].fd.and_then(|fd| w.fdtab.local_addr(fd)))?;
            if v == FrontendIp { a.ip().to_string().into_bytes() } else { a.port().to_string().into_bytes() }
        }
        Frontend | FrontendTransport => w.proxies[s.fe.idx()].name.clone().into_bytes(),
        Backend => w.proxies[s.be.idx()].name.clone().into_bytes(),
        Server => srv_name(w, s).as_bytes().to_vec(),
        ServerIp | ServerPort => {
            let a = w.server(s.srv?).addr;
            if v == ServerIp { a.ip().to_string().into_bytes() } else { a.port().to_string().into_bytes() }
        }
        Status => s.txn.status.map_or_else(|| b"-1".to_vec(), |st| st.to_string().into_bytes()),
        RequestLine => s.txn.log_request_line().as_bytes().to_vec(),
        HttpMethod => word(0)?,
        HttpUri => word(1)?,
        HttpPath => {
            let u = word(1)?;
            crate::haproxy::sample::uri_path(&u, false).to_vec()
        }
        HttpQuery => {
            let u = word(1)?;
            u.iter().position(|&c| c == b'?').map_or_else(Vec::new, |q| u[q..].to_vec())
        }
        HttpVersion => word(2)?,
        CapturedReq => captures(&s.txn.req_cap, false),
        CapturedRes => captures(&s.txn.rsp_cap, false),
        CapturedReqList => captures(&s.txn.req_cap, true),
        CapturedResList => captures(&s.txn.rsp_cap, true),
        BytesOut => bytes_out(s).to_string().into_bytes(),
        BytesIn => l.bytes_in.to_string().into_bytes(),
        Date => log_date(l.accept_date).into_bytes(),
        RequestDate => log_date(l.request_date).into_bytes(),
        Ta => ms(l.t_close.map(|c| c.saturating_sub(l.t_idle.unwrap_or(0)))),
        Tt => ms(l.t_close),
        TR => ms(l.t_request),
        Tw => ms(l.t_queue.zip(l.t_request).map(|(q, r)| q.saturating_sub(r))),
        Tc => ms(l.t_connect.zip(l.t_queue).map(|(c, q)| c.saturating_sub(q))),
        Tr => ms(l.t_data.zip(l.t_connect).map(|(d, c)| d.saturating_sub(c))),
        TermState => format!("{}{}", s.err.log_char(), s.finst.log_char()).into_bytes(),
        TermStateCookie => {
            let [c, sc] = s.txn.ck.log_chars();
            format!("{}{}{c}{sc}", s.err.log_char(), s.finst.log_char()).into_bytes()
        }
        Counters => counters(w, s).into_bytes(),
        Pid => std::process::id().to_string().into_bytes(),
        UniqueId => s.unique_id.as_deref()?.to_vec(),
        Hostname => w.logger.hostname.clone().unwrap_or_default().into_bytes(),
    })
}

/// log.c:build_logline() in 2.6: evaluates a log format. `mandatory` is HAProxy's
/// `LOG_OPT_MANDATORY` (log lines): an empty or missing value prints `-`; header values
/// and other strings leave it empty.
pub fn build_logline(lf: &LogFmt, ctx: &mut crate::haproxy::sample::SmpCtx, mandatory: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last_isspace = true;
    for n in &lf.nodes {
        let (val, quote) = match n {
            LogFmtNode::Separator => {
                if !last_isspace {
                    out.push(b' ');
                    last_isspace = true;
                }
                continue;
            }
            LogFmtNode::Text(t) => {
                out.extend_from_slice(t);
                last_isspace = false;
                continue;
            }
            LogFmtNode::Var(
                v @ (LogFmtVar::CapturedReq
                | LogFmtVar::CapturedRes
                | LogFmtVar::CapturedReqList
                | LogFmtVar::CapturedResList),
                _,
            ) if ctx.strm.is_none_or(|(_, s)| {
                let c = if matches!(v, LogFmtVar::CapturedReq | LogFmtVar::CapturedReqList) {
                    &s.txn.req_cap
                } else {
                    &s.txn.rsp_cap
                };
                c.is_empty()
            }) =>
            {
                // No capture: nothing, not even the separator after it.
                continue;
            }
            LogFmtNode::Var(v, q) => (ctx.strm.and_then(|(w, s)| log_var(w, s, *v)), *q),
            LogFmtNode::Expr(e, q) => (
                crate::haproxy::sample::sample_fetch_as_type(
                    e,
                    ctx,
                    crate::haproxy::sample::SmpType::SMP_T_STR,
                )
                .and_then(|d| d.into_str()),
                *q,
            ),
        };
        if quote {
            out.push(b'"');
        }
        match val {
            Some(v) if !v.is_empty() => out.extend_from_slice(&v),
            _ if mandatory && !quote => out.push(b'-'),
            _ => {}
        }
        if quote {
            out.push(b'"');
        }
        last_isspace = false;
    }
    out
}
