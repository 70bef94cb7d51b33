//! Proxies: the `frontend`, `backend` and `listen` sections, with their settings and counters.
//!
//! Reproduces `proxy.c` and `include/types/proxy.h` (1.5-dev8). A proxy has capabilities:
//! a frontend (`PR_CAP_FE`) accepts connections on its listeners, a backend (`PR_CAP_BE`)
//! owns servers and balances across them, and a `listen` section is both. The analyser
//! masks (`fe_req_ana`, `be_req_ana`, ...) are filled by `check_config_validity` and copied
//! into each session's buffers: they are how a proxy's mode and rules become the list of
//! functions a request goes through.

use std::collections::VecDeque;
use std::fmt;

use crate::haproxy::acl::{AclList, Condition};
use crate::haproxy::buffers::Analysers;
use crate::haproxy::log::{LogFormat, LogTarget};
use crate::haproxy::proto_http::{HttpReqRule, HttpResRule};
use crate::haproxy::server::Server;
use crate::ids::{ListenerId, ProxyId, SessionId};

bitflags::bitflags! {
    /// `px->cap`: what the proxy can do.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct ProxyCap: u8 {
        /// Accepts client connections.
        const PR_CAP_FE = 0x01;
        /// Connects to servers.
        const PR_CAP_BE = 0x02;
        /// Both (`listen`).
        const PR_CAP_LISTEN = 0x03;
    }
}

/// `px->mode`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// `mode tcp`: bytes are forwarded blindly.
    #[default]
    PR_MODE_TCP,
    /// `mode http`: requests and responses go through the HTTP analysers.
    PR_MODE_HTTP,
}

impl fmt::Display for ProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyMode::PR_MODE_TCP => "tcp",
            ProxyMode::PR_MODE_HTTP => "http",
        })
    }
}

/// `px->state`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyState {
    /// Running.
    #[default]
    PR_STREADY,
    /// Listeners paused.
    PR_STPAUSED,
    /// Stopped (soft stop finished, or disabled).
    PR_STSTOPPED,
}

bitflags::bitflags! {
    /// `px->options` (`PR_O_*`): the `option` keywords haflow implements.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct ProxyOptions: u32 {
        /// `option redispatch`: the last retry may go to another server.
        const PR_O_REDISP       = 0x0000_0001;
        /// `option forwardfor`: add `X-Forwarded-For`.
        const PR_O_FWDFOR       = 0x0000_0002;
        /// `option dontlognull`: no log for connections that sent nothing.
        const PR_O_NULLNOLOG    = 0x0000_0004;
        /// `option abortonclose`: abort a queued/connecting request when the client leaves.
        const PR_O_ABRT_CLOSE   = 0x0000_0008;
        /// `option clitcpka`: TCP keep-alive on client connections.
        const PR_O_TCP_CLI_KA   = 0x0000_0010;
        /// `option srvtcpka`: TCP keep-alive on server connections.
        const PR_O_TCP_SRV_KA   = 0x0000_0020;
        /// `option nolinger`: close with RST.
        const PR_O_TCP_NOLING   = 0x0000_0040;
        /// `option logasap`: log before the end of the session.
        const PR_O_LOGASAP      = 0x0000_0080;
        /// `option forwardfor if-none`: keep an existing header.
        const PR_O_FF_IFNONE    = 0x0000_0200;
        /// `option independent-streams`.
        const PR_O_INDEPSTR     = 0x0000_0400;
        /// `option http-no-delay`.
        const PR_O_NODELAY      = 0x0000_0800;
        /// `option log-health-checks`: log every check whose result changes the health
        /// (HAProxy keeps it in `px->options2`).
        const PR_O2_LOGHCHKS    = 0x0000_1000;
    }
}

/// How HTTP connections are kept (`TX_CON_WANT_*`, from the `option http-*` keywords).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum HttpConnMode {
    /// `option http-keep-alive` (the default since 1.5.0): both sides stay open.
    #[default]
    KeepAlive,
    /// `option http-server-close`: the server side closes after each response.
    ServerClose,
    /// `option httpclose`: both sides close after the transaction.
    Close,
}

/// The `timeout` keywords, in milliseconds (`None`: not set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// `timeout client`: client inactivity.
    pub client: Option<u64>,
    /// `timeout client-fin`: client inactivity once half-closed.
    pub client_fin: Option<u64>,
    /// `timeout server`: server inactivity.
    pub server: Option<u64>,
    /// `timeout server-fin`: server inactivity once half-closed.
    pub server_fin: Option<u64>,
    /// `timeout connect`: time to establish the server connection.
    pub connect: Option<u64>,
    /// `timeout queue`: time allowed in a queue (defaults to `timeout connect`).
    pub queue: Option<u64>,
    /// `timeout http-request`: time to receive a complete request head.
    pub httpreq: Option<u64>,
    /// `timeout http-keep-alive`: idle time between two requests.
    pub httpka: Option<u64>,
    /// `timeout check`: extra time allowed for a health-check answer.
    pub check: Option<u64>,
    /// `timeout tunnel`: inactivity once the connection is a tunnel.
    pub tunnel: Option<u64>,
}

