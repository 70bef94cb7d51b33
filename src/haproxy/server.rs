//! Servers: one `server` line of a backend, its state and its counters.
//!
//! Reproduces `server.c` and `include/types/server.h` (1.5-dev8). A server is usable when
//! it is running (health checks, if any, say UP), not in maintenance and has a non-zero
//! weight. `cur_sess` counts the connections it serves now; when it reaches `maxconn`,
//! new sessions wait in its queue (`pendconns`) until `process_srv_queue` hands them a
//! slot. `srv_adm_set_maint`, `srv_adm_set_ready` and `srv_adm_set_drain` are the
//! administrative changes, one each for the stats socket, the statistics page and the
//! terminal UI alike. `srv_parse_kws` reads the settings after `server <name> <addr>`, for
//! the configuration and for servers added at runtime (`add server`, 2.6), which
//! `dumpstats.rs` attaches to and detaches from their backend's `ServerList`.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::haproxy::checks::{
    CheckResult, ChkConn, ChkSt, HchkStatus, SrvCheckCfg, init_srv_checks, redistribute_pending,
    server_counts, set_backend_down, srv_parse_check_kw,
};
use crate::haproxy::errors::print_message;
use crate::haproxy::fd::FdOwner;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::log::{LOG_ALERT, LOG_NOTICE, send_log};
use crate::haproxy::proxy::{ProxyMode, ReuseMode};
use crate::haproxy::queue::process_srv_queue;
use crate::haproxy::standard::{ParsedAddr, str2sa_range};
use crate::haproxy::task::TaskRun;
use crate::haproxy::tcpcheck::{SmpVal, TcpcheckRules};
use crate::haproxy::time::{Tick, tick_add, tick_first, tick_is_expired};
use crate::ids::{Fd, ServerId, SessionId, TaskId};
use crate::trace::names;

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

bitflags::bitflags! {
    /// `srv->pp_opts` (1.5.0): which PROXY protocol header opens each connection to the
    /// server (`send-proxy`, `send-proxy-v2`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct SrvPpOpts: u16 {
        /// Version 1, the text line.
        const SRV_PP_V1 = 0x0001;
        /// Version 2, binary.
        const SRV_PP_V2 = 0x0002;
        /// `proxy-v2-options ssl` (and the `cert-*`, `ssl-cipher` ones): a `PP2_TYPE_SSL`
        /// TLV saying how the client connected. haflow's clients never use TLS, so it
        /// always says "not TLS" and the sub-TLVs of the options below never appear.
        const SRV_PP_V2_SSL = 0x0004;
        /// `cert-cn`.
        const SRV_PP_V2_SSL_CN = 0x0008;
        /// `cert-key`.
        const SRV_PP_V2_SSL_KEY_ALG = 0x0010;
        /// `cert-sig`.
        const SRV_PP_V2_SSL_SIG_ALG = 0x0020;
        /// `ssl-cipher`.
        const SRV_PP_V2_SSL_CIPHER = 0x0040;
        /// `authority`: the authority TLV the client connection's own PROXY header carried.
        const SRV_PP_V2_AUTHORITY = 0x0080;
        /// `crc32c`: a checksum TLV.
        const SRV_PP_V2_CRC32C = 0x0100;
        /// `unique-id`: the request's unique id (`unique-id-format`).
        const SRV_PP_V2_UNIQUE_ID = 0x0200;
    }
}

/// `SRV_UWGHT_MAX`: the highest weight a server may be given.
pub const SRV_UWGHT_MAX: u32 = 256;

