//! Proxies: the `frontend`, `backend` and `listen` sections, with their settings and counters.
//!
//! Reproduces `proxy.c` and `include/types/proxy.h` (1.5-dev8). A proxy has capabilities:
//! a frontend (`PR_CAP_FE`) accepts connections on its listeners, a backend (`PR_CAP_BE`)
//! owns servers and balances across them, and a `listen` section is both. The analyser
//! masks (`fe_req_ana`, `be_req_ana`, ...) are filled by `check_config_validity` and copied
//! into each session's buffers: they are how a proxy's mode and rules become the list of
//! functions a request goes through. The start-up and reload functions of `proxy.c` live
//! here too: `start_proxies` binds, `pause_proxies` and `resume_proxies` answer
//! `SIGTTOU` and `SIGTTIN`, `stop_proxy` closes a proxy's listeners for good.

use std::collections::VecDeque;
use std::fmt;

use crate::haproxy::acl::{AclList, Condition};
use crate::haproxy::buffers::Analysers;
use crate::haproxy::compression::Comp;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::http_act::{HttpReply, HttpRule};
use crate::haproxy::listener::{
    ListenAddr, ListenerState, delete_listener, pause_listener, resume_listener, unbind_listener,
};
use crate::haproxy::log::{LOG_WARNING, LogFormat, LogTarget};
use crate::haproxy::server::Server;
use crate::ids::{ListenerId, ProxyId, SessionId};
use crate::trace::names;

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
    /// Configured, not started yet: `start_proxies` has not bound its listeners.
    #[default]
    PR_STNEW,
    /// Started: its listeners are bound.
    PR_STREADY,
    /// Its listeners are paused (`SIGTTOU`, while a new process takes the ports).
    PR_STPAUSED,
    /// Stopped (soft stop, or `disabled`).
    PR_STSTOPPED,
    /// A listener refused to pause: the proxy is in an unknown state.
    PR_STERROR,
}

impl ProxyOptions {
    /// `PR_O2_SPLIC_ANY`: any of the splice options.
    pub const PR_O2_SPLIC_ANY: ProxyOptions = ProxyOptions::PR_O2_SPLIC_REQ
        .union(ProxyOptions::PR_O2_SPLIC_RTR)
        .union(ProxyOptions::PR_O2_SPLIC_AUT);
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
        /// `option http-buffer-request`: wait for the whole request body before the
        /// rules (HAProxy keeps it in `px->options`, `PR_O_WREQ_BODY`, 1.6+).
        const PR_O_WREQ_BODY    = 0x0000_2000;
        /// `dispatch ADDR`: without servers, connect to this address (1.5).
        const PR_O_DISPATCH     = 0x0000_4000;
        /// `option transparent`: without servers, connect to the address the client
        /// reached (1.5).
        const PR_O_TRANSP       = 0x0000_8000;
        /// `option prefer-last-server`: a client's next request goes to the server of
        /// the connection it kept, when still usable (1.5).
        const PR_O_PREF_LAST    = 0x0001_0000;
        /// A `tcp-request content switch-mode http` rule may make the proxy's TCP
        /// streams HTTP (2.6's `PR_O_HTTP_UPG`): its `http-request` rules are kept.
        const PR_O_HTTP_UPG     = 0x0002_0000;
        /// `option splice-request`: splice the request bodies and client data (HAProxy
        /// keeps the three splice options in `px->options2`).
        const PR_O2_SPLIC_REQ   = 0x0004_0000;
        /// `option splice-response`: splice the response bodies and server data.
        const PR_O2_SPLIC_RTR   = 0x0008_0000;
        /// `option splice-auto`: splice either direction once its producer streams fast.
        const PR_O2_SPLIC_AUT   = 0x0010_0000;
    }
}

/// `http-reuse` (`PR_O_REUSE_*`, 1.6; the modes of 2.6): which idle server connections
/// a request may be sent over, besides the one its own client connection already used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ReuseMode {
    /// `never`: server connections stay private to the client connection that opened
    /// them, as in 1.5.
    Never,
    /// `safe` (the default): a client's first request never goes over another client's
    /// connection; the next ones may.
    #[default]
    Safe,
    /// `aggressive`: a first request may use a connection known to survive (one that
    /// carried more than one request).
    Aggressive,
    /// `always`: any idle connection to the server may carry any request.
    Always,
}