/// `balance` algorithms (`BE_LB_ALGO_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BalanceAlgo {
    /// `roundrobin`: weighted, dynamic (lb_fwrr).
    #[default]
    RoundRobin,
    /// `static-rr`: weighted, static map (lb_map).
    StaticRr,
    /// `leastconn`: fewest connections per weight (lb_fwlc).
    LeastConn,
    /// `first`: the first server with a free slot (lb_fas).
    First,
    /// `source`: hash of the client address (lb_map).
    Source,
}

impl fmt::Display for BalanceAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BalanceAlgo::RoundRobin => "roundrobin",
            BalanceAlgo::StaticRr => "static-rr",
            BalanceAlgo::LeastConn => "leastconn",
            BalanceAlgo::First => "first",
            BalanceAlgo::Source => "source",
        })
    }
}

/// `px->lbprm`: the load-balancing state of a backend.
#[derive(Clone, Debug, Default)]
pub struct LbParams {
    /// The configured algorithm.
    pub algo: BalanceAlgo,
    /// Position of the static round-robin / first cursor.
    pub map_pos: usize,
    /// Total effective weight of the usable active servers.
    pub tot_wact: u32,
    /// Total effective weight of the usable backup servers.
    pub tot_wbck: u32,
}

/// A `use_backend NAME if COND` rule (`struct switching_rule`).
#[derive(Clone, Debug)]
pub struct SwitchingRule {
    /// The condition; the rule applies when it matches.
    pub cond: Condition,
    /// Backend name as written (resolved by `check_config_validity`).
    pub be_name: String,
    /// The resolved backend.
    pub be: Option<ProxyId>,
    /// Where the rule was written, for error messages.
    pub line: usize,
}

/// Per-proxy counters (`struct pxcounters`), as `show stat` prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounters {
    /// Connections accepted (frontend).
    pub cum_conn: u64,
    /// Sessions created (frontend) or handled (backend).
    pub cum_sess: u64,
    /// HTTP requests.
    pub cum_req: u64,
    /// Highest `feconn`/`beconn` seen.
    pub conn_max: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    /// Requests denied by rules.
    pub denied_req: u64,
    /// Responses denied by rules.
    pub denied_resp: u64,
    /// Invalid requests.
    pub failed_req: u64,
    /// Failed connection attempts (backend).
    pub failed_conns: u64,
    /// Invalid or aborted responses (backend).
    pub failed_resp: u64,
    /// Sessions aborted by the client during data.
    pub cli_aborts: u64,
    /// Sessions aborted by the server during data.
    pub srv_aborts: u64,
    /// Connection retries.
    pub retries: u64,
    /// Redispatches to another server.
    pub redispatches: u64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub rsp: [u64; 6],
    /// Requests intercepted by haflow itself (return, redirect, deny).
    pub intercepted: u64,
    /// Times the backend had no server left.
    pub down_trans: u64,
}

/// `struct proxy`.
#[derive(Debug)]
pub struct Proxy {
    /// Index in `Haproxy::proxies`.
    pub id: ProxyId,
    /// `uuid`: HAProxy's numeric proxy id (`iid` in `show stat`), 1-based.
    pub uuid: u32,
    /// The section's name.
    pub name: String,
    /// Frontend, backend or both.
    pub cap: ProxyCap,
    /// `mode tcp|http`.
    pub mode: ProxyMode,
    /// Running, paused or stopped.
    pub state: ProxyState,
    /// File and line where the section starts.
    pub conf: (String, usize),
    /// The proxy's listeners (`bind` lines).
    pub listeners: Vec<ListenerId>,
    /// Frontend `maxconn`: concurrent sessions allowed.
    pub maxconn: u32,
    /// Sessions currently on this frontend.
    pub feconn: u32,
    /// Sessions currently on this backend.
    pub beconn: u32,
    /// `default_backend` as written, with its line.
    pub defbe_name: Option<(String, usize)>,
    /// The resolved default backend.
    pub defbe: Option<ProxyId>,
    /// `use_backend` rules in order.
    pub switching_rules: Vec<SwitchingRule>,
    /// Named ACLs declared in this section.
    pub acls: AclList,
    /// `http-request` rules in order.
    pub http_req_rules: Vec<HttpReqRule>,
    /// `http-response` rules in order.
    pub http_res_rules: Vec<HttpResRule>,
    /// `errorfile`s: the whole HTTP response to send instead of HAProxy's own error page
    /// for a status (`p->errmsg[]`); empty closes the connection without an answer.
    pub errmsg: std::collections::BTreeMap<u16, std::sync::Arc<[u8]>>,
    /// The backend's servers, in configuration order.
    pub servers: Vec<Server>,
    /// Load-balancing parameters and state.
    pub lbprm: LbParams,
    /// `retries`: connection attempts after the first.
    pub conn_retries: i32,
    /// `option` flags.
    pub options: ProxyOptions,
    /// HTTP connection mode from `option http-keep-alive|http-server-close|httpclose`.
    pub http_mode: HttpConnMode,
    /// `tcpcheck_rules` and the check options: what this backend's health checks send
    /// and expect (`option httpchk`, `option *-check`, `tcp-check`, `http-check`).
    pub tcpcheck: crate::haproxy::tcpcheck::TcpcheckCfg,
    /// `monitor-uri`: requests for this URI (or path) are answered by the proxy itself.
    pub monitor_uri: Option<String>,
    /// `monitor fail if|unless <cond>` (`mon_fail_cond`): answer 503 instead of 200.
    pub mon_fail_cond: Vec<crate::haproxy::acl::Condition>,
    /// `default-server` settings, as the words that follow the keyword (the `defaults`
    /// section's first, then this section's): every `server` line starts from them.
    pub default_server: Vec<String>,
    /// `timeout` settings.
    pub timeout: Timeouts,
    /// Request analysers this proxy brings as a frontend.
    pub fe_req_ana: Analysers,
    /// Request analysers this proxy brings as a backend.
    pub be_req_ana: Analysers,
    /// Response analysers this proxy brings as a frontend.
    pub fe_rsp_ana: Analysers,
    /// Response analysers this proxy brings as a backend.
    pub be_rsp_ana: Analysers,
    /// `p->accept`: the frontend's accept function (`frontend_accept`), set by
    /// `check_config_validity` for proxies with `PR_CAP_FE`.
    pub accept: Option<crate::haproxy::frontend::FrontendAcceptFn>,
    /// Where this proxy's logs go (`log` lines, or `log global`).
    pub logs: Vec<LogTarget>,
    /// `option httplog` / `option tcplog` / default format.
    pub log_format: LogFormat,
    /// Counters.
    pub counters: ProxyCounters,
    /// Listeners paused because this frontend reached `maxconn` (`p->listener_queue`).
    pub listener_queue: VecDeque<ListenerId>,
    /// Sessions waiting for any server of this backend (`p->pendconns`).
    pub pendconns: VecDeque<SessionId>,
    /// Highest backend queue length seen.
    pub nbpend_max: u32,
    /// `fullconn` / last-change timestamp for `show stat` (seconds since start).
    pub last_change: u64,
}