/// Settings and state of one check of a server: its health check or its agent check (the
/// `check_*` fields of 1.5-dev8's `struct server`, `struct check` since 1.5.0). Owned by
/// `checks.rs` and `tcpcheck.rs`.
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
    /// `status`: result of the last check as HAProxy names it (`L4OK`, `L4CON`, `L7OK`,
    /// `L7STS`...). `START` is never stored: it only begins a check.
    pub status: HchkStatus,
    /// `code`: the code the last check's answer carried (HTTP status, MySQL or LDAP error).
    pub code: Option<u16>,
    /// `desc`: detail of the last result ("Connection refused", a reason phrase).
    pub info: String,
    /// `duration`: duration of the last check, ms.
    pub duration: u64,
    /// `counters.failed_checks`: checks that failed while the health was above 0.
    pub failed: u64,
    /// `result`: what the check in progress found so far (`CHK_RES_*`).
    pub result: CheckResult,
    /// `state`: `CHK_ST_*` (configured, enabled, in progress, agent...).
    pub state: ChkSt,
    /// `task`: the task running `process_chk`, created by `start_checks`.
    pub task: Option<TaskId>,
    /// `start`: when the check in progress started (for `duration`).
    pub start: Option<Tick>,
    /// `port`: where checks connect (`port` keyword, `agent-port`); 0: the server's port.
    pub port: u16,
    /// `addr`: where checks connect (`addr` keyword, `agent-addr`); the server's otherwise.
    pub addr: Option<std::net::IpAddr>,
    /// `send_proxy`: open check connections with a PROXY header (`check-send-proxy`).
    pub send_proxy: bool,
    /// `via_socks4`: check through the server's `socks4` proxy (`check-via-socks4`).
    pub via_socks4: bool,
    /// `tcpcheck_rules`: what the check sends and expects.
    pub rules: std::sync::Arc<TcpcheckRules>,
    /// `current_step`: the rule the check stopped at (waiting), as an index in `rules`.
    pub current_step: Option<usize>,
    /// The connection of the check in progress; `None` between checks.
    pub conn: Option<ChkConn>,
    /// `bi`: what the server sent and the current expect has not consumed.
    pub bi: Vec<u8>,
    /// `bo`: what the current send rule has not written yet.
    pub bo: Vec<u8>,
    /// `vars`: the check's variables (`check.*`), preset from the rules at each start.
    pub vars: Vec<(String, SmpVal)>,
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
            result: CheckResult::CHK_RES_UNKNOWN,
            state: ChkSt::empty(),
            task: None,
            start: None,
            port: 0,
            addr: None,
            send_proxy: false,
            via_socks4: false,
            rules: Default::default(),
            current_step: None,
            conn: None,
            bi: Vec::new(),
            bo: Vec::new(),
            vars: Vec::new(),
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
    /// Header or start-line rewrites that did not fit in the buffer (`wrew`).
    pub failed_rewrites: u64,
    /// Times the load balancer picked this server.
    pub lbconn: u64,
    /// Connections opened to this server (`connect`).
    pub connect: u64,
    /// Requests sent over an idle connection reused (`reuse`).
    pub reuse: u64,
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
    /// The PROXY protocol header sent on each new connection, if any.
    pub pp_opts: SrvPpOpts,
    /// `weight` as configured or set at runtime (`uweight`).
    pub uweight: u32,
    /// `iweight`: the weight of the `server` line, which `set weight N%` scales and
    /// `get weight` reports as "initial".
    pub iweight: u32,
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
    /// The agent check, when `agent-check` is set.
    pub agent: Option<CheckState>,
    /// `rise` as configured, `check` or not: the health `show servers state` prints for a
    /// server without checks (HAProxy keeps `check.health = rise` for every server).
    pub check_rise: u32,
    /// `socks4 <addr>`: the SOCKS4 proxy checks go through with `check-via-socks4`.
    pub socks4: Option<SocketAddr>,
    /// Counters.
    pub counters: SrvCounters,
    /// Seconds since start at the last state change (`lastchg`).
    pub last_change: u64,
    /// Smooth weighted round-robin position (`lb_fwrr`).
    pub rr_current: i64,
    /// `pool-max-conn`: idle connections kept for reuse (`max_idle_conns`; -1: no limit,
    /// 0: none kept).
    pub max_idle_conns: i32,
    /// `pool-purge-delay`: how often the idle connections beyond the estimated need are
    /// halved, ms (0: none kept).
    pub pool_purge_delay: u64,
    /// `idle_conns` (2.6): idle connections that carried one request only, each with
    /// the hash of what it was opened with (`conn_calculate_hash`).
    pub idle_conns: VecDeque<IdleConn>,
    /// `safe_conns` (2.6): idle connections that already carried more than one request,
    /// so the server is known to keep them alive.
    pub safe_conns: VecDeque<IdleConn>,
    /// `pool-low-conn` (`low_idle_conns`): idle connections always welcome beyond the
    /// estimated need.
    pub low_idle_conns: u32,
    /// `max_used_conns`: most connections in use at once since the last purge.
    pub max_used_conns: u32,
    /// `est_need_conns`: connections estimated needed, from the past purge periods.
    pub est_need_conns: u32,
    /// `idle_node.key`: when `srv_cleanup_idle_conns` next looks at this server; `None`
    /// while it has no idle connection.
    pub idle_purge_exp: Option<Tick>,
    /// Line of the `server` keyword.
    pub line: usize,
    /// `cookie VALUE`: the persistence cookie's value naming this server.
    pub cookie: Option<String>,
    /// `non-stick`: `stick store-*` rules never store this server.
    pub non_stick: bool,
    /// `SRV_F_NON_PURGEABLE` (2.6): the configuration points at this server (`use-server`,
    /// `track`, a `srv_*` sample argument), so `del server` refuses to remove it.
    pub non_purgeable: bool,
    /// `track [backend/]server` as written (resolved by `check_config_validity`).
    pub track_name: Option<String>,
    /// `srv->track` (1.5): the server whose state this one follows.
    pub track: Option<ServerId>,
}