/// `option forwardfor` / `option originalto` settings: the header to add and the
/// network whose addresses get none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XffOpts {
    /// `except NETWORK`.
    pub except: Option<(std::net::IpAddr, u8)>,
    /// `header NAME` (lower case).
    pub hdr: String,
}

/// `option http-restrict-req-hdr-names`: what to do with request header names holding
/// other characters than letters, digits and `-` (2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HdrNamesPolicy {
    /// `preserve` (the default): forward them.
    #[default]
    Preserve,
    /// `delete`: remove them.
    Delete,
    /// `reject`: answer 403.
    Reject,
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

impl BalanceAlgo {
    /// `BE_LB_PROP_DYN`: the algorithm follows weight and server changes at once (a tree
    /// or a scan), where map-based ones computed their map at start-up.
    pub fn is_dynamic(self) -> bool {
        matches!(self, BalanceAlgo::RoundRobin | BalanceAlgo::LeastConn | BalanceAlgo::First)
    }
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
    /// A `balance` line was given (HAProxy's `BE_LB_KIND` bits are set): without one, a
    /// backend in `dispatch` or `transparent` mode ignores load balancing.
    pub kind_set: bool,
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
    /// `use_backend %[...]`: the name is computed per request (`be_name` is the format).
    pub dynamic: Option<crate::haproxy::log::LogFmt>,
    /// Where the rule was written, for error messages.
    pub line: usize,
}

/// A `use-server NAME if|unless COND` rule (`struct server_rule`, 1.5).
#[derive(Clone, Debug)]
pub struct ServerRule {
    /// The condition; the rule applies when it matches.
    pub cond: Condition,
    /// Server name as written (resolved by `check_config_validity`).
    pub srv_name: String,
    /// The resolved server: its slot in this backend.
    pub srv: Option<usize>,
}

/// The splicing counters of the H1 multiplexer's statistics module (2.6's `h1_counters`
/// in mux_h1.c), kept apart for a proxy's frontend and backend connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct H1Counters {
    /// Bytes spliced from a connection into a pipe (`h1_spliced_bytes_in`).
    pub spliced_bytes_in: u64,
    /// Bytes spliced from a pipe into a connection (`h1_spliced_bytes_out`).
    pub spliced_bytes_out: u64,
}

/// Per-proxy counters (`struct pxcounters`), as `show stat` prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounters {
    /// Splicing on the connections of the proxy's frontend (client side).
    pub h1_fe: H1Counters,
    /// Splicing on the connections of the proxy's backend (server side).
    pub h1_be: H1Counters,
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
    /// Connections rejected by `tcp-request connection` rules (`dcon`).
    pub denied_conn: u64,
    /// Sessions rejected by `tcp-request session` rules (`dses`).
    pub denied_sess: u64,
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
    /// Header or start-line rewrites that did not fit in the buffer (`wrew`).
    pub failed_rewrites: u64,
    /// Response body bytes fed to the compressor (`comp_in`).
    pub comp_in: u64,
    /// Bytes the compressor put out, chunk framing included (`comp_out`).
    pub comp_out: u64,
    /// Response body bytes not compressed though `compression` is set (`comp_byp`).
    pub comp_byp: u64,
    /// Responses compressed (`comp_rsp`).
    pub comp_rsp: u64,
    /// `cache-use` lookups (`cache_lookups`).
    pub cache_lookups: u64,
    /// `cache-use` lookups that found the object (`cache_hits`).
    pub cache_hits: u64,
}

/// A filter declaration (`struct flt_conf`, 2.6), the kinds haflow knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FltConf {
    /// `filter compression`.
    Compression,
    /// `filter cache NAME`, or the implicit one of `cache-use`/`cache-store NAME`
    /// (`explicit` false, `CACHE_FLT_F_IMPLICIT_DECL`).
    Cache {
        /// The cache's name.
        name: String,
        /// Declared by a `filter` line.
        explicit: bool,
    },
}

