//! Health checks and agent checks: one task per check that runs the check's rules every
//! `inter`, and the rise/fall state machine that marks the server UP or DOWN.
//!
//! Reproduces `checks.c` of HAProxy 1.5.0 (which added agent checks and `tcp-check` to
//! 1.5-dev8's connect-and-ask checks), with HAProxy 2.6's rules engine (`tcpcheck.rs`) and
//! messages. `start_checks` creates a task per configured check (a server's health check
//! and its agent check are two), their first runs spread over `inter`. When a check's
//! timer fires, `process_chk` starts it: `tcpcheck_main` walks its rules, opening a
//! non-blocking connection registered in `fdtab[]` with two callbacks of its own,
//! `event_srv_chk_w` (the connection completes, or there is more to send) and
//! `event_srv_chk_r` (the server sent something). Both call `wake_srv_chk`, which resumes
//! `tcpcheck_main` where it waited and wakes the task once the check has a result. The
//! results go through `set_server_check_status`, which moves the check's `health`
//! (0..rise+fall-1; UP when `health >= rise`) and logs with `option log-health-checks`;
//! `process_chk` then closes the connection, tells the server (`check_notify_failure`,
//! `check_notify_success`: `set_server_down`, `set_server_up`) and schedules the next
//! check. A server going DOWN hands its queue back to load balancing (with `option
//! redispatch`); one coming UP takes the sessions waiting in its backend's queue.

use std::io;
use std::net::SocketAddr;

use crate::haproxy::errors::print_message;
use crate::haproxy::fd::{FdOwner, FdState, Sock};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::log::{LOG_ALERT, LOG_EMERG, LOG_NOTICE, send_log};
use crate::haproxy::proxy::{ProxyOptions, ProxyState};
use crate::haproxy::queue::process_srv_queue;
use crate::haproxy::server::{CheckState, Server, SrvFlags, SrvPpOpts, srv_fullname};
use crate::haproxy::session::SessFlags;
use crate::haproxy::task::{TaskContext, TaskRun, TaskState};
use crate::haproxy::tcpcheck::{ConnectPlan, tcpcheck_main, tcpcheck_step_desc};
use crate::haproxy::time::Tick;
use crate::haproxy::time::{tick_add, tick_is_expired};
use crate::ids::{Fd, ProxyId, ServerId, TaskId};
use crate::trace::names;

/// `SRV_CHK_INTER_THRES`: checks run less often than this (ms) set the spreading
/// interval of the first checks; faster ones start on their own `inter`.
const SRV_CHK_INTER_THRES: u64 = 1000;

/// `HCHK_DESC_LEN`: longest `info` kept, terminator included.
const HCHK_DESC_LEN: usize = 128;

/// Which of a server's two checks (`srv->check` or `srv->agent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// The health check (`check`).
    Health,
    /// The agent check (`agent-check`, `CHK_ST_AGENT`).
    Agent,
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckKind::Health => "health",
            CheckKind::Agent => "agent",
        })
    }
}

/// A check: the server and which of its checks (`struct check *`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckId {
    /// The checked server.
    pub srv: ServerId,
    /// Its health check or its agent check.
    pub kind: CheckKind,
}

/// `check->result` (`CHK_RES_*`, 1.5.0): what the check in progress found so far.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckResult {
    /// Nothing yet: the check is running.
    CHK_RES_UNKNOWN,
    /// A valid check that says nothing of the server's health (an agent's weight change).
    CHK_RES_NEUTRAL,
    /// The check failed (connection, timeout, wrong answer).
    CHK_RES_FAILED,
    /// The server answered as expected.
    CHK_RES_PASSED,
    /// It answered but asks for no new traffic (`http-check disable-on-404`).
    CHK_RES_CONDPASS,
}

impl CheckResult {
    /// The number `show servers state` prints.
    pub fn num(self) -> u32 {
        self as u32
    }
}

/// `check_status` (`HCHK_STATUS_*`): the outcome of a check, as HAProxy names and
/// describes it (`check_statuses[]`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HchkStatus {
    /// `UNK`: unknown.
    HCHK_STATUS_UNKNOWN,
    /// `INI`: no check has finished yet.
    HCHK_STATUS_INI,
    /// A check starts (special: resets the result, never stored).
    HCHK_STATUS_START,
    /// `CHECKED`: an agent answered without a health state.
    HCHK_STATUS_CHECKED,
    /// `SOCKERR`: the socket could not be created or failed outside the connection.
    HCHK_STATUS_SOCKERR,
    /// `L4OK`: the TCP connection was established (enough for a plain check).
    HCHK_STATUS_L4OK,
    /// `L4TOUT`: the TCP connection did not complete in time.
    HCHK_STATUS_L4TOUT,
    /// `L4CON`: the TCP connection failed (refused, unreachable...).
    HCHK_STATUS_L4CON,
    /// `L6OK`: the SSL hello was answered.
    HCHK_STATUS_L6OK,
    /// `L6TOUT`: no SSL answer in time.
    HCHK_STATUS_L6TOUT,
    /// `L6RSP`: not an SSL answer.
    HCHK_STATUS_L6RSP,
    /// `L7TOUT`: connected and sent the request, but no answer in time.
    HCHK_STATUS_L7TOUT,
    /// `L7RSP`: the answer is not what the protocol allows.
    HCHK_STATUS_L7RSP,
    /// `L7OK`: the answer is the one expected.
    HCHK_STATUS_L7OKD,
    /// `L7OKC`: the answer asks for no new traffic (`disable-on-404`).
    HCHK_STATUS_L7OKCD,
    /// `L7STS`: the answer says the server is not well (status, error code).
    HCHK_STATUS_L7STS,
}