/// One connection in a server's idle list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleConn {
    /// Its fd (owned by `FdOwner::SrvIdle`).
    pub fd: Fd,
    /// `conn->hash_node->hash`: what it was opened with (target, PROXY header).
    pub hash: u64,
}

impl Server {
    /// A server with HAProxy's defaults (weight 1, no limits, running).
    pub fn new(puid: u32, name: &str, addr: SocketAddr, line: usize) -> Server {
        Server {
            puid,
            name: name.to_string(),
            addr,
            flags: SrvFlags::SRV_RUNNING,
            pp_opts: SrvPpOpts::empty(),
            uweight: 1,
            iweight: 1,
            maxconn: 0,
            maxqueue: 0,
            cur_sess: 0,
            served: 0,
            cur_sess_max: 0,
            pendconns: VecDeque::new(),
            nbpend_max: 0,
            check: None,
            agent: None,
            check_rise: 2,
            socks4: None,
            counters: SrvCounters::default(),
            last_change: 0,
            rr_current: 0,
            max_idle_conns: -1,
            pool_purge_delay: 5000,
            idle_conns: VecDeque::new(),
            safe_conns: VecDeque::new(),
            low_idle_conns: 0,
            max_used_conns: 0,
            est_need_conns: 0,
            idle_purge_exp: None,
            line,
            cookie: None,
            non_stick: false,
            non_purgeable: false,
            track_name: None,
            track: None,
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

    /// `curr_idle_conns`: connections in the idle lists.
    pub fn curr_idle_conns(&self) -> usize {
        self.idle_conns.len() + self.safe_conns.len()
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

/// server.c:_srv_parse_kw() in 2.6, for each keyword after `server <name> <addr>` (on a
/// `server` line, a `default-server` line or `add server`), with HAProxy 2.6's messages
/// (the caller adds where and which server). The health-check keywords are check.c's
/// (`checks::srv_parse_check_kw`). `dynamic`: the server is added at runtime, where 2.6
/// refuses the keywords it marks as not `dynamic_ok`. `mode` is the backend's: a TCP
/// backend has no multiplexer to choose with `proto`. Keywords haflow does not implement
/// are accepted with a warning pushed to `warnings`.
pub fn srv_parse_kws(
    srv: &mut Server,
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    dynamic: bool,
    mode: ProxyMode,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let name = srv.name.clone();
    let mut chk = SrvCheckCfg::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if dynamic && SRV_KW_NOT_DYNAMIC.contains(&a) {
            return Err(format!("'{a}' option is not accepted for dynamic server"));
        }
        if let Some(r) = srv_parse_check_kw(&mut chk, &name, args, i) {
            i += r?;
            continue;
        }
        let val = args.get(i + 1);
        let int = |kw: &str| -> Result<u32, String> {
            val.and_then(|v| v.parse().ok()).ok_or_else(|| format!("'{kw}' expects an integer argument."))
        };
        match a {
            "weight" => {
                let w = int("weight")?;
                if w > SRV_UWGHT_MAX {
                    return Err(format!("weight of server {name} is not within 0 and 256 ({w})."));
                }
                srv.uweight = w;
                srv.iweight = w;
                i += 2;
            }
            "maxconn" => {
                srv.maxconn = int("maxconn")?;
                i += 2;
            }
            "maxqueue" => {
                srv.maxqueue = int("maxqueue")?;
                i += 2;
            }
            "backup" => {
                srv.flags.insert(SrvFlags::SRV_BACKUP);
                i += 1;
            }
            "disabled" => {
                srv.flags.insert(SrvFlags::SRV_MAINTAIN);
                i += 1;
            }
            "enabled" => {
                srv.flags.remove(SrvFlags::SRV_MAINTAIN);
                i += 1;
            }
            "socks4" => {
                let v = val.filter(|v| !v.is_empty()).ok_or("'socks4' expects <addr>:<port> as argument.")?;
                match str2sa_range(v, false, env).map_err(|e| format!("'socks4' : {e}"))? {
                    ParsedAddr::Inet(ip, port, _) if ip.is_ipv4() && port != 0 => {
                        srv.socks4 = Some(SocketAddr::new(ip, port));
                    }
                    _ => return Err(format!("'socks4' : expects an IPv4 address and a port, got '{v}'")),
                }
                i += 2;
            }
            "proto" => {
                let v = val.filter(|v| !v.is_empty()).ok_or("'proto' : missing value")?;
                // connection.c:conn_get_best_mux_entry() in 2.6: a TCP backend only has the
                // pass-through multiplexer; HTTP ones speak HTTP/1 (haflow's) or HTTP/2.
                let usable = match mode {
                    ProxyMode::PR_MODE_HTTP => matches!(v.as_str(), "h1" | "h2" | "fcgi" | "none"),
                    _ => v == "none",
                };
                if !usable {
                    return Err("MUX protocol is not usable for server.".into());
                }
                if !matches!(v.as_str(), "h1" | "none") {
                    warnings.push(format!(
                        "server '{name}' option 'proto {v}' is not implemented by haflow; it speaks HTTP/1.1."
                    ));
                }
                i += 2;
            }
            "pool-max-conn" => {
                let v = val
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("'{a}' expects <value> as argument."))?;
                srv.max_idle_conns = crate::haproxy::checks::atol_i32(v);
                if srv.max_idle_conns < -1 {
                    return Err(format!("'{a}' must be >= -1"));
                }
                i += 2;
            }
            "pool-low-conn" => {
                let v = val
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("'{a}' expects <value> as argument."))?;
                srv.low_idle_conns = crate::haproxy::checks::atol_i32(v).max(0) as u32;
                i += 2;
            }
            "max-reuse" => {
                // 2.6 checks it, and only its HTTP/2 and FastCGI connections honour it:
                // HTTP/1 ones, the only ones haflow has, are reused without a count.
                val.filter(|v| !v.is_empty()).ok_or_else(|| format!("'{a}' expects <value> as argument."))?;
                i += 2;
            }
            "pool-purge-delay" => {
                let v = val
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("'{a}' expects <value> as argument."))?;
                srv.pool_purge_delay = crate::haproxy::standard::parse_time_err(v).map_err(|e| {
                    e.alert(v, a, |c| format!("unexpected character '{c}' in argument to <{a}>."))
                })?;
                i += 2;
            }
            "proxy-v2-options" => {
                // srv_parse_proxy_v2_options() in 2.6: a comma-separated list.
                for o in val.map_or("", String::as_str).split(',') {
                    srv.pp_opts |= match o {
                        "ssl" => SrvPpOpts::SRV_PP_V2_SSL,
                        "cert-cn" => SrvPpOpts::SRV_PP_V2_SSL | SrvPpOpts::SRV_PP_V2_SSL_CN,
                        "cert-key" => SrvPpOpts::SRV_PP_V2_SSL | SrvPpOpts::SRV_PP_V2_SSL_KEY_ALG,
                        "cert-sig" => SrvPpOpts::SRV_PP_V2_SSL | SrvPpOpts::SRV_PP_V2_SSL_SIG_ALG,
                        "ssl-cipher" => SrvPpOpts::SRV_PP_V2_SSL | SrvPpOpts::SRV_PP_V2_SSL_CIPHER,
                        "authority" => SrvPpOpts::SRV_PP_V2_AUTHORITY,
                        "crc32c" => SrvPpOpts::SRV_PP_V2_CRC32C,
                        "unique-id" => SrvPpOpts::SRV_PP_V2_UNIQUE_ID,
                        _ => return Err(format!("'{o}' : proxy v2 option not implemented")),
                    };
                }
                i += 2;
            }
            "id" | "slowstart" | "observe" | "error-limit" | "on-error" | "init-addr" | "source" | "sni"
            | "alpn" | "resolvers" => {
                warnings.push(format!("server '{name}' option '{a}' is not implemented by haflow; ignored."));
                i += 2;
            }
            "send-proxy" => {
                srv.pp_opts.insert(SrvPpOpts::SRV_PP_V1);
                i += 1;
            }
            "send-proxy-v2" => {
                srv.pp_opts.insert(SrvPpOpts::SRV_PP_V2);
                i += 1;
            }
            "cookie" => {
                let v = val.filter(|v| !v.is_empty()).ok_or("'cookie' expects <value> as argument.")?;
                srv.cookie = Some(v.clone());
                i += 2;
            }
            "non-stick" => {
                srv.non_stick = true;
                i += 1;
            }
            "track" if dynamic => {
                return Err("'track' is not implemented by haflow for dynamic servers".into());
            }
            "track" => {
                let v =
                    val.filter(|v| !v.is_empty()).ok_or("'track' expects [<proxy>/]<server> as argument.")?;
                srv.track_name = Some(v.clone());
                i += 2;
            }
            "ssl" | "check-ssl" | "verify" | "tfo" | "redir" | "allow-0rtt" => {
                warnings.push(format!("server '{name}' option '{a}' is not implemented by haflow; ignored."));
                i += if matches!(a, "verify" | "redir") { 2 } else { 1 };
            }
            other => return Err(format!("unknown keyword '{other}'")),
        }
    }
    init_srv_checks(srv, &chk, dynamic);
    if srv.track_name.is_some() && srv.check.is_some() {
        return Err("unable to enable checks and tracking at the same time!".into());
    }
    Ok(())
}