/// `struct proxy`.
#[derive(Clone, Debug)]
pub struct Proxy {
    /// Index in `Haproxy::proxies`.
    pub id: ProxyId,
    /// `uuid`: HAProxy's numeric proxy id (`iid` in `show stat`), 1-based.
    pub uuid: u32,
    /// The `uuid` was set by an `id` line (2.6 keeps such ids in its `used_proxy_id`
    /// tree); the others are numbered around them.
    pub custom_id: bool,
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
    /// `use-server` rules in order.
    pub server_rules: Vec<ServerRule>,
    /// Named ACLs declared in this section.
    pub acls: AclList,
    /// `http-request` rules in order (those of its `defaults` section first).
    pub http_req_rules: Vec<HttpRule>,
    /// `http-response` rules in order.
    pub http_res_rules: Vec<HttpRule>,
    /// `compression` settings (`px->comp`); `None` when the section has none.
    pub comp: Option<Comp>,
    /// `http-after-response` rules in order.
    pub http_after_res_rules: Vec<HttpRule>,
    /// `px->filter_configs` (2.6): the filters of this proxy in the order they run,
    /// declared by `filter` lines or implicitly by the first cache rule naming a cache.
    /// Only their order is kept: it decides whether compression may precede a cache.
    pub filters: Vec<FltConf>,
    /// `http-error status N ...`: the replies replacing the error messages of these
    /// statuses (before `errorfile`s).
    pub http_errors: std::collections::BTreeMap<u16, HttpReply>,
    /// `capture request header NAME len N` lines, then `http-request capture ... len N`
    /// slots: (header name, or none for an action's slot; longest value kept).
    pub req_cap: Vec<(Option<String>, usize)>,
    /// `capture response header NAME len N` lines.
    pub rsp_cap: Vec<(String, usize)>,
    /// `errorfile`s: the whole HTTP response to send instead of HAProxy's own error page
    /// for a status (`p->errmsg[]`); empty closes the connection without an answer.
    pub errmsg: std::collections::BTreeMap<u16, std::sync::Arc<[u8]>>,
    /// The backend's servers (`px->srv`), in configuration order, then those added at
    /// runtime (`add server`).
    pub servers: ServerList,
    /// Load-balancing parameters and state.
    pub lbprm: LbParams,
    /// `retries`: connection attempts after the first.
    pub conn_retries: i32,
    /// `option` flags.
    pub options: ProxyOptions,
    /// HTTP connection mode from `option http-keep-alive|http-server-close|httpclose`.
    pub http_mode: HttpConnMode,
    /// `option forwardfor` settings (used when `PR_O_FWDFOR` is set).
    pub fwdfor: XffOpts,
    /// `option originalto`: add the address the client connected to.
    pub originalto: Option<XffOpts>,
    /// `option http-restrict-req-hdr-names`.
    pub hdr_names: HdrNamesPolicy,
    /// `tcpcheck_rules` and the check options: what this backend's health checks send
    /// and expect (`option httpchk`, `option *-check`, `tcp-check`, `http-check`).
    pub tcpcheck: crate::haproxy::tcpcheck::TcpcheckCfg,
    /// `uri_auth`: the statistics page this proxy serves (`stats` keywords).
    pub uri_auth: Option<Box<crate::haproxy::uri_auth::UriAuth>>,
    /// The `uri_auth` came from the `defaults` section: the proxy's first own `stats`
    /// line starts from scratch instead (cfgparse-listen.c "detach from the default").
    pub uri_auth_inherited: bool,
    /// `monitor-uri`: requests for this URI (or path) are answered by the proxy itself.
    pub monitor_uri: Option<String>,
    /// `monitor fail if|unless <cond>` (`mon_fail_cond`): answer 503 instead of 200.
    pub mon_fail_cond: Vec<crate::haproxy::acl::Condition>,
    /// `default-server` settings, as the words that follow the keyword (the `defaults`
    /// section's first, then this section's): every `server` line starts from them.
    pub default_server: Vec<String>,
    /// `timeout` settings.
    pub timeout: Timeouts,
    /// `tcp-request` rules and `inspect-delay` (`px->tcp_req`).
    pub tcp_req: crate::haproxy::tcp_rules::TcpReqRules,
    /// `tcp-response` rules and `inspect-delay` (`px->tcp_rep`).
    pub tcp_rep: crate::haproxy::tcp_rules::TcpRepRules,
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
    /// `log-format FMT`: a custom log line (wins over `log_format`).
    pub log_format_str: Option<crate::haproxy::log::LogFmt>,
    /// `unique-id-format FMT` (`format_unique_id`): each request's unique id.
    pub unique_id_format: Option<crate::haproxy::log::LogFmt>,
    /// `unique-id-header NAME` (`header_unique_id`): the request header carrying it.
    pub unique_id_header: Option<String>,
    /// Counters.
    pub counters: ProxyCounters,
    /// Listeners paused because this frontend reached `maxconn` (`p->listener_queue`).
    pub listener_queue: VecDeque<ListenerId>,
    /// `stick-table`: the proxy's table (`px->table`), named after the proxy.
    pub table: Option<Box<crate::haproxy::stick_table::StkTable>>,
    /// `stick match|on|store-request` rules (`px->sticking_rules`), in order.
    pub sticking_rules: Vec<crate::haproxy::stick_table::StickingRule>,
    /// `stick store-response` rules (`px->storersp_rules`).
    pub storersp_rules: Vec<crate::haproxy::stick_table::StickingRule>,
    /// `cookie NAME ...`: the persistence cookie (`px->cookie_name` and its options).
    pub cookie: Option<crate::haproxy::proto_http::CookieCfg>,
    /// Sessions waiting for any server of this backend (`p->pendconns`).
    pub pendconns: VecDeque<SessionId>,
    /// Highest backend queue length seen.
    pub nbpend_max: u32,
    /// `fullconn` / last-change timestamp for `show stat` (seconds since start).
    pub last_change: u64,
    /// `http-reuse`.
    pub reuse: ReuseMode,
    /// `dispatch ADDR` (`dispatch_addr`), used with `PR_O_DISPATCH`.
    pub dispatch_addr: Option<std::net::SocketAddr>,
}

