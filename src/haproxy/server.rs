//! Servers: one `server` line of a backend, its state and its counters.
//!
//! Reproduces `server.c` and `include/types/server.h` (1.5-dev8). A server is usable when
//! it is running (health checks, if any, say UP), not in maintenance and has a non-zero
//! weight. `cur_sess` counts the connections it serves now; when it reaches `maxconn`,
//! new sessions wait in its queue (`pendconns`) until `process_srv_queue` hands them a
//! slot.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::haproxy::checks::{CheckResult, HchkStatus};
use crate::haproxy::time::Tick;
use crate::ids::{Fd, SessionId, TaskId};

bitflags::bitflags! {
    /// `srv->state` (`SRV_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct SrvFlags: u32 {
        /// The server is up (or has no check).
        const SRV_RUNNING  = 0x0001;
        /// A backup server, used only when no active server is left.
        const SRV_BACKUP   = 0x0002;
        /// Health-checked (`check` keyword).
        const SRV_CHECKED  = 0x0010;
        /// In maintenance (`disabled`, `disable server`, `set server ... state maint`).
        const SRV_MAINTAIN = 0x0080;
        /// Draining (`set server ... state drain`): no new traffic from load balancing.
        const SRV_DRAIN    = 0x0100;
    }
}

/// Health-check settings and state of one server (the `check_*` fields of 1.5-dev8's
/// `struct server`, `struct check` in later versions). Owned by `checks.rs`.
#[derive(Clone, Debug)]
pub struct CheckState {
    /// `inter`: time between two checks, ms.
    pub inter: u64,
    /// `fastinter`: time between checks while the health is moving (neither fully UP nor
    /// fully DOWN), ms; `inter` when unset.
    pub fastinter: Option<u64>,
    /// `downinter`: time between checks while fully DOWN, ms; `inter` when unset.
    pub downinter: Option<u64>,
    /// `rise`: consecutive successes to go UP.
    pub rise: u32,
    /// `fall`: consecutive failures to go DOWN.
    pub fall: u32,
    /// `health`: 0..rise+fall-1; the server is UP when `health >= rise`.
    pub health: u32,
    /// `check_status`: result of the last check as HAProxy names it (`L4OK`, `L4CON`,
    /// `L7OK`, `L7STS`...). `START` is never stored: it only begins a check.
    pub status: HchkStatus,
    /// `check_code`: status code of the last HTTP check, if any.
    pub code: Option<u16>,
    /// `check_desc`: detail of the last result ("Connection refused", a reason phrase).
    pub info: String,
    /// `check_duration`: duration of the last check, ms.
    pub duration: u64,
    /// `counters.failed_checks`: checks that failed while the health was above 0.
    pub failed: u64,
    /// `result`: what the check in progress found so far (`SRV_CHK_*`).
    pub result: CheckResult,
    /// `s->check`: the task running `process_chk`, created by `start_checks`.
    pub task: Option<TaskId>,
    /// `curfd`: the connection of the check in progress; `None` between checks.
    pub fd: Option<Fd>,
    /// `check_start`: when the check in progress started (for `duration`).
    pub start: Option<Tick>,
    /// `check_data`: what the server answered so far (at most `CHK_DATA_SIZE` bytes).
    pub data: Vec<u8>,
    /// Bytes of the HTTP check request already sent (a short write resumes there).
    pub sent: usize,
}

impl CheckState {
    /// A server's check state from its `server` line: UP, about to go down on the first
    /// failure (`health = rise`), as HAProxy starts every checked server.
    pub fn new(inter: u64, rise: u32, fall: u32) -> CheckState {
        CheckState {
            inter,
            fastinter: None,
            downinter: None,
            rise,
            fall,
            health: rise,
            status: HchkStatus::HCHK_STATUS_INI,
            code: None,
            info: String::new(),
            duration: 0,
            failed: 0,
            result: CheckResult::SRV_CHK_UNKNOWN,
            task: None,
            fd: None,
            start: None,
            data: Vec::new(),
            sent: 0,
        }
    }