/// The server keywords HAProxy 2.6 refuses on `add server` (`dynamic_ok` is 0 in the
/// keyword lists of server.c and check.c).
const SRV_KW_NOT_DYNAMIC: &[&str] = &[
    "cookie",
    "init-addr",
    "log-proto",
    "max-reuse",
    "namespace",
    "non-stick",
    "redir",
    "resolve-net",
    "resolve-opts",
    "resolve-prefer",
    "resolvers",
    "stick",
    "socks4",
    "no-agent-check",
    "no-check",
    "no-check-send-proxy",
];

/// `backend/server`, as HAProxy's messages name a server.
pub fn srv_fullname(w: &Haproxy, sid: ServerId) -> String {
    format!("{}/{}", w.proxies[sid.px.idx()].name, w.server(sid).name)
}

/// Reports an administrative state change as HAProxy 2.6 does: `ha_warning` on stderr
/// (unless `quiet`, or a UI or a test owns the standard streams), then `send_log` to the
/// backend's log targets.
fn report_state_change(w: &mut Haproxy, sid: ServerId, level: u8, msg: &str) {
    if !w.global.quiet && !w.logger.mute_std {
        print_message("WARNING", msg);
    }
    let targets = w.proxies[sid.px.idx()].logs.clone();
    send_log(w, &targets, level, msg);
}