impl HchkStatus {
    /// `check_statuses[].info`: the short name `show stat` prints.
    pub fn info(self) -> &'static str {
        use HchkStatus::*;
        match self {
            HCHK_STATUS_UNKNOWN => "UNK",
            HCHK_STATUS_INI => "INI",
            HCHK_STATUS_START => "",
            HCHK_STATUS_CHECKED => "CHECKED",
            HCHK_STATUS_SOCKERR => "SOCKERR",
            HCHK_STATUS_L4OK => "L4OK",
            HCHK_STATUS_L4TOUT => "L4TOUT",
            HCHK_STATUS_L4CON => "L4CON",
            HCHK_STATUS_L6OK => "L6OK",
            HCHK_STATUS_L6TOUT => "L6TOUT",
            HCHK_STATUS_L6RSP => "L6RSP",
            HCHK_STATUS_L7TOUT => "L7TOUT",
            HCHK_STATUS_L7RSP => "L7RSP",
            HCHK_STATUS_L7OKD => "L7OK",
            HCHK_STATUS_L7OKCD => "L7OKC",
            HCHK_STATUS_L7STS => "L7STS",
        }
    }

    /// `check_statuses[].desc` (`get_check_status_description`): the "reason" in logs.
    pub fn desc(self) -> &'static str {
        use HchkStatus::*;
        match self {
            HCHK_STATUS_UNKNOWN | HCHK_STATUS_START => "Unknown",
            HCHK_STATUS_INI => "Initializing",
            HCHK_STATUS_CHECKED => "No status change",
            HCHK_STATUS_SOCKERR => "Socket error",
            HCHK_STATUS_L4OK => "Layer4 check passed",
            HCHK_STATUS_L4TOUT => "Layer4 timeout",
            HCHK_STATUS_L4CON => "Layer4 connection problem",
            HCHK_STATUS_L6OK => "Layer6 check passed",
            HCHK_STATUS_L6TOUT => "Layer6 timeout",
            HCHK_STATUS_L6RSP => "Layer6 invalid response",
            HCHK_STATUS_L7TOUT => "Layer7 timeout",
            HCHK_STATUS_L7RSP => "Layer7 invalid response",
            HCHK_STATUS_L7OKD => "Layer7 check passed",
            HCHK_STATUS_L7OKCD => "Layer7 check conditionally passed",
            HCHK_STATUS_L7STS => "Layer7 wrong status",
        }
    }

    /// `check_statuses[].result`: what the status means for the check in progress.
    pub fn result(self) -> Option<CheckResult> {
        use HchkStatus::*;
        match self {
            HCHK_STATUS_UNKNOWN | HCHK_STATUS_INI | HCHK_STATUS_START => None,
            HCHK_STATUS_CHECKED => Some(CheckResult::CHK_RES_NEUTRAL),
            HCHK_STATUS_L4OK | HCHK_STATUS_L6OK | HCHK_STATUS_L7OKD => Some(CheckResult::CHK_RES_PASSED),
            HCHK_STATUS_L7OKCD => Some(CheckResult::CHK_RES_CONDPASS),
            _ => Some(CheckResult::CHK_RES_FAILED),
        }
    }

    /// True for the statuses after `HCHK_STATUS_L57DATA`, which carry a code.
    pub fn has_code(self) -> bool {
        use HchkStatus::*;
        matches!(self, HCHK_STATUS_L7OKD | HCHK_STATUS_L7OKCD | HCHK_STATUS_L7STS)
    }

    /// The enum's value in HAProxy 2.6, as `show servers state` prints it.
    pub fn num(self) -> u32 {
        use HchkStatus::*;
        match self {
            HCHK_STATUS_UNKNOWN => 0,
            HCHK_STATUS_INI => 1,
            HCHK_STATUS_START => 2,
            HCHK_STATUS_CHECKED => 3,
            HCHK_STATUS_SOCKERR => 5,
            HCHK_STATUS_L4OK => 6,
            HCHK_STATUS_L4TOUT => 7,
            HCHK_STATUS_L4CON => 8,
            HCHK_STATUS_L6OK => 9,
            HCHK_STATUS_L6TOUT => 10,
            HCHK_STATUS_L6RSP => 11,
            HCHK_STATUS_L7TOUT => 12,
            HCHK_STATUS_L7RSP => 13,
            HCHK_STATUS_L7OKD => 15,
            HCHK_STATUS_L7OKCD => 16,
            HCHK_STATUS_L7STS => 17,
        }
    }
}

impl std::fmt::Display for HchkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.info())
    }
}

bitflags::bitflags! {
    /// `check->state` (`CHK_ST_*`, 1.5.0 and 2.6).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct ChkSt: u32 {
        /// A check is running.
        const CHK_ST_INPROGRESS = 0x0001;
        /// Configured (`check` or `agent-check`).
        const CHK_ST_CONFIGURED = 0x0002;
        /// Administratively enabled.
        const CHK_ST_ENABLED    = 0x0004;
        /// Paused because the server is in maintenance (health checks only).
        const CHK_ST_PAUSED     = 0x0008;
        /// An agent check.
        const CHK_ST_AGENT      = 0x0010;
        /// The connection must be closed before the next `connect` rule.
        const CHK_ST_CLOSE_CONN = 0x0100;
    }
}

bitflags::bitflags! {
    /// The state of a check's connection (`conn->flags` and the stream connector's
    /// `SE_FL_EOS`, 2.6).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct ConnFlags: u32 {
        /// `CO_FL_WAIT_L4_CONN`: connect() not complete yet.
        const CO_FL_WAIT_L4_CONN = 0x0001;
        /// `CO_FL_SEND_PROXY`: the PROXY header is not fully sent.
        const CO_FL_SEND_PROXY   = 0x0002;
        /// `CO_FL_SOCKS4_SEND`: the SOCKS4 request is not fully sent.
        const CO_FL_SOCKS4_SEND  = 0x0004;
        /// `CO_FL_SOCKS4_RECV`: the SOCKS4 answer is not fully received.
        const CO_FL_SOCKS4_RECV  = 0x0008;
        /// `CO_FL_ERROR`: the connection failed.
        const CO_FL_ERROR        = 0x0010;
        /// `SE_FL_EOS`: the server closed its side.
        const CO_FL_EOS          = 0x0020;
        /// `CO_FL_WAIT_XPRT`: not ready for data yet.
        const CO_FL_WAIT_XPRT = Self::CO_FL_WAIT_L4_CONN.bits() | Self::CO_FL_SEND_PROXY.bits()
            | Self::CO_FL_SOCKS4_SEND.bits() | Self::CO_FL_SOCKS4_RECV.bits();
    }
}

bitflags::bitflags! {
    /// `wait_event.events` (`SUB_RETRY_*`, 2.6): what the check waits for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct SubEvents: u8 {
        /// Resume when data arrives.
        const SUB_RETRY_RECV = 0x01;
        /// Resume when the connection can take data.
        const SUB_RETRY_SEND = 0x02;
    }
}

