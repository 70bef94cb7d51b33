//! Health checks: one task per checked server that connects to it every `inter`, and the
//! rise/fall state machine that marks the server UP or DOWN.
//!
//! Reproduces `checks.c` (1.5-dev8), with HAProxy 2.6's messages. `start_checks` creates a
//! task per `server ... check` line, its first run spread over `inter` so that checks do
//! not all leave at once. Each time the task's timer fires, `process_chk` opens a
//! non-blocking connection to the server and registers it in `fdtab[]` with two callbacks
//! of its own: `event_srv_chk_w` sees the connection complete (a layer-4 check passes
//! right there) and, with `option httpchk`, sends `METH URI HTTP/1.0`; `event_srv_chk_r`
//! reads the status line. The callbacks only record a result (`set_server_check_status`)
//! and wake the task; `process_chk` then closes the connection, moves the server's
//! `health` (0..rise+fall-1; UP when `health >= rise`) and calls `set_server_up` or
//! `set_server_down` when the server crosses the line. Those log the transition, update
//! the counts the load balancer sees (a DOWN server is not `is_usable`) and move queued
//! sessions: a server going DOWN hands its queue back to load balancing (with `option
//! redispatch`), a server coming UP takes sessions waiting in its backend's queue.

use std::io;

use crate::haproxy::errors::print_message;
use crate::haproxy::fd::{FdEv, FdOwner, FdPoll, FdState, Sock};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::log::{LOG_ALERT, LOG_EMERG, LOG_NOTICE, send_log};
use crate::haproxy::proto_tcp::os_reason;
use crate::haproxy::proxy::{ProxyOptions, ProxyState};
use crate::haproxy::queue::process_srv_queue;
use crate::haproxy::server::{CheckState, SrvFlags, srv_fullname};
use crate::haproxy::session::SessFlags;
use crate::haproxy::task::{TaskContext, TaskRun, TaskState};
use crate::haproxy::time::{Tick, tick_add, tick_first, tick_is_expired};
use crate::ids::{Fd, ProxyId, ServerId, TaskId};
use crate::trace::names;

/// `SRV_CHK_INTER_THRES`: servers checked less often than this (ms) set the spreading
/// interval of the first checks; faster ones start on their own `inter`.
const SRV_CHK_INTER_THRES: u64 = 1000;

/// `tune.chksize`: most bytes of a check's answer kept (the status line is all we need).
pub const CHK_DATA_SIZE: usize = 16384;

/// `HCHK_DESC_LEN`: longest `info` kept, terminator included.
const HCHK_DESC_LEN: usize = 128;

/// `s->result` (`SRV_CHK_*`): what the check in progress found so far.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// Nothing yet: the check is running.
    SRV_CHK_UNKNOWN,
    /// The server answered as expected.
    SRV_CHK_RUNNING,
    /// The check failed (connection, timeout, wrong answer).
    SRV_CHK_ERROR,
}

/// `check_status` (`HCHK_STATUS_*`): the outcome of a check, as HAProxy names and
/// describes it (`check_statuses[]`). Only the ones haflow's checks can produce.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HchkStatus {
    /// `UNK`: unknown.
    HCHK_STATUS_UNKNOWN,
    /// `INI`: no check has finished yet.
    HCHK_STATUS_INI,
    /// A check starts (special: resets the result, never stored).
    HCHK_STATUS_START,
    /// `SOCKERR`: the socket could not be created or failed outside the connection.
    HCHK_STATUS_SOCKERR,
    /// `L4OK`: the TCP connection was established (enough for a plain check).
    HCHK_STATUS_L4OK,
    /// `L4TOUT`: the TCP connection did not complete in time.
    HCHK_STATUS_L4TOUT,
    /// `L4CON`: the TCP connection failed (refused, unreachable...).
    HCHK_STATUS_L4CON,
    /// `L7TOUT`: connected and sent the request, but no answer in time.
    HCHK_STATUS_L7TOUT,
    /// `L7RSP`: the answer is not an HTTP status line.
    HCHK_STATUS_L7RSP,
    /// `L7OK`: the HTTP status is the one expected (2xx/3xx by default).
    HCHK_STATUS_L7OKD,
    /// `L7STS`: the HTTP status is not the one expected.
    HCHK_STATUS_L7STS,
}

impl HchkStatus {
    /// `check_statuses[].info`: the short name `show stat` prints.
    pub fn info(self) -> &'static str {
        match self {
            HchkStatus::HCHK_STATUS_UNKNOWN => "UNK",
            HchkStatus::HCHK_STATUS_INI => "INI",
            HchkStatus::HCHK_STATUS_START => "",
            HchkStatus::HCHK_STATUS_SOCKERR => "SOCKERR",
            HchkStatus::HCHK_STATUS_L4OK => "L4OK",
            HchkStatus::HCHK_STATUS_L4TOUT => "L4TOUT",
            HchkStatus::HCHK_STATUS_L4CON => "L4CON",
            HchkStatus::HCHK_STATUS_L7TOUT => "L7TOUT",
            HchkStatus::HCHK_STATUS_L7RSP => "L7RSP",
            HchkStatus::HCHK_STATUS_L7OKD => "L7OK",
            HchkStatus::HCHK_STATUS_L7STS => "L7STS",
        }
    }

    /// `check_statuses[].desc` (`get_check_status_description`): the "reason" in logs.
    pub fn desc(self) -> &'static str {
        match self {
            HchkStatus::HCHK_STATUS_UNKNOWN | HchkStatus::HCHK_STATUS_START => "Unknown",
            HchkStatus::HCHK_STATUS_INI => "Initializing",
            HchkStatus::HCHK_STATUS_SOCKERR => "Socket error",
            HchkStatus::HCHK_STATUS_L4OK => "Layer4 check passed",
            HchkStatus::HCHK_STATUS_L4TOUT => "Layer4 timeout",
            HchkStatus::HCHK_STATUS_L4CON => "Layer4 connection problem",
            HchkStatus::HCHK_STATUS_L7TOUT => "Layer7 timeout",
            HchkStatus::HCHK_STATUS_L7RSP => "Layer7 invalid response",
            HchkStatus::HCHK_STATUS_L7OKD => "Layer7 check passed",
            HchkStatus::HCHK_STATUS_L7STS => "Layer7 wrong status",
        }
    }

    /// `check_statuses[].result`: what the status means for the check in progress.
    pub fn result(self) -> Option<CheckResult> {
        match self {
            HchkStatus::HCHK_STATUS_UNKNOWN | HchkStatus::HCHK_STATUS_INI | HchkStatus::HCHK_STATUS_START => {
                None
            }
            HchkStatus::HCHK_STATUS_L4OK | HchkStatus::HCHK_STATUS_L7OKD => {
                Some(CheckResult::SRV_CHK_RUNNING)
            }
            _ => Some(CheckResult::SRV_CHK_ERROR),
        }
    }

    /// True for the statuses after `HCHK_STATUS_L57DATA`, which carry an HTTP code.
    pub fn has_code(self) -> bool {
        matches!(self, HchkStatus::HCHK_STATUS_L7OKD | HchkStatus::HCHK_STATUS_L7STS)
    }
}