/// `srv->trackers` (1.5): the servers whose `track` names `sid`, found by a scan (only
/// when a state changes).
pub fn srv_trackers(w: &Haproxy, sid: ServerId) -> Vec<ServerId> {
    w.proxies
        .iter()
        .flat_map(|p| p.servers.enumerate().map(move |(i, s)| (ServerId { px: p.id, idx: i as u32 }, s)))
        .filter(|(_, s)| s.track == Some(sid))
        .map(|(id, _)| id)
        .collect()
}

/// server.h:srv_adm_set_maint() in 1.5.0, that is server.c:srv_set_admin_flag(FMAINT) then
/// srv_clr_admin_flag(FDRAIN): `disable server`, `set server ... state maint` and the
/// UI's `d`. The server leaves load balancing: no longer running, its health checks pause
/// (health 0; `process_chk` skips a server in maintenance), the sessions in its queue go
/// back to the backend (with `option redispatch`), and the backend is marked down when it
/// was its last usable server. Sessions already on it keep going.
/// A server that was already down only says it "was DOWN and now enters maintenance"
/// (2.6's srv_update_status()), at `LOG_NOTICE`.
/// The servers tracking it follow it into maintenance.
/// Divergence: one `SRV_MAINTAIN` flag stands for HAProxy's forced and inherited ones, so
/// a tracking server leaves maintenance with the server it tracks even when it was also
/// put there itself.
pub fn srv_adm_set_maint(w: &mut Haproxy, sid: ServerId) {
    if w.server(sid).flags.contains(SrvFlags::SRV_MAINTAIN) {
        return;
    }
    let px = sid.px;
    let prev = w.proxies[px.idx()].srv_act() + w.proxies[px.idx()].srv_bck();
    let flags = w.server(sid).flags;
    let was_running = flags.contains(SrvFlags::SRV_RUNNING);
    // HAProxy logs a server that was draining (`srv_was_stopping`) as a notice.
    let level = if was_running && !flags.contains(SrvFlags::SRV_DRAIN) { LOG_ALERT } else { LOG_NOTICE };
    let now = w.clock.now_ms.0 / 1000;
    srv_cleanup_connections(w, sid);
    let srv = w.server_mut(sid);
    srv.flags.insert(SrvFlags::SRV_MAINTAIN);
    srv.flags.remove(SrvFlags::SRV_RUNNING | SrvFlags::SRV_DRAIN);
    srv.last_change = now;
    if let Some(c) = srv.check.as_mut() {
        c.health = 0;
        c.state |= ChkSt::CHK_ST_PAUSED;
    }
    if was_running {
        srv.counters.down_trans += 1;
    }
    let xferred = redistribute_pending(w, sid);
    let p = &w.proxies[px.idx()];
    let srv = w.server(sid);
    let backup = if srv.is_backup() { "Backup " } else { "" };
    let msg = if was_running {
        format!(
            "{backup}Server {} is going DOWN for maintenance{}.",
            srv_fullname(w, sid),
            server_counts(true, p.srv_act(), p.srv_bck(), srv.cur_sess, xferred, srv.pendconns.len())
        )
    } else {
        format!("{backup}Server {} was DOWN and now enters maintenance.", srv_fullname(w, sid))
    };
    report_state_change(w, sid, level, &msg);
    let p = &w.proxies[px.idx()];
    if prev > 0 && p.srv_act() + p.srv_bck() == 0 {
        set_backend_down(w, px);
    }
    for t in srv_trackers(w, sid) {
        srv_adm_set_maint(w, t);
    }
}