impl Proxy {
    /// A proxy with HAProxy's defaults (`init_new_proxy` + `defaults` values).
    pub fn new(id: ProxyId, name: &str, cap: ProxyCap, file: &str, line: usize) -> Proxy {
        Proxy {
            id,
            uuid: id.0 + 2,
            custom_id: false,
            name: name.to_string(),
            cap,
            mode: ProxyMode::PR_MODE_TCP,
            state: ProxyState::PR_STNEW,
            conf: (file.to_string(), line),
            listeners: Vec::new(),
            maxconn: 0,
            feconn: 0,
            beconn: 0,
            defbe_name: None,
            defbe: None,
            switching_rules: Vec::new(),
            server_rules: Vec::new(),
            acls: AclList::default(),
            http_req_rules: Vec::new(),
            http_res_rules: Vec::new(),
            comp: None,
            http_after_res_rules: Vec::new(),
            filters: Vec::new(),
            http_errors: std::collections::BTreeMap::new(),
            req_cap: Vec::new(),
            rsp_cap: Vec::new(),
            errmsg: std::collections::BTreeMap::new(),
            servers: ServerList::default(),
            lbprm: LbParams::default(),
            conn_retries: 3,
            options: ProxyOptions::empty(),
            http_mode: HttpConnMode::KeepAlive,
            fwdfor: XffOpts { except: None, hdr: "x-forwarded-for".into() },
            originalto: None,
            hdr_names: HdrNamesPolicy::Preserve,
            tcpcheck: Default::default(),
            uri_auth: None,
            uri_auth_inherited: false,
            monitor_uri: None,
            mon_fail_cond: Vec::new(),
            default_server: Vec::new(),
            timeout: Timeouts::default(),
            tcp_req: Default::default(),
            tcp_rep: Default::default(),
            fe_req_ana: Analysers::empty(),
            be_req_ana: Analysers::empty(),
            fe_rsp_ana: Analysers::empty(),
            be_rsp_ana: Analysers::empty(),
            accept: None,
            logs: Vec::new(),
            log_format: LogFormat::None,
            log_format_str: None,
            unique_id_format: None,
            unique_id_header: None,
            counters: ProxyCounters::default(),
            listener_queue: VecDeque::new(),
            table: None,
            sticking_rules: Vec::new(),
            storersp_rules: Vec::new(),
            cookie: None,
            pendconns: VecDeque::new(),
            nbpend_max: 0,
            last_change: 0,
            reuse: ReuseMode::Safe,
            dispatch_addr: None,
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
        self.servers.enumerate().find(|(_, s)| s.name == name).map(|(i, _)| i)
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

// ANCHOR: start_proxies
/// proxy.c:start_proxies() in 1.5-dev8: bind the listeners of every proxy not started
/// yet (`PR_STNEW`), through their protocol's `bind` (`tcp_bind_listener`). A proxy whose
/// listeners all bound is `PR_STREADY`; one that failed stays `PR_STNEW`, so that the
/// next call (`main()`'s retry loop, while an old process pauses) binds only what is
/// left. A `disabled` proxy is `PR_STSTOPPED` and binds nothing. Failures are reported
/// when `verbose` (the last try) or when they are not retryable; the result says whether
/// a retry may help.
/// Divergence: the messages are 2.6's (`Binding [file:line] for frontend X: ...`), and
/// no "Proxy X started." notice is logged (2.6 logs none).
pub fn start_proxies(w: &mut Haproxy, verbose: bool) -> Result<(), StartError> {
    let span = tracing::info_span!(names::START_PROXIES, verbose, err = tracing::field::Empty);
    let _g = span.enter();
    let mut err = StartError::default();
    for p in 0..w.proxies.len() {
        if w.proxies[p].state != ProxyState::PR_STNEW {
            continue;
        }
        let mut pxerr = false;
        for lid in w.proxies[p].listeners.clone() {
            let l = &w.listeners[lid.idx()];
            if l.state != ListenerState::LI_ASSIGNED {
                continue;
            }
            let Err(e) = (l.proto.bind)(w, lid) else { continue };
            pxerr = true;
            if verbose || !e.retryable {
                let l = &w.listeners[lid.idx()];
                err.alerts.push(format!(
                    "Binding [{}:{}] for {} {}: {}",
                    l.conf.0,
                    l.conf.1,
                    w.proxies[p].section_name(),
                    w.proxies[p].name,
                    e.msg
                ));
            }
            if e.retryable {
                err.retryable = true;
            } else {
                err.fatal = true;
                break;
            }
        }
        if !pxerr {
            w.proxies[p].state = ProxyState::PR_STREADY;
        }
        if err.fatal {
            break;
        }
    }
    if err.retryable || err.fatal {
        span.record("err", if err.fatal { "ERR_FATAL" } else { "ERR_RETRYABLE" });
        return Err(err);
    }
    Ok(())
}
// ANCHOR_END: start_proxies

/// What `start_proxies` could not do (`ERR_RETRYABLE`, `ERR_FATAL` and its ALERTs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StartError {
    /// The ALERTs to print (only those `start_proxies` was asked to report).
    pub alerts: Vec<String>,
    /// `ERR_RETRYABLE`: some listener may bind if tried again (its port is in use).
    pub retryable: bool,
    /// `ERR_FATAL`: trying again will not help.
    pub fatal: bool,
}

/// proxy.c:pause_proxy() in 1.5-dev8: pause every listener of a frontend (`PR_STPAUSED`).
/// Returns false if one refused (`PR_STERROR`), after saying so as 2.6 does.
/// Divergence: no "Pausing frontend X." warning on success (2.6 prints none).
pub fn pause_proxy(w: &mut Haproxy, p: ProxyId) -> bool {
    let px = &w.proxies[p.idx()];
    if !px.is_frontend()
        || matches!(px.state, ProxyState::PR_STERROR | ProxyState::PR_STSTOPPED | ProxyState::PR_STPAUSED)
    {
        return true;
    }
    let _s = tracing::debug_span!(names::PAUSE_PROXY, proxy = px.name.as_str()).entered();
    for lid in px.listeners.clone() {
        if !pause_listener(w, lid) {
            w.proxies[p.idx()].state = ProxyState::PR_STERROR;
        }
    }
    let px = &w.proxies[p.idx()];
    if px.state == ProxyState::PR_STERROR {
        let msg = format!("{} {} failed to enter pause mode.", px.section_name(), px.name);
        let targets = px.logs.clone();
        w.ha_warning_and_log(&targets, LOG_WARNING, &msg);
        return false;
    }
    w.proxies[p.idx()].state = ProxyState::PR_STPAUSED;
    true
}

// ANCHOR: pause_proxies
/// proxy.c:pause_proxies() in 1.5-dev8 (`SIGTTOU`): pause every frontend, so that a new
/// process can bind their ports; if one refuses, stop softly instead.
pub fn pause_proxies(w: &mut Haproxy) {
    let _s = tracing::info_span!(names::PAUSE_PROXIES).entered();
    w.clock.tv_update_date();
    let mut err = false;
    for p in 0..w.proxies.len() {
        err |= !pause_proxy(w, ProxyId::from(p));
    }
    if err {
        let msg = "Some proxies refused to pause, performing soft stop now.";
        let targets = w.global.logs.clone();
        w.ha_warning_and_log(&targets, LOG_WARNING, msg);
        w.soft_stop();
    }
}
// ANCHOR_END: pause_proxies

/// proxy.c:resume_proxy() in 1.5-dev8: a paused frontend listens again. If a port was
/// taken meanwhile, say which and pause the frontend again (another port may have been
/// resumed already). Returns false on failure.
pub fn resume_proxy(w: &mut Haproxy, p: ProxyId) -> bool {
    if w.proxies[p.idx()].state != ProxyState::PR_STPAUSED {
        return true;
    }
    let _s = tracing::debug_span!(names::RESUME_PROXY, proxy = w.proxies[p.idx()].name.as_str()).entered();
    let mut fail = false;
    for lid in w.proxies[p.idx()].listeners.clone() {
        if !resume_listener(w, lid) {
            let px = &w.proxies[p.idx()];
            let msg = match &w.listeners[lid.idx()].addr {
                ListenAddr::Inet(a) if a.port() != 0 => {
                    format!(
                        "Port {} busy while trying to enable {} {}.",
                        a.port(),
                        px.section_name(),
                        px.name
                    )
                }
                _ => format!(
                    "Bind on socket {} busy while trying to enable {} {}.",
                    w.listeners[lid.idx()].luid,
                    px.section_name(),
                    px.name
                ),
            };
            let targets = px.logs.clone();
            w.ha_warning_and_log(&targets, LOG_WARNING, &msg);
            fail = true;
            break;
        }
    }
    w.proxies[p.idx()].state = ProxyState::PR_STREADY;
    if fail {
        pause_proxy(w, p);
        return false;
    }
    true
}

// ANCHOR: resume_proxies
/// proxy.c:resume_proxies() in 1.5-dev8 (`SIGTTIN`): every paused frontend listens again;
/// the new process that paused them gave up.
pub fn resume_proxies(w: &mut Haproxy) {
    let _s = tracing::info_span!(names::RESUME_PROXIES).entered();
    w.clock.tv_update_date();
    let mut err = false;
    for p in 0..w.proxies.len() {
        err |= !resume_proxy(w, ProxyId::from(p));
    }
    if err {
        let msg = "Some proxies refused to resume, probably due to a conflict on a listening port. You may want to try again after the conflicting application is stopped, otherwise a restart might be needed to resume safe operations.";
        let targets = w.global.logs.clone();
        w.ha_warning_and_log(&targets, LOG_WARNING, msg);
    }
}
// ANCHOR_END: resume_proxies

/// proxy.c:stop_proxy() in 1.5-dev8: close the proxy's listeners and delete them; the
/// proxy is `PR_STSTOPPED`. `check_config_validity` calls it on a `disabled` proxy, whose
/// listeners, never bound, then leave their protocol's list: nothing will bind them.
/// Divergence: each listener still counted as a job (bound, or never deleted) is taken
/// off `jobs`, which haflow counts per listener at start.
pub fn stop_proxy(w: &mut Haproxy, p: ProxyId) {
    for lid in w.proxies[p.idx()].listeners.clone() {
        let counted = w.listeners[lid.idx()].state >= ListenerState::LI_ASSIGNED;
        unbind_listener(w, lid);
        delete_listener(&mut w.listeners[lid.idx()], &mut w.protocols);
        if counted {
            w.jobs = w.jobs.saturating_sub(1);
        }
    }
    w.proxies[p.idx()].state = ProxyState::PR_STSTOPPED;
}

/// proxy.c:proxy_be_by_name() in 2.6: the backend named `name`, or whose id is `#<uuid>`.
pub fn proxy_be_by_name(w: &Haproxy, name: &str) -> Option<ProxyId> {
    let mut found = w.proxies.iter().filter(|p| p.is_backend()).filter(|p| match name.strip_prefix('#') {
        Some(id) => id.parse::<u32>().is_ok_and(|id| id == p.uuid),
        None => p.name == name,
    });
    let p = found.next()?;
    // Two backends of the same name: ambiguous, none.
    found.next().is_none().then_some(p.id)
}

/// A backend's servers (`px->srv`, a linked list in HAProxy). A server keeps its slot for
/// its whole life, so a `ServerId` (backend, slot) held by a session, a check task or the
/// statistics names the same server until it is deleted (`del server`); a deleted server's
/// slot stays empty and is never reused, and servers added at runtime take new slots at
/// the end, where HAProxy 2.6 appends them to the list.
#[derive(Clone, Debug, Default)]
pub struct ServerList {
    /// One slot per server ever attached, `None` once deleted.
    slots: Vec<Option<Server>>,
}

impl ServerList {
    /// Attaches a server at the end and returns its slot.
    pub fn push(&mut self, s: Server) -> usize {
        self.slots.push(Some(s));
        self.slots.len() - 1
    }

    /// Detaches the server of slot `i` and gives it back, to be freed by the caller.
    pub fn remove(&mut self, i: usize) -> Option<Server> {
        let s = self.slots.get_mut(i)?.take();
        // Trailing empty slots cost nothing to forget: no id can name them any more.
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        s
    }

    /// The server of slot `i`, unless there is none (never was, or deleted).
    pub fn get(&self, i: usize) -> Option<&Server> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    /// The server of slot `i`, mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Server> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    /// The live servers, in list order.
    pub fn iter(&self) -> impl Iterator<Item = &Server> {
        self.slots.iter().flatten()
    }

    /// The live servers, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Server> {
        self.slots.iter_mut().flatten()
    }

    /// The live servers with their slots (the `idx` of their `ServerId`).
    pub fn enumerate(&self) -> impl Iterator<Item = (usize, &Server)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
    }

    /// The slots of the live servers.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.enumerate().map(|(i, _)| i)
    }

    /// Number of slots, live or not: the bound of a cursor walking the list.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Number of live servers.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when the backend has no server.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl std::ops::Index<usize> for ServerList {
    type Output = Server;
    /// Slots come from a live `ServerId` or from walking the list: a deleted server is
    /// never named (`del server` refuses while anything refers to it).
    fn index(&self, i: usize) -> &Server {
        match self.get(i) {
            Some(s) => s,
            None => unreachable!("server slot {i} is empty"),
        }
    }
}

impl std::ops::IndexMut<usize> for ServerList {
    fn index_mut(&mut self, i: usize) -> &mut Server {
        match self.get_mut(i) {
            Some(s) => s,
            None => unreachable!("server slot {i} is empty"),
        }
    }
}

impl<'a> IntoIterator for &'a ServerList {
    type Item = &'a Server;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Option<Server>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.slots.iter().flatten()
    }
}

impl<'a> IntoIterator for &'a mut ServerList {
    type Item = &'a mut Server;
    type IntoIter = std::iter::Flatten<std::slice::IterMut<'a, Option<Server>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.slots.iter_mut().flatten()
    }
}