    /// server.h:srv_getinter() in 1.5-dev8: the interval before the next check. A fully
    /// UP server is checked every `inter`; a fully DOWN one every `downinter`; one whose
    /// state is changing every `fastinter`, to settle sooner.
    pub fn srv_getinter(&self, running: bool) -> u64 {
        if self.health == self.rise + self.fall - 1 {
            self.inter
        } else if !running && self.health == 0 {
            self.downinter.unwrap_or(self.inter)
        } else {
            self.fastinter.unwrap_or(self.inter)
        }
    }
}

/// Per-server counters, as `show stat` prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SrvCounters {
    /// Sessions that used this server.
    pub cum_sess: u64,
    /// Bytes received from clients through this server's sessions.
    pub bytes_in: u64,
    /// Bytes sent to clients from this server.
    pub bytes_out: u64,
    /// Failed connection attempts.
    pub failed_conns: u64,
    /// Invalid or aborted responses.
    pub failed_resp: u64,
    /// Sessions aborted by the client during data.
    pub cli_aborts: u64,
    /// Sessions aborted by the server during data.
    pub srv_aborts: u64,
    /// Connection retries.
    pub retries: u64,
    /// Redispatches away from this server.
    pub redispatches: u64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub rsp: [u64; 6],
    /// Times the server went DOWN.
    pub down_trans: u64,
    /// Times the load balancer picked this server.
    pub lbconn: u64,
}

/// `struct server`.
#[derive(Clone, Debug)]
pub struct Server {
    /// `puid`: numeric id within the backend (`sid` in `show stat`), 1-based.
    pub puid: u32,
    /// The name on the `server` line.
    pub name: String,
    /// Address to connect to.
    pub addr: SocketAddr,
    /// `SRV_*` state flags.
    pub flags: SrvFlags,
    /// `weight` as configured or set at runtime (`uweight`).
    pub uweight: u32,
    /// `maxconn`: concurrent connections allowed (0: unlimited).
    pub maxconn: u32,
    /// `maxqueue`: queued sessions allowed (0: unlimited).
    pub maxqueue: u32,
    /// Connections open to this server now (`scur`).
    pub cur_sess: u32,
    /// Sessions holding a slot on this server, connected or about to connect; compared
    /// with `maxconn` to decide whether new sessions must queue.
    pub served: u32,
    /// Highest `cur_sess` seen.
    pub cur_sess_max: u32,
    /// Sessions waiting for a slot on this server.
    pub pendconns: VecDeque<SessionId>,
    /// Highest queue length seen.
    pub nbpend_max: u32,
    /// Health checks, when `check` is set.
    pub check: Option<CheckState>,
    /// Counters.
    pub counters: SrvCounters,
    /// Seconds since start at the last state change (`lastchg`).
    pub last_change: u64,
    /// Smooth weighted round-robin position (`lb_fwrr`).
    pub rr_current: i64,
    /// Line of the `server` keyword.
    pub line: usize,
}

impl Server {
    /// A server with HAProxy's defaults (weight 1, no limits, running).
    pub fn new(puid: u32, name: &str, addr: SocketAddr, line: usize) -> Server {
        Server {
            puid,
            name: name.to_string(),
            addr,
            flags: SrvFlags::SRV_RUNNING,
            uweight: 1,
            maxconn: 0,
            maxqueue: 0,
            cur_sess: 0,
            served: 0,
            cur_sess_max: 0,
            pendconns: VecDeque::new(),
            nbpend_max: 0,
            check: None,
            counters: SrvCounters::default(),
            last_change: 0,
            rr_current: 0,
            line,
        }
    }

    /// True for `backup` servers.
    pub fn is_backup(&self) -> bool {
        self.flags.contains(SrvFlags::SRV_BACKUP)
    }

    /// `srv_is_usable()`: may receive new sessions from the load balancer.
    pub fn is_usable(&self) -> bool {
        self.flags.contains(SrvFlags::SRV_RUNNING)
            && !self.flags.intersects(SrvFlags::SRV_MAINTAIN | SrvFlags::SRV_DRAIN)
            && self.uweight > 0
    }

    /// True when `maxconn` is reached: new sessions must queue.
    pub fn is_full(&self) -> bool {
        self.maxconn > 0 && self.served >= self.maxconn
    }