/// A check's connection (`check->sc` and its `struct connection`).
#[derive(Clone, Debug, Default)]
pub struct ChkConn {
    /// The socket in `fdtab[]`; `None` when `connect()` failed at once.
    pub fd: Option<Fd>,
    /// `CO_FL_*`.
    pub flags: ConnFlags,
    /// The error that failed the connection (`errno`), 0 if none.
    pub errno: i32,
    /// What the check waits for.
    pub sub: SubEvents,
    /// Bytes to send before the check's own (a PROXY header, a SOCKS4 request).
    pub pre: Vec<u8>,
    /// The SOCKS4 answer received so far.
    pub socks_rsp: Vec<u8>,
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

/// The check part of `server_status_printf` (`srv_append_status` in 2.6): `, reason: ...,
/// code: N, info: "...", check duration: Nms`.
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

/// One of a server's checks.
pub fn srv_check(srv: &Server, kind: CheckKind) -> Option<&CheckState> {
    match kind {
        CheckKind::Health => srv.check.as_ref(),
        CheckKind::Agent => srv.agent.as_ref(),
    }
}

/// The state of check `cid`, if the server has it.
pub fn chk(w: &mut Haproxy, cid: CheckId) -> Option<&mut CheckState> {
    let srv = w.proxies.get_mut(cid.srv.px.idx())?.servers.get_mut(cid.srv.idx as usize)?;
    match cid.kind {
        CheckKind::Health => srv.check.as_mut(),
        CheckKind::Agent => srv.agent.as_mut(),
    }
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

/// checks.c:server_status_printf() in 1.5-dev8 (`srv_append_status` in 2.6): " via" the
/// server a tracking one follows, the reason of the last result of `check` if given, then,
/// when `xferred` is given, the server counts.
fn server_status_printf(
    w: &Haproxy,
    sid: ServerId,
    check: Option<CheckKind>,
    xferred: Option<usize>,
) -> String {
    let srv = w.server(sid);
    let mut msg = String::new();
    if let Some(t) = srv.track {
        msg.push_str(&format!(" via {}", srv_fullname(w, t)));
    }
    if let Some(c) = check.and_then(|k| srv_check(srv, k)) {
        msg.push_str(&check_reason(c.status, c.code, &c.info, c.duration));
    }
    if let Some(x) = xferred {
        let px = &w.proxies[sid.px.idx()];
        let down = !srv.flags.contains(SrvFlags::SRV_RUNNING);
        msg.push_str(&server_counts(down, px.srv_act(), px.srv_bck(), srv.cur_sess, x, srv.pendconns.len()));
    }
    msg
}

/// checks.c:set_server_check_status() in 1.5.0 (same in 2.6): record the outcome of the
/// check in progress (`check_status`, `info`, `duration`, `result`) and move its health: a
/// success adds one (jumping to the top once it reaches `rise`), a failure takes one off
/// (dropping to 0 below `rise`). An agent that could not be reached does not count: only
/// its answers do. With `option log-health-checks`, a result that moves the health or
/// changes the status is logged. `HCHK_STATUS_START` begins a check instead.
pub fn set_server_check_status(w: &mut Haproxy, cid: CheckId, status: HchkStatus, desc: Option<&str>) {
    let now = w.clock.now_ms;
    let Some(c) = chk(w, cid) else { return };
    if status == HchkStatus::HCHK_STATUS_START {
        c.result = CheckResult::CHK_RES_UNKNOWN;
        c.info.clear();
        c.start = Some(now);
        return;
    }
    let prev_status = c.status;
    c.info.clear();
    if let Some(d) = desc {
        // A C string: it ends at its first NUL.
        let d = d.split('\0').next().unwrap_or_default();
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
    // check measures it.
    if let Some(start) = c.start.take() {
        c.duration = now.0.saturating_sub(start.0);
    }
    if c.result == CheckResult::CHK_RES_NEUTRAL {
        return;
    }
    let mut report = false;
    match c.result {
        CheckResult::CHK_RES_FAILED
            if (cid.kind == CheckKind::Health || status.has_code()) && c.health > 0 =>
        {
            c.failed += 1;
            report = true;
            c.health -= 1;
            if c.health < c.rise {
                c.health = 0;
            }
        }
        CheckResult::CHK_RES_PASSED | CheckResult::CHK_RES_CONDPASS if c.health < c.rise + c.fall - 1 => {
            report = true;
            c.health += 1;
            if c.health >= c.rise {
                c.health = c.rise + c.fall - 1;
            }
        }
        _ => {}
    }
    let (health, rise, fall, result) = (c.health, c.rise, c.fall, c.result);
    if !w.proxies[cid.srv.px.idx()].options.contains(ProxyOptions::PR_O2_LOGHCHKS)
        || (status == prev_status && !report)
    {
        return;
    }
    let srv = w.server(cid.srv);
    let msg = format!(
        "{} check for {}server {} {}{}{}, status: {}.",
        if cid.kind == CheckKind::Agent { "Agent" } else { "Health" },
        if srv.is_backup() { "backup " } else { "" },
        srv_fullname(w, cid.srv),
        if result == CheckResult::CHK_RES_CONDPASS { "conditionally " } else { "" },
        if result >= CheckResult::CHK_RES_PASSED { "succeeded" } else { "failed" },
        server_status_printf(w, cid.srv, Some(cid.kind), None),
        health_status(health, rise, fall, srv.uweight)
    );
    print_diag(w, "WARNING", &msg);
    let targets = w.proxies[cid.srv.px.idx()].logs.clone();
    send_log(w, &targets, LOG_NOTICE, &msg);
}

/// checks.c:check_notify_failure() in 1.5.0: the server goes DOWN once the check's health
/// reached 0. An agent only takes it down when it said so (`L7STS`), not when it could
/// not be reached.
fn check_notify_failure(w: &mut Haproxy, cid: CheckId) {
    let Some(c) = chk(w, cid) else { return };
    if (cid.kind == CheckKind::Agent && c.status != HchkStatus::HCHK_STATUS_L7STS) || c.health > 0 {
        return;
    }
    let reason =
        (!w.proxies[cid.srv.px.idx()].options.contains(ProxyOptions::PR_O2_LOGHCHKS)).then_some(cid.kind);
    set_server_down(w, cid.srv, reason);
}

/// checks.c:check_notify_success() in 1.5.0: the server comes UP unless it is in
/// maintenance or one of its checks still says DOWN.
fn check_notify_success(w: &mut Haproxy, cid: CheckId) {
    let srv = w.server(cid.srv);
    if srv.flags.contains(SrvFlags::SRV_MAINTAIN) {
        return;
    }
    let below = |c: Option<&CheckState>| {
        c.is_some_and(|c| c.state.contains(ChkSt::CHK_ST_ENABLED) && c.health < c.rise)
    };
    if below(srv.check.as_ref()) || below(srv.agent.as_ref()) {
        return;
    }
    if cid.kind == CheckKind::Agent && srv.flags.contains(SrvFlags::SRV_DRAIN) {
        return;
    }
    let reason =
        (!w.proxies[cid.srv.px.idx()].options.contains(ProxyOptions::PR_O2_LOGHCHKS)).then_some(cid.kind);
    set_server_up(w, cid.srv, reason);
}

/// checks.c:check_notify_stopping() in 1.5.0: `disable-on-404` answered, the server
/// should take no new traffic; haflow drains it (`srv_adm_set_drain`).
/// Divergence: HAProxy keeps an operational "stopping" state apart from the
/// administrative drain; haflow has only the latter.
fn check_notify_stopping(w: &mut Haproxy, cid: CheckId) {
    let srv = w.server(cid.srv);
    if srv.flags.intersects(SrvFlags::SRV_MAINTAIN | SrvFlags::SRV_DRAIN) || cid.kind == CheckKind::Agent {
        return;
    }
    if srv.check.as_ref().is_some_and(|c| c.health < c.rise) {
        return;
    }
    crate::haproxy::server::srv_adm_set_drain(w, cid.srv);
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

/// checks.c:set_server_down() in 1.5-dev8 (`srv_set_stopped` in 2.6): the server is DOWN,
/// and so are the servers tracking it (`track`).
/// It leaves load balancing (`SRV_RUNNING` cleared: `is_usable` is false), its queue is
/// redistributed, the transition is logged at `LOG_ALERT` (with the reason of `check`
/// when given: not when `option log-health-checks` already told it), and the backend is
/// reported down if it has no server left. Sessions already on the server keep going.
pub fn set_server_down(w: &mut Haproxy, sid: ServerId, check: Option<CheckKind>) {
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
    // Its idle connections lead nowhere useful any more (2.6's srv_cleanup_connections()).
    crate::haproxy::server::srv_cleanup_connections(w, sid);
    let xferred = redistribute_pending(w, sid);
    let msg = format!(
        "{}Server {} is DOWN{}.",
        if w.server(sid).is_backup() { "Backup " } else { "" },
        srv_fullname(w, sid),
        server_status_printf(w, sid, check, Some(xferred))
    );
    print_diag(w, "WARNING", &msg);
    let targets = w.proxies[px.idx()].logs.clone();
    send_log(w, &targets, LOG_ALERT, &msg);
    let p = &w.proxies[px.idx()];
    if prev_srv_count > 0 && p.srv_act() + p.srv_bck() == 0 {
        set_backend_down(w, px);
    }
    w.server_mut(sid).counters.down_trans += 1;
    // Only the tracking servers not in maintenance follow.
    for t in crate::haproxy::server::srv_trackers(w, sid) {
        if !w.server(t).flags.contains(SrvFlags::SRV_MAINTAIN) {
            set_server_down(w, t, None);
        }
    }
}

/// checks.c:set_server_up() in 1.5-dev8 (`srv_set_running` in 2.6): the server is UP
/// again, and so are the servers tracking it. It rejoins load balancing, takes the sessions waiting for it or for its backend
/// (`process_srv_queue`; a backup server only when no active one is up, as 2.6's
/// `pendconn_grab_from_px`), and the transition is logged at `LOG_NOTICE`.
pub fn set_server_up(w: &mut Haproxy, sid: ServerId, check: Option<CheckKind>) {
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
    let msg = format!(
        "{}Server {} is UP{}.",
        if w.server(sid).is_backup() { "Backup " } else { "" },
        srv_fullname(w, sid),
        server_status_printf(w, sid, check, Some(xferred))
    );
    print_diag(w, "WARNING", &msg);
    let targets = w.proxies[px.idx()].logs.clone();
    send_log(w, &targets, LOG_NOTICE, &msg);
    for t in crate::haproxy::server::srv_trackers(w, sid) {
        if !w.server(t).flags.contains(SrvFlags::SRV_MAINTAIN) {
            set_server_up(w, t, None);
        }
    }
}

/// `unclean_errno()` in 2.6: the errors that only say "not yet" are no errors.
fn unclean_errno(e: i32) -> i32 {
    if matches!(e, libc::EAGAIN | libc::EINPROGRESS | libc::EISCONN | libc::EALREADY) { 0 } else { e }
}

/// `strerror(errno)`.
fn strerror(errno: i32) -> String {
    crate::haproxy::proto_tcp::os_reason(&io::Error::from_raw_os_error(errno))
}

/// checks.c:chk_report_conn_err() in 1.5.0 (2.6's messages): turn a connection error or a
/// timeout into the check's status, with the error and, for `tcp-check` rules, the step
/// where it happened. Does nothing once the check has a result.
pub fn chk_report_conn_err(w: &mut Haproxy, cid: CheckId, errno: i32, expired: bool) {
    let Some(c) = chk(w, cid) else { return };
    if c.result != CheckResult::CHK_RES_UNKNOWN {
        return;
    }
    let mut errno = unclean_errno(errno);
    let conn = c.conn.clone();
    if let Some(k) = &conn {
        if errno == 0 {
            errno = unclean_errno(k.errno);
        }
        if !k.flags.contains(ConnFlags::CO_FL_ERROR) && !expired {
            return;
        }
    }
    let step = tcpcheck_step_desc(&c.rules, c.current_step);
    let tout = match c.current_step.and_then(|i| c.rules.list.get(i)).map(|r| &r.action) {
        Some(crate::haproxy::tcpcheck::TcpcheckAction::Expect(e)) => e.tout_status,
        _ => None,
    };
    let err_msg = if errno != 0 { format!("{}{step}", strerror(errno)) } else { step };
    use HchkStatus::*;
    let status = match &conn {
        None => Some(HCHK_STATUS_SOCKERR),
        Some(k) if k.flags.contains(ConnFlags::CO_FL_WAIT_L4_CONN) => {
            if k.flags.contains(ConnFlags::CO_FL_ERROR) {
                Some(HCHK_STATUS_L4CON)
            } else {
                expired.then_some(HCHK_STATUS_L4TOUT)
            }
        }
        Some(k) if k.flags.contains(ConnFlags::CO_FL_ERROR) => Some(HCHK_STATUS_SOCKERR),
        Some(_) => expired.then(|| tout.unwrap_or(HCHK_STATUS_L7TOUT)),
    };
    if let Some(st) = status {
        set_server_check_status(w, cid, st, Some(&err_msg));
    }
}

/// The part of tcpcheck_eval_connect() in 2.6 that opens the socket: a non-blocking
/// `connect()` registered in `fdtab[]` with `event_srv_chk_r`/`event_srv_chk_w`, writes
/// wanted to learn when it completes. Returns the `errno` of a connect that failed at
/// once (the check's connection then records the error, without a socket).
pub fn chk_conn_open(w: &mut Haproxy, cid: CheckId, plan: &ConnectPlan) -> Result<(), i32> {
    let mut conn = ChkConn { flags: ConnFlags::CO_FL_WAIT_L4_CONN, ..Default::default() };
    if let Some(h) = &plan.proxy_hdr {
        conn.pre.extend_from_slice(h);
        conn.flags |= ConnFlags::CO_FL_SEND_PROXY;
    }
    if let Some(s) = &plan.socks4 {
        conn.pre.extend_from_slice(s);
        conn.flags |= ConnFlags::CO_FL_SOCKS4_SEND | ConnFlags::CO_FL_SOCKS4_RECV;
    }
    let res = open_socket(w, cid, plan.dst, plan.linger);
    let Some(c) = chk(w, cid) else { return Err(libc::EINVAL) };
    match res {
        Ok(fd) => {
            conn.fd = Some(fd);
            c.conn = Some(conn);
            Ok(())
        }
        Err(e) => {
            conn.flags |= ConnFlags::CO_FL_ERROR;
            conn.errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            let errno = conn.errno;
            c.conn = Some(conn);
            Err(errno)
        }
    }
}

fn open_socket(w: &mut Haproxy, cid: CheckId, dst: SocketAddr, linger: bool) -> io::Result<Fd> {
    let stream = mio::net::TcpStream::connect(dst)?;
    let _ = stream.set_nodelay(true);
    let sock = Sock::Tcp(stream);
    if !linger && w.proxies[cid.srv.px.idx()].options.contains(ProxyOptions::PR_O_TCP_NOLING) {
        sock.set_nolinger();
    }
    let fd = w.fdtab.fd_insert(
        w.poller.registry(),
        sock,
        FdOwner::Check(cid),
        [Some(event_srv_chk_r), Some(event_srv_chk_w)],
        FdState::FD_STCONN,
    )?;
    w.fdtab.fd_want_send(fd);
    Ok(fd)
}

/// Records a connection error (`CO_FL_ERROR` and `errno`).
fn conn_error(w: &mut Haproxy, cid: CheckId, e: &io::Error) {
    if let Some(k) = chk(w, cid).and_then(|c| c.conn.as_mut()) {
        k.flags |= ConnFlags::CO_FL_ERROR;
        k.errno = e.raw_os_error().unwrap_or(libc::EIO);
    }
}

/// Writes `data` on the check's socket: how many bytes went, `Ok(0)` when the socket is
/// full (waiting for the poller), the error otherwise.
fn sock_send(w: &mut Haproxy, fd: Fd, data: &[u8]) -> io::Result<usize> {
    let Some(sock) = w.fdtab.sock(fd) else { return Err(io::ErrorKind::NotConnected.into()) };
    // Bounded: each pass sends at least one byte, or leaves.
    let mut sent = 0;
    while sent < data.len() {
        match sock.send(&data[sent..]) {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                w.fdtab.fd_cant_send(fd);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// What [`chk_conn_send`] did with `check.bo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChkSend {
    /// All of it went.
    Done,
    /// The rest must wait for the socket.
    Partial,
    /// An error, recorded on the connection (or no connection).
    Failed,
}

/// The mux's `snd_buf` for a check (2.6): write what `check.bo` holds.
pub fn chk_conn_send(w: &mut Haproxy, cid: CheckId) -> ChkSend {
    let Some(c) = chk(w, cid) else { return ChkSend::Failed };
    let Some(fd) = c.conn.as_ref().and_then(|k| k.fd) else { return ChkSend::Failed };
    let bo = std::mem::take(&mut c.bo);
    match sock_send(w, fd, &bo) {
        Ok(n) => match chk(w, cid) {
            Some(c) => {
                c.bo = bo[n..].to_vec();
                if c.bo.is_empty() { ChkSend::Done } else { ChkSend::Partial }
            }
            None => ChkSend::Failed,
        },
        Err(e) => {
            conn_error(w, cid, &e);
            ChkSend::Failed
        }
    }
}

/// The mux's `rcv_buf` for a check (2.6): read into `check.bi` until the socket is
/// drained (edge-triggered polling: the next event needs a drained socket), the server
/// closed, or `bufsize` is reached. Returns the bytes read; the end of the stream and
/// errors are recorded on the connection.
pub fn chk_conn_recv(w: &mut Haproxy, cid: CheckId, bufsize: usize) -> usize {
    let Some(c) = chk(w, cid) else { return 0 };
    let Some(k) = c.conn.as_ref() else { return 0 };
    let Some(fd) = k.fd else { return 0 };
    if k.flags.intersects(ConnFlags::CO_FL_EOS | ConnFlags::CO_FL_ERROR) {
        return 0;
    }
    let mut bi = std::mem::take(&mut c.bi);
    let mut total = 0;
    let mut buf = [0u8; 4096];
    let mut err = None;
    let mut eos = false;
    while bi.len() < bufsize {
        let room = (bufsize - bi.len()).min(buf.len());
        let Some(sock) = w.fdtab.sock(fd) else { break };
        match sock.recv(&mut buf[..room]) {
            Ok(0) => {
                eos = true;
                break;
            }
            Ok(n) => {
                bi.extend_from_slice(&buf[..n]);
                total += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                w.fdtab.fd_cant_recv(fd);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    if let Some(e) = &err {
        conn_error(w, cid, e);
    }
    if let Some(c) = chk(w, cid) {
        c.bi = bi;
        if eos && let Some(k) = c.conn.as_mut() {
            k.flags |= ConnFlags::CO_FL_EOS;
        }
    }
    total
}

/// Closes the check's connection, if any (`sc_destroy` in 2.6, `fd_delete` in 1.5).
fn chk_conn_close(w: &mut Haproxy, cid: CheckId) {
    let Some(k) = chk(w, cid).and_then(|c| c.conn.take()) else { return };
    if let Some(fd) = k.fd {
        w.fdtab.fd_delete(fd);
    }
}

/// Polls the check's socket for what the check waits for: writes while connecting or
/// with data pending, reads when an expect waits for data.
fn chk_conn_update_poll(w: &mut Haproxy, cid: CheckId) {
    let Some(k) = chk(w, cid).and_then(|c| c.conn.as_ref()) else { return };
    let Some(fd) = k.fd else { return };
    let want_w = k.flags.intersects(
        ConnFlags::CO_FL_WAIT_L4_CONN | ConnFlags::CO_FL_SEND_PROXY | ConnFlags::CO_FL_SOCKS4_SEND,
    ) || k.sub.contains(SubEvents::SUB_RETRY_SEND);
    let want_r = k.flags.contains(ConnFlags::CO_FL_SOCKS4_RECV) || k.sub.contains(SubEvents::SUB_RETRY_RECV);
    let failed = k.flags.contains(ConnFlags::CO_FL_ERROR);
    if want_w && !failed {
        w.fdtab.fd_want_send(fd);
    } else {
        w.fdtab.fd_stop_send(fd);
    }
    if want_r && !failed {
        w.fdtab.fd_want_recv(fd);
    } else {
        w.fdtab.fd_stop_recv(fd);
    }
}

/// The check settings of one `server` line (and its `default-server` lines) while they
/// are read: what check.c's `srv_parse_*` keyword parsers (2.6) store in `srv->check` and
/// `srv->agent`, turned into checks by `init_srv_check` and `init_srv_agent_check`.
#[derive(Clone, Debug)]
pub struct SrvCheckCfg {
    /// `check` / `no-check`.
    pub do_check: bool,
    /// `agent-check` / `no-agent-check`.
    pub do_agent: bool,
    /// `inter` (ms).
    pub inter: u64,
    /// `fastinter`.
    pub fastinter: Option<u64>,
    /// `downinter`.
    pub downinter: Option<u64>,
    /// `rise`.
    pub rise: u32,
    /// `fall`.
    pub fall: u32,
    /// `port`: the health check's port.
    pub port: u16,
    /// `addr`: the health check's address.
    pub addr: Option<std::net::IpAddr>,
    /// `agent-port`.
    pub agent_port: u16,
    /// `agent-addr` (`SRV_F_AGENTADDR` when set explicitly).
    pub agent_addr: Option<std::net::IpAddr>,
    /// `agent-addr` was given (an `addr` does not replace it then).
    pub agent_addr_set: bool,
    /// `agent-inter`.
    pub agent_inter: Option<u64>,
    /// `agent-send`.
    pub agent_send: Option<String>,
    /// `check-send-proxy` / `no-check-send-proxy`.
    pub send_proxy: bool,
    /// `check-via-socks4`.
    pub via_socks4: bool,
}

impl Default for SrvCheckCfg {
    fn default() -> Self {
        SrvCheckCfg {
            do_check: false,
            do_agent: false,
            inter: 2000,
            fastinter: None,
            downinter: None,
            rise: 2,
            fall: 3,
            port: 0,
            addr: None,
            agent_port: 0,
            agent_addr: None,
            agent_addr_set: false,
            agent_inter: None,
            agent_send: None,
            send_proxy: false,
            via_socks4: false,
        }
    }
}

/// The largest `rise` or `fall` a server may have.
const MAX_RISE_FALL: u32 = 1_000_000;

/// `atol()` stored in an `int`, as HAProxy reads `rise` and `fall`: an optional sign, the
/// digits, and the value truncated to 32 bits.
pub(crate) fn atol_i32(s: &str) -> i32 {
    let t = s.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |acc, d| acc.wrapping_mul(10).wrapping_add(i64::from(d - b'0')));
    (if neg { v.wrapping_neg() } else { v }) as i32
}

/// A server delay keyword (`inter`, `fastinter`, `downinter`, `agent-inter`).
fn srv_parse_delay(kw: &str, v: Option<&String>, srv: &str) -> Result<u64, String> {
    use crate::haproxy::standard::{TIME_MAX_MS, TimeErr, parse_time_err};
    let v = v.ok_or_else(|| format!("'{kw}' expects a delay as argument."))?;
    // Divergence: HAProxy 2.6 names 'agent-inter' in the bad-character message whichever
    // of the four was given; haflow names the one given.
    let t = parse_time_err(v).map_err(|e| match e {
        TimeErr::Char(c) => format!("unexpected character '{c}' in '{kw}' argument of server {srv}."),
        TimeErr::Overflow => format!(
            "timer overflow in argument <{v}> to <{kw}> of server {srv}, maximum value is {TIME_MAX_MS} ms (~24.8 days)."
        ),
    })?;
    // A zero interval would run checks back to back.
    if t == 0 {
        return Err(format!("invalid value 0 for argument '{kw}' of server {srv}."));
    }
    Ok(t)
}

/// An address for `addr` / `agent-addr` (the port, if any, is not used).
fn srv_parse_ip(kw: &str, v: Option<&String>) -> Result<std::net::IpAddr, String> {
    let v = v.filter(|v| !v.is_empty()).ok_or_else(|| format!("'{kw}' expects <ipv4|ipv6> as argument."))?;
    let host = match v.parse::<SocketAddr>() {
        Ok(sa) => return Ok(sa.ip()),
        Err(_) => v.rsplit_once(':').filter(|(h, _)| !h.contains(':')).map_or(v.as_str(), |(h, _)| h),
    };
    host.trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| format!("'{kw}' : invalid address: '{v}'"))
}

/// check.c's server keyword parsers (2.6): `check`, `no-check`, `inter`, `fastinter`,
/// `downinter`, `rise`, `fall`, `port`, `addr`, `agent-check`, `no-agent-check`,
/// `agent-port`, `agent-addr`, `agent-inter`, `agent-send`, `check-send-proxy`,
/// `no-check-send-proxy`, `check-via-socks4`, `check-proto`. `None` when `args[i]` is
/// another keyword; otherwise how many words it took, or its error.
pub fn srv_parse_check_kw(
    c: &mut SrvCheckCfg,
    srv: &str,
    args: &[String],
    i: usize,
) -> Option<Result<usize, String>> {
    let a = args[i].as_str();
    let val = args.get(i + 1);
    let r = (|| -> Result<usize, String> {
        match a {
            "check" => c.do_check = true,
            "no-check" => c.do_check = false,
            "agent-check" => c.do_agent = true,
            "no-agent-check" => c.do_agent = false,
            "check-send-proxy" => c.send_proxy = true,
            "no-check-send-proxy" => c.send_proxy = false,
            "check-via-socks4" => c.via_socks4 = true,
            "inter" => {
                c.inter = srv_parse_delay(a, val, srv)?;
                return Ok(2);
            }
            "fastinter" => {
                c.fastinter = Some(srv_parse_delay(a, val, srv)?);
                return Ok(2);
            }
            "downinter" => {
                c.downinter = Some(srv_parse_delay(a, val, srv)?);
                return Ok(2);
            }
            "agent-inter" => {
                c.agent_inter = Some(srv_parse_delay(a, val, srv)?);
                return Ok(2);
            }
            "rise" | "fall" => {
                let v = val.ok_or_else(|| format!("'{a}' expects an integer argument."))?;
                // HAProxy reads the value with atol() into an int: anything that is not a
                // positive number (once truncated to 32 bits) is refused.
                let n = atol_i32(v);
                if n <= 0 {
                    return Err(format!("'{a}' has to be > 0."));
                }
                // Divergence: bounded so that `rise + fall` (a check's health range)
                // cannot overflow; HAProxy takes any int.
                let n = n as u32;
                if n > MAX_RISE_FALL {
                    return Err(format!("'{a}' of server {srv} must not exceed {MAX_RISE_FALL} ({n})."));
                }
                if a == "rise" {
                    c.rise = n;
                } else {
                    c.fall = n;
                }
                return Ok(2);
            }
            "port" | "agent-port" => {
                let v = val
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("'{a}' expects a port number as argument."))?;
                let p = u16::try_from(atol_i32(v))
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("'{a}' expects a valid port number (1..65535), got '{v}'."))?;
                if a == "port" {
                    c.port = p;
                } else {
                    c.agent_port = p;
                }
                return Ok(2);
            }
            "addr" => {
                let ip = srv_parse_ip(a, val)?;
                c.addr = Some(ip);
                if !c.agent_addr_set {
                    c.agent_addr = Some(ip);
                }
                return Ok(2);
            }
            "agent-addr" => {
                let v = val
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("'{a}' expects an address as argument."))?;
                let ip = v
                    .parse()
                    .map_err(|_| format!("parsing agent-addr failed. Check if '{v}' is correct address."))?;
                c.agent_addr = Some(ip);
                c.agent_addr_set = true;
                return Ok(2);
            }
            "agent-send" => {
                let v = val
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("'{a}' expects a string as argument."))?;
                c.agent_send = Some(v.clone());
                return Ok(2);
            }
            "check-proto" => {
                let v = val.filter(|v| !v.is_empty()).ok_or_else(|| format!("'{a}' : missing value"))?;
                if v != "h1" {
                    return Err(format!("'{a}' :  unknown MUX protocol '{v}'"));
                }
                return Ok(2);
            }
            _ => return Err(String::new()),
        }
        Ok(1)
    })();
    match r {
        Err(e) if e.is_empty() => None,
        r => Some(r),
    }
}

/// check.c:init_srv_check() and init_srv_agent_check() in 2.6 for a server of the
/// configuration: its health check (`check`) and agent check (`agent-check`), not yet
/// given their rules (`check_proxy_tcpcheck` does, once the backend is read). A server
/// added at runtime (`dynamic`) only sends a PROXY header with an explicit
/// `check-send-proxy`.
pub fn init_srv_checks(srv: &mut Server, c: &SrvCheckCfg, dynamic: bool) {
    srv.check_rise = c.rise;
    srv.check = None;
    srv.agent = None;
    if c.do_check {
        srv.flags.insert(SrvFlags::SRV_CHECKED);
        let mut k = CheckState::new(c.inter, c.rise, c.fall);
        k.fastinter = c.fastinter;
        k.downinter = c.downinter;
        k.port = c.port;
        k.addr = c.addr;
        // Without a check port or address, checks speak like the traffic: the server's
        // PROXY protocol too.
        k.send_proxy = c.send_proxy
            || (!dynamic
                && c.port == 0
                && c.addr.is_none()
                && srv.pp_opts.intersects(SrvPpOpts::SRV_PP_V1 | SrvPpOpts::SRV_PP_V2));
        k.via_socks4 = c.via_socks4;
        k.state = ChkSt::CHK_ST_CONFIGURED | ChkSt::CHK_ST_ENABLED;
        if srv.flags.contains(SrvFlags::SRV_MAINTAIN) {
            k.state |= ChkSt::CHK_ST_PAUSED;
        }
        srv.check = Some(k);
    } else {
        srv.flags.remove(SrvFlags::SRV_CHECKED);
    }
    if c.do_agent {
        // `DEF_AGENT_RISETIME` and `DEF_AGENT_FALLTIME`: one answer decides.
        let mut k = CheckState::new(c.agent_inter.unwrap_or(2000), 1, 1);
        k.port = c.agent_port;
        k.addr = c.agent_addr;
        k.state = ChkSt::CHK_ST_CONFIGURED | ChkSt::CHK_ST_ENABLED | ChkSt::CHK_ST_AGENT;
        k.rules = std::sync::Arc::new(crate::haproxy::tcpcheck::agent_check_rules(c.agent_send.as_deref()));
        srv.agent = Some(k);
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

/// checks.c:event_srv_chk_w() in 1.5.0 (`cb[DIR_WR]` of a check connection): see the
/// connection complete, send what must precede the check's data (a PROXY header, a SOCKS4
/// request), then let the check go on (`wake_srv_chk`).
pub fn event_srv_chk_w(w: &mut Haproxy, fd: Fd) {
    let Some(FdOwner::Check(cid)) = w.fdtab.get(fd).map(|e| e.owner) else { return };
    let span = tracing::debug_span!(names::EVENT_SRV_CHK_W, server = %srv_fullname(w, cid.srv), check = %cid.kind, fd = fd.0);
    let _g = span.enter();
    if !chk_conn_progress(w, cid, fd) {
        return;
    }
    if let Some(k) = chk(w, cid).and_then(|c| c.conn.as_mut()) {
        k.sub.remove(SubEvents::SUB_RETRY_SEND);
    }
    wake_srv_chk(w, cid);
}

/// What both callbacks do first (`conn_fd_handler` in 2.6): see whether `connect()`
/// completed, then send what must precede the check's data (a PROXY header, a SOCKS4
/// request). False while the connection is still being established, with nothing to say.
fn chk_conn_progress(w: &mut Haproxy, cid: CheckId, fd: Fd) -> bool {
    let Some(k) = chk(w, cid).and_then(|c| c.conn.as_ref()) else { return false };
    if k.flags.contains(ConnFlags::CO_FL_WAIT_L4_CONN) {
        let Some(sock) = w.fdtab.sock(fd) else { return false };
        match connect_state(sock) {
            ConnState::Pending => {
                w.fdtab.fd_cant_send(fd);
                return false;
            }
            ConnState::Failed(e) => conn_error(w, cid, &e),
            ConnState::Connected => {
                if let Some(e) = w.fdtab.get_mut(fd) {
                    e.state = FdState::FD_STREADY;
                }
                if let Some(k) = chk(w, cid).and_then(|c| c.conn.as_mut()) {
                    k.flags.remove(ConnFlags::CO_FL_WAIT_L4_CONN);
                }
            }
        }
    }
    // The handshake bytes (PROXY header, SOCKS4 request) go first.
    if let Some(k) = chk(w, cid).and_then(|c| c.conn.as_mut())
        && !k.flags.intersects(ConnFlags::CO_FL_ERROR | ConnFlags::CO_FL_WAIT_L4_CONN)
        && !k.pre.is_empty()
    {
        let pre = std::mem::take(&mut k.pre);
        match sock_send(w, fd, &pre) {
            Ok(n) => {
                if let Some(k) = chk(w, cid).and_then(|c| c.conn.as_mut()) {
                    k.pre = pre[n..].to_vec();
                    if k.pre.is_empty() {
                        k.flags.remove(ConnFlags::CO_FL_SEND_PROXY | ConnFlags::CO_FL_SOCKS4_SEND);
                    }
                }
            }
            Err(e) => conn_error(w, cid, &e),
        }
    }
    true
}

/// checks.c:event_srv_chk_r() in 1.5.0 (`cb[DIR_RD]` of a check connection): finish a
/// SOCKS4 handshake if one is in progress, then let the check read (`wake_srv_chk`; the
/// expect rule reads in `tcpcheck_eval_recv`).
pub fn event_srv_chk_r(w: &mut Haproxy, fd: Fd) {
    let Some(FdOwner::Check(cid)) = w.fdtab.get(fd).map(|e| e.owner) else { return };
    let span = tracing::debug_span!(names::EVENT_SRV_CHK_R, server = %srv_fullname(w, cid.srv), check = %cid.kind, fd = fd.0);
    let _g = span.enter();
    if !chk_conn_progress(w, cid, fd) {
        return;
    }
    let Some(k) = chk(w, cid).and_then(|c| c.conn.as_ref()) else { return };
    if k.flags.contains(ConnFlags::CO_FL_SOCKS4_RECV) && !k.flags.contains(ConnFlags::CO_FL_SOCKS4_SEND) {
        // conn_recv_socks4_proxy_response() (2.6): 8 bytes, the second one 0x5A.
        let have = k.socks_rsp.len();
        let mut buf = [0u8; 8];
        let Some(sock) = w.fdtab.sock(fd) else { return };
        match sock.recv(&mut buf[..8 - have]) {
            Ok(0) => conn_error(w, cid, &io::ErrorKind::ConnectionReset.into()),
            Ok(n) => {
                if let Some(k) = chk(w, cid).and_then(|c| c.conn.as_mut()) {
                    k.socks_rsp.extend_from_slice(&buf[..n]);
                    if k.socks_rsp.len() == 8 {
                        if k.socks_rsp[1] == 0x5A {
                            k.flags.remove(ConnFlags::CO_FL_SOCKS4_RECV);
                        } else {
                            k.flags |= ConnFlags::CO_FL_ERROR;
                            k.errno = libc::ECONNREFUSED;
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                w.fdtab.fd_cant_recv(fd);
                return;
            }
            Err(e) => conn_error(w, cid, &e),
        }
    }
    if let Some(k) = chk(w, cid).and_then(|c| c.conn.as_mut()) {
        k.sub.remove(SubEvents::SUB_RETRY_RECV);
    }
    wake_srv_chk(w, cid);
}

/// checks.c:wake_srv_chk() in 1.5.0: the connection moved; run the check's rules on, and
/// wake the check task when the check has a result, failed, or must reconnect.
pub fn wake_srv_chk(w: &mut Haproxy, cid: CheckId) {
    let _sp =
        tracing::debug_span!(names::WAKE_SRV_CHK, server = %srv_fullname(w, cid.srv), check = %cid.kind)
            .entered();
    let Some(c) = chk(w, cid) else { return };
    if c.result != CheckResult::CHK_RES_UNKNOWN {
        return;
    }
    let ret = tcpcheck_main(w, cid);
    let Some(c) = chk(w, cid) else { return };
    let failed = c.conn.as_ref().is_none_or(|k| k.flags.contains(ConnFlags::CO_FL_ERROR));
    let task = c.task;
    if failed {
        chk_report_conn_err(w, cid, 0, false);
    }
    let done = chk(w, cid).is_some_and(|c| c.result != CheckResult::CHK_RES_UNKNOWN);
    if (failed || done || ret == -1)
        && let Some(t) = task
    {
        w.sched.task_wakeup(t, TaskState::TASK_WOKEN_IO);
    }
    chk_conn_update_poll(w, cid);
}

/// Moves the task's timer past `now` in steps of `inter` (`while (tick_is_expired(...))
/// t->expire = tick_add(t->expire, inter)`), keeping the check's phase.
fn chk_skip_expired(w: &mut Haproxy, t: TaskId, inter: u64) {
    let now = w.clock.now_ms;
    let Some(task) = w.sched.get_mut(t) else { return };
    let mut exp = task.expire.unwrap_or(now);
    while exp <= now {
        exp = tick_add(exp, inter.max(1));
    }
    task.expire = Some(exp);
}

/// `srv_getinter(check)`: the interval that suits the check's health now.
fn getinter(w: &Haproxy, cid: CheckId) -> u64 {
    let srv = w.server(cid.srv);
    srv_check(srv, cid.kind).map_or(1, |c| c.srv_getinter(srv.flags.contains(SrvFlags::SRV_RUNNING)))
}

/// checks.c:process_chk() in 1.5.0 (`process_chk_conn` in 2.6; `t->process` of a check
/// task). With no check in progress, when the timer is due: start one (`tcpcheck_main`).
/// With a check in progress: report a connection error or a timeout not seen yet, close a
/// connection a `connect` rule replaces, and once the check has a result, close its
/// connection, tell the server, and schedule the next check `inter` later (`fastinter`
/// while the health moves, `downinter` once fully DOWN, when set: `srv_getinter`).
pub fn process_chk(w: &mut Haproxy, t: TaskId) -> TaskRun {
    let Some(task) = w.sched.get(t) else { return TaskRun::Freed };
    let TaskContext::Check(cid) = task.context else { return TaskRun::Alive };
    let span = tracing::debug_span!(
        names::PROCESS_CHK,
        server = %srv_fullname(w, cid.srv),
        check = %cid.kind,
        woken = %task.state,
        result = tracing::field::Empty,
        health = tracing::field::Empty,
    );
    let _g = span.enter();
    process_chk_run(w, t, cid);
    if let Some(c) = chk(w, cid) {
        span.record("result", c.status.info());
        span.record("health", c.health);
    }
    TaskRun::Alive
}

/// The body of `process_chk`.
fn process_chk_run(w: &mut Haproxy, t: TaskId, cid: CheckId) {
    let now = w.clock.now_ms;
    let mut expired = tick_is_expired(w.sched.get(t).and_then(|t| t.expire), now);
    let stopped = w.proxies[cid.srv.px.idx()].state == ProxyState::PR_STSTOPPED;
    let Some(c) = chk(w, cid) else { return };
    if !c.state.contains(ChkSt::CHK_ST_INPROGRESS) {
        if !expired {
            return; // woken up too early
        }
        // No checks for a stopped proxy, nor for a check disabled or paused.
        if c.state & (ChkSt::CHK_ST_ENABLED | ChkSt::CHK_ST_PAUSED) != ChkSt::CHK_ST_ENABLED || stopped {
            let inter = c.inter;
            chk_skip_expired(w, t, inter);
            return;
        }
        set_server_check_status(w, cid, HchkStatus::HCHK_STATUS_START, None);
        if let Some(c) = chk(w, cid) {
            c.state |= ChkSt::CHK_ST_INPROGRESS;
            c.current_step = None;
        }
        tcpcheck_main(w, cid);
        expired = false;
    }
    if chk(w, cid).is_some_and(|c| c.result == CheckResult::CHK_RES_UNKNOWN) {
        let failed = chk(w, cid)
            .and_then(|c| c.conn.as_ref())
            .is_some_and(|k| k.flags.contains(ConnFlags::CO_FL_ERROR));
        if failed || expired {
            chk_report_conn_err(w, cid, 0, expired);
        } else {
            if chk(w, cid).is_some_and(|c| c.state.contains(ChkSt::CHK_ST_CLOSE_CONN)) {
                if let Some(c) = chk(w, cid) {
                    c.state.remove(ChkSt::CHK_ST_CLOSE_CONN);
                }
                chk_conn_close(w, cid);
                tcpcheck_main(w, cid);
            }
            if chk(w, cid).is_some_and(|c| c.result == CheckResult::CHK_RES_UNKNOWN) {
                chk_conn_update_poll(w, cid);
                return; // not expired: wait again
            }
        }
    }
    // The check is complete or aborted.
    chk_conn_close(w, cid);
    let Some(c) = chk(w, cid) else { return };
    c.current_step = None;
    c.vars.clear();
    c.bi = Vec::new();
    c.bo = Vec::new();
    c.state.remove(ChkSt::CHK_ST_INPROGRESS | ChkSt::CHK_ST_CLOSE_CONN);
    match c.result {
        CheckResult::CHK_RES_FAILED => check_notify_failure(w, cid),
        CheckResult::CHK_RES_CONDPASS => check_notify_stopping(w, cid),
        CheckResult::CHK_RES_PASSED => check_notify_success(w, cid),
        _ => {}
    }
    let inter = getinter(w, cid);
    let now = w.clock.now_ms;
    if let Some(task) = w.sched.get_mut(t) {
        task.expire = Some(tick_add(now, inter));
    }
    let base = chk(w, cid).map_or(inter, |c| c.inter);
    chk_skip_expired(w, t, base);
    w.sched.task_queue(t);
}

/// checks.c:start_checks() in 1.5.0: one task per configured check (health and agent),
/// whose first run is spread over the checking interval (the smallest `inter` of at least
/// one second, or the check's own) by its position, so that checks do not all leave
/// together. Returns an error (already printed as an ALERT) when a task cannot be
/// allocated.
pub fn start_checks(w: &mut Haproxy) -> Result<(), String> {
    let span = tracing::info_span!(names::START_CHECKS, checks = tracing::field::Empty);
    let _g = span.enter();
    let mut checked: Vec<(CheckId, u64)> = Vec::new();
    for (pi, p) in w.proxies.iter().enumerate() {
        for (si, s) in p.servers.enumerate() {
            let sid = ServerId { px: ProxyId::from(pi), idx: si as u32 };
            for kind in [CheckKind::Health, CheckKind::Agent] {
                if srv_check(s, kind).is_some_and(|c| c.state.contains(ChkSt::CHK_ST_CONFIGURED)) {
                    let cid = CheckId { srv: sid, kind };
                    checked.push((cid, getinter(w, cid)));
                }
            }
        }
    }
    let nbchk = checked.len() as u64;
    if nbchk == 0 {
        return Ok(());
    }
    let mininter = checked.iter().map(|&(_, i)| i).filter(|&i| i >= SRV_CHK_INTER_THRES).min().unwrap_or(0);
    let now = w.clock.now_ms;
    for (srvpos, &(cid, inter)) in checked.iter().enumerate() {
        let spread = mininter.max(inter);
        if let Err(msg) = start_check_task(w, cid, tick_add(now, spread * srvpos as u64 / nbchk)) {
            // Give back the tasks already created: the caller exits.
            stop_checks(w);
            return Err(msg);
        }
    }
    span.record("checks", nbchk);
    Ok(())
}

/// check.c:start_check_task() in 2.6: the task of one check, first run at `first`. Also
/// used for a server added at runtime (`add server ... check`), whose check then waits
/// for `enable health` as 2.6's does.
pub fn start_check_task(w: &mut Haproxy, cid: CheckId, first: Tick) -> Result<(), String> {
    let Some(t) = w.sched.task_new(process_chk, TaskContext::Check(cid)) else {
        let msg = format!("Starting [{}] check: out of memory.", srv_fullname(w, cid.srv).replace('/', ":"));
        print_diag(w, "ALERT", &msg);
        return Err(msg);
    };
    if let Some(task) = w.sched.get_mut(t) {
        task.expire = Some(first);
    }
    w.sched.task_queue(t);
    if let Some(c) = chk(w, cid) {
        c.task = Some(t);
    }
    Ok(())
}

/// check.c:check_purge() in 2.6: closes the check's connection and frees its buffers and
/// its task, for a stop or a server being deleted.
pub fn check_purge(w: &mut Haproxy, cid: CheckId) {
    chk_conn_close(w, cid);
    let Some(c) = chk(w, cid) else { return };
    c.bi = Vec::new();
    c.bo = Vec::new();
    c.state.remove(ChkSt::CHK_ST_INPROGRESS);
    if let Some(t) = c.task.take() {
        w.sched.task_free(t);
    }
}

/// Frees every check's connection and task (what `deinit()` does in haproxy.c): used by a
/// hard stop, and when a soft stop ends, so nothing is left in `fdtab[]` or `pool2_task`.
pub fn stop_checks(w: &mut Haproxy) {
    for pi in 0..w.proxies.len() {
        for si in 0..w.proxies[pi].servers.slots() {
            for kind in [CheckKind::Health, CheckKind::Agent] {
                check_purge(w, CheckId { srv: ServerId { px: ProxyId::from(pi), idx: si as u32 }, kind });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let refused = check_reason(
            HchkStatus::HCHK_STATUS_L4CON,
            None,
            "Connection refused at initial connection step of tcp-check",
            0,
        );
        let down = format!("Server be_tcp/s1 is DOWN{refused}{}.", server_counts(true, 0, 0, 0, 0, 0));
        assert_eq!(
            down,
            "Server be_tcp/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused at initial connection step of tcp-check\", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
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
            server_counts(true, 0, 1, 2, 3, 0),
            ". 0 active and 1 backup servers left. Running on backup. 2 sessions active, 3 requeued, 0 remaining in queue"
        );
        assert_eq!(chunk_asciiencode("a \"b\" <c>\r"), "a <22>b<22> <3C>c<3E><0D>");
        assert_eq!(health_status(0, 2, 3, 1), "0/2 DOWN");
        assert_eq!(health_status(4, 2, 3, 1), "3/3 UP");
        assert_eq!(health_status(4, 2, 3, 0), "3/3 DRAIN");
    }
}