/// The "leaving maintenance" part of server.c:srv_clr_admin_flag(FMAINT) (1.5.0): running
/// again, checks resume from `rise` (one failure takes it down again), and it takes what
/// waits for its backend. Returns how many sessions it took.
fn srv_leave_maint(w: &mut Haproxy, sid: ServerId) -> usize {
    let now = w.clock.now_ms.0 / 1000;
    let srv = w.server_mut(sid);
    srv.flags.remove(SrvFlags::SRV_MAINTAIN);
    srv.flags.insert(SrvFlags::SRV_RUNNING);
    srv.last_change = now;
    if let Some(c) = srv.check.as_mut() {
        c.health = c.rise;
        c.state.remove(ChkSt::CHK_ST_PAUSED);
    }
    let px = &w.proxies[sid.px.idx()];
    if w.server(sid).is_backup() && px.srv_act() > 0 || !w.server(sid).is_usable() {
        0
    } else {
        process_srv_queue(w, sid)
    }
}

/// server.h:srv_adm_set_ready() in 1.5.0, that is server.c:srv_clr_admin_flag() of FDRAIN
/// then FMAINT: `enable server`, `set server ... state ready` and the UI's `e`.
pub fn srv_adm_set_ready(w: &mut Haproxy, sid: ServerId) {
    let flags = w.server(sid).flags;
    if flags.contains(SrvFlags::SRV_MAINTAIN) {
        w.server_mut(sid).flags.remove(SrvFlags::SRV_DRAIN);
        srv_leave_maint(w, sid);
        let msg = format!("Server {} is UP/READY (leaving forced maintenance).", srv_fullname(w, sid));
        report_state_change(w, sid, LOG_NOTICE, &msg);
        for t in srv_trackers(w, sid) {
            srv_adm_set_ready(w, t);
        }
    } else if flags.contains(SrvFlags::SRV_DRAIN) {
        w.server_mut(sid).flags.remove(SrvFlags::SRV_DRAIN);
        if w.server(sid).is_usable() {
            process_srv_queue(w, sid);
        }
        let msg = format!("Server {} is UP (leaving forced drain).", srv_fullname(w, sid));
        report_state_change(w, sid, LOG_NOTICE, &msg);
    }
}

/// server.h:srv_adm_set_drain() in 1.5.0, that is server.c:srv_set_admin_flag(FDRAIN): no
/// new traffic from load balancing; a server in maintenance leaves it in drain mode.
pub fn srv_adm_set_drain(w: &mut Haproxy, sid: ServerId) {
    let flags = w.server(sid).flags;
    if flags.contains(SrvFlags::SRV_MAINTAIN) {
        w.server_mut(sid).flags.insert(SrvFlags::SRV_DRAIN);
        srv_leave_maint(w, sid);
        let name = srv_fullname(w, sid);
        report_state_change(
            w,
            sid,
            LOG_NOTICE,
            &format!("Server {name} is UP/DRAIN (leaving forced maintenance)."),
        );
        report_state_change(w, sid, LOG_NOTICE, &format!("Server {name} remains in forced drain mode."));
    } else if !flags.contains(SrvFlags::SRV_DRAIN) {
        w.server_mut(sid).flags.insert(SrvFlags::SRV_DRAIN);
        w.server_mut(sid).last_change = w.clock.now_ms.0 / 1000;
        let p = &w.proxies[sid.px.idx()];
        let srv = w.server(sid);
        let msg = format!(
            "Server {} enters drain state{}.",
            srv_fullname(w, sid),
            server_counts(false, p.srv_act(), p.srv_bck(), srv.cur_sess, 0, srv.pendconns.len())
        );
        report_state_change(w, sid, LOG_NOTICE, &msg);
    }
}

/// server.c:server_parse_weight_change_request() in 2.6: `N` (0..256) or `N%` of the
/// initial weight. Returns the error, or an empty answer.
/// Divergence: no "Backend is using a static LB algorithm" refusal; `N%` above 100000 is
/// refused where 2.6 caps it at 25600; a negative weight or trailing garbage gets the
/// "preceded by garbage" answer instead of 2.6's range or "Trailing garbage" one.
pub fn server_parse_weight_change_request(w: &mut Haproxy, sid: ServerId, v: &str) -> String {
    let (digits, pct) = match v.strip_suffix('%') {
        Some(d) => (d, true),
        None => (v, false),
    };
    let num = digits.bytes().take_while(u8::is_ascii_digit).count();
    if num == 0 || num != digits.len() {
        return "Empty weight string empty or preceded by garbage".into();
    }
    let n: u64 = digits.parse().unwrap_or(u64::MAX);
    let weight = if pct {
        if n > 100_000 {
            return "Relative weight must be positive.\n".into();
        }
        (u64::from(w.server(sid).iweight) * n / 100).min(256)
    } else {
        if n > 256 {
            return "Absolute weight can only be between 0 and 256 inclusive.\n".into();
        }
        n
    };
    let was_usable = w.server(sid).is_usable();
    w.server_mut(sid).uweight = weight as u32;
    if !was_usable && w.server(sid).is_usable() {
        // A server that can take traffic again takes what waits for its backend.
        process_srv_queue(w, sid);
    }
    String::new()
}