impl std::fmt::Display for HchkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.info())
    }
}

/// What one check result does to the server's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthChange {
    /// The server stays on its side of the line (its health may still move).
    Same,
    /// The server crosses `rise` upwards: `set_server_up`.
    Up,
    /// The server was UP at the edge (`health == rise`) and failed: `set_server_down`.
    Down,
}

/// The rise/fall arithmetic of `process_chk`, `set_server_up` and `set_server_down`
/// (1.5-dev8; HAProxy 2.6 computes the same numbers in `set_server_check_status`).
///
/// `health` counts from 0 (DOWN, no success yet) to `rise + fall - 1` (UP, no failure
/// yet); the server is UP when `health >= rise`. A success adds one; reaching `rise` marks
/// the server UP and jumps to the top, so it then takes `fall` failures to go down. A
/// failure above `rise` takes one off; a failure at `rise` or below drops to 0, marking
/// the server DOWN if it was UP (`health == rise`), so it then takes `rise` successes to
/// come back. A server starts at `health = rise`: UP, and DOWN at its first failure.
pub fn health_after(health: u32, rise: u32, fall: u32, passed: bool) -> (u32, HealthChange) {
    let top = rise + fall - 1;
    if passed {
        if health >= top {
            return (top, HealthChange::Same);
        }
        let h = health + 1;
        let change = if h == rise { HealthChange::Up } else { HealthChange::Same };
        (if h >= rise { top } else { h }, change)
    } else if health > rise {
        (health - 1, HealthChange::Same)
    } else {
        (0, if health == rise { HealthChange::Down } else { HealthChange::Same })
    }
}

/// The `status: X/Y UP|DOWN` part of a `Health check for server` line (HAProxy 2.6): how
/// far an UP server is from going down, or a DOWN server from coming up.
pub fn health_status(health: u32, rise: u32, fall: u32, weight: u32) -> String {
    if health >= rise {
        format!("{}/{} {}", health - rise + 1, fall, if weight > 0 { "UP" } else { "DRAIN" })
    } else {
        format!("{health}/{rise} DOWN")
    }
}