impl Proxy {
    /// A proxy with HAProxy's defaults (`init_new_proxy` + `defaults` values).
    pub fn new(id: ProxyId, name: &str, cap: ProxyCap, file: &str, line: usize) -> Proxy {
        Proxy {
            id,
            uuid: id.0 + 2,
            name: name.to_string(),
            cap,
            mode: ProxyMode::PR_MODE_TCP,
            state: ProxyState::PR_STREADY,
            conf: (file.to_string(), line),
            listeners: Vec::new(),
            maxconn: 0,
            feconn: 0,
            beconn: 0,
            defbe_name: None,
            defbe: None,
            switching_rules: Vec::new(),
            acls: AclList::default(),
            http_req_rules: Vec::new(),
            http_res_rules: Vec::new(),
            errmsg: std::collections::BTreeMap::new(),
            servers: Vec::new(),
            lbprm: LbParams::default(),
            conn_retries: 3,
            options: ProxyOptions::empty(),
            http_mode: HttpConnMode::KeepAlive,
            tcpcheck: Default::default(),
            monitor_uri: None,
            mon_fail_cond: Vec::new(),
            default_server: Vec::new(),
            timeout: Timeouts::default(),
            fe_req_ana: Analysers::empty(),
            be_req_ana: Analysers::empty(),
            fe_rsp_ana: Analysers::empty(),
            be_rsp_ana: Analysers::empty(),
            accept: None,
            logs: Vec::new(),
            log_format: LogFormat::None,
            counters: ProxyCounters::default(),
            listener_queue: VecDeque::new(),
            pendconns: VecDeque::new(),
            nbpend_max: 0,
            last_change: 0,
        }
    }

    /// True for frontends and `listen` sections.
    pub fn is_frontend(&self) -> bool {
        self.cap.contains(ProxyCap::PR_CAP_FE)
    }

    /// True for backends and `listen` sections.
    pub fn is_backend(&self) -> bool {
        self.cap.contains(ProxyCap::PR_CAP_BE)
    }

    /// The section keyword this proxy came from.
    pub fn section_name(&self) -> &'static str {
        match self.cap {
            ProxyCap::PR_CAP_FE => "frontend",
            ProxyCap::PR_CAP_BE => "backend",
            _ => "listen",
        }
    }

    /// A server of this backend by name.
    pub fn find_server(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    /// The queue timeout: `timeout queue`, or `timeout connect` when unset (as HAProxy).
    pub fn queue_timeout(&self) -> Option<u64> {
        self.timeout.queue.or(self.timeout.connect)
    }

    /// Number of active (non-backup) servers that can take traffic (`srv_act`).
    pub fn srv_act(&self) -> usize {
        self.servers.iter().filter(|s| s.is_usable() && !s.is_backup()).count()
    }

    /// Number of backup servers that can take traffic (`srv_bck`).
    pub fn srv_bck(&self) -> usize {
        self.servers.iter().filter(|s| s.is_usable() && s.is_backup()).count()
    }
}