/// server.c:server_parse_maxconn_change_request() in 2.6: an agent's `maxconn:N`.
/// Returns the error, or an empty answer.
pub fn server_parse_maxconn_change_request(w: &mut Haproxy, sid: ServerId, v: &str) -> String {
    if v.is_empty() {
        return "Require <maxconn>.\n".into();
    }
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return "maxconn string empty or preceded by garbage".into();
    }
    if digits != v.len() {
        return "Trailing garbage in maxconn string".into();
    }
    let was_full = w.server(sid).is_full();
    w.server_mut(sid).maxconn = v.parse().unwrap_or(u32::MAX);
    if was_full && !w.server(sid).is_full() && w.server(sid).is_usable() {
        process_srv_queue(w, sid);
    }
    String::new()
}

// ---------------------------------------------------------------------------------------
// Idle server connections (2.6): what `http-reuse` draws from.

/// server.c:srv_add_to_idle_list() in 2.6: a server connection whose transaction ended
/// cleanly is offered to its server's idle lists, the safe one when it already carried
/// more than one request (`is_safe`). Refused (the caller closes it) when the backend's
/// `http-reuse` is `never`, `pool-purge-delay` or `pool-max-conn` is 0, the lists hold
/// `pool-max-conn` connections, or the server already has more idle connections than its
/// estimated need. Once taken, the fd belongs to the server (`FdOwner::SrvIdle`) and is
/// watched for a close by the server.
/// Divergence: one thread, so one pair of lists, and no fd-count thresholds
/// (`tune.pool-low-fd-ratio`, `tune.pool-high-fd-ratio`).
pub fn srv_add_to_idle_list(w: &mut Haproxy, sid: ServerId, fd: Fd, hash: u64, is_safe: bool) -> bool {
    let span = tracing::debug_span!(
        names::SRV_ADD_TO_IDLE_LIST,
        server = w.server(sid).name.as_str(),
        fd = fd.0,
        safe = is_safe,
        added = tracing::field::Empty
    );
    let _g = span.enter();
    let reuse = w.proxies[sid.px.idx()].reuse;
    let srv = w.server(sid);
    let idle = srv.curr_idle_conns() as u64;
    let used = u64::from(srv.cur_sess);
    let room = srv.max_idle_conns < 0 || idle < srv.max_idle_conns as u64;
    // The first idle connection of its kind is always welcome; more only while the
    // connections open stay within what the traffic was seen to need.
    let wanted = (srv.safe_conns.is_empty() && (is_safe || srv.idle_conns.is_empty()))
        || used + idle <= used.max(u64::from(srv.est_need_conns)) + u64::from(srv.low_idle_conns);
    let added =
        reuse != ReuseMode::Never && srv.pool_purge_delay > 0 && room && wanted && w.idle_conn_task.is_some();
    span.record("added", added);
    if !added {
        return false;
    }
    let Some(e) = w.fdtab.get_mut(fd) else { return false };
    e.owner = FdOwner::SrvIdle(sid);
    e.cb = [Some(srv_idle_conn_io), None];
    w.fdtab.fd_stop_send(fd);
    w.fdtab.fd_want_recv(fd);
    let now = w.clock.now_ms;
    let srv = w.server_mut(sid);
    let conn = IdleConn { fd, hash };
    if is_safe {
        srv.safe_conns.push_back(conn)
    } else {
        srv.idle_conns.push_back(conn)
    }
    if srv.idle_purge_exp.is_none() {
        let when = tick_add(now, srv.pool_purge_delay);
        srv.idle_purge_exp = Some(when);
        if let Some(t) = w.idle_conn_task {
            w.sched.task_schedule(t, when);
            w.sched.task_queue(t);
        }
    }
    true
}