/// buffers.c:chunk_asciiencode() in 1.5-dev8, with `qc = '"'`: non-printable characters,
/// `<`, `>` and the quote become `<XX>`, so an `info` cannot break the log line.
pub fn chunk_asciiencode(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for b in src.bytes() {
        if !(0x20..0x7f).contains(&b) || b == b'<' || b == b'>' || b == b'"' {
            out.push_str(&format!("<{b:02X}>"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// The check part of `server_status_printf` (`SSP_O_HCHK`): `, reason: ..., code: N,
/// info: "...", check duration: Nms`.
pub fn check_reason(status: HchkStatus, code: Option<u16>, info: &str, duration: u64) -> String {
    let mut msg = format!(", reason: {}", status.desc());
    if status.has_code() {
        msg.push_str(&format!(", code: {}", code.unwrap_or(0)));
    }
    if !info.is_empty() {
        msg.push_str(&format!(", info: \"{}\"", chunk_asciiencode(info)));
    }
    msg.push_str(&format!(", check duration: {duration}ms"));
    msg
}

/// The counts part of `server_status_printf`: what is left after a server went down, or
/// what is online after it came up, and what happened to the queued sessions.
pub fn server_counts(
    down: bool,
    srv_act: usize,
    srv_bck: usize,
    cur_sess: u32,
    xferred: usize,
    nbpend: usize,
) -> String {
    let on_backup = if srv_bck > 0 && srv_act == 0 { " Running on backup." } else { "" };
    if down {
        format!(
            ". {srv_act} active and {srv_bck} backup servers left.{on_backup} {cur_sess} sessions active, {xferred} requeued, {nbpend} remaining in queue"
        )
    } else {
        format!(
            ". {srv_act} active and {srv_bck} backup servers online.{on_backup} {xferred} sessions requeued, {nbpend} total in queue"
        )
    }
}

/// What `event_srv_chk_r` concludes from an HTTP check's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpChkVerdict {
    /// No complete status line yet: wait for more data.
    NeedMore,
    /// A status and, when known, the code and the reason phrase (the `info` of a failure).
    Done(HchkStatus, Option<u16>, String),
}

/// The HTTP part of checks.c:event_srv_chk_r() (and `httpchk_expect` for `http-check
/// expect status`): read `HTTP/1.x NNN reason` from the start of the answer. `done` says
/// no more data will come (the server closed, or the buffer is full). Like HAProxy 2.6, a
/// pass carries no `info` and a wrong status carries the reason phrase.
pub fn httpchk_parse_status(data: &[u8], done: bool, expect: Option<u16>) -> HttpChkVerdict {
    let eol = data.iter().position(|&b| b == b'\n');
    if eol.is_none() && !done && data.len() < CHK_DATA_SIZE {
        return HttpChkVerdict::NeedMore;
    }
    let mut line = &data[..eol.unwrap_or(data.len())];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    // "HTTP/1.x NNN" then a space (or nothing), as checks.c tests it.
    let valid = line.len() >= 12
        && line.starts_with(b"HTTP/1.")
        && line[8] == b' '
        && line[9..12].iter().all(u8::is_ascii_digit)
        && (line.len() == 12 || line[12] == b' ');
    if !valid {
        return HttpChkVerdict::Done(HchkStatus::HCHK_STATUS_L7RSP, None, String::new());
    }
    let code = line[9..12].iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let reason =
        String::from_utf8_lossy(line.get(12..).unwrap_or_default()).trim_start_matches(' ').to_string();
    let passed = match expect {
        Some(want) => code == want,
        None => matches!(line[9], b'2' | b'3'),
    };
    if passed {
        HttpChkVerdict::Done(HchkStatus::HCHK_STATUS_L7OKD, Some(code), String::new())
    } else {
        HttpChkVerdict::Done(HchkStatus::HCHK_STATUS_L7STS, Some(code), reason)
    }
}

/// The check state of a server, if it is checked.
fn chk(w: &mut Haproxy, sid: ServerId) -> Option<&mut CheckState> {
    w.proxies.get_mut(sid.px.idx())?.servers.get_mut(sid.idx as usize)?.check.as_mut()
}

/// Seconds since start, for `last_change`.
fn now_sec(w: &Haproxy) -> u64 {
    w.clock.now_ms.0 / 1000
}

/// Writes `[TAG]    (pid) : msg` on stderr like HAProxy 2.6's `ha_warning`/`ha_alert`,
/// unless quiet (`-q`) or a UI or a test owns the terminal.
fn print_diag(w: &Haproxy, tag: &str, msg: &str) {
    if w.global.quiet || w.logger.mute_std {
        return;
    }
    print_message(tag, msg);
}

/// checks.c:server_status_printf() in 1.5-dev8 (`srv_append_status` in 2.6): the reason of
/// the last check when `with_check`, then, when `xferred` is given, the server counts.
fn server_status_printf(w: &Haproxy, sid: ServerId, with_check: bool, xferred: Option<usize>) -> String {
    let srv = w.server(sid);
    let mut msg = String::new();
    if with_check && let Some(c) = &srv.check {
        msg.push_str(&check_reason(c.status, c.code, &c.info, c.duration));
    }
    if let Some(x) = xferred {
        let px = &w.proxies[sid.px.idx()];
        let down = !srv.flags.contains(SrvFlags::SRV_RUNNING);
        msg.push_str(&server_counts(down, px.srv_act(), px.srv_bck(), srv.cur_sess, x, srv.pendconns.len()));
    }
    msg
}

/// checks.c:set_server_check_status() in 1.5-dev8: record the outcome of the check in
/// progress (`check_status`, `info`, `duration`, `result`). `HCHK_STATUS_START` begins a
/// check instead. With `option log-health-checks`, a result that moves the health (or
/// changes the status, as HAProxy 2.6 adds) is logged with the state it leads to.
pub fn set_server_check_status(w: &mut Haproxy, sid: ServerId, status: HchkStatus, desc: Option<&str>) {
    let now = w.clock.now_ms;
    let Some(c) = chk(w, sid) else { return };
    if status == HchkStatus::HCHK_STATUS_START {
        c.result = CheckResult::SRV_CHK_UNKNOWN;
        c.info.clear();
        c.start = Some(now);
        c.data.clear();
        c.sent = 0;
        return;
    }
    let prev_status = c.status;
    c.info.clear();
    if let Some(d) = desc {
        // strncpy(check_desc, desc, HCHK_DESC_LEN-1), on a character boundary.
        let mut end = d.len().min(HCHK_DESC_LEN - 1);
        while !d.is_char_boundary(end) {
            end -= 1;
        }
        c.info.push_str(&d[..end]);
    }
    c.status = status;
    if let Some(r) = status.result() {
        c.result = r;
    }
    // set_server_check_status() may be called more than once: only the first call of a
    // check measures it (and reports it).
    let Some(start) = c.start.take() else { return };
    c.duration = now.0.saturating_sub(start.0);
    let (health, rise, fall) = (c.health, c.rise, c.fall);
    let passed = c.result == CheckResult::SRV_CHK_RUNNING;
    let px = &w.proxies[sid.px.idx()];
    if !px.options.contains(ProxyOptions::PR_O2_LOGHCHKS) {
        return;
    }
    let (next, _) = health_after(health, rise, fall, passed);
    if next == health && status == prev_status {
        return;
    }
    let srv = w.server(sid);
    let msg = format!(
        "Health check for {}server {} {}{}, status: {}",
        if srv.is_backup() { "backup " } else { "" },
        srv_fullname(w, sid),
        if passed { "succeeded" } else { "failed" },
        server_status_printf(w, sid, true, None),
        health_status(next, rise, fall, srv.uweight)
    );
    let msg = format!("{msg}.");
    print_diag(w, "WARNING", &msg);
    let targets = w.proxies[sid.px.idx()].logs.clone();
    send_log(w, &targets, LOG_NOTICE, &msg);
}

/// checks.c:set_backend_down() in 1.5-dev8: the backend lost its last server. HAProxy 2.6
/// prints the name quoted on stderr and bare in the log, which goes out at `LOG_EMERG`.
pub fn set_backend_down(w: &mut Haproxy, px: ProxyId) {
    let now = now_sec(w);
    let p = &mut w.proxies[px.idx()];
    p.last_change = now;
    p.counters.down_trans += 1;
    let (kind, name) = (p.section_name(), p.name.clone());
    print_diag(w, "ALERT", &format!("{kind} '{name}' has no server available!"));
    let targets = w.proxies[px.idx()].logs.clone();
    send_log(w, &targets, LOG_EMERG, &format!("{kind} {name} has no server available!"));
}

/// checks.c:redistribute_pending() in 1.5-dev8: a server went down; with `option
/// redispatch`, the sessions waiting in its queue forget it and go back to load balancing
/// (woken with `TASK_WOKEN_RES`, they leave `SI_ST_QUE` for `SI_ST_REQ`). Without it they
/// stay queued, for the server to come back or their queue timeout. Returns how many moved.
pub fn redistribute_pending(w: &mut Haproxy, sid: ServerId) -> usize {
    if !w.proxies[sid.px.idx()].options.contains(ProxyOptions::PR_O_REDISP) {
        return 0;
    }
    let queued: Vec<_> = w.server_mut(sid).pendconns.drain(..).collect();
    let mut xferred = 0;
    for id in queued {
        let Some(mut s) = w.sessions.take(id.idx()) else {
            // Being processed right now (cannot happen from a check task): leave it queued.
            w.server_mut(sid).pendconns.push_back(id);
            continue;
        };
        s.pend_pos = false;
        s.flags.remove(SessFlags::SN_DIRECT | SessFlags::SN_ASSIGNED | SessFlags::SN_ADDR_SET);
        s.srv = None;
        w.sched.task_wakeup(s.task, TaskState::TASK_WOKEN_RES);
        w.sessions.put_back(id.idx(), s);
        xferred += 1;
    }
    xferred
}

/// checks.c:set_server_down() in 1.5-dev8: the server is DOWN. It leaves load balancing
/// (`SRV_RUNNING` cleared: `is_usable` is false), its queue is redistributed, the
/// transition is logged at `LOG_ALERT` (with the check's reason unless `option
/// log-health-checks` already told it), and the backend is reported down if it has no
/// server left. Sessions already on the server keep going.
pub fn set_server_down(w: &mut Haproxy, sid: ServerId) {
    let _sp = tracing::info_span!(names::SET_SERVER_DOWN, server = %srv_fullname(w, sid)).entered();
    let px = sid.px;
    let prev_srv_count = w.proxies[px.idx()].srv_act() + w.proxies[px.idx()].srv_bck();
    let now = now_sec(w);
    let srv = w.server_mut(sid);
    if !srv.flags.contains(SrvFlags::SRV_RUNNING) {
        return;
    }
    srv.last_change = now;
    srv.flags.remove(SrvFlags::SRV_RUNNING);
    let xferred = redistribute_pending(w, sid);
    let with_check = !w.proxies[px.idx()].options.contains(ProxyOptions::PR_O2_LOGHCHKS);
    let msg = format!(
        "{}Server {} is DOWN{}.",
        if w.server(sid).is_backup() { "Backup " } else { "" },
        srv_fullname(w, sid),
        server_status_printf(w, sid, with_check, Some(xferred))
    );
    print_diag(w, "WARNING", &msg);
    let targets = w.proxies[px.idx()].logs.clone();
    send_log(w, &targets, LOG_ALERT, &msg);
    let p = &w.proxies[px.idx()];
    if prev_srv_count > 0 && p.srv_act() + p.srv_bck() == 0 {
        set_backend_down(w, px);
    }
    w.server_mut(sid).counters.down_trans += 1;
}

/// checks.c:set_server_up() in 1.5-dev8: the server is UP again. It rejoins load
/// balancing, takes the sessions waiting for it or for its backend (`process_srv_queue`;
/// a backup server only when no active one is up, as 2.6's `pendconn_grab_from_px`), and
/// the transition is logged at `LOG_NOTICE`.
pub fn set_server_up(w: &mut Haproxy, sid: ServerId) {
    let _sp = tracing::info_span!(names::SET_SERVER_UP, server = %srv_fullname(w, sid)).entered();
    let px = sid.px;
    let now = now_sec(w);
    let p = &mut w.proxies[px.idx()];
    if p.srv_act() + p.srv_bck() == 0 {
        p.last_change = now;
    }
    let srv = w.server_mut(sid);
    if srv.flags.contains(SrvFlags::SRV_RUNNING) {
        return;
    }
    srv.last_change = now;
    srv.flags.insert(SrvFlags::SRV_RUNNING);
    let xferred = if w.server(sid).is_backup() && w.proxies[px.idx()].srv_act() > 0 {
        0
    } else {
        process_srv_queue(w, sid)
    };
    let with_check = !w.proxies[px.idx()].options.contains(ProxyOptions::PR_O2_LOGHCHKS);
    let msg = format!(
        "{}Server {} is UP{}.",
        if w.server(sid).is_backup() { "Backup " } else { "" },
        srv_fullname(w, sid),
        server_status_printf(w, sid, with_check, Some(xferred))
    );
    print_diag(w, "WARNING", &msg);
    let targets = w.proxies[px.idx()].logs.clone();
    send_log(w, &targets, LOG_NOTICE, &msg);
}

/// Applies the result of the check that just ended to the server's health, and crosses
/// the UP/DOWN line when it must (the tail of `process_chk`'s success and failure paths).
fn chk_apply_result(w: &mut Haproxy, sid: ServerId) {
    let Some(c) = chk(w, sid) else { return };
    let passed = c.result == CheckResult::SRV_CHK_RUNNING;
    if !passed && c.health > 0 {
        c.failed += 1;
    }
    let (health, change) = health_after(c.health, c.rise, c.fall, passed);
    c.health = health;
    match change {
        HealthChange::Up => set_server_up(w, sid),
        HealthChange::Down => set_server_down(w, sid),
        HealthChange::Same => {}
    }
}

/// The HTTP request of `option httpchk` (`check_req` plus the empty line).
fn httpchk_request(w: &Haproxy, sid: ServerId) -> Option<Vec<u8>> {
    let px = &w.proxies[sid.px.idx()];
    if !px.options.contains(ProxyOptions::PR_O_HTTP_CHK) {
        return None;
    }
    let (meth, uri) = px.check_req.clone().unwrap_or_else(|| ("OPTIONS".into(), "/".into()));
    Some(format!("{meth} {uri} HTTP/1.0\r\n\r\n").into_bytes())
}

/// The part of `process_chk` that opens the check's connection: a non-blocking `connect()`
/// registered in `fdtab[]` with `event_srv_chk_r`/`event_srv_chk_w`, waiting for
/// writability to learn the outcome. An error that shows at once is returned as the
/// check's status and info; the socket is closed then (dropping it closes it).
fn chk_connect(w: &mut Haproxy, sid: ServerId) -> Result<Fd, (HchkStatus, String)> {
    let addr = w.server(sid).addr;
    let stream = mio::net::TcpStream::connect(addr).map_err(|e| match e.raw_os_error() {
        Some(libc::ECONNREFUSED | libc::ENETUNREACH) => (HchkStatus::HCHK_STATUS_L4CON, os_reason(&e)),
        _ => (HchkStatus::HCHK_STATUS_SOCKERR, os_reason(&e)),
    })?;
    let _ = stream.set_nodelay(true);
    let sock = Sock::Tcp(stream);
    if w.proxies[sid.px.idx()].options.contains(ProxyOptions::PR_O_TCP_NOLING) {
        sock.set_nolinger();
    }
    let fd = w
        .fdtab
        .fd_insert(
            w.poller.registry(),
            sock,
            FdOwner::Check(sid),
            [Some(event_srv_chk_r), Some(event_srv_chk_w)],
            FdState::FD_STCONN,
        )
        .map_err(|e| (HchkStatus::HCHK_STATUS_SOCKERR, os_reason(&e)))?;
    // Speculatively first: a loopback connect may already be done.
    w.fdtab.fd_want_send(fd);
    Ok(fd)
}

/// Moves the task's timer past `now` in steps of `inter` (`while (tick_is_expired(...))
/// t->expire = tick_add(t->expire, inter)`), keeping the check's phase.
fn chk_skip_expired(w: &mut Haproxy, t: TaskId, inter: u64, connect: Option<u64>) {
    let now = w.clock.now_ms;
    let Some(task) = w.sched.get_mut(t) else { return };
    let mut exp = task.expire.unwrap_or(now);
    while exp <= now {
        let next = tick_add(exp, inter.max(1));
        // As 1.5-dev8 does after a failed connect() when `timeout check` is set: retry no
        // later than `timeout connect` after the previous date.
        exp = match connect {
            Some(c) if c > 0 => next.min(tick_add(exp, c)),
            _ => next,
        };
    }
    task.expire = Some(exp);
}

/// Sets the task's timer to `now + ms` (the next check, or the check's own deadline).
fn chk_set_expire(w: &mut Haproxy, t: TaskId, ms: u64) {
    let now = w.clock.now_ms;
    if let Some(task) = w.sched.get_mut(t) {
        task.expire = Some(tick_add(now, ms));
    }
    w.sched.task_queue(t);
}

/// Closes the connection of the check that just ended (`fd_delete(s->curfd)`).
fn chk_close(w: &mut Haproxy, sid: ServerId) {
    if let Some(fd) = chk(w, sid).and_then(|c| c.fd.take()) {
        w.fdtab.fd_delete(fd);
    }
    if let Some(c) = chk(w, sid) {
        // The answer is not needed any more; keep its capacity for the next check.
        c.data.clear();
    }
}

/// `srv_getinter(s)`: the interval that suits the server's health now.
fn getinter(w: &Haproxy, sid: ServerId) -> u64 {
    let srv = w.server(sid);
    srv.check.as_ref().map_or(1, |c| c.srv_getinter(srv.flags.contains(SrvFlags::SRV_RUNNING)))
}

/// checks.c:process_chk() in 1.5-dev8 (`t->process` of a check task). With no check in
/// progress, when the timer is due: start one (`chk_connect`), giving it `inter` to
/// finish, or only `timeout connect` to connect when `timeout check` is set. With a check
/// in progress: on success or failure (reported by the callbacks) or timeout, close the
/// connection, apply the result to the server's health and schedule the next check
/// `inter` later (`fastinter` while the health moves, `downinter` once fully DOWN, when
/// set: `srv_getinter`).
pub fn process_chk(w: &mut Haproxy, t: TaskId) -> TaskRun {
    let Some(task) = w.sched.get(t) else { return TaskRun::Freed };
    let TaskContext::Check(sid) = task.context else { return TaskRun::Alive };
    let span = tracing::debug_span!(
        names::PROCESS_CHK,
        server = %srv_fullname(w, sid),
        woken = %task.state,
        result = tracing::field::Empty,
        health = tracing::field::Empty,
    );
    let _g = span.enter();
    process_chk_run(w, t, sid);
    if let Some(c) = chk(w, sid) {
        span.record("result", c.status.info());
        span.record("health", c.health);
    }
    TaskRun::Alive
}

/// The body of `process_chk`.
fn process_chk_run(w: &mut Haproxy, t: TaskId, sid: ServerId) {
    let now = w.clock.now_ms;
    let expired = tick_is_expired(w.sched.get(t).and_then(|t| t.expire), now);
    let px = &w.proxies[sid.px.idx()];
    let (tmo_check, tmo_connect, stopped) =
        (px.timeout.check, px.timeout.connect, px.state == ProxyState::PR_STSTOPPED);
    let srv_flags = w.server(sid).flags;
    let inter = getinter(w, sid);
    let Some(c) = chk(w, sid) else { return };
    let Some(fd) = c.fd else {
        // No check in progress.
        if !expired {
            return; // woken up too early
        }
        // No checks for a stopped proxy, an unchecked server or one in maintenance.
        if !srv_flags.contains(SrvFlags::SRV_CHECKED) || stopped || srv_flags.contains(SrvFlags::SRV_MAINTAIN)
        {
            chk_skip_expired(w, t, inter, None);
            return;
        }
        set_server_check_status(w, sid, HchkStatus::HCHK_STATUS_START, None);
        match chk_connect(w, sid) {
            Ok(fd) => {
                if let Some(c) = chk(w, sid) {
                    c.fd = Some(fd);
                }
                // Up to `inter` for the whole check; when `timeout check` is set, which
                // may be too short for a full check otherwise, only MIN(inter, timeout
                // connect) to connect (event_srv_chk_w then allows `timeout check`).
                let mut exp = Some(tick_add(now, inter));
                if tmo_check.is_some()
                    && let Some(con) = tmo_connect
                {
                    exp = tick_first(exp, Some(tick_add(now, con)));
                }
                if let Some(task) = w.sched.get_mut(t) {
                    task.expire = exp;
                }
            }
            Err((status, info)) => {
                set_server_check_status(w, sid, status, Some(&info));
                chk_apply_result(w, sid);
                let inter = getinter(w, sid);
                chk_skip_expired(w, t, inter, tmo_check.and(tmo_connect));
            }
        }
        return;
    };
    // A check is in progress.
    if c.result == CheckResult::SRV_CHK_RUNNING {
        // A good server.
        chk_close(w, sid);
        chk_apply_result(w, sid);
        chk_set_expire(w, t, getinter(w, sid));
    } else if c.result == CheckResult::SRV_CHK_ERROR || expired {
        if c.result != CheckResult::SRV_CHK_ERROR {
            // Timed out: before the connection was up, or while waiting for the answer.
            let reading = w.fdtab.get(fd).is_some_and(|e| e.spec.contains(FdEv::FD_EV_ACTIVE_R));
            let st = if reading { HchkStatus::HCHK_STATUS_L7TOUT } else { HchkStatus::HCHK_STATUS_L4TOUT };
            set_server_check_status(w, sid, st, None);
        }
        chk_close(w, sid);
        chk_apply_result(w, sid);
        chk_set_expire(w, t, getinter(w, sid));
    }
    // Otherwise no result and no timeout yet: keep waiting.
}

/// Finishes a callback that has a result: stop polling, mark an error on the fd, and wake
/// the check task so that `process_chk` concludes (`out_wakeup` in checks.c).
fn chk_wakeup(w: &mut Haproxy, sid: ServerId, fd: Fd) {
    let Some(c) = chk(w, sid) else { return };
    let (failed, task) = (c.result == CheckResult::SRV_CHK_ERROR, c.task);
    if let Some(e) = w.fdtab.get_mut(fd) {
        if failed {
            e.state = FdState::FD_STERROR;
        }
        // Nothing more to do on this connection but close it.
        let _ = e.sock.shutdown(std::net::Shutdown::Both);
    }
    w.fdtab.fd_stop_both(fd);
    if let Some(t) = task {
        w.sched.task_wakeup(t, TaskState::TASK_WOKEN_IO);
    }
}

/// Where a check's `connect()` stands, learnt on a write event.
enum ConnState {
    /// Still in progress (a speculative call, or a spurious event).
    Pending,
    /// Established.
    Connected,
    /// Failed with this error.
    Failed(io::Error),
}

/// `SO_ERROR` first (a failure is reported there and cleared), then whether the peer
/// address is known: mio's way of telling a completed connect() from a pending one.
fn connect_state(sock: &Sock) -> ConnState {
    match sock.take_error() {
        Ok(Some(e)) | Err(e) => ConnState::Failed(e),
        Ok(None) => match sock {
            Sock::Tcp(s) => match s.peer_addr() {
                Ok(_) => ConnState::Connected,
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected || e.kind() == io::ErrorKind::WouldBlock =>
                {
                    ConnState::Pending
                }
                Err(e) => ConnState::Failed(e),
            },
            _ => ConnState::Connected,
        },
    }
}

/// checks.c:event_srv_chk_w() in 1.5-dev8 (`cb[DIR_WR]` of a check connection): see the
/// connection complete. A plain check passes right there (`L4OK`); with `option httpchk`
/// the request is sent, the answer is awaited for `timeout check` if set, and reading
/// starts. Errors become `L4CON` (or `SOCKERR`) and wake the task.
pub fn event_srv_chk_w(w: &mut Haproxy, fd: Fd) {
    let Some(FdOwner::Check(sid)) = w.fdtab.get(fd).map(|e| e.owner) else { return };
    let span = tracing::debug_span!(names::EVENT_SRV_CHK_W, server = %srv_fullname(w, sid), fd = fd.0, result = tracing::field::Empty);
    let _g = span.enter();
    event_srv_chk_w_run(w, sid, fd);
    if let Some(c) = chk(w, sid) {
        span.record("result", c.status.info());
    }
}

fn event_srv_chk_w_run(w: &mut Haproxy, sid: ServerId, fd: Fd) {
    let Some(e) = w.fdtab.get(fd) else { return };
    let (state, ev) = (e.state, e.ev);
    let Some(c) = chk(w, sid) else { return };
    if c.result == CheckResult::SRV_CHK_ERROR {
        // An error was already reported: do not mark UP a server that failed earlier.
        return chk_wakeup(w, sid, fd);
    }
    if state == FdState::FD_STCONN || state == FdState::FD_STERROR || ev.contains(FdPoll::FD_POLL_ERR) {
        let Some(sock) = w.fdtab.sock(fd) else { return };
        match connect_state(sock) {
            ConnState::Pending => {
                // Wait for the poller to report the outcome.
                w.fdtab.fd_cant_send(fd);
                return;
            }
            ConnState::Failed(e) => {
                set_server_check_status(w, sid, HchkStatus::HCHK_STATUS_L4CON, Some(&os_reason(&e)));
                return chk_wakeup(w, sid, fd);
            }
            ConnState::Connected => {
                if let Some(e) = w.fdtab.get_mut(fd) {
                    e.state = FdState::FD_STREADY;
                }
            }
        }
    }
    let Some(req) = httpchk_request(w, sid) else {
        // A good TCP connection is enough.
        set_server_check_status(w, sid, HchkStatus::HCHK_STATUS_L4OK, None);
        return chk_wakeup(w, sid, fd);
    };
    // Send what is left of the request; the loop is bounded by its size (each pass sends
    // at least one byte or leaves).
    for _ in 0..=req.len() {
        let sent = chk(w, sid).map_or(req.len(), |c| c.sent);
        if sent >= req.len() {
            break;
        }
        let Some(sock) = w.fdtab.sock(fd) else { return };
        match sock.send(&req[sent..]) {
            Ok(0) => {
                w.fdtab.fd_cant_send(fd);
                return;
            }
            Ok(n) => {
                if let Some(c) = chk(w, sid) {
                    c.sent += n;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                w.fdtab.fd_cant_send(fd);
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let st = match e.raw_os_error() {
                    Some(libc::ECONNREFUSED | libc::ENETUNREACH) => HchkStatus::HCHK_STATUS_L4CON,
                    _ => HchkStatus::HCHK_STATUS_SOCKERR,
                };
                set_server_check_status(w, sid, st, Some(&os_reason(&e)));
                return chk_wakeup(w, sid, fd);
            }
        }
    }
    if chk(w, sid).is_some_and(|c| c.sent < req.len()) {
        return;
    }
    // Sent: allow up to `timeout check`, if set, for the answer (`out_nowake`: the task
    // only needs to run again when the answer is read or the timer fires).
    let (tmo_check, task) = (w.proxies[sid.px.idx()].timeout.check, chk(w, sid).and_then(|c| c.task));
    if let (Some(ms), Some(t)) = (tmo_check, task) {
        chk_set_expire(w, t, ms);
    }
    w.fdtab.fd_stop_send(fd);
    w.fdtab.fd_want_recv(fd);
}

/// checks.c:event_srv_chk_r() in 1.5-dev8 (`cb[DIR_RD]` of an HTTP check connection):
/// read the answer until the status line is complete, judge it (`L7OK`, `L7STS`,
/// `L7RSP`), and wake the task. A network error before any byte is a `SOCKERR`.
pub fn event_srv_chk_r(w: &mut Haproxy, fd: Fd) {
    let Some(FdOwner::Check(sid)) = w.fdtab.get(fd).map(|e| e.owner) else { return };
    let span = tracing::debug_span!(names::EVENT_SRV_CHK_R, server = %srv_fullname(w, sid), fd = fd.0, bytes = tracing::field::Empty, result = tracing::field::Empty);
    let _g = span.enter();
    event_srv_chk_r_run(w, sid, fd);
    if let Some(c) = chk(w, sid) {
        span.record("bytes", c.data.len());
        span.record("result", c.status.info());
    }
}

fn event_srv_chk_r_run(w: &mut Haproxy, sid: ServerId, fd: Fd) {
    let Some(e) = w.fdtab.get(fd) else { return };
    let (state, ev) = (e.state, e.ev);
    let Some(c) = chk(w, sid) else { return };
    if c.result == CheckResult::SRV_CHK_ERROR
        || state == FdState::FD_STERROR
        || ev.contains(FdPoll::FD_POLL_ERR)
    {
        if c.result != CheckResult::SRV_CHK_ERROR {
            set_server_check_status(w, sid, HchkStatus::HCHK_STATUS_SOCKERR, None);
        }
        return chk_wakeup(w, sid, fd);
    }
    // Read until EAGAIN (edge-triggered polling: the next edge needs a drained socket),
    // the end of the answer, or a full buffer, which bounds the loop.
    let mut done = false;
    let mut buf = [0u8; 4096];
    loop {
        let have = chk(w, sid).map_or(CHK_DATA_SIZE, |c| c.data.len());
        if have >= CHK_DATA_SIZE {
            done = true;
            break;
        }
        let room = (CHK_DATA_SIZE - have).min(buf.len());
        let Some(sock) = w.fdtab.sock(fd) else { return };
        match sock.recv(&mut buf[..room]) {
            Ok(0) => {
                done = true;
                break;
            }
            Ok(n) => {
                if let Some(c) = chk(w, sid) {
                    c.data.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                w.fdtab.fd_cant_recv(fd);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // Report network errors only if nothing came: an RST right after the
                // last bytes of an answer is common and the answer still counts.
                done = true;
                if chk(w, sid).is_some_and(|c| c.data.is_empty()) {
                    set_server_check_status(w, sid, HchkStatus::HCHK_STATUS_SOCKERR, None);
                    return chk_wakeup(w, sid, fd);
                }
                break;
            }
        }
    }
    let expect = w.proxies[sid.px.idx()].check_expect_status;
    let verdict = match chk(w, sid) {
        Some(c) => httpchk_parse_status(&c.data, done, expect),
        None => return,
    };
    match verdict {
        HttpChkVerdict::NeedMore => {}
        HttpChkVerdict::Done(status, code, info) => {
            if let Some(c) = chk(w, sid) {
                c.code = code.or(c.code);
            }
            set_server_check_status(w, sid, status, Some(&info));
            chk_wakeup(w, sid, fd);
        }
    }
}

/// checks.c:start_checks() in 1.5-dev8: one task per checked server, whose first run is
/// spread over the checking interval (the smallest `inter` of at least one second, or
/// the server's own) by the server's position, so that checks do not all leave together.
/// Returns an error (already printed as an ALERT) when a task cannot be allocated.
pub fn start_checks(w: &mut Haproxy) -> Result<(), String> {
    let span = tracing::info_span!(names::START_CHECKS, checks = tracing::field::Empty);
    let _g = span.enter();
    let checked: Vec<(ServerId, u64)> = w
        .proxies
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| {
            p.servers
                .iter()
                .enumerate()
                .filter(|(_, s)| s.check.is_some() && s.flags.contains(SrvFlags::SRV_CHECKED))
                .map(move |(si, _)| ServerId { px: ProxyId::from(pi), idx: si as u32 })
        })
        .map(|sid| (sid, getinter(w, sid)))
        .collect();
    let nbchk = checked.len() as u64;
    if nbchk == 0 {
        return Ok(());
    }
    let mininter = checked.iter().map(|&(_, i)| i).filter(|&i| i >= SRV_CHK_INTER_THRES).min().unwrap_or(0);
    let now = w.clock.now_ms;
    for (srvpos, &(sid, inter)) in checked.iter().enumerate() {
        let Some(t) = w.sched.task_new(process_chk, TaskContext::Check(sid)) else {
            let msg = format!("Starting [{}] check: out of memory.", srv_fullname(w, sid).replace('/', ":"));
            print_diag(w, "ALERT", &msg);
            // Give back the tasks already created: the caller exits.
            stop_checks(w);
            return Err(msg);
        };
        let spread = if mininter > 0 && mininter >= inter { mininter } else { inter };
        if let Some(task) = w.sched.get_mut(t) {
            task.expire = Some(Tick(now.0 + spread * srvpos as u64 / nbchk));
        }
        w.sched.task_queue(t);
        if let Some(c) = chk(w, sid) {
            c.task = Some(t);
        }
    }
    span.record("checks", nbchk);
    Ok(())
}

/// Frees every check's connection and task (what `deinit()` does in haproxy.c): used by a
/// hard stop, and when a soft stop ends, so nothing is left in `fdtab[]` or `pool2_task`.
pub fn stop_checks(w: &mut Haproxy) {
    for pi in 0..w.proxies.len() {
        for si in 0..w.proxies[pi].servers.len() {
            let Some(c) = w.proxies[pi].servers[si].check.as_mut() else { continue };
            let (fd, task) = (c.fd.take(), c.task.take());
            c.data = Vec::new();
            if let Some(fd) = fd {
                w.fdtab.fd_delete(fd);
            }
            if let Some(t) = task {
                w.sched.task_free(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs results through `health_after` from `health`, returning each step as the
    /// `status: X/Y UP|DOWN` text of `option log-health-checks` plus the transitions.
    fn run(mut health: u32, rise: u32, fall: u32, results: &[bool]) -> Vec<String> {
        results
            .iter()
            .map(|&ok| {
                let (h, change) = health_after(health, rise, fall, ok);
                health = h;
                let mark = match change {
                    HealthChange::Up => " -> UP",
                    HealthChange::Down => " -> DOWN",
                    HealthChange::Same => "",
                };
                format!("{}{mark}", health_status(h, rise, fall, 1))
            })
            .collect()
    }

    #[test]
    fn a_server_starts_up_and_falls_at_its_first_failure() {
        // check-log-health-checks.stdout: be_garbage/s1 fails at start-up -> "0/2 DOWN".
        assert_eq!(run(2, 2, 2, &[false]), ["0/2 DOWN -> DOWN"]);
        // be_http/s1 passes at start-up: "2/2 UP", no transition (it was UP already).
        assert_eq!(run(2, 2, 2, &[true]), ["2/2 UP"]);
    }

    #[test]
    fn it_then_takes_fall_failures_to_go_down_and_rise_successes_to_come_back() {
        // The be_http/s1 sequence of check-log-health-checks.stdout (rise 2, fall 2).
        assert_eq!(
            run(2, 2, 2, &[true, false, false, true, true]),
            ["2/2 UP", "1/2 UP", "0/2 DOWN -> DOWN", "1/2 DOWN", "2/2 UP -> UP"]
        );
        // HAProxy's defaults, rise 2 fall 3: three failures down, two successes up.
        assert_eq!(
            run(4, 2, 3, &[false, false, false, true, true]),
            ["2/3 UP", "1/3 UP", "0/2 DOWN -> DOWN", "1/2 DOWN", "3/3 UP -> UP"]
        );
    }

    #[test]
    fn health_stays_within_its_bounds() {
        for (rise, fall) in [(1, 1), (1, 5), (3, 1), (2, 3), (5, 5)] {
            let top = rise + fall - 1;
            assert_eq!(health_after(top, rise, fall, true), (top, HealthChange::Same));
            assert_eq!(health_after(0, rise, fall, false), (0, HealthChange::Same));
            // A success after a failure never leaves an UP server below `rise`.
            let (h, _) = health_after(top, rise, fall, false);
            assert!(h == 0 || h >= rise, "rise {rise} fall {fall}: {h}");
            let (h, _) = health_after(h, rise, fall, true);
            assert!(h <= top);
        }
        // rise 1 fall 1: every result flips the state.
        assert_eq!(
            run(1, 1, 1, &[false, true, false]),
            ["0/1 DOWN -> DOWN", "1/1 UP -> UP", "0/1 DOWN -> DOWN"]
        );
    }

    #[test]
    fn fastinter_while_the_health_moves_and_downinter_once_down() {
        let mut c = CheckState::new(1000, 2, 3);
        assert_eq!(c.srv_getinter(true), 1000, "no fastinter: inter");
        c.fastinter = Some(100);
        c.downinter = Some(5000);
        c.health = 4;
        assert_eq!(c.srv_getinter(true), 1000, "fully UP");
        c.health = 3;
        assert_eq!(c.srv_getinter(true), 100, "going down");
        c.health = 1;
        assert_eq!(c.srv_getinter(false), 100, "coming up");
        c.health = 0;
        assert_eq!(c.srv_getinter(false), 5000, "fully DOWN");
    }

    #[test]
    fn reasons_read_as_in_haproxy_2_6() {
        let refused = check_reason(HchkStatus::HCHK_STATUS_L4CON, None, "Connection refused", 0);
        let down = format!("Server be_tcp/s1 is DOWN{refused}{}.", server_counts(true, 0, 0, 0, 0, 0));
        assert_eq!(
            down,
            "Server be_tcp/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        );
        let up = format!(
            "Server be_http/s1 is UP{}{}.",
            check_reason(HchkStatus::HCHK_STATUS_L7OKD, Some(200), "", 0),
            server_counts(false, 1, 0, 0, 0, 0)
        );
        assert_eq!(
            up,
            "Server be_http/s1 is UP, reason: Layer7 check passed, code: 200, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
        );
        assert_eq!(
            check_reason(HchkStatus::HCHK_STATUS_L7STS, Some(500), "Internal Server Error", 0),
            ", reason: Layer7 wrong status, code: 500, info: \"Internal Server Error\", check duration: 0ms"
        );
        assert_eq!(
            check_reason(HchkStatus::HCHK_STATUS_L4TOUT, None, "", 201),
            ", reason: Layer4 timeout, check duration: 201ms"
        );
        assert_eq!(
            server_counts(true, 0, 1, 2, 3, 0),
            ". 0 active and 1 backup servers left. Running on backup. 2 sessions active, 3 requeued, 0 remaining in queue"
        );
        assert_eq!(chunk_asciiencode("a \"b\" <c>\r"), "a <22>b<22> <3C>c<3E><0D>");
    }

    #[test]
    fn http_status_lines_are_judged_like_checks_c() {
        use HchkStatus::*;
        let done = |s: HchkStatus, c: Option<u16>, i: &str| HttpChkVerdict::Done(s, c, i.to_string());
        assert_eq!(
            httpchk_parse_status(b"HTTP/1.1 200 OK\r\n", false, None),
            done(HCHK_STATUS_L7OKD, Some(200), "")
        );
        assert_eq!(
            httpchk_parse_status(b"HTTP/1.0 302 Found\r\n", false, None),
            done(HCHK_STATUS_L7OKD, Some(302), "")
        );
        assert_eq!(
            httpchk_parse_status(b"HTTP/1.1 500 Internal Server Error\r\nX: y\r\n", false, None),
            done(HCHK_STATUS_L7STS, Some(500), "Internal Server Error")
        );
        // `http-check expect status N`: exactly N.
        assert_eq!(
            httpchk_parse_status(b"HTTP/1.1 200 OK\r\n", false, Some(201)),
            done(HCHK_STATUS_L7STS, Some(200), "OK")
        );
        assert_eq!(
            httpchk_parse_status(b"HTTP/1.1 404 Not Found\r\n", false, Some(404)),
            done(HCHK_STATUS_L7OKD, Some(404), "")
        );
        // Not HTTP, or nothing at all before the close.
        assert_eq!(
            httpchk_parse_status(b"this is not HTTP at all\r\n", false, None),
            done(HCHK_STATUS_L7RSP, None, "")
        );
        assert_eq!(httpchk_parse_status(b"", true, None), done(HCHK_STATUS_L7RSP, None, ""));
        // A partial status line waits for more, unless the server closed.
        assert_eq!(httpchk_parse_status(b"HTTP/1.1 20", false, None), HttpChkVerdict::NeedMore);
        assert_eq!(httpchk_parse_status(b"HTTP/1.1 200", true, None), done(HCHK_STATUS_L7OKD, Some(200), ""));
    }
}