    /// The status `show stat` and the TUI print: UP, DOWN, MAINT, DRAIN, or a transition.
    pub fn status(&self) -> String {
        if self.flags.contains(SrvFlags::SRV_MAINTAIN) {
            return "MAINT".into();
        }
        let Some(c) = &self.check else {
            return if self.flags.contains(SrvFlags::SRV_DRAIN) { "DRAIN".into() } else { "no check".into() };
        };
        let up = self.flags.contains(SrvFlags::SRV_RUNNING);
        if self.flags.contains(SrvFlags::SRV_DRAIN) && up {
            return "DRAIN".into();
        }
        if up {
            if c.health < c.rise + c.fall - 1 {
                format!("UP {}/{}", c.health - c.rise + 1, c.fall)
            } else {
                "UP".into()
            }
        } else if c.health > 0 {
            format!("DOWN {}/{}", c.health, c.rise)
        } else {
            "DOWN".into()
        }
    }
}

/// Prints and logs an administrative server message, as HAProxy's `ha_warning` +
/// `send_log(s->proxy, ...)` do (stderr only when not `quiet`, and not while a UI or a
/// test harness owns the standard streams).
fn srv_admin_log(w: &mut crate::haproxy::haproxy::Haproxy, px: usize, level: u8, msg: &str) {
    if !w.global.quiet && !w.logger.mute_std {
        eprintln!("[WARNING]  ({}) : {msg}", std::process::id());
    }
    let targets = w.proxies[px].logs.clone();
    crate::haproxy::log::send_log(w, &targets, level, msg);
}

/// server.c:srv_adm_set_maint() (HAProxy 2.6; `disable server` in 1.5's dumpstats.c):
/// put the server in maintenance. The load balancer stops choosing it at once (it is no
/// longer `is_usable`); sessions already on it finish normally.
pub fn srv_adm_set_maint(w: &mut crate::haproxy::haproxy::Haproxy, id: crate::ids::ServerId) {
    use crate::haproxy::log::{LOG_EMERG, LOG_NOTICE};
    let px = id.px.idx();
    let Some(srv) = w.proxies[px].servers.get_mut(id.idx as usize) else { return };
    if srv.flags.contains(SrvFlags::SRV_MAINTAIN) {
        return;
    }
    srv.flags.insert(SrvFlags::SRV_MAINTAIN);
    srv.last_change = w.clock.elapsed().as_secs();
    let (name, cur, queued) = (srv.name.clone(), srv.cur_sess, srv.pendconns.len());
    let p = &w.proxies[px];
    let msg = format!(
        "Server {}/{name} is going DOWN for maintenance. {} active and {} backup servers left. {cur} sessions active, 0 requeued, {queued} remaining in queue.",
        p.name,
        p.srv_act(),
        p.srv_bck()
    );
    let none_left = p.srv_act() + p.srv_bck() == 0;
    let be_name = p.name.clone();
    srv_admin_log(w, px, LOG_NOTICE, &msg);
    if none_left {
        w.proxies[px].counters.down_trans += 1;
        srv_admin_log(w, px, LOG_EMERG, &format!("backend {be_name} has no server available!"));
    }
}

/// server.c:srv_adm_set_ready() (HAProxy 2.6; `enable server` in 1.5's dumpstats.c):
/// take the server out of maintenance, and give its free slots to queued sessions.
pub fn srv_adm_set_ready(w: &mut crate::haproxy::haproxy::Haproxy, id: crate::ids::ServerId) {
    let px = id.px.idx();
    let Some(srv) = w.proxies[px].servers.get_mut(id.idx as usize) else { return };
    if !srv.flags.contains(SrvFlags::SRV_MAINTAIN) {
        return;
    }
    srv.flags.remove(SrvFlags::SRV_MAINTAIN);
    srv.last_change = w.clock.elapsed().as_secs();
    let name = srv.name.clone();
    let msg = format!("Server {}/{name} is UP/READY (leaving forced maintenance).", w.proxies[px].name);
    srv_admin_log(w, px, crate::haproxy::log::LOG_NOTICE, &msg);
    crate::haproxy::queue::process_srv_queue(w, id);
}