/// backend.c:conn_backend_get() in 2.6: take an idle connection opened with `hash` off
/// the server's safe list (`is_safe`) or its idle list, then its safe list. The oldest
/// matching one goes first, as 2.6's trees give duplicates in insertion order. The
/// caller gives the fd its new owner.
pub fn conn_backend_get(w: &mut Haproxy, sid: ServerId, is_safe: bool, hash: u64) -> Option<Fd> {
    let span = tracing::debug_span!(
        names::CONN_BACKEND_GET,
        server = w.server(sid).name.as_str(),
        safe = is_safe,
        fd = tracing::field::Empty
    );
    let _g = span.enter();
    let take = |l: &mut VecDeque<IdleConn>| l.iter().position(|c| c.hash == hash).and_then(|i| l.remove(i));
    // Bounded by the lists' length: each turn takes one connection off them.
    loop {
        let srv = w.server_mut(sid);
        let conn = if is_safe {
            take(&mut srv.safe_conns)
        } else {
            take(&mut srv.idle_conns).or_else(|| take(&mut srv.safe_conns))
        };
        if srv.curr_idle_conns() == 0 {
            srv.idle_purge_exp = None;
        }
        let conn = conn?;
        // The server may have closed it a moment ago, its FIN not yet seen by the poller
        // (it comes with this very request's event): never send a request over it.
        // Divergence: 2.6 sends it and retries the request on a new connection.
        if crate::haproxy::stream_sock::idle_conn_alive(w, conn.fd) {
            span.record("fd", conn.fd.0);
            return Some(conn.fd);
        }
        w.fdtab.fd_delete(conn.fd);
    }
}

/// The read callback of an idle server connection (2.6's `h1_io_cb()` on an idle
/// connection): readable means the server closed it, or sent bytes no request asked for.
/// Either way it cannot carry a request any more: it leaves the lists and is closed.
pub fn srv_idle_conn_io(w: &mut Haproxy, fd: Fd) {
    let Some(FdOwner::SrvIdle(sid)) = w.fdtab.get(fd).map(|e| e.owner) else { return };
    if crate::haproxy::stream_sock::idle_conn_alive(w, fd) {
        w.fdtab.fd_cant_recv(fd);
        return;
    }
    let srv = w.server_mut(sid);
    srv.idle_conns.retain(|c| c.fd != fd);
    srv.safe_conns.retain(|c| c.fd != fd);
    if srv.curr_idle_conns() == 0 {
        srv.idle_purge_exp = None;
    }
    w.fdtab.fd_delete(fd);
}

/// server.c:srv_cleanup_idle_conns() in 2.6 (`idle_conn_task`): every `pool-purge-delay`,
/// a server with idle connections closes half of those beyond what the last period needed
/// (the most in use at once, `max_used_conns`, or the running estimate `est_need_conns`),
/// idle ones before safe ones; the estimate moves halfway towards the last period's need.
pub fn srv_cleanup_idle_conns(w: &mut Haproxy, t: TaskId) -> TaskRun {
    let now = w.clock.now_ms;
    let mut next: Option<Tick> = None;
    let mut to_close = Vec::new();
    for p in &mut w.proxies {
        for srv in &mut p.servers {
            let Some(exp) = srv.idle_purge_exp else { continue };
            if !tick_is_expired(Some(exp), now) {
                next = tick_first(next, Some(exp));
                continue;
            }
            let _s = tracing::debug_span!(
                names::SRV_CLEANUP_IDLE_CONNS,
                server = srv.name.as_str(),
                idle = srv.curr_idle_conns(),
                killed = tracing::field::Empty
            )
            .entered();
            let used = i64::from(srv.cur_sess);
            let exceed =
                used + srv.curr_idle_conns() as i64 - i64::from(srv.max_used_conns.max(srv.est_need_conns));
            let to_kill = (exceed / 2 + (exceed & 1)).max(0) as usize;
            srv.est_need_conns = ((srv.est_need_conns + srv.max_used_conns) / 2).max(srv.max_used_conns);
            srv.max_used_conns = srv.cur_sess;
            for _ in 0..to_kill {
                match srv.idle_conns.pop_front().or_else(|| srv.safe_conns.pop_front()) {
                    Some(c) => to_close.push(c.fd),
                    None => break,
                }
            }
            _s.record("killed", to_kill);
            srv.idle_purge_exp = (srv.curr_idle_conns() > 0).then(|| tick_add(now, srv.pool_purge_delay));
            next = tick_first(next, srv.idle_purge_exp);
        }
    }
    for fd in to_close {
        w.fdtab.fd_delete(fd);
    }
    if let Some(task) = w.sched.get_mut(t) {
        task.expire = next;
    }
    TaskRun::Alive
}

/// server.c:srv_cleanup_connections() in 2.6: close every idle connection of a server
/// (it went down or into maintenance: they lead nowhere useful any more).
pub fn srv_cleanup_connections(w: &mut Haproxy, sid: ServerId) {
    let srv = w.server_mut(sid);
    let fds: Vec<Fd> = srv.idle_conns.drain(..).chain(srv.safe_conns.drain(..)).map(|c| c.fd).collect();
    srv.idle_purge_exp = None;
    for fd in fds {
        w.fdtab.fd_delete(fd);
    }
}
